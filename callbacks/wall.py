"""What the wall does: refresh on every change token, rotate the focus, keep the last picture
when the store goes away. Thin: one cockpit.metrics.live_view.wall_view per refresh, no SQL here.

Each section (big numbers, focus, districts, lists) is sent only when what it shows changed:
the page keeps a short signature of each in `wall-sigs`; the ticker travels as a Patch.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from dash import ClientsideFunction, Dash, Input, Output, State, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from cockpit import store
from cockpit.config import settings
from cockpit.errors import CockpitError
from cockpit.metrics.registry import RATES
from cockpit.ui.formatting import count, duration, percent
from cockpit.ui.i18n import t
from cockpit.metrics.live_view import place_label, wall_view

from cockpit.callbacks import geo_route
from cockpit.callbacks.live_parts import heat_points, log_failure, ticker_patch
from cockpit.layouts.live_parts import lid
from cockpit.layouts.wall import WALL_CARDS

STRIP = ("volume", *RATES, "overdue")  # a unit's figures on one line: all but the open backlog
SECTIONS = ("cards", "focus", "strip", "overdue", "busiest")


def numbers(n: dict) -> dict[str, str]:
    return {k: percent(n[k]) if k in RATES else count(n[k]) for k, _ in WALL_CARDS}


def focus_numbers(n: dict, lang: str) -> list:
    shown = numbers(n)
    return [html.Span([html.B(shown[k]), f" {t(k, lang)}"], className=f"focus-{k}")
            for k in STRIP]


def district_strip(districts: list[dict], focus: str | None, lang: str) -> list:
    out = []
    for d in districts:
        shown = numbers(d)
        out.append(html.Div(
            className="strip-item" + (" focused" if d["code"] == focus else ""), **{"data-code": d["code"]},
            children=[
                html.Div(d["name"], className="strip-name"),
                html.Div(className="strip-numbers", children=[
                    html.Div([html.B(shown[k]), html.Span(t(k, lang))], className=f"strip-{k}")
                    for k in STRIP
                ]),
            ]))
    return out


def overdue_list(rows: list[dict], now, lang: str) -> list:
    if not rows:
        return [html.Div(t("nothing_overdue", lang), className="muted")]
    return [html.Div(className="list-row", **{"data-event": str(r["id"])}, children=[
        html.Span(r["category"], className="list-main"),
        html.Span(place_label(r["place"]), className="list-place"),
        html.Span(t("overdue_by", lang).format(d=duration((now - r["deadline_at"]).total_seconds() / 60, lang)),
                  className="list-figure late"),
    ]) for r in rows]


def busiest_list(rows: list[dict], lang: str) -> list:
    if not rows:
        return [html.Div(t("nothing_recent", lang), className="muted")]
    top = max(r["n"] for r in rows)
    return [html.Div(className="list-row", **{"data-code": r["code"]}, children=[
        html.Span(r["name"], className="list-main"),
        html.Span(place_label(r["place"], with_unit=False), className="list-place"),
        html.Span(className="list-bar", children=html.Span(style={"width": f"{100 * r['n'] / top:.0f}%"})),
        html.Span(t("n_events", lang).format(n=r["n"]), className="list-figure"),
    ]) for r in rows]


def _sig(value) -> str:
    return hashlib.sha1(json.dumps(value, default=str, sort_keys=True).encode()).hexdigest()[:12]


REFRESH_OUTPUTS = (
    [Output(i, "children") for _, i in WALL_CARDS]
    + [
        Output("wall-city-name", "children"),
        Output("wall-focus-name", "children"),
        Output("wall-focus-numbers", "children"),
        Output("wall-district-strip", "children"),
        Output("wall-overdue-list", "children"),
        Output("wall-busiest", "children"),
        Output(lid("wall", "ticker"), "children"),
        Output(lid("wall", "ticker-ids"), "data"),
        Output(lid("wall", "heat-add"), "data"),
        Output("wall-districts", "data"),
        Output("wall-sigs", "data"),
    ]
)


def register(app: Dash) -> None:
    @app.callback(*REFRESH_OUTPUTS, Input(lid("wall", "live-token"), "data"), Input("wall-focus", "data"),
                  State(lid("wall", "ticker-ids"), "data"), State("wall-sigs", "data"), State("lang", "data"),
                  prevent_initial_call=True)
    def refresh(_token, focus, known, sigs, lang):
        tz = settings().timezone
        keep = [no_update] * len(REFRESH_OUTPUTS)
        try:
            with store.connect() as conn:
                view = wall_view(conn, focus, tz)
        except (CockpitError, SQLAlchemyError) as exc:  # keep the last picture, say since when
            log_failure(exc)  # the badge follows from the change feed within a second
            return keep
        now = datetime.now(timezone.utc)
        sections = {
            "cards": numbers(view["city"]),
            "focus": (view["focus"]["name"], numbers(view["focus"])),
            "strip": ([numbers(d) for d in view["districts"]], focus),
            "overdue": [(r["id"], r["deadline_at"]) for r in view["overdue"]],
            "busiest": [(r["code"], r["n"]) for r in view["busiest"]],
        }
        new_sigs = {k: _sig(v) for k, v in sections.items()}
        changed = {k: new_sigs[k] != (sigs or {}).get(k) for k in SECTIONS}
        ticker, shown, fresh = ticker_patch(view["latest"], known, None, tz, lang)
        cards = sections["cards"]
        return (
            [cards[k] if changed["cards"] else no_update for k, _ in WALL_CARDS]
            + [
                view["city"]["name"],
                view["focus"]["name"] if changed["focus"] else no_update,
                focus_numbers(view["focus"], lang) if changed["focus"] else no_update,
                district_strip(view["districts"], focus, lang) if changed["strip"] else no_update,
                overdue_list(view["overdue"], now, lang) if changed["overdue"] else no_update,
                busiest_list(view["busiest"], lang) if changed["busiest"] else no_update,
                ticker,
                shown,
                heat_points(fresh) if known else no_update,
                [d["code"] for d in view["districts"]],
                new_sigs,
            ]
        )

    # The focus moves city -> each district -> city ..., every `rotate` seconds.
    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_wall", function_name="rotate"),
        Output("wall-focus", "data"),
        Input("wall-rotate", "n_intervals"),
        State("wall-focus", "data"),
        State("wall-districts", "data"),
        prevent_initial_call=True,
    )

    @app.callback(Output("wall-units", "url"), Output("wall-units", "hideout"), Output(lid("wall", "heat-unit"), "data"),
                  Input("wall-focus", "data"))
    def focus_map(focus):
        return (geo_route.url_for(app.config.requests_pathname_prefix, focus),
                {"focus": focus, "tips": {}}, focus)

    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_wall", function_name="clock"),
        Output("wall-clock", "children"),
        Input(lid("wall", "live-tick"), "n_intervals"),
        State("wall-config", "data"),
    )

