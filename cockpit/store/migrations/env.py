"""Alembic environment: the connection comes from cockpit.migrate (config.attributes).

target_metadata (today's tables, rollup and heat tables included) serves only autogenerate, to
draft a new revision against the code. Revisions never read it, nor anything of cockpit.metrics:
each holds its own frozen DDL and SQL (docs/schema.md §7).
"""
from alembic import context

from cockpit.store.migrate import include_object
from cockpit.metrics import heat, rollup  # noqa: F401  (register their tables on the metadata)
from cockpit.store.schema import metadata


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
