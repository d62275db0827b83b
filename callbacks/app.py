"""The Dash application: pages from cockpit.layouts, behaviour from cockpit.callbacks."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import flask
from dash import Dash, html

from cockpit.callbacks import drilldown, live_parts as live, tiles_route, wall
from cockpit.ui.url_state import ViewState, parse
from cockpit.config import REPO_ROOT, settings
from cockpit.ui.i18n import LANGS, t
from cockpit.layouts import drilldown as drilldown_layout
from cockpit.layouts import wall as wall_layout
from cockpit.layouts.live_parts import DEFAULT_HEAT, HEAT_CHOICES


def _page_url() -> tuple[str, str]:
    """The page's own path and query string.

    Dash fetches the layout with a separate request (/_dash-layout): the page's own URL, and so
    its path, ?lang= and view state, arrives as that request's Referer.
    """
    if not flask.has_request_context():
        return "/", ""
    if not flask.request.path.endswith("_dash-layout"):
        return flask.request.path, flask.request.query_string.decode()
    ref = urlparse(flask.request.referrer or "")
    return ref.path or "/", ref.query


def _lang(query: str) -> str:
    """?lang=en|zh on the page URL, else COCKPIT_LANG (default zh)."""
    asked = parse_qs(query).get("lang", [None])[0]
    return asked if asked in LANGS else settings().lang


def _wall_options(query: str) -> dict:
    """?kiosk=1, ?rotate=<seconds> (else COCKPIT_WALL_ROTATE), ?heat=1h|24h|7d|off."""
    q = {k: v[0] for k, v in parse_qs(query).items()}
    rotate = q.get("rotate", "")
    heat = q.get("heat")
    return {
        "kiosk": q.get("kiosk", "0") not in ("0", "", "false", "no"),
        "rotate": int(rotate) if rotate.isdigit() else settings().wall_rotate,
        "heat_window": heat if heat in HEAT_CHOICES else DEFAULT_HEAT,
    }


def _layout():
    path, query = _page_url()
    lang = _lang(query)
    if path.rstrip("/").endswith("/wall"):
        return wall_layout.layout(lang, **_wall_options(query))
    state = parse(query) if query else ViewState()
    return drilldown_layout.layout(lang, state)


def create_app() -> Dash:
    app = Dash(
        __name__,
        title=t("title", settings().lang),
        assets_folder=str(REPO_ROOT / "assets"),
        serve_locally=True,  # intranet: Dash, React, Leaflet, AG Grid all come from this server
        compress=True,
        update_title=None,
        suppress_callback_exceptions=True,  # two pages: each has the other's callbacks
    )
    app.layout = _layout
    # every page's components, so callbacks of both pages validate against one layout
    app.validation_layout = html.Div([drilldown_layout.layout(), wall_layout.layout("zh", False, 0, DEFAULT_HEAT)])
    drilldown.register(app)
    live.register(app, "cockpit")
    live.register(app, "wall")
    wall.register(app)
    tiles_route.register(app.server, app.config.requests_pathname_prefix)
    return app
