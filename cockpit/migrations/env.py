"""Alembic environment: the connection comes from cockpit.migrate (config.attributes)."""
from alembic import context

from cockpit.migrate import include_object
from cockpit import heat, rollup  # noqa: F401  (register their tables on the metadata)
from cockpit.schema import metadata


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
