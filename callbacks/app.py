"""The Dash application: one context, the pages, their callbacks, the routes, the error map.

Pages are Dash Pages (`register_page`, one module per page in callbacks/, its look in the
module of the same name in layouts/); a page's query parameters arrive as `layout(**query)`.
The router here renders a page when the *path* changes. Dash's own page container would also
re-render the whole page whenever the query string changes, and the drill-down keeps its state
in the query string (every map click changes it): a click must update the page, not rebuild it.
"""
from __future__ import annotations

from urllib.parse import parse_qs

import dash
from dash import Dash, Input, Output, State, dcc, html

from cockpit import context as contexts
from cockpit.config import REPO_ROOT
from cockpit.context import Context
from cockpit.ui import url_state
from cockpit.ui.i18n import LANGS, t

from cockpit.callbacks import api, drilldown, errors, live_parts, rank, report_download, routes, wall, warnings
from cockpit.callbacks import guard, headers, limits, shared_answers, signin
from cockpit.callbacks.context import attach, context, person
from cockpit.errors import CockpitError
from cockpit.access.people import CLI_PERSON
from cockpit.layouts import events_table
from cockpit.layouts.user_bar import user_bar
from cockpit.metrics.kpi import unit_by_code
from cockpit.layouts import drilldown as drilldown_layout
from cockpit.layouts import rank as rank_layout
from cockpit.layouts import wall as wall_layout

PAGES = (drilldown, wall, rank)  # each: PATH, page(**query), register(app)


def query_values(search: str | None) -> dict[str, str]:
    """?a=1&b=2 as {"a": "1", "b": "2"} (the last value of a repeated name)."""
    return {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}


def not_found(lang: str) -> html.Div:
    return html.Div(className="page not-found", children=[
        html.H1(t("page_not_found", lang)), html.A(t("cockpit_link", lang), href="/")])


def _router(app: Dash) -> None:
    @app.callback(Output("page-content", "children"), Input("page-url", "pathname"), State("page-url", "search"),
                  prevent_initial_call=True)
    def route(pathname, search):
        path = "/" + (app.strip_relative_path(pathname or "/") or "")
        query = query_values(search)
        lang = query.get("lang")
        lang = lang if lang in LANGS else context().settings.lang
        who = person()
        if who is not None and who.kind == "wall":
            # a wall screen shows its wall, in kiosk mode, whatever path it asks for
            path, query = wall.PATH, {**query, "kiosk": "1"}
        for page in dash.page_registry.values():
            if page["path"] == path:
                shown = page["layout"](**query)
                return shown if path == wall.PATH else [_user_bar(who, lang), shown]
        return not_found(lang)


def _user_bar(who, lang: str):
    scope_name = None
    if not who.city_wide:
        try:
            with context().connect() as conn:
                scope_name = unit_by_code(conn, who.scope_code).name
        except CockpitError:
            scope_name = None  # a scope whose unit is gone: its code says enough
    return user_bar(who, scope_name, lang)


def create_app(ctx: Context | None = None) -> Dash:
    ctx = ctx or contexts.for_web()
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",  # pages are registered by callbacks/<page>.py, not found in a folder
        title=t("title", ctx.settings.lang),
        assets_folder=str(REPO_ROOT / "assets"),
        serve_locally=True,  # intranet: Dash, React, Leaflet, AG Grid all come from this server
        compress=True,
        update_title=None,
        suppress_callback_exceptions=True,  # each page's callbacks name elements of that page only
    )
    attach(app.server, ctx)
    app.layout = html.Div([dcc.Location(id="page-url", refresh="callback-nav"), html.Div(id="page-content")])
    wall_tree = wall_layout.layout(ctx.settings.lang, kiosk=False, rotate=0, heat_window="24h", timezone=ctx.timezone,
                                   tiles=None)
    # every page's elements, so that each callback is checked against the page it serves
    app.validation_layout = html.Div([
        app.layout,
        drilldown_layout.layout(ctx.settings.lang, tiles=None),
        wall_tree,
        rank_layout.layout(ctx.settings.lang, url_state.RankState(), [], [], [], None),
        events_table.contact(0, ("", "1"), ctx.settings.lang, may_reveal=True),  # drawn per event, for revealers
        user_bar(CLI_PERSON, None, ctx.settings.lang),
    ])
    _router(app)
    for page in PAGES:
        dash.register_page(page.__name__, path=page.PATH, layout=page.page, title=t("title", ctx.settings.lang))
        page.register(app)
    live_parts.register(app, "cockpit")
    live_parts.register(app, "wall")
    report_download.register(app)  # the download button in /rank's header
    warnings.register(app)  # the warnings panel on "/"
    warnings.register_wall(app)
    headers.register(app)  # security headers on every answer, the guard's included
    signin.register(app.server, app.config.requests_pathname_prefix)
    guard.register(app, wall_tree)  # before every other handler: who is asking, and may they
    limits.register(app)  # then: is what they ask for within bounds (body size, callback values)
    routes.register(app.server, app.config.requests_pathname_prefix)
    api.register(app.server, app.config.requests_pathname_prefix)
    errors.register(app.server)
    shared_answers.register(app)  # the callback route answers shared views from the view cache
    return app
