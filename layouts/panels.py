"""The drill-down's panels, built from one cockpit.metrics.unit_view.unit_view() result.

Every number shown is a value of that dict, formatted with cockpit.ui.formatting, so the screen
equals `cockpit kpi` for the same unit and period.
"""
from __future__ import annotations

from html import escape

from dash import dcc, html

from cockpit.metrics.registry import FRACTIONS, RATES
from cockpit.metrics.unit_view import KPI_CHOICES
from cockpit.ui.formatting import count, duration, percent
from cockpit.ui.i18n import t

from cockpit.ui.colour_scale import Scale, legend, scale
from cockpit.ui.url_state import ViewState, href
from cockpit.layouts.readouts import count_change, rate_change, share


# -- the cards ----------------------------------------------------------------------------------

def card_values(view: dict) -> dict[str, str]:
    k = view["kpi"]
    return {
        "volume": count(k["volume"]),
        **{r: percent(k[r]) for r in RATES},
        "open": count(k["open"]),
        "overdue": count(k["overdue"]),
    }


def card_details(view: dict, lang: str) -> dict[str, str]:
    k = view["kpi"]
    out = {
        "volume": f"{t('closed', lang)} {count(k['closed'])}",
        **{r: f"{count(k[a])} / {count(k[b])}" for r, (a, b) in FRACTIONS.items()},
        "open": t("open_detail", lang),
        "overdue": f"{t('overdue_detail', lang)} {percent(share(k['overdue'], k['open']))}",
    }
    if k.get("closed_no_deadline"):  # they lower the rate: say why
        out["on_time_rate"] += " · " + t("closed_no_deadline", lang).format(n=count(k["closed_no_deadline"]))
    return out


def card_deltas(view: dict, lang: str) -> dict[str, html.Span | str]:
    """Change against the previous period of equal length (not for the backlog: it is 'now')."""
    now, before = view["kpi"], view["previous"]
    out: dict[str, html.Span | str] = {"open": "", "overdue": ""}
    changes = {"volume": count_change(now["volume"], before["volume"]),
               **{r: rate_change(now[r], before[r], lang) for r in RATES}}
    for key, ch in changes.items():
        good = {"up": "good", "down": "bad"}.get(ch.direction, "flat") if key in RATES else ch.direction
        out[key] = html.Span([html.Span(ch.text, className=f"delta delta-{good}"),
                              html.Span(f" {t('vs_previous', lang)}", className="delta-vs")])
    return out


# -- header ---------------------------------------------------------------------------------------

def breadcrumb(view: dict, state: ViewState) -> list:
    """City > district > ... > unit; every level but the last links to itself (data-code = code)."""
    items = []
    trail = view["breadcrumb"]
    for i, unit in enumerate(trail):
        last = i == len(trail) - 1
        target = None if i == 0 else unit["code"]
        inner = (html.Span(unit["name"], className="crumb-current") if last else
                 dcc.Link(unit["name"], href=href(state.at(target)), id=f"crumb-{unit['code']}"))
        if i:
            items.append(html.Span("›", className="crumb-sep"))
        items.append(html.Span(inner, className="crumb", **{"data-code": unit["code"], "data-level": unit["level"]}))
    return items


def up_href(view: dict, state: ViewState) -> str | None:
    trail = view["breadcrumb"]
    if len(trail) < 2:
        return None
    return href(state.at(None if len(trail) == 2 else trail[-2]["code"]))


def period_label(view: dict, kind: str, lang: str) -> str:
    p = view["period"]
    return f"{t('period_' + kind, lang)} · {p['from']} {t('to', lang)} {p['last']}"


# -- the map ---------------------------------------------------------------------------------------

def tooltip(name: str, row: dict, lang: str) -> str:
    lines = [f"<div class='tip-name'>{escape(name)}</div>"]
    for key, text in (("volume", count(row["volume"])), *((r, percent(row[r])) for r in RATES),
                      ("overdue", count(row.get("overdue")))):
        lines.append(f"<div class='tip-row'><span>{escape(t(key, lang))}</span><b>{text}</b></div>")
    return "".join(lines)


def map_hideout(view: dict, kpi: str, lang: str) -> tuple[dict, list]:
    """The children layer's hideout (values and classes for every KPI, tooltips) and the legends.

    The style function in assets/cockpit_map.js colours by hideout["kpi"]; switching KPI only
    swaps that key (a clientside callback), so neither geometry nor data goes back and forth.
    """
    kids = view["children"]
    if not kids:  # a grid: its own outline, its numbers in the tooltip
        unit = view["unit"]
        tip = tooltip(unit["name"], {**view["kpi"]}, lang)
        points = html.Div(className="legend-block legend-always", children=[
            html.Div(t("events_title", lang), className="legend-title"),
            html.Div(className="legend-item", children=[html.Span(className="dot"), html.Span(t("event_point", lang))]),
            html.Div(className="legend-item", children=[html.Span(className="dot dot-overdue"),
                                                        html.Span(t("overdue", lang))]),
        ])
        return {"leaf": True, "kpi": kpi, "tips": {unit["code"]: tip}, "by_kpi": {}}, [points]
    by_kpi, legends = {}, []
    for k in KPI_CHOICES:
        values = [c[k] for c in kids]
        sc: Scale = scale(values, k)
        by_kpi[k] = {"values": {c["code"]: c[k] for c in kids}, **sc.as_hideout()}
        known = [v for v in values if v is not None]
        entries = legend(sc, k, min(known) if known else None, max(known) if known else None)
        if any(v is None for v in values):
            entries.append((None, t("no_data", lang)))
        legends.append(html.Div(className=f"legend-block legend-{k}", children=[
            html.Div(t(k, lang), className="legend-title"),
            *[html.Div(className="legend-item", children=[
                html.Span(className="swatch" + ("" if colour else " swatch-none"),
                          style={"background": colour} if colour else {}),
                html.Span(text),
            ]) for colour, text in entries],
        ]))
    tips = {c["code"]: tooltip(c["name"], c, lang) for c in kids}
    return {"leaf": False, "kpi": kpi, "by_kpi": by_kpi, "tips": tips}, legends


# -- panels ---------------------------------------------------------------------------------------

def funnel(stages: list[dict], lang: str) -> html.Div:
    top = stages[0]["reached"] if stages else 0
    rows = []
    for s in stages:
        width = 100 * s["reached"] / top if top else 0
        rows.append(html.Div(className=f"funnel-row stage-{s['stage']}", children=[
            html.Div(t(f"status_{s['stage']}", lang), className="funnel-label"),
            html.Div(className="funnel-track",
                     children=html.Div(className="funnel-bar", style={"width": f"{width:.1f}%"})),
            html.Div(count(s["reached"]), className="funnel-count"),
            html.Div(
                "" if s["stage"] == "closed" else [
                    html.Span(t("median_time", lang) + " ", className="muted"),
                    html.Span(duration(s["median_minutes"], lang), className="funnel-median"),
                ],
                className="funnel-time",
            ),
        ]))
    return html.Div(rows)


LEVEL_COLOURS = {"community": "#3fd0b0", "street": "#2f8fdc", "district": "#f2c14e"}


def levels(counts: dict, lang: str) -> html.Div:
    total = sum(counts.values())
    bar, legend_rows = [], []
    for lv in ("community", "street", "district"):
        sh = share(counts.get(lv, 0), total)
        if sh:
            bar.append(html.Div(className="levels-seg", style={"width": f"{sh * 100:.2f}%",
                                                                "background": LEVEL_COLOURS[lv]}))
        legend_rows.append(html.Div(className="levels-row", children=[
            html.Span(className="swatch", style={"background": LEVEL_COLOURS[lv]}),
            html.Span(t(f"handled_{lv}", lang), className="levels-name"),
            html.Span(percent(sh), className="levels-share"),
            html.Span(count(counts.get(lv, 0)), className="levels-count muted"),
        ]))
    return html.Div([
        html.Div(bar or html.Div(className="levels-seg levels-empty", style={"width": "100%"}), className="levels-bar"),
        html.Div(legend_rows, className="levels-legend"),
        html.Div(t("levels_note", lang), className="panel-note"),
    ])


def ranking(view: dict, state: ViewState, lang: str) -> html.Table:
    """The children as a league table, volume beside the rates (a small unit's 100% is visible)."""
    head = html.Tr([html.Th(t("col_name", lang)), *[html.Th(t(k, lang)) for k in
                   ("volume", *RATES, "open", "overdue")]])
    body = []
    for c in sorted(view["children"], key=lambda c: (-c["volume"], c["code"])):
        body.append(html.Tr([
            # a long name ellipsizes (CSS); the full one is the hover title
            html.Td(dcc.Link(c["name"], href=href(state.at(c["code"])), title=c["name"]), className="name"),
            html.Td(count(c["volume"]), className="num"),
            *[html.Td(percent(c[r]), className="num" + (" missing" if c[r] is None else "")) for r in RATES],
            html.Td(count(c["open"]), className="num"),
            html.Td(count(c["overdue"]), className="num" + (" bad" if c["overdue"] else "")),
        ]))
    return html.Table([html.Thead(head), html.Tbody(body)], className="ranking-table")


def placed_note(view: dict, lang: str) -> str:
    """The events held by the unit itself (none of its children has them), when there are any:
    without it the ranking's volumes would seem to lose events against the card."""
    n = view["placed_here"]
    if not n:
        return ""
    total = view["kpi"]["volume"]
    return t("placed_here", lang).format(n=count(n), total=count(total), rest=count(total - n))


def view_state_marker(view: dict, kind: str) -> html.Span:
    """What is on screen, as data attributes (tests and scripts read these)."""
    p = view["period"]
    return html.Span(**{
        "data-unit": view["unit"]["code"], "data-level": view["unit"]["level"],
        "data-leaf": "1" if not view["children"] else "0", "data-period": kind,
        "data-from": p["from"], "data-to": p["to"], "data-last": p["last"],
        "data-group": view["filters"]["group"] or "", "data-source": view["filters"]["source"] or "",
        "data-placed-here": str(view["placed_here"]),
    })




def group_options(groups: list[dict], lang: str) -> list[dict]:
    """The category-group filter's options (the code beside the name in English)."""
    return [{"label": g["name"] if lang == "zh" else f"{g['name']} ({g['code']})", "value": g["code"]}
            for g in groups]
