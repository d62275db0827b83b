"""A grid's events: the AG Grid table, the points on the map and one event's history.

Built from cockpit.metrics.unit_view.grid_events / event_history rows. Reporters' names and phones
arrive masked (张*, 138****5678: the store masks them, migration 0011); the one place a contact is
ever shown in clear is the reveal answer under one event's history, for a duty officer or an
administrator who gave a reason (callbacks/drilldown.py `reveal`), and it is on the record.
"""
from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from dash import dcc, html

from cockpit.ui.i18n import t

TIME_FORMAT = "%Y-%m-%d %H:%M"


def local(ts: datetime | None, tz: ZoneInfo) -> str:
    return "" if ts is None else ts.astimezone(tz).strftime(TIME_FORMAT)


def column_defs(lang: str) -> list[dict]:
    return [
        {"field": "reported", "headerName": t("col_reported", lang), "sort": "desc", "minWidth": 140},
        {"field": "category", "headerName": t("col_category", lang), "minWidth": 120},
        {"field": "group", "headerName": t("col_group", lang)},
        {"field": "source", "headerName": t("col_source", lang)},
        {"field": "status", "headerName": t("col_status", lang), "maxWidth": 100},
        {"field": "deadline", "headerName": t("col_deadline", lang), "minWidth": 140},
        {"field": "handler", "headerName": t("col_handler", lang), "minWidth": 120},
        {"field": "rating", "headerName": t("col_rating", lang), "maxWidth": 90, "filter": "agNumberColumnFilter",
         "valueFormatter": {"function": "params.value == null ? '' : params.value + ' ★'"}},
        {"field": "overdue", "headerName": t("col_overdue", lang), "maxWidth": 90,
         "cellClass": "cell-overdue"},
        {"field": "reporter", "headerName": t("col_reporter", lang), "maxWidth": 100},
        {"field": "phone", "headerName": t("col_phone", lang), "minWidth": 120},
    ]


def rows(events: list[dict], tz: ZoneInfo, lang: str) -> list[dict]:
    return [
        {
            "id": str(e["id"]),  # AG Grid row ids are strings
            "reported": local(e["reported_at"], tz),
            "category": e["category"],
            "group": e["category_group"] or "",
            "source": t(f"source_{e['source']}", lang),
            "status": t(f"status_{e['status']}", lang),
            "deadline": local(e["deadline_at"], tz),
            "handler": e["handler"] or "",
            "rating": e["rating"],
            "overdue": t("overdue", lang) if e["overdue"] else "",
            "overdue_flag": bool(e["overdue"]),
            "reporter": e.get("reporter") or "",
            "phone": e.get("phone") or "",
        }
        for e in events
    ]


def points(events: list[dict], tz: ZoneInfo, lang: str) -> dict:
    """The events as GeoJSON points (overdue last, so they are drawn on top)."""
    ordered = sorted((e for e in events if e["lon"] is not None and e["lat"] is not None),
                     key=lambda e: bool(e["overdue"]))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(e["lon"], 6), round(e["lat"], 6)]},
                "properties": {
                    "id": e["id"],
                    "overdue": bool(e["overdue"]),
                    "tooltip": (f"<b>{escape(e['category'])}</b> · {escape(t('status_' + e['status'], lang))}"
                                f"<br>{local(e['reported_at'], tz)}"
                                + (f" · <span class='tip-bad'>{escape(t('overdue', lang))}</span>"
                                   if e["overdue"] else "")),
                },
            }
            for e in ordered
        ],
    }


def history(event_id: int, transitions: list[dict], tz: ZoneInfo, lang: str, contact_part=None) -> html.Div:
    """One event's status changes as a vertical timeline (under its reporter's contact)."""
    if not transitions:
        return html.Div([contact_part, html.Div(t("no_data", lang), className="muted")])
    items = []
    for tr in transitions:
        where = " · ".join(x for x in (tr.get("department"), tr.get("unit")) if x)
        step = (f"{t('status_' + tr['from_status'], lang)} → " if tr["from_status"] else "") + \
            t(f"status_{tr['to_status']}", lang)
        items.append(html.Li(className=f"step step-{tr['to_status']}", children=[
            html.Div(local(tr["at"], tz), className="step-time"),
            html.Div(step, className="step-what"),
            html.Div(where, className="step-where") if where else None,
            html.Div(tr["note"], className="step-note") if tr.get("note") else None,
        ]))
    return html.Div([
        html.Div(f"{t('event_id', lang)} #{event_id}", className="history-head"),
        contact_part,
        html.Ol(items, className="timeline"),
    ])


def contact(event_id: int, masked: tuple[str | None, str | None], lang: str, may_reveal: bool) -> html.Div:
    """One event's reporter, masked, and for those who may, the way to reveal it (a reason is
    required; the store records the reveal)."""
    name, phone = masked
    shown = " · ".join(x for x in (name, phone) if x) or "—"
    children = [html.Div([html.Span(t("col_reporter", lang) + ("：" if lang == "zh" else ": "), className="muted"),
                          html.Span(shown, id="contact-masked")], className="contact-line")]
    if may_reveal and (name or phone):
        children.append(html.Div(className="reveal-form", children=[
            dcc.Store(id="reveal-event", data=event_id),
            dcc.Input(id="reveal-reason", type="text", placeholder=t("reveal_reason", lang), debounce=False,
                      maxLength=200, className="reveal-reason"),
            html.Button(t("reveal_button", lang), id="reveal-button", n_clicks=0, className="reveal-button"),
            html.Div("", id="reveal-result", className="reveal-result"),
        ]))
    return html.Div(children, className="event-contact", id="event-contact")


def revealed(name: str | None, phone: str | None, lang: str) -> str:
    return t("reveal_done", lang).format(name=name or "—", phone=phone or "—")


def history_trouble(message: str) -> html.Div:
    """What the history panel shows when the history could not be read."""
    return html.Div(message, className="store-status")
