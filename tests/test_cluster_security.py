"""The managed cluster is not an open superuser: passwords for every connection, a read-only
role for the web app, and clusters made the old way (trust auth) secured in place."""
from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timezone

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors

from cockpit import store
from cockpit.config import settings
from cockpit.demo.load import load_demo
from cockpit.metrics.kpi import Period, unit_kpi
from cockpit.store import migrate
from cockpit.ports import free_port
from cockpit.store.cluster import FIRST_PORT, HBA, ManagedCluster, find_bin_dir
from conftest import run_cli
from cockpit.access import scope
from cockpit.access.people import Person


@pytest.fixture(autouse=True)
def no_stored_passwords(monkeypatch):
    """Only the passwords a test gives: none from the environment or a ~/.pgpass."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)


def _drop(cluster: ManagedCluster) -> None:
    store.forget_engines()
    cluster.down()
    shutil.rmtree(cluster.base, ignore_errors=True)
    shutil.rmtree(cluster.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A secured cluster of this module's own, its `cockpit` database migrated with a small demo."""
    c = ManagedCluster(tmp_path_factory.mktemp("secure") / "state")
    url = c.up()
    migrate.upgrade(store.engine(url))
    load_demo(store.engine(url), seed=3, grids=20, events=500, days=5, now=datetime.now(timezone.utc),
              progress=lambda _: None)
    yield c
    _drop(c)


def _connect(cluster: ManagedCluster, user: str, password: str | None = None, socket: bool = False):
    kwargs = {"password": password} if password is not None else {}
    return psycopg.connect(host=str(cluster.run) if socket else "127.0.0.1", port=cluster.port, user=user,
                           dbname="cockpit", connect_timeout=5, autocommit=True, **kwargs)


def _assert_refused(cluster: ManagedCluster, user: str, password: str | None = None) -> None:
    for socket in (False, True):
        with pytest.raises(psycopg.OperationalError, match="password"):
            _connect(cluster, user, password, socket=socket).close()


def test_no_password_or_a_wrong_one_is_refused(cluster):
    for user in ("cockpit", "cockpit_app", "postgres"):
        _assert_refused(cluster, user)
        _assert_refused(cluster, user, "not-the-password")
    with psycopg.connect(cluster.url("owner")) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "cockpit"
        rules = conn.execute("SELECT type, address, auth_method FROM pg_hba_file_rules").fetchall()
    assert rules == [("local", None, "scram-sha-256"), ("host", "127.0.0.1", "scram-sha-256")]
    assert (cluster.data / "pg_hba.conf").read_text() == HBA


def test_the_password_files_are_this_users_alone(cluster):
    for role in ("owner", "app", "writer"):
        info = cluster.secret_path(role).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
        assert cluster.secret_path(role).parent == cluster.state_dir
    assert len({cluster.secret(role) for role in ("owner", "app", "writer")}) == 3
    assert cluster.url("app").startswith("postgresql://cockpit_app:")
    assert cluster.url("writer").startswith("postgresql://cockpit_writer:")


def test_the_app_role_reads_and_nothing_more(cluster):
    with _connect(cluster, "cockpit_app", cluster.secret("app")) as conn:
        assert conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user").fetchone() == (False, False, False)
        owns = conn.execute("""
            SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
                 + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)
                 + (SELECT count(*) FROM pg_database WHERE datdba = r.oid)
                 + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
            FROM pg_roles r WHERE r.rolname = current_user""").fetchone()[0]
        assert owns == 0
        # row-level security: no scope set, no rows; the whole city's scope, every row
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
        conn.execute("SELECT set_config('cockpit.scope_unit', '*', false)")
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 500
        with pytest.raises(errors.InsufficientPrivilege):  # personal data: not even with every row
            conn.execute("SELECT reporter_phone FROM events")
        conn.rollback()
        for sql, error in [
            ("COPY (SELECT 1) TO PROGRAM 'true'", errors.InsufficientPrivilege),
            ("CREATE TABLE public.intruder (x int)", errors.InsufficientPrivilege),
            ("CREATE DATABASE intruder", errors.InsufficientPrivilege),
            ("DELETE FROM events", errors.InsufficientPrivilege),
            ("CREATE ROLE intruder", errors.InsufficientPrivilege),
        ]:
            with pytest.raises(error):
                conn.execute(sql)


def test_the_writer_stores_events_and_nothing_more(cluster):
    with _connect(cluster, "cockpit_writer", cluster.secret("writer")) as conn:
        assert conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user").fetchone() == (False, False, False)
        conn.execute("SELECT set_config('cockpit.scope_unit', '*', false)")  # as its engine connects
        # what the importer and the triggers of events do, as this role (rolled back)
        with conn.transaction(force_rollback=True):
            made = conn.execute("""
                INSERT INTO events (source, external_id, category_id, reported_at, location)
                SELECT 'grid_app', 'W-1', c.id, now(), ST_PointOnSurface(g.geom)
                FROM categories c, (SELECT geom FROM units WHERE level = 'grid' LIMIT 1) g LIMIT 1
                RETURNING id, grid_id""").fetchone()
            assert made[1] is not None
            conn.execute("UPDATE events SET status = 'closed', closed_at = now() WHERE id = %s", (made[0],))
            conn.execute("INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at) "
                         "SELECT id, reported_at, 'reported', 'closed', now() FROM events WHERE id = %s", (made[0],))
            conn.execute("INSERT INTO categories (code, name) VALUES ('w', 'w')")
            conn.execute("CREATE TEMP TABLE stage (x int)")  # the importer stages its rows so
            conn.execute("UPDATE warnings SET state = 'acknowledged'")  # a duty officer's acknowledgement
        for sql in ("UPDATE units SET name = 'x'", "INSERT INTO units (code, name, level) VALUES ('x', 'x', 'grid')",
                    "CREATE TABLE public.intruder (x int)", "SELECT * FROM api_tokens",
                    "UPDATE api_tokens SET revoked_at = NULL", "DELETE FROM events", "TRUNCATE events",
                    "ALTER TABLE events ADD COLUMN x int", "DROP TABLE kpi_rollup", "CREATE ROLE intruder",
                    "COPY (SELECT 1) TO PROGRAM 'true'", "DELETE FROM warnings",
                    "INSERT INTO warnings (kind, unit_id, \"window\", window_start, window_end, observed, key, "
                    "first_seen, last_seen) SELECT 'surge', id, '24h', now(), now(), 1, 'k', now(), now() FROM units",
                    "INSERT INTO planted_anomalies (kind, unit_id, start, \"end\", size) "
                    "SELECT 'surge', id, now(), now(), 1 FROM units"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql)


def test_the_web_app_uses_the_app_role(cluster, monkeypatch):
    monkeypatch.setenv("COCKPIT_STATE_DIR", str(cluster.state_dir))
    monkeypatch.delenv("COCKPIT_DATABASE_URL", raising=False)
    assert store.database_url() == cluster.url("owner")
    assert store.app_database_url() == cluster.url("app")
    eng = store.engine(store.app_database_url())
    store.check(eng)  # what `cockpit serve` checks first
    from cockpit import context

    web = context.for_web()  # what every worker of `cockpit serve` builds
    assert web.url == cluster.url("app") and web.writer_url == cluster.url("writer")
    with web.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == "cockpit_app"
    with store.connect(eng) as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == "cockpit_app"
        scope.apply(conn, Person("leader", "user", "leader"))  # what each request does first
        assert unit_kpi(conn, "440300", Period.parse(None, None, settings().timezone))["volume"] > 0
    # an operator's store: the one URL they give, for the app too
    monkeypatch.setenv("COCKPIT_DATABASE_URL", "postgresql://someone@db.example:5432/city")
    assert store.app_database_url() == store.database_url() == "postgresql://someone@db.example:5432/city"
    monkeypatch.setenv("COCKPIT_APP_DATABASE_URL", "postgresql://reader@db.example:5432/city")
    assert store.app_database_url() == "postgresql://reader@db.example:5432/city"  # what serve needs there
    assert store.writer_database_url() is None  # writing through the API is then off ...
    monkeypatch.setenv("COCKPIT_WRITER_DATABASE_URL", "postgresql://writer@db.example:5432/city")
    assert store.writer_database_url() == "postgresql://writer@db.example:5432/city"  # ... unless given


def test_db_url_prints_the_owner_or_the_app(cluster):
    env = {"COCKPIT_STATE_DIR": str(cluster.state_dir), "COCKPIT_DATABASE_URL": ""}
    owner, app = run_cli("db", "url", env=env), run_cli("db", "url", "--app", env=env)
    assert owner.returncode == app.returncode == 0
    assert (owner.stdout.strip(), app.stdout.strip()) == (cluster.url("owner"), cluster.url("app"))
    up = run_cli("db", "up", env=env)
    assert up.returncode == 0 and cluster.secret("owner") not in up.stdout + up.stderr


def _old_trust_cluster(state_dir) -> ManagedCluster:
    """A cluster made the way `cockpit db up` made them before passwords, and running."""
    c = ManagedCluster(state_dir)
    bin_dir = find_bin_dir()
    for d in (c.data, c.run):
        d.mkdir(parents=True, exist_ok=True)
        c._chown(d)
    os.chmod(c.data, 0o700)
    c._run([str(bin_dir / "initdb"), "-D", str(c.data), "-U", "cockpit", "--auth=trust",
            "-E", "UTF8", "--no-locale", "--no-instructions"])
    with open(c.data / "postgresql.conf", "a") as f:
        f.write("\ninclude_if_exists = 'cockpit.conf'\n")
    c._write_conf(free_port(FIRST_PORT))
    c._run([str(bin_dir / "pg_ctl"), "-D", str(c.data), "-l", str(c.log), "-w", "start"])
    with psycopg.connect(host="127.0.0.1", port=c.port, user="cockpit", dbname="postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE cockpit")
    return c


def test_a_trust_cluster_is_secured_in_place(tmp_path, capsys):
    c = _old_trust_cluster(tmp_path / "old")
    try:
        _connect(c, "cockpit").close()  # as before: anyone local is the superuser
        assert not c.secret_path("owner").exists()

        url = c.up()
        assert "securing" in capsys.readouterr().out
        _assert_refused(c, "cockpit")
        assert (c.data / "pg_hba.conf").read_text() == HBA
        for role in ("owner", "app", "writer"):
            assert stat.S_IMODE(c.secret_path(role).stat().st_mode) == 0o600
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'cockpit'").fetchone()[0] == 1
        with psycopg.connect(c.url("app")) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0] is False

        # a second `up` does nothing
        before = {p: p.stat().st_mtime_ns for p in (c.data / "pg_hba.conf", c.secret_path("owner"),
                                                     c.secret_path("app"))}
        assert c.up() == url
        assert capsys.readouterr().out == ""
        assert {p: p.stat().st_mtime_ns for p in before} == before

        # the owner's password file lost while running: a new one, set with the server stopped
        old = c.secret("owner")
        c.secret_path("owner").unlink()
        new_url = c.up()
        assert new_url != url and c.status() == "running"
        _assert_refused(c, "cockpit", old)
        with psycopg.connect(new_url) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "cockpit"
    finally:
        _drop(c)
