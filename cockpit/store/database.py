"""Where the store is and how to reach it; turns connection failures into one-line errors."""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

# Connection trouble (refused, unknown host/db, server gone): a user's problem, not a bug.
CONNECTION_ERRORS = (OperationalError, InterfaceError)

from cockpit.config import Settings, settings
from cockpit.errors import CockpitError, StoreUnavailable
from cockpit.store.cluster import ManagedCluster


def managed_cluster(s: Settings | None = None) -> ManagedCluster:
    return ManagedCluster((s or settings()).state_dir)


def database_url(s: Settings | None = None) -> str:
    """The libpq URI of the store in use, as its owner (migrations, loads, the admin commands):
    COCKPIT_DATABASE_URL, else the managed cluster's owner role `cockpit`."""
    s = s or settings()
    return s.database_url or managed_cluster(s).url(role="owner")


def app_database_url(s: Settings | None = None) -> str:
    """The libpq URI the web app uses: COCKPIT_APP_DATABASE_URL, else COCKPIT_DATABASE_URL (an
    operator's store; `cockpit serve` refuses it if that role escapes row-level security), else
    the managed cluster's read-only role `cockpit_app` (cockpit/store/roles.py)."""
    s = s or settings()
    return s.app_database_url or s.database_url or managed_cluster(s).url(role="app")


def as_app_role(url: str, s: Settings | None = None) -> str:
    """Another database of the managed cluster (a test's or a bench's) as the web app's role
    `cockpit_app`, which row-level security binds (its owner is exempt)."""
    app = make_url(managed_cluster(s).url(role="app"))
    return make_url(url).set(username=app.username, password=app.password).render_as_string(hide_password=False)


def writer_database_url(s: Settings | None = None) -> str | None:
    """The libpq URI that stores events POSTed to the API: COCKPIT_WRITER_DATABASE_URL, else the
    managed cluster's role `cockpit_writer`; None for an operator's store (COCKPIT_DATABASE_URL)
    without a writer URL: writing through the API is then not configured."""
    s = s or settings()
    if s.writer_database_url:
        return s.writer_database_url
    if s.database_url:
        return None
    cluster = managed_cluster(s)
    # a cluster made before the writer role gets it with the next `cockpit db up`
    return cluster.url(role="writer") if cluster.secret_path("writer").exists() else None


def sqlalchemy_url(libpq_url: str) -> sa.URL:
    try:
        url = make_url(libpq_url)
    except ArgumentError:
        raise CockpitError(f"not a database URL: {libpq_url!r} (expected postgresql://user@host:port/dbname)")
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise CockpitError(f"the store must be PostgreSQL + PostGIS, not {url.get_backend_name()!r}")
    return url.set(drivername="postgresql+psycopg")


def libpq_url(url: str) -> str:
    """The same URL as libpq reads it: a store given in SQLAlchemy's form (postgresql+psycopg://)
    works wherever psycopg connects by itself (the change feed), not only through an engine."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def describe(url: str) -> str:
    """host:port/db of a URL, without its password, for messages."""
    try:
        u = make_url(url)
    except ArgumentError:
        return url
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


def first_line(exc: Exception) -> str:
    """PostgreSQL's own first line of complaint, without the driver's wrapping."""
    orig = getattr(exc, "orig", None) or exc
    first = next((ln.strip() for ln in str(orig).splitlines() if ln.strip()), type(orig).__name__)
    return first.split(": ", 1)[-1] if first.startswith("connection failed") else first


def connection_error(exc: Exception, url: str) -> StoreUnavailable:
    """One line naming the store and PostgreSQL's own first line of complaint (for operators:
    the web layer logs it and tells a browser only that the store is unavailable)."""
    return StoreUnavailable(f"cannot use the store at {describe(url)}: {first_line(exc)}")


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10, statement_timeout: int = 0,
                application_name: str = "cockpit", settings: dict[str, str] | None = None) -> Engine:
    """An engine for a libpq URL. statement_timeout (seconds, 0: none) and `settings` are set on
    every connection, so they hold for every query made through it."""
    given = {**({"statement_timeout": str(statement_timeout * 1000)} if statement_timeout else {}), **(settings or {})}
    options = " ".join(f"-c {k}={v}" for k, v in given.items()) or None
    return sa.create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"connect_timeout": 5, "application_name": application_name,
                      **({"options": options} if options else {})},
    )


@functools.cache
def _engine_for(url: str) -> Engine:
    _made.add(url)
    return make_engine(url)


def forget_engines() -> None:
    """Drop this process's pooled connections without closing them (after a fork: the parent
    still owns those sockets; a child that used them would interleave its queries with it)."""
    for eng in _engine_list():
        eng.dispose(close=False)
    _engine_for.cache_clear()


def _engine_list() -> list[Engine]:
    return [_engine_for(url) for url in _made]


_made: set[str] = set()


def engine(url: str | None = None) -> Engine:
    return _engine_for(url or database_url())


BULK_LOAD_KEY = "bulk_load"  # in cockpit_state while a bulk load rebuilds keys and indexes


def check(eng: Engine, *, need_schema: bool = True, reloading: bool = False) -> None:
    """Raise a one-line CockpitError unless the server answers, has PostGIS and our schema."""
    url = eng.url.render_as_string(hide_password=True)
    try:
        with eng.connect() as conn:
            has_postgis = conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first()
            has_schema = conn.execute(sa.text("SELECT to_regclass('public.events') IS NOT NULL")).scalar()
            has_state = conn.execute(sa.text("SELECT to_regclass('public.cockpit_state') IS NOT NULL")).scalar()
            unfinished = has_state and conn.execute(
                sa.text("SELECT value FROM cockpit_state WHERE key = :k"), {"k": BULK_LOAD_KEY}).scalar()
    except CONNECTION_ERRORS as exc:
        raise connection_error(exc, url) from None
    if unfinished and not reloading:
        raise CockpitError(f"the last bulk load into {describe(url)} did not finish ({unfinished}): "
                           "run `cockpit demo --replace` again")
    if not has_postgis:
        raise CockpitError(f"the database {describe(url)} has no PostGIS extension: run `cockpit migrate`")
    if need_schema and not has_schema:
        raise CockpitError(f"the database {describe(url)} has no cockpit schema: run `cockpit migrate`")


@contextlib.contextmanager
def connect(eng: Engine | None = None) -> Iterator[sa.Connection]:
    """A connection whose driver errors become one-line CockpitErrors."""
    eng = eng or engine()
    try:
        with eng.connect() as conn:
            yield conn
    except CONNECTION_ERRORS as exc:
        raise connection_error(exc, eng.url.render_as_string(hide_password=True)) from None
