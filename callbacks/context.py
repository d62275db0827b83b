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
