"""rollups and covering indexes for the drill-down

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Pre-aggregated events for the drill-down, and the triggers that keep them right for any
writer (see cockpit/metrics/rollup.py). Builds them from the events already in the store.

The SQL is frozen below (no import of cockpit.metrics): this revision creates what it created
when it was written, whatever the measures are today.
"""
from alembic import op
import sqlalchemy as sa

from cockpit.config import settings


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Frozen SQL: what cockpit.metrics.rollup's install_sql() and uninstall_sql() rendered from the
# measures when this revision was written, pasted here so that this revision creates the same
# objects whatever the code says today. Never edit or regenerate it: a change to the measures,
# functions or triggers is a new revision (docs/schema.md §7; tests/test_migrations.py fails
# until there is one). "\x20" keeps a trailing space of the generated text, so the function
# bodies stay byte for byte what they were.
INSTALL = (
    """
    CREATE OR REPLACE FUNCTION cockpit_bucket(spent interval) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT least(39, floor(2 * ln(1 + greatest(0, extract(epoch FROM spent)::float8) / 60) / ln(2)))::smallint
    $$""",
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
    CREATE OR REPLACE FUNCTION cockpit_rollup_event_gone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO stage_rollup AS r (unit_id, day, stage, bucket, n)
        SELECT unit_id, day, stage, bucket, sum(n) FROM (
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           -1 * count(*) AS n
    FROM (SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t WHERE t.event_id IN (SELECT id FROM (SELECT OLD.id AS id, OLD.reported_at AS reported_at, OLD.grid_id AS grid_id) x)) t
    JOIN (SELECT OLD.id AS id, OLD.reported_at AS reported_at, OLD.grid_id AS grid_id) e ON e.id = t.event_id
    JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4) s GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, stage, bucket) DO UPDATE SET n = r.n + excluded.n;
        RETURN OLD;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM kpi_rollup;
        DELETE FROM stage_rollup;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_transitions_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO stage_rollup AS r (unit_id, day, stage, bucket, n)
       \x20
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           1 * count(*) AS n
    FROM (SELECT n.*, (SELECT max(p.at) FROM event_transitions p
                         WHERE p.event_id = n.event_id AND (p.at, p.id) < (n.at, n.id)) AS prev_at
                  FROM new_rows n) t
    JOIN events e ON e.id = t.event_id
    JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4
        ON CONFLICT (unit_id, day, stage, bucket) DO UPDATE SET n = r.n + excluded.n;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM rollup_units;
        INSERT INTO rollup_units (unit_id)\x20
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE d.level = 'grid' GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2;
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
    CREATE OR REPLACE FUNCTION cockpit_rollup_units_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- rebuild when the set of rolled-up units changes, or when a unit moved in the tree
        IF TG_OP = 'UPDATE' OR EXISTS (
            (
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE d.level = 'grid' GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2) EXCEPT SELECT unit_id FROM rollup_units
        ) OR EXISTS (
            SELECT unit_id FROM rollup_units EXCEPT (
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE d.level = 'grid' GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2)
        ) THEN
            PERFORM cockpit_rollup_rebuild();
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER events_rollup_insert AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_insert()",
    "CREATE TRIGGER events_rollup_update AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_update()",
    "CREATE TRIGGER events_rollup_delete AFTER DELETE ON events REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_delete()",
    "CREATE TRIGGER events_rollup_gone BEFORE DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION cockpit_rollup_event_gone()",
    "CREATE TRIGGER events_rollup_truncate AFTER TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_truncate()",
    "CREATE TRIGGER transitions_rollup_insert AFTER INSERT ON event_transitions REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_transitions_insert()",
    # after units_closure_refresh (trigger names fire in alphabetical order)
    "CREATE TRIGGER units_rollup_refresh AFTER INSERT OR DELETE OR UPDATE OF parent_id ON units "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_units_changed()",
)

UNINSTALL = (
    "DROP TRIGGER IF EXISTS units_rollup_refresh ON units",
    "DROP TRIGGER IF EXISTS transitions_rollup_insert ON event_transitions",
    "DROP TRIGGER IF EXISTS events_rollup_insert ON events",
    "DROP TRIGGER IF EXISTS events_rollup_update ON events",
    "DROP TRIGGER IF EXISTS events_rollup_delete ON events",
    "DROP TRIGGER IF EXISTS events_rollup_truncate ON events",
    "DROP TRIGGER IF EXISTS events_rollup_gone ON events",
    "DROP FUNCTION IF EXISTS cockpit_rollup_event_gone()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_units_changed()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_rebuild()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_transitions_insert()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_events_insert()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_events_update()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_events_delete()",
    "DROP FUNCTION IF EXISTS cockpit_rollup_events_truncate()",
    "DROP FUNCTION IF EXISTS cockpit_bucket(interval)",
)

# What rollup.rebuild() ran: record the zone whose local days the rollups use, then recompute
# both rollups from the raw tables (with cockpit_rollup_rebuild(), frozen above).
RECORD_TIMEZONE = ("INSERT INTO cockpit_state (key, value) VALUES ('timezone', :tz) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
REBUILD = ("SET LOCAL work_mem = '512MB'", "SELECT cockpit_rollup_rebuild()")


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('kpi_rollup',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('grp', sa.Integer(), nullable=False, comment="category group: the item's parent, or the item"),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('volume', sa.Integer(), server_default='0', nullable=False),
    sa.Column('closed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('closed_on_time', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rated', sa.Integer(), server_default='0', nullable=False),
    sa.Column('satisfied', sa.Integer(), server_default='0', nullable=False),
    sa.Column('at_community', sa.Integer(), server_default='0', nullable=False),
    sa.Column('at_street', sa.Integer(), server_default='0', nullable=False),
    sa.Column('at_district', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status_reported', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status_dispatched', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status_handling', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status_follow_up', sa.Integer(), server_default='0', nullable=False),
    sa.Column('status_closed', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('unit_id', 'day', 'grp', 'source', name=op.f('pk_kpi_rollup'))
    )
    op.create_table('cockpit_state',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_cockpit_state'))
    )
    op.create_table('stage_rollup',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('stage', sa.Text(), nullable=False),
    sa.Column('bucket', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('unit_id', 'day', 'stage', 'bucket', name=op.f('pk_stage_rollup'))
    )
    op.create_table('rollup_units',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_rollup_units_unit_id_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', name=op.f('pk_rollup_units'))
    )
    # ### end Alembic commands ###
    # Covering indexes: small units are answered from raw rows, so let them come from the index.
    op.drop_index('ix_events_grid_id_reported_at', table_name='events')
    op.create_index('ix_events_grid_id_reported_at', 'events', ['grid_id', 'reported_at'], unique=False,
                    postgresql_include=['id', 'category_id', 'source', 'status', 'handling_level',
                                        'closed_at', 'deadline_at', 'rating'])
    op.drop_index('ix_events_open_deadline', table_name='events', postgresql_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_events_open_deadline', 'events', ['grid_id', 'deadline_at'], unique=False,
                    postgresql_include=['category_id', 'source'], postgresql_where=sa.text('closed_at IS NULL'))
    op.drop_index('ix_event_transitions_event_id_at', table_name='event_transitions')
    op.create_index('ix_event_transitions_event_id_at', 'event_transitions', ['event_id', 'at'], unique=False,
                    postgresql_include=['id', 'from_status'])
    for statement in INSTALL:
        op.execute(statement)
    # The time zone is configuration (COCKPIT_TIMEZONE), not code: read when the revision runs.
    op.get_bind().execute(sa.text(RECORD_TIMEZONE), {"tz": settings().timezone.key})
    for statement in REBUILD:
        op.execute(statement)


def downgrade() -> None:
    for statement in UNINSTALL:
        op.execute(statement)
    op.drop_index('ix_event_transitions_event_id_at', table_name='event_transitions')
    op.create_index('ix_event_transitions_event_id_at', 'event_transitions', ['event_id', 'at'], unique=False)
    op.drop_index('ix_events_grid_id_reported_at', table_name='events')
    op.create_index('ix_events_grid_id_reported_at', 'events', ['grid_id', 'reported_at'], unique=False)
    op.drop_index('ix_events_open_deadline', table_name='events', postgresql_where=sa.text('closed_at IS NULL'))
    op.create_index('ix_events_open_deadline', 'events', ['deadline_at'], unique=False,
                    postgresql_where=sa.text('closed_at IS NULL'))
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_table('rollup_units')
    op.drop_table('stage_rollup')
    op.drop_table('cockpit_state')
    op.drop_table('kpi_rollup')
    # ### end Alembic commands ###
