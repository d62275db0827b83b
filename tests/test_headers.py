"""Security headers (flask-talisman, callbacks/headers.py): a Content-Security-Policy the pages
draw under (no CSP violation in the browser's console), frame-ancestors, nosniff; no package
list at /_reload-hash."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from conftest import signed_in_client, start


@pytest.fixture
def make_app(demo_url, use_store, monkeypatch):
    from cockpit.callbacks.app import create_app

    use_store(demo_url)

    def make(**env):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return create_app()
    return make


def _csp(answer) -> dict[str, list[str]]:
    parts = [p.strip().split() for p in answer.headers["Content-Security-Policy"].split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def test_every_answer_carries_the_security_headers(make_app):
    app = make_app()
    client = app.server.test_client()
    for path in ("/login", "/", "/_dash-layout"):  # a page, a redirect, a 401
        answer = client.get(path)
        csp = _csp(answer)
        assert csp["frame-ancestors"] == ["'none'"] and csp["default-src"] == ["'self'"], path
        assert "'unsafe-eval'" not in csp["script-src"] and "'unsafe-inline'" not in csp["script-src"]
        assert any(s.startswith("'sha256-") for s in csp["script-src"])  # Dash's inline scripts, by hash
        assert len(set(csp["script-src"])) == len(csp["script-src"]), "a hash listed twice"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in answer.headers  # plain HTTP on an intranet
        assert answer.status_code != 302 or answer.headers["Location"].startswith("/login")  # never to https


def test_a_command_centre_portal_may_frame_it(make_app):
    app = make_app(COCKPIT_FRAME_ANCESTORS="https://portal.city.example, 'self'")
    answer = app.server.test_client().get("/login")
    assert _csp(answer)["frame-ancestors"] == ["https://portal.city.example", "'self'"]
    assert "X-Frame-Options" not in answer.headers


def test_a_frame_ancestor_that_is_not_an_origin_is_one_line(monkeypatch):
    from cockpit.config import settings
    from cockpit.errors import CockpitError

    monkeypatch.setenv("COCKPIT_FRAME_ANCESTORS", "x; script-src *")
    with pytest.raises(CockpitError, match="COCKPIT_FRAME_ANCESTORS"):
        settings()


def test_the_session_cookie_is_secure_over_https_only(make_app, demo_url):
    from conftest import sign_in_link, with_token

    app = make_app()
    plain = app.server.test_client().get(with_token("/", sign_in_link("admin", url=demo_url)))
    assert "Secure" not in plain.headers["Set-Cookie"]
    tls = app.server.test_client().get(with_token("/", sign_in_link("admin", url=demo_url)),
                                       base_url="https://cockpit.local")
    assert "Secure" in tls.headers["Set-Cookie"] and "HttpOnly" in tls.headers["Set-Cookie"]


def test_no_package_list_at_reload_hash(make_app, demo_url):
    client = signed_in_client(make_app(), url=demo_url)
    answer = client.get("/_reload-hash")
    assert answer.status_code == 404 and b"packages" not in answer.data


@pytest.mark.browser
def test_the_pages_draw_under_the_policy(dash_duo, make_app):
    """The drill-down (map, charts), the wall and the rankings draw with the CSP on, and the
    console holds no CSP violation (nor any other error)."""
    start(dash_duo, "/?lang=en", app=make_app())
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-overlay-pane path.unit-shape"), timeout=30,
                       msg="the map drew no unit")
    dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#trend-chart .main-svg"), timeout=30,
                       msg="the trend chart never drew")
    for path, selector in (("/wall?rotate=0&lang=en", ".leaflet-overlay-pane path.unit-shape"),
                           ("/rank?lang=en", "#rank-grid .ag-row")):
        dash_duo.wait_for_page(f"{dash_duo.server_url}{path}")
        dash_duo._wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, selector), timeout=30,
                           msg=f"{path} never drew {selector}")
    logs = dash_duo.get_logs() or []
    assert not [e for e in logs if "Content Security Policy" in e["message"] or "Content-Security-Policy" in e["message"]], logs
    assert not logs, logs
