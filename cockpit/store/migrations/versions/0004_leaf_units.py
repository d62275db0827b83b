"""leaf units: events go to the smallest units, whatever the levels are called

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

A city may have only districts and grids, or streets as its smallest level: the unit that holds
an event is a leaf unit (one with no children), not a unit named 'grid'. The grid trigger and
the rollups' choice of rolled-up units follow that; events no grid took before are placed now,
and the rollups are rebuilt if the rolled-up units change. The comments of events.source (it
said "channel": one name per concept) and events.grid_id say so too.

The SQL is written out here as installed, not imported: a migration must keep doing what it did
when the code that renders it today (cockpit/metrics/rollup.py) moves on. Old and new differ
only in how a unit qualifies ({pick}, {heights}). Downgrading restores the old definitions;
events already placed in a leaf that is not a grid stay there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

RESOLVE_GRID = """
    CREATE OR REPLACE FUNCTION cockpit_resolve_grid() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.location IS NOT NULL AND (
            (TG_OP = 'INSERT' AND NEW.grid_id IS NULL)
            OR (TG_OP = 'UPDATE' AND NEW.location IS DISTINCT FROM OLD.location
                AND NEW.grid_id IS NOT DISTINCT FROM OLD.grid_id)
        ) THEN
            NEW.grid_id := ({pick}
            );
        END IF;
        RETURN NEW;
    END $$
    """
PICK_OLD = """
                SELECT id FROM units
                WHERE level = 'grid' AND ST_Covers(geom, NEW.location)
                ORDER BY id LIMIT 1"""
PICK_NEW = """
                SELECT u.id FROM units u
                WHERE ST_Covers(u.geom, NEW.location)
                  AND NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id)
                ORDER BY u.id LIMIT 1"""

# Events a plain-SQL writer sent before, in a leaf that is not called 'grid': placed now.
PLACE_UNPLACED = """
    UPDATE events e SET grid_id = f.leaf_id
    FROM (
        SELECT x.id, (SELECT u.id FROM units u
                      WHERE ST_Covers(u.geom, x.location)
                        AND NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id)
                      ORDER BY u.id LIMIT 1) AS leaf_id
        FROM events x WHERE x.grid_id IS NULL AND x.location IS NOT NULL
    ) f
    WHERE f.id = e.id AND f.leaf_id IS NOT NULL
    """

ROLLUP_REBUILD = """
    CREATE OR REPLACE FUNCTION cockpit_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM rollup_units;
        INSERT INTO rollup_units (unit_id) {heights};
        TRUNCATE kpi_rollup, stage_rollup;
        -- events are added up once per grid's lowest rolled-up unit, then carried up the tree
        CREATE TEMP TABLE lowest ON COMMIT DROP AS
            SELECT DISTINCT ON (cl.descendant_id) cl.descendant_id AS grid_id, cl.ancestor_id AS unit_id
            FROM unit_closure cl JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
            ORDER BY cl.descendant_id, cl.depth;
        ANALYZE lowest;
        CREATE TEMP TABLE base ON COMMIT DROP AS 
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
        CREATE TEMP TABLE stage_base ON COMMIT DROP AS 
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
    END $$
    """

ROLLUP_UNITS_CHANGED = """
    CREATE OR REPLACE FUNCTION cockpit_rollup_units_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- rebuild when the set of rolled-up units changes, or when a unit moved in the tree
        IF TG_OP = 'UPDATE' OR EXISTS (
            ({heights}) EXCEPT SELECT unit_id FROM rollup_units
        ) OR EXISTS (
            SELECT unit_id FROM rollup_units EXCEPT ({heights})
        ) THEN
            PERFORM cockpit_rollup_rebuild();
        END IF;
        RETURN NULL;
    END $$
    """

# The rolled-up units follow from the rule: rebuild only when the rule in force changes them.
REBUILD_IF_CHANGED = """
    DO $$
    BEGIN
        IF EXISTS (({heights}) EXCEPT SELECT unit_id FROM rollup_units)
           OR EXISTS (SELECT unit_id FROM rollup_units EXCEPT ({heights})) THEN
            PERFORM cockpit_rollup_rebuild();
        END IF;
    END $$
    """
HEIGHTS_OLD = """
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE d.level = 'grid' GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2"""
HEIGHTS_NEW = """
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = d.id)
        GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2"""

SOURCE_COMMENT_OLD = 'channel (渠道)'
SOURCE_COMMENT_NEW = 'source (渠道): how the event came in'
GRID_COMMENT_OLD = 'grid containing location; filled by trigger when NULL; stays NULL outside all grids'
GRID_COMMENT_NEW = ('leaf unit (grid) containing location; filled by trigger when NULL; '
                    'stays NULL outside all leaf units')


def _install(pick: str, heights: str) -> None:
    for statement in (RESOLVE_GRID.format(pick=pick), ROLLUP_REBUILD.format(heights=heights),
                      ROLLUP_UNITS_CHANGED.format(heights=heights)):
        op.execute(statement)


def _comments(source: str, source_was: str, grid: str, grid_was: str) -> None:
    op.alter_column('events', 'source', existing_type=sa.Text(), existing_nullable=False,
                    comment=source, existing_comment=source_was)
    op.alter_column('events', 'grid_id', existing_type=sa.Integer(), existing_nullable=True,
                    comment=grid, existing_comment=grid_was)


def upgrade() -> None:
    _install(PICK_NEW, HEIGHTS_NEW)
    op.execute(PLACE_UNPLACED)
    op.execute(REBUILD_IF_CHANGED.format(heights=HEIGHTS_NEW))
    _comments(SOURCE_COMMENT_NEW, SOURCE_COMMENT_OLD, GRID_COMMENT_NEW, GRID_COMMENT_OLD)


def downgrade() -> None:
    _install(PICK_OLD, HEIGHTS_OLD)
    op.execute(REBUILD_IF_CHANGED.format(heights=HEIGHTS_OLD))
    _comments(SOURCE_COMMENT_OLD, SOURCE_COMMENT_NEW, GRID_COMMENT_OLD, GRID_COMMENT_NEW)
