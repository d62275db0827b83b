"""Server-side heat bins: every event of the window counted once, payload bounded by the raster,
and the hourly heat rollup kept right by the triggers whoever writes."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from cockpit.metrics import heat as heat_mod
from cockpit.metrics.unit_view import unit_by_code
from cockpit.metrics.heat import MAX_CELLS_ACROSS, WINDOWS, heat
from cockpit.demo.simulate import run as simulate

IN_FINE_BOX = """
    SELECT count(*) FROM events e, heat_frame f, units u
    WHERE u.id = :u AND e.reported_at >= :s AND e.reported_at < :e
      AND floor((ST_X(e.location) - f.x0) / f.cell) BETWEEN floor((ST_XMin(u.geom) - f.x0) / f.cell)
                                                        AND floor((ST_XMax(u.geom) - f.x0) / f.cell)
      AND floor((ST_Y(e.location) - f.y0) / f.cell) BETWEEN floor((ST_YMin(u.geom) - f.y0) / f.cell)
                                                        AND floor((ST_YMax(u.geom) - f.y0) / f.cell)"""


def test_heat_counts_every_event_of_the_window_once(demo_engine):
    # not on the hour: the window's two partial hours come from raw events, the rest from the rollup
    end = datetime.now(timezone.utc).replace(minute=37, second=11) - timedelta(hours=1)
    with demo_engine.connect() as conn:
        city = unit_by_code(conn, None)
        district = conn.execute(sa.text("SELECT id FROM units WHERE level = 'district' ORDER BY code LIMIT 1")).one()
        street = conn.execute(sa.text("SELECT id FROM units WHERE level = 'street' ORDER BY code LIMIT 1")).one()
        for name, window in WINDOWS.items():
            everything = conn.execute(sa.text("SELECT count(*) FROM events WHERE reported_at >= :s AND reported_at < :e"),
                                      {"s": end - window, "e": end}).scalar()
            assert heat(conn, city.id, window, end)["events"] == everything > 0, name
            assert heat(conn, city.id, window, end, plain=True)["events"] == everything, name
            for unit_id in (district.id, street.id):
                fast, plain = heat(conn, unit_id, window, end), heat(conn, unit_id, window, end, plain=True)
                assert fast["events"] == conn.execute(sa.text(IN_FINE_BOX),
                                                      {"u": unit_id, "s": end - window, "e": end}).scalar(), name
                assert fast["events"] >= plain["events"]  # the fine box may reach one fine cell further
                for h in (fast, plain):
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


def _rollup(conn) -> dict:
    return {(r.hour, r.cx, r.cy): r.n for r in conn.execute(sa.text("SELECT * FROM heat_rollup WHERE n <> 0"))}


def test_heat_rollup_follows_plain_sql_writers(databases):
    """Inserts (simulate), moved points, moved times, deletes: the rollup equals a rebuild."""
    from cockpit import store
    from cockpit.demo.load import load_demo

    eng = store.engine(databases.create("heat"))
    load_demo(eng, seed=3, grids=40, events=3000, days=10, progress=lambda _: None)
    simulate(eng, rate=200, seconds=1.5, seed=5, progress=lambda _: None)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE events SET location = ST_Translate(location, 0.01, 0) WHERE id % 7 = 0"))
        conn.execute(sa.text("UPDATE events SET reported_at = reported_at - interval '3 hours' WHERE id % 11 = 0"))
        conn.execute(sa.text("DELETE FROM event_transitions WHERE event_id % 13 = 0"))
        conn.execute(sa.text("DELETE FROM events WHERE id % 13 = 0"))
    with eng.begin() as conn:
        kept = _rollup(conn)
        heat_mod.rebuild(conn)
        rebuilt = _rollup(conn)
    recent = datetime.now(timezone.utc) - heat_mod.RETAIN  # the rebuild counts the retained hours only
    assert {k: v for k, v in kept.items() if k[0] >= recent + timedelta(hours=1)} == \
        {k: v for k, v in rebuilt.items() if k[0] >= recent + timedelta(hours=1)}
    assert sum(rebuilt.values()) > 1000
    with eng.begin() as conn:
        conn.execute(sa.text("TRUNCATE events CASCADE"))
        assert _rollup(conn) == {}
