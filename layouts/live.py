"""The live parts both screens share: the change poll, the status badge, the heat controls and
the ticker. Element ids here are read by cockpit.callbacks.live and by the browser tests.

How a change reaches a screen: `live-tick` (1 s) asks the server whether the store's change
token moved (no query when it did not); when it did, the page's own refresh callback sends
what changed: ticker items as a Patch, new event points for the heat layer, numbers.
"""
from __future__ import annotations

from datetime import datetime

from dash import dcc, html

from cockpit.heat import WINDOWS
from cockpit.i18n import t

TICK_MS = 1000
HEAT_REFRESH_MS = 60_000  # full heat (a moving window drops its oldest events); new ones arrive live
REPLAY_STEP_MS = 1500
REPLAY_HOURS = 24
HEAT_CHOICES = ("off", *WINDOWS)
DEFAULT_HEAT = "24h"


def stores(map_id: str) -> list:
    """The live machinery of a page whose map (a dl.MapContainer) has id `map_id`."""
    return [
        dcc.Store(id="heat-map", data=map_id),
        dcc.Interval(id="live-tick", interval=TICK_MS),
        dcc.Store(id="live-token"),
        dcc.Store(id="ticker-ids", data=[]),
        dcc.Store(id="heat-unit"),  # the unit whose box the heat covers (set by the page)
        dcc.Store(id="heat-full"),
        dcc.Store(id="heat-add"),
        dcc.Interval(id="heat-refresh", interval=HEAT_REFRESH_MS),
        dcc.Interval(id="replay-timer", interval=REPLAY_STEP_MS, disabled=True),
        html.Div(id="heat-drawn", hidden=True),
        html.Div(id="heat-added", hidden=True),
    ]


def status_badge(lang: str) -> html.Div:
    return html.Div(t("live", lang), id="live-status", className="live-status")


def heat_controls(lang: str, heat_window: str = DEFAULT_HEAT) -> html.Div:
    """Heat window (off / 1 h / 24 h / 7 d) and the 24 h replay: a slider of hours and play."""
    marks = {-REPLAY_HOURS: "-24h", -12: "-12h", 0: t("replay_live", lang)}
    return html.Div(className="heat-controls", children=[
        html.Span(t("heat", lang), className="control-label"),
        dcc.RadioItems(
            id="heat-window", value=heat_window, inline=True, className="segmented",
            options=[{"label": t("heat_off" if k == "off" else f"window_{k}", lang), "value": k} for k in HEAT_CHOICES],
        ),
        html.Span(t("replay", lang), className="control-label"),
        html.Button(t("play", lang), id="replay-play", className="replay-play", n_clicks=0),
        html.Div(className="replay-slider", children=dcc.Slider(
            id="replay-slider", min=-REPLAY_HOURS, max=0, step=1, value=0, marks=marks, updatemode="drag",
        )),
        html.Span("", id="replay-label", className="replay-label"),
    ])


def ticker(lang: str, element_id: str = "ticker") -> html.Div:
    return html.Div(className="ticker-wrap", children=[
        html.Ul(id=element_id, className="ticker", children=[]),
    ])


def ticker_item(ev: dict, tz, lang: str) -> html.Li:
    """One event in the ticker: time, channel, category, where."""
    at: datetime = ev["reported_at"].astimezone(tz)
    place = ev.get("place") or {}
    where = " · ".join(p for p in (place.get("district"), place.get("street")) if p)
    return html.Li(
        className=f"tick src-{ev['source']}",
        **{"data-event": str(ev["id"])},
        children=[
            html.Span(at.strftime("%H:%M:%S"), className="tick-time"),
            html.Span(t(f"source_{ev['source']}", lang), className="tick-src"),
            html.Span(ev["category"], className="tick-cat"),
            html.Span(where, className="tick-place"),
        ],
    )
