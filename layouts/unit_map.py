"""The map both pages draw: a Leaflet map whose base is the unit polygons, over the operator's
own raster tiles when COCKPIT_TILES names some — never a public tile server (dash-leaflet's
TileLayer defaults to OpenStreetMap, so a TileLayer is never created without our url).

No city is assumed: the map opens on a neutral view and fits itself to the shown unit's
polygons as soon as they arrive (assets/cockpit_map.js, cockpitMap.fitOnce).
"""
from __future__ import annotations

import dash_leaflet as dl

from cockpit.callbacks.routes import tile_url

LAYER_ID = "basemap-tiles"
# How far the map may zoom in with tiles drawn (upscaled past the source's own deepest level).
# Leaflet caps the whole map at its layers' largest maxZoom, and its TileLayer default is 18.
MAP_MAX_ZOOM = 22
NEUTRAL_VIEW = {"center": [0, 0], "zoom": 2}  # until the polygons fit the map


def base_layers(source, prefix: str = "/") -> list:
    """One TileLayer over our own /tiles route when a tile source is configured, else []."""
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


def unit_map(map_id: str, tiles, layers: list, **options) -> dl.MapContainer:
    """A map of units: base tiles (if any) then `layers`. SVG paths, not one canvas, so each unit
    is an element a test can click; no attribution box (nothing of anyone else's is shown)."""
    return dl.MapContainer(
        id=map_id, **NEUTRAL_VIEW, zoomSnap=0.25, attributionControl=False, preferCanvas=False,
        style={"height": "100%", "width": "100%"}, children=[*base_layers(tiles), *layers], **options,
    )


def units_layer(layer_id: str, style: str, **options) -> dl.GeoJSON:
    """The unit polygons, fitted once when drawn (not again when only the colours change)."""
    return dl.GeoJSON(id=layer_id, eventHandlers={"layeradd": {"variable": "cockpitMap.fitOnce"}},
                      style={"variable": style}, onEachFeature={"variable": "cockpitMap.onEachFeature"},
                      hideout={}, **options)
