"""closed events without a deadline in the rollups; heat leaves out approximate locations

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

- kpi_rollup.closed_no_deadline: closed events without any deadline (they count as not on
  time; the on-time card says how many). A new measure (cockpit.metrics.measures), so the
  rollup functions that add up the measures are installed again and the rollups rebuilt.
- Events whose location is a geocoding fallback (events.location_approximate, 0007) count in
  KPIs but not in the heat rollup: cockpit_heat_rebuild and cockpit_heat_events skip them, and
  an UPDATE that flips the flag moves the event's weight out of (or back into) its cell. The
  heat rollup is counted again.

The SQL is frozen below (no import of cockpit.metrics), as in 0003 and 0004: what
cockpit.metrics.rollup.install_sql() and cockpit.metrics.heat.install_sql() rendered for these
functions when this revision was written (UP) and before it (DOWN). "\x20" keeps a trailing space.
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ADD_COLUMN = "ALTER TABLE kpi_rollup ADD COLUMN closed_no_deadline integer DEFAULT '0' NOT NULL"
DROP_COLUMN = "ALTER TABLE kpi_rollup DROP COLUMN closed_no_deadline"

UP = (
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed, closed_no_deadline)\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL AND d.deadline_at IS NULL), 0) AS closed_no_deadline
        FROM (SELECT *, 1 AS sign FROM new_rows) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied, at_community = r.at_community + excluded.at_community, at_street = r.at_street + excluded.at_street, at_district = r.at_district + excluded.at_district, status_reported = r.status_reported + excluded.status_reported, status_dispatched = r.status_dispatched + excluded.status_dispatched, status_handling = r.status_handling + excluded.status_handling, status_follow_up = r.status_follow_up + excluded.status_follow_up, status_closed = r.status_closed + excluded.status_closed, closed_no_deadline = r.closed_no_deadline + excluded.closed_no_deadline;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed, closed_no_deadline)\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL AND d.deadline_at IS NULL), 0) AS closed_no_deadline
        FROM (SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied, at_community = r.at_community + excluded.at_community, at_street = r.at_street + excluded.at_street, at_district = r.at_district + excluded.at_district, status_reported = r.status_reported + excluded.status_reported, status_dispatched = r.status_dispatched + excluded.status_dispatched, status_handling = r.status_handling + excluded.status_handling, status_follow_up = r.status_follow_up + excluded.status_follow_up, status_closed = r.status_closed + excluded.status_closed, closed_no_deadline = r.closed_no_deadline + excluded.closed_no_deadline;
        INSERT INTO stage_rollup AS r (unit_id, day, stage, bucket, n)
        SELECT unit_id, day, stage, bucket, sum(n) FROM (
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           -1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t WHERE t.event_id IN (SELECT id FROM (SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) x)) t
    JOIN (SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) e ON e.id = t.event_id
    JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4 UNION ALL\x20
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t WHERE t.event_id IN (SELECT id FROM (SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) x)) t
    JOIN (SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) e ON e.id = t.event_id
    JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4) s GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, stage, bucket) DO UPDATE SET n = r.n + excluded.n;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed, closed_no_deadline)\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL AND d.deadline_at IS NULL), 0) AS closed_no_deadline
        FROM (SELECT *, -1 AS sign FROM old_rows) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied, at_community = r.at_community + excluded.at_community, at_street = r.at_street + excluded.at_street, at_district = r.at_district + excluded.at_district, status_reported = r.status_reported + excluded.status_reported, status_dispatched = r.status_dispatched + excluded.status_dispatched, status_handling = r.status_handling + excluded.status_handling, status_follow_up = r.status_follow_up + excluded.status_follow_up, status_closed = r.status_closed + excluded.status_closed, closed_no_deadline = r.closed_no_deadline + excluded.closed_no_deadline;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM rollup_units;
        INSERT INTO rollup_units (unit_id)\x20
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = d.id)
        GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2;
        TRUNCATE kpi_rollup, stage_rollup;
        -- events are added up once per grid's lowest rolled-up unit, then carried up the tree
        CREATE TEMP TABLE lowest ON COMMIT DROP AS
            SELECT DISTINCT ON (cl.descendant_id) cl.descendant_id AS grid_id, cl.ancestor_id AS unit_id
            FROM unit_closure cl JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
            ORDER BY cl.descendant_id, cl.depth;
        ANALYZE lowest;
        CREATE TEMP TABLE base ON COMMIT DROP AS\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL AND d.deadline_at IS NULL), 0) AS closed_no_deadline
        FROM (SELECT e.*, 1 AS sign FROM events e) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN lowest cl(descendant_id, ancestor_id) ON cl.descendant_id = d.grid_id
        GROUP BY 1, 2, 3, 4;
        ANALYZE base;
        INSERT INTO kpi_rollup (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed, closed_no_deadline)
        SELECT cl.ancestor_id, b.day, b.grp, b.source, sum(b.volume), sum(b.closed), sum(b.closed_on_time), sum(b.rated), sum(b.satisfied), sum(b.at_community), sum(b.at_street), sum(b.at_district), sum(b.status_reported), sum(b.status_dispatched), sum(b.status_handling), sum(b.status_follow_up), sum(b.status_closed), sum(b.closed_no_deadline)
        FROM base b JOIN unit_closure cl ON cl.descendant_id = b.unit_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4;
        CREATE TEMP TABLE stage_base ON COMMIT DROP AS\x20
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t) t
    JOIN events e ON e.id = t.event_id
    JOIN lowest cl(descendant_id, ancestor_id) ON cl.descendant_id = e.grid_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4;
        ANALYZE stage_base;
        INSERT INTO stage_rollup (unit_id, day, stage, bucket, n)
        SELECT cl.ancestor_id, b.day, b.stage, b.bucket, sum(b.n)
        FROM stage_base b JOIN unit_closure cl ON cl.descendant_id = b.unit_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4;
        DROP TABLE lowest, base, stage_base;
    END $$""",
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
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed)\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed
        FROM (SELECT *, 1 AS sign FROM new_rows) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied, at_community = r.at_community + excluded.at_community, at_street = r.at_street + excluded.at_street, at_district = r.at_district + excluded.at_district, status_reported = r.status_reported + excluded.status_reported, status_dispatched = r.status_dispatched + excluded.status_dispatched, status_handling = r.status_handling + excluded.status_handling, status_follow_up = r.status_follow_up + excluded.status_follow_up, status_closed = r.status_closed + excluded.status_closed;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed)\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed
        FROM (SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied, at_community = r.at_community + excluded.at_community, at_street = r.at_street + excluded.at_street, at_district = r.at_district + excluded.at_district, status_reported = r.status_reported + excluded.status_reported, status_dispatched = r.status_dispatched + excluded.status_dispatched, status_handling = r.status_handling + excluded.status_handling, status_follow_up = r.status_follow_up + excluded.status_follow_up, status_closed = r.status_closed + excluded.status_closed;
        INSERT INTO stage_rollup AS r (unit_id, day, stage, bucket, n)
        SELECT unit_id, day, stage, bucket, sum(n) FROM (
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           -1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t WHERE t.event_id IN (SELECT id FROM (SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) x)) t
    JOIN (SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) e ON e.id = t.event_id
    JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4 UNION ALL\x20
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t WHERE t.event_id IN (SELECT id FROM (SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) x)) t
    JOIN (SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at)) e ON e.id = t.event_id
    JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4) s GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, stage, bucket) DO UPDATE SET n = r.n + excluded.n;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed)\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed
        FROM (SELECT *, -1 AS sign FROM old_rows) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied, at_community = r.at_community + excluded.at_community, at_street = r.at_street + excluded.at_street, at_district = r.at_district + excluded.at_district, status_reported = r.status_reported + excluded.status_reported, status_dispatched = r.status_dispatched + excluded.status_dispatched, status_handling = r.status_handling + excluded.status_handling, status_follow_up = r.status_follow_up + excluded.status_follow_up, status_closed = r.status_closed + excluded.status_closed;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM rollup_units;
        INSERT INTO rollup_units (unit_id)\x20
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = d.id)
        GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2;
        TRUNCATE kpi_rollup, stage_rollup;
        -- events are added up once per grid's lowest rolled-up unit, then carried up the tree
        CREATE TEMP TABLE lowest ON COMMIT DROP AS
            SELECT DISTINCT ON (cl.descendant_id) cl.descendant_id AS grid_id, cl.ancestor_id AS unit_id
            FROM unit_closure cl JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
            ORDER BY cl.descendant_id, cl.depth;
        ANALYZE lowest;
        CREATE TEMP TABLE base ON COMMIT DROP AS\x20
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               coalesce(sum(d.sign), 0) AS volume,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0) AS closed,
               coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0) AS closed_on_time,
               coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0) AS rated,
               coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0) AS satisfied,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'community'), 0) AS at_community,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'street'), 0) AS at_street,
               coalesce(sum(d.sign) FILTER (WHERE d.handling_level = 'district'), 0) AS at_district,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'reported'), 0) AS status_reported,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'dispatched'), 0) AS status_dispatched,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'handling'), 0) AS status_handling,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'follow_up'), 0) AS status_follow_up,
               coalesce(sum(d.sign) FILTER (WHERE d.status = 'closed'), 0) AS status_closed
        FROM (SELECT e.*, 1 AS sign FROM events e) AS d
        JOIN categories c ON c.id = d.category_id
        JOIN lowest cl(descendant_id, ancestor_id) ON cl.descendant_id = d.grid_id
        GROUP BY 1, 2, 3, 4;
        ANALYZE base;
        INSERT INTO kpi_rollup (unit_id, day, grp, source, volume, closed, closed_on_time, rated, satisfied, at_community, at_street, at_district, status_reported, status_dispatched, status_handling, status_follow_up, status_closed)
        SELECT cl.ancestor_id, b.day, b.grp, b.source, sum(b.volume), sum(b.closed), sum(b.closed_on_time), sum(b.rated), sum(b.satisfied), sum(b.at_community), sum(b.at_street), sum(b.at_district), sum(b.status_reported), sum(b.status_dispatched), sum(b.status_handling), sum(b.status_follow_up), sum(b.status_closed)
        FROM base b JOIN unit_closure cl ON cl.descendant_id = b.unit_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4;
        CREATE TEMP TABLE stage_base ON COMMIT DROP AS\x20
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t) t
    JOIN events e ON e.id = t.event_id
    JOIN lowest cl(descendant_id, ancestor_id) ON cl.descendant_id = e.grid_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4;
        ANALYZE stage_base;
        INSERT INTO stage_rollup (unit_id, day, stage, bucket, n)
        SELECT cl.ancestor_id, b.day, b.stage, b.bucket, sum(b.n)
        FROM stage_base b JOIN unit_closure cl ON cl.descendant_id = b.unit_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4;
        DROP TABLE lowest, base, stage_base;
    END $$""",
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

# What rollup.rebuild() and heat.rebuild() run (the rollups' zone is the one recorded in cockpit_state).
REBUILD = ("SELECT cockpit_rollup_rebuild()", "SELECT cockpit_heat_rebuild()")


def upgrade() -> None:
    op.execute(ADD_COLUMN)
    for statement in (*UP, *REBUILD):
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWN:
        op.execute(statement)
    op.execute(DROP_COLUMN)
    op.execute(REBUILD[1])
