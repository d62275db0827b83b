"""A report as an Excel workbook (XlsxWriter): one sheet per section, numbers as numbers.

Counts are integers, rates are fractions shown with a 0.0% format, dates are Excel dates, so a
reader can sort, filter and compute on them. Every table has a frozen header and an autofilter;
the trend, the scores and the categories have native Excel charts; the ranking's 8-period score
trend is a native sparkline beside the figures it is drawn from.
"""
from __future__ import annotations

import io

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from cockpit.metrics.ranking import EMPTY, RATES, SMALL
from cockpit.metrics.registry import FRACTIONS
from cockpit.reports.content import TOP_CATEGORIES, EventList, Report
from cockpit.reports.charts import score_bars
from cockpit.ui.ranking_table import RATE_LABELS, rank_cell

COUNT_LABELS = {"volume": "volume", "closed": "closed", "closed_on_time": "report_closed_on_time",
                "rated": "report_rated", "satisfied": "report_satisfied"}
FONT = "Microsoft YaHei"  # what Chinese offices have; LibreOffice and WPS fall back to their own CJK font


def render(report: Report) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "remove_timezone": True})
    wb.set_properties({"title": f"{report.title} {report.period_name}", "subject": report.period_text,
                       "company": report.city, "comments": "cockpit report"})
    f = _formats(wb)
    _overview(wb, f, report)
    _ranking(wb, f, report)
    _score_chart(wb, f, report)
    _trend(wb, f, report)
    _categories(wb, f, report)
    _events(wb, f, report, report.overdue, "report_overdue", "report_overdue_note", closed=False)
    _events(wb, f, report, report.supervised, "report_supervised", "report_supervised_note", closed=True)
    _hotspots(wb, f, report)
    wb.close()
    return buf.getvalue()


def _formats(wb) -> dict:
    base = {"font_name": FONT, "font_size": 10}

    def fmt(**kw):
        return wb.add_format({**base, **kw})

    pt = "个百分点"
    return {
        "title": fmt(bold=True, font_size=16), "subtitle": fmt(font_size=11, font_color="#555555"),
        "label": fmt(bold=True), "text": fmt(), "wrap": fmt(text_wrap=True, valign="top"),
        "header": fmt(bold=True, bg_color="#1F3A5F", font_color="#FFFFFF", text_wrap=True, valign="vcenter",
                      border=1, border_color="#A0A0A0"),
        "int": fmt(num_format="#,##0"), "pct": fmt(num_format="0.0%"), "score": fmt(num_format="0.00"),
        "dec1": fmt(num_format="#,##0.0"), "date": fmt(num_format="yyyy-mm-dd"),
        "datetime": fmt(num_format="yyyy-mm-dd hh:mm"),
        "change": fmt(num_format="▲0;▼0;=", align="center"), "new": fmt(align="center", font_color="#1F6FB2"),
        "pp_zh": fmt(num_format=f'+0.0"{pt}";-0.0"{pt}";0.0'), "pp_en": fmt(num_format='+0.0" pt";-0.0" pt";0.0'),
        "rel": fmt(num_format="+0.0%;-0.0%;0.0%"), "muted": fmt(font_color="#777777"),
    }


def _sheet(wb, report: Report, key: str):
    # sheet names: at most 31 characters, none of []:*?/\
    name = report.t(key)
    for ch in "[]:*?/\\":
        name = name.replace(ch, " ")
    return wb.add_worksheet(name[:31])


def _table_head(ws, f, row: int, headers: list[str], widths: list[float], freeze_cols: int = 0) -> None:
    for c, (h, w) in enumerate(zip(headers, widths)):
        ws.write(row, c, h, f["header"])
        ws.set_column(c, c, w)
    ws.set_row(row, 30)
    ws.freeze_panes(row + 1, freeze_cols)


def _num(ws, row: int, col: int, value, fmt) -> None:
    """A number, or an empty cell when there is none (a rate without a denominator is not 0)."""
    if value is None:
        ws.write_blank(row, col, None, fmt)
    else:
        ws.write_number(row, col, value, fmt)


# -- the sections --------------------------------------------------------------------------------

def _overview(wb, f, r: Report) -> None:
    ws = _sheet(wb, r, "report_overview")
    ws.hide_gridlines(2)
    ws.set_column(0, 0, 22)
    ws.set_column(1, 5, 14)
    ws.write(0, 0, r.title, f["title"])
    ws.write(1, 0, r.period_name + (f" · {r.running}" if r.running else ""), f["subtitle"])
    facts = [
        ("rank_period", r.paren(r.period_name, f"{r.period.first} — {r.period.last}")),
        ("report_previous", r.paren(r.previous_name, f"{r.previous.first} — {r.previous.last}")),
        ("report_scope", r.ranked_what),
        ("report_filters", r.filters_text),
        ("report_generated", r.paren(r.stamp(r.generated_at), r.period.tz.key)),
    ]
    row = 3
    for key, value in facts:
        ws.write(row, 0, r.t(key), f["label"])
        ws.write(row, 1, value, f["text"])
        row += 1
    row += 1
    ws.write(row, 0, r.t("report_headline"), f["label"])
    row += 1
    head = ["", r.t("report_this_period"), r.t("report_prev_period"), r.t("report_change"),
            r.t("report_numerator"), r.t("report_denominator")]
    for c, h in enumerate(head):
        ws.write(row, c, h, f["header"])
    for h in r.headline:
        row += 1
        ws.write(row, 0, r.t(h.key), f["label"])
        if h.is_rate:
            _num(ws, row, 1, h.value, f["pct"])
            _num(ws, row, 2, h.previous, f["pct"])
            _num(ws, row, 3, None if h.change is None else h.change * 100, f[f"pp_{r.lang}"])
            ws.write_number(row, 4, h.numerator, f["int"])
            ws.write_number(row, 5, h.denominator, f["int"])
        else:
            _num(ws, row, 1, h.value, f["int"])
            _num(ws, row, 2, h.previous, f["int"])
            _num(ws, row, 3, h.change, f["rel"])
    row += 2
    ws.write(row, 0, r.t("report_highlights"), f["label"])
    for line in r.highlights:
        row += 1
        ws.write(row, 0, "• " + line, f["text"])
    row += 2
    ws.write(row, 0, r.t("report_method"), f["label"])
    ws.merge_range(row + 1, 0, row + 6, 4, r.method_text, f["wrap"])
    row += 8
    ws.write(row, 0, r.t("report_hotspots"), f["label"])
    ws.write(row, 1, r.hotspots_note, f["text"])


def _ranking(wb, f, r: Report) -> None:
    ws = _sheet(wb, r, "report_ranking")
    rk = r.ranking
    ws.write(0, 0, f"{r.t('report_ranking_of', what=r.ranked_what)} · {r.period_name}", f["title"])
    ws.write(1, 0, f"{r.t('report_previous')}: {r.previous_name} · {r.filters_text}", f["subtitle"])
    head, widths = [r.t("rank"), r.t("report_department") if rk.by == "department" else r.t("rank_unit"),
                    r.t("report_code"), r.t("volume")], [8, 22, 20, 10]
    if rk.by == "unit":
        head += [r.t("report_population"), r.t("per_10k")]
        widths += [11, 9]
    for name in RATES:
        k, n = FRACTIONS[RATE_LABELS[name]]
        head += [r.t(RATE_LABELS[name]), r.t("report_low"), r.t("report_high"), r.t(COUNT_LABELS[k]),
                 r.t(COUNT_LABELS[n])]
        widths += [9, 8, 8, 8, 8]
    head += [r.t("score"), r.t("rank_change"), r.t("rank_trend")]
    widths += [9, 8, 14]
    trend_first = len(head)
    head += rk.trend_labels
    widths += [9] * len(rk.trend_labels)
    top = 3
    _table_head(ws, f, top, head, widths, freeze_cols=2)
    for i, row in enumerate(rk.rows):
        y = top + 1 + i
        if row.status in (SMALL, EMPTY):
            ws.write(y, 0, rank_cell(row, rk.min_volume, r.lang), f["muted"])
        else:
            ws.write_number(y, 0, row.rank, f["int"])
        ws.write(y, 1, row.name)
        ws.write(y, 2, row.key)
        ws.write_number(y, 3, row.volume, f["int"])
        c = 4
        if rk.by == "unit":
            _num(ws, y, c, row.population, f["int"])
            _num(ws, y, c + 1, row.per_10k, f["dec1"])
            c += 2
        for name in RATES:
            rate = getattr(row, name)
            _num(ws, y, c, rate.raw, f["pct"])
            _num(ws, y, c + 1, rate.low, f["pct"])
            _num(ws, y, c + 2, rate.high, f["pct"])
            ws.write_number(y, c + 3, rate.k, f["int"])
            ws.write_number(y, c + 4, rate.n, f["int"])
            c += 5
        _num(ws, y, c, row.score, f["score"])
        if row.new:
            ws.write(y, c + 1, r.t("rank_new"), f["new"])
        else:
            _num(ws, y, c + 1, row.change, f["change"])
        for j, s in enumerate(row.trend):
            _num(ws, y, trend_first + j, s, f["score"])
        if any(s is not None for s in row.trend):
            ws.add_sparkline(y, c + 2, {
                "range": f"{xl_rowcol_to_cell(y, trend_first)}:{xl_rowcol_to_cell(y, trend_first + len(row.trend) - 1)}",
                "markers": True, "last_point": True, "series_color": "#1F6FB2", "empty_cells": "gaps"})
    last = top + max(len(rk.rows), 1)
    ws.autofilter(top, 0, last, len(head) - 1)


def _score_chart(wb, f, r: Report) -> None:
    """The scores as bars, on a sheet of their own with the figures they are drawn from."""
    bars, cut = score_bars(r.ranking)
    ws = _sheet(wb, r, "report_score_bars")
    title = r.t("report_score_bars_cut", n=cut) if cut else r.t("report_score_bars")
    _table_head(ws, f, 0, [r.t("rank"), r.t("rank_unit") if r.by == "unit" else r.t("report_department"),
                           r.t("score")], [8, 22, 10])
    for i, row in enumerate(bars):
        ws.write_number(i + 1, 0, row.rank, f["int"])
        ws.write(i + 1, 1, row.name)
        ws.write_number(i + 1, 2, row.score, f["score"])
    if not bars:
        return
    sheet = ws.get_name()
    chart = wb.add_chart({"type": "bar"})
    chart.add_series({"name": r.t("score"), "categories": [sheet, 1, 1, len(bars), 1],
                      "values": [sheet, 1, 2, len(bars), 2], "fill": {"color": "#1F6FB2"},
                      "data_labels": {"value": True, "num_format": "0.0"}})
    chart.set_title({"name": f"{title} · {r.period_name}", "name_font": {"name": FONT, "size": 12}})
    chart.set_y_axis({"reverse": True, "num_font": {"name": FONT, "size": 9}})  # the best on top
    chart.set_x_axis({"num_font": {"name": FONT}, "major_gridlines": {"visible": True}})
    chart.set_legend({"none": True})
    chart.set_size({"width": 720, "height": max(320, 22 * len(bars) + 90)})
    ws.insert_chart(1, 4, chart)


def _trend(wb, f, r: Report) -> None:
    ws = _sheet(wb, r, "report_trend")
    first = r.t("report_date") if r.trend_unit == "day" else r.t("report_week_of")
    _table_head(ws, f, 0, [first, r.t("volume"), r.t("closed")], [14, 10, 10])
    for i, p in enumerate(r.trend):
        ws.write_datetime(i + 1, 0, p.first, f["date"])
        ws.write_number(i + 1, 1, p.volume, f["int"])
        ws.write_number(i + 1, 2, p.closed, f["int"])
    n = len(r.trend)
    ws.autofilter(0, 0, max(n, 1), 2)
    if not n:
        return
    sheet = ws.get_name()
    chart = wb.add_chart({"type": "line"})
    for col, colour in ((1, "#1F6FB2"), (2, "#2E9E5B")):
        chart.add_series({"name": [sheet, 0, col], "categories": [sheet, 1, 0, n, 0],
                          "values": [sheet, 1, col, n, col], "line": {"color": colour, "width": 2},
                          "marker": {"type": "circle", "size": 4, "fill": {"color": colour},
                                     "border": {"color": colour}}})
    unit = r.t("report_by_day") if r.trend_unit == "day" else r.t("report_by_week")
    chart.set_title({"name": r.paren(r.t("report_trend"), unit), "name_font": {"name": FONT, "size": 12}})
    chart.set_x_axis({"date_axis": True, "num_format": "m/d", "num_font": {"name": FONT, "size": 8}})
    chart.set_y_axis({"num_font": {"name": FONT}, "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom", "font": {"name": FONT}})
    chart.set_size({"width": 760, "height": 360})
    ws.insert_chart(1, 4, chart)


def _categories(wb, f, r: Report) -> None:
    ws = _sheet(wb, r, "report_categories")
    head = [r.t("report_category"), r.t("report_group"), r.t("report_code"), r.t("report_this_period"),
            r.t("report_prev_period"), r.t("report_change"), r.t("report_change_pct"), r.t("report_share")]
    _table_head(ws, f, 0, head, [16, 12, 9, 10, 10, 10, 10, 9], freeze_cols=1)
    for i, c in enumerate(r.categories):
        y = i + 1
        ws.write(y, 0, c.name)
        ws.write(y, 1, c.group)
        ws.write(y, 2, c.code)
        ws.write_number(y, 3, c.volume, f["int"])
        ws.write_number(y, 4, c.previous, f["int"])
        ws.write_number(y, 5, c.change, f["int"])
        _num(ws, y, 6, c.change_pct, f["rel"])
        _num(ws, y, 7, c.share, f["pct"])
    n = len(r.categories)
    ws.autofilter(0, 0, max(n, 1), len(head) - 1)
    top = min(n, TOP_CATEGORIES)
    if not top:
        return
    sheet = ws.get_name()
    chart = wb.add_chart({"type": "bar"})
    for col, colour in ((3, "#1F6FB2"), (4, "#A6B8CC")):
        chart.add_series({"name": [sheet, 0, col], "categories": [sheet, 1, 0, top, 0],
                          "values": [sheet, 1, col, top, col], "fill": {"color": colour}, "gap": 60})
    chart.set_title({"name": r.t("report_top_categories", n=top), "name_font": {"name": FONT, "size": 12}})
    chart.set_y_axis({"reverse": True, "num_font": {"name": FONT, "size": 9}})
    chart.set_x_axis({"num_font": {"name": FONT}, "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom", "font": {"name": FONT}})
    chart.set_size({"width": 640, "height": 420})
    ws.insert_chart(1, 9, chart)


def _events(wb, f, r: Report, lst: EventList, key: str, note: str, closed: bool) -> None:
    ws = _sheet(wb, r, key)
    ws.write(0, 0, f"{r.t(key)} · {r.period_name}", f["title"])
    ws.write(1, 0, r.list_note(lst, note), f["subtitle"])
    head = [r.t("event_id"), r.t("col_reported"), r.t("report_category"), r.t("report_group"),
            r.t("rank_unit"), r.t("report_grid"), r.t("report_department"), r.t("col_deadline")]
    widths = [10, 16, 14, 12, 14, 20, 14, 16]
    if closed:
        head.append(r.t("col_closed"))
        widths.append(16)
    head += [r.t("report_overdue_days"), r.t("report_status_now"), r.t("col_source")]
    widths += [9, 9, 12]
    if not closed:
        head.append(r.t("col_supervised"))
        widths.append(7)
    top = 3
    _table_head(ws, f, top, head, widths, freeze_cols=1)
    for i, e in enumerate(lst.rows):
        y = top + 1 + i
        cells = [(e.id, "int"), (e.reported_at, "datetime"), (e.category, None), (e.group, None), (e.unit, None),
                 (e.grid, None), (e.department, None), (e.deadline_at, "datetime")]
        if closed:
            cells.append((e.closed_at, "datetime"))
        cells += [(e.overdue_days, "dec1"), (r.t(f"status_{e.status}"), None), (r.t(f"source_{e.source}"), None)]
        if not closed:
            cells.append((r.t("yes") if e.supervised else "", None))
        for c, (v, kind) in enumerate(cells):
            if v is None:
                ws.write_blank(y, c, None)
            elif kind == "datetime":
                ws.write_datetime(y, c, v, f["datetime"])
            elif kind:
                ws.write_number(y, c, v, f[kind])
            else:
                ws.write_string(y, c, v)
    ws.autofilter(top, 0, top + max(len(lst.rows), 1), len(head) - 1)


def _hotspots(wb, f, r: Report) -> None:
    """The period's warnings (newest first, capped) under a small table of counts per kind."""
    ws = _sheet(wb, r, "report_hotspots")
    h = r.hotspots
    ws.write(0, 0, f"{r.t('report_hotspots')} · {r.period_name}", f["title"])
    ws.write(1, 0, r.hotspots_note, f["subtitle"])
    ws.write(3, 0, r.t("report_warning_kind"), f["header"])
    ws.write(3, 1, r.t("report_count"), f["header"])
    for i, (kind, n) in enumerate(h.by_kind.items()):
        ws.write(4 + i, 0, r.t(f"warning_kind_{kind}"))
        ws.write_number(4 + i, 1, n, f["int"])
    top = 5 + len(h.by_kind)
    head = [r.t("report_first_seen"), r.t("report_last_seen"), r.t("report_warning_kind"), r.t("rank_unit"),
            r.t("report_code"), r.t("report_category"), r.t("report_warning_explain"), r.t("warning_observed"),
            r.t("warning_expected"), r.t("report_warning_state"), r.t("report_acked_by")]
    _table_head(ws, f, top, head, [16, 16, 10, 18, 16, 12, 70, 9, 9, 9, 12], freeze_cols=0)
    if not h.rows:
        ws.write(top + 1, 0, r.t("report_none"), f["muted"])
    for i, w in enumerate(h.rows):
        y = top + 1 + i
        ws.write_datetime(y, 0, w.first_seen, f["datetime"])
        ws.write_datetime(y, 1, w.last_seen, f["datetime"])
        ws.write_string(y, 2, r.t(f"warning_kind_{w.kind}"))
        ws.write_string(y, 3, w.unit_name)
        ws.write_string(y, 4, w.unit_code)
        category = w.category_name or (w.detail or {}).get("top_category_name")
        ws.write(y, 5, category) if category else ws.write_blank(y, 5, None)
        ws.write_string(y, 6, w.explain(r.lang))
        ws.write_number(y, 7, w.observed, f["int"])
        _num(ws, y, 8, w.expected, f["score"])
        ws.write_string(y, 9, r.t(f"warning_state_{w.state}"))
        ws.write(y, 10, w.acknowledged_by) if w.acknowledged_by else ws.write_blank(y, 10, None)
    ws.autofilter(top, 0, top + max(len(h.rows), 1), len(head) - 1)
