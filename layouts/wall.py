"""The wall screen at "/wall": the command centre's all-day display, no one touching it.

Laid out on a 16:9 grid in rem, with the root font size a fixed share of the screen width
(assets/cockpit.css, `.wall`), so 1920x1080 and 3840x2160 show the same picture, without
scrollbars. `?kiosk=1` hides every control; `?rotate=N` sets the district rotation (seconds,
0 stops it); `?heat=1h|24h|7d|off` the heat window; `?lang=en` English.
"""
from __future__ import annotations

import dash_leaflet as dl
from dash import dcc, html

from cockpit.config import settings
from cockpit.ui.i18n import t

from cockpit.layouts import basemap, live_parts as live

# The big numbers: (key in the numbers of cockpit.metrics.live_view.today_numbers, element id)
WALL_CARDS = (
    ("volume", "wall-volume"),
    ("closure_rate", "wall-closure-rate"),
    ("on_time_rate", "wall-on-time-rate"),
    ("satisfaction_rate", "wall-satisfaction-rate"),
    ("open", "wall-open"),
    ("overdue", "wall-overdue"),
)
PLACEHOLDER = "…"


def _card(key: str, element_id: str, lang: str) -> html.Div:
    return html.Div(className=f"wall-card wall-card-{key}", children=[
        html.Div(t(key, lang), className="wall-card-label"),
        html.Div(PLACEHOLDER, id=element_id, className="wall-card-value"),
    ])


def _panel(title: str, body, element_id: str, className: str = "") -> html.Div:
    return html.Div(className=f"wall-panel {className}".strip(), children=[
        html.H3(title, className="wall-panel-title"),
        html.Div(body, id=element_id, className="wall-panel-body"),
    ])


def layout(lang: str, kiosk: bool, rotate: int, heat_window: str) -> html.Div:
    other = "en" if lang == "zh" else "zh"
    # kiosk: the controls stay in the page (the callbacks read them) but are not shown
    controls = [
        html.Div(className="wall-controls", hidden=kiosk, children=[
            live.heat_controls("wall", lang, heat_window),
            html.A(t("cockpit_link", lang), href=f"/?lang={lang}", className="wall-link"),
            html.A(t("language", lang), id="wall-lang", href=f"?lang={other}", className="lang-toggle"),
        ]),
    ]
    return html.Div(
        className=f"wall lang-{lang}" + (" kiosk" if kiosk else ""),
        children=[
            dcc.Store(id="lang", data=lang),
            dcc.Store(id="wall-config", data={"rotate": rotate, "kiosk": kiosk, "tz": settings().timezone.key}),
            dcc.Store(id="wall-focus"),  # the unit in focus: None = the city, else a district code
            dcc.Store(id="wall-districts", data=[]),  # codes to rotate through
            dcc.Store(id="wall-sigs", data={}),  # what each section last showed (send only changes)
            dcc.Interval(id="wall-rotate", interval=max(rotate, 1) * 1000, disabled=rotate <= 0),
            *live.stores("wall", "wall-map"),
            html.Header(className="wall-header", children=[
                html.Div(className="wall-brand", children=[
                    html.Span(className="brand-mark"),
                    html.H1(t("wall_title", lang)),
                ]),
                html.Div(className="wall-today", children=[
                    html.Span(t("city_today", lang), className="wall-today-label"),
                    html.Span("", id="wall-city-name", className="wall-city-name"),
                ]),
                *controls,
                html.Div(className="wall-right", children=[
                    live.status_badge("wall", lang),
                    html.Div("", id="wall-clock", className="wall-clock"),
                ]),
            ]),
            html.Section(className="wall-kpis", children=[_card(k, i, lang) for k, i in WALL_CARDS]),
            html.Section(className="wall-main", children=[
                _panel(t("ticker", lang), live.ticker("wall"), "wall-ticker-panel", "wall-ticker"),
                html.Div(className="wall-map", children=[
                    dl.MapContainer(
                        id="wall-map", center=[22.6, 114.05], zoom=10, zoomSnap=0.25, zoomControl=False,
                        attributionControl=False, preferCanvas=False, scrollWheelZoom=False,
                        style={"height": "100%", "width": "100%"},
                        children=[
                            *basemap.layers(),
                            dl.GeoJSON(
                                id="wall-units",
                                eventHandlers={"layeradd": {"variable": "cockpitMap.fitOnce"}},
                                style={"variable": "cockpitMap.wallStyle"},
                                onEachFeature={"variable": "cockpitMap.onEachFeature"},
                                hideout={},
                            ),
                        ],
                    ),
                    html.Div(className="wall-focus", children=[
                        html.Div(t("focus", lang), className="wall-focus-label"),
                        html.Div(PLACEHOLDER, id="wall-focus-name", className="wall-focus-name"),
                        html.Div("", id="wall-focus-numbers", className="wall-focus-numbers"),
                    ]),
                ]),
                html.Div(className="wall-side", children=[
                    _panel(t("overdue_list", lang), [], "wall-overdue-list", "wall-overdue"),
                    _panel(t("busiest", lang), [], "wall-busiest", "wall-busy"),
                ]),
            ]),
            html.Section(className="wall-districts", children=[
                html.H3(t("districts_today", lang), className="wall-strip-title"),
                html.Div(id="wall-district-strip", className="wall-strip"),
            ]),
        ],
    )
