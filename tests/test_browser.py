"""The first screen in headless Chromium: the numbers a person reads equal `cockpit kpi`."""
from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By

from cockpit.ui.formatting import count, percent
from conftest import run_cli, serve_signed_in

pytestmark = pytest.mark.browser


def wait_for_numbers(dash_duo):
    dash_duo.wait_for_element("#kpi-volume", timeout=20)
    dash_duo.wait_for_text_to_equal("#store-status", "", timeout=20)
    dash_duo._wait_for(lambda driver: driver.find_element(By.ID, "kpi-volume").text not in ("", "…"),
                       timeout=20, msg="KPI cards never filled")


def test_first_screen_shows_city_kpis_from_the_store(dash_duo, demo_url, use_store):
    use_store(demo_url)
    from cockpit.callbacks.app import create_app

    serve_signed_in(dash_duo, create_app())
    wait_for_numbers(dash_duo)

    cli = run_cli("kpi", "--unit", "440300", "--json", url=demo_url)
    expected = json.loads(cli.stdout)
    assert expected["volume"] > 0
    on_screen = {k: dash_duo.find_element(f"#kpi-{k.replace('_', '-')}").text
                 for k in ("volume", "closure_rate", "on_time_rate", "satisfaction_rate")}
    assert on_screen == {
        "volume": count(expected["volume"]),
        "closure_rate": percent(expected["closure_rate"]),
        "on_time_rate": percent(expected["on_time_rate"]),
        "satisfaction_rate": percent(expected["satisfaction_rate"]),
    }
    # Chinese labels, the district polygons on the map, and nothing fetched from outside
    assert "办结率" in dash_duo.find_element(".kpi-row").text
    dash_duo._wait_for(lambda d: d.execute_script(
        "return document.querySelectorAll('.leaflet-overlay-pane canvas, .leaflet-overlay-pane path').length") > 0,
        timeout=10, msg="no polygons drawn")
    urls = dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
    hosts = {urlparse(u).hostname for u in urls if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts
    assert dash_duo.get_logs() == []


def test_english_is_available(dash_duo, demo_url, use_store):
    use_store(demo_url)
    from cockpit.callbacks.app import create_app

    serve_signed_in(dash_duo, create_app())
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?lang=en")
    wait_for_numbers(dash_duo)
    assert "Closure rate" in dash_duo.find_element(".kpi-row").text


def test_store_outage_is_a_message_not_a_crash(dash_duo, empty_url, use_store):
    from cockpit import context
    from cockpit.callbacks.app import create_app
    from cockpit.callbacks.context import KEY

    use_store(empty_url)
    app = create_app()
    serve_signed_in(dash_duo, app)
    # the store goes away under a signed-in browser, which then reloads the page
    app.server.extensions[KEY] = context.for_web(url="postgresql://nobody@127.0.0.1:1/gone")
    dash_duo.wait_for_page(f"{dash_duo.server_url}/")
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "store-status").text == "数据暂不可用",
                       timeout=20, msg="no outage message")
    assert dash_duo.find_element("#kpi-volume").text == "…"
    # nothing internal reaches the browser: not the store's host, port or database
    page = dash_duo.driver.page_source
    assert "127.0.0.1:1" not in page and "gone" not in page and "Connection refused" not in page
