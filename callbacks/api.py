"""The HTTP API other systems use, under /api/, authenticated by a bearer token
(`cockpit api-token create NAME`; cockpit/access/tokens.py).

GET /api/units/<code>/kpi?from=YYYY-MM-DD&to=YYYY-MM-DD
    the same JSON as `cockpit kpi --unit CODE --json` (from and to are local days, both
    included; default the last 30 days). Errors are JSON {"error": "..."} with 401 (no, unknown
    or revoked token), 404 (unknown unit), 400 (a bad date), 503 (store unavailable), mapped
    in cockpit.callbacks.errors.
"""
from __future__ import annotations

import flask

from cockpit.access import tokens
from cockpit.errors import Unauthorized
from cockpit.metrics.kpi import Period, unit_kpi

from cockpit.callbacks.context import context


def _bearer() -> str | None:
    kind, _, value = (flask.request.headers.get("Authorization") or "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else None


def register(server: flask.Flask, prefix: str = "/") -> None:
    base = f"{prefix.rstrip('/')}/api"

    @server.route(f"{base}/units/<code>/kpi")
    def unit_kpi_json(code: str):
        ctx = context()
        args = flask.request.args
        with ctx.connect() as conn:
            if tokens.holder(conn, _bearer()) is None:
                raise Unauthorized("a valid API token is needed: Authorization: Bearer <token>")
            period = Period.parse(args.get("from"), args.get("to"), ctx.timezone)
            return flask.jsonify(unit_kpi(conn, code, period))
