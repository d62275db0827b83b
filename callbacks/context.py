"""Where a request finds the process's context and who is asking: one place.

The app factory puts the context on the Flask app; the guard (callbacks/guard.py) decides, once
per request, who the request's Person is (a signed-in user, a wall screen, an API token) and
puts it on `flask.g`. Callbacks, page layouts and routes then call `context()`, which is the
process's context as that person sees it: every connection it opens carries their scope, and
PostgreSQL's row-level policies admit only their subtree (migration 0011). A request with no
Person cannot open a connection at all.
"""
from __future__ import annotations

import flask

from cockpit.access.people import Person
from cockpit.context import Context, Scoped
from cockpit.errors import Unauthorized

KEY = "cockpit"


def attach(server: flask.Flask, ctx: Context) -> None:
    server.extensions[KEY] = ctx


def process_context() -> Context:
    """The process's context itself (for the guard and sign-in, before anyone is known)."""
    return flask.current_app.extensions[KEY]


def person() -> Person | None:
    return flask.g.get("person")


def set_person(who: Person | None) -> None:
    flask.g.person = who


def address() -> str | None:
    """The asker's address: the peer, or what a trusted proxy says the peer was."""
    req = flask.request
    peer = req.remote_addr
    trusted = process_context().settings.trusted_proxies
    forwarded = req.headers.get("X-Forwarded-For")
    if peer in trusted and forwarded:
        return forwarded.split(",")[-1].strip() or peer
    return peer


def context() -> Scoped:
    """The context as the request's person sees it."""
    who = person()
    if who is None:
        raise Unauthorized("sign in first")
    return process_context().for_person(who, address())


def acting_person(typed: str | None = None) -> str:
    """Who a write from the screen (acknowledging a warning) is recorded as: the signed-in
    person, whatever name was typed."""
    who = person()
    return who.name if who is not None else (typed or "").strip()
