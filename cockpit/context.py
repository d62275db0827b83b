"""One context per process: the settings, the store's engine, the change feed, the tile source.

Built once by whoever starts the process — the web app factory (once per gunicorn worker, after
the fork) or the CLI — and handed down from there, the way Datasette hands its one `Datasette`
object to every view. Nothing below it re-reads the environment or asks again where the store
is: resolving the managed cluster reads its config (and, as root, runs `runuser`), which a
one-second poll of every screen must not do.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cockpit.access import audit, scope
from cockpit.access.people import Person
from cockpit.config import Settings, settings as read_settings
from cockpit.errors import NotConfigured
from cockpit.store import database, replica


@dataclass
class Context:
    settings: Settings
    url: str  # libpq URL of the store (with its password: never shown, see database.describe)
    engine: Engine = field(repr=False)
    writer_url: str | None = field(default=None, repr=False)  # None: writing is not configured
    # A streaming replica the views read from (COCKPIT_READ_URL); None: they read `engine`.
    reader: Engine | None = field(default=None, repr=False)
    _writer: Engine | None = field(default=None, init=False, repr=False)
    _writer_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection whose connection failures are StoreUnavailable. As the web's role it sees
        no per-unit row until a scope is put on it: use `for_person(...).connect()`."""
        with database.connect(self.engine) as conn:
            yield conn

    @contextlib.contextmanager
    def connect_read(self) -> Iterator[sa.Connection]:
        """A connection for the views' reads: the replica when there is one, caught up with what
        the change feed has announced (a screen refreshed by a new token must find the change
        there), else the store itself. Writes (the audit log, sign-ins) never come here."""
        if self.reader is None:
            with self.connect() as conn:
                yield conn
            return
        with database.connect(self.reader) as conn:
            replica.wait_for(conn, self.feed.lsn)
            yield conn

    def for_person(self, person: Person, address: str | None = None) -> "Scoped":
        """This context as seen by one person: every connection carries their scope."""
        return Scoped(self, person, address)

    @contextlib.contextmanager
    def connect_writer(self) -> Iterator[sa.Connection]:
        """A connection as the role that stores events (POST /api/events). Its small pool is
        made on the first write, so a server nobody writes to holds no writer connection.
        NotConfigured without a writer URL."""
        if self.writer_url is None:
            raise NotConfigured("writing events is not configured on this server "
                                "(set COCKPIT_WRITER_DATABASE_URL)")
        with self._writer_lock:
            if self._writer is None:
                s = self.settings
                # the writer stores what it is given wherever it belongs, and its triggers keep
                # every ancestor's rollups: it sees the whole city (migration 0011)
                self._writer = database.make_engine(self.writer_url, pool_size=1, max_overflow=2,
                                                    statement_timeout=s.statement_timeout,
                                                    application_name="cockpit-writer",
                                                    settings={"cockpit.scope_unit": "*"})
        with database.connect(self._writer) as conn:
            yield conn

    @property
    def feed(self):
        """This process's change feed for the store (started on first use; a feed whose thread
        ended is replaced)."""
        from cockpit.metrics.changes import feed_for

        return feed_for(self.url)

    @property
    def tiles(self):
        """The local base-map source (COCKPIT_TILES), or None; reopened if its file changes."""
        from cockpit.maps.tiles import configured_tiles

        return configured_tiles(self.settings.tiles)

    @property
    def timezone(self):
        return self.settings.timezone

    def describe(self) -> str:
        """host:port/db, for operators' messages and logs."""
        return database.describe(self.url)


@dataclass
class Scoped:
    """A Context as one person sees it (made per request by the web layer, per command by the
    CLI). Everything but `connect` is the process's context."""
    base: Context
    person: Person
    address: str | None = None

    def __getattr__(self, name):
        return getattr(self.base, name)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection in one transaction that sees the person's subtree only (row-level
        security); the scope ends with the transaction. It reads from the replica when there
        is one: use `connect_primary` for anything that writes."""
        with self.base.connect_read() as conn:
            scope.apply(conn, self.person, self.address)
            yield conn

    @contextlib.contextmanager
    def connect_primary(self) -> Iterator[sa.Connection]:
        """The same, on the store itself (a reveal and the audit log write)."""
        with self.base.connect() as conn:
            scope.apply(conn, self.person, self.address)
            yield conn

    def audit(self, action: str, **fields) -> None:
        """One audit row, committed on its own (whatever happens to the request after)."""
        with self.connect_primary() as conn:
            audit.record(conn, self.person, action, address=self.address, **fields)
            conn.commit()


def for_web(s: Settings | None = None, url: str | None = None) -> Context:
    """The web app's context: pooled as configured, every query under the statement timeout."""
    s = s or read_settings()
    url = url or database.app_database_url(s)
    eng = database.make_engine(url, pool_size=s.pool_size, max_overflow=s.pool_overflow,
                               statement_timeout=s.statement_timeout, application_name="cockpit-web")
    reader = database.make_engine(s.read_url, pool_size=s.pool_size, max_overflow=s.pool_overflow,
                                  statement_timeout=s.statement_timeout,
                                  application_name="cockpit-web-read") if s.read_url else None
    return Context(s, url, eng, writer_url=database.writer_database_url(s), reader=reader)


def for_admin(s: Settings | None = None, url: str | None = None) -> Context:
    """The CLI's context: the store's owner, no statement timeout (loads and rebuilds take minutes)."""
    s = s or read_settings()
    url = url or database.database_url(s)
    return Context(s, url, database.engine(url))
