"""The HTTP API other systems use, under /api/, authenticated by a bearer token
(`cockpit api-token create NAME`; cockpit/access/tokens.py).

GET /api/units/<code>/kpi?from=YYYY-MM-DD&to=YYYY-MM-DD
    the same JSON as `cockpit kpi --unit CODE --json` (from and to are local days, both
    included; default the last 30 days), for units in the token's scope (`--scope CODE`: a
    unit outside it answers 404 like an unknown one). Errors are JSON {"error": "..."} with 401 (no, unknown
    or revoked token), 404 (unknown unit), 400 (a bad date), 503 (store unavailable), mapped
    in cockpit.callbacks.errors.

POST /api/events  (a token made with `cockpit api-token create NAME --write`)
    one Open311 service request (a JSON object) or a list of at most 1,000, stored as an import
    stores them (cockpit/ingest/api_events.py), as the writer role. 201 with each item's
    {index, service_request_id, source, id, status: inserted|updated|unchanged}; 422 with
    {"error", "errors": [{index, field, message}, ...]} when any item is invalid (nothing
    stored); 400 (not JSON, wrong shape), 401, 403 (a read token), 413 (too large), 503
    (writing not configured: COCKPIT_WRITER_DATABASE_URL).
"""
from __future__ import annotations

import flask

from cockpit.access import tokens
from cockpit.errors import Forbidden, TooLarge, Unauthorized
from cockpit.ingest import api_events
from cockpit.metrics.kpi import Period, unit_kpi

from cockpit.callbacks.context import context, process_context, set_person


def _bearer() -> str | None:
    kind, _, value = (flask.request.headers.get("Authorization") or "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else None


def _holder() -> tokens.Holder:
    """The request's token; from here on the request reads with the token's scope."""
    with process_context().connect() as conn:  # tokens carry no per-unit rows: no scope needed
        who = tokens.holder(conn, _bearer())
    if who is None:
        raise Unauthorized("a valid API token is needed: Authorization: Bearer <token>")
    set_person(who.person)
    return who


def _body() -> bytes:
    """The request body, refused unread past the cap when its length is announced."""
    length = flask.request.content_length
    if length is not None and length > api_events.MAX_BYTES:
        raise TooLarge(f"the body is larger than {api_events.MAX_BYTES:,} bytes: send the events in several requests")
    return flask.request.stream.read(api_events.MAX_BYTES + 1)


def register(server: flask.Flask, prefix: str = "/") -> None:
    base = f"{prefix.rstrip('/')}/api"

    @server.route(f"{base}/units/<code>/kpi")
    def unit_kpi_json(code: str):
        _holder()
        ctx = context()
        args = flask.request.args
        with ctx.connect() as conn:
            period = Period.parse(args.get("from"), args.get("to"), ctx.timezone)
            return flask.jsonify(unit_kpi(conn, code, period))

    @server.route(f"{base}/events", methods=["POST"])
    def post_events():
        who = _holder()
        ctx = context()
        if not who.may_write:
            raise Forbidden(f"the token {who.name!r} may only read: sending events needs one made with "
                            "`cockpit api-token create NAME --write`")
        items = api_events.parse_body(_body())
        with ctx.connect_writer() as conn:
            stored = api_events.store_events(conn, items, ctx.timezone, who.name)
            conn.commit()
        return flask.jsonify(stored), 201
