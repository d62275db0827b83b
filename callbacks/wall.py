"""What the wall page ("/wall") does: refresh on every change token, rotate the focus, keep the
last picture when the store goes away. Thin: per change token and scope, one
cockpit.metrics.live_view.wall_city and one wall_focus per focus, shared by every screen asking
(cockpit.metrics.viewcache); no SQL
and no HTML here (layouts/wall.py builds the sections).

Each section (big numbers, focus, districts, lists) is sent only when what it shows changed:
the page keeps a short signature of each in `wall-sigs`; the ticker travels as a Patch.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from dash import ClientsideFunction, Dash, Input, Output, State, no_update

from cockpit.metrics import viewcache, warmup
from cockpit.metrics.live_view import wall_city, wall_focus
from cockpit.metrics.viewcache import view_key
from cockpit.ui import url_state
from cockpit.ui.i18n import LANGS

from cockpit.callbacks import shared_answers
from cockpit.callbacks.context import context
from cockpit.callbacks.outputs import unchanged
from cockpit.callbacks.live_parts import heat_points, log_failure, ticker_patch
from cockpit.callbacks.routes import geo_url
from cockpit.layouts import wall as layout
from cockpit.layouts.live_parts import DEFAULT_HEAT, HEAT_CHOICES, lid
from cockpit.layouts.wall import WALL_CARDS

PATH = "/wall"
SECTIONS = ("cards", "focus", "strip", "overdue", "busiest")
MAX_ROTATE = url_state.MAX_ROTATE


def options(query: dict, default_rotate: int) -> dict:
    """?kiosk=1, ?rotate=<seconds> (else COCKPIT_WALL_ROTATE), ?heat=1h|24h|7d|off."""
    rotate = query.get("rotate", "")
    heat = query.get("heat")
    return {
        "kiosk": query.get("kiosk", "0") not in ("0", "", "false", "no"),
        "rotate": url_state.rotation(rotate, default_rotate),  # bounded both ways
        "heat_window": heat if heat in HEAT_CHOICES else DEFAULT_HEAT,
    }


def page(**query) -> object:
    ctx = context()
    lang = query.get("lang")
    return layout.layout(lang if lang in LANGS else ctx.settings.lang, **options(query, ctx.settings.wall_rotate),
                         timezone=ctx.timezone, tiles=ctx.tiles)


def _sig(value) -> str:
    return hashlib.sha1(json.dumps(value, default=str, sort_keys=True).encode()).hexdigest()[:12]


REFRESH = {
    "cards": {k: Output(i, "children") for k, i in WALL_CARDS},
    "city": Output("wall-city-name", "children"),
    "focus_name": Output("wall-focus-name", "children"),
    "focus": Output("wall-focus-numbers", "children"),
    "strip": Output("wall-district-strip", "children"),
    "strip_class": Output("wall-district-strip", "className"),
    "strip_style": Output("wall-district-strip", "style"),
    "overdue": Output("wall-overdue-list", "children"),
    "busiest": Output("wall-busiest", "children"),
    "ticker": Output(lid("wall", "ticker"), "children"),
    "ticker_ids": Output(lid("wall", "ticker-ids"), "data"),
    "heat_add": Output(lid("wall", "heat-add"), "data"),
    "districts": Output("wall-districts", "data"),
    "sigs": Output("wall-sigs", "data"),
}


def views(ctx, focus: str | None) -> dict:
    """What a wall of `focus` shows, as the context's person may see it, at the store's current
    token: the part every wall of the scope shows is computed once, whatever each one focuses on."""
    tz = ctx.timezone
    token = ctx.feed.version

    def ask(kind: str, *args, question):
        def compute():
            with ctx.connect() as conn:
                return question(conn)
        key = view_key(token, ctx.describe(), ctx.person.scope_key, kind, str(tz), *args)
        return viewcache.shared(ctx.settings.state_dir).get(key, compute)

    city = ask("wall-city", question=lambda conn: wall_city(conn, tz))
    return {**city, **ask("wall-focus", focus, question=lambda conn: wall_focus(conn, focus, tz, city=city))}


def register(app: Dash) -> None:
    prefix = app.config.requests_pathname_prefix
    shared_answers.share(REFRESH, shared_answers.whole_store)

    @app.callback(output=REFRESH,
                  inputs={"_token": Input(lid("wall", "live-token"), "data"), "focus": Input("wall-focus", "data")},
                  state={"known": State(lid("wall", "ticker-ids"), "data"), "sigs": State("wall-sigs", "data"),
                         "lang": State("lang", "data")},
                  prevent_initial_call=True)
    def refresh(_token, focus, known, sigs, lang):
        ctx = context()
        tz = ctx.timezone
        try:
            view = views(ctx, focus)
        except Exception as exc:  # noqa: BLE001 — keep the last picture; the badge says since when
            log_failure(exc)
            return unchanged(REFRESH)
        # made again for each new token before the walls are told of it (cockpit.metrics.warmup)
        warmup.remember((ctx.describe(), ctx.person.scope_key, "wall", str(tz), focus), lambda: views(ctx, focus))
        now = datetime.now(timezone.utc)
        sections = {
            "cards": layout.numbers(view["city"]),
            "focus": (view["focus"]["name"], layout.numbers(view["focus"])),
            "strip": ([layout.numbers(d) for d in view["districts"]], focus),
            "overdue": [(r["id"], r["deadline_at"]) for r in view["overdue"]],
            "busiest": [(r["code"], r["n"]) for r in view["busiest"]],
        }
        new_sigs = {k: _sig(v) for k, v in sections.items()}
        changed = {k: new_sigs[k] != (sigs or {}).get(k) for k in SECTIONS}
        shape = layout.strip_shape(len(view["districts"]))
        ticker, shown, fresh = ticker_patch(view["latest"], known, None, tz, lang)
        cards = sections["cards"]
        return {
            "cards": {k: cards[k] if changed["cards"] else no_update for k, _ in WALL_CARDS},
            "city": view["city"]["name"],
            "focus_name": view["focus"]["name"] if changed["focus"] else no_update,
            "focus": layout.focus_numbers(view["focus"], lang) if changed["focus"] else no_update,
            "strip": layout.district_strip(view["districts"], focus, lang) if changed["strip"] else no_update,
            "strip_class": shape["className"] if changed["strip"] else no_update,
            "strip_style": shape["style"] if changed["strip"] else no_update,
            "overdue": layout.overdue_list(view["overdue"], now, lang) if changed["overdue"] else no_update,
            "busiest": layout.busiest_list(view["busiest"], lang) if changed["busiest"] else no_update,
            "ticker": ticker,
            "ticker_ids": shown,
            "heat_add": heat_points(fresh) if known else no_update,
            "districts": [d["code"] for d in view["districts"]],
            "sigs": new_sigs,
        }

    # The focus moves city -> each district -> city ..., every `rotate` seconds.
    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_wall", function_name="rotate"),
        Output("wall-focus", "data"),
        Input("wall-rotate", "n_intervals"),
        State("wall-focus", "data"),
        State("wall-districts", "data"),
        prevent_initial_call=True,
    )

    @app.callback(Output("wall-units", "url"), Output("wall-units", "hideout"), Output(lid("wall", "heat-unit"), "data"),
                  Input("wall-focus", "data"))
    def focus_map(focus):
        return geo_url(prefix, focus), {"focus": focus, "tips": {}}, focus

    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_wall", function_name="clock"),
        Output("wall-clock", "children"),
        Input("wall-clock-tick", "n_intervals"),
        State("wall-config", "data"),
    )
