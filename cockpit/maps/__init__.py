"""Geometry for the maps: unit polygons and the optional local base-map tiles."""
