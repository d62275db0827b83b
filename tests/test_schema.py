"""The schema the migrations build, and the triggers that keep it right for any writer."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cockpit.store import migrate
from cockpit import store
from cockpit.store.migrate import include_object
from cockpit.metrics.kpi import Period, unit_kpi
from cockpit.metrics import heat  # noqa: F401  (its tables are part of the schema)
from cockpit.store.schema import metadata


def test_migrations_build_exactly_the_declared_schema(empty_url):
    eng = store.engine(empty_url)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object})
        diffs = compare_metadata(ctx, metadata)
    assert diffs == []
    assert migrate.current(eng) == migrate.head()


def test_migrations_go_down_and_up_again(empty_url):
    eng = store.engine(empty_url)
    migrate.downgrade(eng, "base")
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('public.events')")).scalar() is None
    migrate.upgrade(eng)
    assert migrate.current(eng) == migrate.head()


NAMES = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}


def _city(conn, middle: str = "community", leaf: str = "grid") -> None:
    """A city of two leaves split at x = 114.5 (C-1-1, C-1-2), one unit C-1 above them: by
    default one community over two grids, no district or street."""
    conn.execute(sa.text(f"""
        INSERT INTO units (code, name, level, geom) VALUES
          ('C', '测试市', 'city', ST_Multi(ST_MakeEnvelope(114, 22, 115, 23, 4326)));
        INSERT INTO units (code, name, level, parent_id, geom)
          SELECT 'C-1', '一{NAMES[middle]}', '{middle}', id, geom FROM units WHERE code = 'C';
        INSERT INTO units (code, name, level, parent_id, geom)
          SELECT 'C-1-1', '一{NAMES[leaf]}', '{leaf}', id, ST_Multi(ST_MakeEnvelope(114, 22, 114.5, 23, 4326))
          FROM units WHERE code = 'C-1';
        INSERT INTO units (code, name, level, parent_id, geom)
          SELECT 'C-1-2', '二{NAMES[leaf]}', '{leaf}', id, ST_Multi(ST_MakeEnvelope(114.5, 22, 115, 23, 4326))
          FROM units WHERE code = 'C-1';
        INSERT INTO categories (code, name, deadline_hours) VALUES ('X', '测试', 24);
    """))


def _event(conn, ext: str, lon: float, lat: float) -> int:
    return conn.execute(sa.text("""
        INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at)
        SELECT 'hotline_12345', :ext, id, now(), ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), now() + interval '1 day'
        FROM categories WHERE code = 'X' RETURNING grid_id"""), {"ext": ext, "lon": lon, "lat": lat}).scalar()


def test_plain_sql_writers_get_grids_resolved_and_nothing_dropped(empty_url):
    eng = store.engine(empty_url)
    with eng.begin() as conn:
        _city(conn)
        grid = dict(conn.execute(sa.text("SELECT code, id FROM units")).all())
        assert _event(conn, "a", 114.2, 22.5) == grid["C-1-1"]
        assert _event(conn, "b", 114.8, 22.5) == grid["C-1-2"]
        assert _event(conn, "c", 120.0, 30.0) is None  # outside every grid: kept, unplaced
        conn.execute(sa.text("UPDATE events SET location = ST_SetSRID(ST_MakePoint(114.9, 22.9), 4326) "
                             "WHERE external_id = 'a'"))
        moved = conn.execute(sa.text("SELECT grid_id FROM events WHERE external_id = 'a'")).scalar()
        total = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    assert moved == grid["C-1-2"] and total == 3


def test_closure_follows_the_tree_and_kpis_follow_the_closure(empty_url):
    """A city with only city/community/grid levels; a grid moved to another parent."""
    eng = store.engine(empty_url)
    with eng.begin() as conn:
        _city(conn)
        _event(conn, "a", 114.2, 22.5)
        _event(conn, "b", 114.8, 22.5)
        conn.execute(sa.text("""
            INSERT INTO units (code, name, level, parent_id)
            SELECT 'C-2', '二社区', 'community', id FROM units WHERE code = 'C';
            UPDATE units SET parent_id = (SELECT id FROM units WHERE code = 'C-2') WHERE code = 'C-1-2';"""))
    period = Period.last_days(1, ZoneInfo("Asia/Shanghai"))
    with eng.connect() as conn:
        volumes = {code: unit_kpi(conn, code, period)["volume"] for code in ("C", "C-1", "C-2", "C-1-1", "C-1-2")}
        depth = conn.execute(sa.text("""
            SELECT depth FROM unit_closure c JOIN units a ON a.id = c.ancestor_id JOIN units d ON d.id = c.descendant_id
            WHERE a.code = 'C' AND d.code = 'C-1-2'""")).scalar()
    assert volumes == {"C": 2, "C-1": 1, "C-2": 1, "C-1-1": 1, "C-1-2": 1}
    assert depth == 2


def test_a_city_whose_smallest_level_is_the_street(empty_url):
    """No communities, no grids: events go to the streets (the leaves) and count everywhere above."""
    from cockpit.metrics import live_view
    from cockpit.metrics.unit_view import Filters, period_of, unit_view

    eng = store.engine(empty_url)
    with eng.begin() as conn:
        _city(conn, middle="district", leaf="street")
        street = dict(conn.execute(sa.text("SELECT code, id FROM units")).all())
        assert [_event(conn, e, lon, 22.5) for e, lon in (("a", 114.2), ("b", 114.8), ("c", 114.9))] == \
            [street["C-1-1"], street["C-1-2"], street["C-1-2"]]
        rolled = conn.execute(sa.text("SELECT u.code FROM rollup_units r JOIN units u ON u.id = r.unit_id")).scalars().all()
    tz = ZoneInfo("Asia/Shanghai")
    period = Period.last_days(1, tz)
    with eng.connect() as conn:
        volumes = {code: unit_kpi(conn, code, period)["volume"] for code in ("C", "C-1", "C-1-1", "C-1-2")}
        assert unit_view(conn, None, period_of("7d", tz)) == unit_view(conn, None, period_of("7d", tz), plain=True)
        latest = live_view.latest_events(conn)
        district = unit_view(conn, "C-1", period_of("7d", tz), Filters(source="hotline_12345"))
    assert volumes == {"C": 3, "C-1": 3, "C-1-1": 1, "C-1-2": 2}
    assert rolled == ["C"]  # the one unit with leaves two levels below it
    assert district["kpi"]["volume"] == 3 and [c["volume"] for c in district["children"]] == [1, 2]
    assert {live_view.place_label(e["place"]) for e in latest} == {"一区 · 一街道", "一区 · 二街道"}


def test_the_leaf_migration_places_what_no_grid_took(empty_url):
    """Events sent under 0003 into a city without grids were left unplaced; 0004 places them."""
    eng = store.engine(empty_url)
    migrate.downgrade(eng, "0003")
    with eng.begin() as conn:
        _city(conn, middle="district", leaf="street")
        assert _event(conn, "a", 114.2, 22.5) is None
    migrate.upgrade(eng)
    with eng.connect() as conn:
        placed = conn.execute(sa.text("SELECT u.code FROM events e JOIN units u ON u.id = e.grid_id")).scalars().all()
        rolled = conn.execute(sa.text("SELECT u.code FROM rollup_units r JOIN units u ON u.id = r.unit_id")).scalars().all()
        assert unit_kpi(conn, "C", Period.last_days(1, ZoneInfo("Asia/Shanghai")))["volume"] == 1
        assert conn.execute(sa.text("SELECT sum(volume) FROM kpi_rollup")).scalar() == 1
    assert placed == ["C-1-1"] and rolled == ["C"]
