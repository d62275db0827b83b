"""What the rankings page ("/rank") does. Thin: one ranking.rank() per view, no SQL.

The URL is the state (cockpit.ui.url_state.RankState): the page's controls start from it, each
change of a control writes it back (rank-url) while the table is rendered again, and back and
forward set the controls from the URL gone to. The
quick-filter box only patches the grid's options; a row clicked opens that unit's drill-down
with the same days (assets/cockpit_rank.js).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from dash import ClientsideFunction, Dash, Input, Output, Patch, State, html, no_update
from dash.exceptions import PreventUpdate

from cockpit.metrics.ranking import known_levels, rank
from cockpit.metrics.unit_view import category_groups
from cockpit.ui import url_state
from cockpit.ui.i18n import LANGS, t
from cockpit.ui.url_state import RankState

from cockpit.callbacks import errors
from cockpit.callbacks.context import context, person
from cockpit.callbacks.outputs import unchanged
from cockpit.layouts import rank as layout

PATH = "/rank"
RECENT_MONTHS, RECENT_WEEKS, RECENT_QUARTERS = 12, 12, 4


def recent_periods(today: date) -> list[tuple[str, str]]:
    """(value, kind): the last full months, ISO weeks and quarters, newest first."""
    out = []
    d = today.replace(day=1)
    for _ in range(RECENT_MONTHS):
        d = (d - timedelta(days=1)).replace(day=1)
        out.append((f"{d:%Y-%m}", "month"))
    w = today - timedelta(days=today.weekday())
    for _ in range(RECENT_WEEKS):
        w -= timedelta(days=7)
        y, n, _ = w.isocalendar()
        out.append((f"{y}-W{n:02d}", "week"))
    q = (today.year * 12 + today.month - 1) // 3
    for _ in range(RECENT_QUARTERS):
        q -= 1
        out.append((f"{q // 4}-Q{q % 4 + 1}", "quarter"))
    return out


def page(**query) -> object:
    """The page for its URL (?by=…&level=…&period=…&lang=…)."""
    ctx = context()
    state = url_state.parse_rank(urlencode(query))
    lang = state.lang or ctx.settings.lang
    levels, groups = [], []
    try:
        with ctx.connect() as conn:
            levels, groups = known_levels(conn), category_groups(conn)
    except Exception:  # noqa: BLE001 — the render callback reports it in the banner
        pass
    level = state.level or (levels[1] if len(levels) > 1 else levels[0] if levels else None)
    today = datetime.now(ctx.timezone).date()
    periods = recent_periods(today)
    state = RankState(state.by, level, state.period or periods[0][0], state.group, state.source, state.lang)
    return layout.layout(lang, state, levels, groups, periods, state.period)


RENDER = {
    "search": Output("rank-url", "search"),
    "rows": Output("rank-grid", "rowData"),
    "columns": Output("rank-grid", "columnDefs"),
    "caption": Output("rank-caption", "children"),
    "period": Output("rank-period-label", "children"),
    "how": Output("rank-how", "children"),
    "level_style": Output("rank-level-wrap", "style"),
    "lang_href": Output("rank-lang-toggle", "href"),
    "marker": Output("rank-state", "children"),
    "status": Output("rank-status", "children"),
}


def register(app: Dash) -> None:
    @app.callback(output=RENDER,
                  inputs={"by": Input("rank-by", "value"), "level": Input("rank-level", "value"),
                          "period": Input("rank-period", "value"), "group": Input("rank-group", "value"),
                          "source": Input("rank-source", "value")},
                  state={"lang": State("rank-lang", "data"), "search": State("rank-url", "search")})
    def render(by, level, period, group, source, lang, search):
        lang = lang if lang in LANGS else "zh"
        ctx = context()
        url_lang = url_state.parse_rank(search).lang
        state = RankState(by or "unit", level, period, group or None, source or None, url_lang)
        if state.by == "department" and not person().city_wide:
            # departments serve the whole city: their ranking is not any one district's to see
            return {**unchanged(RENDER), "rows": [], "status": t("dept_rank_city_only", lang)}
        try:
            with ctx.connect() as conn:
                table = rank(conn, ctx.timezone, level=level, period_text=period or "", group=state.group,
                             source=state.source, by=state.by)
        except Exception as exc:  # noqa: BLE001 — mapped to one line for the banner, detail logged
            return {**unchanged(RENDER), "status": errors.message(exc, lang, "ranking")}
        other = "en" if lang == "zh" else "zh"
        what = t("by_department", lang) if table.by == "department" else t(table.level, lang)
        p = table.period
        return {
            "search": url_state.serialise_rank(state),
            "rows": layout.grid_rows(table, lang, state),
            "columns": layout.column_defs(table.by, lang),
            "caption": f"{what} · {table.label}",
            "period": f"{p.first} {t('to', lang)} {p.last} · {t('vs_previous', lang)} "
                      f"{table.previous.first} {t('to', lang)} {table.previous.last}",
            "how": layout.how_scored(table.weights, table.min_volume, lang),
            "level_style": {"display": "none"} if table.by == "department" else {},
            "lang_href": url_state.serialise_rank(RankState(state.by, level, period, state.group, state.source, other)),
            "marker": html.Span(**{"data-by": table.by, "data-level": table.level or "", "data-period": table.label,
                                   "data-from": p.first.isoformat(), "data-to": p.last.isoformat(),
                                   "data-rows": str(len(table.rows))}),
            "status": "",
        }

    @app.callback(Output("rank-by", "value"), Output("rank-level", "value"), Output("rank-period", "value"),
                  Output("rank-group", "value"), Output("rank-source", "value"),
                  Input("rank-url", "search"),
                  State("rank-by", "value"), State("rank-level", "value"), State("rank-period", "value"),
                  State("rank-group", "value"), State("rank-source", "value"), prevent_initial_call=True)
    def follow_history(search, *shown):
        """Back and forward: the controls take the state of the URL the browser went to (which
        renders it). The URL render() just wrote equals the controls: nothing changes then. A
        level or period the URL leaves out (the bare /rank, a department ranking's level) stays."""
        state = url_state.parse_rank(search)
        wanted = (state.by, state.level, state.period, state.group, state.source)
        current = (shown[0] or "unit", *shown[1:3], shown[3] or None, shown[4] or None)
        out = [no_update if w == c or (w is None and i in (1, 2)) else w
               for i, (w, c) in enumerate(zip(wanted, current))]
        if all(o is no_update for o in out):
            raise PreventUpdate
        return out

    @app.callback(Output("rank-grid", "dashGridOptions"), Input("rank-search", "value"), prevent_initial_call=True)
    def quick_filter(text):
        patch = Patch()
        patch["quickFilterText"] = text or ""
        return patch

    app.clientside_callback(
        ClientsideFunction(namespace="cockpitRank", function_name="open"),
        Output("rank-nav", "data"),
        Input("rank-grid", "cellClicked"),
        State("rank-grid", "rowData"),
        prevent_initial_call=True,
    )
