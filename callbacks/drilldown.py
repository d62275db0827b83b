"""What the drill-down page ("/") does. Thin: one unit_view (plus a grid's events) per view, shared by
every screen asking the same between two changes (cockpit.metrics.viewcache), no SQL.

Flow: the URL is the state. Clientside callbacks (assets/cockpit_state.js) turn map clicks and
control changes into URL changes and URL changes into control values and the "query" store (the
URL without the map KPI). `render` runs when "query" changes; switching the map KPI only swaps
the map layer's hideout.kpi in the browser (`restyle`).
"""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from dash import ClientsideFunction, Dash, Input, Output, State, no_update
from dash.exceptions import PreventUpdate

from cockpit.access import contacts
from cockpit.errors import NotFound
from cockpit.metrics import live_view, viewcache
from cockpit.metrics.unit_view import (MAX_GRID_EVENTS, Filters, category_groups, event_history, grid_events,
                                       period_of, unit_view)
from cockpit.metrics.viewcache import view_key
from cockpit.ui import url_state
from cockpit.ui.i18n import LANGS, t

from cockpit.callbacks import errors, live_parts, routes, shared_answers
from cockpit.callbacks.context import context, person
from cockpit.callbacks.outputs import unchanged
from cockpit.layouts import charts, events_table, panels
from cockpit.layouts import drilldown as layout
from cockpit.layouts.drilldown import CARDS
from cockpit.layouts.live_parts import lid

PATH = "/"
SHOWN, HIDDEN = {}, {"display": "none"}


def page(**query) -> object:
    """The page for its URL's query (?unit=…&period=…&lang=…); the state sets the controls."""
    ctx = context()
    state = url_state.parse(urlencode(query))
    return layout.layout(state.lang or ctx.settings.lang, state, tiles=ctx.tiles, who=ctx.person.name)


RENDER = {
    "cards": {k: Output(i, "children") for k, i in CARDS},
    "details": {k: Output(f"{i}-detail", "children") for k, i in CARDS},
    "deltas": {k: Output(f"{i}-delta", "children") for k, i in CARDS},
    "header": {
        "name": Output("unit-name", "children"),
        "level": Output("unit-level", "children"),
        "breadcrumb": Output("breadcrumb", "children"),
        "up_href": Output("up-link", "href"),
        "up_class": Output("up-link", "className"),
        "period": Output("period-label", "children"),
    },
    "map": {
        "url": Output("children", "url"),
        "hideout": Output("children", "hideout"),
        "legend": Output("map-legend", "children"),
        "events": Output("events", "data"),
    },
    "charts": {
        "trend": Output("trend-chart", "figure"),
        "groups": Output("group-chart", "figure"),
        "sources": Output("source-chart", "figure"),
    },
    "panels": {
        "funnel": Output("funnel", "children"),
        "levels": Output("levels", "children"),
        "ranking": Output("ranking", "children"),
        "ranking_style": Output("ranking-section", "style"),
        "placed": Output("placed-note", "children"),
        "ranking_note": Output("ranking-note", "children"),
    },
    "grid": {
        "style": Output("events-section", "style"),
        "rows": Output("events-grid", "rowData"),
        "note": Output("events-note", "children"),
        "history": Output("event-history", "children"),
    },
    "group_options": Output("filter-group", "options"),
    "marker": Output("view-state", "children"),
    "view": Output("view", "data"),
    "status": Output("store-status", "children"),
}

LIVE = {
    "cards": {k: Output(i, "children", allow_duplicate=True) for k, i in CARDS},
    "details": {k: Output(f"{i}-detail", "children", allow_duplicate=True) for k, i in CARDS},
    "ticker": Output(lid("cockpit", "ticker"), "children"),
    "ticker_ids": Output(lid("cockpit", "ticker-ids"), "data"),
    "heat_add": Output(lid("cockpit", "heat-add"), "data"),
    "placed": Output("placed-note", "children", allow_duplicate=True),
    "ranking_note": Output("ranking-note", "children", allow_duplicate=True),
}


def _shared(ctx, kind: str, compute, unit: str | None, period, filters: Filters):
    """A unit's view for (period, filters), computed once per version of the unit (the last
    change token that touched it) and scope for every screen asking (cockpit.metrics.viewcache)."""
    key = view_key(ctx.feed.version_for(unit), ctx.describe(), ctx.person.scope_key, kind, unit,
                   period.first.isoformat(), period.end.isoformat(), str(period.tz), filters.group, filters.source)
    return viewcache.shared(ctx.settings.state_dir).get(key, compute)


def register(app: Dash) -> None:
    prefix = app.config.requests_pathname_prefix
    shared_answers.share(RENDER, shared_answers.one_unit)
    shared_answers.share(LIVE, shared_answers.one_unit)

    app.clientside_callback(
        ClientsideFunction(namespace="cockpit", function_name="sync"),
        Output("url", "search"),
        Output("period", "value"),
        Output("custom-range", "start_date"),
        Output("custom-range", "end_date"),
        Output("custom-range-wrap", "style"),
        Output("filter-group", "value"),
        Output("filter-source", "value"),
        Output("map-kpi", "value"),
        Output("query", "data"),
        Output("lang-toggle", "href"),
        Input("url", "search"),
        Input("children", "n_clicks"),
        Input("period", "value"),
        Input("custom-range", "start_date"),
        Input("custom-range", "end_date"),
        Input("filter-group", "value"),
        Input("filter-source", "value"),
        Input("map-kpi", "value"),
        State("children", "clickData"),  # read in the browser only: geometry is never posted
        State("query", "data"),
        State("view", "data"),
        State("ui-config", "data"),
        State("lang", "data"),
    )

    app.clientside_callback(
        ClientsideFunction(namespace="cockpit", function_name="restyle"),
        Output("children", "hideout", allow_duplicate=True),
        Output("map-legend", "className"),
        Input("map-kpi", "value"),
        State("children", "hideout"),
        prevent_initial_call=True,
    )

    @app.callback(output=RENDER, inputs={"query": Input("query", "data")},
                  state={"kpi": State("map-kpi", "value"), "lang": State("lang", "data")})
    def render(query, kpi, lang):
        if query is None:
            raise PreventUpdate
        lang = lang if lang in LANGS else "zh"
        ctx = context()
        state = url_state.parse(query)
        kpi = kpi or state.kpi
        state = replace(state, kpi=kpi)
        tz = ctx.timezone
        try:
            period = period_of(state.period, tz, state.first, state.last)
            filters = Filters(group=state.group, source=state.source)

            def compute():
                with ctx.connect() as conn:
                    view = unit_view(conn, state.unit, period, filters)
                    events = grid_events(conn, view["unit"]["code"], period, filters) if not view["children"] else []
                    return view, events, category_groups(conn)

            view, events, groups = _shared(ctx, "unit", compute, state.unit, period, filters)
            leaf = not view["children"]
        except Exception as exc:  # noqa: BLE001 — mapped to one line for the banner, detail logged
            return {**unchanged(RENDER), "status": errors.message(exc, lang, "drill-down view")}

        hideout, legends = panels.map_hideout(view, kpi, lang)
        placed = panels.placed_note(view, lang)
        up = panels.up_href(view, state)
        unit = view["unit"]
        capped = len(events) >= MAX_GRID_EVENTS
        return {
            "cards": panels.card_values(view),
            "details": panels.card_details(view, lang),
            "deltas": panels.card_deltas(view, lang),
            "header": {
                "name": unit["name"],
                "level": t(unit["level"], lang),
                "breadcrumb": panels.breadcrumb(view, state),
                "up_href": up or "/",
                "up_class": "up-link" if up else "up-link hidden",
                "period": panels.period_label(view, state.period, lang),
            },
            "map": {
                "url": routes.geo_url(prefix, unit["code"]),
                "hideout": hideout,
                "legend": legends,
                "events": events_table.points(events, tz, lang),
            },
            "charts": {
                "trend": charts.trend(view["trend"], lang),
                "groups": charts.by_group(view["by_group"], lang),
                "sources": charts.by_source(view["by_source"], lang),
            },
            "panels": {
                "funnel": panels.funnel(view["funnel"], lang),
                "levels": panels.levels(view["levels"], lang),
                "ranking": panels.ranking(view, state, lang) if not leaf else None,
                "ranking_style": HIDDEN if leaf else SHOWN,
                "placed": placed,
                "ranking_note": placed,
            },
            "grid": {
                "style": SHOWN if leaf else HIDDEN,
                "rows": events_table.rows(events, tz, lang),
                "note": t("events_capped", lang).format(n=len(events)) if capped else t("events_hint", lang),
                "history": t("history_empty", lang),
            },
            "group_options": panels.group_options(groups, lang),
            "marker": panels.view_state_marker(view, state.period),
            "view": {"unit": unit["code"], "level": unit["level"], "leaf": leaf,
                     "first": view["period"]["from"], "last": view["period"]["last"]},
            "status": "",
        }

    @app.callback(output=LIVE,
                  inputs={"_token": Input(lid("cockpit", "live-token"), "data"), "view": Input("view", "data")},
                  state={"query": State("query", "data"), "known": State(lid("cockpit", "ticker-ids"), "data"),
                         "lang": State("lang", "data")},
                  prevent_initial_call=True)
    def live_refresh(_token, view, query, known, lang):
        """A change in the store: the unit's six numbers and placed-only note, the ticker (a Patch), new heat points."""
        if query is None or not view:
            raise PreventUpdate
        ctx = context()
        state = url_state.parse(query)
        tz = ctx.timezone
        try:
            period = period_of(state.period, tz, state.first, state.last)
            filters = Filters(group=state.group, source=state.source)

            def compute():
                with ctx.connect() as conn:
                    numbers = live_view.unit_numbers(conn, state.unit, period, filters)
                    return numbers, live_view.latest_events(conn, numbers["id"])

            numbers, events = _shared(ctx, "unit-live", compute, state.unit, period, filters)
        except Exception as exc:  # noqa: BLE001 — the badge follows from the change feed within a second
            live_parts.log_failure(exc)
            return unchanged(LIVE)
        shown = {"kpi": numbers, "placed_here": numbers["placed_here"]}
        placed = panels.placed_note(shown, lang)
        ticker, ids, fresh = live_parts.ticker_patch(events, known, state.unit, tz, lang)
        return {"cards": panels.card_values(shown), "details": panels.card_details(shown, lang),
                "placed": placed, "ranking_note": placed,
                "ticker": ticker, "ticker_ids": ids,
                "heat_add": live_parts.heat_points(fresh) if fresh else no_update}

    @app.callback(Output(lid("cockpit", "heat-unit"), "data"), Input("view", "data"), prevent_initial_call=True)
    def heat_follows_view(view):
        return (view or {}).get("unit")

    @app.callback(
        Output("event-history", "children", allow_duplicate=True),
        Input("events-grid", "cellClicked"),
        State("lang", "data"),
        prevent_initial_call=True,
    )
    def show_history(cell, lang):
        if not cell or cell.get("rowId") in (None, ""):
            raise PreventUpdate
        ctx = context()
        try:
            event_id = int(cell["rowId"])
            with ctx.connect() as conn:
                transitions = event_history(conn, event_id)
                masked = contacts.masked(conn, [event_id]).get(event_id)
            if masked is None:
                raise NotFound(f"no event {event_id}")
        except Exception as exc:  # noqa: BLE001
            return events_table.history_trouble(errors.message(exc, lang, "event history"))
        part = events_table.contact(event_id, masked, lang, person().may_reveal)
        return events_table.history(event_id, transitions, ctx.timezone, lang, part)

    @app.callback(Output("reveal-result", "children"), Input("reveal-button", "n_clicks"),
                  State("reveal-event", "data"), State("reveal-reason", "value"), State("lang", "data"),
                  prevent_initial_call=True)
    def reveal(clicks, event_id, reason, lang):
        """One event's contact in clear, for a duty officer or administrator who says why. The
        store checks role, reason and scope and records the reveal whatever its outcome."""
        if not clicks:
            raise PreventUpdate
        lang = lang if lang in LANGS else "zh"
        if not person().may_reveal:
            return t("reveal_not_allowed", lang)
        try:
            with context().connect_primary() as conn:  # it writes its audit row
                name, phone = contacts.reveal(conn, int(event_id), reason)
        except Exception as exc:  # noqa: BLE001 — no reason, not allowed, not in scope: one line
            return errors.message(exc, lang, "reveal")
        return events_table.revealed(name, phone, lang)
