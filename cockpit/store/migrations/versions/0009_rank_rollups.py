"""ranking rollups: KPI counts per event-holding unit and day / week / month, per department and day

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

The rankings (cockpit/metrics/ranking.py) rank all units of a level, grids included, over 8
periods at once (rank change and trend). kpi_rollup only holds units with leaves two levels
below, so grids and communities were read from raw events: 7 s for 8 months of 3,000 grids at
10 M events. These tables hold the counts of kpi.CONDITIONS per unit holding the events
(events.grid_id) and local day, per such unit and local ISO week and month, and per department
and local day, keyed by day first (a ranking reads all units of a few days). The statement
triggers on events that keep kpi_rollup keep them too (re-installed here with the upserts
added); cockpit_rank_rollups_fill() fills them (here, and from cockpit_rollup_rebuild()).

The SQL is frozen below, as cockpit/metrics/rollup.py rendered it when this was written.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

COUNTS = ('volume', 'closed', 'closed_on_time', 'rated', 'satisfied')
TABLES = (("unit_day_rollup", "unit_id", "local day"),
          ("unit_week_rollup", "unit_id", "Monday of the local ISO week"),
          ("unit_month_rollup", "unit_id", "first local day of the month"),
          ("department_day_rollup", "department_id", "local day"))

INSTALL = (
    """
    CREATE OR REPLACE FUNCTION cockpit_rank_rollups_fill() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        -- the day rollups from all events; weeks and months from the days
        TRUNCATE unit_day_rollup, unit_week_rollup, unit_month_rollup, department_day_rollup;
        INSERT INTO unit_day_rollup (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, count(*), count(*) FILTER (WHERE d.closed_at IS NOT NULL), count(*) FILTER (WHERE d.closed_at <= d.deadline_at), count(*) FILTER (WHERE d.rating IS NOT NULL), count(*) FILTER (WHERE d.rating >= 4)
        FROM events AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2 ORDER BY 2;
        INSERT INTO unit_week_rollup (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT unit_id, date_trunc('week', day)::date, sum(volume), sum(closed), sum(closed_on_time), sum(rated), sum(satisfied)
        FROM unit_day_rollup GROUP BY 1, 2 ORDER BY 2;
        INSERT INTO unit_month_rollup (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT unit_id, date_trunc('month', day)::date, sum(volume), sum(closed), sum(closed_on_time), sum(rated), sum(satisfied)
        FROM unit_day_rollup GROUP BY 1, 2 ORDER BY 2;
        INSERT INTO department_day_rollup (department_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.department_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, count(*), count(*) FILTER (WHERE d.closed_at IS NOT NULL), count(*) FILTER (WHERE d.closed_at <= d.deadline_at), count(*) FILTER (WHERE d.rating IS NOT NULL), count(*) FILTER (WHERE d.rating >= 4)
        FROM events AS d WHERE d.department_id IS NOT NULL GROUP BY 1, 2 ORDER BY 2;
    END $$""",
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
        INSERT INTO unit_day_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO unit_week_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, date_trunc('week', (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone')))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO unit_month_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, date_trunc('month', (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone')))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO department_day_rollup AS r (department_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.department_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows) AS d WHERE d.department_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, department_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
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
        INSERT INTO unit_day_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO unit_week_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, date_trunc('week', (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone')))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO unit_month_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, date_trunc('month', (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone')))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO department_day_rollup AS r (department_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.department_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.department_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, department_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
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
        INSERT INTO unit_day_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO unit_week_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, date_trunc('week', (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone')))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO unit_month_rollup AS r (unit_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.grid_id, date_trunc('month', (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone')))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.grid_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, unit_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        INSERT INTO department_day_rollup AS r (department_id, day, volume, closed, closed_on_time, rated, satisfied)
        SELECT d.department_id, (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date, coalesce(sum(d.sign), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.closed_at <= d.deadline_at), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating IS NOT NULL), 0), coalesce(sum(d.sign) FILTER (WHERE d.rating >= 4), 0)
        FROM (SELECT *, -1 AS sign FROM old_rows) AS d WHERE d.department_id IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, department_id) DO UPDATE SET volume = r.volume + excluded.volume, closed = r.closed + excluded.closed, closed_on_time = r.closed_on_time + excluded.closed_on_time, rated = r.rated + excluded.rated, satisfied = r.satisfied + excluded.satisfied;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM kpi_rollup;
        DELETE FROM stage_rollup;
        DELETE FROM unit_day_rollup; DELETE FROM unit_week_rollup; DELETE FROM unit_month_rollup; DELETE FROM department_day_rollup;
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
        PERFORM cockpit_rank_rollups_fill();
    END $$""",
)

# the definitions of 0004 / 0002 that INSTALL replaced, restored by downgrade
RESTORE = (
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
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM kpi_rollup;
        DELETE FROM stage_rollup;
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
)

FILL_IF_BUILT = """
    DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM cockpit_state WHERE key = 'timezone') THEN
            PERFORM cockpit_rank_rollups_fill();
        END IF;
    END $$"""


def upgrade() -> None:
    for name, key, day_comment in TABLES:
        op.create_table(
            name,
            sa.Column("day", sa.Date, nullable=False, comment=day_comment),
            sa.Column(key, sa.Integer, nullable=False),
            *(sa.Column(c, sa.Integer, nullable=False, server_default="0") for c in COUNTS),
            sa.PrimaryKeyConstraint("day", key, name=f"pk_{name}"),
        )
    for statement in INSTALL:
        op.execute(statement)
    op.execute(FILL_IF_BUILT)


def downgrade() -> None:
    for statement in RESTORE:
        op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS cockpit_rank_rollups_fill()")
    for name, _, _ in TABLES:
        op.drop_table(name)
