"""The Dash application: pages from cockpit.layouts, behaviour from cockpit.callbacks."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import flask
from dash import Dash

from cockpit.callbacks import drilldown, tiles_route
from cockpit.callbacks.view_state import ViewState, parse
from cockpit.config import REPO_ROOT, settings
from cockpit.i18n import LANGS, t
from cockpit.layouts import drilldown as drilldown_layout


def _page_query() -> str:
    """The page's own query string.

    Dash fetches the layout with a separate request (/_dash-layout): the page's own URL, and so
    its ?lang= and view state, arrives as that request's Referer.
    """
    if not flask.has_request_context():
        return ""
    if flask.request.args:
        return flask.request.query_string.decode()
    return urlparse(flask.request.referrer).query if flask.request.referrer else ""


def _lang(query: str) -> str:
    """?lang=en|zh on the page URL, else COCKPIT_LANG (default zh)."""
    asked = parse_qs(query).get("lang", [None])[0]
    return asked if asked in LANGS else settings().lang


def _layout():
    query = _page_query()
    state = parse(query) if query else ViewState()
    return drilldown_layout.layout(_lang(query), state)


def create_app() -> Dash:
    app = Dash(
        __name__,
        title=t("title", settings().lang),
        assets_folder=str(REPO_ROOT / "assets"),
        serve_locally=True,  # intranet: Dash, React, Leaflet, AG Grid all come from this server
        compress=True,
        update_title=None,
        suppress_callback_exceptions=False,
    )
    app.layout = _layout
    drilldown.register(app)
    tiles_route.register(app.server, app.config.requests_pathname_prefix)
    return app
