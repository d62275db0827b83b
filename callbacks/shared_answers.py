"""Whole callback answers shared between screens: the same request, the same answer, built once.

Walls showing the same focus, and officers looking at the same unit and period, send the very
same callback body (the page's state converges after one refresh: the same sigs, the same
ticker ids). Their answers differ only by what the store holds and what the asker may see, so
for the callbacks named in SHARED the answer's bytes are cached under (the version of what the
answer shows, who may see what, the body) in the view cache (cockpit.metrics.viewcache: once
per server and version, across workers, single flight). A hit skips building figures, layouts
and JSON altogether: what is left of a request is the guard and a dictionary lookup.

The version is read before the answer is built (so an answer is never older than its key) and
is the store's change token, or, for a view of one unit, the token of the last change that
touched that unit (ChangeFeed.version_for): a quiet community's view outlives changes elsewhere.
An answer built while something went wrong (an error on the screen, a scope denial that must
be recorded each time) is sent but not shared: `not_shared()` marks it.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import flask
from dash import Dash

from cockpit.metrics import viewcache
from cockpit.ui import url_state

from cockpit.callbacks.context import context

CALLBACK = "_dash-update-component"
ANSWERS = "viewcache-answers"  # a layer above the views (their lock order: viewcache.shared)


class _Unshared(Exception):
    def __init__(self, answer: tuple[int, str, bytes]):
        self.answer = answer


def not_shared() -> None:
    """This request's answer is for its asker alone (an error, a denial on the record)."""
    if flask.has_request_context():
        flask.g.cockpit_not_shared = True


def _input(body: dict, name: str):
    return next((i.get("value") for i in body.get("inputs") or () if isinstance(i, dict) and i.get("id") == name),
                None)


def _state(body: dict, name: str):
    return next((i.get("value") for i in body.get("state") or () if isinstance(i, dict) and i.get("id") == name),
                None)


def _unit_of(body: dict) -> str | None:
    query = _input(body, "query") or _state(body, "query")
    return url_state.parse(query).unit if isinstance(query, str) else None


def whole_store(feed, _body: dict) -> str | None:
    """The version of a view of everything the asker may see: the change token."""
    return feed.version


def one_unit(feed, body: dict) -> str | None:
    """The version of a view of the unit named in the body's `query`."""
    return feed.version_for(_unit_of(body))


_SHARED: dict[frozenset[str], Callable] = {}


def share(outputs, version: Callable) -> None:
    """Mark the callback with these outputs (a dict or list of Output) as answering the same
    body the same way for everyone of one scope and role, at one `version` (whole_store,
    one_unit)."""
    flat = outputs.values() if isinstance(outputs, dict) else outputs
    ids = []
    for o in flat:
        ids.extend(o.values() if isinstance(o, dict) else [o])
    _SHARED[frozenset(f"{o.component_id}.{o.component_property}" for o in ids)] = version


def _outputs_of(key: str) -> frozenset[str]:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return frozenset(p.split("@")[0] for p in parts)  # "id.prop@hash": an allow_duplicate output


def register(app: Dash) -> None:
    server = app.server
    endpoint = app.config.routes_pathname_prefix + CALLBACK
    original = server.view_functions[endpoint]
    shared: dict[str, Callable] = {}

    def dispatch():
        if not shared:  # the callback map is complete once the first request arrives
            shared.update({k: _SHARED[o] for k in app.callback_map if (o := _outputs_of(k)) in _SHARED})
        body = flask.request.get_json(silent=True)
        versioned = shared.get(body.get("output")) if isinstance(body, dict) else None
        if versioned is None:
            return original()
        ctx = context()
        version = versioned(ctx.feed, body)
        if version is None:
            return original()
        who = ctx.person
        key = viewcache.view_key(version, ctx.describe(), who.scope_key, "answer", who.kind, who.role,
                                 hashlib.sha256(flask.request.get_data()).hexdigest())

        def build() -> tuple[int, str, bytes]:
            flask.g.cockpit_not_shared = False
            r = server.make_response(original())
            answer = (r.status_code, r.mimetype, r.get_data())
            if r.status_code not in (200, 204) or flask.g.cockpit_not_shared:
                raise _Unshared(answer)
            return answer

        try:
            status, mimetype, data = viewcache.shared(ctx.settings.state_dir, ANSWERS).get(key, build)
        except _Unshared as unshared:
            status, mimetype, data = unshared.answer
        return flask.Response(data, status=status, mimetype=mimetype)

    server.view_functions[endpoint] = dispatch
