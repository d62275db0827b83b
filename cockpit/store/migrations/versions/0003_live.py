"""live intake: change notification and the hourly heat rollup

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

A statement trigger on events sends NOTIFY cockpit_events (cockpit/metrics/changes.py), and heat_rollup
counts events per UTC hour on a fine raster over the city (cockpit/metrics/heat.py), kept by triggers.

The SQL is frozen below (no import of cockpit.metrics): this revision creates what it created
when it was written, whatever the code says today.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Frozen SQL: what cockpit.metrics.heat and cockpit.metrics.changes rendered when this revision
# was written (install: heat's then changes'; uninstall: changes' then heat's), pasted here so
# that this revision creates the same objects whatever the code says today. Never edit or
# regenerate it: a change to these functions or triggers is a new revision (docs/schema.md §7;
# tests/test_migrations.py fails until there is one). "\x20" keeps a trailing space of the
# generated text, so the function bodies stay byte for byte what they were.
INSTALL = (
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM heat_frame;
        INSERT INTO heat_frame (x0, y0, cell)
        SELECT ST_XMin(b), ST_YMin(b), greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b), 1e-6) / 512
        FROM (SELECT ST_Extent(geom)::geometry AS b FROM units WHERE parent_id IS NULL) x WHERE b IS NOT NULL;
        TRUNCATE heat_rollup;
       \x20
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
           \x20
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
           \x20
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
           \x20
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
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM heat_rollup;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_heat_units_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM heat_frame f,
                (SELECT ST_Extent(geom)::geometry AS b FROM units WHERE parent_id IS NULL) x
            WHERE f.x0 = ST_XMin(x.b) AND f.y0 = ST_YMin(x.b)
              AND f.cell = greatest(ST_XMax(x.b) - ST_XMin(x.b), ST_YMax(x.b) - ST_YMin(x.b), 1e-6) / 512
        ) THEN
            PERFORM cockpit_heat_rebuild();
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER events_heat_insert AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_events()",
    "CREATE TRIGGER events_heat_update AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_events()",
    "CREATE TRIGGER events_heat_delete AFTER DELETE ON events REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_events()",
    "CREATE TRIGGER events_heat_truncate AFTER TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_truncate()",
    "CREATE TRIGGER units_heat_refresh AFTER INSERT OR DELETE OR UPDATE OF parent_id, geom ON units "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_heat_units_changed()",
    """
    CREATE OR REPLACE FUNCTION cockpit_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('cockpit_events', txid_current()::text);
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER events_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_notify_events()",
)

UNINSTALL = (
    "DROP TRIGGER IF EXISTS events_notify ON events",
    "DROP FUNCTION IF EXISTS cockpit_notify_events()",
    "DROP TRIGGER IF EXISTS units_heat_refresh ON units",
    "DROP TRIGGER IF EXISTS events_heat_insert ON events",
    "DROP TRIGGER IF EXISTS events_heat_update ON events",
    "DROP TRIGGER IF EXISTS events_heat_delete ON events",
    "DROP TRIGGER IF EXISTS events_heat_truncate ON events",
    "DROP FUNCTION IF EXISTS cockpit_heat_units_changed()",
    "DROP FUNCTION IF EXISTS cockpit_heat_truncate()",
    "DROP FUNCTION IF EXISTS cockpit_heat_events()",
    "DROP FUNCTION IF EXISTS cockpit_heat_rebuild()",
)

# What heat.rebuild() ran: draw the frame from the city's outline, count the retained hours.
REBUILD = "SELECT cockpit_heat_rebuild()"


def upgrade() -> None:
    op.create_table('heat_rollup',
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False, comment='start of the UTC hour reported'),
    sa.Column('cx', sa.SmallInteger(), nullable=False, comment='fine raster column (heat_frame)'),
    sa.Column('cy', sa.SmallInteger(), nullable=False, comment='fine raster row'),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'cx', 'cy', name=op.f('pk_heat_rollup'))
    )
    op.create_table('heat_frame',
    sa.Column('id', sa.Boolean(), server_default=sa.true(), nullable=False, comment='one row'),
    sa.Column('x0', sa.Float(precision=53), nullable=False),
    sa.Column('y0', sa.Float(precision=53), nullable=False),
    sa.Column('cell', sa.Float(precision=53), nullable=False, comment='degrees per fine cell'),
    sa.CheckConstraint('id', name=op.f('ck_heat_frame_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_heat_frame'))
    )
    for statement in INSTALL:
        op.execute(statement)
    op.execute(REBUILD)


def downgrade() -> None:
    for statement in UNINSTALL:
        op.execute(statement)
    op.drop_table('heat_frame')
    op.drop_table('heat_rollup')
