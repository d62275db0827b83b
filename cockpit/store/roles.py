"""Who may do what in the store: the owner role migrates and loads, the app role only reads,
the writer role stores events sent to the API.

The managed cluster (cockpit/store/cluster.py) has three login roles: `cockpit`, the owner and
superuser that `cockpit migrate`, `cockpit demo` and the other admin commands use;
`cockpit_app`, the unprivileged role the web app (`cockpit serve`) reads as; and
`cockpit_writer`, which the web app uses only to store events POSTed to /api/events (opened on
the first such request). What each may do is granted here, in one place; an operator's own
store without those roles is left as it is.
"""
from __future__ import annotations

import sqlalchemy as sa

OWNER_ROLE = "cockpit"
APP_ROLE = "cockpit_app"
WRITER_ROLE = "cockpit_writer"

# What storing an event writes: the importer's own tables (cockpit/ingest/events.py) ...
WRITER_TABLES = ("events", "event_transitions", "categories", "departments", "imports", "quarantine")
# ... and what the triggers on events and event_transitions keep up to date, run as the writer
# (cockpit/metrics/rollup.py with the rankings' rollups, heat.py; the live feed's trigger only sends NOTIFY). heat_rollup
# loses its old hours on every insert, hence DELETE there.
TRIGGER_TABLES = {"kpi_rollup": "INSERT, UPDATE", "stage_rollup": "INSERT, UPDATE",
                  "heat_rollup": "INSERT, UPDATE, DELETE",
                  **{t: "INSERT, UPDATE" for t in ("unit_day_rollup", "unit_week_rollup", "unit_month_rollup",
                                                   "department_day_rollup")}}
# ... and what a duty officer's acknowledgement writes from the web (cockpit.hotspots.store.acknowledge).
ACKNOWLEDGE_TABLES = {"warnings": "UPDATE"}

PERSONAL_COLUMNS = ("reporter_name", "reporter_phone")
SIGN_IN_COLUMNS = ("failed_count", "last_failed_at", "locked_until", "last_sign_in_at", "login_token_hash",
                   "login_token_expires_at")

# Run by `cockpit migrate` (migrate.upgrade) in each database it upgrades, as the role that owns
# the schema. ALTER DEFAULT PRIVILEGES without FOR ROLE applies to that same role, so tables it
# creates later (rollups, a demo --replace) are readable by the app too.
_GRANT_APP_ACCESS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO {APP_ROLE}', current_database());
        GRANT USAGE ON SCHEMA public TO {APP_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {APP_ROLE};
        -- personal data: every column of events but the reporter's (read masked through
        -- cockpit_masked_contacts(), revealed through cockpit_reveal_contact(): migration 0011)
        IF to_regclass('public.audit_log') IS NOT NULL THEN
            REVOKE SELECT ON events FROM {APP_ROLE};
            EXECUTE (SELECT format('GRANT SELECT (%s) ON events TO {APP_ROLE}', string_agg(quote_ident(attname), ', '))
                     FROM pg_attribute WHERE attrelid = 'public.events'::regclass AND attnum > 0
                     AND NOT attisdropped AND attname NOT IN ({", ".join(f"'{c}'" for c in PERSONAL_COLUMNS)}));
            -- raw rows of import files: an operator's business, never the screens'
            REVOKE ALL ON imports, quarantine FROM {APP_ROLE};
            -- every event's key whatever its scope (migration 0012): the key triggers' business
            IF to_regclass('public.event_keys') IS NOT NULL THEN
                REVOKE ALL ON event_keys FROM {APP_ROLE};
            END IF;
            -- the audit trail: written, never read, changed or removed by the app
            REVOKE ALL ON audit_log FROM {APP_ROLE};
            GRANT INSERT ON audit_log TO {APP_ROLE};
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO {APP_ROLE}', pg_get_serial_sequence('public.audit_log', 'id'));
            GRANT EXECUTE ON FUNCTION cockpit_failed_sign_ins(text, timestamptz) TO {APP_ROLE};
            -- signing in moves these; nothing else about an account is the app's to change
            GRANT UPDATE ({", ".join(SIGN_IN_COLUMNS)}) ON users TO {APP_ROLE};
        END IF;
    END IF;
END $$
"""


def grant_app_access(conn: sa.Connection) -> None:
    """Let the app role read this database (no writes, no DDL); nothing if there is no such role."""
    conn.execute(sa.text(_GRANT_APP_ACCESS))


# Reads everything but the token hashes (the web app checks tokens as the app role); writes only
# the tables above; no DDL (PostgreSQL 15 gives PUBLIC no CREATE on schema public), no units.
# TEMPORARY: the importer stages rows in a temporary table. Tables missing at an older revision
# are skipped.
_GRANT_WRITER_ACCESS = f"""
DO $$
DECLARE
    t text;
    seq text;
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {WRITER_ROLE}', current_database());
        GRANT USAGE ON SCHEMA public TO {WRITER_ROLE};
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {WRITER_ROLE};
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {WRITER_ROLE};
        FOREACH t IN ARRAY ARRAY['api_tokens', 'users', 'wall_tokens', 'audit_log'] LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            EXECUTE format('REVOKE ALL ON %I FROM {WRITER_ROLE}', t);
        END LOOP;
        FOREACH t IN ARRAY ARRAY[{", ".join(f"'{t}'" for t in WRITER_TABLES)}] LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            EXECUTE format('GRANT INSERT, UPDATE ON %I TO {WRITER_ROLE}', t);
            seq := pg_get_serial_sequence('public.' || t, 'id');
            IF seq IS NOT NULL THEN
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO {WRITER_ROLE}', seq);
            END IF;
        END LOOP;
        {" ".join(f"IF to_regclass('public.{t}') IS NOT NULL THEN GRANT {what} ON {t} TO {WRITER_ROLE}; END IF;"
                  for t, what in {**TRIGGER_TABLES, **ACKNOWLEDGE_TABLES}.items())}
    END IF;
END $$
"""


def grant_writer_access(conn: sa.Connection) -> None:
    """Let the writer role store events (see above); nothing if there is no such role."""
    conn.execute(sa.text(_GRANT_WRITER_ACCESS))


def grant_access(conn: sa.Connection) -> None:
    """Every login role's grants (run after each `cockpit migrate`)."""
    grant_app_access(conn)
    grant_writer_access(conn)
