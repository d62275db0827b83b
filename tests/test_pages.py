"""Pages are chosen by their path (Dash Pages), never guessed from a Referer; errors reach a
browser as one mapped line, never the store's address or PostgreSQL's own words."""
from __future__ import annotations

import json

import pytest

from conftest import component_ids, router_request, serve_signed_in, signed_in_client
from selenium.webdriver.common.by import By

NO_STORE = "postgresql://nobody:secret@127.0.0.1:1/gone_db"


@pytest.fixture
def client(empty_url, use_store):
    from cockpit.callbacks.app import create_app

    use_store(empty_url)  # rendering a page needs no data, but knowing who asks needs the store
    return signed_in_client(create_app())


@pytest.mark.parametrize("referer", [None, "http://127.0.0.1:8050/", "http://elsewhere.example/"])
def test_the_path_decides_the_page_whatever_the_referer(client, referer):
    headers = {"Referer": referer} if referer else {}
    wall = router_request(client, "/wall", "?kiosk=1&rotate=5", **headers)
    assert wall.status_code == 200
    ids = component_ids(wall.get_json())
    assert "wall-volume" in ids and "kpi-volume" not in ids
    home = router_request(client, "/", "?unit=440303&lang=en", **headers)
    ids = component_ids(home.get_json())
    assert "kpi-volume" in ids and "wall-volume" not in ids


def test_query_parameters_arrive_as_the_layout_arguments(client):
    wall = json.dumps(router_request(client, "/wall", "?kiosk=1&rotate=7&lang=en&heat=7d").get_json())
    assert '"rotate": 7' in wall and '"kiosk": true' in wall and "Cockpit" in wall  # English label
    home = json.dumps(router_request(client, "/", "?period=7d&kpi=closure_rate").get_json())
    assert '"value": "7d"' in home and '"value": "closure_rate"' in home


def test_odd_wall_options_fall_back_instead_of_failing(client):
    for search in ("?rotate=%C2%B2", "?rotate=-3", "?rotate=99999999999", "?heat=forever", "?kiosk=%00"):
        r = router_request(client, "/wall", search)
        assert r.status_code == 200, search
    body = json.dumps(router_request(client, "/wall", "?rotate=99999999999").get_json())
    assert '"rotate": 86400' in body  # capped: a browser timer cannot run longer than ~24 days


def test_an_unknown_path_is_a_page_not_found(client):
    r = router_request(client, "/nowhere")
    assert r.status_code == 200 and "页面不存在" in json.dumps(r.get_json(), ensure_ascii=False)


def test_geo_errors_are_mapped_and_say_nothing_internal(demo_url, use_store):
    from cockpit import context
    from cockpit.callbacks.app import create_app
    from cockpit.callbacks.context import KEY

    use_store(demo_url)
    app = create_app()
    live = signed_in_client(app)
    gone = signed_in_client(app)
    # the store goes away under a signed-in browser: 503 and a plain message, no host, port,
    # database or password, for the map's polygons and for a page alike
    app.server.extensions[KEY] = context.for_web(url=NO_STORE)
    r = gone.get("/geo/440303.json")
    assert r.status_code == 503
    text = r.get_data(as_text=True)
    assert "unavailable" in text.lower()
    for secret in ("127.0.0.1", ":1", "gone_db", "nobody", "secret", "refused"):
        assert secret not in text, secret
    app.server.extensions[KEY] = context.for_web()
    missing = live.get("/geo/NO-SUCH-UNIT.json")
    assert missing.status_code == 404 and missing.get_json() == {"error": "no unit with code 'NO-SUCH-UNIT'"}
    assert live.get("/geo/_root.json").status_code == 200


@pytest.mark.browser
def test_wall_shows_the_wall_with_no_referrer(dash_duo, demo_url, use_store):
    """Behind a proxy that strips referrers (or a policy that sends none), /wall is the wall."""
    use_store(demo_url)
    from cockpit.callbacks.app import create_app

    app = create_app()

    @app.server.after_request
    def no_referrer(resp):
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    serve_signed_in(dash_duo, app)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/wall?rotate=0")
    dash_duo.wait_for_element("#wall-volume", timeout=20)
    dash_duo._wait_for(lambda d: d.find_element(By.ID, "wall-volume").text not in ("", "…"), timeout=20,
                       msg="the wall's numbers never filled")
    assert not dash_duo.driver.find_elements(By.ID, "kpi-volume")
    referrer = dash_duo.driver.execute_script("return document.referrer")
    assert referrer == ""
