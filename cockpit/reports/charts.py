"""The report's charts: which rows they draw (shared by every format) and, for the PDF, SVG.

SVG elements are built with ElementTree (escaping is its job) and inlined in the HTML the PDF is
typeset from; no plotting library or browser is involved, so a report renders offline and fast.
Text is in the report's CJK font (cockpit.reports.pdf.FONT_STACK).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import date

from cockpit.metrics.ranking import RANKED, Ranking, RankRow
from cockpit.reports.content import BARS_EACH_END, CategoryRow, TrendPoint
from cockpit.ui.formatting import shorten

FONT_STACK = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', sans-serif"
BLUE, GREEN, GREY, INK, MUTED, GRID = "#1F6FB2", "#2E9E5B", "#A6B8CC", "#1A1A1A", "#666666", "#E3E3E3"


def score_bars(ranking: Ranking) -> tuple[list[RankRow], int | None]:
    """The ranked rows a score chart draws, best first: all of them, or the top and the bottom
    BARS_EACH_END when there are more than twice that (then the cut is returned, else None)."""
    ranked = [r for r in ranking.rows if r.status == RANKED]
    if len(ranked) <= 2 * BARS_EACH_END:
        return ranked, None
    return ranked[:BARS_EACH_END] + ranked[-BARS_EACH_END:], BARS_EACH_END


def nice_ticks(top: float, count: int = 5, whole: bool = True) -> list[float]:
    """0 and round steps up to at least `top` (1, 2, 2.5 or 5 × a power of ten; whole: at least 1,
    for counts)."""
    top = max(top, 1 if whole else 0)
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1, math.ceil(step))
    return [i * step for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def _svg(width: float, height: float) -> ET.Element:
    return ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "width": f"{width:g}", "height": f"{height:g}",
                              "viewBox": f"0 0 {width:g} {height:g}", "font-family": FONT_STACK, "font-size": "11"})


def _text(parent, x, y, text, anchor="start", size=11, fill=INK, weight=None) -> None:
    attrs = {"x": f"{x:.1f}", "y": f"{y:.1f}", "text-anchor": anchor, "font-size": f"{size:g}", "fill": fill}
    if weight:
        attrs["font-weight"] = weight
    ET.SubElement(parent, "text", attrs).text = text


def _line(parent, x1, y1, x2, y2, stroke=GRID, width=1) -> None:
    ET.SubElement(parent, "line", {"x1": f"{x1:.1f}", "y1": f"{y1:.1f}", "x2": f"{x2:.1f}", "y2": f"{y2:.1f}",
                                   "stroke": stroke, "stroke-width": f"{width:g}"})


def _rect(parent, x, y, w, h, fill) -> None:
    ET.SubElement(parent, "rect", {"x": f"{x:.1f}", "y": f"{y:.1f}", "width": f"{max(w, 0):.1f}",
                                   "height": f"{h:.1f}", "fill": fill})


def _legend(parent, x, y, items: list[tuple[str, str]]) -> None:
    for label, colour in items:
        _rect(parent, x, y - 9, 12, 10, colour)
        _text(parent, x + 16, y, label, size=10, fill=MUTED)
        x += 28 + 11 * sum(2 if ord(c) > 0x2E80 else 1 for c in label) * 0.55


def _str(svg: ET.Element) -> str:
    return ET.tostring(svg, encoding="unicode")


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:g}"


def trend_svg(points: list[TrendPoint], labels: tuple[str, str], day_label, width=720, height=240) -> str:
    """Volume and closed per day (or week) as two lines, with a y grid and dated x ticks."""
    svg = _svg(width, height)
    left, right, top, bottom = 48, 12, 26, 34
    pw, ph = width - left - right, height - top - bottom
    ticks = nice_ticks(max([p.volume for p in points] + [1]))
    ymax = ticks[-1]
    for v in ticks:
        y = top + ph - ph * v / ymax
        _line(svg, left, y, left + pw, y)
        _text(svg, left - 6, y + 4, _fmt(v), anchor="end", size=10, fill=MUTED)
    n = len(points)

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n if n else 0)

    every = max(1, math.ceil(n / 10))
    for i, p in enumerate(points):
        if i % every == 0:
            _line(svg, x(i), top + ph, x(i), top + ph + 4, stroke=MUTED)
            _text(svg, x(i), top + ph + 16, day_label(p.first), anchor="middle", size=9, fill=MUTED)
    for attr, colour in (("closed", GREEN), ("volume", BLUE)):
        pts = " ".join(f"{x(i):.1f},{top + ph - ph * getattr(p, attr) / ymax:.1f}" for i, p in enumerate(points))
        if pts:
            ET.SubElement(svg, "polyline", {"points": pts, "fill": "none", "stroke": colour, "stroke-width": "2",
                                            "stroke-linejoin": "round"})
    _line(svg, left, top + ph, left + pw, top + ph, stroke=MUTED)
    _legend(svg, left, 14, [(labels[0], BLUE), (labels[1], GREEN)])
    return _str(svg)


def hbars_svg(rows: list[tuple[str, list[float]]], series: list[tuple[str, str]], width=720, label_cols=20,
              value_fmt=_fmt, row_height=None, gap_after: int | None = None) -> str:
    """Horizontal bars, one row per (label, values), one bar per series in each row; a dashed
    break after row `gap_after` (a top and a bottom drawn together)."""
    per = len(series)
    row_height = row_height or (16 if per == 1 else 22)
    left = 12 + 6.2 * label_cols
    top, right = 24, 60
    gap = 14 if gap_after else 0
    height = top + row_height * len(rows) + gap + 26
    svg = _svg(width, height)
    pw = width - left - right
    vmax = nice_ticks(max([v for _, vs in rows for v in vs] + [1]))
    ticks, vmax = vmax, vmax[-1]
    bottom = top + row_height * len(rows) + gap
    for v in ticks:
        xx = left + pw * v / vmax
        _line(svg, xx, top - 4, xx, bottom)
        _text(svg, xx, bottom + 14, value_fmt(v), anchor="middle", size=9, fill=MUTED)
    bar = (row_height - 4) / per
    for i, (label, values) in enumerate(rows):
        y0 = top + i * row_height + (gap if gap_after is not None and i >= gap_after else 0)
        _text(svg, left - 6, y0 + row_height / 2 + 4, shorten(label, label_cols), anchor="end", size=10)
        for j, v in enumerate(values):
            yb = y0 + 2 + j * bar
            _rect(svg, left, yb, pw * v / vmax, bar - 1, series[j][1])
            if j == 0:
                _text(svg, left + pw * v / vmax + 4, yb + bar - 3, value_fmt(v), size=9, fill=MUTED)
    if gap_after is not None:
        y = top + gap_after * row_height + gap / 2
        ET.SubElement(svg, "line", {"x1": "4", "y1": f"{y:.1f}", "x2": f"{width - 4:g}", "y2": f"{y:.1f}",
                                    "stroke": MUTED, "stroke-dasharray": "4 3"})
    _line(svg, left, top - 4, left, bottom, stroke=MUTED)
    if per > 1:
        _legend(svg, left, 12, series)
    return _str(svg)


def score_svg(ranking: Ranking, label: str, width: float = 720) -> str:
    """Scores as printed in the table (two decimals); axis ticks as whole numbers."""
    bars, cut = score_bars(ranking)
    rows = [(f"{r.rank}. {r.name}", [r.score]) for r in bars]
    return hbars_svg(rows, [(label, BLUE)], width=width, value_fmt=lambda v: f"{v:.2f}" if v % 1 else f"{v:.0f}",
                     gap_after=cut)


def categories_svg(cats: list[CategoryRow], labels: tuple[str, str], width: float = 720) -> str:
    return hbars_svg([(c.name, [c.volume, c.previous]) for c in cats], [(labels[0], BLUE), (labels[1], GREY)],
                     width=width, label_cols=14)


def sparkline_svg(values: list[float | None], width=84, height=18) -> str:
    """The score over the last periods: a line through the known ones, the last one marked."""
    svg = _svg(width, height)
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if not known:
        return _str(svg)
    lo, hi = min(v for _, v in known), max(v for _, v in known)
    span = hi - lo or 1.0
    n = max(len(values) - 1, 1)

    def xy(i, v):
        return 3 + (width - 6) * i / n, height - 3 - (height - 6) * ((v - lo) / span if hi > lo else 0.5)

    pts = " ".join("{:.1f},{:.1f}".format(*xy(i, v)) for i, v in known)
    ET.SubElement(svg, "polyline", {"points": pts, "fill": "none", "stroke": BLUE, "stroke-width": "1.4"})
    x, y = xy(*known[-1])
    ET.SubElement(svg, "circle", {"cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": "2", "fill": BLUE})
    return _str(svg)


def day_tick(d: date) -> str:
    return f"{d.month}/{d.day}"
