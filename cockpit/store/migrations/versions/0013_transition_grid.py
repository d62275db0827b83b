"""transitions carry their event's grid: row-level security without a probe of events per row

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

The policy on `event_transitions` admitted a row when its event was in scope: an EXISTS probe
into events (one month's partition) for every transition read, which doubled a scoped
community's stage histogram and made planning walk every events partition. A transition now
holds its event's `grid_id`, and the policy is the same set lookup as the events' own.

`grid_id` is filled for the rows already there, then kept by triggers: BEFORE INSERT on
transitions for a writer that leaves it out (`WHEN (NEW.grid_id IS NULL)`: writers that send
it, as every path of ours does, call nothing), and AFTER UPDATE on events when an event's grid
changes. Both SECURITY DEFINER: the writer's own scope must not hide the event. The covering
index of an event's transitions includes it, so a scoped reader's stints stay index-only.

This migration is a frozen copy: later changes go into a new revision.
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SCOPED = "((SELECT cockpit_scope_all()) OR {col} IN (SELECT cockpit_scope_units()))"
OLD_POLICY = ("((SELECT cockpit_scope_all()) OR EXISTS (SELECT 1 FROM events e "
              "WHERE e.id = event_id AND e.reported_at = event_reported_at))")

UP = [
    "ALTER TABLE event_transitions ADD COLUMN grid_id integer",
    "COMMENT ON COLUMN event_transitions.grid_id IS "
    "'the event''s grid_id, kept by triggers: what row-level security checks'",
    """
    UPDATE event_transitions t SET grid_id = e.grid_id FROM events e
    WHERE e.id = t.event_id AND e.reported_at = t.event_reported_at AND e.grid_id IS NOT NULL
    """,
    # the policy reads grid_id: in the covering index, a scoped reader's stints stay index-only
    "DROP INDEX ix_event_transitions_event_id_at",
    "CREATE INDEX ix_event_transitions_event_id_at ON event_transitions (event_id, at) "
    "INCLUDE (id, from_status, event_reported_at, grid_id)",
    """
    CREATE OR REPLACE FUNCTION cockpit_transition_grid() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    BEGIN
        NEW.grid_id := (SELECT e.grid_id FROM events e WHERE e.id = NEW.event_id AND e.reported_at = NEW.event_reported_at);
        RETURN NEW;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_event_grid_moved() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    BEGIN
        UPDATE event_transitions t SET grid_id = n.grid_id
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.grid_id IS DISTINCT FROM o.grid_id
          AND t.event_id = n.id AND t.event_reported_at = n.reported_at;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER transitions_grid BEFORE INSERT ON event_transitions "
    "FOR EACH ROW WHEN (NEW.grid_id IS NULL) EXECUTE FUNCTION cockpit_transition_grid()",
    "CREATE TRIGGER events_transitions_grid AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cockpit_event_grid_moved()",
    f"ALTER POLICY scope ON event_transitions USING {SCOPED.format(col='grid_id')} "
    f"WITH CHECK {SCOPED.format(col='grid_id')}",
]

DOWN = [
    f"ALTER POLICY scope ON event_transitions USING {OLD_POLICY} WITH CHECK {OLD_POLICY}",
    "DROP TRIGGER events_transitions_grid ON events",
    "DROP TRIGGER transitions_grid ON event_transitions",
    "DROP FUNCTION cockpit_event_grid_moved()",
    "DROP FUNCTION cockpit_transition_grid()",
    "DROP INDEX ix_event_transitions_event_id_at",
    "ALTER TABLE event_transitions DROP COLUMN grid_id",
    "CREATE INDEX ix_event_transitions_event_id_at ON event_transitions (event_id, at) "
    "INCLUDE (id, from_status, event_reported_at)",
]


def upgrade() -> None:
    for statement in UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWN:
        op.execute(statement)
