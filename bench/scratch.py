"""What the benchmarks share: a fresh, migrated scratch database on the managed cluster, and a
browser session signed in to a served cockpit."""
from __future__ import annotations

import psycopg
import requests
import sqlalchemy as sa

from cockpit import store
from cockpit.access import users
from cockpit.store import migrate


def fresh_store(name: str) -> sa.Engine:
    """Database `name` dropped if it exists, created empty and migrated to head."""
    server = store.managed_cluster().up()
    admin = sa.make_url(server).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    eng = store.engine(sa.make_url(server).set(database=name).render_as_string(hide_password=False))
    migrate.upgrade(eng)
    return eng


def signed_in(base: str, owner_url: str, name: str, role: str = "admin", scope: str | None = None) -> requests.Session:
    """A browser session of account `name` (made if missing, as the store's owner), signed in to
    the cockpit served at `base` through a one-time link."""
    with store.engine(owner_url).begin() as conn:
        if conn.execute(sa.text("SELECT 1 FROM users WHERE name = :n"), {"n": name}).first() is None:
            users.create(conn, name, role, scope)
        token = users.issue_link(conn, name)
    session = requests.Session()
    answer = session.get(f"{base}/?token={token}", allow_redirects=False, timeout=30)
    if answer.status_code != 302:
        raise SystemExit(f"bench: signing in {name} failed: HTTP {answer.status_code}")
    return session
