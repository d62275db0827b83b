"""Event heat for a moving window, binned on the server so the payload is bounded.

Events of the window inside a unit are counted on a square raster laid over the unit's
bounding box, at most MAX_CELLS_ACROSS cells along its longer side; what goes to the browser
is one weighted point per non-empty cell (its centre), whatever the number of events: at most
MAX_CELLS_ACROSS² points (~100 kB of JSON at the default), fit for Leaflet.heat or hexagons.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
MAX_CELLS_ACROSS = 100
DECIMALS = 5

_HEAT = sa.text("""
    WITH frame AS (
        SELECT ST_XMin(geom) AS x0, ST_YMin(geom) AS y0,
               greatest(ST_XMax(geom) - ST_XMin(geom), ST_YMax(geom) - ST_YMin(geom)) / :across AS cell
        FROM units WHERE id = :unit
    )
    SELECT floor((ST_X(e.location) - frame.x0) / frame.cell)::int AS gx,
           floor((ST_Y(e.location) - frame.y0) / frame.cell)::int AS gy,
           count(*) AS n, min(frame.x0) AS x0, min(frame.y0) AS y0, min(frame.cell) AS cell
    FROM events e
    JOIN unit_closure c ON c.descendant_id = e.grid_id AND c.ancestor_id = :unit
    CROSS JOIN frame
    WHERE e.reported_at >= :start AND e.reported_at < :end AND e.location IS NOT NULL
    GROUP BY 1, 2
""")


def heat(conn: sa.Connection, unit_id: int, window: timedelta, end: datetime | None = None,
         across: int = MAX_CELLS_ACROSS) -> dict:
    """Weighted cell centres [[lat, lon, n], ...] of the unit's events in [end - window, end)."""
    end = end or datetime.now(timezone.utc)
    rows = conn.execute(_HEAT, {"unit": unit_id, "across": across, "start": end - window, "end": end}).all()
    points = [
        [round(r.y0 + (r.gy + 0.5) * r.cell, DECIMALS), round(r.x0 + (r.gx + 0.5) * r.cell, DECIMALS), int(r.n)]
        for r in rows
    ]
    return {
        "start": (end - window).isoformat(), "end": end.isoformat(),
        "cell_degrees": rows[0].cell if rows else None,
        "events": sum(p[2] for p in points), "max": max((p[2] for p in points), default=0),
        "points": points,
    }
