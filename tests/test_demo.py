"""The demo city's invariants, checked in SQL against the loaded store."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.demo.load import load_demo
from cockpit.store.schema import SOURCES
from conftest import run_cli

AREA_TOLERANCE = 1e-12  # square degrees (~0.01 m²): floating-point slivers only


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_five_levels_nested_with_codes(demo_engine):
    with demo_engine.connect() as conn:
        levels = dict(conn.execute(sa.text("SELECT level, count(*) FROM units GROUP BY level")).all())
        grid_codes = conn.execute(sa.text("SELECT code FROM units WHERE level = 'grid'")).scalars().all()
        names = conn.execute(sa.text("SELECT name FROM units WHERE level IN ('district', 'street', 'community')")).scalars().all()
    assert levels["city"] == 1 and levels["grid"] == 300
    assert levels["district"] >= 2 and levels["street"] > levels["district"] and levels["community"] > levels["street"]
    assert all(re.fullmatch(r"\d{6}-\d{3}-\d{3}-\d{3}", c) for c in grid_codes)
    assert all(re.search(r"(区|街道|社区)$", n) for n in names)
    # a level's parent is always the level right above it in the demo
    wrong = scalar(demo_engine, """
        SELECT count(*) FROM units c JOIN units p ON p.id = c.parent_id
        WHERE (c.level, p.level) NOT IN (('district','city'), ('street','district'),
                                         ('community','street'), ('grid','community'))""")
    assert wrong == 0


def test_every_child_inside_its_parent(demo_engine):
    outside = scalar(demo_engine, """
        SELECT count(*) FROM units c JOIN units p ON p.id = c.parent_id
        WHERE ST_Area(ST_Difference(c.geom, p.geom)) > :tol""", tol=AREA_TOLERANCE)
    assert outside == 0


def test_children_tile_their_parent(demo_engine):
    """No gaps: each parent's area equals the union of its children's."""
    gaps = scalar(demo_engine, """
        SELECT count(*) FROM (
            SELECT p.id, ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))) AS diff, ST_Area(p.geom) AS area
            FROM units p JOIN units c ON c.parent_id = p.id GROUP BY p.id, p.geom) t
        WHERE diff > 1e-9 * area""")
    assert gaps == 0


def test_grids_do_not_overlap_and_cover_the_city(demo_engine):
    overlaps = scalar(demo_engine, """
        SELECT count(*) FROM units a JOIN units b
          ON a.id < b.id AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
        WHERE a.level = 'grid' AND b.level = 'grid'
          AND ST_Area(ST_Intersection(a.geom, b.geom)) > :tol""", tol=AREA_TOLERANCE)
    assert overlaps == 0
    relative = scalar(demo_engine, """
        SELECT ST_Area(ST_SymDifference((SELECT ST_Union(geom) FROM units WHERE level = 'grid'),
                                        (SELECT geom FROM units WHERE level = 'city')))
             / (SELECT ST_Area(geom) FROM units WHERE level = 'city')""")
    assert relative < 1e-9


def test_every_event_lies_in_its_grid(demo_engine):
    assert scalar(demo_engine, "SELECT count(*) FROM events") == 60_000
    assert scalar(demo_engine, "SELECT count(*) FROM events WHERE grid_id IS NULL") == 0
    outside = scalar(demo_engine, """
        SELECT count(*) FROM events e JOIN units g ON g.id = e.grid_id
        WHERE g.level <> 'grid' OR NOT ST_Covers(g.geom, e.location)""")
    assert outside == 0


def test_transitions_agree_with_status_and_times(demo_engine):
    checks = {
        # the chain: each step starts where the previous ended, in time order, after the report
        "broken chain": """
            SELECT count(*) FROM (
              SELECT t.from_status, lag(t.to_status) OVER w AS prev_to, t.at, lag(t.at) OVER w AS prev_at,
                     e.reported_at, row_number() OVER w AS k
              FROM event_transitions t JOIN events e ON e.id = t.event_id
              WINDOW w AS (PARTITION BY t.event_id ORDER BY t.at, t.id)) s
            WHERE (k = 1 AND (from_status <> 'reported' OR at < reported_at))
               OR (k > 1 AND (from_status <> prev_to OR at < prev_at))""",
        "last step is not the status": """
            SELECT count(*) FROM events e
            LEFT JOIN LATERAL (SELECT to_status FROM event_transitions t WHERE t.event_id = e.id
                               AND t.event_reported_at = e.reported_at  -- its month's partition only
                               ORDER BY at DESC, id DESC LIMIT 1) last ON true
            WHERE coalesce(last.to_status, 'reported') <> e.status""",
        "closed without closed_at (or the reverse)": """
            SELECT count(*) FROM events WHERE (status = 'closed') <> (closed_at IS NOT NULL)""",
        "closing step at another time": """
            SELECT count(*) FROM events e JOIN event_transitions t ON t.event_id = e.id AND t.to_status = 'closed'
            WHERE t.at <> e.closed_at""",
        "rated but not closed, or rated before closing": """
            SELECT count(*) FROM events WHERE rating IS NOT NULL AND (closed_at IS NULL OR rated_at < closed_at)""",
        "in the future": "SELECT count(*) FROM events WHERE reported_at > now() OR closed_at > now()",
        "handling level without dispatch": """
            SELECT count(*) FROM events WHERE (status = 'reported') <> (handling_level IS NULL)""",
    }
    failures = {name: n for name, sql in checks.items() if (n := scalar(demo_engine, sql))}
    assert failures == {}


def test_events_look_like_a_city(demo_engine):
    with demo_engine.connect() as conn:
        by_source = dict(conn.execute(sa.text("SELECT source, count(*) FROM events GROUP BY 1")).all())
        r = conn.execute(sa.text("""
            SELECT count(*) FILTER (WHERE rating >= 4)::float / count(rating) AS satisfied,
                   count(*) FILTER (WHERE rating <= 2) AS unhappy,
                   count(*) FILTER (WHERE closed_at IS NULL AND deadline_at < now()) AS overdue,
                   count(*) FILTER (WHERE closed_at IS NULL) AS open,
                   count(*) FILTER (WHERE handling_level = 'district') AS district,
                   count(*) FILTER (WHERE supervised) AS supervised,
                   count(*)::float AS n
            FROM events""")).one()
        escalations = conn.execute(sa.text(
            "SELECT count(*) FROM event_transitions WHERE from_status = 'handling' AND to_status = 'dispatched'")).scalar()
        weekday_ratio = conn.execute(sa.text("""
            SELECT avg(n) FILTER (WHERE dow BETWEEN 1 AND 5) / avg(n) FILTER (WHERE dow IN (0, 6)) FROM (
              SELECT extract(dow FROM (reported_at AT TIME ZONE 'Asia/Shanghai')) AS dow,
                     (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS d, count(*) AS n
              FROM events WHERE reported_at < date_trunc('day', now()) GROUP BY 1, 2) t""")).scalar()
        repeat_spots = conn.execute(sa.text("""
            SELECT count(*) FROM (SELECT location, category_id FROM events
                                  GROUP BY 1, 2 HAVING count(*) >= 5) t""")).scalar()
    assert set(by_source) == set(SOURCES)
    assert by_source["hotline_12345"] > by_source["mailbox"] * 5
    assert 0.7 < r.satisfied < 0.95 and r.unhappy > 0
    assert 0 < r.overdue < r.open < 0.1 * r.n
    assert r.district > 0 and r.supervised > 0 and escalations > 0
    assert weekday_ratio > 1.15  # quieter weekends
    assert repeat_spots >= 5  # the same problem comes back to the same place


def _fingerprint(url: str) -> tuple:
    with store.engine(url).connect() as conn:
        return tuple(conn.execute(sa.text(f"""
            SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t""")).scalar()
            for table in ("units", "categories", "events", "event_transitions"))


def test_same_seed_same_city(databases):
    now = datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc)
    urls = [databases.create(f"det{k}") for k in range(3)]
    for url, seed in zip(urls, (5, 5, 6)):
        load_demo(store.engine(url), seed=seed, grids=40, events=3000, days=20, now=now, progress=lambda _: None)
    a, b, c = (_fingerprint(u) for u in urls)
    assert a == b
    assert a[2] != c[2] and a[0] != c[0]


def test_demo_refuses_to_wipe_a_store_without_replace(demo_engine):
    from cockpit.errors import CockpitError

    with pytest.raises(CockpitError, match="--replace"):
        load_demo(demo_engine, grids=20, events=10, days=2, progress=lambda _: None)


def test_demo_with_a_given_number_of_districts(databases):
    """`cockpit demo --districts N`: N top-level units past the built-in list of names, some of
    them long on purpose (the screens must shorten them), each with its own code."""
    url = databases.create("districts")
    r = run_cli("demo", "--districts", "30", "--grids", "300", "--events", "2000", "--days", "5", url=url)
    assert r.returncode == 0, r.stderr
    with store.engine(url).connect() as conn:
        rows = conn.execute(sa.text("""
            SELECT d.code, d.name, count(g.id) FROM units d
            JOIN unit_closure c ON c.ancestor_id = d.id JOIN units g ON g.id = c.descendant_id AND g.level = 'grid'
            WHERE d.level = 'district' GROUP BY d.code, d.name ORDER BY d.code""")).all()
        lost = conn.execute(sa.text("SELECT count(*) FROM events WHERE grid_id IS NULL")).scalar()
    assert len(rows) == 30 and len({code for code, _, _ in rows}) == 30
    assert all(re.fullmatch(r"4403\d\d", code) and n_grids >= 8 for code, _, n_grids in rows)
    assert max(len(name) for _, name, _ in rows) > 12
    assert lost == 0


@pytest.mark.parametrize("args, fragment", [
    (("--districts", "1"), "--districts must be between 2 and 97, not 1"),
    (("--districts", "98"), "--districts must be between 2 and 97, not 98"),
    (("--districts", "30", "--grids", "100"), "--grids must be at least 8 per district (240 for 30 districts)"),
])
def test_impossible_district_counts_are_one_line(empty_url, args, fragment):
    r = run_cli("demo", *args, url=empty_url)
    assert r.returncode == 2
    assert r.stderr.strip() == f"cockpit: {fragment}"
    with store.engine(empty_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar() == 0
