"""The rankings page at "/rank": one level's units (or the departments) ranked for a period.

Only the skeleton and the cells' shape are here; cockpit.callbacks.rank fills them from one
cockpit.metrics.ranking.rank() per view. Element ids are what the browser tests read.
"""
from __future__ import annotations

import dash_ag_grid as dag
from dash import dcc, html

from cockpit.metrics.ranking import RATES, Ranking
from cockpit.store.schema import SOURCES
from cockpit.ui import url_state
from cockpit.ui.i18n import t
from cockpit.ui.ranking_table import RATE_LABELS, columns, display_row
from cockpit.ui.url_state import RankState

from cockpit.layouts.drilldown import GRID_LOCALE, GRID_THEME
from cockpit.layouts.report_button import report_button


def period_options(choices: list[tuple[str, str]], current: str | None, lang: str) -> list[dict]:
    """(value, kind) choices as dropdown options, the current one kept even when not a choice."""
    opts = [{"label": f"{v} · {t(kind, lang)}", "value": v} for v, kind in choices]
    if current and current not in {v for v, _ in choices}:
        opts.insert(0, {"label": current, "value": current})
    return opts


def column_defs(ranking_by: str, lang: str) -> list[dict]:
    """AG Grid columns: text cells as `cockpit rank` prints them, sorted by their numbers."""
    def col(field: str, header: str, **kw) -> dict:
        return {"field": field, "headerName": header, **kw}

    heads = dict(columns(ranking_by, lang))
    defs = [
        col("rank", heads["rank"], valueGetter={"function": "params.data.rank_sort"},
            valueFormatter={"function": "params.data.rank_text"}, width=150, pinned="left",
            cellClass="rank-cell", getQuickFilterText={"function": "''"}),
        col("name", heads["name"], minWidth=220, flex=2,
            cellRenderer="RankName"),
        col("volume", heads["volume"], type="numericColumn", valueFormatter={"function": "params.data.volume_text"},
            width=110, getQuickFilterText={"function": "''"}),
    ]
    if ranking_by == "unit":
        defs.append(col("per_10k", heads["per_10k"], type="numericColumn", width=100,
                        valueFormatter={"function": "params.data.per_10k_text"}, getQuickFilterText={"function": "''"}))
    for name in RATES:
        defs.append(col(f"{name}_rate", t(RATE_LABELS[name], lang), minWidth=190, flex=1,
                        valueFormatter={"function": f"params.data.{name}_text"}, getQuickFilterText={"function": "''"},
                        cellClass="rate-cell"))
    defs += [
        col("score", heads["score"], type="numericColumn", width=110,
            valueFormatter={"function": "params.data.score_text"}, cellClass="score-cell",
            getQuickFilterText={"function": "''"}),
        col("change", heads["change"], width=100, valueFormatter={"function": "params.data.change_text"},
            cellClassRules={"change-up": "params.data.change > 0", "change-down": "params.data.change < 0",
                            "change-new": "params.data.new"}, getQuickFilterText={"function": "''"}),
        col("trend", t("rank_trend", lang), width=150, sortable=False, cellRenderer="RankSpark",
            getQuickFilterText={"function": "''"}),
    ]
    return defs


def grid_rows(ranking: Ranking, lang: str, state: RankState) -> list[dict]:
    """One dict per row: numbers to sort on, the printed texts (the CLI's), the drill-down link."""
    out = []
    for r in ranking.rows:
        cells = display_row(r, ranking.min_volume, lang)
        row = {
            "key": r.key, "name": r.name, "rank_sort": r.rank if r.rank is not None else 10**9 + (r.status == "empty"),
            "rank_text": cells["rank"], "status": r.status, "volume": r.volume, "volume_text": cells["volume"],
            "per_10k": r.per_10k, "per_10k_text": cells["per_10k"], "score": r.score, "score_text": cells["score"],
            "change": r.change, "new": r.new, "change_text": cells["change"], "trend": r.trend,
            "href": url_state.drilldown_href(r.key, ranking.period.first.isoformat(), ranking.period.last.isoformat(),
                                             state.group, state.source, state.lang) if r.unit_id else None,
        }
        for name in RATES:
            row[f"{name}_rate"] = getattr(r, name).raw
            row[f"{name}_text"] = cells[name]
        out.append(row)
    return out


def how_scored(weights: dict[str, float], min_volume: int, lang: str) -> list:
    text = t("how_scored_text", lang).format(n=min_volume, **{k: f"{v:g}" for k, v in weights.items()})
    return [html.P(text)]


def layout(lang: str, state: RankState, levels: list[str], groups: list[dict],
           periods: list[tuple[str, str]], period: str) -> html.Div:
    other = "en" if lang == "zh" else "zh"
    level = state.level
    return html.Div(
        className=f"page rank-page lang-{lang}",
        children=[
            dcc.Location(id="rank-url", refresh=False),
            dcc.Store(id="rank-lang", data=lang),
            dcc.Store(id="rank-nav"),  # a row clicked: the browser follows its link
            html.Div(id="rank-state", hidden=True),  # what is on screen, as data-* attributes, for tests
            html.Header(className="topbar", children=[
                html.Div(className="brand", children=[html.Span(className="brand-mark"),
                                                      html.H1(t("rank_title", lang))]),
                html.Div(className="controls", children=[
                    dcc.RadioItems(id="rank-by", options=[{"label": t("by_unit", lang), "value": "unit"},
                                                          {"label": t("by_department", lang), "value": "department"}],
                                   value=state.by, inline=True, className="segmented"),
                    html.Div(id="rank-level-wrap", className="rank-level-wrap",
                             style={"display": "none"} if state.by == "department" else {}, children=[
                        dcc.Dropdown(id="rank-level", options=[{"label": t(lv, lang), "value": lv} for lv in levels],
                                     value=level, clearable=False, searchable=False, className="control rank-level"),
                    ]),
                    dcc.Dropdown(id="rank-period", options=period_options(periods, period, lang), value=period,
                                 clearable=False, className="control rank-period"),
                    dcc.Dropdown(id="rank-group", options=[{"label": g["name"], "value": g["code"]} for g in groups],
                                 value=state.group, placeholder=t("all_groups", lang), className="control filter"),
                    dcc.Dropdown(id="rank-source", options=[{"label": t(f"source_{s}", lang), "value": s} for s in SOURCES],
                                 value=state.source, placeholder=t("all_sources", lang), className="control filter"),
                ]),
                # the monthly / weekly report's download button (cockpit report, callbacks/report_download.py)
                html.Div(id="report-slot", className="report-slot",
                         children=report_button(dict(periods).get(period, "range"), lang)),
                html.A(t("cockpit_link", lang), id="cockpit-link", href=f"/?lang={lang}", className="lang-toggle"),
                html.A(t("language", lang), id="rank-lang-toggle",
                       href=url_state.serialise_rank(RankState(state.by, level, period, state.group, state.source, other)),
                       className="lang-toggle"),
            ]),
            html.Div(id="rank-status", className="store-status"),
            html.Section(className="rank-head", children=[
                html.H2("", id="rank-caption"),
                html.Div("", id="rank-period-label", className="period-label"),
                dcc.Input(id="rank-search", type="search", placeholder=t("search", lang), debounce=False,
                          className="rank-search"),
            ]),
            html.Section(className="rank-main", children=[
                html.Div(className="panel panel-rank", children=[
                    dag.AgGrid(
                        id="rank-grid", columnDefs=column_defs(state.by, lang), rowData=[],
                        defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True},
                        getRowId="params.data.key",
                        rowClassRules={"row-unranked": "params.data.status !== 'ranked'"},
                        dashGridOptions={"theme": {"function": GRID_THEME}, "animateRows": False, "rowHeight": 36,
                                         "headerHeight": 38, "suppressCellFocus": True,
                                         "localeText": GRID_LOCALE.get(lang, {}), "quickFilterText": ""},
                        style={"height": "100%", "width": "100%"},
                    ),
                ]),
                html.Aside(className="panel panel-how", children=[
                    html.Div(className="panel-head", children=[html.H3(t("how_scored", lang))]),
                    html.Div(id="rank-how", className="panel-body how-text"),
                ]),
            ]),
        ],
    )
