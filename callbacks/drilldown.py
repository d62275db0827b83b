"""What the drill-down screen does. Thin: one unit_view (plus a grid's events) per view, no SQL.

Flow: the URL is the state. Clientside callbacks (assets/cockpit_state.js) turn map clicks and
control changes into URL changes and URL changes into control values and the "query" store (the
URL without the map KPI). `render` runs when "query" changes; switching the map KPI only swaps
the map layer's hideout.kpi in the browser (`restyle`).
"""
from __future__ import annotations

import logging
from dataclasses import replace

import dash
from dash import ClientsideFunction, Dash, Input, Output, State, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.exc import SQLAlchemyError

from cockpit.metrics import live_view as live
from cockpit import store
from cockpit.config import settings
from cockpit.metrics.unit_view import (MAX_GRID_EVENTS, Filters, category_groups, event_history, grid_events, period_of,
                               unit_view)
from cockpit.errors import CockpitError
from cockpit.ui.i18n import t

from cockpit.callbacks import geo_route
from cockpit.ui import url_state as view_state
from cockpit.callbacks import live_parts as live_callbacks
from cockpit.layouts import charts, events_table, panels
from cockpit.layouts.drilldown import CARDS
from cockpit.layouts.live_parts import lid

SHOWN, HIDDEN = {}, {"display": "none"}
log = logging.getLogger(__name__)


def store_trouble(exc: SQLAlchemyError, lang: str) -> str:
    """One line for the banner: PostgreSQL's own first line, no traceback, no SQL."""
    return f"{t('store_unavailable', lang)}: {store.first_line(exc)}"


RENDER_OUTPUTS = (
    [Output(i, "children") for _, i in CARDS]
    + [Output(f"{i}-detail", "children") for _, i in CARDS]
    + [Output(f"{i}-delta", "children") for _, i in CARDS]
    + [
        Output("unit-name", "children"),
        Output("unit-level", "children"),
        Output("breadcrumb", "children"),
        Output("up-link", "href"),
        Output("up-link", "className"),
        Output("period-label", "children"),
        Output("children", "url"),
        Output("children", "hideout"),
        Output("map-legend", "children"),
        Output("events", "data"),
        Output("trend-chart", "figure"),
        Output("group-chart", "figure"),
        Output("source-chart", "figure"),
        Output("funnel", "children"),
        Output("levels", "children"),
        Output("ranking", "children"),
        Output("ranking-section", "style"),
        Output("events-section", "style"),
        Output("events-grid", "rowData"),
        Output("events-note", "children"),
        Output("event-history", "children"),
        Output("filter-group", "options"),
        Output("view-state", "children"),
        Output("view", "data"),
        Output("store-status", "children"),
    ]
)


def register(app: Dash) -> None:
    geo_route.register(app.server, app.config.requests_pathname_prefix)

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

    @app.callback(*RENDER_OUTPUTS, Input("query", "data"), State("map-kpi", "value"), State("lang", "data"))
    def render(query, kpi, lang):
        if query is None:
            raise PreventUpdate
        state = view_state.parse(query)
        kpi = kpi or state.kpi
        state = replace(state, kpi=kpi)
        tz = settings().timezone
        try:
            period = period_of(state.period, tz, state.first, state.last)
            filters = Filters(group=state.group, source=state.source)
            with store.connect(store.app_engine()) as conn:
                view = unit_view(conn, state.unit, period, filters)
                leaf = not view["children"]
                events = grid_events(conn, view["unit"]["code"], period, filters) if leaf else []
                groups = category_groups(conn)
        except CockpitError as exc:
            return [no_update] * (len(RENDER_OUTPUTS) - 1) + [str(exc)]
        except SQLAlchemyError as exc:  # e.g. a store whose schema is behind: one line, not a dead page
            log.exception("drill-down view failed")
            return [no_update] * (len(RENDER_OUTPUTS) - 1) + [store_trouble(exc, lang)]

        values = panels.card_values(view)
        details = panels.card_details(view, lang)
        deltas = panels.card_deltas(view, lang)
        hideout, legends = panels.map_hideout(view, kpi, lang)
        up = panels.up_href(view, state)
        unit = view["unit"]
        capped = len(events) >= MAX_GRID_EVENTS
        return (
            [values[k] for k, _ in CARDS]
            + [details[k] for k, _ in CARDS]
            + [deltas[k] for k, _ in CARDS]
            + [
                unit["name"],
                t(unit["level"], lang),
                panels.breadcrumb(view, state),
                up or "/",
                "up-link" if up else "up-link hidden",
                panels.period_label(view, state.period, lang),
                geo_route.url_for(app.config.requests_pathname_prefix, unit["code"]),
                hideout,
                legends,
                events_table.points(events, tz, lang),
                charts.trend(view["trend"], lang),
                charts.by_group(view["by_group"], lang),
                charts.by_source(view["by_source"], lang),
                panels.funnel(view["funnel"], lang),
                panels.levels(view["levels"], lang),
                panels.ranking(view, state, lang) if not leaf else None,
                HIDDEN if leaf else SHOWN,
                SHOWN if leaf else HIDDEN,
                events_table.rows(events, tz, lang),
                t("events_capped", lang).format(n=len(events)) if capped else t("events_hint", lang),
                t("history_empty", lang),
                [{"label": g["name"] if lang == "zh" else f"{g['name']} ({g['code']})", "value": g["code"]}
                 for g in groups],
                panels.view_state_marker(view, state.period),
                {"unit": unit["code"], "level": unit["level"], "leaf": leaf,
                 "first": view["period"]["from"], "last": view["period"]["last"]},
                "",
            ]
        )

    LIVE_OUTPUTS = (
        [Output(i, "children", allow_duplicate=True) for _, i in CARDS]
        + [Output(f"{i}-detail", "children", allow_duplicate=True) for _, i in CARDS]
        + [Output(lid("cockpit", "ticker"), "children"), Output(lid("cockpit", "ticker-ids"), "data"),
           Output(lid("cockpit", "heat-add"), "data")]
    )

    @app.callback(*LIVE_OUTPUTS, Input(lid("cockpit", "live-token"), "data"), Input("view", "data"),
                  State("query", "data"), State(lid("cockpit", "ticker-ids"), "data"), State("lang", "data"),
                  prevent_initial_call=True)
    def live_refresh(_token, view, query, known, lang):
        """A change in the store: the unit's six numbers, the ticker (a Patch), new heat points."""
        if query is None or not view:
            raise PreventUpdate
        state = view_state.parse(query)
        tz = settings().timezone
        try:
            period = period_of(state.period, tz, state.first, state.last)
            with store.connect(store.app_engine()) as conn:
                numbers = live.unit_numbers(conn, state.unit, period, Filters(group=state.group, source=state.source))
                events = live.latest_events(conn, numbers["id"])
        except (CockpitError, SQLAlchemyError) as exc:
            live_callbacks.log_failure(exc)  # the badge follows from the change feed within a second
            return [no_update] * len(LIVE_OUTPUTS)
        shown = {"kpi": numbers}
        values, details = panels.card_values(shown), panels.card_details(shown, lang)
        ticker, ids, fresh = live_callbacks.ticker_patch(events, known, state.unit, tz, lang)
        return ([values[k] for k, _ in CARDS] + [details[k] for k, _ in CARDS]
                + [ticker, ids, live_callbacks.heat_points(fresh) if fresh else no_update])

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
        event_id = int(cell["rowId"])
        try:
            with store.connect(store.app_engine()) as conn:
                transitions = event_history(conn, event_id)
        except CockpitError as exc:
            return dash.html.Div(str(exc), className="store-status")
        except SQLAlchemyError as exc:
            log.exception("event history failed")
            return dash.html.Div(store_trouble(exc, lang), className="store-status")
        return events_table.history(event_id, transitions, settings().timezone, lang)
