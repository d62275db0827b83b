"""The rollups stay equal to the raw events whoever writes: inserts, updates, deletes in plain SQL."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from cockpit.metrics import rollup
from cockpit import store
from cockpit.demo.load import load_demo
from cockpit.metrics.unit_view import Filters, period_of, unit_view

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime.now(timezone.utc)


@pytest.fixture
def small_city(databases) -> sa.Engine:
    url = databases.create("rollup")
    eng = store.engine(url)
    load_demo(eng, seed=3, grids=60, events=6000, days=40, now=NOW, progress=lambda _: None)
    return eng


def snapshot(conn) -> tuple[set, set]:
    """Rollup contents without all-zero rows (a -1/+1 pair may leave one behind)."""
    kpi = {tuple(r) for r in conn.execute(sa.text("SELECT * FROM kpi_rollup WHERE volume <> 0 ORDER BY 1, 2, 3, 4"))}
    stage = {tuple(r) for r in conn.execute(sa.text("SELECT * FROM stage_rollup WHERE n <> 0"))}
    return kpi, stage


def assert_triggers_match_rebuild(eng: sa.Engine) -> None:
    with eng.begin() as conn:
        maintained = snapshot(conn)
        rollup.rebuild(conn, TZ)
        rebuilt = snapshot(conn)
        conn.rollback()
    assert maintained[0] == rebuilt[0]
    assert maintained[1] == rebuilt[1]


def assert_views_agree(eng: sa.Engine) -> None:
    """For every non-grid unit, several periods and filters: rollup path == raw path."""
    with eng.connect() as conn:
        codes = conn.execute(sa.text("SELECT code FROM units WHERE level <> 'grid' ORDER BY code")).scalars().all()
        rolled = conn.execute(sa.text("SELECT count(*) FROM rollup_units")).scalar()
        assert rolled >= 3  # city, districts, streets
        for code in codes[:: max(1, len(codes) // 12)]:
            for kind in ("today", "7d", "30d", "last_month"):
                for filters in (Filters(), Filters(group="SR"), Filters(source="hotline_12345", group="HJ")):
                    p = period_of(kind, TZ)
                    fast = unit_view(conn, code, p, filters)
                    plain = unit_view(conn, code, p, filters, plain=True)
                    assert fast == plain, (code, kind, filters)


SQL_WRITES = """
-- a citizen app reports two new events with only a point: the grid is found by trigger
INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at, status)
SELECT 'citizen_app', 'new-' || g, (SELECT id FROM categories WHERE code = 'SR01'), now() - (g || ' hours')::interval,
       (SELECT ST_PointOnSurface(geom) FROM units WHERE level = 'grid' ORDER BY id OFFSET g LIMIT 1),
       now() + interval '1 day', 'reported'
FROM generate_series(1, 2) g;
-- they are dispatched: a transition each, and the status
INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at)
SELECT id, reported_at, 'reported', 'dispatched', now() FROM events WHERE external_id LIKE 'new-%';
UPDATE events SET status = 'dispatched', handling_level = 'community' WHERE external_id LIKE 'new-%';
-- an open event is closed late and rated 2 stars, another one escalated to the district
UPDATE events SET status = 'closed', closed_at = greatest(now(), deadline_at + interval '1 hour'), rating = 2,
                  rated_at = greatest(now(), deadline_at + interval '2 hours')
WHERE id = (SELECT min(id) FROM events WHERE closed_at IS NULL AND external_id NOT LIKE 'new-%');
UPDATE events SET handling_level = 'district', supervised = true
WHERE id = (SELECT max(id) FROM events WHERE closed_at IS NULL AND handling_level = 'community');
-- a closed event's rating changes, one event moves to another grid, one is deleted
UPDATE events SET rating = 5 WHERE id = (SELECT min(id) FROM events WHERE rating = 1);
UPDATE events SET location = (SELECT ST_PointOnSurface(geom) FROM units WHERE level = 'grid' ORDER BY id DESC LIMIT 1)
WHERE id = (SELECT min(id) FROM events WHERE reported_at > now() - interval '3 days');
DELETE FROM events WHERE id = (SELECT max(id) FROM events WHERE external_id NOT LIKE 'new-%');
"""


def test_demo_loader_supplies_the_rollups_a_rebuild_makes(small_city):
    """The bulk loader bypasses the triggers and writes the rollups itself: they must be equal."""
    with small_city.connect() as conn:
        kpi, stage = snapshot(conn)
    assert len(kpi) > 100 and len(stage) > 100
    assert_triggers_match_rebuild(small_city)


def test_rollups_follow_plain_sql_writes(small_city):
    with small_city.connect() as conn:
        before = unit_view(conn, None, period_of("7d", TZ))["kpi"]["volume"]
    with small_city.begin() as conn:
        for statement in SQL_WRITES.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement))
    with small_city.connect() as conn:
        after = unit_view(conn, None, period_of("7d", TZ))["kpi"]["volume"]
        moved = conn.execute(sa.text("SELECT count(*) FROM events WHERE external_id LIKE 'new-%' AND grid_id IS NOT NULL")).scalar()
    assert moved == 2 and after == before + 1  # two new, one deleted (if it was in the week: see below)
    assert_triggers_match_rebuild(small_city)
    assert_views_agree(small_city)


def test_bulk_writes_and_truncate(small_city):
    with small_city.begin() as conn:
        conn.execute(sa.text("""
            UPDATE events SET closed_at = now(), status = 'closed', rating = 4, rated_at = now()
            WHERE closed_at IS NULL"""))
        conn.execute(sa.text("DELETE FROM events WHERE source = 'mailbox'"))
    assert_triggers_match_rebuild(small_city)
    assert_views_agree(small_city)
    with small_city.begin() as conn:
        conn.execute(sa.text("TRUNCATE events CASCADE"))
        assert conn.execute(sa.text("SELECT count(*) FROM kpi_rollup")).scalar() == 0


def test_a_new_street_changes_what_is_rolled_up(small_city):
    """Moving a community to a new street of its own (the tree changes): rollups follow."""
    with small_city.begin() as conn:
        conn.execute(sa.text("""
            INSERT INTO units (code, name, level, parent_id)
            SELECT code || '-X', '新建街道', 'street', parent_id FROM units WHERE level = 'street' ORDER BY id LIMIT 1;
            UPDATE units SET parent_id = (SELECT id FROM units WHERE name = '新建街道')
            WHERE id = (SELECT min(id) FROM units WHERE level = 'community');"""))
        new_street = conn.execute(sa.text(
            "SELECT count(*) FROM rollup_units r JOIN units u ON u.id = r.unit_id WHERE u.name = '新建街道'")).scalar()
    assert new_street == 1
    assert_triggers_match_rebuild(small_city)
    assert_views_agree(small_city)


def test_other_time_zone_reads_raw_events_correctly(small_city):
    utc = ZoneInfo("UTC")
    with small_city.connect() as conn:
        assert rollup.rolled_up(conn, [1], utc) == set()
        assert unit_view(conn, None, period_of("30d", utc)) == unit_view(conn, None, period_of("30d", utc), plain=True)


def test_demo_store_rollups_equal_raw(demo_engine):
    assert_views_agree(demo_engine)


def test_simulated_live_writers_keep_rollups_right(small_city):
    """`cockpit simulate` writes like an outside system: plain INSERT/UPDATE, one event at a time."""
    from conftest import run_cli

    url = small_city.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with small_city.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    r = run_cli("simulate", "--rate", "40", "--seconds", "3", "--seed", "5", url=url)
    assert r.returncode == 0, r.stderr
    with small_city.connect() as conn:
        new = conn.execute(sa.text("SELECT count(*) FROM events WHERE external_id LIKE 'SIM-%'")).scalar()
        placed = conn.execute(sa.text(
            "SELECT count(*) FROM events WHERE external_id LIKE 'SIM-%' AND grid_id IS NOT NULL")).scalar()
        after = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        moved = conn.execute(sa.text("SELECT count(*) FROM event_transitions WHERE at > now() - interval '1 minute'")).scalar()
    assert new >= 20 and placed == new and after == before + new and moved > 0
    assert f"{new:,} new events" in r.stdout
    assert_triggers_match_rebuild(small_city)
    assert_views_agree(small_city)


NO_DEADLINE = """
SELECT count(*) FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id JOIN units u ON u.id = c.ancestor_id
WHERE u.code = :code AND e.closed_at IS NOT NULL AND e.deadline_at IS NULL
  AND e.reported_at >= :start AND e.reported_at < :end"""


def test_closed_events_without_a_deadline_are_counted_for_the_on_time_card(small_city):
    with small_city.begin() as conn:  # a writer that lost some deadlines, in plain SQL (the triggers' path)
        n = conn.execute(sa.text("""
            UPDATE events SET deadline_at = NULL
            WHERE id IN (SELECT id FROM events WHERE closed_at IS NOT NULL ORDER BY id DESC LIMIT 150)""")).rowcount
        conn.execute(sa.text("""
            UPDATE events SET deadline_at = NULL
            WHERE id IN (SELECT id FROM events WHERE closed_at IS NULL ORDER BY id DESC LIMIT 20)"""))
    assert n == 150
    with small_city.connect() as conn:
        street = conn.execute(sa.text("SELECT code FROM units WHERE level = 'street' ORDER BY code LIMIT 1")).scalar()
        grid = conn.execute(sa.text(
            "SELECT u.code FROM units u JOIN events e ON e.grid_id = u.id WHERE e.deadline_at IS NULL "
            "AND e.closed_at IS NOT NULL GROUP BY u.code ORDER BY count(*) DESC, u.code LIMIT 1")).scalar()
        seen = 0
        for code in (None, street, grid):
            for kind in ("7d", "30d"):
                p = period_of(kind, TZ)
                view = unit_view(conn, code, p)
                want = conn.execute(sa.text(NO_DEADLINE), {"code": view["unit"]["code"], "start": p.start_utc,
                                                           "end": p.end_utc}).scalar()
                assert view["kpi"]["closed_no_deadline"] == want, (code, kind)
                assert unit_view(conn, code, p, plain=True)["kpi"]["closed_no_deadline"] == want
                seen += want
        assert seen > 0
    assert_triggers_match_rebuild(small_city)
