"""heat leaves out approximate locations

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Events whose location is a geocoding fallback (events.location_approximate, 0007) count in
KPIs but not in the heat rollup: cockpit_heat_rebuild and cockpit_heat_events skip them, and an
UPDATE that flips the flag moves the event's weight out of (or back into) its cell. The heat
rollup is counted again from the events.

The SQL is frozen below (no import of cockpit.metrics), as in 0003: what
cockpit.metrics.heat.install_sql() rendered for these two functions when this revision was
written (UP) and before it (DOWN, as 0003 installed them). "\x20" keeps a trailing space.
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

UP = (
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM heat_frame;
        INSERT INTO heat_frame (x0, y0, cell)
        SELECT ST_XMin(b), ST_YMin(b), greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b), 1e-6) / 512
        FROM (SELECT ST_Extent(geom)::geometry AS b FROM units WHERE parent_id IS NULL) x WHERE b IS NOT NULL;
        TRUNCATE heat_rollup;
\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               1 * count(*) AS n
        FROM (SELECT * FROM events WHERE reported_at >= now() - interval '8 days') d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL AND NOT d.location_approximate
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               1 * count(*) AS n
        FROM new_rows d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL AND NOT d.location_approximate
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
            -- retention, kept by the writers themselves: an index range, empty nearly always
            DELETE FROM heat_rollup WHERE hour < now() - interval '8 days 1 hour';
        ELSIF TG_OP = 'DELETE' THEN
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               -1 * count(*) AS n
        FROM old_rows d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL AND NOT d.location_approximate
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
        ELSE
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               -1 * count(*) AS n
        FROM (SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.location, o.reported_at, o.location_approximate) IS DISTINCT FROM (n.location, n.reported_at, n.location_approximate)) d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL AND NOT d.location_approximate
        GROUP BY 1, 2, 3 UNION ALL\x20
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               1 * count(*) AS n
        FROM (SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.location, o.reported_at, o.location_approximate) IS DISTINCT FROM (n.location, n.reported_at, n.location_approximate)) d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL AND NOT d.location_approximate
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
        END IF;
        RETURN NULL;
    END $$""",
)

DOWN = (
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM heat_frame;
        INSERT INTO heat_frame (x0, y0, cell)
        SELECT ST_XMin(b), ST_YMin(b), greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b), 1e-6) / 512
        FROM (SELECT ST_Extent(geom)::geometry AS b FROM units WHERE parent_id IS NULL) x WHERE b IS NOT NULL;
        TRUNCATE heat_rollup;
\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               1 * count(*) AS n
        FROM (SELECT * FROM events WHERE reported_at >= now() - interval '8 days') d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               1 * count(*) AS n
        FROM new_rows d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
            -- retention, kept by the writers themselves: an index range, empty nearly always
            DELETE FROM heat_rollup WHERE hour < now() - interval '8 days 1 hour';
        ELSIF TG_OP = 'DELETE' THEN
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               -1 * count(*) AS n
        FROM old_rows d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
        ELSE
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
        INSERT INTO heat_rollup AS r (hour, cx, cy, n)
        SELECT hour, cx, cy, sum(n) FROM (
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               -1 * count(*) AS n
        FROM (SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.location, o.reported_at) IS DISTINCT FROM (n.location, n.reported_at)) d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL
        GROUP BY 1, 2, 3 UNION ALL\x20
        SELECT date_trunc('hour', d.reported_at, 'UTC') AS hour, floor((ST_X(d.location) - f.x0) / f.cell)::int AS cx, floor((ST_Y(d.location) - f.y0) / f.cell)::int AS cy,
               1 * count(*) AS n
        FROM (SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.location, o.reported_at) IS DISTINCT FROM (n.location, n.reported_at)) d CROSS JOIN heat_frame f
        WHERE d.location IS NOT NULL
        GROUP BY 1, 2, 3) s
        WHERE cx BETWEEN -32768 AND 32767 AND cy BETWEEN -32768 AND 32767
        GROUP BY 1, 2, 3
        ON CONFLICT (hour, cx, cy) DO UPDATE SET n = r.n + excluded.n;
        END IF;
        RETURN NULL;
    END $$""",
)

# What heat.rebuild() runs: draw the frame from the city's outline, count the retained hours.
REBUILD = "SELECT cockpit_heat_rebuild()"


def upgrade() -> None:
    for statement in UP:
        op.execute(statement)
    op.execute(REBUILD)


def downgrade() -> None:
    for statement in DOWN:
        op.execute(statement)
    op.execute(REBUILD)
