"""/tiles/<z>/<x>/<y>: the optional local base map (COCKPIT_TILES), served by this server only.

The URL has no extension: the tile's own mimetype (png, jpeg, webp) goes in Content-Type.
Tiles do not change while the app runs, so browsers keep them for a day. No source configured,
a tile outside the source, or a source that became unusable: 404 (the map simply has no tile
there); a misconfigured COCKPIT_TILES is refused at `cockpit serve` already.
"""
from __future__ import annotations

import logging

import flask

from cockpit.errors import CockpitError
from cockpit.maps.tiles import configured_tiles

MAX_AGE = 86400  # seconds
log = logging.getLogger(__name__)


def tile_url(prefix: str = "/") -> str:
    """Leaflet's URL template for the local tiles."""
    return f"{prefix.rstrip('/')}/tiles/{{z}}/{{x}}/{{y}}"


def _missing() -> flask.Response:
    return flask.Response("no such tile\n", status=404, mimetype="text/plain")


def register(server: flask.Flask, prefix: str = "/") -> None:
    base = f"{prefix.rstrip('/')}/tiles"

    @server.route(f"{base}/<int:z>/<int:x>/<int:y>")
    def local_tile(z: int, x: int, y: int):
        try:
            source = configured_tiles()
        except CockpitError as exc:
            log.warning("tiles: %s", exc)
            source = None
        found = source.tile(z, x, y) if source is not None else None
        if found is None:
            return _missing()
        data, mimetype = found
        resp = flask.Response(data, mimetype=mimetype)
        resp.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
        return resp

    # Anything else under /tiles/ (a negative number, an extension, ../): 404, not Dash's
    # catch-all page route, which would answer 200 with the app's HTML.
    @server.route(f"{base}/<path:_rest>")
    def no_tile(_rest: str):
        return _missing()
