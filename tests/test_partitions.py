"""Monthly partitions of events (migration 0012, cockpit/store/partitions.py)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.errors import CockpitError
from cockpit.store import migrate, partitions

CITY = """
INSERT INTO units (code, name, level, geom) VALUES ('C', 'city', 'city', ST_Multi(ST_MakeEnvelope(114, 22, 115, 23, 4326)));
INSERT INTO units (code, name, level, parent_id, geom)
SELECT 'C-' || g, 'grid', 'grid', (SELECT id FROM units WHERE code = 'C'),
       ST_Multi(ST_MakeEnvelope(114 + (g - 1) * 0.5, 22, 114 + g * 0.5, 23, 4326))
FROM generate_series(1, 2) g;
INSERT INTO categories (code, name) VALUES ('G', 'group');
INSERT INTO categories (code, name, parent_id, deadline_hours) SELECT 'G1', 'item', id, 24 FROM categories;
INSERT INTO events (source, external_id, category_id, reported_at, location, status, deadline_at, closed_at, rating)
SELECT 'hotline_12345', 'e' || g, (SELECT id FROM categories WHERE code = 'G1'),
       now() - g * interval '61 hours', ST_SetSRID(ST_MakePoint(114.01 + (g % 40) * 0.02, 22.5), 4326),
       CASE WHEN g % 3 = 0 THEN 'closed' ELSE 'reported' END, now() - g * interval '61 hours' + interval '1 day',
       CASE WHEN g % 3 = 0 THEN now() - g * interval '61 hours' + interval '2 hours' END,
       CASE WHEN g % 3 = 0 THEN 1 + g % 5 END
FROM generate_series(1, 60) g;
"""
TRANSITIONS_0011 = """
INSERT INTO event_transitions (event_id, from_status, to_status, at)
SELECT id, 'reported', 'closed', closed_at FROM events WHERE closed_at IS NOT NULL
"""
SNAPSHOT = [
    "SELECT count(*), sum(id), max(id) FROM events",
    "SELECT count(*), sum(id), sum(event_id) FROM event_transitions",
    "SELECT sum(volume), sum(closed), sum(closed_on_time), sum(rated), sum(satisfied) FROM kpi_rollup",
    "SELECT sum(n) FROM stage_rollup",
    "SELECT sum(volume) FROM unit_month_rollup",
]


def _city(conn) -> None:
    """The city's events, their months made first (as an import does)."""
    now = datetime.now(timezone.utc)
    partitions.ensure_range(conn, now - timedelta(days=160), now)
    for statement in CITY.split(";"):
        if statement.strip():
            conn.execute(sa.text(statement))


def _snapshot(conn) -> list[tuple]:
    return [tuple(conn.execute(sa.text(q)).one()) for q in SNAPSHOT]


def test_migration_to_partitions_in_place_keeps_every_count(databases):
    eng = store.engine(databases.create("parts_upgrade", migrated=False))
    migrate.upgrade(eng, "0011")
    with eng.begin() as conn:
        for statement in CITY.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement))
        conn.execute(sa.text(TRANSITIONS_0011))
    with eng.connect() as conn:
        before = _snapshot(conn)
        ids = conn.execute(sa.text("SELECT array_agg(id ORDER BY external_id) FROM events")).scalar()
    migrate.upgrade(eng)
    with eng.begin() as conn:
        assert _snapshot(conn) == before
        assert conn.execute(sa.text("SELECT array_agg(id ORDER BY external_id) FROM events")).scalar() == ids
        assert conn.execute(sa.text("SELECT count(*) FROM internal.events_default")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM event_keys")).scalar() == 60
        assert conn.execute(sa.text(
            "SELECT count(*) FROM event_transitions t JOIN events e ON e.id = t.event_id "
            "AND e.reported_at = t.event_reported_at")).scalar() == before[1][0]
        new = conn.execute(sa.text(
            "INSERT INTO events (source, external_id, category_id, reported_at) "
            "SELECT 'iot', 'fresh', id, now() FROM categories WHERE code = 'G1' RETURNING id")).scalar()
        assert new == before[0][2] + 1
        assert partitions.existing(conn)[-1] >= partitions.month_of(datetime.now(timezone.utc))


def test_rows_of_a_missing_month_wait_in_default_and_move_when_it_is_made(databases):
    eng = store.engine(databases.create("parts_default"))
    with eng.begin() as conn:
        _city(conn)
        conn.execute(sa.text(
            "INSERT INTO events (source, external_id, category_id, reported_at, status, closed_at) "
            "SELECT 'iot', 'old' || g, id, TIMESTAMPTZ '2020-01-10 00:00Z' + g * interval '1 day', 'closed', "
            "TIMESTAMPTZ '2020-03-01 00:00Z' FROM categories, generate_series(1, 3) g WHERE code = 'G1'"))
        conn.execute(sa.text(
            "INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at) "
            "SELECT id, reported_at, 'reported', 'closed', closed_at FROM events WHERE external_id LIKE 'old%'"))
        before = _snapshot(conn)
        assert conn.execute(sa.text("SELECT count(*) FROM internal.events_default")).scalar() == 3
        assert partitions.ensure_months(conn, [date(2020, 1, 1)]) == [date(2020, 1, 1)]
        assert conn.execute(sa.text("SELECT count(*) FROM internal.events_default")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM internal.events_202001")).scalar() == 3
        assert conn.execute(sa.text("SELECT count(*) FROM internal.event_transitions_202001")).scalar() == 3
        assert _snapshot(conn) == before  # moved, not counted again
        assert partitions.ensure_months(conn, [date(2020, 1, 1)]) == []
    with eng.begin() as conn:
        with pytest.raises(CockpitError, match="YYYY-MM"):
            partitions.detach_before(conn, "2020-1")
        with pytest.raises(CockpitError, match="only past months"):
            partitions.detach_before(conn, "2999-01")
        done = partitions.detach_before(conn, "2020-02")
        assert done["months"] == ["2020-01"] and done["events"] == 3 and done["transitions"] == 3
        assert conn.execute(sa.text("SELECT count(*) FROM events WHERE external_id LIKE 'old%'")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM archive.events_202001")).scalar() == 3
        assert conn.execute(sa.text("SELECT count(*) FROM event_keys WHERE external_id LIKE 'old%'")).scalar() == 0
        # the rollups keep the detached months' numbers
        assert conn.execute(sa.text("SELECT sum(volume) FROM kpi_rollup")).scalar() == before[2][0]


def test_a_key_is_refused_across_months(databases):
    eng = store.engine(databases.create("parts_keys"))
    with eng.begin() as conn:
        _city(conn)
    for when in ("now() - interval '200 days'", "now()", "TIMESTAMPTZ '2020-01-01 00:00Z'"):
        with eng.begin() as conn, pytest.raises(sa.exc.IntegrityError, match="uq_events_source_external_id"):
            conn.execute(sa.text(
                f"INSERT INTO events (source, external_id, category_id, reported_at) "
                f"SELECT 'hotline_12345', 'e1', id, {when} FROM categories WHERE code = 'G1'"))


def test_the_app_role_cannot_name_a_partition(databases):
    eng = store.engine(databases.create("parts_app"))
    with eng.connect() as conn:
        app = conn.execute(sa.text("SELECT has_schema_privilege('cockpit_app', 'internal', 'USAGE')")).scalar()
        keys = conn.execute(sa.text("SELECT has_table_privilege('cockpit_app', 'event_keys', 'SELECT')")).scalar()
    assert app is False and keys is False
    assert partitions.upkeep(eng) == []  # the migration made the current month and 3 ahead
    assert len(partitions.upkeep(eng, ahead=5)) == 2  # what `cockpit serve` does each hour


def test_a_bulk_load_leaves_every_partition_indexed_and_nothing_in_default(databases):
    from cockpit.demo.load import load_demo

    eng = store.engine(databases.create("parts_demo"))
    load_demo(eng, grids=40, events=3000, days=70, progress=lambda line: None)
    with eng.connect() as conn:
        invalid = conn.execute(sa.text(
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid")).scalar()
        per_partition = conn.execute(sa.text(
            "SELECT min(n), max(n) FROM (SELECT count(x.indexrelid) AS n FROM pg_inherits i "
            "LEFT JOIN pg_index x ON x.indrelid = i.inhrelid WHERE i.inhparent = 'events'::regclass "
            "GROUP BY i.inhrelid) c")).one()
        default = conn.execute(sa.text("SELECT count(*) FROM internal.events_default")).scalar()
        keys, events = conn.execute(sa.text("SELECT (SELECT count(*) FROM event_keys), count(*) FROM events")).one()
    assert invalid == 0 and per_partition[0] == per_partition[1] == 6  # the key and 5 indexes
    assert default == 0 and keys == events == 3000


def test_an_event_moved_to_another_month_keeps_its_counts_and_takes_its_transitions(databases):
    eng = store.engine(databases.create("parts_move"))
    with eng.begin() as conn:
        _city(conn)
        conn.execute(sa.text(
            "INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at) "
            "SELECT id, reported_at, 'reported', 'closed', closed_at FROM events WHERE closed_at IS NOT NULL"))
    with eng.begin() as conn:
        before = _snapshot(conn)
        moved = conn.execute(sa.text(
            "SELECT id FROM events WHERE closed_at IS NOT NULL AND reported_at > now() - interval '100 days' "
            "ORDER BY id LIMIT 2")).scalars().all()
        conn.execute(sa.text("UPDATE events SET reported_at = reported_at - interval '40 days' WHERE id = ANY(:ids)"),
                     {"ids": moved})
        after = _snapshot(conn)
        assert after[:2] == before[:2] and after[2][0] == before[2][0] and after[3] == before[3]
        assert conn.execute(sa.text(
            "SELECT count(*) FROM event_transitions t JOIN events e ON e.id = t.event_id "
            "AND e.reported_at = t.event_reported_at WHERE e.id = ANY(:ids)"), {"ids": moved}).scalar() == 2


def test_the_command_lists_and_refuses_bad_input_in_one_line(databases):
    from conftest import run_cli

    url = databases.create("parts_cli")
    listed = run_cli("partitions", "list", url=url)
    assert listed.returncode == 0 and "default" in listed.stdout
    for args, says in ((("detach",), "needs --before"), (("detach", "--before", "2024/01"), "YYYY-MM"),
                       (("list", "--before", "2024-01"), "--before is for partitions detach")):
        r = run_cli("partitions", *args, url=url)
        assert r.returncode != 0 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli("partitions", "detach", "--before", "2001-01", url=url)
    assert r.returncode == 0 and "detached 0 months" in r.stdout
