"""The rankings page (/rank) in headless Chromium: what a person reads equals `cockpit rank`.

Opens /rank from the drill-down's header, picks a level and a month in the controls, reads the
first rows against the real `cockpit rank --json`, sorts, searches, clicks a row into the
drill-down of that unit for the same days, and saves screenshots at 1920×1080 in both languages
(tests/artifacts/, kept by the run, git-ignored)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from cockpit.config import settings
from cockpit.ui.formatting import rate_interval
from conftest import run_cli, start

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"


def last_month() -> str:
    return (datetime.now(settings().timezone).date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def marker(dash_duo) -> dict:
    return dash_duo.driver.execute_script("""
        const s = document.querySelector('#rank-state span');
        if (!s) return {};
        const out = {};
        for (const a of s.attributes) if (a.name.startsWith('data-')) out[a.name.slice(5)] = a.value;
        return out;""")


def rows_on_screen(dash_duo) -> list[dict]:
    """The grid's rows as displayed, top to bottom: {col-id: text}."""
    return dash_duo.driver.execute_script("""
        const rows = [...document.querySelectorAll('#rank-grid .ag-center-cols-container .ag-row')];
        const pinned = [...document.querySelectorAll('#rank-grid .ag-pinned-left-cols-container .ag-row')];
        const byIndex = r => Number(r.getAttribute('row-index'));
        rows.sort((a, b) => byIndex(a) - byIndex(b));
        return rows.map(r => {
            const out = {id: r.getAttribute('row-id')};
            for (const c of r.querySelectorAll('.ag-cell')) out[c.getAttribute('col-id')] = c.innerText.trim();
            const p = pinned.find(x => x.getAttribute('row-index') === r.getAttribute('row-index'));
            if (p) for (const c of p.querySelectorAll('.ag-cell')) out[c.getAttribute('col-id')] = c.innerText.trim();
            return out;
        });""")


def pick(dash_duo, element_id: str, label: str) -> None:
    dash_duo.find_element(f"#{element_id}").click()
    option = [e for e in dash_duo.driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{label}']")
              if e.is_displayed()][0]
    option.click()


def cli_rows(url: str, *args: str) -> list[dict]:
    got = run_cli("rank", *args, "--json", url=url)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)["rows"]


def test_pick_level_and_month_read_like_the_cli_and_open_the_drilldown(dash_duo, demo_url, use_store):
    use_store(demo_url)
    start(dash_duo, "/?lang=zh")
    link = dash_duo.wait_for_element("#rank-link")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "unit-name").text != "…", timeout=25, msg="/ did not render")
    fits = dash_duo.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.right <= innerWidth && r.width > 0 "
        "&& document.documentElement.scrollWidth <= innerWidth;", link)
    assert fits, "the header's link to /rank does not fit at 1920 px"
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "rank-link-on-drilldown-1920x1080-zh.png"))
    link.click()
    dash_duo._wait_for(lambda d: marker(dash_duo).get("level"), timeout=25, msg="/rank did not render")
    assert "/rank" in dash_duo.driver.current_url

    month = last_month()
    pick(dash_duo, "rank-level", "街道")
    pick(dash_duo, "rank-period", f"{month} · 月")
    dash_duo._wait_for(lambda d: marker(dash_duo).get("level") == "street" and marker(dash_duo).get("period") == month,
                       timeout=25, msg="level / month not applied")
    assert "level=street" in dash_duo.driver.current_url and f"period={month}" in dash_duo.driver.current_url

    expected = cli_rows(demo_url, "--level", "street", "--period", month)
    dash_duo._wait_for(lambda d: rows_on_screen(dash_duo) and rows_on_screen(dash_duo)[0]["id"] == expected[0]["key"],
                       timeout=20, msg="table not the CLI's")
    shown = rows_on_screen(dash_duo)
    assert [r["id"] for r in shown] == [r["key"] for r in expected]
    first, want = shown[0], expected[0]
    assert first["rank"] == str(want["rank"]) and want["name"] in first["name"]
    assert first["volume"] == f"{want['volume']:,}" and first["score"] == f"{want['score']:.2f}"
    for name in ("closure", "on_time", "satisfaction"):
        assert first[f"{name}_rate"] == rate_interval(want[f"{name}_rate"], want[f"{name}_low"], want[f"{name}_high"])
    assert dash_duo.find_elements("#rank-grid svg.spark")  # the trend sparklines are drawn

    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "rank-1920x1080-zh.png"))

    # sorting by volume (ascending on the first click) puts the smallest street first
    dash_duo.find_element("#rank-grid .ag-header-cell[col-id='volume'] .ag-header-cell-label").click()
    smallest = min(expected, key=lambda r: (r["volume"]))
    dash_duo._wait_for(lambda d: rows_on_screen(dash_duo)[0]["volume"] == f"{smallest['volume']:,}", timeout=10,
                       msg="sorting by volume did not reorder")

    # the quick filter keeps the rows whose name matches
    target = expected[1]
    dash_duo.find_element("#rank-search").send_keys(target["name"])
    dash_duo._wait_for(lambda d: [r["id"] for r in rows_on_screen(dash_duo)] == [target["key"]], timeout=10,
                       msg="search did not filter")

    # a row opens the drill-down of that unit, same days
    dash_duo.find_element(f"#rank-grid .ag-row[row-id='{target['key']}'] .ag-cell[col-id='score']").click()
    dash_duo._wait_for(lambda d: f"unit={target['key']}" in d.current_url, timeout=20, msg="row did not open")
    first_day = f"{month}-01"
    assert f"from={first_day}" in dash_duo.driver.current_url and "period=custom" in dash_duo.driver.current_url
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "unit-name").text == target["name"], timeout=25,
                       msg="drill-down did not show the unit")
    assert dash_duo.get_logs() == []


def test_departments_in_english_with_the_scoring_panel(dash_duo, demo_url, use_store):
    use_store(demo_url)
    month = last_month()
    start(dash_duo, f"/rank?by=department&period={month}&lang=en")
    dash_duo._wait_for(lambda d: marker(dash_duo).get("by") == "department", timeout=25, msg="/rank did not render")
    expected = cli_rows(demo_url, "--by", "department", "--period", month)
    dash_duo._wait_for(lambda d: [r["id"] for r in rows_on_screen(dash_duo)] == [r["key"] for r in expected],
                       timeout=20, msg="departments not the CLI's")
    how = dash_duo.find_element("#rank-how").text
    assert "Wilson" in how and "0.3" in how and "0.4" in how and "30 events" in how
    assert dash_duo.find_element("#report-slot").is_displayed()
    assert dash_duo.find_element("#rank-level-wrap").value_of_css_property("display") == "none"
    dash_duo.find_element("#rank-by label:first-child").click()  # back to units: the level returns
    dash_duo._wait_for(lambda d: marker(dash_duo).get("by") == "unit", timeout=25, msg="by unit not applied")
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "rank-1920x1080-en.png"))
    assert dash_duo.get_logs() == []


def test_a_bad_period_in_the_url_is_a_one_line_message(dash_duo, demo_url, use_store):
    use_store(demo_url)
    start(dash_duo, "/rank?period=2026-13")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "rank-status").text, timeout=25, msg="no message")
    assert dash_duo.find_element("#rank-status").text == "period '2026-13' has no month 13"


def test_back_and_forward_bring_the_ranking_of_that_url_back(dash_duo, demo_url, use_store):
    use_store(demo_url)
    month = last_month()
    start(dash_duo, f"/rank?level=district&period={month}&lang=zh")
    dash_duo._wait_for(lambda d: marker(dash_duo).get("level") == "district", timeout=25, msg="/rank did not render")
    pick(dash_duo, "rank-level", "街道")
    dash_duo._wait_for(lambda d: marker(dash_duo).get("level") == "street", timeout=25, msg="level not applied")
    dash_duo.find_element("#rank-period").click()
    week = [e for e in dash_duo.driver.find_elements(By.XPATH, "//*[contains(normalize-space(text()), ' · 周')]")
            if e.is_displayed()][0]
    week_label = week.text.split(" · ")[0]
    week.click()
    dash_duo._wait_for(lambda d: marker(dash_duo).get("period") == week_label, timeout=25, msg="week not applied")

    def shows(level, period):
        m = marker(dash_duo)
        rows = rows_on_screen(dash_duo)
        want = cli_rows(demo_url, "--level", level, "--period", period)
        return (m.get("level") == level and m.get("period") == period and rows
                and [r["id"] for r in rows] == [r["key"] for r in want])

    dash_duo.driver.back()
    dash_duo._wait_for(lambda d: shows("street", month), timeout=25, msg="back did not bring the month back")
    assert f"period={month}" in dash_duo.driver.current_url
    assert dash_duo.find_element("#rank-level").text.strip().startswith("街道")
    dash_duo.driver.back()
    dash_duo._wait_for(lambda d: shows("district", month), timeout=25, msg="back did not bring the districts back")
    dash_duo.driver.forward()
    dash_duo._wait_for(lambda d: shows("street", month), timeout=25, msg="forward did not bring the streets back")
    dash_duo.driver.forward()
    dash_duo._wait_for(lambda d: shows("street", week_label), timeout=25, msg="forward did not bring the week back")
    assert dash_duo.get_logs() == []
