"""The drill-down screen in headless Chromium: what a person reads equals `cockpit kpi`.

The tests click real SVG polygons (each unit's path carries the class "unit-<code>"), follow the
breadcrumb and the browser's back button, open deep links, and read the numbers on the cards
against the real `cockpit` command for the period the page shows (#view-state's data-from/-to).
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from cockpit.config import settings
from cockpit.metrics.unit_view import Filters, event_history, grid_events, period_of, unit_by_code, unit_view
from cockpit.ui.formatting import MISSING, count, percent
from cockpit.layouts.events_table import local
from cockpit.layouts.live_parts import lid
from conftest import run_cli, serve_signed_in

pytestmark = pytest.mark.browser

RATES = ("closure_rate", "on_time_rate", "satisfaction_rate")
CARD_IDS = {"volume": "kpi-volume", "closure_rate": "kpi-closure-rate", "on_time_rate": "kpi-on-time-rate",
            "satisfaction_rate": "kpi-satisfaction-rate"}

# Record what the page posts to Dash callbacks: the map's geometry must never be among it.
RECORD_POSTS = """
window.__posts = [];
const original = window.fetch;
window.fetch = function (url, options) {
    if (options && options.body && String(url).indexOf('_dash-update-component') >= 0) {
        window.__posts.push(String(options.body));
    }
    return original.apply(this, arguments);
};
"""

# A point inside the polygon (the one nearest its box centre where the path itself is hit).
INTERIOR_POINT = """
const p = arguments[0], r = p.getBoundingClientRect();
const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
let best = null, bestD = Infinity;
for (let i = 1; i < 24; i++) {
    for (let j = 1; j < 24; j++) {
        const x = r.left + r.width * i / 24, y = r.top + r.height * j / 24;
        if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
        if (document.elementFromPoint(x, y) !== p) continue;
        const d = (x - cx) ** 2 + (y - cy) ** 2;
        if (d < bestD) { bestD = d; best = [x, y]; }
    }
}
return best;
"""


# -- helpers -------------------------------------------------------------------------------

def start(dash_duo, path: str = "/"):
    from cockpit.callbacks.app import create_app

    serve_signed_in(dash_duo, create_app())
    dash_duo.driver.set_window_size(1920, 1080)
    if path != "/":
        dash_duo.wait_for_page(f"{dash_duo.server_url}{path}")
    dash_duo.driver.execute_script(RECORD_POSTS)


def view_state(dash_duo) -> dict:
    return dash_duo.driver.execute_script("""
        const s = document.querySelector('#view-state span');
        if (!s) return {};
        const out = {};
        for (const a of s.attributes) if (a.name.startsWith('data-')) out[a.name.slice(5)] = a.value;
        return out;""")


def wait_for_unit(dash_duo, code: str, timeout: int = 25) -> dict:
    """Until the screen shows `code` with its numbers and its polygons drawn."""
    dash_duo._wait_for(lambda d: view_state(dash_duo).get("unit") == code, timeout=timeout,
                       msg=f"the screen never showed unit {code}")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "kpi-volume").text not in ("", "…"), timeout=timeout,
                       msg="KPI cards never filled")
    dash_duo._wait_for(lambda d: d.execute_script(
        "return document.querySelectorAll('.leaflet-overlay-pane path.unit-shape').length") > 0,
        timeout=timeout, msg="no polygons drawn")
    assert dash_duo.find_element("#store-status").text == ""
    return view_state(dash_duo)


def on_screen(dash_duo) -> dict:
    return {k: dash_duo.find_element(f"#{i}").text for k, i in CARD_IDS.items()}


def cli_kpis(code: str, first: str, last: str, url: str) -> dict:
    """`cockpit kpi --json` for the days first..last, formatted the way the screen formats it."""
    out = run_cli("kpi", "--unit", code, "--from", first, "--to", last, "--json", url=url)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["unit"]["code"] == code and got["period"]["from"] == first and got["period"]["to"] == last
    return {"volume": count(got["volume"]), **{r: percent(got[r]) for r in RATES}, "_raw": got}


def assert_screen_is_cli(dash_duo, url: str) -> dict:
    state = view_state(dash_duo)
    expected = cli_kpis(state["unit"], state["from"], state["to"], url)
    raw = expected.pop("_raw")
    assert on_screen(dash_duo) == expected, state
    assert dash_duo.find_element("#unit-name").text == raw["unit"]["name"]
    return raw


def click_unit(dash_duo, code: str) -> None:
    """A real mouse click inside the unit's polygon on the map."""
    selector = f".leaflet-overlay-pane path.unit-{code}"
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, selector), timeout=20,
                       msg=f"no polygon for {code}")
    driver = dash_duo.driver
    driver.execute_script("window.scrollTo(0, 0)")
    path = driver.find_element(By.CSS_SELECTOR, selector)
    point = driver.execute_script(INTERIOR_POINT, path)
    assert point, f"polygon {code} has no visible interior"
    map_el = driver.find_element(By.ID, "map")
    box = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                "return [r.left + r.width / 2, r.top + r.height / 2];", map_el)
    ActionChains(driver).move_to_element(map_el).move_by_offset(
        int(point[0] - box[0]), int(point[1] - box[1])).click().perform()


def busiest_child(conn, code: str, period) -> dict:
    kids = unit_view(conn, code, period, Filters())["children"]
    assert kids, f"{code} has no children"
    return max(kids, key=lambda k: (k["volume"], k["code"]))


def posts(dash_duo) -> list[str]:
    """What the page asked of the server, but for the live poll and the heat layer's own
    requests (ids "cockpit-…", layouts.live.lid), and what a new change token or the warnings'
    poll sets off: those run on their own clock."""
    clocks = {f"{lid('cockpit', 'live-token')}.data", "warnings-poll.n_intervals"}
    return [p for p in dash_duo.driver.execute_script("return window.__posts || []")
            if not json.loads(p)["output"].lstrip(".").startswith(lid("cockpit", ""))
            and not set(json.loads(p).get("changedPropIds") or ["?"]) <= clocks]


# -- tests ---------------------------------------------------------------------------------

def test_click_down_from_city_to_grid_and_back(dash_duo, demo_url, demo_engine, use_store):
    use_store(demo_url)
    tz = settings().timezone
    start(dash_duo)
    with demo_engine.connect() as conn:
        root = unit_by_code(conn, None)
    state = wait_for_unit(dash_duo, root.code)
    period = period_of("30d", tz)  # the page's default period, computed as the page does
    assert (state["period"], state["from"], state["to"]) == ("30d", period.first.isoformat(), period.last.isoformat())
    city = assert_screen_is_cli(dash_duo, demo_url)
    assert city["volume"] > 0
    assert "办结率" in dash_duo.find_element(".kpi-row").text

    trail = [root.code]
    with demo_engine.connect() as conn:
        while True:
            view = unit_view(conn, trail[-1], period, Filters())
            if not view["children"]:
                break
            child = busiest_child(conn, trail[-1], period)
            click_unit(dash_duo, child["code"])
            state = wait_for_unit(dash_duo, child["code"])
            assert state["level"] == child["level"]
            assert_screen_is_cli(dash_duo, demo_url)
            # the breadcrumb names the whole way down, each item holding its unit's code
            crumbs = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#breadcrumb .crumb")
            assert [c.get_attribute("data-code") for c in crumbs] == [*trail, child["code"]]
            trail.append(child["code"])
    assert len(trail) == 5, trail  # city, district, street, community, grid
    assert view_state(dash_duo)["leaf"] == "1"
    assert f"unit={trail[-1]}" in dash_duo.driver.current_url

    # the map posted clicks as codes only: no geometry ever went to the server
    sent = posts(dash_duo)
    assert sent and not any('"coordinates"' in body or '"geometry"' in body for body in sent)

    # browser back: one level up
    dash_duo.driver.back()
    wait_for_unit(dash_duo, trail[-2])
    assert_screen_is_cli(dash_duo, demo_url)

    # the breadcrumb's first item: back to the city, same numbers as at the start
    dash_duo.find_element(f"#breadcrumb .crumb[data-code='{root.code}'] a").click()
    wait_for_unit(dash_duo, root.code)
    assert on_screen(dash_duo) == {k: v for k, v in cli_kpis(root.code, period.first.isoformat(),
                                                             period.end.isoformat(), demo_url).items()
                                   if k != "_raw"}
    dash_duo.driver.back()
    wait_for_unit(dash_duo, trail[-2])
    assert dash_duo.get_logs() == []


def test_switching_the_map_kpi_restyles_without_the_server(dash_duo, demo_url, demo_engine, use_store):
    use_store(demo_url)
    start(dash_duo)
    with demo_engine.connect() as conn:
        root = unit_by_code(conn, None)
    wait_for_unit(dash_duo, root.code)
    fills = "return [...document.querySelectorAll('path.unit-shape')].map(p => p.getAttribute('fill'))"
    before = dash_duo.driver.execute_script(fills)
    n_posts = len(posts(dash_duo))
    label = [e for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#map-kpi label") if e.text == "办结率"][0]
    label.click()
    dash_duo._wait_for(lambda d: "kpi=closure_rate" in d.current_url, timeout=10, msg="URL kept the old KPI")
    dash_duo._wait_for(lambda d: d.execute_script(fills) != before, timeout=10, msg="map colours never changed")
    assert "legend-closure_rate" in dash_duo.find_element("#map-legend").get_attribute("innerHTML")
    assert len(posts(dash_duo)) == n_posts  # nothing asked of the server
    # a reload restores the same view, KPI included
    dash_duo.driver.refresh()
    wait_for_unit(dash_duo, root.code)
    assert dash_duo.find_element("#map-kpi input:checked").get_attribute("value") == "closure_rate"
    assert dash_duo.get_logs() == []


def test_a_source_filter_chosen_on_screen_applies_to_the_numbers(dash_duo, demo_url, demo_engine, use_store):
    use_store(demo_url)
    tz = settings().timezone
    with demo_engine.connect() as conn:
        district = busiest_child(conn, unit_by_code(conn, None).code, period_of("30d", tz))["code"]
    start(dash_duo, f"/?unit={district}")
    wait_for_unit(dash_duo, district)
    unfiltered = on_screen(dash_duo)["volume"]

    # hovering a child shows its name and its numbers
    with demo_engine.connect() as conn:
        view = unit_view(conn, district, period_of("30d", tz), Filters())
    child = view["children"][0]
    ActionChains(dash_duo.driver).move_to_element(
        dash_duo.find_element(f"path.unit-{child['code']}")).perform()
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip.unit-tip"), timeout=10,
                       msg="no tooltip on hover")
    tip = dash_duo.find_element(".leaflet-tooltip.unit-tip").text
    assert child["name"] in tip and count(child["volume"]) in tip and percent(child["closure_rate"]) in tip

    dash_duo.find_element("#filter-source").click()
    option = [e for e in dash_duo.driver.find_elements(By.XPATH, "//*[normalize-space(text())='物联感知']")
              if e.is_displayed()][0]
    option.click()
    dash_duo._wait_for(lambda d: view_state(dash_duo).get("source") == "iot", timeout=20, msg="filter not applied")
    assert "source=iot" in dash_duo.driver.current_url
    state = view_state(dash_duo)
    with demo_engine.connect() as conn:
        filtered = unit_view(conn, district, period_of("30d", tz), Filters(source="iot"))
    assert (state["from"], state["to"]) == (filtered["period"]["from"], filtered["period"]["to"])
    assert on_screen(dash_duo) == {"volume": count(filtered["kpi"]["volume"]),
                                   **{r: percent(filtered["kpi"][r]) for r in RATES}}
    assert on_screen(dash_duo)["volume"] != unfiltered
    assert dash_duo.get_logs() == []


def _a_street(conn) -> str:
    city = unit_by_code(conn, None)
    period = period_of("30d", settings().timezone)
    district = busiest_child(conn, city.code, period)
    return busiest_child(conn, district["code"], period)["code"]


def test_deep_links_restore_a_street(dash_duo, demo_url, demo_engine, use_store):
    use_store(demo_url)
    tz = settings().timezone
    with demo_engine.connect() as conn:
        street = _a_street(conn)
    start(dash_duo, f"/?unit={street}&period=7d")
    state = wait_for_unit(dash_duo, street)
    week = period_of("7d", tz)
    assert (state["from"], state["to"]) == (week.first.isoformat(), week.last.isoformat())
    raw = assert_screen_is_cli(dash_duo, demo_url)
    assert raw["volume"] > 0 and raw["unit"]["level"] == "street"
    assert "近7天" in dash_duo.find_element("#period").text

    # a custom range: both days included, in the URL as in `cockpit kpi --to`
    last = week.first - timedelta(days=1)
    first = last - timedelta(days=13)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit={street}&period=custom&from={first}&to={last}")
    state = wait_for_unit(dash_duo, street)
    assert (state["from"], state["to"]) == (first.isoformat(), last.isoformat())
    assert_screen_is_cli(dash_duo, demo_url)

    # filters in a shared link: group and source are restored with the view
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?unit={street}&period=7d&group=SR&source=grid_app")
    dash_duo._wait_for(lambda d: view_state(dash_duo).get("group") == "SR", timeout=25, msg="group lost")
    wait_for_unit(dash_duo, street)
    assert "group=SR" in dash_duo.driver.current_url and "source=grid_app" in dash_duo.driver.current_url
    with demo_engine.connect() as conn:
        filtered = unit_view(conn, street, week, Filters(group="SR", source="grid_app"))["kpi"]
    assert 0 < filtered["volume"] < raw["volume"]
    assert on_screen(dash_duo) == {"volume": count(filtered["volume"]), **{r: percent(filtered[r]) for r in RATES}}
    assert "网格员上报" in dash_duo.find_element("#filter-source").text
    assert "市容环境" in dash_duo.find_element("#filter-group").text
    assert dash_duo.get_logs() == []


def test_an_empty_period_shows_dashes_not_zero_percent(dash_duo, demo_url, use_store):
    use_store(demo_url)
    start(dash_duo, "/?period=custom&from=2001-01-01&to=2001-01-31")
    dash_duo._wait_for(lambda d: view_state(dash_duo).get("from") == "2001-01-01", timeout=25,
                       msg="the custom period never showed")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "kpi-volume").text not in ("", "…"), timeout=20,
                       msg="KPI cards never filled")
    expected = cli_kpis(view_state(dash_duo)["unit"], "2001-01-01", "2001-02-01", demo_url)
    assert expected["_raw"]["volume"] == 0
    assert on_screen(dash_duo) == {"volume": "0", **{r: MISSING for r in RATES}}
    assert "NaN" not in dash_duo.find_element(".kpi-row").text
    for card in ("kpi-closure-rate", "kpi-on-time-rate", "kpi-satisfaction-rate"):
        assert dash_duo.find_element(f"#{card}-detail").text == "0 / 0"  # the honest fraction behind "—"
        assert dash_duo.find_element(f"#{card}-delta").text.startswith(MISSING)


def test_grid_events_and_their_history(dash_duo, demo_url, demo_engine, use_store):
    use_store(demo_url)
    tz = settings().timezone
    period = period_of("30d", tz)
    with demo_engine.connect() as conn:
        code = _a_street(conn)
        while True:  # down the busiest branch to a grid
            kids = unit_view(conn, code, period, Filters())["children"]
            if not kids:
                break
            code = max(kids, key=lambda k: (k["volume"], k["code"]))["code"]
        events = grid_events(conn, code, period)
    assert events
    start(dash_duo, f"/?unit={code}")
    state = wait_for_unit(dash_duo, code)
    assert state["leaf"] == "1"
    assert_screen_is_cli(dash_duo, demo_url)

    # events on the map as points, overdue ones marked
    located = [e for e in events if e["lon"] is not None]
    dash_duo._wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.event-point")) == len(located),
                       timeout=10, msg="event points missing")
    assert len(dash_duo.driver.find_elements(By.CSS_SELECTOR, "path.event-overdue")) == \
        sum(1 for e in located if e["overdue"])

    # the table: newest first, reporters masked (张*, 138****5678), never a phone number in clear
    grid = "#events-grid"
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, f"{grid} .ag-center-cols-container .ag-row"),
                       timeout=15, msg="the events grid has no rows")
    headers = dash_duo.find_element(f"{grid} .ag-header").text
    assert "上报时间" in headers and "处置单位" in headers and "联系电话" in headers
    rows_text = dash_duo.find_element(f"{grid} .ag-center-cols-container").text
    assert "****" in rows_text and not re.search(r"1\d{10}", rows_text)
    first_row = dash_duo.find_element(f"{grid} .ag-center-cols-container .ag-row[row-index='0']")
    newest = events[0]
    assert first_row.get_attribute("row-id") == str(newest["id"])
    assert local(newest["reported_at"], tz) in first_row.text

    # a row click shows that event's transitions (the newest event that has moved on: one just
    # reported has none yet)
    with demo_engine.connect() as conn:
        target, history = next((e, h) for e in events[:20] if (h := event_history(conn, e["id"])))
    dash_duo.find_element(f"{grid} .ag-center-cols-container .ag-row[row-id='{target['id']}'] .ag-cell").click()
    dash_duo._wait_for(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#event-history .timeline li")) == len(history),
                       timeout=15, msg="history not shown")
    text = dash_duo.find_element("#event-history").text
    assert f"#{target['id']}" in text and local(history[-1]["at"], tz) in text
    assert dash_duo.get_logs() == []


def test_english_labels_for_the_drilldown(dash_duo, demo_url, use_store):
    use_store(demo_url)
    start(dash_duo, "/?lang=en&period=7d")
    dash_duo._wait_for(lambda d: view_state(dash_duo).get("period") == "7d", timeout=25, msg="no view")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "kpi-volume").text not in ("", "…"), timeout=20,
                       msg="KPI cards never filled")
    page = dash_duo.find_element(".page").text
    assert "Closure rate" in page and "Daily trend" in page and "Life cycle" in page
    assert "lang=en" in dash_duo.driver.current_url
    assert "办结率" not in dash_duo.find_element(".kpi-row").text


def test_an_unknown_unit_is_a_message(dash_duo, demo_url, use_store):
    use_store(demo_url)
    start(dash_duo, "/?unit=999999-999")
    dash_duo._wait_for(lambda d: "999999-999" in d.find_element(By.ID, "store-status").text, timeout=20,
                       msg="no message for an unknown unit")
    assert dash_duo.find_element("#kpi-volume").text == "…"


@pytest.mark.browser
def test_the_on_time_card_says_how_many_closed_events_had_no_deadline(dash_duo, databases, use_store):
    """A store of its own (this test writes): closed events that lost their deadline are named on the card."""
    from datetime import datetime, timezone

    from cockpit import store
    from cockpit.demo.load import load_demo

    url = databases.create("no_deadline")
    eng = store.engine(url)
    load_demo(eng, seed=5, grids=40, events=3000, days=20, now=datetime.now(timezone.utc), progress=lambda _: None)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE events SET deadline_at = NULL WHERE id IN "
                             "(SELECT id FROM events WHERE closed_at IS NOT NULL ORDER BY id DESC LIMIT 37)"))
    with eng.connect() as conn:
        city = conn.execute(sa.text("SELECT code FROM units WHERE parent_id IS NULL")).scalar()
    use_store(url)
    start(dash_duo, "/?period=30d")
    state = wait_for_unit(dash_duo, city)
    with eng.connect() as conn:
        n = conn.execute(sa.text("""
            SELECT count(*) FROM events WHERE closed_at IS NOT NULL AND deadline_at IS NULL
              AND reported_at >= CAST(:first AS timestamp) AT TIME ZONE :tz
              AND reported_at < (CAST(:last AS timestamp) + interval '1 day') AT TIME ZONE :tz"""),
            {"first": state["from"], "last": state["to"], "tz": settings().timezone.key}).scalar()
    eng.dispose()
    assert n > 0
    detail = dash_duo.find_element("#kpi-on-time-rate-detail").text
    assert detail.endswith(f" · 含 {count(n)} 件无时限（计为超时）"), detail
    # the rate itself still counts them as late: the screen equals `cockpit kpi`
    assert_screen_is_cli(dash_duo, url)
