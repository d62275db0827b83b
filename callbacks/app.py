"""The Dash application: pages from cockpit.layouts, behaviour from cockpit.callbacks."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import flask
from dash import Dash

from cockpit.callbacks import home
from cockpit.config import REPO_ROOT, settings
from cockpit.i18n import LANGS, t
from cockpit.layouts import home as home_layout


def _lang() -> str:
    """?lang=en|zh on the page URL, else COCKPIT_LANG (default zh).

    Dash fetches the layout with a separate request (/_dash-layout): the page's own URL,
    and so its ?lang=, arrives as that request's Referer.
    """
    if not flask.has_request_context():
        return settings().lang
    asked = flask.request.args.get("lang")
    if asked is None and flask.request.referrer:
        asked = parse_qs(urlparse(flask.request.referrer).query).get("lang", [None])[0]
    return asked if asked in LANGS else settings().lang


def create_app() -> Dash:
    app = Dash(
        __name__,
        title=t("title", settings().lang),
        assets_folder=str(REPO_ROOT / "assets"),
        serve_locally=True,  # intranet: Dash, React, Leaflet all come from this server
        compress=True,
        update_title=None,
    )
    app.layout = lambda: home_layout.layout(_lang())
    home.register(app)
    return app
