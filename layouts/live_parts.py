"""The live parts both screens share: the change poll, the status badge, the heat controls and
the ticker. Element ids here are read by cockpit.callbacks.live and by the browser tests.

How a change reaches a screen: the server pushes the store's new change token down the page's
change stream (`live-push`, cockpit/live_push.py); where the stream cannot open, `live-tick`
(1 s) asks the server whether the token moved (no query when it did not). Either way the page's
own refresh callback then sends what changed: ticker items as a Patch, new event points for the
heat layer, numbers.
"""
from __future__ import annotations

from datetime import date

from dash import dcc, html

from cockpit.metrics.heat import WINDOWS
from cockpit.metrics.live_view import place_label
from cockpit.ui.formatting import event_time
from cockpit.ui.i18n import t

TICK_MS = 1000
HEAT_REFRESH_MS = 60_000  # full heat (a moving window drops its oldest events); new ones arrive live
REPLAY_STEP_MS = 1500
REPLAY_HOURS = 24
HEAT_CHOICES = ("off", *WINDOWS)
DEFAULT_HEAT = "24h"


def lid(page: str, name: str) -> str:
    """The element id of a live part on one page ("wall" or "cockpit").

    Each page has its own ids: a Dash callback that writes to an element of one page must not
    wait on an element only the other page has, so the shared callbacks are registered per page.
    """
    return f"{page}-{name}"


def stores(page: str, map_id: str) -> list:
    """The live machinery of a page whose map (a dl.MapContainer) has id `map_id`."""
    return [
        dcc.Store(id=lid(page, "heat-map"), data=map_id),
        dcc.Interval(id=lid(page, "live-tick"), interval=TICK_MS),
        dcc.Store(id=lid(page, "live-token")),
        dcc.Store(id=lid(page, "live-push"), data=page),  # the page whose change stream to open
        dcc.Store(id=lid(page, "live-pushed")),  # which stream is open (page|unit)
        dcc.Store(id=lid(page, "ticker-ids")),  # {"scope": unit code, "ids": [...]}: what the ticker shows
        dcc.Store(id=lid(page, "heat-unit")),  # the unit whose box the heat covers (set by the page)
        dcc.Store(id=lid(page, "heat-full")),
        dcc.Store(id=lid(page, "heat-add")),
        dcc.Interval(id=lid(page, "heat-refresh"), interval=HEAT_REFRESH_MS),
        dcc.Interval(id=lid(page, "replay-timer"), interval=REPLAY_STEP_MS, disabled=True),
        html.Div(id=lid(page, "heat-drawn"), hidden=True),
        html.Div(id=lid(page, "heat-added"), hidden=True),
    ]


def status_badge(page: str, lang: str) -> html.Div:
    return html.Div(t("live", lang), id=lid(page, "live-status"), className="live-status")


def heat_controls(page: str, lang: str, heat_window: str = DEFAULT_HEAT) -> html.Div:
    """Heat window (off / 1 h / 24 h / 7 d) and the 24 h replay: a slider of hours and play."""
    marks = {-REPLAY_HOURS: "-24h", -12: "-12h", 0: t("replay_live", lang)}
    return html.Div(className="heat-controls", children=[
        html.Span(t("heat", lang), className="control-label"),
        dcc.RadioItems(
            id=lid(page, "heat-window"), value=heat_window, inline=True, className="segmented",
            options=[{"label": t("heat_off" if k == "off" else f"window_{k}", lang), "value": k} for k in HEAT_CHOICES],
        ),
        html.Span(t("replay", lang), className="control-label"),
        html.Button(t("play", lang), id=lid(page, "replay-play"), className="replay-play", n_clicks=0),
        html.Div(className="replay-slider", children=dcc.Slider(
            id=lid(page, "replay-slider"), min=-REPLAY_HOURS, max=0, step=1, value=0, marks=marks, updatemode="drag",
        )),
        html.Span("", id=lid(page, "replay-label"), className="replay-label"),
    ])


def ticker(page: str) -> html.Div:
    return html.Div(className="ticker-wrap", children=[
        html.Ul(id=lid(page, "ticker"), className="ticker", children=[]),
    ])


def ticker_item(ev: dict, tz, lang: str, today: date | None = None) -> html.Li:
    """One event in the ticker: time (with the date when not from `today`), source, category, where."""
    where = place_label(ev.get("place"), with_unit=False)
    return html.Li(
        className=f"tick src-{ev['source']}",
        **{"data-event": str(ev["id"])},
        children=[
            html.Span(event_time(ev["reported_at"], tz, today), className="tick-time"),
            html.Span(t(f"source_{ev['source']}", lang), className="tick-src"),
            # both ellipsize on the wall (CSS): the full text is the hover title
            html.Span(ev["category"], className="tick-cat", title=ev["category"]),
            html.Span(where, className="tick-place", title=where),
        ],
    )
