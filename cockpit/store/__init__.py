"""The store: where it is, how to reach it, its schema and migrations."""
from cockpit.store.database import *  # noqa: F401,F403
from cockpit.store.database import _engine_for  # noqa: F401
