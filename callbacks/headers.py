"""Security headers on every answer, by flask-talisman (issue 13 §2).

Content-Security-Policy: everything from this server ('self': the cockpit serves Dash, React,
Leaflet and its tiles itself). Scripts: 'self' plus the hashes of the inline scripts Dash writes
into its index page (the renderer start and the inline clientside callbacks: Dash.csp_hashes());
no 'unsafe-inline' and no 'unsafe-eval' for scripts — the pages draw without them (checked in a
browser by tests/test_headers.py). Styles need 'unsafe-inline': React, Leaflet and Plotly set
style attributes and add <style> elements as they draw. Images may be data:/blob: URLs (Leaflet's
icons, Plotly's exports).

frame-ancestors 'none' (no page of the cockpit inside another site's frame: clickjacking), or
COCKPIT_FRAME_ANCESTORS for a command centre's own portal that embeds the wall. nosniff, a
strict referrer policy. HTTPS is not forced (intranets serve plain HTTP) unless
COCKPIT_FORCE_HTTPS=1; the session cookie is Secure whenever the request came over HTTPS
(callbacks/signin.py).

/_reload-hash lists the server's Python packages; it exists for Dash's hot reload, which
`cockpit serve` never turns on: it answers 404 unless hot reload is on.
"""
from __future__ import annotations

import flask
from dash import Dash
from dash import _callback as dash_callback
from flask_talisman import Talisman

RELOAD_HASH = "/_reload-hash"


def policy(app: Dash, frame_ancestors: tuple[str, ...] = ()) -> dict:
    return {
        "default-src": "'self'",
        # Dash lists an inline script once per place it keeps it: each hash once
        "script-src": ["'self'", *dict.fromkeys(app.csp_hashes())],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": "'self'",
        "worker-src": ["'self'", "blob:"],
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": list(frame_ancestors) or "'none'",
    }


def register(app: Dash) -> None:
    """Before the sign-in guard, so that a redirect to HTTPS (when forced) comes first."""
    from cockpit.callbacks.context import KEY

    s = app.server.extensions[KEY].settings
    talisman = Talisman(
        app.server,
        content_security_policy=policy(app, s.frame_ancestors),
        force_https=s.force_https,
        strict_transport_security=s.force_https,  # only ever sent over HTTPS
        session_cookie_secure=False,  # Secure when the request is HTTPS: callbacks/signin.py
        frame_options=None if s.frame_ancestors else "DENY",  # frame-ancestors says it for the allowed
        referrer_policy="strict-origin-when-cross-origin",
        x_content_type_options=True,
    )
    prefix = app.config.requests_pathname_prefix.rstrip("/")
    known = [0]

    @app.server.after_request  # runs before Talisman's, which writes the header
    def current_hashes(response):
        # Dash adds inline clientside callbacks until its first request (the pages' title
        # callback is registered then): the script hashes follow whatever it has added.
        count = len(app._inline_scripts) + len(dash_callback.GLOBAL_INLINE_SCRIPTS)  # noqa: SLF001
        if count != known[0]:
            talisman.content_security_policy = policy(app, s.frame_ancestors)
            known[0] = count  # (counting Dash's own list alone rebuilt the policy on every request)
        return response

    @app.server.before_request
    def no_package_list():
        if flask.request.path == prefix + RELOAD_HASH and not app._dev_tools.hot_reload:  # noqa: SLF001
            return flask.jsonify({"error": "not found"}), 404
        return None
