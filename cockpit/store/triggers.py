"""The store's own triggers, as the code means them today: the unit tree's closure table, and
placing each event in the leaf unit (a unit with no children) that covers its point.

Migrations keep frozen copies of what they installed (0001, then 0004 for the leaf rule);
tests/test_migrations.py checks that a store migrated to head has exactly these definitions,
so a change here needs a new migration revision that installs it.
"""
from __future__ import annotations

# The closure table follows the unit tree whoever edits it. Rebuilt per statement: unit edits
# are rare and small (<= ~40 k units); a depth cap keeps a mistaken cycle finite.
CLOSURE_FUNCTION = """
    CREATE FUNCTION cockpit_refresh_unit_closure() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM unit_closure;
        INSERT INTO unit_closure (ancestor_id, descendant_id, depth)
        WITH RECURSIVE up(ancestor_id, descendant_id, depth) AS (
            SELECT id, id, 0 FROM units
            UNION ALL
            SELECT u.parent_id, up.descendant_id, up.depth + 1
            FROM up JOIN units u ON u.id = up.ancestor_id
            WHERE u.parent_id IS NOT NULL AND up.depth < 32
        )
        SELECT DISTINCT ON (ancestor_id, descendant_id) ancestor_id, descendant_id, depth
        FROM up ORDER BY ancestor_id, descendant_id, depth;
        RETURN NULL;
    END $$
    """
CLOSURE_TRIGGER = """
    CREATE TRIGGER units_closure_refresh
    AFTER INSERT OR DELETE OR UPDATE OF parent_id ON units
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit_refresh_unit_closure()
    """

# Writers may send only a point: the leaf unit is resolved here, for any writer. A point in no
# leaf keeps grid_id NULL (the row is kept, never dropped; see docs/schema.md).
RESOLVE_FUNCTION = """
    CREATE OR REPLACE FUNCTION cockpit_resolve_grid() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.location IS NOT NULL AND (
            (TG_OP = 'INSERT' AND NEW.grid_id IS NULL)
            OR (TG_OP = 'UPDATE' AND NEW.location IS DISTINCT FROM OLD.location
                AND NEW.grid_id IS NOT DISTINCT FROM OLD.grid_id)
        ) THEN
            NEW.grid_id := (
                SELECT u.id FROM units u
                WHERE ST_Covers(u.geom, NEW.location)
                  AND NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id)
                ORDER BY u.id LIMIT 1
            );
        END IF;
        RETURN NEW;
    END $$
    """
RESOLVE_TRIGGER = """
    CREATE TRIGGER events_resolve_grid
    BEFORE INSERT OR UPDATE OF location ON events
    FOR EACH ROW EXECUTE FUNCTION cockpit_resolve_grid()
    """


# (source, external_id) is unique across the months of the partitioned events table through
# event_keys (migration 0012): these keep it, one statement at a time. SECURITY DEFINER: the
# writer role has no grant on event_keys. Paths that switch user triggers off (the bulk import,
# the demo loader) fill it themselves (cockpit/store/partitions.py: fill_event_keys).
KEY_FUNCTIONS = [
    """
    CREATE OR REPLACE FUNCTION cockpit_event_keys_insert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    BEGIN
        INSERT INTO event_keys (source, external_id, event_id) SELECT source, external_id, id FROM new_rows;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_event_keys_update() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                   WHERE (n.source, n.external_id) IS DISTINCT FROM (o.source, o.external_id)) THEN
            DELETE FROM event_keys k USING old_rows o JOIN new_rows n ON n.id = o.id
            WHERE k.source = o.source AND k.external_id = o.external_id
              AND (n.source, n.external_id) IS DISTINCT FROM (o.source, o.external_id);
            INSERT INTO event_keys (source, external_id, event_id)
            SELECT n.source, n.external_id, n.id FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (n.source, n.external_id) IS DISTINCT FROM (o.source, o.external_id);
        END IF;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_event_keys_delete() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    BEGIN
        DELETE FROM event_keys k USING old_rows o WHERE k.source = o.source AND k.external_id = o.external_id;
        RETURN NULL;
    END $$""",
    """
    CREATE OR REPLACE FUNCTION cockpit_event_keys_truncate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    BEGIN
        TRUNCATE event_keys;
        RETURN NULL;
    END $$""",
]

KEY_TRIGGERS = [
    "CREATE TRIGGER events_keys_insert AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_event_keys_insert()",
    "CREATE TRIGGER events_keys_update AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_event_keys_update()",
    "CREATE TRIGGER events_keys_delete AFTER DELETE ON events REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_event_keys_delete()",
    "CREATE TRIGGER events_keys_truncate AFTER TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_event_keys_truncate()",
]


# A transition carries its event's grid_id (migration 0013), so that row-level security admits it
# by the same set lookup as its event instead of probing the event's row for each transition.
# Filled here for a writer that leaves it out (the WHEN keeps writers that send it from calling
# anything), and moved along when an event's grid changes. SECURITY DEFINER: the writer's scope
# must not hide the event from the lookup. Bulk paths switch user triggers off and send it.
TRANSITION_GRID_FUNCTIONS = [
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
]

TRANSITION_GRID_TRIGGERS = [
    "CREATE TRIGGER transitions_grid BEFORE INSERT ON event_transitions "
    "FOR EACH ROW WHEN (NEW.grid_id IS NULL) EXECUTE FUNCTION cockpit_transition_grid()",
    "CREATE TRIGGER events_transitions_grid AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cockpit_event_grid_moved()",
]


def install_sql() -> list[str]:
    return [CLOSURE_FUNCTION, CLOSURE_TRIGGER, RESOLVE_FUNCTION, RESOLVE_TRIGGER, *KEY_FUNCTIONS, *KEY_TRIGGERS,
            *TRANSITION_GRID_FUNCTIONS, *TRANSITION_GRID_TRIGGERS]
