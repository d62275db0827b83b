"""The HTTP API: bearer tokens made by the CLI, and the KPI JSON other systems read."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cockpit import store
from conftest import run_cli


@pytest.fixture
def api(databases, use_store):
    """A store with a small city, a token, and a test client of the app on it."""
    url = databases.create("api")
    from cockpit.demo.load import load_demo

    load_demo(store.engine(url), seed=3, grids=40, events=3000, days=20, progress=lambda _: None)
    use_store(url)
    made = run_cli("api-token", "create", "城管系统", url=url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    from cockpit.callbacks.app import create_app

    return url, token, create_app().server.test_client()


def test_kpi_json_is_what_the_cli_prints(api):
    url, token, client = api
    auth = {"Authorization": f"Bearer {token}"}
    for query, flags in (("", []), ("?from=2026-11-20&to=2026-11-30", ["--from", "2026-11-20", "--to", "2026-11-30"])):
        r = client.get(f"/api/units/440300/kpi{query}", headers=auth)
        assert r.status_code == 200, r.get_data(as_text=True)
        cli = run_cli("kpi", "--unit", "440300", "--json", *flags, url=url)
        assert r.get_json() == json.loads(cli.stdout)
    assert r.get_json()["volume"] > 0


def test_no_unknown_or_revoked_token_is_401(api):
    url, token, client = api
    for headers in ({}, {"Authorization": "Bearer ck_nope"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": token}):
        r = client.get("/api/units/440300/kpi", headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in r.get_json()["error"]
    assert run_cli("api-token", "revoke", "城管系统", url=url).returncode == 0
    r = client.get("/api/units/440300/kpi", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401  # at once, on every worker: the check reads the store
    listed = run_cli("api-token", "list", url=url).stdout
    assert "城管系统" in listed and "revoked" in listed


def test_bad_input_is_one_json_line(api):
    _, token, client = api
    auth = {"Authorization": f"Bearer {token}"}
    missing = client.get("/api/units/NOPE/kpi", headers=auth)
    assert missing.status_code == 404 and missing.get_json() == {"error": "no unit with code 'NOPE'"}
    assert client.get("/api/units/44%00/kpi", headers=auth).status_code == 404  # NUL: unknown, not a 5xx
    for query in ("?from=yesterday", "?from=0001-01-01", "?to=9999-12-31", "?from=2026-11-30&to=2026-11-01"):
        r = client.get(f"/api/units/440300/kpi{query}", headers=auth)
        assert r.status_code == 400, query
        assert list(r.get_json()) == ["error"] and "\n" not in r.get_json()["error"]


def test_only_a_hash_is_kept_and_names_are_unique(api):
    url, token, _ = api
    with store.engine(url).connect() as conn:
        kept = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert len(kept) == 1 and token not in kept[0] and len(kept[0]) == 64
    again = run_cli("api-token", "create", "城管系统", url=url)
    assert again.returncode == 2 and again.stderr.startswith("cockpit: ") and "exists" in again.stderr
    nameless = run_cli("api-token", "create", url=url)
    assert nameless.returncode == 2 and "name" in nameless.stderr
