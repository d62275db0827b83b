"""/geo/<code>.json: the polygons the map draws for a unit, fetched by the browser itself.

The map's GeoJSON layer gets `url=` instead of `data=`, so geometry never travels inside a
callback response and never comes back: it is fetched once per unit, gzipped (Flask-Compress,
Dash's compress=True) and revalidated with an ETag. A unit with children gets its children; a
unit without (a grid) gets its own polygon. "_root" is the top of the tree.
"""
from __future__ import annotations

import hashlib
import json

import flask

from cockpit import store
from cockpit.metrics.unit_view import unit_by_code
from cockpit.errors import CockpitError
from cockpit.maps.geo import map_features

ROOT = "_root"
MAX_AGE = 300  # seconds; after that the browser revalidates (a 304 if unchanged)


def url_for(prefix: str, code: str | None) -> str:
    return f"{prefix.rstrip('/')}/geo/{code or ROOT}.json"


def features_for(code: str | None) -> dict:
    """Children of the unit, or the unit itself when it has none."""
    with store.connect(store.app_engine()) as conn:
        return map_features(conn, unit_by_code(conn, code).id)


def register(server: flask.Flask, prefix: str = "/") -> None:
    @server.route(f"{prefix.rstrip('/')}/geo/<code>.json")
    def unit_geometry(code: str):
        try:
            fc = features_for(None if code == ROOT else code)
        except CockpitError as exc:
            return flask.jsonify({"error": str(exc)}), 503 if "cannot use the store" in str(exc) else 404
        body = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
        etag = hashlib.sha1(body.encode()).hexdigest()[:20]
        # Flask-Compress tags the gzipped body "<etag>:gzip": compare the part before the colon
        sent = {tag.split(":")[0] for tag in flask.request.if_none_match.as_set()}
        if etag in sent:
            resp = flask.Response(status=304)
        else:
            resp = flask.Response(body, mimetype="application/json")
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = f"private, max-age={MAX_AGE}"
        return resp
