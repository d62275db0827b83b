"""Who may do what in the store: the owner role migrates and loads, the app role only reads.

The managed cluster (cockpit/store/cluster.py) has two login roles: `cockpit`, the owner and
superuser that `cockpit migrate`, `cockpit demo` and the other admin commands use, and
`cockpit_app`, the unprivileged role the web app (`cockpit serve`) connects as. What the app
role may do is granted here, in one place; an operator's own store without that role is left
as it is.
"""
from __future__ import annotations

import sqlalchemy as sa

OWNER_ROLE = "cockpit"
APP_ROLE = "cockpit_app"

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
    END IF;
END $$
"""


def grant_app_access(conn: sa.Connection) -> None:
    """Let the app role read this database (no writes, no DDL); nothing if there is no such role."""
    conn.execute(sa.text(_GRANT_APP_ACCESS))
