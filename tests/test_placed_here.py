"""Events held by a unit that has children ("placed only at this level", docs/schema.md §4).

A city → district → grid tree, events written by plain SQL with grid_id = a district (or the city)
and no location: they count in that unit and its ancestors — through the rollups too (the city is
rolled up here, the districts are not) — in none of its children, and the drill-down says how many.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By

from cockpit import store
from cockpit.config import settings
from cockpit.layouts import panels
from cockpit.metrics import rollup
from cockpit.metrics.unit_view import Filters, period_of, unit_view
from cockpit.ui.formatting import count
from conftest import run_cli, serve_signed_in

ARTIFACTS = Path(__file__).parent / "artifacts"
RATES = ("closure_rate", "on_time_rate", "satisfaction_rate")

# P: the city; P-1 with grids P-1-1, P-1-2 (split at x = 114.5); P-2 with one grid P-2-1.
CITY = """
INSERT INTO units (code, name, level, geom) VALUES
  ('P', '测试市', 'city', ST_Multi(ST_MakeEnvelope(114, 22, 116, 23, 4326)));
INSERT INTO units (code, name, level, parent_id, geom)
  SELECT 'P-1', '东区', 'district', id, ST_Multi(ST_MakeEnvelope(114, 22, 115, 23, 4326)) FROM units WHERE code = 'P';
INSERT INTO units (code, name, level, parent_id, geom)
  SELECT 'P-2', '西区', 'district', id, ST_Multi(ST_MakeEnvelope(115, 22, 116, 23, 4326)) FROM units WHERE code = 'P';
INSERT INTO units (code, name, level, parent_id, geom)
  SELECT 'P-1-1', '一网格', 'grid', id, ST_Multi(ST_MakeEnvelope(114, 22, 114.5, 23, 4326)) FROM units WHERE code = 'P-1';
INSERT INTO units (code, name, level, parent_id, geom)
  SELECT 'P-1-2', '二网格', 'grid', id, ST_Multi(ST_MakeEnvelope(114.5, 22, 115, 23, 4326)) FROM units WHERE code = 'P-1';
INSERT INTO units (code, name, level, parent_id, geom)
  SELECT 'P-2-1', '三网格', 'grid', id, ST_Multi(ST_MakeEnvelope(115, 22, 116, 23, 4326)) FROM units WHERE code = 'P-2';
INSERT INTO categories (code, name, deadline_hours) VALUES ('X', '测试', 24);
"""

# (external id, unit code or None when placed by its point, lon, source, closed?, rating)
EVENTS = [
    ("g1", None, 114.2, "grid_app", True, 5),
    ("g2", None, 114.7, "grid_app", False, None),
    ("g3", None, 115.5, "iot", True, 2),
    ("d1", "P-1", None, "hotline_12345", True, 5),
    ("d2", "P-1", None, "hotline_12345", True, 1),
    ("d3", "P-1", None, "hotline_12345", False, None),
    ("d4", "P-1", None, "mailbox", False, None),
    ("c1", "P", None, "hotline_12345", True, 4),
    ("c2", "P", None, "hotline_12345", False, None),
]


def _write_events(conn) -> None:
    """As an integrator would (docs/schema.md §4): a known unit goes in grid_id, a point in location."""
    for ext, unit, lon, source, closed, rating in EVENTS:
        conn.execute(sa.text("""
            INSERT INTO events (source, external_id, category_id, reported_at, location, grid_id,
                                status, deadline_at, closed_at, rating, rated_at)
            SELECT :source, :ext, c.id, now() - interval '2 hours',
                   CASE WHEN CAST(:lon AS float) IS NULL THEN NULL
                        ELSE ST_SetSRID(ST_MakePoint(:lon, 22.5), 4326) END,
                   (SELECT id FROM units WHERE code = :unit),
                   CASE WHEN CAST(:closed AS boolean) THEN 'closed' ELSE 'handling' END, now() + interval '1 day',
                   CASE WHEN CAST(:closed AS boolean) THEN now() - interval '1 hour' END,
                   CAST(:rating AS smallint), CASE WHEN CAST(:rating AS smallint) IS NOT NULL THEN now() - interval '30 minutes' END
            FROM categories c WHERE c.code = 'X'"""),
            {"ext": ext, "unit": unit, "lon": lon, "source": source, "closed": closed, "rating": rating})


@pytest.fixture(scope="module")
def placed_url(databases) -> str:
    url = databases.create("placed")
    eng = store.engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text(CITY))
        _write_events(conn)
    eng.dispose()
    return url


def _held(conn) -> dict[str, int]:
    """What the database says each unit holds itself (the query of docs/schema.md §4)."""
    return dict(conn.execute(sa.text("""
        SELECT u.code, count(*) FROM events e JOIN units u ON u.id = e.grid_id
        WHERE EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id) GROUP BY u.code""")).all())


def test_placed_events_count_in_their_unit_and_above_and_the_rollups_add_up(placed_url):
    eng = store.engine(placed_url)
    tz = settings().timezone
    period = period_of("7d", tz)
    with eng.connect() as conn:
        grids = dict(conn.execute(sa.text(
            "SELECT e.external_id, u.code FROM events e LEFT JOIN units u ON u.id = e.grid_id")).all())
        assert grids == {"g1": "P-1-1", "g2": "P-1-2", "g3": "P-2-1", "d1": "P-1", "d2": "P-1", "d3": "P-1",
                         "d4": "P-1", "c1": "P", "c2": "P"}  # the trigger left the named units alone
        held = _held(conn)
        assert held == {"P-1": 4, "P": 2}
        rolled = conn.execute(sa.text(
            "SELECT u.code FROM rollup_units r JOIN units u ON u.id = r.unit_id")).scalars().all()
        assert rolled == ["P"]
        assert rollup.rolled_up(conn, [conn.execute(sa.text("SELECT id FROM units WHERE code = 'P'")).scalar()],
                                tz)  # the city's numbers below do come from the rollups

        # the rollup rows the triggers wrote are the rows a rebuild makes, and hold all nine
        written = conn.execute(sa.text("SELECT unit_id, day, grp, source, volume, closed, rated, satisfied "
                                       "FROM kpi_rollup WHERE volume <> 0 ORDER BY 1, 2, 3, 4")).all()
    with eng.begin() as conn:
        conn.execute(sa.text("SELECT cockpit_rollup_rebuild()"))
    with eng.connect() as conn:
        rebuilt = conn.execute(sa.text("SELECT unit_id, day, grp, source, volume, closed, rated, satisfied "
                                       "FROM kpi_rollup WHERE volume <> 0 ORDER BY 1, 2, 3, 4")).all()
        assert written == rebuilt and sum(r.volume for r in written) == len(EVENTS)

        city, city_plain = unit_view(conn, "P", period), unit_view(conn, "P", period, plain=True)
        district = unit_view(conn, "P-1", period)
        east_grid = unit_view(conn, "P-1-1", period)
        hotline = unit_view(conn, "P-1", period, Filters(source="hotline_12345"))
        city_hotline = unit_view(conn, "P", period, Filters(source="hotline_12345"))

    assert city == city_plain  # the rolled-up path and raw events agree, placed events included
    assert city["kpi"]["volume"] == 9 and city["placed_here"] == held["P"] == 2
    assert sum(c["volume"] for c in city["children"]) == 9 - 2
    assert {c["code"]: c["volume"] for c in city["children"]} == {"P-1": 6, "P-2": 1}
    # closed: g1 g3 d1 d2 c1; rated 4..5 of rated: g1 d1 c1 of g1 g3 d1 d2 c1
    assert (city["kpi"]["closed"], city["kpi"]["rated"], city["kpi"]["satisfied"]) == (5, 5, 3)

    assert district["kpi"]["volume"] == 6 and district["placed_here"] == held["P-1"] == 4
    assert sum(c["volume"] for c in district["children"]) == 6 - 4
    assert (district["kpi"]["closed"], district["kpi"]["open"]) == (3, 3)
    assert east_grid["placed_here"] == 0 and east_grid["kpi"]["volume"] == 1  # a leaf holds its own

    assert hotline["placed_here"] == 3 and hotline["kpi"]["volume"] == 3  # d4 came by mailbox
    assert city_hotline["placed_here"] == 2 and city_hotline["kpi"]["volume"] == 5

    for view, n in ((city, 2), (district, 4)):
        total = view["kpi"]["volume"]
        assert panels.placed_note(view, "zh") == (
            f"另有 {n} 件仅定位到本级（未落到下级），下级合计 {total - n} 件 = 本级 {total} 件 − {n} 件")
        assert panels.placed_note(view, "en") == (
            f"{n} events placed only at this level (not in any part below): "
            f"the parts below add up to {total - n} = {total} − {n}")
    assert panels.placed_note(unit_view_without_placed(city), "zh") == ""

    # `cockpit kpi` (the reference the cards are tested against) counts them too
    for code, view in (("P", city), ("P-1", district)):
        out = run_cli("kpi", "--unit", code, "--from", view["period"]["from"], "--to", view["period"]["to"],
                      "--json", url=placed_url)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert got["volume"] == view["kpi"]["volume"]
        assert {r: got[r] for r in RATES} == {r: view["kpi"][r] for r in RATES}
    eng.dispose()


def unit_view_without_placed(view: dict) -> dict:
    return {**view, "placed_here": 0}


# -- in the browser --------------------------------------------------------------------------

def _marker(dash_duo) -> dict:
    return dash_duo.driver.execute_script("""
        const s = document.querySelector('#view-state span');
        if (!s) return {};
        const out = {};
        for (const a of s.attributes) if (a.name.startsWith('data-')) out[a.name.slice(5)] = a.value;
        return out;""")


@pytest.mark.browser
def test_the_drilldown_says_how_many_events_are_placed_only_at_this_level(dash_duo, placed_url, use_store):
    from cockpit.callbacks.app import create_app

    use_store(placed_url)
    serve_signed_in(dash_duo, create_app())
    dash_duo.driver.set_window_size(1920, 1080)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit=P-1&period=7d")
    dash_duo._wait_for(lambda d: _marker(dash_duo).get("unit") == "P-1", timeout=25, msg="P-1 never shown")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "kpi-volume").text not in ("", "…"), timeout=25,
                       msg="KPI cards never filled")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "placed-note").text != "", timeout=25,
                       msg="no placed-only note")
    assert dash_duo.find_element("#store-status").text == ""
    state = _marker(dash_duo)

    eng = store.engine(placed_url)
    with eng.connect() as conn:
        n, total = conn.execute(sa.text("""
            SELECT count(*) FILTER (WHERE e.grid_id = d.id), count(*)
            FROM events e JOIN unit_closure cl ON cl.descendant_id = e.grid_id
            JOIN units d ON d.id = cl.ancestor_id
            WHERE d.code = 'P-1' AND e.reported_at >= CAST(:first AS timestamp) AT TIME ZONE :tz
              AND e.reported_at < (CAST(:last AS timestamp) + interval '1 day') AT TIME ZONE :tz"""),
            {"first": state["from"], "last": state["to"], "tz": settings().timezone.key}).one()
        kids = dict(conn.execute(sa.text("""
            SELECT k.code, count(e.id) FROM units k JOIN units d ON d.id = k.parent_id AND d.code = 'P-1'
            LEFT JOIN unit_closure cl ON cl.ancestor_id = k.id LEFT JOIN events e ON e.grid_id = cl.descendant_id
            GROUP BY k.code""")).all())
    eng.dispose()
    assert (n, total) == (4, 6) and sum(kids.values()) == total - n

    note = dash_duo.find_element("#placed-note").text
    assert note == f"另有 {count(n)} 件仅定位到本级（未落到下级），下级合计 {count(total - n)} 件 = 本级 {count(total)} 件 − {count(n)} 件"
    assert dash_duo.find_element("#ranking-note").text == note
    assert state["placed-here"] == str(n)
    assert dash_duo.find_element("#kpi-volume").text == count(total)
    ranking = {r.find_element(By.CSS_SELECTOR, "td.name").text: r.find_elements(By.CSS_SELECTOR, "td.num")[0].text
               for r in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".ranking-table tbody tr")}
    assert ranking == {"一网格": count(kids["P-1-1"]), "二网格": count(kids["P-1-2"])}
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "placed-here-zh-1920x1080.png"))

    # a grid holds its own events: no note; and in English the note reads the same number
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit=P-1-1&period=7d")
    dash_duo._wait_for(lambda d: _marker(dash_duo).get("unit") == "P-1-1", timeout=25, msg="P-1-1 never shown")
    assert dash_duo.find_element("#placed-note").text == "" and _marker(dash_duo)["placed-here"] == "0"
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit=P-1&period=7d&lang=en")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "placed-note").text != "", timeout=25,
                       msg="no placed-only note in English")
    assert dash_duo.find_element("#placed-note").text == (
        f"{n} events placed only at this level (not in any part below): the parts below add up to {total - n} = "
        f"{total} − {n}")
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "placed-here-en-1920x1080.png"))


@pytest.mark.browser
def test_the_placed_only_note_follows_a_live_insert(dash_duo, databases, use_store):
    """An event placed only at the district, written while the page is open: the note's number moves."""
    from cockpit.metrics import changes
    from conftest import start

    url = databases.create("placed_live")  # its own store: this test writes
    eng = store.engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text(CITY))
        _write_events(conn)
    use_store(url)
    try:
        start(dash_duo, "/?unit=P-1&period=7d")
        dash_duo._wait_for(lambda d: d.find_element(By.ID, "placed-note").text.startswith("另有 4 件"), timeout=25,
                           msg="no placed-only note of 4 events")
        with eng.begin() as conn:  # placed by its unit only, as an integrator would (no point)
            conn.execute(sa.text("""
                INSERT INTO events (source, external_id, category_id, reported_at, grid_id, deadline_at)
                SELECT 'hotline_12345', 'live-d5', c.id, now() - interval '1 minute',
                       (SELECT id FROM units WHERE code = 'P-1'), now() + interval '1 day'
                FROM categories c WHERE c.code = 'X'"""))
        want = "另有 5 件仅定位到本级（未落到下级），下级合计 2 件 = 本级 7 件 − 5 件"
        dash_duo._wait_for(lambda d: d.find_element(By.ID, "placed-note").text == want, timeout=15,
                           msg="the placed-only note never counted the new event")
        assert dash_duo.find_element("#ranking-note").text == want
        assert dash_duo.find_element("#kpi-volume").text == count(7)
    finally:
        changes.stop_all()
        eng.dispose()
