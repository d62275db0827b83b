"""The drill-down's plotly charts: plain cartesian/pie traces (no map tiles), dark, offline.

Figures are plain dicts (what dcc.Graph takes): building go.Figure objects validates every
property and costs more than the database query behind the view.
"""
from __future__ import annotations

from cockpit.ui.formatting import shorten, top_and_rest
from cockpit.ui.i18n import t

FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'
TEXT = "#c9d8e8"
GRID = "rgba(127, 209, 255, 0.10)"
BLUE, TEAL = "#2f8fdc", "#3fd0b0"
SOURCE_COLOURS = ("#2f8fdc", "#3fd0b0", "#f2c14e", "#f26b38", "#b48cf2", "#7fd1ff")
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}
TOP_GROUPS = 8  # bars before "others": more do not fit the panel's height legibly
LABEL_COLUMNS = 16  # a bar's label, in columns (a CJK character is two): the panel is narrow
OTHERS_COLOUR = "#4a5f75"
OTHERS_KEY = "*others"  # the "others" bar's position: not a category code


def _layout(**extra) -> dict:
    return {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT, "color": TEXT, "size": 13},
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "hoverlabel": {"font": {"family": FONT}, "bgcolor": "#0f2236", "bordercolor": "#2a5a85"},
        "legend": {"font": {"color": TEXT}},
        **extra,
    }


def empty(message: str = "") -> dict:
    layout = _layout(xaxis={"visible": False}, yaxis={"visible": False})
    if message:
        layout["annotations"] = [{"text": message, "showarrow": False, "xref": "paper", "yref": "paper",
                                  "x": 0.5, "y": 0.5, "font": {"size": 16, "color": "#6f8aa5"}}]
    return {"data": [], "layout": layout}


def trend(rows: list[dict], lang: str) -> dict:
    """Events received (bars) and closed (line) per local day."""
    days = [r["day"] for r in rows]
    return {
        "data": [
            {"type": "bar", "x": days, "y": [r["volume"] for r in rows], "name": t("received", lang),
             "marker": {"color": BLUE, "line": {"width": 0}}, "opacity": 0.85},
            {"type": "scatter", "x": days, "y": [r["closed"] for r in rows], "name": t("closed", lang),
             "mode": "lines+markers", "line": {"color": TEAL, "width": 2.5}, "marker": {"size": 5}},
        ],
        "layout": _layout(
            bargap=0.25, hovermode="x unified",
            legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12, "font": {"size": 12, "color": TEXT}},
            xaxis={"type": "date", "tickformat": "%m-%d", "showgrid": False, "linecolor": GRID, "zeroline": False,
                   "automargin": True},
            yaxis={"gridcolor": GRID, "zeroline": False, "rangemode": "tozero", "linecolor": GRID,
                   "automargin": True},
        ),
    }


def by_group(rows: list[dict], lang: str) -> dict:
    """Volume by category group (or item, for a city without groups): the largest TOP_GROUPS
    on top and one "others" bar summing the rest, so the bars still add up to the volume."""
    if not rows:
        return empty(t("no_data", lang))
    top, rest = top_and_rest(rows, TOP_GROUPS)
    bars = [{"key": r["code"], "name": r["name"], "volume": r["volume"], "colour": None} for r in top]
    if rest:
        bars.append({"key": OTHERS_KEY, "name": t("others_detail", lang).format(n=len(rest)),
                     "label": t("others", lang), "volume": sum(r["volume"] for r in rest), "colour": OTHERS_COLOUR})
    bars.reverse()  # plotly draws the first category at the bottom
    peak = max(b["volume"] for b in bars) or 1
    scale = [[0, "#1f4f7a"], [1, "#3fb6ff"]]
    return {
        "data": [{
            "type": "bar", "orientation": "h",
            "x": [b["volume"] for b in bars],
            # positions by code (names need not be unique); ticks show the name shortened
            "y": [b["key"] for b in bars],
            "customdata": [b["name"] for b in bars],
            "marker": {"color": [b["colour"] or _shade(b["volume"] / peak, scale) for b in bars]},
            "text": [f"{b['volume']:,}" for b in bars], "textposition": "outside", "cliponaxis": False,
            "textfont": {"color": TEXT, "size": 12}, "hovertemplate": "%{customdata}: %{x:,}<extra></extra>",
        }],
        "layout": _layout(bargap=0.3, showlegend=False, margin={"l": 8, "r": 48, "t": 4, "b": 4},
                          xaxis={"visible": False, "range": [0, peak * 1.02]},
                          yaxis={"showgrid": False, "ticksuffix": "  ", "automargin": True,
                                 "tickmode": "array", "tickvals": [b["key"] for b in bars],
                                 "ticktext": [shorten(b.get("label", b["name"]), LABEL_COLUMNS) for b in bars]}),
    }


def _shade(share: float, scale: list) -> str:
    """The colour at `share` (0..1) between the scale's two ends: a plain colour per bar, so the
    "others" bar can be grey beside them."""
    (_, lo), (_, hi) = scale
    a, b = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (lo, hi))
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(a, b))


def by_source(rows: list[dict], lang: str) -> dict:
    """Volume by source (渠道) as a donut."""
    total = sum(r["volume"] for r in rows)
    if not total:
        return empty(t("no_data", lang))
    # a share label only on slices wide enough to hold it; the legend names them all
    text = [f"{r['volume'] / total:.0%}" if r["volume"] / total >= 0.05 else "" for r in rows]
    return {
        "data": [{
            "type": "pie", "labels": [t(f"source_{r['source']}", lang) for r in rows],
            "values": [r["volume"] for r in rows], "hole": 0.58, "sort": False, "direction": "clockwise",
            "marker": {"colors": list(SOURCE_COLOURS[: len(rows)]), "line": {"color": "#0e1d2d", "width": 2}},
            "text": text, "textinfo": "text", "textposition": "inside", "insidetextorientation": "horizontal",
            "textfont": {"size": 12, "color": "#08121d"},
            "hovertemplate": "%{label}: %{value:,} (%{percent})<extra></extra>",
        }],
        "layout": _layout(showlegend=True, margin={"l": 4, "r": 4, "t": 4, "b": 4},
                          legend={"x": 1.0, "y": 0.5, "yanchor": "middle", "font": {"size": 12, "color": TEXT}}),
    }
