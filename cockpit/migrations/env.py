"""Alembic environment: the connection comes from cockpit.migrate (config.attributes)."""
from alembic import context

from cockpit.schema import metadata


def include_object(obj, name, type_, reflected, compare_to):
    # PostGIS owns spatial_ref_sys and the tiger/topology schemas.
    return not (type_ == "table" and name == "spatial_ref_sys")


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
