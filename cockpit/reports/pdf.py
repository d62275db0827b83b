"""A report as a PDF: an HTML report (templates/report.html) typeset by WeasyPrint.

WeasyPrint is a real typesetting path with no browser: paged media CSS (A4, landscape pages for
the wide tables, running footers, page numbers, a contents list with page numbers), fonts found
by fontconfig and embedded as subsets, inline SVG charts drawn as vectors. It needs Pango
(Debian: libpango-1.0-0, libpangoft2-1.0-0) and a CJK font (fonts-wqy-microhei), both installed
by scripts/ensure-system.sh.
"""
from __future__ import annotations

from importlib.resources import files

from markupsafe import Markup

from cockpit.metrics.registry import FIGURE, HIGHER, LOWER
from cockpit.reports import charts
from cockpit.reports.content import TOP_CATEGORIES, Headline, Report
from cockpit.ui.formatting import MISSING, percent
from cockpit.ui.ranking_table import columns, display_row

NARROW, WIDE = 680, 1000  # chart widths (CSS px) on a portrait and on a landscape A4 page
PDF_RANK_ROWS = 400  # rows of the ranking table the PDF prints; the xlsx holds every row


def render(report: Report) -> bytes:
    from weasyprint import HTML  # Pango is loaded here, not by `import cockpit.reports`

    return HTML(string=html(report), base_url=str(files("cockpit.reports"))).write_pdf()


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _page_label(report: Report) -> Markup:
    """第 N 页 / Page N as a CSS content value around counter(page)."""
    before, _, after = report.t("report_page").partition("{n}")
    return Markup(f"{_css_string(before)} counter(page) {_css_string(after)}")


def html(report: Report) -> str:
    """The report as one HTML page (charts inline), ready for typesetting or a browser."""
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(files("cockpit.reports").joinpath("templates/report.html").read_text("utf-8"))
    r = report
    rk = r.ranking
    shown = rk.rows[:PDF_RANK_ROWS]
    score_rows, cut = charts.score_bars(rk)
    top = r.categories[:TOP_CATEGORIES]
    contents = [("overview", r.t("report_headline")), ("ranking", r.t("report_ranking_of", what=r.ranked_what)),
                ("categories", r.t("report_categories")), ("overdue", r.t("report_overdue")),
                ("supervised", r.t("report_supervised")), ("hotspots", r.t("report_hotspots"))]

    return template.render(
        r=r, font_stack=Markup(charts.FONT_STACK), page_label=_page_label(r),
        footer=Markup(_css_string(f"{r.title} · {r.period_name}")), contents=contents,
        fmt_value=lambda h: _value(h, h.value), fmt_previous=lambda h: _value(h, h.previous),
        fmt_change=lambda h: _change(h, r), change_class=_change_class,
        trend_chart=Markup(charts.trend_svg(r.trend, (r.t("volume"), r.t("closed")), charts.day_tick,
                                            width=NARROW, height=300)),
        method=r.method_text, columns=columns(rk.by, r.lang),
        ranking_rows=[(row, display_row(row, rk.min_volume, r.lang), Markup(charts.sparkline_svg(row.trend)))
                      for row in shown],
        cell_class=_cell_class,
        ranking_cut=(r.t("report_rows_shown", total=f"{len(rk.rows):,}", shown=len(shown))
                     if len(rk.rows) > len(shown) else ""),
        score_title=r.t("report_score_bars_cut", n=cut) if cut else r.t("report_score_bars"),
        score_chart=Markup(charts.score_svg(rk, r.t("score"), width=WIDE)) if score_rows else r.t("report_none"),
        top_categories=top,
        category_chart=Markup(charts.categories_svg(top, (r.t("report_this_period"), r.t("report_prev_period")),
                                                    width=NARROW))
        if top else "",
        signed_pct=lambda v: MISSING if v is None else f"{v * 100:+.1f}%", pct=percent,
        event_lists=[("overdue", r.overdue, r.list_note(r.overdue, "report_overdue_note"), False),
                     ("supervised", r.supervised, r.list_note(r.supervised, "report_supervised_note"), True)],
        days=lambda v: "" if v is None else f"{v:.1f}",
        expected=lambda v: MISSING if v is None else f"{v:,.2f}",
    )


def _value(h: Headline, v) -> str:
    if v is None:
        return MISSING
    return percent(v) if h.is_rate else f"{v:,}"


def _change(h: Headline, r: Report) -> str:
    c = h.change
    if c is None:
        return r.t("no_previous") if h.previous in (None, 0) else MISSING
    if h.is_rate:
        return f"{c * 100:+.1f}{r.t('point')}" if r.lang == "zh" else f"{c * 100:+.1f} {r.t('point')}"
    return f"{c * 100:+.1f}%"


def _change_class(h: Headline) -> str:
    """Green when the figure moved the good way, red the bad way; volume is neither."""
    c = h.change
    better = FIGURE[h.key].better
    if c is None or better is None or abs(c) < 5e-4:
        return "flat"
    return "up" if (c > 0) == (better == HIGHER) else "down" if better in (HIGHER, LOWER) else "flat"


def _cell_class(key: str, text: str) -> str:
    if key in ("key", "name"):
        return ""
    if key == "change":
        return "c " + ("change-up" if text.startswith("▲") else "change-down" if text.startswith("▼")
                       else "change-new" if text and text != "=" else "")
    if key == "rank" and not text.isdigit():
        return "muted"
    return "iv n" if key in ("closure", "on_time", "satisfaction") else "n"

