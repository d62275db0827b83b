"""Server-side heat bins: every event of the window counted once, payload bounded by the raster."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa

from cockpit.drilldown import unit_by_code
from cockpit.heat import MAX_CELLS_ACROSS, WINDOWS, heat


def test_heat_counts_every_event_of_the_window_once(demo_engine):
    end = datetime.now(timezone.utc)
    with demo_engine.connect() as conn:
        city = unit_by_code(conn, None)
        district = conn.execute(sa.text("SELECT id, code FROM units WHERE level = 'district' ORDER BY code LIMIT 1")).one()
        for name, window in WINDOWS.items():
            for unit_id in (city.id, district.id):
                h = heat(conn, unit_id, window, end)
                raw = conn.execute(sa.text("""
                    SELECT count(*) FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id
                    WHERE c.ancestor_id = :u AND e.reported_at >= :s AND e.reported_at < :e"""),
                    {"u": unit_id, "s": end - window, "e": end}).scalar()
                assert h["events"] == raw, (name, unit_id)
                assert len(h["points"]) <= (MAX_CELLS_ACROSS + 1) ** 2
                assert all(1 <= n <= h["max"] for _, _, n in h["points"])
        box = conn.execute(sa.text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM units WHERE id = :u"),
                           {"u": district.id}).one()
        week = heat(conn, district.id, WINDOWS["7d"], end)
    cell = week["cell_degrees"]
    assert week["events"] > 0
    assert all(box[1] - cell <= lat <= box[3] + cell and box[0] - cell <= lon <= box[2] + cell
               for lat, lon, _ in week["points"])


def test_heat_payload_is_bounded_whatever_the_volume(demo_engine):
    """A coarse raster over a long window: more events, not more points."""
    with demo_engine.connect() as conn:
        city = unit_by_code(conn, None)
        small = heat(conn, city.id, WINDOWS["7d"], across=20)
        large = heat(conn, city.id, WINDOWS["7d"] * 12, across=20)
    assert large["events"] > small["events"] * 5
    assert len(large["points"]) <= 21 * 21 and len(json.dumps(large["points"])) < 21 * 21 * 30
