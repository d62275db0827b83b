"""A fresh, migrated scratch database on the managed cluster, for the benchmarks that build their own store."""
from __future__ import annotations

import psycopg
import sqlalchemy as sa

from cockpit import store
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
