"""A read replica (COCKPIT_READ_URL): a real streaming standby made on this machine with
pg_basebackup from a cluster of the test's own, on a second port. The screens read from it,
the change feed keeps listening on the primary, and a new event is on screen within the live
target."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import datetime, timezone
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa

from conftest import signed_in_client
from cockpit import store
from cockpit.demo.load import load_demo
from cockpit.metrics import changes
from cockpit.ports import free_port
from cockpit.store import migrate
from cockpit.store.cluster import ManagedCluster, find_bin_dir

LIVE_TARGET = 1.0  # seconds from insert to visible (issue 13)


def _replication_ready(primary: ManagedCluster) -> None:
    """wal_level=minimal (the managed cluster's, for fast loads) cannot feed a standby."""
    with psycopg.connect(primary.url("owner"), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
        conn.execute("ALTER SYSTEM SET max_wal_senders = 4")
    hba = primary.data / "pg_hba.conf"
    hba.write_text(hba.read_text() + "host    replication  cockpit  127.0.0.1/32  scram-sha-256\n")
    primary._run([str(find_bin_dir() / "pg_ctl"), "-D", str(primary.data), "-w", "-t", "60", "restart",
                  "-l", str(primary.log)])


def _standby(primary: ManagedCluster, state) -> tuple[str, int, object]:
    """pg_basebackup into a folder the server user can reach (as a managed cluster would place
    it), then start it on a free port; (data dir, port, stop)."""
    where = ManagedCluster(state)
    base, data, run = where.base, where.data, where.run
    base.mkdir(parents=True, exist_ok=True)
    primary._chown(base)
    for d in (data, run):
        d.mkdir(exist_ok=True)
        primary._chown(d)
    os.chmod(data, 0o700)
    source = (f"host=127.0.0.1 port={primary.port} user=cockpit password={primary.secret('owner')} "
              "dbname=postgres")
    primary._run([str(find_bin_dir() / "pg_basebackup"), "-D", str(data), "-d", source, "-R", "-X", "stream",
                  "-c", "fast"])
    port = free_port(primary.port + 1)
    conf = data / "cockpit.conf"
    text = conf.read_text().replace(f"port = {primary.port}", f"port = {port}")
    text = text.replace(str(primary.run), str(run))
    conf.write_text(text)
    primary._chown(conf)
    log = data / "standby.log"
    primary._run([str(find_bin_dir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"])

    def stop():
        primary._run([str(find_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)
    return str(data), port, stop


@pytest.fixture
def primary_and_replica(tmp_path, monkeypatch):
    primary = ManagedCluster(tmp_path / "primary")
    url = primary.up()
    migrate.upgrade(store.engine(url))
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None,
              seed=7, grids=40, events=2000, days=5)
    store.forget_engines()
    _replication_ready(primary)
    _, port, stop = _standby(primary, tmp_path / "replica")
    app_url = primary.url("app")
    read_url = app_url.replace(f":{primary.port}/", f":{port}/")
    monkeypatch.setenv("COCKPIT_DATABASE_URL", url)
    monkeypatch.setenv("COCKPIT_APP_DATABASE_URL", app_url)
    monkeypatch.setenv("COCKPIT_READ_URL", read_url)
    yield primary, url, read_url
    changes.stop_all()
    store.forget_engines()
    stop()
    primary.down()
    shutil.rmtree(primary.base, ignore_errors=True)


def _volume(client, code: str) -> tuple[bool, int]:
    """What a screen's numbers come from, read the way the screens read (Scoped.connect)."""
    from cockpit.callbacks.context import KEY

    ctx = client.application.extensions[KEY]
    from cockpit.access.people import Person
    from cockpit.metrics.kpi import Period, unit_kpi

    with ctx.for_person(Person("t", "user", "leader")).connect() as conn:
        in_recovery = conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar()
        return in_recovery, unit_kpi(conn, code, Period.parse(None, None, ctx.timezone))["volume"]


def test_screens_read_the_replica_and_see_new_events_within_the_live_target(primary_and_replica):
    primary, url, read_url = primary_and_replica
    from cockpit.callbacks.app import create_app
    from cockpit.callbacks.context import KEY

    app = create_app()
    client = signed_in_client(app, "leader", url=url)  # the sign-in itself writes: on the primary
    ctx = app.server.extensions[KEY]
    with store.engine(url).connect() as conn:
        city = conn.execute(sa.text("SELECT code FROM units WHERE parent_id IS NULL")).scalar_one()
    in_recovery, before = _volume(client, city)
    assert in_recovery  # the screens' reads are served by the standby
    feed = ctx.feed
    assert feed.wait_ready(10) and feed.connected  # ... and the change feed listens on the primary
    with psycopg.connect(url) as conn:
        assert not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]

    # the page's own numbers come through the app, from the standby
    r = client.get(f"/geo/{city}.json")
    assert r.status_code == 200 and r.get_json()["features"]

    token = feed.token
    with store.engine(url).begin() as conn:  # a new event on the primary
        conn.execute(sa.text("""
            INSERT INTO events (source, external_id, category_id, reported_at, location)
            SELECT 'grid_app', 'replica-1', c.id, now(), ST_PointOnSurface(u.geom)
            FROM categories c, units u WHERE c.deadline_hours IS NOT NULL AND u.level = 'grid' LIMIT 1"""))
    started = time.monotonic()
    assert feed.wait_change(token, 5) != token, "the feed never heard the insert"
    seen = None
    while time.monotonic() - started < 5:
        _, seen = _volume(client, city)
        if seen == before + 1:
            break
    took = time.monotonic() - started
    assert seen == before + 1, "the replica never showed the new event"
    assert took < LIVE_TARGET, f"insert to visible through the replica took {took:.2f} s"
