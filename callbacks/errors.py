"""What a browser is told when something goes wrong: mapped here, once.

NotFound (404) and BadRequest (400) carry the user's own input back ("no unit with code 'X'");
Unauthorized is 401 (with a WWW-Authenticate header on the API).
A store that is unreachable, slow past the statement timeout or answering with an error
(StoreUnavailable, any SQLAlchemyError) is "data unavailable" (503) to the browser; the store's
host, port, database and PostgreSQL's own words go to the log only.
"""
from __future__ import annotations

import logging

import flask
from sqlalchemy.exc import SQLAlchemyError

from cockpit.errors import BadRequest, CockpitError, NotFound, StoreUnavailable, Unauthorized
from cockpit.store.database import first_line
from cockpit.ui.i18n import t

log = logging.getLogger("cockpit.web")


def _internal(exc: BaseException) -> bool:
    return isinstance(exc, (StoreUnavailable, SQLAlchemyError)) or not isinstance(exc, CockpitError)


def status(exc: BaseException) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Unauthorized):
        return 401
    if _internal(exc):
        return 503
    return 400  # BadRequest and any other CockpitError: the user's input


def message(exc: BaseException, lang: str = "zh", what: str = "request") -> str:
    """One line for the screen; logs the detail of anything internal."""
    if not _internal(exc):
        return str(exc)
    detail = first_line(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
    if isinstance(exc, (StoreUnavailable, SQLAlchemyError)):
        log.warning("%s failed: %s", what, detail)
    else:
        log.exception("%s failed", what, exc_info=exc)
    return t("store_unavailable", lang)


def register(server: flask.Flask) -> None:
    """Routes that raise get a JSON answer with the mapped status and message."""
    def answer(exc: Exception):
        code = status(exc)
        headers = {"WWW-Authenticate": 'Bearer realm="cockpit"'} if code == 401 else {}
        return flask.jsonify({"error": message(exc, "en", flask.request.path)}), code, headers

    for kind in (NotFound, Unauthorized, BadRequest, CockpitError, SQLAlchemyError):
        server.register_error_handler(kind, answer)


