"""Hotspot warnings on "/" and "/wall". Thin: cockpit.hotspots.store reads and acknowledges,
layouts/warnings.py builds what shows.

The warnings are shared by every screen through the store. A screen reads them again when the
view moves, when the live token moves and on its own short poll (`warnings-poll`): an
acknowledgement writes no event, so the token alone would not carry it to another screen.
Nothing is sent when what the list shows did not change (`warnings-sig`).
"""
from __future__ import annotations

import hashlib
import json

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, callback_context, no_update
from dash.exceptions import PreventUpdate

from cockpit.hotspots import store as hotspots
from cockpit.maps.geo import outlines
from cockpit.metrics.kpi import unit_by_code
from cockpit.ui.i18n import LANGS, t

from cockpit.callbacks import errors
from cockpit.callbacks.context import acting_person, context
from cockpit.callbacks.live_parts import log_failure
from cockpit.callbacks.outputs import unchanged
from cockpit.layouts import warnings as layout
from cockpit.layouts.live_parts import lid

SHOWN, HIDDEN = {}, {"display": "none"}

PANEL = {
    "list": Output("warnings-list", "children"),
    "badge": Output("warnings-badge", "children"),
    "badge_class": Output("warnings-badge", "className"),
    "badge_new": Output("warnings-badge", "data-new"),
    "outlines": Output("warning-outlines", "data"),
    "spots": Output("warning-spots", "data"),
    "ack_state": Output("warning-ack-state", "children"),
    "ack_form": Output("warning-ack-form", "style"),
    "sig": Output("warnings-sig", "data"),
}

OPEN = {
    "open": Output("warning-open", "data"),
    "pick": Output("warning-pick", "style"),
    "detail": Output("warning-detail", "style"),
    "head": Output("warning-head", "children"),
    "explain": Output("warning-explain", "children"),
    "chart": Output("warning-chart", "figure"),
    "events": Output("warning-events", "children"),
    "ack_state": Output("warning-ack-state", "children", allow_duplicate=True),
    "ack_form": Output("warning-ack-form", "style", allow_duplicate=True),
    "ack_status": Output("ack-status", "children", allow_duplicate=True),
}

WALL = {"list": Output("wall-warnings", "children"), "outlines": Output("wall-warning-outlines", "data"),
        "spots": Output("wall-warning-spots", "data"), "sig": Output("wall-warnings-sig", "data")}


def _sig(warnings: list, *extra) -> str:
    shown = [(w.id, w.state, w.acknowledged_by, w.note, w.last_seen.isoformat(), w.observed) for w in warnings]
    return hashlib.sha1(json.dumps([shown, *extra], default=str).encode()).hexdigest()[:12]


def _lang(lang) -> str:
    return lang if lang in LANGS else "zh"


def _read(unit: str | None, limit: int) -> tuple[list, dict]:
    """The live warnings of a unit's subtree, newest first, and the outlines of their units."""
    with context().connect() as conn:
        found = hotspots.for_subtree(conn, unit_by_code(conn, unit).id, limit)
        return found, outlines(conn, layout.warned_units(found))


def register(app: Dash) -> None:
    @app.callback(output=PANEL,
                  inputs={"view": Input("view", "data"), "_token": Input(lid("cockpit", "live-token"), "data"),
                          "_poll": Input("warnings-poll", "n_intervals"), "_acked": Input("warnings-acked", "data")},
                  state={"opened": State("warning-open", "data"), "sig": State("warnings-sig", "data"),
                         "lang": State("lang", "data")},
                  prevent_initial_call=True)
    def refresh(view, _token, _poll, _acked, opened, sig, lang):
        """The panel, the badge and the map's warning layers for the shown unit's subtree."""
        if not view:
            raise PreventUpdate
        lang = _lang(lang)
        tz = context().timezone
        open_id = (opened or {}).get("id")
        try:
            found, shapes = _read(view.get("unit"), layout.PANEL_LIMIT)
            new_sig = _sig(found, view.get("unit"), open_id, lang)
            if new_sig == sig:
                raise PreventUpdate
            text, cls, n_new = layout.badge(found, lang)
            shown = next((w for w in found if w.id == open_id), None)
            return {"list": layout.items(found, open_id, tz, lang), "badge": text, "badge_class": cls,
                    "badge_new": n_new, "outlines": shapes, "spots": layout.spots(found, lang),
                    "ack_state": layout.ack_state(shown, tz, lang) if shown else no_update,
                    "ack_form": (SHOWN if shown else HIDDEN) if open_id else no_update, "sig": new_sig}
        except PreventUpdate:
            raise
        except Exception as exc:  # noqa: BLE001 — keep the last picture, as the live path does
            log_failure(exc)
            return unchanged(PANEL)

    @app.callback(output=OPEN, inputs={"clicks": Input(layout.item_id(ALL), "n_clicks")},
                  state={"lang": State("lang", "data")}, prevent_initial_call=True)
    def open_warning(clicks, lang):
        """A warning clicked: why (explain, mini chart, events), its state; the page then drills in."""
        trigger = callback_context.triggered_id
        if not trigger or not any(c for c in clicks or []):
            raise PreventUpdate
        fired = callback_context.triggered[0]["value"] if callback_context.triggered else None
        if not fired:  # the list was redrawn (its items' n_clicks start at 0): no click
            raise PreventUpdate
        lang = _lang(lang)
        ctx = context()
        tz = ctx.timezone
        try:
            with ctx.connect() as conn:
                w = hotspots.get(conn, int(trigger["index"]))
                points = hotspots.series(conn, w.id)
                behind = hotspots.events_of(conn, w.id, layout.EVENTS_LIMIT)
        except Exception as exc:  # noqa: BLE001 — one line under the list, the detail logged
            return {**unchanged(OPEN), "ack_status": errors.message(exc, lang, "warning")}
        d = w.detail or {}
        spot = w.kind == "recurrence" and d.get("lon") is not None
        return {
            "open": {"id": w.id, "unit": w.unit_code, "kind": w.kind,
                     "lon": d.get("lon") if spot else None, "lat": d.get("lat") if spot else None},
            "pick": HIDDEN, "detail": SHOWN,
            "head": layout.head(w, tz, lang), "explain": w.explain(lang),
            "chart": layout.series_figure(points, tz, lang), "events": layout.events(behind, tz, lang),
            "ack_state": layout.ack_state(w, tz, lang),
            "ack_form": SHOWN if w.state in hotspots.LIVE else HIDDEN, "ack_status": "",
        }

    # Opening a warning drills into its unit (the URL is the drill-down's state) and, for a
    # recurrence, zooms the map to the spot once the unit is drawn.
    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_warnings", function_name="drill"),
        Output("url", "search", allow_duplicate=True),
        Input("warning-open", "data"),
        State("url", "search"),
        State("ui-config", "data"),
        prevent_initial_call=True,
    )

    @app.callback(Output("ack-status", "children"), Output("warnings-acked", "data"),
                  Input("ack-button", "n_clicks"),
                  State("warning-open", "data"), State("ack-who", "value"), State("ack-note", "value"),
                  State("lang", "data"), prevent_initial_call=True)
    def acknowledge(clicks, opened, who, note, lang):
        """Acknowledge the opened warning through the writer role; every screen sees it on its next read."""
        if not clicks or not opened:
            raise PreventUpdate
        lang = _lang(lang)
        who = acting_person(who)
        if not who:
            return t("ack_who", lang) + " ?", no_update
        ctx = context()
        try:
            with ctx.connect() as conn:  # the warning must be in the person's scope ...
                hotspots.get(conn, int(opened["id"]))
            with ctx.connect_writer() as conn:  # ... before the writer (whole city) changes it
                w = hotspots.acknowledge(conn, int(opened["id"]), who, note)
                conn.commit()
        except Exception as exc:  # noqa: BLE001 — a clear line on screen (no writer, no longer in force)
            return errors.message(exc, lang, "acknowledge"), no_update
        ctx.audit("warning_acknowledge", unit_code=w.unit_code or None, warning=w.id, note=note or None)
        return t("ack_done", lang), {"id": w.id, "at": w.acknowledged_at.isoformat()}


def register_wall(app: Dash) -> None:
    @app.callback(output=WALL,
                  inputs={"_token": Input(lid("wall", "live-token"), "data"),
                          "_poll": Input("wall-warnings-poll", "n_intervals")},
                  state={"sig": State("wall-warnings-sig", "data"), "lang": State("lang", "data")})
    def wall_refresh(_token, _poll, sig, lang):
        """The wall's list and map layers: the whole city's live warnings, newest first."""
        lang = _lang(lang)
        try:
            found, shapes = _read(None, layout.PANEL_LIMIT)
            new_sig = _sig(found, lang)
            if new_sig == sig:
                raise PreventUpdate
            return {"list": layout.wall_list(found, context().timezone, lang), "outlines": shapes,
                    "spots": layout.spots(found, lang), "sig": new_sig}
        except PreventUpdate:
            raise
        except Exception as exc:  # noqa: BLE001 — keep the last picture
            log_failure(exc)
            return unchanged(WALL)
