"""Hotspot warnings on screen, in headless Chromium. Warnings are written straight into the
`warnings` table of a small demo store (independent of detection): the panel on "/" lists the
shown unit's subtree newest first with the table's numbers, opening one explains it and drills
into its unit (zooming to a recurrence's spot), acknowledging writes through the writer role, and
another screen (the wall) follows a change made in the store. Screenshots go to tests/artifacts/."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from sqlalchemy.engine import make_url

from cockpit import store
from cockpit.config import settings
from cockpit.demo.load import load_demo
from cockpit.hotspots import store as hotspots
from cockpit.metrics import changes
from cockpit.store.cluster import ManagedCluster
from cockpit.ui.formatting import event_time
from cockpit.ui.i18n import t
from conftest import start, viewport

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
CITY = {"seed": 5, "grids": 60, "events": 4000, "days": 8}

INSERT = sa.text("""
    INSERT INTO warnings (kind, unit_id, category_id, "window", window_start, window_end, observed, expected,
                          statistic, p_value, q_value, detail, key, first_seen, last_seen)
    VALUES (:kind, :unit, :cat, :window, :start, :end, :observed, :expected, :stat, :p, :q, CAST(:detail AS jsonb),
            :key, :first, :last)
    RETURNING id""")


def _grids(conn) -> list[sa.Row]:
    """Grids with events, each with its district: (grid id, grid code, district code)."""
    return conn.execute(sa.text("""
        SELECT g.id, g.code, d.code AS district FROM units g
        JOIN unit_closure cl ON cl.descendant_id = g.id JOIN units d ON d.id = cl.ancestor_id AND d.level = 'district'
        WHERE g.level = 'grid' AND EXISTS (SELECT 1 FROM events e WHERE e.grid_id = g.id)
        ORDER BY d.code, g.code""")).all()


def plant_warnings(url: str) -> dict:
    """A surge and a cluster in one district, a recurrence (with its events) in another; newest
    first: recurrence, cluster, surge. Returns their ids and where they are."""
    now = datetime.now(timezone.utc)
    with store.engine(url).begin() as conn:
        grids = _grids(conn)
        first_d = grids[0].district
        a = [g for g in grids if g.district == first_d]
        b = next(g for g in grids if g.district != first_d)
        spot = conn.execute(sa.text("""
            SELECT e.category_id, ST_X(e.location) AS lon, ST_Y(e.location) AS lat FROM events e
            WHERE e.grid_id = :g AND e.location IS NOT NULL ORDER BY e.reported_at DESC LIMIT 1"""), {"g": b.id}).one()
        behind = conn.execute(sa.text(
            "SELECT id FROM events WHERE grid_id = :g AND category_id = :c ORDER BY reported_at DESC LIMIT 4"),
            {"g": b.id, "c": spot.category_id}).scalars().all()
        top = conn.execute(sa.text("SELECT id, name FROM categories ORDER BY id LIMIT 1")).one()

        def add(kind, unit, first, cat=None, window="24h", observed=23, expected=4.1, stat=5.6, p=0.0021,
                q=0.004, detail=None):
            return conn.execute(INSERT, {
                "kind": kind, "unit": unit, "cat": cat, "window": window, "start": now - timedelta(hours=24),
                "end": now, "observed": observed, "expected": expected, "stat": stat, "p": p, "q": q,
                "detail": json.dumps(detail or {}, ensure_ascii=False), "key": f"{kind}:{unit}:{first}",
                "first": now - timedelta(minutes=first), "last": now}).scalar()

        surge = add("surge", a[0].id, 90, detail={"top_category_id": top.id, "top_category_name": top.name,
                                                  "top_category_count": 9, "baseline_weeks": 4})
        cluster = add("cluster", a[1].id, 60, window="7d", observed=140, expected=None, stat=3.9, p=0.0001,
                      q=0.002, detail={"units": [a[1].id, a[2].id], "z": [3.9, 3.1]})
        recurrence = add("recurrence", b.id, 30, cat=spot.category_id, window="14d", observed=len(behind),
                         expected=0.02, stat=len(behind), p=0.00004, q=0.001,
                         detail={"lon": spot.lon, "lat": spot.lat, "radius_m": 50, "event_ids": behind})
        # an expired one: never listed
        expired = add("surge", a[0].id, 10, window="3h")
        conn.execute(sa.text("UPDATE warnings SET state = 'expired' WHERE id = :i"), {"i": expired})
    return {"surge": surge, "cluster": cluster, "recurrence": recurrence, "expired": expired,
            "district_a": first_d, "grid_b": b.code, "spot": (spot.lon, spot.lat), "behind": behind}


@pytest.fixture
def warned(databases, use_store, server_url, monkeypatch):
    """A small city with planted warnings; acknowledging goes through the cluster's writer role."""
    url = databases.create("warnings")
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None, **CITY)
    use_store(url)
    writer = make_url(server_url).set(username="cockpit_writer", database=make_url(url).database,
                                      password=ManagedCluster(settings().state_dir).secret("writer"))
    monkeypatch.setenv("COCKPIT_WRITER_DATABASE_URL", writer.render_as_string(hide_password=False))
    yield url, plant_warnings(url)
    changes.stop_all()


def listed(dash_duo, selector: str = "#warnings-list [data-warning]") -> list[dict]:
    return dash_duo.driver.execute_script(
        f"return [...document.querySelectorAll('{selector}')].map(e => ({{id: +e.dataset.warning, "
        "state: e.dataset.state, text: e.textContent}))")


def wait_listed(dash_duo, ids: list[int], msg: str, selector: str = "#warnings-list [data-warning]") -> list[dict]:
    dash_duo._wait_for(lambda d: [w["id"] for w in listed(dash_duo, selector)] == ids, timeout=20, msg=msg)
    return listed(dash_duo, selector)


def table(url: str, unit: str | None = None) -> list:
    with store.engine(url).connect() as conn:
        return hotspots.in_force(conn, unit_code=unit)


def test_the_panel_lists_the_shown_units_warnings_newest_first_with_the_tables_numbers(dash_duo, warned):
    url, w = warned
    start(dash_duo, "/")
    everything = table(url)
    assert [x.id for x in everything] == [w["recurrence"], w["cluster"], w["surge"]]  # newest first
    shown = wait_listed(dash_duo, [x.id for x in everything], "the city's warnings never showed")
    tz = settings().timezone
    for item, x in zip(shown, everything):
        assert x.explain("zh") in item["text"] and x.unit_name in item["text"]
        assert event_time(x.first_seen, tz) in item["text"]
    assert "23 起，预期 4.1 起（p = 0.0021）" in shown[2]["text"]  # the surge's own numbers, as stored
    badge = dash_duo.find_element("#warnings-badge")
    assert badge.get_attribute("data-new") == "3" and badge.text == t("warnings_new", "zh").format(n=3)
    # the map outlines every warned unit (the cluster's two) and marks the recurrence's spot
    dash_duo._wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.warning-outline")) == 4, timeout=10,
                       msg="the warned units' outlines were not drawn")
    assert len(dash_duo.find_elements("path.warning-spot")) == 1

    # one district: only its subtree's warnings
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit={w['district_a']}")
    in_a = table(url, w["district_a"])
    assert [x.id for x in in_a] == [w["cluster"], w["surge"]]
    wait_listed(dash_duo, [x.id for x in in_a], "the district's panel is not its subtree")
    assert dash_duo.find_element("#warnings-badge").get_attribute("data-new") == "2"


def test_opening_a_recurrence_explains_it_drills_in_and_zooms_to_the_spot(dash_duo, warned):
    url, w = warned
    start(dash_duo, "/")
    wait_listed(dash_duo, [w["recurrence"], w["cluster"], w["surge"]], "no warnings")
    dash_duo.find_element(f"#warnings-list [data-warning='{w['recurrence']}']").click()
    dash_duo._wait_for(lambda d: f"unit={w['grid_b']}" in d.current_url, timeout=10, msg="no drill into the unit")
    with store.engine(url).connect() as conn:
        x = hotspots.get(conn, w["recurrence"])
        grid = conn.execute(sa.text("SELECT name FROM units WHERE code = :c"), {"c": w["grid_b"]}).scalar()
    dash_duo.wait_for_text_to_equal("#unit-name", grid, timeout=15)
    assert dash_duo.find_element("#warning-explain").text == x.explain("zh")
    events = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#warning-events [data-event]')].map(e => +e.dataset.event)")
    assert sorted(events) == sorted(w["behind"])  # exactly the events behind it
    bars = dash_duo.driver.execute_script(
        "const g = document.querySelector('#warning-chart .js-plotly-plot'); return g && g.data.map(s => s.y.length)")
    assert bars and all(n > 0 for n in bars)  # observed and baseline
    dash_duo._wait_for(lambda d: d.execute_script("return window.cockpitHeat.map('map').getZoom()") == 16,
                       timeout=10, msg="the map never zoomed to the spot")
    centre = dash_duo.driver.execute_script("const c = window.cockpitHeat.map('map').getCenter(); return [c.lng, c.lat]")
    assert abs(centre[0] - w["spot"][0]) < 1e-4 and abs(centre[1] - w["spot"][1]) < 1e-4
    assert "open" in dash_duo.find_element(f"[data-warning='{w['recurrence']}']").get_attribute("class")
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "warning-recurrence-zh-1920x1080.png"))


def test_opening_a_surge_drills_into_its_unit_and_the_english_page_explains_it_in_english(dash_duo, warned):
    url, w = warned
    start(dash_duo, "/?lang=en")
    wait_listed(dash_duo, [w["recurrence"], w["cluster"], w["surge"]], "no warnings")
    dash_duo.find_element(f"#warnings-list [data-warning='{w['surge']}']").click()
    with store.engine(url).connect() as conn:
        x = hotspots.get(conn, w["surge"])
    dash_duo._wait_for(lambda d: f"unit={x.unit_code}" in d.current_url, timeout=10, msg="no drill into the unit")
    dash_duo.wait_for_text_to_equal("#warning-explain", x.explain("en"), timeout=10)
    assert "observed 23 vs expected 4.1 (p = 0.0021)" in x.explain("en")
    assert dash_duo.find_element(".warning-detail-head .warning-tag").text == "Surge"
    time.sleep(1)
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "warning-surge-en-1920x1080.png"))


def test_acknowledging_writes_the_store_and_another_screen_follows(dash_duo, warned):
    url, w = warned
    start(dash_duo, "/", role="duty")
    wait_listed(dash_duo, [w["recurrence"], w["cluster"], w["surge"]], "no warnings")
    dash_duo.find_element(f"#warnings-list [data-warning='{w['surge']}']").click()
    dash_duo.wait_for_element("#ack-who", timeout=10)
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "warning-detail").is_displayed(), timeout=10, msg="not opened")
    ack = dash_duo.find_element("#ack-button")
    # who acknowledges is the signed-in account, shown and not typed
    who = dash_duo.find_element("#ack-who")
    assert who.get_attribute("value").startswith("test-duty") and not who.is_enabled()
    assert table(url)[2].state == "new"
    dash_duo.find_element("#ack-note").send_keys("已派网格员核查")
    ack.click()
    dash_duo.wait_for_text_to_equal("#ack-status", t("ack_done", "zh"), timeout=10)
    with store.engine(url).connect() as conn:
        row = conn.execute(sa.text("SELECT state, acknowledged_by, acknowledged_at, note FROM warnings WHERE id = :i"),
                           {"i": w["surge"]}).one()
    assert (row.state, row.acknowledged_by, row.note) == ("acknowledged", who.get_attribute("value"), "已派网格员核查")
    assert row.acknowledged_at is not None
    dash_duo._wait_for(lambda d: {x["id"]: x["state"] for x in listed(dash_duo)}.get(w["surge"]) == "acknowledged",
                       timeout=10, msg="the list never showed the acknowledgement")
    assert dash_duo.find_element("#warnings-badge").get_attribute("data-new") == "0"  # its grid has no other
    assert who.get_attribute("value") in dash_duo.find_element("#warning-ack-state").text
    with store.engine(url).connect() as conn:  # on the record
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'warning_acknowledge' "
                                    "AND (detail->>'warning')::int = :i"), {"i": w["surge"]}).scalar() == 1

    # another screen: the wall lists the city's warnings; one acknowledged in the store elsewhere follows
    dash_duo.wait_for_page(f"{dash_duo.server_url}/wall?rotate=0")
    wall = "#wall-warnings [data-warning]"
    shown = wait_listed(dash_duo, [w["recurrence"], w["cluster"], w["surge"]], "no warnings on the wall", wall)
    assert [x["state"] for x in shown] == ["new", "new", "acknowledged"]
    with store.engine(url).begin() as conn:
        hotspots.acknowledge(conn, w["recurrence"], "李值班", "复核中")
    dash_duo._wait_for(lambda d: listed(dash_duo, wall)[0]["state"] == "acknowledged", timeout=15,
                       msg="the wall never followed an acknowledgement made elsewhere")
    assert "李值班" in listed(dash_duo, wall)[0]["text"]


def test_screenshots_of_the_wall_with_warnings_fit_1920_and_3840(dash_duo, warned):
    url, w = warned
    ARTIFACTS.mkdir(exist_ok=True)
    # the newest three are listed, the rest counted
    with store.engine(url).begin() as conn:
        older = conn.execute(sa.text("""
            INSERT INTO warnings (kind, unit_id, "window", window_start, window_end, observed, key, first_seen, last_seen)
            SELECT 'surge', unit_id, '7d', window_start, window_end, 40 + n, key || '-old' || n,
                   first_seen - make_interval(hours => n), last_seen
            FROM warnings, generate_series(1, 4) n WHERE id = :i RETURNING id"""), {"i": w["surge"]}).all()
    assert len(older) == 4
    for lang in ("zh", "en"):
        start(dash_duo, f"/wall?rotate=0&kiosk=1&lang={lang}") if lang == "zh" else \
            dash_duo.wait_for_page(f"{dash_duo.server_url}/wall?rotate=0&kiosk=1&lang={lang}")
        for width, height in ((1920, 1080), (3840, 2160)):
            viewport(dash_duo, width, height)
            wait_listed(dash_duo, [w["recurrence"], w["cluster"], w["surge"]], "no warnings on the wall",
                        "#wall-warnings [data-warning]")
            time.sleep(1.5)
            fit = dash_duo.driver.execute_script("""
                const d = document.documentElement, p = document.querySelector('.wall-warnings-panel');
                const rows = [...p.querySelectorAll('[data-warning]')];
                return {sw: d.scrollWidth, sh: d.scrollHeight,
                        bottom: Math.max(...rows.map(r => r.getBoundingClientRect().bottom)),
                        more: document.querySelector('#wall-warnings-more').getBoundingClientRect().bottom,
                        panel: p.getBoundingClientRect().bottom};""")
            assert fit["sw"] <= width and fit["sh"] <= height, fit
            assert fit["bottom"] <= fit["panel"] and fit["more"] <= fit["panel"], fit  # all inside its panel
            assert dash_duo.find_element("#wall-warnings-more").text == t("warnings_more", lang).format(n=4)
            if width == 1920:
                dash_duo.driver.save_screenshot(str(ARTIFACTS / f"wall-warnings-{lang}-1920x1080.png"))
