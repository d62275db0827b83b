"""Unit polygons for the map, simplified for the size they are drawn at and trimmed to ~1 m."""
from __future__ import annotations

import json

import sqlalchemy as sa

# Drawn at roughly a 1,000-pixel map of the parent: detail below 1/2000 of its extent is invisible.
SIMPLIFY_FRACTION = 1 / 2000
DECIMALS = 5  # ~1 m at these latitudes


def children_features(conn: sa.Connection, parent_id: int) -> dict:
    """A GeoJSON FeatureCollection of the unit's children (id, code, name, level as properties)."""
    rows = conn.execute(
        sa.text(
            """
            WITH parent AS (
                SELECT greatest(ST_XMax(geom) - ST_XMin(geom), ST_YMax(geom) - ST_YMin(geom)) AS extent
                FROM units WHERE id = :pid
            )
            SELECT u.id, u.code, u.name, u.level,
                   ST_AsGeoJSON(ST_SimplifyPreserveTopology(u.geom, parent.extent * :frac), :dec) AS geometry
            FROM units u, parent
            WHERE u.parent_id = :pid AND u.geom IS NOT NULL
            ORDER BY u.code
            """
        ),
        {"pid": parent_id, "frac": SIMPLIFY_FRACTION, "dec": DECIMALS},
    ).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.code,
                "geometry": json.loads(r.geometry),
                "properties": {"id": r.id, "code": r.code, "name": r.name, "level": r.level},
            }
            for r in rows
        ],
    }
