"""Event heat for a moving window, binned on the server so the payload is bounded.

Events of the window inside a unit's bounding box (the map's view of that unit) are counted on
a square raster over that box, at most MAX_CELLS_ACROSS cells along its longer side; what goes
to the browser is one weighted point per non-empty cell (its centre), whatever the number of
events: at most MAX_CELLS_ACROSS² points (~140 kB of JSON for a week of a 10 M-event city).

Fast path (`heat_rollup`): events are counted per UTC hour on one fine raster laid over the
whole city (FINE_CELLS across its longer side, ~100 m cells for a 50 km city), kept by
triggers for any writer like the KPI rollups. A window then reads its whole hours from the
rollup, coarsened to the view's raster, plus the raw events of the partial hours at its two
ends (an hour of events at most, through ix_events_reported_at). The rollup keeps RETAIN
of hours (windows reach back 7 days, the replay 24 h); older windows read raw events.

Bins of the fast path are the fine cells grouped by whole numbers, so a view's cells are a
whole number of fine cells wide: a cell may be up to one fine cell wider than the plain
path's, and the box is the fine cells that touch the unit's box.

Events whose location is a geocoding fallback (events.location_approximate) are in neither
path: their point says where the geocoder gave up, not where the event is.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from cockpit.store.schema import metadata

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
MAX_CELLS_ACROSS = 100
FINE_CELLS = 512
RETAIN = timedelta(days=8)
DECIMALS = 5
HOUR = timedelta(hours=1)

heat_rollup = sa.Table(
    "heat_rollup", metadata,
    sa.Column("hour", sa.DateTime(timezone=True), primary_key=True, comment="start of the UTC hour reported"),
    sa.Column("cx", sa.SmallInteger, primary_key=True, comment="fine raster column (heat_frame)"),
    sa.Column("cy", sa.SmallInteger, primary_key=True, comment="fine raster row"),
    sa.Column("n", sa.Integer, nullable=False),
)

heat_frame = sa.Table(
    "heat_frame", metadata,
    sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true(), comment="one row"),
    sa.Column("x0", sa.Float(53), nullable=False),
    sa.Column("y0", sa.Float(53), nullable=False),
    sa.Column("cell", sa.Float(53), nullable=False, comment="degrees per fine cell"),
    sa.CheckConstraint("id", name="one_row"),
)

# -- kept by triggers ---------------------------------------------------------------------------

_CELL = """floor((ST_X({p}) - f.x0) / f.cell)::int AS cx, floor((ST_Y({p}) - f.y0) / f.cell)::int AS cy"""


def _counted(rows: str, sign: int) -> str:
    return f"""
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, {_CELL.format(p="d.location")},
               {sign} * count(*) AS n
        FROM {rows} d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL AND NOT d.location_approximate
        GROUP BY 1, 2, 3"""


def _upsert(select_sql: str) -> str:
    return f"""
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM ({select_sql}) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n"""


KEPT_FROM = f"now() - interval '{RETAIN.days} days 1 hour'"  # hours before this are dropped


def added_sql(rows: str) -> list[str]:
    """Count the events in relation `rows` into heat_rollup and drop expired hours: what the INSERT
    trigger runs on its new rows, and what a bulk import runs once on the rows it inserted unseen."""
    return [_upsert(_counted(rows, 1)), f"DELETE FROM heat_rollup WHERE hour < {KEPT_FROM}"]


def added_kept_sql(rows: str) -> list[str]:
    """added_sql's net effect, counting only the rows of hours it keeps (a bulk import's rows are
    mostly older than the retention: counting them only to delete them is wasted work)."""
    kept = f"(SELECT * FROM {rows} WHERE date_trunc('hour', reported_at, 'UTC') >= {KEPT_FROM})"
    return [_upsert(_counted(kept, 1)), added_sql(rows)[1]]


def install_sql() -> list[str]:
    moved = ("(SELECT {side}.* FROM old_rows o JOIN new_rows n ON n.id = o.id "
             "WHERE (o.location, o.reported_at, o.location_approximate) "
             "IS DISTINCT FROM (n.location, n.reported_at, n.location_approximate))")
    return [
        f"""
    CREATE OR REPLACE FUNCTION cockpit_heat_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM heat_frame;
        INSERT INTO heat_frame (x0, y0, cell)
        SELECT ST_XMin(b), ST_YMin(b), greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b), 1e-6) / {FINE_CELLS}
        FROM (SELECT ST_Extent(geom)::geometry AS b FROM units WHERE parent_id IS NULL) x WHERE b IS NOT NULL;
        TRUNCATE heat_rollup;
        {_upsert(_counted(f"(SELECT * FROM events WHERE reported_at >= now() - interval '{RETAIN.days} days')", 1))};
    END $$""",
        f"""
    CREATE OR REPLACE FUNCTION cockpit_heat_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            {added_sql("new_rows")[0]};
            -- retention, kept by the writers themselves: an index range, empty nearly always
            {added_sql("new_rows")[1]};
        ELSIF TG_OP = 'DELETE' THEN
            {_upsert(_counted("old_rows", -1))};
        ELSE
            {_upsert(_counted(moved.format(side="o"), -1) + " UNION ALL " + _counted(moved.format(side="n"), 1))};
        END IF;
        RETURN NULL;
    END $$""",
        """
    CREATE OR REPLACE FUNCTION cockpit_heat_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM heat_rollup;
        RETURN NULL;
    END $$""",
        # The frame follows the city's outline: a new or moved top-level unit redraws it.
        f"""
    CREATE OR REPLACE FUNCTION cockpit_heat_units_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM heat_frame f,
                (SELECT ST_Extent(geom)::geometry AS b FROM units WHERE parent_id IS NULL) x
            WHERE f.x0 = ST_XMin(x.b) AND f.y0 = ST_YMin(x.b)
              AND f.cell = greatest(ST_XMax(x.b) - ST_XMin(x.b), ST_YMax(x.b) - ST_YMin(x.b), 1e-6) / {FINE_CELLS}
        ) THEN
            PERFORM cockpit_heat_rebuild();
        END IF;
        RETURN NULL;
    END $$""",
        "CREATE TRIGGER events_heat_insert AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_events()",
        "CREATE TRIGGER events_heat_update AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows "
        "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_events()",
        "CREATE TRIGGER events_heat_delete AFTER DELETE ON events REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_events()",
        "CREATE TRIGGER events_heat_truncate AFTER TRUNCATE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_truncate()",
        "CREATE TRIGGER units_heat_refresh AFTER INSERT OR DELETE OR UPDATE OF parent_id, geom ON units "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_units_changed()",
    ]


def uninstall_sql() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS units_heat_refresh ON units",
        *(f"DROP TRIGGER IF EXISTS events_heat_{op} ON events" for op in ("insert", "update", "delete", "truncate")),
        "DROP FUNCTION IF EXISTS cockpit_heat_units_changed()",
        "DROP FUNCTION IF EXISTS cockpit_heat_truncate()",
        "DROP FUNCTION IF EXISTS cockpit_heat_events()",
        "DROP FUNCTION IF EXISTS cockpit_heat_rebuild()",
    ]


def rebuild(conn: sa.Connection) -> None:
    """Redraw the frame from the city's outline and recount the retained hours."""
    conn.execute(sa.text("SELECT cockpit_heat_rebuild()"))


# -- reading ------------------------------------------------------------------------------------

_PLAIN = sa.text("""
    SELECT floor((ST_X(e.location) - :x0) / :cell)::int AS gx,
           floor((ST_Y(e.location) - :y0) / :cell)::int AS gy, count(*) AS n
    FROM events e
    WHERE e.reported_at >= :start AND e.reported_at < :end AND e.location IS NOT NULL AND NOT e.location_approximate
      AND e.location && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)
      AND ST_X(e.location) <= :x1 AND ST_Y(e.location) <= :y1
    GROUP BY 1, 2
""")

# Whole hours from the rollup, the partial hours at both ends from raw events; fine cells
# (cx, cy) inside the view's fine box, grouped `fac` by `fac`.
_FAST = sa.text("""
    WITH f AS (SELECT x0, y0, cell FROM heat_frame),
    fine AS (
        SELECT cx, cy, n FROM heat_rollup
        WHERE hour >= :h0 AND hour < :h1 AND cx BETWEEN :cx0 AND :cx1 AND cy BETWEEN :cy0 AND :cy1
        UNION ALL
        SELECT cx, cy, 1 FROM (
            SELECT floor((ST_X(e.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(e.location) - f.y0) / f.cell)::int AS cy
            FROM events e CROSS JOIN f
            WHERE ((e.reported_at >= :start AND e.reported_at < :h0) OR (e.reported_at >= :h1 AND e.reported_at < :end))
              AND e.location IS NOT NULL AND NOT e.location_approximate
        ) edge WHERE cx BETWEEN :cx0 AND :cx1 AND cy BETWEEN :cy0 AND :cy1
    )
    SELECT (cx - :cx0) / :fac AS gx, (cy - :cy0) / :fac AS gy, sum(n)::int AS n
    FROM fine GROUP BY 1, 2 HAVING sum(n) > 0
""")


def _box(conn: sa.Connection, unit_id: int) -> tuple[float, float, float, float] | None:
    row = conn.execute(sa.text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
                               "FROM units WHERE id = :u AND geom IS NOT NULL"), {"u": unit_id}).first()
    return tuple(row) if row else None


def _hour_ceil(t: datetime) -> datetime:
    floor = t.replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else floor + HOUR


def _payload(start: datetime, end: datetime, cell: float | None, points: list) -> dict:
    return {
        "start": start.isoformat(), "end": end.isoformat(), "cell_degrees": cell,
        "events": sum(p[2] for p in points), "max": max((p[2] for p in points), default=0),
        "points": points,
    }


def heat(conn: sa.Connection, unit_id: int, window: timedelta, end: datetime | None = None,
         across: int = MAX_CELLS_ACROSS, plain: bool = False) -> dict:
    """Weighted cell centres [[lat, lon, n], ...] of events in [end - window, end) over the unit's box."""
    end = (end or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = end - window
    box = _box(conn, unit_id)
    if box is None:
        return _payload(start, end, None, [])
    frame = None if plain else conn.execute(sa.select(heat_frame.c.x0, heat_frame.c.y0, heat_frame.c.cell)).first()
    if frame is None or start < datetime.now(timezone.utc) - RETAIN:
        return _plain(conn, box, start, end, across)
    x0, y0, fine = frame
    cx0, cy0 = math.floor((box[0] - x0) / fine), math.floor((box[1] - y0) / fine)
    cx1, cy1 = math.floor((box[2] - x0) / fine), math.floor((box[3] - y0) / fine)
    fac = max(1, math.ceil(max(cx1 - cx0 + 1, cy1 - cy0 + 1) / across))
    h0, h1 = _hour_ceil(start), end.replace(minute=0, second=0, microsecond=0)
    if h1 < h0:  # the window lies inside one hour: all raw
        h0 = h1 = end
    rows = conn.execute(_FAST, {"h0": h0, "h1": h1, "start": start, "end": end, "fac": fac,
                                "cx0": cx0, "cy0": cy0, "cx1": cx1, "cy1": cy1}).all()
    cell = fine * fac
    ox, oy = x0 + cx0 * fine, y0 + cy0 * fine
    points = [[round(oy + (r.gy + 0.5) * cell, DECIMALS), round(ox + (r.gx + 0.5) * cell, DECIMALS), r.n]
              for r in rows]
    return _payload(start, end, cell, points)


def _plain(conn: sa.Connection, box, start: datetime, end: datetime, across: int) -> dict:
    """The same bins straight from raw events (the unit's own raster; no rollup)."""
    x0, y0, x1, y1 = box
    cell = max(x1 - x0, y1 - y0, 1e-9) / across
    rows = conn.execute(_PLAIN, {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "cell": cell,
                                 "start": start, "end": end}).all()
    points = [[round(y0 + (r.gy + 0.5) * cell, DECIMALS), round(x0 + (r.gx + 0.5) * cell, DECIMALS), int(r.n)]
              for r in rows]
    return _payload(start, end, cell, points)
