"""The wall screen at "/wall": the command centre's all-day display, no one touching it.

Laid out on a 16:9 grid in rem, with the root font size a fixed share of the screen width
(assets/cockpit.css, `.wall`), so 1920x1080 and 3840x2160 show the same picture, without
scrollbars. `?kiosk=1` hides every control; `?rotate=N` sets the district rotation (seconds,
0 stops it); `?heat=1h|24h|7d|off` the heat window; `?lang=en` English.
"""
from __future__ import annotations

from dash import dcc, html

from cockpit.metrics.live_view import place_label
from cockpit.metrics.registry import CARD_KEYS, RATES
from cockpit.ui.formatting import count, duration, percent
from cockpit.ui.i18n import t

from cockpit.layouts import live_parts as live, unit_map, warnings

# The big numbers: (figure key, element id), in the registry's order
WALL_CARDS = tuple((k, "wall-" + k.replace("_", "-")) for k in CARD_KEYS)
PLACEHOLDER = "…"


def _card(key: str, element_id: str, lang: str) -> html.Div:
    return html.Div(className=f"wall-card wall-card-{key}", children=[
        html.Div(t(key, lang), className="wall-card-label"),
        html.Div(PLACEHOLDER, id=element_id, className="wall-card-value"),
    ])


def _panel(title: str, body, element_id: str, className: str = "") -> html.Div:
    return html.Div(className=f"wall-panel {className}".strip(), children=[
        html.H3(title, className="wall-panel-title"),
        html.Div(body, id=element_id, className="wall-panel-body"),
    ])


def layout(lang: str, kiosk: bool, rotate: int, heat_window: str, timezone, tiles=None) -> html.Div:
    other = "en" if lang == "zh" else "zh"
    # kiosk: the controls stay in the page (the callbacks read them) but are not shown
    controls = [
        html.Div(className="wall-controls", hidden=kiosk, children=[
            live.heat_controls("wall", lang, heat_window),
            html.A(t("cockpit_link", lang), href=f"/?lang={lang}", className="wall-link"),
            html.A(t("language", lang), id="wall-lang", href=f"?lang={other}", className="lang-toggle"),
        ]),
    ]
    return html.Div(
        className=f"wall lang-{lang}" + (" kiosk" if kiosk else ""),
        children=[
            dcc.Store(id="lang", data=lang),
            dcc.Store(id="wall-config", data={"rotate": rotate, "kiosk": kiosk, "tz": timezone.key}),
            dcc.Store(id="wall-focus"),  # the unit in focus: None = the city, else a district code
            dcc.Store(id="wall-districts", data=[]),  # codes to rotate through
            dcc.Store(id="wall-sigs", data={}),  # what each section last showed (send only changes)
            dcc.Interval(id="wall-rotate", interval=max(rotate, 1) * 1000, disabled=rotate <= 0),
            *live.stores("wall", "wall-map"),
            dcc.Interval(id="wall-clock-tick", interval=1000),  # the clock only: never asks the server
            dcc.Interval(id="wall-warnings-poll", interval=warnings.POLL_MS),
            dcc.Store(id="wall-warnings-sig"),
            html.Header(className="wall-header", children=[
                html.Div(className="wall-brand", children=[
                    html.Span(className="brand-mark"),
                    html.H1(t("wall_title", lang)),
                ]),
                html.Div(className="wall-today", children=[
                    html.Span(t("city_today", lang), className="wall-today-label"),
                    html.Span("", id="wall-city-name", className="wall-city-name"),
                ]),
                *controls,
                html.Div(className="wall-right", children=[
                    live.status_badge("wall", lang),
                    html.Div("", id="wall-clock", className="wall-clock"),
                ]),
            ]),
            html.Section(className="wall-kpis", children=[_card(k, i, lang) for k, i in WALL_CARDS]),
            html.Section(className="wall-main", children=[
                _panel(t("ticker", lang), live.ticker("wall"), "wall-ticker-panel", "wall-ticker"),
                html.Div(className="wall-map", children=[
                    unit_map.unit_map("wall-map", tiles, [unit_map.units_layer("wall-units", "cockpitMap.wallStyle"),
                                                          *warnings.map_layers("wall-warning")],
                                      zoomControl=False, scrollWheelZoom=False),
                    html.Div(className="wall-focus", children=[
                        html.Div(t("focus", lang), className="wall-focus-label"),
                        html.Div(PLACEHOLDER, id="wall-focus-name", className="wall-focus-name"),
                        html.Div("", id="wall-focus-numbers", className="wall-focus-numbers"),
                    ]),
                ]),
                html.Div(className="wall-side", children=[
                    _panel(t("overdue_list", lang), [], "wall-overdue-list", "wall-overdue"),
                    _panel(t("busiest", lang), [], "wall-busiest", "wall-busy"),
                    _panel(t("warnings_title", lang), [], "wall-warnings", "wall-warnings-panel"),
                ]),
            ]),
            html.Section(className="wall-districts", children=[
                html.H3(t("districts_today", lang), className="wall-strip-title"),
                html.Div(id="wall-district-strip", className="wall-strip"),
            ]),
        ],
    )


# -- the sections callbacks/wall.py fills ------------------------------------------------------

STRIP = ("volume", *RATES, "overdue")  # a unit's figures on one line: all but the open backlog


def numbers(n: dict) -> dict[str, str]:
    return {k: percent(n[k]) if k in RATES else count(n[k]) for k, _ in WALL_CARDS}


def focus_numbers(n: dict, lang: str) -> list:
    shown = numbers(n)
    return [html.Span([html.B(shown[k]), f" {t(k, lang)}"], className=f"focus-{k}") for k in STRIP]


STRIP_MAX_COLUMNS = 8  # past this a card is too narrow for a name and three five-digit figures: add a row


def strip_shape(n: int) -> dict:
    """The strip's grid for n districts: one row while they fit, then as few rows as keep a card
    wide enough, filled evenly (22 -> rows of 8, 8, 6; 12 -> 6 + 6, not 8 + 4). Cards then show
    fewer figures as they narrow (assets/cockpit_wall.css, by the card's own width); the focus
    panel always shows all of them for the district in focus."""
    rows = max(1, -(-n // STRIP_MAX_COLUMNS))
    cols = max(1, -(-n // rows))
    return {"className": f"wall-strip rows-{min(rows, 3)}",
            "style": {"gridTemplateColumns": f"repeat({cols}, minmax(0, 1fr))"}}


def district_strip(districts: list[dict], focus: str | None, lang: str) -> list:
    out = []
    for d in districts:
        shown = numbers(d)
        out.append(html.Div(
            className="strip-item" + (" focused" if d["code"] == focus else ""), **{"data-code": d["code"]},
            children=[
                # a long name ellipsizes (CSS); the full one is the hover title
                html.Div(d["name"], className="strip-name", title=d["name"]),
                html.Div(className="strip-numbers", children=[
                    html.Div([html.B(shown[k]), html.Span(t(k, lang))], className=f"strip-{k}") for k in STRIP
                ]),
            ]))
    return out


def overdue_list(rows: list[dict], now, lang: str) -> list:
    if not rows:
        return [html.Div(t("nothing_overdue", lang), className="muted")]
    return [html.Div(className="list-row", **{"data-event": str(r["id"])}, children=[
        # names and places ellipsize (CSS): the full text is the hover title
        html.Span(r["category"], className="list-main", title=r["category"]),
        html.Span(place_label(r["place"]), className="list-place", title=place_label(r["place"])),
        html.Span(t("overdue_by", lang).format(d=duration((now - r["deadline_at"]).total_seconds() / 60, lang)),
                  className="list-figure late"),
    ]) for r in rows]


def busiest_list(rows: list[dict], lang: str) -> list:
    if not rows:
        return [html.Div(t("nothing_recent", lang), className="muted")]
    top = max(r["n"] for r in rows)
    return [html.Div(className="list-row", **{"data-code": r["code"]}, children=[
        html.Span(r["name"], className="list-main", title=r["name"]),
        html.Span(place_label(r["place"], with_unit=False), className="list-place",
                  title=place_label(r["place"], with_unit=False)),
        html.Span(className="list-bar", children=html.Span(style={"width": f"{100 * r['n'] / top:.0f}%"})),
        html.Span(t("n_events", lang).format(n=r["n"]), className="list-figure"),
    ]) for r in rows]
