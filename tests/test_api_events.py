"""POST /api/events: Open311 requests from other systems, stored as the writer role by the
importer's rules, all or nothing, and seen live like any other insert."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cockpit import store
from cockpit.config import settings
from cockpit.ingest.api_events import MAX_BYTES, MAX_ITEMS
from cockpit.metrics import changes
from cockpit.store.cluster import ManagedCluster
from conftest import run_cli

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def post(databases, server_url, use_store, monkeypatch):
    """A small city, a write and a read token, and a test client whose POSTs go through the
    managed cluster's cockpit_writer role on this test's database."""
    url = databases.create("post")
    from cockpit.demo.load import load_demo

    load_demo(store.engine(url), seed=3, grids=40, events=300, days=5, now=NOW, progress=lambda _: None)
    use_store(url)
    writer = make_url(server_url).set(username="cockpit_writer", database=make_url(url).database,
                                      password=ManagedCluster(settings().state_dir).secret("writer"))
    monkeypatch.setenv("COCKPIT_WRITER_DATABASE_URL", writer.render_as_string(hide_password=False))
    tokens = {}
    for name, flags in (("hotline", ["--write"]), ("reader", [])):
        made = run_cli("api-token", "create", name, *flags, url=url)
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.strip().splitlines()[-1]
    from cockpit.callbacks.app import create_app

    client = create_app().server.test_client()
    with store.engine(url).connect() as conn:
        # a point inside the first grid, and its code
        lon, lat, grid = conn.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p), code FROM (SELECT ST_PointOnSurface(geom) AS p, code FROM units "
            "WHERE level = 'grid' ORDER BY code LIMIT 1) g")).one()

    def send(body, token="hotline", raw: bytes | None = None):
        headers = {"Authorization": f"Bearer {tokens.get(token, token)}"} if token else {}
        data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        return client.post("/api/events", data=data, headers={**headers, "Content-Type": "application/json"})

    yield url, send, {"lat": lat, "long": lon, "grid": grid}, client
    changes.stop_all()


def request(rid: str, where: dict, **extra) -> dict:
    return {"service_request_id": rid, "service_code": "city_appearance", "service_name": "市容环境",
            "requested_datetime": _iso(NOW - timedelta(minutes=30)), "status": "open",
            "lat": where["lat"], "long": where["long"], "description": "占道经营", "address": "深南大道 1 号",
            **extra}


def count(url: str, sql: str, **params):
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_one_event_is_stored_and_seen_live(post):
    url, send, where, _ = post
    feed = changes.feed_for(url)
    assert feed.wait_ready(10)
    first = feed.token
    before = json.loads(run_cli("kpi", "--unit", "440300", "--json", url=url).stdout)["volume"]

    r = send(request("SR-1", where))
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert [{k: v for k, v in x.items() if k != "id"} for x in body["results"]] == [
        {"index": 0, "service_request_id": "SR-1", "source": "hotline_12345", "status": "inserted"}]
    assert body["inserted"] == 1
    eid = body["results"][0]["id"]
    with store.engine(url).connect() as conn:
        row = conn.execute(sa.text(
            "SELECT e.source, e.status, u.code, e.reported_at, e.description, i.file_name FROM events e "
            "JOIN units u ON u.id = e.grid_id JOIN imports i ON i.id = :imp WHERE e.id = :id"),
            {"id": eid, "imp": body["import_id"]}).one()
    assert row == ("hotline_12345", "reported", where["grid"], NOW - timedelta(minutes=30), "占道经营", "api:hotline")
    # stored as the writer role: its pooled connection is the one open on this database
    assert count(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND usename = 'cockpit_writer' AND application_name = 'cockpit-writer'") == 1

    assert feed.wait_change(first, 10) != first  # the live path's trigger fired for the writer's insert
    after = json.loads(run_cli("kpi", "--unit", "440300", "--json", url=url).stdout)["volume"]
    assert after == before + 1  # the rollups (written by the writer's triggers) count it


def test_many_events_insert_update_and_leave_alone(post):
    url, send, where, _ = post
    assert send([request("SR-1", where), request("SR-2", where)]).status_code == 201
    closed_at = _iso(NOW - timedelta(minutes=5))
    r = send([request("SR-1", where),                                                  # the same again
              request("SR-2", where, status="closed", updated_datetime=closed_at),      # now closed
              request("SR-3", where, source="citizen_app", service_request_id=" SR-3 ")])  # new, its own source
    assert r.status_code == 201, r.get_data(as_text=True)
    results = r.get_json()["results"]
    assert [(x["index"], x["service_request_id"], x["source"], x["status"]) for x in results] == [
        (0, "SR-1", "hotline_12345", "unchanged"), (1, "SR-2", "hotline_12345", "updated"),
        (2, "SR-3", "citizen_app", "inserted")]
    sr2 = results[1]["id"]
    assert count(url, "SELECT status FROM events WHERE id = :i", i=sr2) == "closed"
    assert count(url, "SELECT string_agg(from_status || '>' || to_status, ',' ORDER BY at) FROM event_transitions "
                      "WHERE event_id = :i", i=sr2) == "reported>closed"
    assert count(url, "SELECT count(*) FROM events WHERE external_id LIKE 'SR-%'") == 3
    listed = run_cli("api-token", "list", url=url).stdout
    assert "hotline\twrite" in listed and "reader\tread" in listed


def test_invalid_items_list_each_bad_field_and_nothing_is_stored(post):
    url, send, where, _ = post
    counts = "SELECT (SELECT count(*) FROM events) || '/' || (SELECT count(*) FROM imports) || '/' || " \
             "(SELECT count(*) FROM quarantine) || '/' || (SELECT count(*) FROM categories)"
    before = count(url, counts)
    items = [
        request("OK-1", where, service_code="brand_new_category"),
        request("BAD-1", where, requested_datetime="yesterday", expected_datetime="2026-13-45T00:00:00"),
        request("BAD-2", where, status="pending"),
        {**request("", where), "service_code": None, "service_name": ""},
        request("BAD-4", where, lat="north"),
        request("BAD-5", where, lat=0.0, long=0.0),
        request("BAD-6", where, long=[114.0], source="fax"),
        request("BAD-7", where, status="closed"),
        request("OK-1", where),
        request("BAD-9", where, requested_datetime="soon", status="pending", lat=1.0, long=1.0,
                service_code="", service_name=None),
    ]
    r = send(items)
    assert r.status_code == 422, r.get_data(as_text=True)
    body = r.get_json()
    assert "nothing was stored" in body["error"]
    got = [(e["index"], e["field"]) for e in body["errors"]]
    assert got == [(1, "requested_datetime"), (1, "expected_datetime"), (2, "status"),
                   (3, "service_request_id"), (3, "service_code"), (4, "lat"), (5, "lat"), (5, "long"),
                   (6, "long"), (6, "source"), (7, "updated_datetime"), (8, "service_request_id"),
                   (9, "status"), (9, "service_code"), (9, "requested_datetime"), (9, "lat"), (9, "long")]
    messages = {(e["index"], e["field"]): e["message"] for e in body["errors"]}
    assert "'yesterday' is not a time" in messages[(1, "requested_datetime")]
    assert "'pending' is not one of" in messages[(2, "status")]
    assert "outside every unit" in messages[(5, "lat")]
    assert messages[(6, "long")] == "must be text or a number"
    assert all("\n" not in m for m in messages.values())
    assert count(url, counts) == before  # not the good item, not a category, not a quarantine row


def test_missing_and_wrong_tokens(post):
    url, send, where, client = post
    for token in (None, "ck_nope", "Basic x"):
        r = send(request("T-1", where), token=token)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert list(r.get_json()) == ["error"]
    r = send(request("T-1", where), token="reader")
    assert r.status_code == 403 and "--write" in r.get_json()["error"]
    assert run_cli("api-token", "revoke", "hotline", url=url).returncode == 0
    assert send(request("T-1", where)).status_code == 401
    assert count(url, "SELECT count(*) FROM events WHERE external_id = 'T-1'") == 0


def test_bad_bodies_are_one_json_line(post):
    url, send, where, _ = post
    for raw in (b"", b"{", b"not json", b"\xff\xfe\x00", b"42", b'"text"', b"[]", b"[1, 2]", b'[{"a": 1}, null]',
                b"[" * 100_000 + b"]" * 100_000):
        r = send(None, raw=raw)
        assert r.status_code == 400, raw[:20]
        error = r.get_json()["error"]
        assert list(r.get_json()) == ["error"] and "\n" not in error and len(error) < 300
    many = [request(f"M-{i}", where) for i in range(MAX_ITEMS + 1)]
    r = send(many)
    assert r.status_code == 413 and str(MAX_ITEMS) in r.get_json()["error"].replace(",", "")
    huge = request("H-1", where, description="长" * (MAX_BYTES // 2))
    r = send(huge)
    assert r.status_code == 413 and "bytes" in r.get_json()["error"]
    # text the store cannot hold is the item's error, not a 500
    r = send(request("N-1", where, description="a\x00b"))
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "description"
    assert count(url, "SELECT count(*) FROM events WHERE external_id LIKE 'M-%' OR external_id LIKE 'H-%'") == 0


def test_without_a_writer_posting_is_503(post, monkeypatch):
    url, send, where, _ = post
    monkeypatch.delenv("COCKPIT_WRITER_DATABASE_URL")
    from cockpit.callbacks.app import create_app

    client = create_app().server.test_client()
    token = run_cli("api-token", "create", "late", "--write", url=url).stdout.strip().splitlines()[-1]
    r = client.post("/api/events", json=request("W-1", where), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503
    assert r.get_json() == {"error": "writing events is not configured on this server "
                                     "(set COCKPIT_WRITER_DATABASE_URL)"}


def test_the_same_event_sent_with_another_month_is_still_one_event(post):
    """(source, external_id) is unique across the monthly partitions (docs/schema.md §2a)."""
    url, send, where, _ = post
    assert send(request("SR-9", where)).status_code == 201
    earlier = _iso(NOW - timedelta(days=40))
    r = send(request("SR-9", where, requested_datetime=earlier))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["results"][0]["status"] == "updated"
    assert count(url, "SELECT count(*) FROM events WHERE external_id = 'SR-9'") == 1
    assert count(url, "SELECT count(*) FROM event_keys WHERE external_id = 'SR-9'") == 1
    assert count(url, "SELECT reported_at FROM events WHERE external_id = 'SR-9'") == NOW - timedelta(days=40)
