"""What each request may do, decided once, before anything answers it.

  open to all   /login, /logout, /assets/, Dash's own scripts, /tiles/ (the base map: nothing of
                the city's events or units in any of them; the issue leaves tiles aside)
  /api/         its own bearer tokens (cockpit/callbacks/api.py), each with its token's scope
  everything else needs a Person: a signed-in user or a wall screen (callbacks/signin.py);
                a page without one goes to /login?next=…, anything else answers 401
  a wall screen may load /wall and call the wall's own callbacks, nothing else (403)

The Person found here is put on flask.g (callbacks/context.py): every connection the request
opens then carries its scope, and PostgreSQL's policies do the rest.
"""
from __future__ import annotations

from urllib.parse import quote

import flask
from dash import Dash

from cockpit.access.people import Person

from cockpit.callbacks import errors, signin
from cockpit.callbacks.context import set_person

OPEN = ("/assets/", "/_dash-component-suites/", "/api/", "/tiles/")
OPEN_EXACT = ("/login", "/logout", "/_favicon.ico")  # not "/loginx", "/login/…": Dash's catch-all would answer
# What a wall page needs besides its own callbacks: Dash's layout and callback list, the map,
# the change stream's check (cockpit/live_push.py).
WALL_ALSO = ("/_dash-layout", "/_dash-dependencies", "/_reload-hash", "/geo/", "/_live/check")
WALL_PAGE = "/wall"
CALLBACK = "/_dash-update-component"
# Whoever asks while the store cannot say who they are: scope "" names no unit, so the row-level
# policies show nothing; the role reveals nothing.
UNVERIFIED = Person(name="…", kind="user", role="officer", scope_code="")


def _ids_in(tree) -> set[str]:
    found: set[str] = set()

    def walk(node):
        cid = getattr(node, "id", None)
        if cid is not None:
            found.add(str(cid))
        children = getattr(node, "children", None)
        for child in children if isinstance(children, (list, tuple)) else [children]:
            if child is not None and hasattr(child, "to_plotly_json"):
                walk(child)
    walk(tree)
    return found


def _output_ids(key: str) -> list[str]:
    """The component ids a callback_map key writes to ("id.prop" or "..a.p...b.q..")."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [p.rsplit(".", 1)[0] for p in parts]


def wall_callbacks(app: Dash, wall_tree) -> frozenset[str]:
    """The callbacks (callback_map keys) whose every output is on the wall page or is the page router."""
    ids = _ids_in(wall_tree) | {"page-content"}
    return frozenset(k for k in app.callback_map if all(i in ids for i in _output_ids(k)))


def _body_output() -> str | None:
    body = flask.request.get_json(silent=True)
    return body.get("output") if isinstance(body, dict) else None


def register(app: Dash, wall_tree) -> None:
    server = app.server
    prefix = app.config.requests_pathname_prefix.rstrip("/")
    allowed: dict[str, frozenset[str]] = {}

    def ticks() -> frozenset[str]:
        if "ticks" not in allowed:
            allowed["ticks"] = frozenset(k for k in app.callback_map
                                         if "live-token.data" in k and "live-status.children" in k)
        return allowed["ticks"]

    def relative(path: str) -> str:
        return path[len(prefix):] if prefix and path.startswith(prefix) else path

    @server.before_request
    def guard():
        path = relative(flask.request.path)
        if path in OPEN_EXACT or path.startswith(OPEN):
            return None
        if path == CALLBACK and flask.session.get("_user_id") and _body_output() in ticks():
            # The change poll, every screen every second: it answers the store-wide change token
            # and nothing else, so a signed session is enough and the account is not read again
            # (half of all requests; the next real request re-reads it as always).
            set_person(UNVERIFIED)
            return None
        try:
            answer = signin.redeem_from_url()
            if answer is not None:
                return answer
            who = signin.current()
        except Exception as exc:
            if errors.status(exc) != 503:
                raise
            # The store went away: nobody can be checked. The request goes on as UNVERIFIED,
            # who sees nothing even if the store comes back mid-request, so pages still load
            # and say "data unavailable" where their numbers would be.
            errors.message(exc, "en", path)  # logged once, the store's words for operators only
            set_person(UNVERIFIED)
            return None
        if who is None:
            if path.startswith("/_") or path.startswith("/geo/"):
                return flask.jsonify({"error": "sign in first"}), 401
            target = flask.request.full_path.rstrip("?")
            return flask.redirect(f"{prefix}/login?next={quote(target, safe='')}")
        set_person(who)
        if who.kind == "wall":
            if path == WALL_PAGE or path.startswith(WALL_ALSO):
                return None
            if path == CALLBACK:
                if "wall" not in allowed:
                    allowed["wall"] = wall_callbacks(app, wall_tree)
                body = flask.request.get_json(silent=True) or {}
                if isinstance(body, dict) and body.get("output") in allowed["wall"]:
                    return None
            return flask.jsonify({"error": "a wall screen shows the wall only"}), 403
        return None
