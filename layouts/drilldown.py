"""The drill-down screen at "/": map of the selected unit's children, its KPIs and panels.

Only the skeleton is here; cockpit.callbacks.drilldown fills it from one unit_view per view.
The URL holds the state (cockpit.ui.url_state); element ids below are what the browser
tests read, keep them stable.
"""
from __future__ import annotations

import dash_ag_grid as dag
import dash_leaflet as dl
from dash import dcc, html

from cockpit.metrics.unit_view import KPI_CHOICES, PERIOD_KINDS
from cockpit.metrics.registry import CARD_KEYS
from cockpit.ui.i18n import t
from cockpit.store.schema import SOURCES

from cockpit.ui.url_state import DEFAULT_KPI, DEFAULT_PERIOD, ViewState
from cockpit.layouts import live_parts as live, unit_map, warnings
from cockpit.layouts.charts import GRAPH_CONFIG, empty
from cockpit.layouts.events_table import column_defs

# The six cards: (figure key in unit_view()["kpi"], element id of the number), the registry's order
CARDS = tuple((k, "kpi-" + k.replace("_", "-")) for k in CARD_KEYS)
PLACEHOLDER = "…"

# AG Grid's own theme, coloured like the rest of the page (AG Grid 33+ theming API).
GRID_THEME = (
    "themeQuartz.withParams({backgroundColor: '#0f2133', foregroundColor: '#dce9f7', "
    "headerBackgroundColor: '#132a40', headerTextColor: '#9fc3e6', borderColor: '#1f3b57', "
    "accentColor: '#3fb6ff', oddRowBackgroundColor: '#11253a', rowHoverColor: '#18344f', "
    "fontFamily: 'WenQuanYi Micro Hei, Noto Sans CJK SC, Microsoft YaHei, sans-serif', fontSize: 13, "
    "headerFontSize: 13, spacing: 5, wrapperBorderRadius: 6})"
)


# AG Grid speaks English; its filter menus in Chinese (the labels that show in this table)
GRID_LOCALE = {"zh": {
    "contains": "包含", "notContains": "不包含", "equals": "等于", "notEqual": "不等于",
    "startsWith": "开头是", "endsWith": "结尾是", "blank": "为空", "notBlank": "不为空",
    "lessThan": "小于", "greaterThan": "大于", "lessThanOrEqual": "小于等于", "greaterThanOrEqual": "大于等于",
    "inRange": "介于", "inRangeStart": "从", "inRangeEnd": "到", "filterOoo": "筛选…", "andCondition": "且",
    "orCondition": "或", "noRowsToShow": "无事件", "loadingOoo": "加载中…", "applyFilter": "应用",
    "resetFilter": "重置", "clearFilter": "清除", "cancelFilter": "取消", "selectAll": "全选",
    "searchOoo": "搜索…", "page": "页", "of": "/", "to": "至", "more": "更多",
    "ariaFilterInput": "筛选输入", "ariaFilteringOperator": "筛选条件",
}}


def _card(key: str, element_id: str, lang: str) -> html.Div:
    return html.Div(
        className=f"kpi-card kpi-card-{key}",
        children=[
            html.Div(t(key, lang), className="kpi-label"),
            html.Div(PLACEHOLDER, id=element_id, className="kpi-value"),
            html.Div(className="kpi-foot", children=[
                html.Span("", id=f"{element_id}-detail", className="kpi-detail"),
                html.Span("", id=f"{element_id}-delta", className="kpi-delta"),
            ]),
        ],
    )


def _panel(title: str, body, className: str = "", extra=None) -> html.Div:
    return html.Div(className=f"panel {className}".strip(), children=[
        html.Div(className="panel-head", children=[html.H3(title), *(extra or [])]),
        html.Div(className="panel-body", children=body),
    ])


def _graph(element_id: str) -> dcc.Graph:
    return dcc.Graph(id=element_id, figure=empty(), config=GRAPH_CONFIG, className="chart",
                     style={"height": "100%", "width": "100%"})


def ui_config() -> dict:
    """What the browser-side URL code needs to know (assets/cockpit_state.js)."""
    return {"periods": list(PERIOD_KINDS), "kpis": list(KPI_CHOICES),
            "defaults": {"period": DEFAULT_PERIOD, "kpi": DEFAULT_KPI}}


def layout(lang: str = "zh", state: ViewState = ViewState(), tiles=None, who: str = "") -> html.Div:
    """The page; `state` (parsed from the page URL) only sets the controls' first values;
    `tiles`: the local base-map source, if any."""
    other = "en" if lang == "zh" else "zh"
    return html.Div(
        className=f"page lang-{lang}",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="lang", data=lang),
            dcc.Store(id="ui-config", data=ui_config()),
            dcc.Store(id="query"),  # the part of the URL the server renders from
            dcc.Store(id="view"),  # what is on screen: unit code, level, period days
            html.Div(id="view-state", hidden=True),  # the same as data-* attributes, for tests
            *live.stores("cockpit", "map"),
            html.Header(
                className="topbar",
                children=[
                    html.Div(className="brand", children=[
                        html.Span(className="brand-mark"),
                        html.H1(t("title", lang)),
                    ]),
                    html.Div(className="controls", children=[
                        html.Label(t("period", lang), className="control-label"),
                        dcc.Dropdown(
                            id="period",
                            options=[{"label": t(f"period_{k}", lang), "value": k} for k in PERIOD_KINDS],
                            value=state.period, clearable=False, searchable=False, className="control period",
                        ),
                        html.Div(
                            id="custom-range-wrap",
                            className="custom-range-wrap",
                            style={} if state.period == "custom" else {"display": "none"},
                            children=dcc.DatePickerRange(
                                id="custom-range", start_date=state.first, end_date=state.last,
                                display_format="YYYY-MM-DD", minimum_nights=0, className="control",
                            ),
                        ),
                        # the groups come from the store with the first view; until then the
                        # linked group is its own option (a dropdown drops a value it has no option for)
                        dcc.Dropdown(id="filter-group",
                                     options=[{"label": state.group, "value": state.group}] if state.group else [],
                                     value=state.group, placeholder=t("all_groups", lang), className="control filter"),
                        dcc.Dropdown(
                            id="filter-source",
                            options=[{"label": t(f"source_{s}", lang), "value": s} for s in SOURCES],
                            value=state.source, placeholder=t("all_sources", lang), className="control filter",
                        ),
                    ]),
                    live.status_badge("cockpit", lang),
                    html.A(t("rank_link", lang), id="rank-link", href=f"/rank?lang={lang}", className="lang-toggle"),
                    html.A(t("wall_link", lang), id="wall-link", href=f"/wall?lang={lang}", className="lang-toggle"),
                    html.A(t("language", lang), id="lang-toggle", href=f"?lang={other}", className="lang-toggle"),
                ],
            ),
            html.Div(id="store-status", className="store-status"),
            html.Section(
                className="unit-header",
                children=[
                    html.Div(className="unit-title", children=[
                        html.Nav(id="breadcrumb", className="breadcrumb"),
                        html.Div(className="unit-name-row", children=[
                            dcc.Link(f"↑ {t('up', lang)}", id="up-link", href="/", className="up-link hidden"),
                            html.H2(PLACEHOLDER, id="unit-name"),
                            html.Span("", id="unit-level", className="level-badge"),
                        ]),
                    ]),
                    html.Div(id="period-label", className="period-label"),
                ],
            ),
            html.Section(className="kpi-row", children=[_card(k, i, lang) for k, i in CARDS]),
            html.Section(
                className="main-grid",
                children=[
                    html.Div(
                        className="map-panel",
                        children=[
                            unit_map.unit_map("map", tiles, [
                                unit_map.units_layer("children", "cockpitMap.style",
                                                     hoverStyle={"variable": "cockpitMap.hoverStyle"}),
                                dl.GeoJSON(
                                    id="events",
                                    data={"type": "FeatureCollection", "features": []},
                                    pointToLayer={"variable": "cockpitMap.eventPoint"},
                                ),
                                *warnings.map_layers("warning"),
                            ]),
                            html.Div(className="map-toolbar", children=[
                                html.Span(t("map_colour_by", lang), className="control-label"),
                                dcc.RadioItems(
                                    id="map-kpi",
                                    options=[{"label": t(k, lang), "value": k} for k in KPI_CHOICES],
                                    value=state.kpi, inline=True, className="segmented",
                                ),
                            ]),
                            html.Div(className="map-heat", children=live.heat_controls("cockpit", lang)),
                            html.Div(id="map-legend", className=f"map-legend show-{state.kpi}"),
                            html.Div(id="placed-note", className="placed-note"),
                        ],
                    ),
                    html.Div(
                        className="side",
                        children=[
                            _panel(t("trend", lang), _graph("trend-chart"), "panel-trend"),
                            html.Div(className="side-row", children=[
                                _panel(t("by_group", lang), _graph("group-chart"), "panel-group"),
                                _panel(t("by_source", lang), _graph("source-chart"), "panel-source"),
                            ]),
                            html.Div(className="side-row", children=[
                                _panel(t("funnel", lang), html.Div(id="funnel", className="funnel"), "panel-funnel"),
                                _panel(t("levels_title", lang), html.Div(id="levels", className="levels"),
                                       "panel-levels"),
                            ]),
                        ],
                    ),
                    warnings.panel(lang, who),
                ],
            ),
            html.Section(className="live-row", children=[
                html.H3(t("ticker", lang), className="live-row-title"),
                live.ticker("cockpit"),
            ]),
            html.Section(
                id="ranking-section",
                className="bottom-row",
                children=_panel(t("ranking", lang), html.Div(id="ranking", className="ranking"), "panel-ranking",
                                extra=[html.Span("", id="ranking-note", className="panel-note placed")]),
            ),
            html.Section(
                id="events-section",
                className="bottom-row events-row",
                style={"display": "none"},
                children=[
                    _panel(
                        t("events_title", lang),
                        dag.AgGrid(
                            id="events-grid",
                            columnDefs=column_defs(lang),
                            rowData=[],
                            defaultColDef={"sortable": True, "filter": True, "resizable": True, "minWidth": 70},
                            getRowId="params.data.id",
                            rowClassRules={"row-overdue": "params.data.overdue_flag === true"},
                            columnSize="responsiveSizeToFit",
                            dashGridOptions={
                                "theme": {"function": GRID_THEME},
                                "animateRows": False,
                                "rowHeight": 34,
                                "headerHeight": 36,
                                "suppressCellFocus": True,
                                "localeText": GRID_LOCALE.get(lang, {}),
                            },
                            style={"height": "100%", "width": "100%"},
                        ),
                        "panel-events",
                        extra=[html.Span(t("events_hint", lang), id="events-note", className="panel-note")],
                    ),
                    _panel(t("history_title", lang),
                           html.Div(html.Div(t("history_empty", lang), className="muted"), id="event-history",
                                    className="history"),
                           "panel-history"),
                ],
            ),
        ],
    )
