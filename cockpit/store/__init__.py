"""The store: where it is and how to reach it (database.py), the managed local cluster
(cluster.py), who may do what (roles.py), the schema, its migrations and bulk loading."""
from cockpit.store.database import (BULK_LOAD_KEY, CONNECTION_ERRORS, _engine_for, app_database_url,  # noqa: F401
                                    as_app_role,
                                    check, connect, connection_error, database_url, describe, engine,
                                    first_line, forget_engines, make_engine, managed_cluster,
                                    writer_database_url)
