"""What a browser is told when something goes wrong: mapped here, once.

NotFound (404) and BadRequest (400) carry the user's own input back ("no unit with code 'X'");
Unauthorized is 401 (with a WWW-Authenticate header on the API), Forbidden 403, TooLarge 413,
Invalid 422 (with its list of bad fields), NotConfigured 503 (saying what is not set up).
A store that is unreachable, slow past the statement timeout or answering with an error
(StoreUnavailable, any SQLAlchemyError, or a psycopg error: the importer COPYs through the
driver) is "data unavailable" (503) to the browser; the store's host, port, database and
PostgreSQL's own words go to the log only.
"""
from __future__ import annotations

import logging

import flask
import psycopg
from sqlalchemy.exc import SQLAlchemyError

from cockpit.errors import (BadRequest, CockpitError, Forbidden, Invalid, NotConfigured, NotFound, StoreUnavailable,
                            TooLarge, Unauthorized, UnknownUnit)
from cockpit.store.database import first_line
from cockpit.ui.i18n import t

log = logging.getLogger("cockpit.web")


def _internal(exc: BaseException) -> bool:
    return isinstance(exc, (StoreUnavailable, SQLAlchemyError, psycopg.Error)) or not isinstance(exc, CockpitError)


def status(exc: BaseException) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, Invalid):
        return 422
    if isinstance(exc, NotConfigured):
        return 503
    if _internal(exc):
        return 503
    return 400  # BadRequest and any other CockpitError: the user's input


def note_denial(exc: BaseException) -> None:
    """A unit outside the asker's scope was asked for: answered like an unknown unit, but on the
    record (once per error, however many places show it)."""
    from cockpit.access import audit
    from cockpit.callbacks.context import context, person

    who = person()
    if not isinstance(exc, UnknownUnit) or who is None or who.city_wide or getattr(exc, "noted", False):
        return
    exc.noted = True
    try:
        ctx = context()
        with ctx.connect() as conn:
            if not audit.unit_exists(conn, exc.code):
                return
        ctx.audit("scope_denied", outcome="denied", unit_code=exc.code, path=flask.request.path)
    except Exception as failure:  # the answer stays "no such unit" whatever the record's fate
        log.warning("could not record a scope denial: %s", failure)


def message(exc: BaseException, lang: str = "zh", what: str = "request") -> str:
    """One line for the screen; logs the detail of anything internal. The answer carrying it is
    the asker's alone (never a shared answer: cockpit.callbacks.shared_answers)."""
    from cockpit.callbacks.shared_answers import not_shared

    not_shared()
    note_denial(exc)
    if not _internal(exc):
        return str(exc)
    detail = first_line(exc) if isinstance(exc, (SQLAlchemyError, psycopg.Error)) else str(exc)
    if isinstance(exc, (StoreUnavailable, SQLAlchemyError, psycopg.Error)):
        log.warning("%s failed: %s", what, detail)
    else:
        log.exception("%s failed", what, exc_info=exc)
    return t("store_unavailable", lang)


def register(server: flask.Flask) -> None:
    """Routes that raise get a JSON answer with the mapped status and message."""
    def answer(exc: Exception):
        note_denial(exc)
        code = status(exc)
        headers = {"WWW-Authenticate": 'Bearer realm="cockpit"'} if code == 401 else {}
        body = {"error": message(exc, "en", flask.request.path)}
        if isinstance(exc, Invalid):
            body["errors"] = exc.errors
        return flask.jsonify(body), code, headers

    for kind in (NotFound, Unauthorized, Forbidden, BadRequest, Invalid, NotConfigured, CockpitError, SQLAlchemyError,
                 psycopg.Error):
        server.register_error_handler(kind, answer)


