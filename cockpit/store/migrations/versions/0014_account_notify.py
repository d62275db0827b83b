"""accounts notify the listening servers: a worker may keep the accounts it has read

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Every request re-read its account (a user, a wall token), so that disabling a user or revoking
a wall took effect at once: a query per request, ~7 % of a worker's time under 50 screens
(issue 13). Statement triggers on `users` and `wall_tokens` now send NOTIFY on
`cockpit_accounts`; each server's change feed listens (cockpit/metrics/changes.py) and a worker
forgets the accounts it keeps when one arrives (callbacks/signin.py).

This migration is a frozen copy: later changes go into a new revision.
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

UP = [
    """
    CREATE OR REPLACE FUNCTION cockpit_notify_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('cockpit_accounts', '');
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_notify_accounts()",
    "CREATE TRIGGER wall_tokens_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wall_tokens "
    "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_notify_accounts()",
]

DOWN = [
    "DROP TRIGGER wall_tokens_notify ON wall_tokens",
    "DROP TRIGGER users_notify ON users",
    "DROP FUNCTION cockpit_notify_accounts()",
]


def upgrade() -> None:
    for statement in UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWN:
        op.execute(statement)
