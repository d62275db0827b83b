"""Where a request finds the process's context (cockpit.context.Context): one place.

The app factory puts the context on the Flask app; callbacks, page layouts and routes reach it
through `context()` while they answer a request. (Who the request's user is and what part of
the city they may see will be known here too.)
"""
from __future__ import annotations

import flask

from cockpit.context import Context

KEY = "cockpit"


def attach(server: flask.Flask, ctx: Context) -> None:
    server.extensions[KEY] = ctx


def context() -> Context:
    return flask.current_app.extensions[KEY]


def acting_person(typed: str | None) -> str:
    """Who a write from the screen (acknowledging a warning) is recorded as.

    For now the name the duty officer types in the form. When access control lands (a later
    issue), this is where the signed-in user is read instead, and the typed name is ignored.
    """
    return (typed or "").strip()
