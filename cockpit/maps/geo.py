"""Unit polygons for the map, simplified for the size they are drawn at and trimmed to ~1 m."""
from __future__ import annotations

import json

import sqlalchemy as sa

from cockpit.ui.formatting import shorten

# Drawn at roughly a 1,000-pixel map of the parent: detail below 1/2000 of its extent is invisible.
SIMPLIFY_FRACTION = 1 / 2000
DECIMALS = 5  # ~1 m at these latitudes
# A unit's name on the map, in columns (a CJK character is two): longer names ran into their
# neighbours' ("…高新技术产业开发区"); the hover and the panels carry the full name.
LABEL_COLUMNS = 14

_FEATURES = """
    WITH frame AS (
        SELECT greatest(ST_XMax(geom) - ST_XMin(geom), ST_YMax(geom) - ST_YMin(geom)) AS extent
        FROM units WHERE id = :frame
    )
    SELECT u.id, u.code, u.name, u.level,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(u.geom, frame.extent * :frac), :dec) AS geometry
    FROM units u, frame
    WHERE {which} AND u.geom IS NOT NULL
    ORDER BY u.code
"""


def _collection(conn: sa.Connection, which: str, frame: int, params: dict) -> dict:
    rows = conn.execute(sa.text(_FEATURES.format(which=which)),
                        {"frame": frame, "frac": SIMPLIFY_FRACTION, "dec": DECIMALS, **params}).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.code,
                "geometry": json.loads(r.geometry),
                "properties": {"id": r.id, "code": r.code, "name": r.name, "level": r.level,
                               "label": shorten(r.name, LABEL_COLUMNS)},
            }
            for r in rows
        ],
    }


def children_features(conn: sa.Connection, parent_id: int) -> dict:
    """A GeoJSON FeatureCollection of the unit's children (id, code, name, level as properties)."""
    return _collection(conn, "u.parent_id = :unit", parent_id, {"unit": parent_id})


def own_feature(conn: sa.Connection, unit_id: int) -> dict:
    """The unit's own polygon, as a one-feature collection, simplified for its own extent."""
    return _collection(conn, "u.id = :unit", unit_id, {"unit": unit_id})


def map_features(conn: sa.Connection, unit_id: int) -> dict:
    """What the map draws for a unit: its children, or itself when it has none (a grid)."""
    fc = children_features(conn, unit_id)
    return fc if fc["features"] else own_feature(conn, unit_id)


def outlines(conn: sa.Connection, unit_ids: dict[int, dict]) -> dict:
    """Outlines of the given units, each simplified for its own extent, with the properties given
    per unit id merged in (the warnings layer: which warning, of what kind)."""
    if not unit_ids:
        return {"type": "FeatureCollection", "features": []}
    rows = conn.execute(sa.text("""
        SELECT u.id, u.code, u.name,
               ST_AsGeoJSON(ST_SimplifyPreserveTopology(u.geom, greatest(ST_XMax(u.geom) - ST_XMin(u.geom),
                            ST_YMax(u.geom) - ST_YMin(u.geom)) * :frac), :dec) AS geometry
        FROM units u WHERE u.id = ANY(:ids) AND u.geom IS NOT NULL ORDER BY u.code"""),
        {"ids": list(unit_ids), "frac": SIMPLIFY_FRACTION, "dec": DECIMALS}).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r.code, "geometry": json.loads(r.geometry),
         "properties": {"code": r.code, "name": r.name, **unit_ids[r.id]}} for r in rows]}
