"""A district officer of district A asks for district B through every route and every callback
of the app, and nothing of B comes back: not its name, not the codes of anything below it.

Every answer is read in full (JSON decoded, so that escaped Chinese is seen as Chinese; an xlsx
opened with openpyxl). A foreign unit is answered exactly like a unit that does not exist (the
same status, the same words with the code swapped), and each such denial is on the record
(`scope_denied`), while a code that does not exist is not. What was tried, and what was skipped
and why, is written to tests/artifacts/scope_leaks.txt.
"""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.access import tokens

from conftest import run_cli, signed_in_client

NO_SUCH = "NO-SUCH"
NO_EVENT = 987654321
NO_WARNING = 987654322
ARTIFACT = Path(__file__).parent / "artifacts" / "scope_leaks.txt"
TRIED: dict[str, list[str]] = {"routes": [], "callbacks": [], "skipped": []}


# --- the city as its owner sees it ---------------------------------------------------------------

class City:
    """A (the officer's district), B (the foreign one) and what must not leak of B."""

    def __init__(self, url: str):
        with store.engine(url).connect() as conn:
            q = lambda sql, **kw: conn.execute(sa.text(sql), kw).all()  # noqa: E731
            city = q("SELECT id, code, name FROM units WHERE parent_id IS NULL ORDER BY id LIMIT 1")[0]
            districts = q("SELECT id, code, name FROM units WHERE parent_id = :p ORDER BY code", p=city.id)
            assert len(districts) >= 2
            self.city = city
            (self.a_id, self.a, self.a_name), (self.b_id, self.b, self.b_name) = [tuple(d) for d in districts[:2]]

            def subtree(uid):
                return q("SELECT u.id, u.code, u.name, u.level, u.parent_id FROM unit_closure c "
                         "JOIN units u ON u.id = c.descendant_id WHERE c.ancestor_id = :a ORDER BY u.code", a=uid)
            self.a_units, self.b_units = subtree(self.a_id), subtree(self.b_id)
            self.a_children = sorted(u.code for u in self.a_units if u.parent_id == self.a_id)
            self.b_child = next(u.code for u in self.b_units if u.parent_id == self.b_id)
            self.b_leaf = self.b_units[-1].code
            self.a_leaf = self.a_units[-1].code
            self.child_level = next(u.level for u in self.a_units if u.parent_id == self.a_id)
            others = [r.name for r in q("SELECT name FROM units WHERE id NOT IN "
                                        "(SELECT descendant_id FROM unit_closure WHERE ancestor_id = :b)",
                                        b=self.b_id)]
            # B's own name must not be part of anything A may see, or the check would prove nothing
            assert not any(self.b_name in n for n in others), self.b_name
            # below B: every code, and every name that no unit outside B shares (or contains)
            self.b_codes = [u.code for u in self.b_units if u.id != self.b_id]
            self.b_names = [self.b_name] + [u.name for u in self.b_units if u.id != self.b_id
                                            and not any(u.name in n for n in others)]
            self.b_event = q("SELECT e.id FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id "
                             "WHERE c.ancestor_id = :b ORDER BY e.id DESC LIMIT 1", b=self.b_id)[0].id
            found = q("SELECT w.id FROM warnings w JOIN unit_closure c ON c.descendant_id = w.unit_id "
                      "WHERE c.ancestor_id = :b ORDER BY w.id LIMIT 1", b=self.b_id)
            self.b_warning = found[0].id if found else None

    def leaks(self, text: str) -> list[str]:
        """What of B the text shows (codes below B, names of B and below)."""
        return [c for c in self.b_codes if c in text] + [n for n in self.b_names if n in text]


@pytest.fixture(scope="module")
def city(demo_url) -> City:
    return City(demo_url)


@pytest.fixture
def app(demo_url, use_store):
    from cockpit.callbacks.app import create_app

    use_store(demo_url)
    return create_app()


@pytest.fixture
def officer(app, city):
    return signed_in_client(app, "officer", city.a)


def _text(response) -> str:
    """The whole answer, JSON decoded (Dash escapes non-ASCII: 罗湖区 travels as \\u7f57...)."""
    raw = response.get_data(as_text=True)
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False)
    except ValueError:
        return raw


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "/' not in text and "psycopg" not in text.lower(), text[:500]


def _denials(url: str, code: str | None = None) -> int:
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'scope_denied' AND outcome = 'denied'"
                                    " AND (CAST(:c AS text) IS NULL OR unit_code = :c)"), {"c": code}).scalar()


def _swap(text: str, city: City) -> str:
    """An answer about NO-SUCH as it would read about B (codes, event and warning ids)."""
    text = text.replace(NO_SUCH, city.b).replace(str(NO_EVENT), str(city.b_event))
    return text.replace(str(NO_WARNING), str(city.b_warning if city.b_warning is not None else NO_WARNING))


# --- forging a callback POST from the callback map -----------------------------------------------

def _is_pattern(cid) -> bool:
    return isinstance(cid, dict) or (isinstance(cid, str) and cid.startswith("{"))


def _outputs(key: str) -> list[dict]:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in parts]


def foreign_values(city: City, unit: str, event: int, warning: int | None) -> callable:
    """The value a forged request gives each input or state, aimed at `unit`."""
    def value(cid: str, prop: str):
        if prop == "search":
            return f"?unit={unit}"
        if prop == "pathname":
            return "/"
        if cid == "view" and prop == "data":
            return {"unit": unit, "level": "district", "leaf": False, "first": "2026-01-01", "last": "2026-12-31"}
        if cid == "query" and prop == "data":
            return f"unit={unit}"
        if cid == "wall-focus" and prop == "data":
            return unit
        # beyond the brief's list: every other way a unit or an event reaches the server
        if cid.endswith("heat-unit") and prop == "data":
            return unit
        if cid == "reveal-event" and prop == "data":
            return event
        if cid == "reveal-reason":
            return "checking a complaint"
        if prop == "cellClicked" and cid == "events-grid":
            return {"rowId": str(event), "colId": "id", "value": event}
        if cid == "warning-open" and prop == "data":
            return {"id": warning if warning is not None else NO_WARNING, "unit": unit, "kind": "surge"}
        if prop in ("n_clicks", "n_intervals"):
            return 1
        if cid == "rank-period":  # else the ranking and the report only say "no such period"
            return _last_month()
        if cid.endswith("live-token") and prop == "data":
            return "forged-token"
        return None
    return value


def _last_month() -> str:
    from datetime import date

    first = date.today().replace(day=1)
    return f"{(first.replace(day=1) - __import__('datetime').timedelta(days=1)):%Y-%m}"


def forge(app, key: str, value) -> dict:
    entry = app.callback_map[key]
    outs = _outputs(key)

    def item(spec):
        return {"id": spec["id"], "property": spec["property"], "value": value(spec["id"], spec["property"])}
    first = entry["inputs"][0]
    return {"output": key, "outputs": outs if key.startswith("..") else outs[0],
            "inputs": [item(s) for s in entry["inputs"]], "state": [item(s) for s in entry["state"]],
            "changedPropIds": [f"{first['id']}.{first['property']}"]}


def _plan(app) -> tuple[list[str], list[tuple[str, str]]]:
    """(server callbacks to try, [(callback, why skipped)])."""
    tried, skipped = [], []
    for key, entry in app.callback_map.items():
        specs = entry["inputs"] + entry["state"]
        if any(_is_pattern(s["id"]) for s in specs) or any(_is_pattern(o["id"]) for o in _outputs(key)):
            skipped.append((key, "pattern-matching id: the browser sends concrete ids of items it drew "
                                 "(tried with concrete ids in test_warnings_of_another_district_stay_there)"))
        elif entry.get("callback") is None:
            skipped.append((key, "clientside: runs in the browser, the server has no answer for it"))
        else:
            tried.append(key)
    return tried, skipped


def _post(client, body):
    return client.post("/_dash-update-component", json=body)


MAIN_VIEWS = {  # a piece of each callback's key -> what an answer about A must show
    "unit-name.children": "name",
    "wall-volume.children": "name",
    "rank-grid.rowData": "child",
    "cockpit-heat-full.data": "ok",
    "cockpit-live-token.data": "ok",
}


def test_every_callback_answers_b_like_an_unknown_unit(app, officer, city, demo_url):
    keys, skipped = _plan(app)
    assert len(keys) >= 15, keys  # the map really was walked
    problems, leaks, lines = [], [], []
    for key in keys:
        b_body = forge(app, key, foreign_values(city, city.b, city.b_event, city.b_warning))
        none_body = forge(app, key, foreign_values(city, NO_SUCH, NO_EVENT, NO_WARNING))
        before_b = _denials(demo_url, city.b)
        rb = _post(officer, b_body)
        denied_b = _denials(demo_url, city.b) - before_b
        before_none = _denials(demo_url)
        rn = _post(officer, none_body)
        denied_none = _denials(demo_url) - before_none
        tb, tn = _text(rb), _text(rn)
        _no_traceback(tb)
        _no_traceback(tn)
        found = city.leaks(tb)
        if found:
            leaks.append(f"{key}: {found[:5]}")
        aimed = b_body != none_body  # a callback no input of which names a unit has nothing to compare
        if aimed and (rb.status_code != rn.status_code or tb != _swap(tn, city)):
            problems.append(f"{key}: B {rb.status_code} {tb[:200]!r} / unknown {rn.status_code} {tn[:200]!r}")
        if denied_none:
            problems.append(f"{key}: an unknown code wrote {denied_none} scope_denied rows")
        lines.append(f"callback {key[:110]}  B->{rb.status_code} unknown->{rn.status_code} aimed={aimed} "
                     f"scope_denied(B)+{denied_b} leaks={found[:3]}")
    TRIED["callbacks"] = lines
    TRIED["skipped"] = [f"callback {k[:110]}: {why}" for k, why in skipped]
    _write_artifact()
    assert not leaks, leaks
    assert not problems, "\n".join(problems)


def test_the_same_forged_requests_about_a_do_answer(app, officer, city):
    """The check above can fail: aimed at A, the main views answer, and a check for A's codes
    and names in those answers finds them."""
    keys, _ = _plan(app)
    a_codes = [u.code for u in city.a_units if u.code != city.a]
    a_names = [city.a_name] + [u.name for u in city.a_units]
    seen = {}
    for key in keys:
        hit = next((v for piece, v in MAIN_VIEWS.items() if piece in key), None)
        if hit is None:
            continue
        r = _post(officer, forge(app, key, foreign_values(city, city.a, NO_EVENT, None)))
        text = _text(r)
        assert r.status_code == 200, (key, r.status_code, text[:300])
        _no_traceback(text)
        seen[hit + ":" + key[:40]] = text
        if hit == "name":
            assert city.a_name in text, key
        if hit == "child":
            assert any(c in text for c in a_codes) and any(n in text for n in a_names), key
    assert len(seen) == len(MAIN_VIEWS), list(seen)
    drill = next(t for k, t in seen.items() if k.startswith("name:") and "kpi-volume" in k)
    assert any(c in drill for c in city.a_children)  # the children's ranking names them
    assert "no unit" not in drill


def test_the_router_answers_b_like_an_unknown_unit(app, officer, city, demo_url):
    bodies = {}
    for code in (city.b, NO_SUCH, city.b_child, city.a):
        body = {"output": "page-content.children", "outputs": {"id": "page-content", "property": "children"},
                "inputs": [{"id": "page-url", "property": "pathname", "value": "/"}],
                "state": [{"id": "page-url", "property": "search", "value": f"?unit={code}"}],
                "changedPropIds": ["page-url.pathname"]}
        r = _post(officer, body)
        bodies[code] = (r.status_code, _text(r))
        _no_traceback(bodies[code][1])
        TRIED["routes"].append(f"router / ?unit={code} -> {r.status_code}")
    assert bodies[city.a][0] == 200 and "kpi-volume" in bodies[city.a][1]
    for code in (city.b, city.b_child):
        status, text = bodies[code]
        assert not city.leaks(text)
        assert (status, text) == (bodies[NO_SUCH][0], bodies[NO_SUCH][1].replace(NO_SUCH, code))
    r = officer.get(f"/?unit={city.b}")  # the page itself: Dash's index, nothing of any unit
    assert r.status_code == 200 and not city.leaks(_text(r))
    TRIED["routes"].append(f"GET /?unit={city.b} -> {r.status_code}")


def test_geo_answers_b_like_an_unknown_unit(officer, city, demo_url):
    unknown = officer.get(f"/geo/{NO_SUCH}.json")
    assert unknown.status_code == 404
    before = _denials(demo_url, city.b), _denials(demo_url, city.b_child), _denials(demo_url)
    for code in (city.b, city.b_child, city.b_leaf):
        r = officer.get(f"/geo/{code}.json")
        text = _text(r)
        TRIED["routes"].append(f"GET /geo/{code}.json -> {r.status_code}")
        _no_traceback(text)
        assert not city.leaks(text.replace(f"'{code}'", "")), code
        assert r.status_code == 404 and r.get_json() == {"error": f"no unit with code {code!r}"}
        assert text == _text(unknown).replace(NO_SUCH, code)
    assert _denials(demo_url, city.b) == before[0] + 1
    assert _denials(demo_url, city.b_child) == before[1] + 1
    after_known = _denials(demo_url)
    officer.get(f"/geo/{NO_SUCH}.json")
    assert _denials(demo_url) == after_known  # an unknown code is no denial
    root = officer.get("/geo/_root.json")
    TRIED["routes"].append(f"GET /geo/_root.json -> {root.status_code}")
    codes = sorted(f["properties"]["code"] for f in root.get_json()["features"])
    assert codes == city.a_children
    assert not city.leaks(_text(root))
    own = officer.get(f"/geo/{city.a_children[0]}.json")
    assert own.status_code == 200 and not city.leaks(_text(own))
    TRIED["routes"].append(f"GET /geo/{city.a_children[0]}.json -> {own.status_code}")


def _rank_body(app, by: str, level: str | None, period: str | None = None) -> dict:
    key = next(k for k in app.callback_map if "rank-grid.rowData" in k)
    values = {"rank-by": by, "rank-level": level, "rank-period": period or _last_month(), "rank-lang": "zh",
              "rank-url": ""}
    return forge(app, key, lambda cid, prop: values.get(cid))


def test_rank_lists_only_units_inside_a(app, officer, city, demo_url):
    page = _post(officer, {"output": "page-content.children",
                           "outputs": {"id": "page-content", "property": "children"},
                           "inputs": [{"id": "page-url", "property": "pathname", "value": "/rank"}],
                           "state": [{"id": "page-url", "property": "search", "value": f"?unit={city.b}"}],
                           "changedPropIds": ["page-url.pathname"]})
    assert page.status_code == 200 and not city.leaks(_text(page))
    TRIED["routes"].append(f"router /rank -> {page.status_code}")
    assert officer.get("/rank").status_code == 200
    inside = {u.code for u in city.a_units}
    for level in (city.child_level, "district", None, "grid" if city.child_level != "grid" else "street"):
        r = _post(officer, _rank_body(app, "unit", level))
        text = _text(r)
        TRIED["routes"].append(f"callback rank render by=unit level={level} -> {r.status_code}")
        assert r.status_code == 200, text[:300]
        assert not city.leaks(text), level
        rows = r.get_json()["response"]["rank-grid"]["rowData"]
        codes = {row["key"] for row in rows}
        assert codes <= inside, (level, codes - inside)
        if level == city.child_level:
            assert codes == set(city.a_children)
    r = _post(officer, _rank_body(app, "department", None))
    TRIED["routes"].append(f"callback rank render by=department -> {r.status_code}")
    out = r.get_json()["response"]
    assert out["rank-grid"]["rowData"] == []
    assert out["rank-status"]["children"] == "部门排名仅对全市范围用户开放"
    assert set(out) == {"rank-grid", "rank-status"}


def test_the_report_holds_only_a(app, officer, city, demo_url):
    from openpyxl import load_workbook

    key = next(k for k in app.callback_map if "report-download.data" in k)
    values = {"report-pdf": None, "report-xlsx": 1, "rank-by": "unit", "rank-level": city.child_level,
              "rank-period": _last_month(), "rank-group": None, "rank-source": None, "rank-lang": "zh"}
    body = forge(app, key, lambda cid, prop: values.get(cid))
    body["changedPropIds"] = ["report-xlsx.n_clicks"]
    with store.engine(demo_url).connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'report_download'")).scalar()
    r = _post(officer, body)
    TRIED["routes"].append(f"callback report download xlsx level={city.child_level} -> {r.status_code}")
    assert r.status_code == 200, _text(r)[:300]
    sent = r.get_json()["response"]["report-download"]["data"]
    assert sent and sent["filename"].endswith(".xlsx"), r.get_json()["response"]
    data = base64.b64decode(sent["content"]) if sent.get("base64") else sent["content"].encode()
    book = load_workbook(io.BytesIO(data))
    cells = " ".join(str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row
                     if c is not None)
    assert any(n in cells for n in [u.name for u in city.a_units if u.parent_id == city.a_id])  # it is A's report
    assert not city.leaks(cells), city.leaks(cells)[:5]
    assert city.city.name not in cells or city.city.name in city.a_name  # not even the city above A
    with store.engine(demo_url).connect() as conn:
        rows = conn.execute(sa.text("SELECT actor, actor_kind, outcome, detail FROM audit_log "
                                    "WHERE action = 'report_download' ORDER BY id DESC")).all()
    assert len(rows) == before + 1
    assert rows[0].outcome == "ok" and rows[0].detail["format"] == "xlsx" and rows[0].actor.startswith("test-officer")


def _api_token_cli(demo_url, name: str, scope: str) -> str:
    done = run_cli("api-token", "create", name, "--scope", scope, url=demo_url)
    assert done.returncode == 0, done.stderr
    return re.search(r"ck_[A-Za-z0-9_-]+", done.stdout).group(0)


def _api_checks(client, token: str, city: City, demo_url: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    unknown = client.get(f"/api/units/{NO_SUCH}/kpi", headers=auth)
    assert unknown.status_code == 404
    for code in (city.b, city.b_child):
        before = _denials(demo_url, code)
        r = client.get(f"/api/units/{code}/kpi", headers=auth)
        TRIED["routes"].append(f"GET /api/units/{code}/kpi (token scoped to A) -> {r.status_code}")
        text = _text(r)
        _no_traceback(text)
        assert r.status_code == 404 and text == _text(unknown).replace(NO_SUCH, code)
        assert not city.leaks(text.replace(f"'{code}'", ""))
        assert _denials(demo_url, code) == before + 1
    with store.engine(demo_url).connect() as conn:
        kind = conn.execute(sa.text("SELECT actor_kind FROM audit_log WHERE action = 'scope_denied' "
                                    "ORDER BY id DESC LIMIT 1")).scalar()
    assert kind == "api"
    ok = client.get(f"/api/units/{city.a}/kpi", headers=auth)
    TRIED["routes"].append(f"GET /api/units/{city.a}/kpi -> {ok.status_code}")
    assert ok.status_code == 200 and ok.get_json()["unit"]["code"] == city.a


def test_a_scoped_api_token_reads_only_a(app, city, demo_url):
    with store.engine(demo_url).begin() as conn:
        token = tokens.create(conn, f"scoped-{city.a}-lib", "read", city.a)
    _api_checks(app.server.test_client(), token, city, demo_url)


def test_a_token_made_with_the_cli_scope_reads_only_a(app, city, demo_url):
    token = _api_token_cli(demo_url, f"scoped-{city.a}-cli", city.a)
    _api_checks(app.server.test_client(), token, city, demo_url)


def test_denials_are_recorded_and_unknown_codes_are_not(app, officer, city, demo_url):
    key = next(k for k in app.callback_map if "unit-name.children" in k)
    for code, expected in ((city.b, 1), (city.b_leaf, 1), (NO_SUCH, 0), (city.a, 0)):
        before_all, before = _denials(demo_url), _denials(demo_url, code)
        r = _post(officer, forge(app, key, foreign_values(city, code, NO_EVENT, None)))
        assert r.status_code == 200
        assert _denials(demo_url, code) - before == expected, code
        assert _denials(demo_url) - before_all == expected, code
    with store.engine(demo_url).connect() as conn:
        row = conn.execute(sa.text("SELECT actor, actor_kind, outcome, address, detail FROM audit_log "
                                   "WHERE action = 'scope_denied' AND unit_code = :c ORDER BY id DESC LIMIT 1"),
                           {"c": city.b_leaf}).one()
    assert row.actor.startswith("test-officer") and row.actor_kind == "user" and row.outcome == "denied"
    assert row.address == "127.0.0.1" and row.detail.get("path") == "/_dash-update-component"


LIVE_PATHS = ("cockpit-heat-full.data", "..kpi-volume.children@", "..warnings-list.children", "..wall-volume.children")


def test_live_paths_record_denials_too(app, officer, city, demo_url):
    missing = []
    for piece in LIVE_PATHS:
        key = next(k for k in app.callback_map if k.startswith(piece) or piece in k)
        before = _denials(demo_url, city.b)
        body = forge(app, key, foreign_values(city, city.b, city.b_event, city.b_warning))
        for item in body.get("inputs", []):  # the heat layer asks nothing while it is switched off
            if isinstance(item, dict) and str(item.get("id", "")).endswith("heat-window"):
                item["value"] = "24h"
        _post(officer, body)
        if _denials(demo_url, city.b) == before:
            missing.append(key[:60])
    assert not missing, missing


def _write_artifact() -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    parts = ["# scope leaks: an officer of district A asking for district B (tests/test_scope_leaks.py)", ""]
    for section in ("routes", "callbacks", "skipped"):
        parts.append(f"## {section}")
        parts.extend(TRIED[section] or ["(none yet)"])
        parts.append("")
    ARTIFACT.write_text("\n".join(parts), encoding="utf-8")


@pytest.fixture(scope="module", autouse=True)
def _artifact_at_the_end():
    yield
    _write_artifact()


def test_the_leak_check_sees_b_when_b_may_be_seen(app, city):
    """Asked by someone who sees the whole city, the same forged requests about B do show B's
    names and codes: the checks above would catch a leak."""
    chief = signed_in_client(app, "officer", None)
    keys, _ = _plan(app)
    caught = {}
    for key in keys:
        piece = next((p for p in ("unit-name.children", "wall-volume.children", "rank-grid.rowData",
                                  "warnings-list.children") if p in key), None)
        if piece is None:
            continue
        r = _post(chief, forge(app, key, foreign_values(city, city.b, city.b_event, city.b_warning)))
        caught[piece] = city.leaks(_text(r))
    assert caught["unit-name.children"] and caught["wall-volume.children"] and caught["rank-grid.rowData"], caught


def _heat_sum(app, client, unit) -> tuple[int, int]:
    key = next(k for k in app.callback_map if k.startswith("..cockpit-heat-full.data"))
    values = {"cockpit-heat-window": "24h", "cockpit-replay-slider": 0, "cockpit-heat-unit": unit,
              "cockpit-heat-refresh": 1, "lang": "zh"}
    r = _post(client, forge(app, key, lambda cid, prop: values.get(cid)))
    assert r.status_code == 200, _text(r)[:300]
    points = r.get_json()["response"]["cockpit-heat-full"]["data"]["points"]
    return sum(p[2] for p in points), len(points)


def test_the_heat_of_a_counts_only_a_events(app, officer, city, demo_url):
    """The heat is binned over A's bounding box, which also covers parts of its neighbours: the
    officer's heat may count A's events only, never B's events that lie inside A's box."""
    total, cells = _heat_sum(app, officer, None)
    with store.engine(demo_url).connect() as conn:
        count = lambda anc: conn.execute(sa.text(  # noqa: E731
            "SELECT count(*) FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id "
            "WHERE c.ancestor_id = :a AND e.reported_at >= now() - interval '24 hours' - interval '2 minutes' "
            "AND e.location IS NOT NULL AND NOT e.location_approximate "
            "AND e.location && (SELECT ST_Extent(u.geom)::geometry FROM units u WHERE u.id = :box)"),
            {"a": anc, "box": city.a_id}).scalar()
        own, foreign = count(city.a_id), count(city.b_id)
    TRIED["routes"].append(f"callback heat 24h for A: weight {total} in {cells} cells; A's events {own}, "
                           f"B's events inside A's box {foreign}")
    assert own > 0 and total > 0
    assert total <= own, f"heat weight {total} > A's own events {own} (B's events inside A's box: {foreign})"


# --- warnings: none in the demo, so a small city of its own ----------------------------------------

def _warn(conn, kind: str, unit: str, observed: int, units: list[str] | None = None) -> int:
    ids = [conn.execute(sa.text("SELECT id FROM units WHERE code = :c"), {"c": c}).scalar() for c in units or []]
    detail = json.dumps({"units": ids} if ids else {})
    return conn.execute(sa.text("""
        INSERT INTO warnings (kind, unit_id, "window", window_start, window_end, observed, expected, p_value,
                              detail, key, first_seen, last_seen)
        VALUES (:k, (SELECT id FROM units WHERE code = :u), '24h', now() - interval '1 day', now(), :o, 2.0, 0.001,
                CAST(:d AS jsonb), :key, now(), now()) RETURNING id"""),
        {"k": kind, "u": unit, "o": observed, "d": detail, "key": f"{kind}:{unit}"}).scalar()


def test_warnings_of_another_district_stay_there(empty_url, use_store, databases):
    from conftest import FOUR_GRIDS, box_city
    from cockpit.callbacks.app import create_app
    from cockpit.layouts.warnings import item_id

    box_city(empty_url, FOUR_GRIDS)
    with store.engine(empty_url).begin() as conn:
        own = _warn(conn, "surge", "G11", 31)
        foreign = _warn(conn, "surge", "G21", 47)
        cluster = _warn(conn, "cluster", "G12", 58, ["G12", "G22"])  # its top unit is D1's, a member is D2's
    use_store(empty_url)
    app = create_app()
    officer = signed_in_client(app, "officer", "D1")
    secrets = ("东区", "G21", "G22", '"D2"')
    refresh = next(k for k in app.callback_map if k.startswith("..warnings-list.children"))

    def panel(unit):
        view = {"unit": unit, "level": "district", "leaf": False, "first": "2026-01-01", "last": "2026-12-31"}
        return _post(officer, forge(app, refresh, lambda cid, prop: view if cid == "view" else None))

    r = panel("D1")
    text = _text(r)
    TRIED["routes"].append(f"callback warnings panel view=D1 (own city) -> {r.status_code}")
    assert r.status_code == 200 and "西区第1网格" in text, text[:300]
    assert not [s for s in secrets if s in text], [s for s in secrets if s in text]
    shown = r.get_json()["response"]
    assert sorted(f["properties"]["code"] for f in shown["warning-outlines"]["data"]["features"]) == ["G11", "G12"]
    for unit in ("D2", "G21"):
        rb, rn = panel(unit), panel(NO_SUCH)
        TRIED["routes"].append(f"callback warnings panel view={unit} -> {rb.status_code}")
        assert (rb.status_code, _text(rb)) == (rn.status_code, _text(rn).replace(NO_SUCH, unit))
        assert not [s for s in secrets if s in _text(rb)]
    # the wall's list (the officer's own subtree)
    wall = next(k for k in app.callback_map if k.startswith("..wall-warnings.children"))
    r = _post(officer, forge(app, wall, lambda cid, prop: None))
    TRIED["routes"].append(f"callback wall warnings -> {r.status_code}")
    assert r.status_code == 200 and "西区第1网格" in _text(r) and not [s for s in secrets if s in _text(r)]
    # opening another district's warning (the pattern-matching callback, with a concrete id)
    opener = next(k for k in app.callback_map if k.startswith("..warning-open.data"))

    def open_one(wid):
        body = {"output": opener, "outputs": _outputs(opener),
                "inputs": [[{"id": item_id(wid), "property": "n_clicks", "value": 1}]],
                "state": [{"id": "lang", "property": "data", "value": "en"}],
                "changedPropIds": [json.dumps(item_id(wid), separators=(",", ":"), sort_keys=True) + ".n_clicks"]}
        return _post(officer, body)

    mine = open_one(own)
    assert mine.status_code == 200 and "西区第1网格" in _text(mine), _text(mine)[:300]
    rb, rn = open_one(foreign), open_one(NO_WARNING)
    TRIED["routes"].append(f"callback open warning of D2 (pattern-matching id, concrete) -> {rb.status_code}")
    assert (rb.status_code, _text(rb)) == (rn.status_code, _text(rn).replace(str(NO_WARNING), str(foreign)))
    assert not [s for s in secrets if s in _text(rb)]
    # the cluster reaching into D2: its events and chart are D1's only
    r = open_one(cluster)
    assert r.status_code == 200 and not [s for s in secrets if s in _text(r)]
    # acknowledging another district's warning: refused like an unknown one, nothing changed
    ack = next(k for k in app.callback_map if k.startswith("..ack-status.children"))

    def acknowledge(wid):
        values = {"ack-button": 1, "warning-open": {"id": wid, "unit": "G21", "kind": "surge"}, "ack-who": "x",
                  "ack-note": "seen", "lang": "en"}
        return _post(officer, forge(app, ack, lambda cid, prop: values.get(cid)))
    rb, rn = acknowledge(foreign), acknowledge(NO_WARNING)
    TRIED["routes"].append(f"callback acknowledge warning of D2 -> {rb.status_code}")
    assert (rb.status_code, _text(rb)) == (rn.status_code, _text(rn).replace(str(NO_WARNING), str(foreign)))
    with store.engine(empty_url).connect() as conn:
        assert conn.execute(sa.text("SELECT state FROM warnings WHERE id = :i"), {"i": foreign}).scalar() == "new"


def test_shared_answers_are_per_scope_and_never_hide_a_denial(app, city, demo_url):
    """The drill-down's answer is shared between officers of one scope (the same bytes), a
    foreign unit's denial is on the record every time it is asked (never answered from the
    cache), and an officer of another scope never gets A's shared answer."""
    render = next(k for k, v in app.callback_map.items()
                  if "view.data" in k and v["inputs"][0]["id"] == "query")
    body = forge(app, render, lambda cid, prop: {"query": f"unit={city.a}&period=30d", "lang": "en"}.get(cid))
    one, two = signed_in_client(app, "officer", city.a), signed_in_client(app, "officer", city.a)
    first, second = _post(one, body), _post(two, body)
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    foreign = signed_in_client(app, "officer", city.b)
    other = _post(foreign, body)
    assert other.status_code == 200 and other.get_data() != first.get_data()  # B's officer: no such unit
    b_body = forge(app, render, lambda cid, prop: {"query": f"unit={city.b}&period=30d", "lang": "en"}.get(cid))
    before = _denials(demo_url, city.b)
    assert _post(one, b_body).get_data() == _post(two, b_body).get_data()
    assert _denials(demo_url, city.b) - before == 2
