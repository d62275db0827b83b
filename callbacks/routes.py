"""The app's plain Flask routes (not Dash callbacks): the map's polygons and the local tiles.

/geo/<code>.json  the polygons the map draws for a unit, fetched by the browser itself. The
    map's GeoJSON layer gets `url=` instead of `data=`, so geometry never travels inside a
    callback response and never comes back: it is fetched once per unit, gzipped (Dash's
    compress=True) and revalidated with an ETag. A unit with children gets its children; a unit
    without (a grid) gets its own polygon. "_root" is the top of the tree. Errors are mapped by
    cockpit.callbacks.errors (404 for an unknown unit, 503 when the store is unavailable).

/_live/check  204 for whoever the guard lets through: the change stream (cockpit/live_push.py)
    asks it with the browser's cookies before it streams, so one guard decides for both.
/_live/stream  the stream itself is served by cockpit serve's event loop; here (a server without
    it) 204, and the page polls.

/tiles/<z>/<x>/<y>  the optional local base map (COCKPIT_TILES), served by this server only. No
    extension: the tile's own mimetype goes in Content-Type. Tiles do not change while the app
    runs, so browsers keep them for a day. No source, a tile outside it, or a source that became
    unusable: 404 (the map has no tile there); a misconfigured COCKPIT_TILES is refused at
    `cockpit serve` already.
"""
from __future__ import annotations

import hashlib
import json
import logging

import flask

from cockpit import live_push
from cockpit.errors import CockpitError
from cockpit.maps.geo import map_features
from cockpit.metrics.unit_view import unit_by_code

from cockpit.callbacks.context import context, process_context

ROOT = "_root"
GEO_MAX_AGE = 300  # seconds; after that the browser revalidates (a 304 if unchanged)
TILE_MAX_AGE = 86400
log = logging.getLogger(__name__)


def geo_url(prefix: str, code: str | None) -> str:
    return f"{prefix.rstrip('/')}/geo/{code or ROOT}.json"


def tile_url(prefix: str = "/") -> str:
    """Leaflet's URL template for the local tiles."""
    return f"{prefix.rstrip('/')}/tiles/{{z}}/{{x}}/{{y}}"


def features_for(code: str | None) -> dict:
    """Children of the unit, or the unit itself when it has none."""
    with context().connect() as conn:
        return map_features(conn, unit_by_code(conn, code).id)


def _no_tile() -> flask.Response:
    return flask.Response("no such tile\n", status=404, mimetype="text/plain")


def register(server: flask.Flask, prefix: str = "/") -> None:
    base = prefix.rstrip("/")

    @server.route(f"{base}/geo/<code>.json")
    def unit_geometry(code: str):
        fc = features_for(None if code == ROOT else code)  # errors: cockpit.callbacks.errors
        body = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
        etag = hashlib.sha1(body.encode()).hexdigest()[:20]
        # Flask-Compress tags the gzipped body "<etag>:gzip": compare the part before the colon
        sent = {tag.split(":")[0] for tag in flask.request.if_none_match.as_set()}
        resp = flask.Response(status=304) if etag in sent else flask.Response(body, mimetype="application/json")
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = f"private, max-age={GEO_MAX_AGE}"
        return resp

    @server.route(f"{base}/{live_push.CHECK}")
    def live_check():
        return flask.Response(status=204)

    # Reached only where nothing streams (the development server, tests' threaded server): 204
    # tells the browser's EventSource to stop trying, quietly, and the page keeps polling.
    @server.route(f"{base}/{live_push.PATH}")
    def no_live_stream():
        return flask.Response(status=204)

    @server.route(f"{base}/tiles/<int:z>/<int:x>/<int:y>")
    def local_tile(z: int, x: int, y: int):
        try:
            source = process_context().tiles  # the base map: the same for everyone, no sign-in
        except CockpitError as exc:
            log.warning("tiles: %s", exc)
            source = None
        found = source.tile(z, x, y) if source is not None else None
        if found is None:
            return _no_tile()
        data, mimetype = found
        resp = flask.Response(data, mimetype=mimetype)
        resp.headers["Cache-Control"] = f"public, max-age={TILE_MAX_AGE}"
        return resp

    # Anything else under /tiles/ (a negative number, an extension, ../): 404, not the page
    # router's catch-all, which would answer 200 with the app's HTML.
    @server.route(f"{base}/tiles/<path:_rest>")
    def no_tile(_rest: str):
        return _no_tile()
