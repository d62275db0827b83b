"""The first screen: the city's districts on a map beside its 一量三率 for the last 30 days."""
from __future__ import annotations

import dash_leaflet as dl
from dash import dcc, html

from cockpit.i18n import t

KPI_KEYS = ("volume", "closure_rate", "on_time_rate", "satisfaction_rate")


def kpi_card(key: str, lang: str) -> html.Div:
    return html.Div(
        className="kpi-card",
        children=[
            html.Div(t(key, lang), className="kpi-label"),
            html.Div("…", id=f"kpi-{key.replace('_', '-')}", className="kpi-value"),
            html.Div("", id=f"kpi-{key.replace('_', '-')}-detail", className="kpi-detail"),
        ],
    )


def layout(lang: str = "zh") -> html.Div:
    other = "en" if lang == "zh" else "zh"
    return html.Div(
        className="page",
        children=[
            dcc.Location(id="url"),
            dcc.Store(id="lang", data=lang),
            html.Header(
                className="topbar",
                children=[
                    html.H1(t("title", lang)),
                    html.Div(id="scope", className="scope"),
                    html.A(t("language", lang), href=f"?lang={other}", className="lang-toggle"),
                ],
            ),
            html.Div(id="store-status", className="store-status"),
            html.Section(className="kpi-row", children=[kpi_card(k, lang) for k in KPI_KEYS]),
            html.Section(
                className="map-panel",
                children=[
                    dl.MapContainer(
                        id="map",
                        center=[22.6, 114.05],
                        zoom=10,
                        attributionControl=False,
                        preferCanvas=True,
                        style={"height": "100%", "width": "100%"},
                        # No TileLayer on purpose: intranet screens may not reach any tile
                        # server, so the unit polygons themselves are the base map.
                        children=[
                            dl.GeoJSON(
                                id="districts",
                                zoomToBounds=True,
                                style={"color": "#7fd1ff", "weight": 1.5, "fillColor": "#1f6fb2",
                                       "fillOpacity": 0.45},
                                hoverStyle={"weight": 3, "color": "#ffffff", "fillOpacity": 0.65},
                            )
                        ],
                    )
                ],
            ),
        ],
    )
