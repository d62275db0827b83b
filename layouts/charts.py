"""The drill-down's plotly charts: plain cartesian/pie traces (no map tiles), dark, offline.

Figures are plain dicts (what dcc.Graph takes): building go.Figure objects validates every
property and costs more than the database query behind the view.
"""
from __future__ import annotations

from cockpit.ui.i18n import t

FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'
TEXT = "#c9d8e8"
GRID = "rgba(127, 209, 255, 0.10)"
BLUE, TEAL = "#2f8fdc", "#3fd0b0"
SOURCE_COLOURS = ("#2f8fdc", "#3fd0b0", "#f2c14e", "#f26b38", "#b48cf2", "#7fd1ff")
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


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
    """Volume by category group, largest on top."""
    if not rows:
        return empty(t("no_data", lang))
    rows = list(reversed(rows))
    top = max(r["volume"] for r in rows) or 1
    return {
        "data": [{
            "type": "bar", "orientation": "h",
            "x": [r["volume"] for r in rows], "y": [r["name"] for r in rows],
            "marker": {"color": [r["volume"] for r in rows], "colorscale": [[0, "#1f4f7a"], [1, "#3fb6ff"]],
                       "cmin": 0, "cmax": top},
            "text": [f"{r['volume']:,}" for r in rows], "textposition": "outside", "cliponaxis": False,
            "textfont": {"color": TEXT, "size": 12}, "hovertemplate": "%{y}: %{x:,}<extra></extra>",
        }],
        "layout": _layout(bargap=0.3, showlegend=False, margin={"l": 8, "r": 48, "t": 4, "b": 4},
                          xaxis={"visible": False, "range": [0, top * 1.02]},
                          yaxis={"showgrid": False, "ticksuffix": "  ", "automargin": True}),
    }


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
