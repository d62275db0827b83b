"""`cockpit migrate`: bring a database to the newest schema with Alembic."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from cockpit.errors import CockpitError
from cockpit.store.database import CONNECTION_ERRORS, connection_error, describe
from cockpit.store.roles import grant_access

MIGRATIONS = Path(__file__).parent / "migrations"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What Alembic compares: our tables, not PostGIS's own spatial_ref_sys, nor the copies of a
    partitioned table's foreign key that PostgreSQL keeps for each partition (migration 0012)."""
    if type_ == "foreign_key_constraint" and reflected and getattr(obj, "referred_table", None) is not None \
            and obj.referred_table.schema == "internal":
        return False
    return not (type_ == "table" and name == "spatial_ref_sys")


def alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def ensure_postgis(conn: sa.Connection, url: str) -> None:
    available = conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).first()
    if not available:
        raise CockpitError(
            f"the server of {describe(url)} has no PostGIS: install it there "
            "(Debian: apt-get install postgresql-<version>-postgis-3)"
        )


def _run(eng: Engine, step, revision: str, after=None) -> None:
    url = eng.url.render_as_string(hide_password=True)
    try:
        with eng.begin() as conn:
            ensure_postgis(conn, url)
            step(alembic_config(conn), revision)
            if after is not None:
                after(conn)
    except CONNECTION_ERRORS as exc:
        raise connection_error(exc, url) from None


def upgrade(eng: Engine, revision: str = "head") -> None:
    """Migrate, then (on every run, so older stores catch up) let the app role read and the
    writer role store events."""
    _run(eng, command.upgrade, revision, after=grant_access)


def downgrade(eng: Engine, revision: str) -> None:
    _run(eng, command.downgrade, revision)


def head() -> str:
    """The newest revision the code has (what `cockpit migrate` brings a store to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current(eng: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
