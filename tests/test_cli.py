"""The `cockpit` command, run as a user runs it: a subprocess, reading its output and exit code."""
from __future__ import annotations

import json
import shutil

import psycopg
import pytest
from sqlalchemy.engine import make_url

from cockpit import store
from cockpit.config import settings
from cockpit.metrics.kpi import Period, unit_kpi
from cockpit.store.cluster import ManagedCluster
from conftest import run_cli


def assert_one_line_error(r, *fragments: str) -> None:
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and lines[0].startswith("cockpit: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for command in ("db", "migrate", "demo", "serve", "kpi", "rollup", "simulate"):
        assert command in r.stdout
    db = run_cli("db", "--help")
    assert all(a in db.stdout for a in ("up", "down", "status", "url"))


def test_kpi_json_matches_the_module(demo_url, demo_engine):
    city = run_cli("kpi", "--unit", "440300", "--json", url=demo_url)
    assert city.returncode == 0, city.stderr
    got = json.loads(city.stdout)
    with demo_engine.connect() as conn:
        expected = unit_kpi(conn, "440300", Period.parse(None, None, settings().timezone))
    assert got == expected
    assert got["volume"] > 0 and 0 < got["closure_rate"] <= 1
    assert set(got) >= {"volume", "closed", "closure_rate", "closed_on_time", "on_time_rate", "rated",
                        "satisfied", "satisfaction_rate"}


def test_kpi_with_period_and_text_output(demo_url):
    r = run_cli("kpi", "--unit", "440300", "--from", "2001-01-01", "--to", "2001-01-31", "--json", url=demo_url)
    got = json.loads(r.stdout)
    assert got["period"]["from"] == "2001-01-01" and got["period"]["to"] == "2001-01-31"
    assert got["volume"] == 0 and got["closure_rate"] is None and got["satisfaction_rate"] is None
    text = run_cli("kpi", "--unit", "440300", url=demo_url)
    assert text.returncode == 0 and "closure rate" in text.stdout and "%" in text.stdout


def test_db_url_prints_the_store_in_use(demo_url):
    r = run_cli("db", "url", url=demo_url)
    assert r.returncode == 0 and r.stdout.strip() == demo_url
    with psycopg.connect(r.stdout.strip()) as conn:  # what `psql "$(cockpit db url)"` does
        assert conn.execute("SELECT count(*) FROM units").fetchone()[0] > 0


@pytest.mark.parametrize("url, fragment", [
    ("postgresql://nobody@127.0.0.1:1/nowhere", "127.0.0.1:1/nowhere"),
    ("mysql://root@127.0.0.1/x", "PostgreSQL"),
    ("not a url at all", "not a database URL"),
])
def test_bad_database_url_is_one_line(url, fragment):
    for args in (("kpi", "--unit", "440300"), ("migrate",), ("demo",)):
        assert_one_line_error(run_cli(*args, url=url), fragment)


def test_unknown_database_on_a_live_server_is_one_line(server_url):
    url = make_url(server_url).set(database="no_such_db_here").render_as_string(hide_password=False)
    assert_one_line_error(run_cli("kpi", "--unit", "440300", url=url), "no_such_db_here")


def test_stopped_server_is_one_line(tmp_path):
    cluster = ManagedCluster(tmp_path / "state")
    url = cluster.up()
    try:
        assert run_cli("migrate", url=url).returncode == 0
    finally:
        cluster.down()
    try:
        assert cluster.status() == "stopped"
        for args in (("kpi", "--unit", "440300"), ("migrate",), ("serve", "--port", "18099")):
            assert_one_line_error(run_cli(*args, url=url), f"127.0.0.1:{cluster.port}", "refused")
        status = run_cli("db", "status", env={"COCKPIT_STATE_DIR": str(tmp_path / "state"),
                                               "COCKPIT_DATABASE_URL": ""})
        assert status.returncode == 3 and status.stdout.startswith("stopped")
    finally:
        shutil.rmtree(cluster.base, ignore_errors=True)


def test_database_without_postgis_is_one_line(databases):
    url = databases.create("nopostgis", migrated=False)
    assert_one_line_error(run_cli("kpi", "--unit", "440300", url=url), "PostGIS", "cockpit migrate")


def test_user_mistakes_are_one_line(demo_url):
    assert_one_line_error(run_cli("kpi", "--unit", "NOPE", url=demo_url), "no unit with code 'NOPE'")
    assert_one_line_error(run_cli("kpi", "--unit", "440300", "--from", "yesterday", url=demo_url), "not a date")
    assert_one_line_error(run_cli("demo", "--events", "10", url=demo_url), "--replace")
    assert_one_line_error(run_cli("demo", "--grids", "3", "--replace", url=demo_url), "--grids")
    assert_one_line_error(run_cli("simulate", "--rate", "0", url=demo_url), "--rate")
    bad_tz = run_cli("kpi", "--unit", "440300", url=demo_url, env={"COCKPIT_TIMEZONE": "Mars/Olympus"})
    assert_one_line_error(bad_tz, "COCKPIT_TIMEZONE")


def test_demo_if_empty_and_migrate_are_idempotent(empty_url):
    r = run_cli("demo", "--grids", "20", "--events", "500", "--days", "5", "--if-empty", url=empty_url)
    assert r.returncode == 0, r.stderr
    assert "500 events" in r.stdout
    again = run_cli("demo", "--if-empty", url=empty_url)
    assert again.returncode == 0 and "already holds events" in again.stdout
    migrate = run_cli("migrate", url=empty_url)
    from cockpit.store.migrate import head

    assert migrate.returncode == 0 and f"revision {head()} " in migrate.stdout
    with store.engine(empty_url).connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 500


def test_an_unfinished_bulk_load_is_refused_in_one_line(empty_url):
    import sqlalchemy as sa

    with store.engine(empty_url).begin() as conn:
        conn.execute(sa.text("INSERT INTO cockpit_state (key, value) VALUES ('bulk_load', 'keys and indexes are being rebuilt')"))
    assert_one_line_error(run_cli("kpi", "--unit", "440300", url=empty_url), "did not finish", "--replace")
    reload = run_cli("demo", "--grids", "20", "--events", "300", "--days", "3", "--replace", url=empty_url)
    assert reload.returncode == 0, reload.stderr
    assert run_cli("kpi", "--unit", "440300", "--json", url=empty_url).returncode == 0
