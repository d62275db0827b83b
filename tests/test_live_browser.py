"""The live screens in headless Chromium: plain-SQL inserts seen within seconds, the wall's
numbers against the store, a store that goes away and comes back, nothing fetched from outside,
and screenshots (tests/artifacts/, kept by the run, git-ignored)."""
from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By

from cockpit.metrics import changes, live_view as live
from cockpit import store
from cockpit.config import settings
from cockpit.demo.load import load_demo
from cockpit.ui.formatting import count, percent
from cockpit.store.cluster import ManagedCluster
from conftest import start, viewport

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
LIVE_DEMO = {"seed": 5, "grids": 60, "events": 4000, "days": 8}
WALL_IDS = {"volume": "wall-volume", "closure_rate": "wall-closure-rate", "on_time_rate": "wall-on-time-rate",
            "satisfaction_rate": "wall-satisfaction-rate", "open": "wall-open", "overdue": "wall-overdue"}

INSERT = sa.text("""
    INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at)
    SELECT 'hotline_12345', :ext, c.id, now(), ST_PointOnSurface(g.geom), now() + interval '1 day'
    FROM categories c, (SELECT geom FROM units WHERE level = 'grid' ORDER BY random() LIMIT 1) g
    WHERE c.deadline_hours IS NOT NULL ORDER BY c.code LIMIT 1
    RETURNING id""")


@pytest.fixture
def live_url(databases, use_store):
    """A small store of its own (the tests write to it), with events up to now."""
    url = databases.create("live")
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None, **LIVE_DEMO)
    use_store(url)
    yield url
    changes.stop_all()


def insert_event(url: str, tag: str) -> int:
    with store.engine(url).begin() as conn:
        return conn.execute(INSERT, {"ext": f"TEST-{tag}-{time.time_ns()}"}).scalar()


def wait_text(dash_duo, selector: str, predicate, timeout: float, msg: str) -> str:
    dash_duo._wait_for(lambda d: predicate(d.find_element(By.CSS_SELECTOR, selector).text), timeout=timeout, msg=msg)
    return dash_duo.find_element(selector).text


def wall_ready(dash_duo, timeout: float = 30) -> None:
    wait_text(dash_duo, "#wall-volume", lambda s: s not in ("", "…"), timeout, "the wall's numbers never filled")
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#wall-ticker li[data-event]"), timeout=timeout,
                       msg="the ticker stayed empty")


def ticker_ids(dash_duo, page: str) -> list[str]:
    return dash_duo.driver.execute_script(
        f"return [...document.querySelectorAll('#{page}-ticker li[data-event]')].map(e => e.dataset.event)")


def heat_stats(dash_duo, map_id: str) -> dict:
    return dash_duo.driver.execute_script(f"return window.cockpitHeat.stats('{map_id}')")


def city_today(url: str) -> dict:
    with store.engine(url).connect() as conn:
        return live.wall_view(conn, None, settings().timezone)


def shown(n: dict) -> dict:
    return {k: percent(n[k]) if k.endswith("_rate") else count(n[k]) for k in WALL_IDS}


def test_wall_numbers_are_the_store_and_a_plain_insert_shows_within_seconds(dash_duo, live_url):
    start(dash_duo, "/wall?rotate=0")
    wall_ready(dash_duo)
    view = city_today(live_url)
    assert {k: dash_duo.find_element(f"#{i}").text for k, i in WALL_IDS.items()} == shown(view["city"])
    assert ticker_ids(dash_duo, "wall") == [str(e["id"]) for e in view["latest"]]
    strip = dash_duo.find_elements(".strip-item")
    assert [s.get_attribute("data-code") for s in strip] == [d["code"] for d in view["districts"]]
    overdue = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#wall-overdue-list [data-event]')].map(e => +e.dataset.event)")
    assert overdue == [r["id"] for r in view["overdue"]]
    dash_duo._wait_for(lambda d: heat_stats(dash_duo, "wall-map")["points"] > 0, timeout=15, msg="no heat drawn")
    heat_before = heat_stats(dash_duo, "wall-map")["events"]

    new_id = insert_event(live_url, "wall")
    committed = time.monotonic()
    dash_duo._wait_for(lambda d: str(new_id) in ticker_ids(dash_duo, "wall"), timeout=10,
                       msg="the inserted event never reached the ticker")
    seen_after = time.monotonic() - committed
    after = city_today(live_url)["city"]
    assert after["volume"] == view["city"]["volume"] + 1
    wait_text(dash_duo, "#wall-volume", lambda s: s == count(after["volume"]), 10, "the volume never moved")
    assert ticker_ids(dash_duo, "wall")[0] == str(new_id)
    dash_duo._wait_for(lambda d: heat_stats(dash_duo, "wall-map")["events"] == heat_before + 1, timeout=10,
                       msg="the new event never joined the heat layer")
    assert seen_after < 5, f"seen {seen_after:.1f} s after commit"  # loosely: the bench measures the figure


def test_cockpit_page_gets_the_same_live_events(dash_duo, live_url):
    start(dash_duo, "/?period=today")
    wait_text(dash_duo, "#kpi-volume", lambda s: s not in ("", "…"), 30, "cards never filled")
    dash_duo._wait_for(lambda d: ticker_ids(dash_duo, "cockpit"), timeout=20, msg="no ticker on the cockpit")
    before = city_today(live_url)["city"]["volume"]
    assert dash_duo.find_element("#kpi-volume").text == count(before)
    new_id = insert_event(live_url, "cockpit")
    dash_duo._wait_for(lambda d: str(new_id) in ticker_ids(dash_duo, "cockpit"), timeout=10,
                       msg="the inserted event never reached the cockpit's ticker")
    wait_text(dash_duo, "#kpi-volume", lambda s: s == count(before + 1), 10, "the card never counted it")


def test_replay_steps_through_the_last_day_hour_by_hour(dash_duo, live_url):
    start(dash_duo, "/wall?rotate=0")
    wall_ready(dash_duo)
    dash_duo.find_element("#wall-replay-play").click()
    label = wait_text(dash_duo, "#wall-replay-label", lambda s: "时段" in s, 15, "replay never started")
    dash_duo.find_element("#wall-replay-play").click()  # pause where it is
    time.sleep(2)
    label = dash_duo.find_element("#wall-replay-label").text
    hour = datetime.strptime(f"{datetime.now().year}-{label.split(' 时段')[0]}", "%Y-%m-%d %H:%M")
    start_utc = hour.replace(tzinfo=settings().timezone).astimezone(timezone.utc)
    with store.engine(live_url).connect() as conn:
        expected = conn.execute(sa.text("SELECT count(*) FROM events WHERE reported_at >= :s AND reported_at < :e"),
                                {"s": start_utc, "e": start_utc + timedelta(hours=1)}).scalar()
    dash_duo._wait_for(lambda d: heat_stats(dash_duo, "wall-map")["events"] == expected, timeout=10,
                       msg=f"replayed heat is not the hour {label} ({expected} events)")


def test_wall_rotates_through_the_districts_untouched(dash_duo, live_url):
    start(dash_duo, "/wall?rotate=2&kiosk=1")
    wall_ready(dash_duo)
    assert not dash_duo.find_element(".wall-controls").is_displayed()  # kiosk: no controls
    clock = datetime.strptime(dash_duo.find_element("#wall-clock").text, "%Y-%m-%d %H:%M:%S")
    city_now = datetime.now(settings().timezone).replace(tzinfo=None)
    assert abs((clock - city_now).total_seconds()) < 5  # the city's time, not the browser's zone
    city = dash_duo.find_element("#wall-focus-name").text
    first = wait_text(dash_duo, "#wall-focus-name", lambda s: s not in (city, "…"), 10, "focus never moved")
    focused = dash_duo.driver.execute_script("return document.querySelector('.strip-item.focused .strip-name').textContent")
    assert focused == first
    wait_text(dash_duo, "#wall-focus-name", lambda s: s not in (city, first, "…"), 10, "focus stopped at one district")


def test_english_wall_takes_every_label_from_the_table(dash_duo, live_url):
    from cockpit.ui.i18n import t

    start(dash_duo, "/wall?rotate=0&lang=en")
    wall_ready(dash_duo)
    labels = [e.text for e in dash_duo.find_elements(".wall-card-label")]
    assert labels == [t(k, "en") for k in WALL_IDS]
    assert dash_duo.find_element("#wall-live-status").text == t("live", "en")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in dash_duo.find_element(".wall-kpis").text)


def test_no_request_leaves_the_machine(dash_duo, live_url):
    start(dash_duo, "/")
    wait_text(dash_duo, "#kpi-volume", lambda s: s not in ("", "…"), 30, "cards never filled")
    pages = {}
    for path in ("/", "/wall?rotate=0"):
        dash_duo.wait_for_page(f"{dash_duo.server_url}{path}")
        if "wall" in path:
            wall_ready(dash_duo)
        time.sleep(3)  # heat, tiles, fonts: whatever the page asks for after it settles
        pages[path] = dash_duo.driver.execute_script(
            "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
    for path, urls in pages.items():
        assert len(urls) > 10, path  # the page really loaded its scripts
        outside = [u for u in urls if urlparse(u).hostname not in ("127.0.0.1", "localhost")]
        assert outside == [], (path, outside)


def test_screens_fit_1920_and_3840_without_scrollbars(dash_duo, live_url):
    ARTIFACTS.mkdir(exist_ok=True)
    start(dash_duo, "/wall?rotate=0&kiosk=1")
    for width, height in ((1920, 1080), (3840, 2160)):
        viewport(dash_duo, width, height)
        wall_ready(dash_duo)
        time.sleep(2)
        fit = dash_duo.driver.execute_script("""
            const d = document.documentElement, strip = document.querySelector('#wall-district-strip');
            return {sw: d.scrollWidth, sh: d.scrollHeight, w: innerWidth, h: innerHeight,
                    bottom: strip.getBoundingClientRect().bottom,
                    value: parseFloat(getComputedStyle(document.querySelector('#wall-volume')).fontSize)};""")
        assert fit["w"] == width and fit["h"] == height
        assert fit["sw"] <= width and fit["sh"] <= height, fit
        assert fit["bottom"] <= height, fit
        assert fit["value"] >= 0.05 * height, fit  # the big numbers scale with the screen
        dash_duo.driver.save_screenshot(str(ARTIFACTS / f"wall-{width}x{height}.png"))
    viewport(dash_duo, 1920, 1080)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/")
    wait_text(dash_duo, "#kpi-volume", lambda s: s not in ("", "…"), 30, "cards never filled")
    time.sleep(2)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "cockpit-1920x1080.png"))
    assert (ARTIFACTS / "wall-3840x2160.png").stat().st_size > 50_000


@pytest.fixture
def own_cluster(tmp_path, use_store, monkeypatch):
    """A managed PostgreSQL of the test's own, to stop and start under a watching wall."""
    cluster = ManagedCluster(tmp_path / "outage")
    url = cluster.up()
    from cockpit.store import migrate

    migrate.upgrade(store.engine(url))
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None, **LIVE_DEMO)
    use_store(url)
    monkeypatch.setenv("COCKPIT_APP_DATABASE_URL", cluster.url("app"))  # its own app role
    yield cluster, url
    changes.stop_all()
    store.forget_engines()
    cluster.down()
    shutil.rmtree(cluster.base, ignore_errors=True)


def test_wall_survives_the_store_going_away(dash_duo, own_cluster):
    cluster, url = own_cluster
    start(dash_duo, "/wall?rotate=0")
    wall_ready(dash_duo)
    assert dash_duo.find_element("#wall-live-status").text == "实时"
    numbers = {i: dash_duo.find_element(f"#{i}").text for i in WALL_IDS.values()}

    cluster.down()
    stopped = datetime.now(settings().timezone)
    badge = wait_text(dash_duo, "#wall-live-status", lambda s: s.startswith("数据暂停"), 20, "no outage badge")
    since = badge.split("自 ")[1].split(" ")[0]
    assert abs((datetime.strptime(since, "%H:%M").replace(year=stopped.year, month=stopped.month, day=stopped.day,
                                                          tzinfo=stopped.tzinfo) - stopped).total_seconds()) < 120
    assert "paused" in dash_duo.find_element("#wall-live-status").get_attribute("class")
    time.sleep(3)  # it keeps the last picture meanwhile
    assert {i: dash_duo.find_element(f"#{i}").text for i in WALL_IDS.values()} == numbers
    assert dash_duo.find_element("#wall-ticker li[data-event]").is_displayed()

    assert cluster.up() == url  # same port: the screens find it again
    wait_text(dash_duo, "#wall-live-status", lambda s: s == "实时", 40, "the wall never came back")
    new_id = insert_event(url, "back")
    dash_duo._wait_for(lambda d: str(new_id) in ticker_ids(dash_duo, "wall"), timeout=10,
                       msg="after recovery new events do not arrive")


def test_the_ticker_dates_what_is_not_from_today(dash_duo, databases, use_store):
    """A city whose events stop two days ago: every ticker item carries its date; one reported now does not."""
    url = databases.create("ticker_days")
    load_demo(store.engine(url), now=datetime.now(timezone.utc) - timedelta(days=2), progress=lambda _: None,
              seed=5, grids=60, events=800, days=4)
    use_store(url)
    try:
        start(dash_duo, "/wall?rotate=0")
        wall_ready(dash_duo)
        tz = settings().timezone
        latest = city_today(url)["latest"]
        times = dash_duo.driver.execute_script(
            "return [...document.querySelectorAll('#wall-ticker .tick-time')].map(e => e.textContent)")
        assert times == [e["reported_at"].astimezone(tz).strftime("%m-%d %H:%M") for e in latest] and times
        new_id = insert_event(url, "today")
        dash_duo._wait_for(lambda d: ticker_ids(dash_duo, "wall")[:1] == [str(new_id)], timeout=10,
                           msg="the event reported now never topped the ticker")
        top = dash_duo.find_element("#wall-ticker li[data-event] .tick-time").text
        assert datetime.strptime(top, "%H:%M:%S") and len(top) == 8  # today: the clock alone
        assert dash_duo.find_elements("#wall-ticker .tick-time")[1].text == times[0]
    finally:
        changes.stop_all()
