"""The optional local base map under the unit polygons: one TileLayer, or nothing.

Only when COCKPIT_TILES names a tile source: the layer's URL is this server's own /tiles route,
never a public tile server (dash-leaflet's TileLayer defaults to OpenStreetMap, so a TileLayer is
never created without our url). Unset: [] and the unit polygons are the base map.
"""
from __future__ import annotations

import dash_leaflet as dl

from cockpit.callbacks.tiles_route import tile_url
from cockpit.maps.tiles import configured_tiles

LAYER_ID = "basemap-tiles"
# How far the map may zoom in with tiles drawn (upscaled past the source's own deepest level).
# Leaflet caps the whole map at its layers' largest maxZoom, and its TileLayer default is 18.
MAP_MAX_ZOOM = 22


def layers(prefix: str = "/") -> list:
    source = configured_tiles()
    if source is None:
        return []
    return [
        dl.TileLayer(
            id=LAYER_ID,
            url=tile_url(prefix),
            # 0, not the source's min zoom: Leaflet would otherwise keep the whole map from zooming
            # out past it; below the source's levels the route answers 404 and the map is bare.
            minZoom=0,
            maxZoom=max(MAP_MAX_ZOOM, source.max_zoom),
            maxNativeZoom=source.max_zoom,
            attribution=source.attribution or "",
        )
    ]
