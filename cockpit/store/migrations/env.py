"""Alembic environment: the connection comes from cockpit.migrate (config.attributes)."""
from alembic import context

from cockpit.store.migrate import include_object
from cockpit.metrics import heat, rollup  # noqa: F401  (register their tables on the metadata)
from cockpit.store.schema import metadata


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
