"""The store's side of access control: the functions the row-level policies read, the masked and
revealed contacts, the audit log's guards, and the policies themselves (README "Users, roles and
scope", docs/schema.md). Migration 0011 installed this, 0013 the transitions' policy; a later
change here needs a new revision that installs it (tests/test_migrations.py compares a migrated store with this module).

A table added later that holds per-unit rows gets a policy here, in POLICIES, and a revision.
"""
from __future__ import annotations

FUNCTIONS = [
    """
    CREATE FUNCTION cockpit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only';
    END $$""",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION cockpit_refuse_change()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_refuse_change()",
    # '*' is the whole city; anything else (a unit code, nothing) is not.
    """
    CREATE FUNCTION cockpit_scope_all() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT coalesce(current_setting('cockpit.scope_unit', true) = '*', false)
    $$""",
    # A unit and everything below it, as '{ids}@code' (what cockpit.scope_ids caches).
    """
    CREATE FUNCTION cockpit_subtree_ids(unit_code text) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
        SELECT coalesce(array_agg(c.descendant_id), '{}')::text || '@' || unit_code
        FROM units u JOIN unit_closure c ON c.ancestor_id = u.id WHERE u.code = unit_code
    $$""",
    # The unit named by the setting and everything below it; none for an unknown code or no
    # setting. Read from cockpit.scope_ids when that was set for the same code (the app sets both
    # once per request: one closure lookup per request, not one per policy per statement).
    """
    CREATE FUNCTION cockpit_scope_units() RETURNS SETOF integer LANGUAGE plpgsql STABLE SECURITY DEFINER
    ROWS 1000 SET search_path = pg_catalog, public AS $$
    DECLARE
        want text := current_setting('cockpit.scope_unit', true);
        cached text := current_setting('cockpit.scope_ids', true);
        at int := position('@' in coalesce(cached, ''));
    BEGIN
        IF coalesce(want, '') IN ('', '*') THEN
            RETURN;
        END IF;
        IF at > 0 AND substr(cached, at + 1) = want THEN
            RETURN QUERY SELECT unnest(left(cached, at - 1)::int[]);
        ELSE
            RETURN QUERY SELECT c.descendant_id FROM units u JOIN unit_closure c ON c.ancestor_id = u.id
                         WHERE u.code = want;
        END IF;
    END $$""",
    # The heat raster's cells covering the scope's extent: [x0, x1, y0, y1] (NULLs: none).
    """
    CREATE FUNCTION cockpit_scope_cells() RETURNS integer[] LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
        SELECT ARRAY[floor((ST_XMin(b.g) - f.x0) / f.cell)::int, ceil((ST_XMax(b.g) - f.x0) / f.cell)::int - 1,
                     floor((ST_YMin(b.g) - f.y0) / f.cell)::int, ceil((ST_YMax(b.g) - f.y0) / f.cell)::int - 1]
        FROM heat_frame f,
             (SELECT ST_Extent(d.geom)::geometry AS g FROM units u
              JOIN unit_closure c ON c.ancestor_id = u.id JOIN units d ON d.id = c.descendant_id
              WHERE u.code = current_setting('cockpit.scope_unit', true)) b
    $$""",
    # What the app may know of a reporter: masked. 张三 -> 张*, 13812345678 -> 138****5678.
    """
    CREATE FUNCTION cockpit_mask_name(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN t IS NULL OR btrim(t) = '' THEN NULL
                    ELSE left(btrim(t), 1) || repeat('*', greatest(char_length(btrim(t)) - 1, 1)) END
    $$""",
    """
    CREATE FUNCTION cockpit_mask_phone(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN t IS NULL OR btrim(t) = '' THEN NULL
                    WHEN char_length(btrim(t)) >= 8
                        THEN left(btrim(t), 3) || repeat('*', char_length(btrim(t)) - 7) || right(btrim(t), 4)
                    ELSE repeat('*', char_length(btrim(t))) END
    $$""",
    # Masked contacts of the given events that are in the caller's scope.
    """
    CREATE FUNCTION cockpit_masked_contacts(ids bigint[])
    RETURNS TABLE (event_id bigint, reporter_name text, reporter_phone text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        SELECT e.id, cockpit_mask_name(e.reporter_name), cockpit_mask_phone(e.reporter_phone)
        FROM events e
        WHERE e.id = ANY(ids)
          AND (cockpit_scope_all() OR e.grid_id IN (SELECT cockpit_scope_units()))
    $$""",
    # One event's contact in clear, for a duty officer or admin with a reason; always audited.
    """
    CREATE FUNCTION cockpit_reveal_contact(event bigint, reason text)
    RETURNS TABLE (outcome text, reporter_name text, reporter_phone text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    DECLARE
        r record;
        why text := nullif(btrim(coalesce(reason, '')), '');
        role text := current_setting('cockpit.role', true);
        result text;
    BEGIN
        SELECT e.id, e.reporter_name, e.reporter_phone, u.code INTO r
        FROM events e LEFT JOIN units u ON u.id = e.grid_id
        WHERE e.id = event AND (cockpit_scope_all() OR e.grid_id IN (SELECT cockpit_scope_units()));
        result := CASE WHEN r.id IS NULL THEN 'no_event'
                       WHEN coalesce(role, '') NOT IN ('duty', 'admin') THEN 'role'
                       WHEN why IS NULL THEN 'reason'
                       ELSE 'ok' END;
        INSERT INTO audit_log (actor, actor_kind, address, action, unit_code, event_id, outcome, detail)
        VALUES (coalesce(nullif(current_setting('cockpit.actor', true), ''), session_user),
                coalesce(nullif(current_setting('cockpit.actor_kind', true), ''), 'sql'),
                nullif(current_setting('cockpit.address', true), ''), 'reveal_contact', r.code, event,
                CASE WHEN result = 'ok' THEN 'ok' ELSE 'denied' END,
                jsonb_strip_nulls(jsonb_build_object('reason', why,
                                                     'refused', CASE WHEN result = 'ok' THEN NULL ELSE result END)));
        IF result = 'ok' THEN
            RETURN QUERY SELECT result, r.reporter_name, r.reporter_phone;
        ELSE
            RETURN QUERY SELECT result, NULL::text, NULL::text;
        END IF;
    END $$""",
    # Whether a unit exists at all, in scope or not: a denial is recorded as one (never shown)
    """
    CREATE FUNCTION cockpit_unit_exists(unit_code text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        SELECT EXISTS (SELECT 1 FROM units WHERE code = unit_code)
    $$""",
    # Failed sign-ins from one address lately (the app may not read the audit log itself).
    """
    CREATE FUNCTION cockpit_failed_sign_ins(addr text, since timestamptz) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        SELECT count(*) FROM audit_log
        WHERE action = 'sign_in' AND outcome = 'failed' AND address = addr AND at >= since
    $$""",
]

# Only the web app counts failed sign-ins (grants: cockpit/store/roles.py).
PRIVATE = ["REVOKE EXECUTE ON FUNCTION cockpit_failed_sign_ins(text, timestamptz) FROM PUBLIC"]

SCOPED = "((SELECT cockpit_scope_all()) OR {col} IN (SELECT cockpit_scope_units()))"
CITY_ONLY = "((SELECT cockpit_scope_all()))"
CELLS = ("((SELECT cockpit_scope_all()) OR ("
         "cx BETWEEN (SELECT (cockpit_scope_cells())[1]) AND (SELECT (cockpit_scope_cells())[2]) AND "
         "cy BETWEEN (SELECT (cockpit_scope_cells())[3]) AND (SELECT (cockpit_scope_cells())[4])))")

# table -> who may see a row (USING, and WITH CHECK for writes)
POLICIES = {
    "units": SCOPED.format(col="id"),
    "unit_closure": f"({SCOPED.format(col='ancestor_id')} AND {SCOPED.format(col='descendant_id')})",
    "events": SCOPED.format(col="grid_id"),
    # its event's grid, carried on the row (migration 0013; cockpit/store/triggers.py)
    "event_transitions": SCOPED.format(col="grid_id"),
    "rollup_units": SCOPED.format(col="unit_id"),
    "kpi_rollup": SCOPED.format(col="unit_id"),
    "stage_rollup": SCOPED.format(col="unit_id"),
    "unit_day_rollup": SCOPED.format(col="unit_id"),
    "unit_week_rollup": SCOPED.format(col="unit_id"),
    "unit_month_rollup": SCOPED.format(col="unit_id"),
    "warnings": SCOPED.format(col="unit_id"),
    "planted_anomalies": SCOPED.format(col="unit_id"),
    "heat_rollup": CELLS,
    "department_day_rollup": CITY_ONLY,
}
# imports and quarantine (raw rows of import files) are not the web's to read at all: the app
# role has no grant on them (cockpit/store/roles.py). No policy there, because the importer
# COPYs into quarantine and PostgreSQL refuses COPY FROM into a table with row-level security.




def install_sql() -> list[str]:
    """The functions and triggers (what tests/test_migrations.py compares with a migrated store)."""
    return list(FUNCTIONS)


def policy_sql() -> list[str]:
    return [stmt for table, rule in POLICIES.items()
            for stmt in (f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
                         f"CREATE POLICY scope ON {table} USING {rule} WITH CHECK {rule}")]
