"""The 下载月报/周报 button on /rank: the page's level (or departments), period, filters and
language as `cockpit report` would write them. Thin: cockpit.reports gathers and renders."""
from __future__ import annotations

from dash import Dash, Input, Output, State, callback_context, dcc

from cockpit import reports
from cockpit.errors import CockpitError
from cockpit.metrics.ranking import parse_period
from cockpit.reports.content import gather
from cockpit.ui.i18n import LANGS

from cockpit.callbacks import errors
from cockpit.callbacks.context import context
from cockpit.layouts.report_button import hint, label

BUTTONS = {"report-pdf": "pdf", "report-xlsx": "xlsx"}


def kind_of(period: str | None) -> str:
    """month, week, quarter or range; a period that does not parse is named plainly (报告)."""
    try:
        return parse_period(period or "", context().timezone)[1]
    except CockpitError:
        return "range"


def register(app: Dash) -> None:
    @app.callback(Output("report-label", "children"), Output("report-download-wrap", "title"),
                  Input("rank-period", "value"), State("rank-lang", "data"))
    def relabel(period, lang):
        kind = kind_of(period)
        return label(kind, lang), hint(kind, lang)

    @app.callback(Output("report-download", "data"), Output("report-status", "children"),
                  Input("report-pdf", "n_clicks"), Input("report-xlsx", "n_clicks"),
                  State("rank-by", "value"), State("rank-level", "value"), State("rank-period", "value"),
                  State("rank-group", "value"), State("rank-source", "value"), State("rank-lang", "data"),
                  prevent_initial_call=True,
                  running=[(Output("report-pdf", "disabled"), True, False),
                           (Output("report-xlsx", "disabled"), True, False)])
    def download(_pdf, _xlsx, by, level, period, group, source, lang):
        fmt = BUTTONS.get(callback_context.triggered_id)
        if fmt is None:
            return None, ""
        lang = lang if lang in LANGS else "zh"
        ctx = context()
        try:
            with ctx.connect() as conn:
                report = gather(conn, ctx.timezone, period_text=period, by=by or "unit",
                                level=level if by != "department" else None, group=group or None,
                                source=source or None, lang=lang)
            data = reports.render_apart(report, fmt)
        except Exception as exc:  # noqa: BLE001 — mapped once, in callbacks/errors.py
            return None, errors.message(exc, lang, "report download")
        name = reports.file_name(report, fmt)
        ctx.audit("report_download", file=name, format=fmt, period=period, by=by or "unit", level=level)
        return dcc.send_bytes(data, name), ""
