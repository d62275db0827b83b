"""The drill-down's plotly charts: plain cartesian/pie traces (no map tiles), dark, offline."""
from __future__ import annotations

import plotly.graph_objects as go

from cockpit.i18n import t

FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'
TEXT = "#c9d8e8"
GRID = "rgba(127, 209, 255, 0.10)"
BLUE, TEAL, AMBER = "#2f8fdc", "#3fd0b0", "#f2c14e"
SOURCE_COLOURS = ("#2f8fdc", "#3fd0b0", "#f2c14e", "#f26b38", "#b48cf2", "#7fd1ff")
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


def _base(fig: go.Figure, **layout) -> go.Figure:
    fig.update_layout(**{
        "template": "plotly_dark",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT, "color": TEXT, "size": 13},
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "hoverlabel": {"font": {"family": FONT}},
        **layout,
    })
    return fig


def empty(message: str = "") -> go.Figure:
    fig = _base(go.Figure())
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    if message:
        fig.add_annotation(text=message, showarrow=False, font={"size": 16, "color": "#6f8aa5"},
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def trend(rows: list[dict], lang: str) -> go.Figure:
    """Events received (bars) and closed (line) per local day."""
    days = [r["day"] for r in rows]
    fig = go.Figure([
        go.Bar(x=days, y=[r["volume"] for r in rows], name=t("received", lang), marker_color=BLUE,
               marker_line_width=0, opacity=0.85),
        go.Scatter(x=days, y=[r["closed"] for r in rows], name=t("closed", lang), mode="lines+markers",
                   line={"color": TEAL, "width": 2.5}, marker={"size": 5}),
    ])
    _base(fig, bargap=0.25, hovermode="x unified",
          legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12, "font": {"size": 12}})
    fig.update_xaxes(type="date", tickformat="%m-%d", gridcolor=GRID, showgrid=False, linecolor=GRID)
    fig.update_yaxes(gridcolor=GRID, zeroline=False, rangemode="tozero")
    return fig


def by_group(rows: list[dict], lang: str) -> go.Figure:
    """Volume by category group, largest on top."""
    if not rows:
        return empty(t("no_data", lang))
    rows = list(reversed(rows))
    fig = go.Figure(go.Bar(
        x=[r["volume"] for r in rows], y=[r["name"] for r in rows], orientation="h",
        marker={"color": [r["volume"] for r in rows], "colorscale": [[0, "#1f4f7a"], [1, "#3fb6ff"]]},
        text=[f"{r['volume']:,}" for r in rows], textposition="outside", cliponaxis=False,
        textfont={"color": "#c9d8e8", "size": 12}, hovertemplate="%{y}: %{x:,}<extra></extra>",
    ))
    _base(fig, bargap=0.3, showlegend=False, margin={"l": 8, "r": 48, "t": 4, "b": 4},
          uniformtext={"minsize": 11, "mode": "show"})
    fig.update_xaxes(visible=False, range=[0, max(r["volume"] for r in rows) * 1.02 or 1])
    fig.update_yaxes(showgrid=False, ticksuffix="  ")
    return fig


def by_source(rows: list[dict], lang: str) -> go.Figure:
    """Volume by channel as a donut."""
    if not rows or not sum(r["volume"] for r in rows):
        return empty(t("no_data", lang))
    labels = [t(f"source_{r['source']}", lang) for r in rows]
    total = sum(r["volume"] for r in rows)
    # a share label only on slices wide enough to hold it; the legend names them all
    text = [f"{r['volume'] / total:.0%}" if r["volume"] / total >= 0.05 else "" for r in rows]
    fig = go.Figure(go.Pie(
        labels=labels, values=[r["volume"] for r in rows], hole=0.58, sort=False, direction="clockwise",
        marker={"colors": SOURCE_COLOURS[: len(rows)], "line": {"color": "#0e1d2d", "width": 2}},
        text=text, textinfo="text", textposition="inside", insidetextorientation="horizontal",
        textfont={"size": 12, "color": "#08121d"},
        hovertemplate="%{label}: %{value:,} (%{percent})<extra></extra>",
    ))
    _base(fig, showlegend=True, legend={"x": 1.0, "y": 0.5, "yanchor": "middle", "font": {"size": 12}},
          margin={"l": 4, "r": 4, "t": 4, "b": 4})
    return fig
