"""The live path both screens share: the change poll, the outage badge, heat and replay.

`tick` runs every second in every open screen and answers from memory (the process's
ChangeFeed): no query unless the store changed, and a new token only if it names another store
state than the page's (cockpit.metrics.changes.is_news), whichever worker answers. The pages'
own refresh callbacks listen to `live-token` and send only what changed.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from dash import ClientsideFunction, Dash, Input, Output, Patch, State, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.exc import SQLAlchemyError

from cockpit.errors import CockpitError
from cockpit.store.database import first_line
from cockpit.metrics.changes import is_news
from cockpit.metrics.heat import WINDOWS, heat
from cockpit.ui.i18n import t
from cockpit.metrics.kpi import unit_by_code
from cockpit.metrics.live_view import TICKER_SIZE

from cockpit.callbacks import errors
from cockpit.callbacks.shared_answers import not_shared
from cockpit.callbacks.context import context
from cockpit.layouts import live_parts as live_layout
from cockpit.layouts.live_parts import lid

log = logging.getLogger(__name__)
PAUSED, LIVE = "live-status paused", "live-status"


def paused_badge(since: datetime, tz, lang: str) -> tuple[str, str]:
    local = since.astimezone(tz)
    return t("paused_since", lang).format(t=local.strftime("%H:%M")), PAUSED


def log_failure(exc: Exception) -> None:
    """A refresh could not read the store (or was asked for a unit it may not see): the screen
    keeps its last picture."""
    not_shared()
    errors.note_denial(exc)
    if not isinstance(exc, (CockpitError, SQLAlchemyError)):
        log.exception("live refresh failed", exc_info=exc)
        return
    log.warning("live refresh failed: %s", first_line(exc) if isinstance(exc, SQLAlchemyError) else exc)


def ticker_patch(events: list[dict], known: dict | None, scope: str | None, tz, lang: str, today=None):
    """(children or Patch, what the ticker now shows, the new events): new items on top, oldest dropped.

    `known` is what the page's ticker shows ({"scope": unit code, "day": ISO date, "ids": [...]});
    another scope (the page moved to another unit), another day (past midnight, the items shown
    as today's clock times must gain their date) or nothing yet means a whole new list.
    """
    today = today or datetime.now(tz).date()
    day = today.isoformat()
    shows = {"scope": scope, "day": day, "ids": [e["id"] for e in events]}
    if not known or known.get("scope") != scope or known.get("day") != day or not known.get("ids"):
        return [live_layout.ticker_item(e, tz, lang, today) for e in events], shows, []
    ids = known["ids"]
    already = set(ids)
    fresh = [e for e in events if e["id"] not in already]
    if not fresh:
        return no_update, known, []
    patch = Patch()
    for e in reversed(fresh):  # oldest first, so the newest ends on top
        patch.prepend(live_layout.ticker_item(e, tz, lang, today))
    shown = [e["id"] for e in fresh] + ids
    for _ in range(max(0, len(shown) - TICKER_SIZE)):
        del patch[-1]
    return patch, {"scope": scope, "day": day, "ids": shown[:TICKER_SIZE]}, fresh


def heat_points(fresh: list[dict]) -> list[list[float]] | object:
    pts = [[e["lat"], e["lon"], 1] for e in fresh if e.get("lat") is not None]
    return pts or no_update


def replay_end(step: int, now: datetime) -> datetime:
    """Replay step -k (k hours back): the hour that ended k hours before the current hour began."""
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=step + 1)


def register(app: Dash, page: str) -> None:
    """The shared live callbacks for one page's elements (layouts.live.lid)."""

    def i(name: str) -> str:
        return lid(page, name)

    # The change stream: opened on load and again for each unit the page shows (assets/cockpit_push.js).
    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_push", function_name="connect"),
        Output(i("live-pushed"), "data"),
        Input(i("live-push"), "data"),
        *([Input("view", "data")] if page == "cockpit" else []),
        State(i("live-token"), "data"),
    )

    @app.callback(
        Output(i("live-token"), "data"),
        Output(i("live-status"), "children"),
        Output(i("live-status"), "className"),
        Input(i("live-tick"), "n_intervals"),
        State(i("live-token"), "data"),
        State(i("live-status"), "className"),
        State("lang", "data"),
    )
    def tick(_n, token, badge_class, lang):
        try:
            f = context().feed
        except CockpitError:
            raise PreventUpdate
        if token is None:
            f.wait_ready(1)  # a page's first poll may meet a worker whose feed is starting
        if f.down_since is not None:
            if badge_class == PAUSED:
                raise PreventUpdate  # already showing since when
            return no_update, *paused_badge(f.down_since, context().timezone, lang)
        ours = f.token
        if ours is None:  # not read the store yet: no news, never a null token
            raise PreventUpdate
        if not is_news(ours, token):
            if badge_class != PAUSED:
                raise PreventUpdate
            return no_update, t("live", lang), LIVE  # back from an outage, nothing changed meanwhile
        return ours, t("live", lang), LIVE

    @app.callback(
        Output(i("heat-full"), "data"),
        Output(i("replay-label"), "children"),
        Input(i("heat-window"), "value"),
        Input(i("replay-slider"), "value"),
        Input(i("heat-unit"), "data"),
        Input(i("heat-refresh"), "n_intervals"),
        State("lang", "data"),
    )
    def full_heat(window, step, unit, _n, lang):
        return _heat(window, step, unit, lang)

    app.clientside_callback(
        ClientsideFunction(namespace="cockpit_heat", function_name="render"),
        Output(i("heat-drawn"), "children"),
        Input(i("heat-full"), "data"),
        State(i("heat-map"), "data"),
    )
    # new events join the heat at once, unless the heat is off or replaying the past
    app.clientside_callback(
        """function (points, mapId, window_, step) {
            if (!points || window_ === "off" || step) { return window.dash_clientside.no_update; }
            return window.dash_clientside.cockpit_heat.append(points, mapId);
        }""",
        Output(i("heat-added"), "children"),
        Input(i("heat-add"), "data"),
        State(i("heat-map"), "data"),
        State(i("heat-window"), "value"),
        State(i("replay-slider"), "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """function (clicks, disabled) { return clicks ? !disabled : disabled; }""",
        Output(i("replay-timer"), "disabled"),
        Input(i("replay-play"), "n_clicks"),
        State(i("replay-timer"), "disabled"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """function (n, step, disabled) {
            if (disabled) { return [window.dash_clientside.no_update, disabled]; }
            if (step >= 0) { return [-24, false]; }         /* start from 24 h ago */
            var next = step + 1;
            return [next, next >= 0];                        /* back to live: stop */
        }""",
        Output(i("replay-slider"), "value"),
        Output(i("replay-timer"), "disabled", allow_duplicate=True),
        Input(i("replay-timer"), "n_intervals"),
        State(i("replay-slider"), "value"),
        State(i("replay-timer"), "disabled"),
        prevent_initial_call=True,
    )


def _heat(window, step, unit, lang):
    if window in (None, "off"):
        return None, ""
    now = datetime.now(timezone.utc)
    if step:  # replay: one hour at a time
        end = replay_end(step, now)
        span, label = timedelta(hours=1), t("replay_hour", lang).format(
            t=(end - timedelta(hours=1)).astimezone(context().timezone).strftime("%m-%d %H:00"))
    else:
        end, span, label = now, WINDOWS.get(window, WINDOWS["24h"]), t("replay_live", lang)
    try:
        ctx = context()
        with ctx.connect() as conn:
            # Someone who sees one subtree gets the heat of raw events (exact under the events
            # policy): the rollup's cells cover a whole bounding box, a neighbour's edge too.
            payload = heat(conn, unit_by_code(conn, unit).id, span, end, plain=not ctx.person.city_wide)
    except (CockpitError, SQLAlchemyError) as exc:
        errors.note_denial(exc)
        log.warning("heat failed: %s", first_line(exc) if isinstance(exc, SQLAlchemyError) else exc)
        return no_update, no_update
    payload["live"] = not step
    return payload, label
