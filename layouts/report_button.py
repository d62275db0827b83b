"""The 下载月报/周报 button in /rank's header: a PDF and an Excel copy of `cockpit report` for
what the page shows (cockpit.callbacks.report_download makes the file)."""
from __future__ import annotations

from dash import dcc, html

from cockpit.ui.i18n import t


def label(kind: str, lang: str) -> str:
    """下载月报 / 下载周报 / 下载季报 / 下载报告 (a month, a week, a quarter, days)."""
    return t(f"report_download_{kind}", lang)


def hint(kind: str, lang: str) -> str:
    return t("report_download_hint", lang).format(kind=t(f"report_{kind}", lang))


def report_button(kind: str, lang: str) -> html.Div:
    return html.Div(id="report-download-wrap", className="report-download", title=hint(kind, lang), children=[
        html.Button([html.Span(label(kind, lang), id="report-label"), html.Span(" · PDF")], id="report-pdf",
                    className="report-button", n_clicks=0),
        html.Button("Excel", id="report-xlsx", className="report-button report-button-alt", n_clicks=0),
        html.Span(id="report-status", className="report-status"),
        dcc.Download(id="report-download"),
    ])
