"""Hotspot warnings on screen: the panel on "/", its opened warning, the list on "/wall" and what
the maps draw. Looks only: cockpit.callbacks.warnings reads the store (cockpit.hotspots.store)
and hands these functions Warning objects.

Element ids here are read by cockpit.callbacks.warnings and by tests/test_hotspots_browser.py.
"""
from __future__ import annotations

from dash import dcc, html

from cockpit.ui.formatting import count, event_time
from cockpit.ui.i18n import t

from cockpit.layouts.charts import GRAPH_CONFIG, _layout, empty

KINDS = ("surge", "recurrence", "cluster")
# One colour per kind, the same on the list's tags, the map's outlines and the spots (cockpit_map.js).
KIND_COLOURS = {"surge": "#ff6b6b", "recurrence": "#f2c14e", "cluster": "#c084fc"}
PANEL_LIMIT = 50  # warnings listed on "/": the newest; a city in trouble has more than a panel can read
WALL_LIMIT = 3  # rows the wall's panel holds (the same at 1920x1080 and 4K: the wall scales in rem)
EVENTS_LIMIT = 50  # the events behind an opened warning: the newest, in a scrolling list
# Acknowledging (or a detection run) writes no event, so the live token does not move: the
# warnings ask the store themselves this often (a cheap query; nothing is sent when unchanged).
POLL_MS = 3000


def item_id(warning_id: int) -> dict:
    return {"type": "warning-item", "index": warning_id}


def panel(lang: str, who: str = "") -> html.Div:
    """The warnings column on "/": a badge of new ones, the list, and the opened warning (a fixed
    skeleton the callbacks fill, hidden until a warning is opened)."""
    return html.Div(className="panel panel-warnings", children=[
        dcc.Store(id="warning-open"),  # {"id", "unit", "kind", "lon", "lat"} of the opened warning
        dcc.Store(id="warnings-sig"),  # what the list last showed: sent again only when it changed
        dcc.Store(id="warnings-acked"),  # moves after an acknowledgement: the list reads the store again
        dcc.Interval(id="warnings-poll", interval=POLL_MS),
        html.Div(className="panel-head", children=[
            html.H3(t("warnings_title", lang)),
            html.Span("", id="warnings-badge", className="warnings-badge none", **{"data-new": "0"}),
        ]),
        html.Div(id="warnings-list", className="warnings-list"),
        html.Div(t("warning_pick", lang), id="warning-pick", className="warning-pick muted"),
        html.Div(id="warning-detail", className="warning-detail", style={"display": "none"}, children=[
            html.Div(id="warning-head", className="warning-detail-head"),
            html.Div(id="warning-explain", className="warning-explain-full"),
            dcc.Graph(id="warning-chart", figure=empty(), config=GRAPH_CONFIG, className="warning-chart",
                      style={"height": "118px", "width": "100%"}),
            html.Div(id="warning-events", className="warning-events"),
            html.Div(className="warning-ack", children=[
                html.Div(id="warning-ack-state", className="warning-ack-state"),
                html.Div(id="warning-ack-form", className="warning-ack-form", children=[
                    # who acknowledges is whoever is signed in: shown, not typed
                    dcc.Input(id="ack-who", type="text", value=who, placeholder=t("ack_who", lang), maxLength=80,
                              className="ack-input ack-who", disabled=bool(who)),
                    dcc.Input(id="ack-note", type="text", value="", placeholder=t("ack_note", lang),
                              maxLength=500, className="ack-input ack-note"),
                    html.Button(t("ack_button", lang), id="ack-button", n_clicks=0, className="ack-button"),
                ]),
                html.Div("", id="ack-status", className="ack-status"),
            ]),
        ]),
    ])


def badge(warnings: list, lang: str) -> tuple[str, str, str]:
    """(text, className, data-new) of the new-warnings badge."""
    n = sum(w.state == "new" for w in warnings)
    return (t("warnings_new", lang).format(n=count(n)) if n else "", "warnings-badge" + ("" if n else " none"),
            str(n))


def _tag(kind: str, lang: str) -> html.Span:
    return html.Span(t(f"warning_kind_{kind}", lang), className=f"warning-tag kind-{kind}")


def _state(w, tz, lang: str) -> html.Span:
    if w.state == "acknowledged" and w.acknowledged_by:
        text = t("warning_acked_by", lang).format(who=w.acknowledged_by, t=event_time(w.acknowledged_at, tz))
    else:
        text = t(f"warning_state_{w.state}", lang)
    return html.Span(text, className=f"warning-state state-{w.state}", title=w.note or "")


def items(warnings: list, opened: int | None, tz, lang: str) -> list:
    """The panel's list, newest first; the opened one marked."""
    if not warnings:
        return [html.Div(t("warnings_none", lang), className="muted")]
    out = []
    for w in warnings:
        explain = w.explain(lang)
        out.append(html.Div(
            id=item_id(w.id), n_clicks=0,
            className=f"warning-item kind-{w.kind} state-{w.state}" + (" open" if w.id == opened else ""),
            **{"data-warning": str(w.id), "data-unit": w.unit_code, "data-state": w.state},
            children=[
                html.Div(className="warning-line", children=[
                    _tag(w.kind, lang),
                    html.Span(w.unit_name, className="warning-unit", title=w.unit_name),
                    html.Span(event_time(w.first_seen, tz), className="warning-time"),
                ]),
                html.Div(explain, className="warning-explain", title=explain),
            ]))
    return out


def series_figure(points: list, tz, lang: str) -> dict:
    """The unit's recent counts (bars) against its baseline (line): store.series rows, on the
    city's clock (plotly draws a date string as it reads, so it gets local times without a zone)."""
    if not points:
        return empty()
    x = [p[0].astimezone(tz).strftime("%Y-%m-%d %H:%M") for p in points]
    hourly = len(points) > 1 and (points[1][0] - points[0][0]).total_seconds() < 86400
    when = "%H:%M" if hourly else "%m-%d"  # plotly's own date ticks are English ("Nov 20")
    return {
        "data": [
            {"type": "bar", "x": x, "y": [p[1] for p in points], "name": t("warning_observed", lang),
             "marker": {"color": "#3fb6ff", "line": {"width": 0}}, "opacity": 0.85},
            {"type": "scatter", "mode": "lines", "x": x, "y": [round(p[2], 2) for p in points],
             "name": t("warning_expected", lang), "line": {"color": "#f2c14e", "width": 2, "shape": "hv"}},
        ],
        "layout": _layout(
            showlegend=True, bargap=0.15, margin={"l": 30, "r": 6, "t": 4, "b": 22},
            legend={"orientation": "h", "x": 0, "y": 1.15, "font": {"size": 11, "color": "#9fb3c8"}},
            xaxis={"type": "date", "tickformat": when, "hoverformat": "%m-%d %H:%M", "tickfont": {"size": 10},
                   "gridcolor": "rgba(0,0,0,0)", "nticks": 6},
            yaxis={"tickfont": {"size": 10}, "gridcolor": "#1a3350", "rangemode": "tozero"},
        ),
    }


def events(rows: list[dict], tz, lang: str) -> list:
    """The events behind an opened warning, newest first (at most EVENTS_LIMIT: then "the latest n")."""
    title = t("warning_events_latest" if len(rows) >= EVENTS_LIMIT else "warning_events", lang)
    return [
        html.Div(title.format(n=count(len(rows))), className="warning-events-title"),
        html.Ul(className="warning-event-list", children=[
            html.Li(**{"data-event": str(r["id"])}, children=[
                html.Span(event_time(r["reported_at"], tz), className="warning-event-time"),
                html.Span(r["category"], className="warning-event-cat", title=r["category"]),
                html.Span(r.get("address") or "", className="warning-event-place", title=r.get("address") or ""),
            ]) for r in rows
        ]),
    ]


def head(w, tz, lang: str) -> list:
    return [_tag(w.kind, lang), html.Span(w.unit_name, className="warning-unit", title=w.unit_name),
            html.Span(t("warning_since", lang).format(t=event_time(w.first_seen, tz)), className="warning-time")]


def ack_state(w, tz, lang: str) -> list:
    """The opened warning's state line: who acknowledged it, when, the note."""
    out = [_state(w, tz, lang)]
    if w.note:
        out.append(html.Span(w.note, className="warning-note", title=w.note))
    return out


# -- the wall's list ------------------------------------------------------------------------

def wall_list(warnings: list, tz, lang: str) -> list:
    if not warnings:
        return [html.Div(t("warnings_none", lang), className="muted")]
    out = []
    for w in warnings[:WALL_LIMIT]:
        explain = w.explain(lang)
        out.append(html.Div(className=f"list-row warning-row kind-{w.kind} state-{w.state}",
                            **{"data-warning": str(w.id), "data-state": w.state}, children=[
            # names and reasons ellipsize (CSS): the full text is the hover title
            html.Span(w.unit_name, className="list-main", title=w.unit_name),
            html.Span(explain, className="list-place", title=explain),
            html.Span([_tag(w.kind, lang), _state(w, tz, lang)], className="list-figure"),
        ]))
    if len(warnings) > WALL_LIMIT:
        out.append(html.Div(t("warnings_more", lang).format(n=count(len(warnings) - WALL_LIMIT)),
                            id="wall-warnings-more", className="warnings-more muted"))
    return out


# -- the map's layers -----------------------------------------------------------------------

def spots(warnings: list, lang: str) -> dict:
    """Recurrence spots as GeoJSON points (circle markers, cockpitMap.warningSpot)."""
    features = []
    for w in warnings:
        d = w.detail or {}
        if w.kind != "recurrence" or d.get("lon") is None:
            continue
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [d["lon"], d["lat"]]},
                         "properties": {"warning": w.id, "kind": w.kind, "state": w.state,
                                        "radius_m": d.get("radius_m"), "tooltip": w.explain(lang)}})
    return {"type": "FeatureCollection", "features": features}


def warned_units(warnings: list) -> dict[int, dict]:
    """unit id -> the outline's properties (warning, kind, state): a cluster outlines all its
    units; where warnings share a unit, the newest (listed first) wins."""
    out: dict[int, dict] = {}
    for w in warnings:
        for u in (w.detail or {}).get("units") or [w.unit_id]:
            out.setdefault(int(u), {"warning": w.id, "kind": w.kind, "state": w.state})
    return out


def map_layers(prefix: str) -> list:
    """The warnings' layers for a map whose element ids start with `prefix`: outlines, then spots."""
    import dash_leaflet as dl

    empty_fc = {"type": "FeatureCollection", "features": []}
    return [dl.GeoJSON(id=f"{prefix}-outlines", data=empty_fc, style={"variable": "cockpitMap.warningStyle"}),
            dl.GeoJSON(id=f"{prefix}-spots", data=empty_fc, pointToLayer={"variable": "cockpitMap.warningSpot"})]
