"""Put a Person on a connection: what the row-level policies (migration 0011) read.

The settings are transaction-local (`set_config(..., true)`): they end with the request's
transaction, so a pooled connection never carries one request's scope into the next, and a
connection that set nothing sees nothing.
"""
from __future__ import annotations

import sqlalchemy as sa

from cockpit.access.people import Person

_APPLY = sa.text(
    "SELECT set_config('cockpit.scope_unit', :scope, true), set_config('cockpit.actor', :actor, true), "
    "set_config('cockpit.actor_kind', :kind, true), set_config('cockpit.role', :role, true), "
    "set_config('cockpit.address', :address, true), "
    "set_config('cockpit.scope_ids', CASE WHEN :scope = '*' THEN '' ELSE cockpit_subtree_ids(:scope) END, true)")


def apply(conn: sa.Connection, person: Person, address: str | None = None) -> None:
    """One round trip: the settings, and the subtree's ids looked up once for the whole request
    (the policies would otherwise walk the tree for every table of every statement)."""
    conn.execute(_APPLY, {"scope": person.setting, "actor": person.name, "kind": person.kind,
                          "role": person.role, "address": address or ""})


def bypasses_policies(conn: sa.Connection) -> bool:
    """Whether this connection's role is exempt from row-level security (a superuser, a role with
    BYPASSRLS, or the owner of the events table): the web app must never read as such a role."""
    return bool(conn.execute(sa.text(
        "SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, c.relowner, 'USAGE') "
        "FROM pg_roles r, pg_class c WHERE r.rolname = current_user AND c.oid = 'public.events'::regclass"
    )).scalar())
