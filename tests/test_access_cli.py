"""`cockpit user|wall-token|api-token|audit` as an administrator runs them: real subprocesses on a
throwaway store, their output, exit codes and the audit rows each act leaves (read as the owner)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.access import users, walltokens
from conftest import FOUR_GRIDS, box_city, run_cli


@pytest.fixture
def city(databases) -> str:
    url = databases.create("access_cli")
    box_city(url, FOUR_GRIDS)
    return url


def cli(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """run_cli with a given stdin (never the terminal pytest may have been started from)."""
    return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True,
                          input=stdin if stdin is not None else "", timeout=300,
                          env={**os.environ, "COCKPIT_DATABASE_URL": url})


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def refused(r: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user's mistake: exit 2, one line `cockpit: ...`, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("cockpit: "), r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def audit_rows(url: str, action: str | None = None) -> list:
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text(
            "SELECT actor, actor_kind, action, unit_code, outcome, detail FROM audit_log "
            "WHERE CAST(:a AS text) IS NULL OR action = :a ORDER BY id"), {"a": action}).all()


def one_row(url: str, sql: str, **params):
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text(sql), params).one()


def token_of(out: str, base: str = "http://127.0.0.1:8050") -> str:
    m = re.search(re.escape(base) + r"/\?token=([A-Za-z0-9_-]+)\s*$", out)
    assert m, out
    return m.group(1)


def test_user_add_prints_a_working_one_time_link_and_is_audited(city):
    out = ok(cli("user", "add", "wang", "--role", "officer", "--scope", "D1", url=city))
    assert "officer" in out and "D1" in out
    token = token_of(out)
    row = one_row(city, "SELECT role, scope_code, password_hash FROM users WHERE name = 'wang'")
    assert tuple(row) == ("officer", "D1", None)
    with store.engine(city).begin() as conn:
        person = users.redeem_link(conn, token, "10.0.0.9")
    assert (person.name, person.role, person.scope_code) == ("wang", "officer", "D1")
    (add,) = audit_rows(city, "user_add")
    assert (add.actor, add.actor_kind, add.unit_code, add.outcome) == ("cli", "cli", "D1", "ok")
    assert add.detail == {"user": "wang", "role": "officer", "password": False}


@pytest.mark.parametrize("scope", [None, "*"])
def test_user_without_scope_or_star_sees_the_whole_city(city, scope):
    args = ("user", "add", "li", "--role", "leader", "--base-url", "https://cockpit.example.org/")
    out = ok(cli(*args, *(("--scope", scope) if scope else ()), url=city))
    assert "whole city" in out
    token_of(out, "https://cockpit.example.org")
    assert one_row(city, "SELECT scope_code FROM users WHERE name = 'li'")[0] is None
    assert audit_rows(city, "user_add")[0].unit_code is None


def test_user_add_with_password_stdin_signs_in_and_prints_no_link(city):
    out = ok(cli("user", "add", "zhao", "--role", "duty", "--password-stdin", url=city, stdin="correct horse\n"))
    assert "?token=" not in out
    with store.engine(city).begin() as conn:
        assert users.verify(conn, "zhao", "correct horse").role == "duty"
    assert audit_rows(city, "user_add")[0].detail["password"] is True


@pytest.mark.parametrize("args, stdin, fragment", [
    (("user", "add", "x", "--role", "boss"), None, "role"),
    (("user", "add", "x", "--role", "leader", "--scope", "NOPE"), None, "NOPE"),
    (("user", "add", "x", "--role", "leader", "--password-stdin"), "short\n", "8 characters"),
    (("user", "add", " ", "--role", "leader"), None, "name"),
    (("user", "disable", "nobody"), None, "nobody"),
    (("user", "passwd", "nobody", "--password-stdin"), "long enough\n", "nobody"),
    (("user", "link", "nobody"), None, "nobody"),
    (("user", "link", "x", "--base-url", "cockpit.example.org"), None, "--base-url"),
    (("wall-token", "create", "--name", "hall", "--scope", "NOPE"), None, "NOPE"),
    (("wall-token", "revoke", "nothing"), None, "nothing"),
    (("api-token", "create", "feed", "--scope", "NOPE"), None, "NOPE"),
    (("api-token", "create"), None, "a token needs a name"),
    (("api-token", "revoke"), None, "name"),
    (("api-token", "list", "--scope", "D1"), None, "--scope"),
    (("api-token", "revoke", "nothing"), None, "nothing"),
    (("audit", "--since", "last tuesday"), None, "--since"),
    (("audit", "--limit", "0"), None, "--limit"),
])
def test_bad_input_is_one_line_and_exit_2(city, args, stdin, fragment):
    refused(cli(*args, url=city, stdin=stdin), fragment)
    assert audit_rows(city) == []  # nothing done, nothing recorded


def test_duplicate_names_are_refused(city):
    ok(cli("user", "add", "wang", "--role", "leader", url=city))
    refused(cli("user", "add", "wang", "--role", "duty", url=city), "wang", "exists")
    ok(cli("wall-token", "create", "--name", "hall", url=city))
    refused(cli("wall-token", "create", "--name", "hall", url=city), "hall", "exists")
    ok(cli("api-token", "create", "feed", url=city))
    refused(cli("api-token", "create", "feed", url=city), "feed", "exists")
    assert [r.action for r in audit_rows(city)] == ["user_add", "wall_token_create", "api_token_create"]


def test_user_list_disable_passwd_link(city):
    ok(cli("user", "add", "wang", "--role", "officer", "--scope", "D2", url=city))
    ok(cli("user", "add", "chen", "--role", "admin", "--password-stdin", url=city, stdin="s3cret-pass\n"))
    text = ok(cli("user", "list", url=city)).splitlines()
    assert [ln.split("\t")[:4] for ln in text] == [["chen", "admin", "*", "active"],
                                                   ["wang", "officer", "D2", "active"]]
    listed = [json.loads(ln) for ln in ok(cli("user", "list", "--json", url=city)).splitlines()]
    assert [(u["name"], u["scope"], u["password"]) for u in listed] == [("chen", "*", True), ("wang", "D2", False)]

    ok(cli("user", "passwd", "wang", "--password-stdin", url=city, stdin="new password\n"))
    with store.engine(city).begin() as conn:
        assert users.verify(conn, "wang", "new password").scope_code == "D2"
    refused(cli("user", "passwd", "wang", "--password-stdin", url=city, stdin="tiny\n"), "8 characters")
    # no terminal to ask on and no --password-stdin: said in one line, nothing changed
    refused(cli("user", "passwd", "wang", url=city), "--password-stdin")

    old = token_of(ok(cli("user", "add", "liu", "--role", "leader", url=city)))
    new = token_of(ok(cli("user", "link", "liu", url=city)))
    assert old != new
    with store.engine(city).begin() as conn:
        with pytest.raises(Exception):
            users.redeem_link(conn, old)  # replaced by the new link
    with store.engine(city).begin() as conn:
        assert users.redeem_link(conn, new).name == "liu"

    ok(cli("user", "disable", "wang", url=city))
    refused(cli("user", "disable", "wang", url=city), "already disabled")
    refused(cli("user", "link", "wang", url=city), "disabled")
    assert ok(cli("user", "list", url=city)).splitlines()[2].split("\t")[:4] == ["wang", "officer", "D2", "disabled"]
    acts = [(r.action, r.detail.get("user")) for r in audit_rows(city) if r.action != "sign_in"]
    assert acts == [("user_add", "wang"), ("user_add", "chen"), ("user_passwd", "wang"), ("user_add", "liu"),
                    ("user_link", "liu"), ("user_disable", "wang")]


def test_wall_token_create_list_revoke(city):
    out = ok(cli("wall-token", "create", "--name", "lobby", "--scope", "D1", "--base-url", "https://c.example/",
                 url=city))
    m = re.search(r"https://c\.example/wall\?key=(wall_[A-Za-z0-9_-]+)\s*$", out)
    assert m, out
    with store.engine(city).connect() as conn:
        wall = walltokens.person_for(conn, m.group(1))
    assert (wall.name, wall.kind, wall.scope_code) == ("lobby", "wall", "D1")
    ok(cli("wall-token", "create", "--name", "hall", url=city))
    assert [ln.split("\t")[:2] for ln in ok(cli("wall-token", "list", url=city)).splitlines()] == \
        [["hall", "*"], ["lobby", "D1"]]
    ok(cli("wall-token", "revoke", "lobby", url=city))
    listed = {w["name"]: w for w in map(json.loads, ok(cli("wall-token", "list", "--json", url=city)).splitlines())}
    assert listed["lobby"]["revoked_at"] and listed["hall"]["revoked_at"] is None
    with store.engine(city).connect() as conn:
        assert walltokens.person_for(conn, m.group(1)) is None
    rows = audit_rows(city)
    assert [(r.action, r.unit_code, r.detail["name"]) for r in rows] == [
        ("wall_token_create", "D1", "lobby"), ("wall_token_create", None, "hall"), ("wall_token_revoke", None, "lobby")]
    assert "wall_" not in json.dumps([r.detail for r in rows])  # the token itself is never recorded


def test_api_token_scope(city):
    out = ok(cli("api-token", "create", "district-feed", "--scope", "D2", url=city))
    assert "scope D2" in out and "ck_" in out
    ok(cli("api-token", "create", "city-feed", "--write", url=city))
    lines = [ln.split("\t") for ln in ok(cli("api-token", "list", url=city)).splitlines()]
    assert [ln[:3] for ln in lines] == [["city-feed", "write", "*"], ["district-feed", "read", "D2"]]
    ok(cli("api-token", "revoke", "district-feed", url=city))
    assert "revoked" in ok(cli("api-token", "list", url=city)).splitlines()[1]
    assert [(r.action, r.unit_code, r.detail) for r in audit_rows(city)] == [
        ("api_token_create", "D2", {"name": "district-feed", "scope": "read"}),
        ("api_token_create", None, {"name": "city-feed", "scope": "write"}),
        ("api_token_revoke", None, {"name": "district-feed"})]


def test_audit_lists_newest_first_in_the_city_time_and_filters(city):
    ok(cli("user", "add", "wang", "--role", "leader", url=city))
    ok(cli("user", "add", "chen", "--role", "duty", url=city))
    with store.engine(city).begin() as conn:  # a failed sign-in from the web, an hour ago
        conn.execute(sa.text("INSERT INTO audit_log (at, actor, actor_kind, address, action, outcome) VALUES "
                             "(now() - interval '1 hour', 'wang', 'user', '10.1.2.3', 'sign_in', 'failed'), "
                             "(now() - interval '3 days', 'old', 'user', '10.1.2.4', 'sign_in', 'failed')"))
    lines = ok(cli("audit", url=city)).splitlines()
    assert len(lines) == 4
    assert "user_add" in lines[0] and '"chen"' in lines[0] and "user_add" in lines[1]
    assert "user:wang  10.1.2.3  sign_in  failed" in lines[2] and "user:old" in lines[3]
    tz = ZoneInfo(os.environ.get("COCKPIT_TIMEZONE", "Asia/Shanghai"))
    with store.engine(city).connect() as conn:
        newest = conn.execute(sa.text("SELECT max(at) FROM audit_log")).scalar()
    assert lines[0].startswith(newest.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"))

    rows = [json.loads(ln) for ln in ok(cli("audit", "--json", url=city)).splitlines()]
    assert [r["action"] for r in rows] == ["user_add", "user_add", "sign_in", "sign_in"]
    at = datetime.fromisoformat(rows[0]["at"])
    assert at.utcoffset() == newest.astimezone(tz).utcoffset()
    assert rows[0]["detail"] == {"user": "chen", "role": "duty", "password": False}

    assert len(ok(cli("audit", "--limit", "1", url=city)).splitlines()) == 1
    only = [json.loads(ln) for ln in ok(cli("audit", "--json", "--action", "sign_in", url=city)).splitlines()]
    assert [r["actor"] for r in only] == ["wang", "old"]
    assert [json.loads(ln)["actor"] for ln in ok(cli("audit", "--json", "--user", "old", url=city)).splitlines()] \
        == ["old"]
    day = (datetime.now(tz) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert "old" not in ok(cli("audit", "--since", day, url=city))
    since = (datetime.now(tz) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")  # local time, no offset
    assert [json.loads(ln)["action"] for ln in ok(cli("audit", "--json", "--since", since, url=city)).splitlines()] \
        == ["user_add", "user_add"]
    r = cli("audit", "--user", "nobody", url=city)
    assert r.returncode == 0 and r.stdout == "" and "nothing" in r.stderr


def test_imports_are_audited(city, tmp_path):
    with store.engine(city).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name, deadline_hours) VALUES ('SR01', '暴露垃圾', 24)"))
    # units: one more district (re-importing the same city by code)
    gj = tmp_path / "districts.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": code, "name": name, "parent_code": "C"},
         "geometry": {"type": "Polygon", "coordinates": [[[x0, 50], [x0 + 1, 50], [x0 + 1, 52], [x0, 52], [x0, 50]]]}}
        for code, name, x0 in (("D1", "西区", 10), ("D2", "东区", 11))]}), encoding="utf-8")
    ok(cli("import-units", "--level", "district", str(gj), url=city))
    (units_row,) = audit_rows(city, "import_units")
    assert units_row.outcome == "ok" and units_row.detail["files"] == ["districts.geojson"]
    assert units_row.detail["units"] == units_row.detail["units_before"] == 7

    # events: one loads, one is quarantined (unmapped status), then retried with the status mapped
    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\nexternal_id = "id"\ncategory = "cat"\nreported_at = "at"\nstatus = "st"\n'
                       'lon = "x"\nlat = "y"\n[options]\nsource = "hotline_12345"\n', encoding="utf-8")
    path = tmp_path / "工单.csv"
    pd.DataFrame([{"id": "A1", "cat": "SR01", "at": "2026-03-05T10:00:00+08:00", "st": "handling", "x": 10.5, "y": 50.5},
                  {"id": "A2", "cat": "SR01", "at": "2026-03-06T10:00:00+08:00", "st": "挂起", "x": 11.5, "y": 50.5}]
                 ).to_csv(path, index=False)
    out = json.loads(ok(cli("import-events", str(path), "--mapping", str(mapping), "--json", url=city)))
    (ev,) = audit_rows(city, "import_events")
    assert ev.outcome == "ok" and ev.detail == {
        "file": "工单.csv", "import_id": out["import_id"], "read": 2, "inserted": 1, "updated": 0, "unchanged": 0,
        "quarantined": 1}
    ok(cli("quarantine", "retry", "--mapping", str(mapping), "--value", "status:挂起=handling", url=city))
    (retry,) = audit_rows(city, "quarantine_retry")
    assert retry.outcome == "ok" and retry.detail["left"] == 1 and retry.detail["kept"] == 0
    assert retry.detail["imports"][0]["inserted"] == 1
    assert all(r.actor == "cli" and r.actor_kind == "cli" for r in audit_rows(city))


def test_help_names_the_new_commands():
    out = ok(run_cli("--help"))
    for command in ("user", "wall-token", "audit", "api-token"):
        assert command in out
    assert all(a in ok(run_cli("user", "--help")) for a in ("add", "list", "disable", "passwd", "link"))
