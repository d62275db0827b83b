"""Settings, all from the environment so `make run`, tests and CI configure the same way.

COCKPIT_DATABASE_URL  libpq URI of an existing store; unset -> the project-managed cluster
COCKPIT_WRITER_DATABASE_URL  with COCKPIT_DATABASE_URL: the same store as a role that may store
                      events (POST /api/events; grants: cockpit/store/roles.py); unset -> that
                      endpoint answers 503. The managed cluster has its own (cockpit_writer).
COCKPIT_STATE_DIR     where the managed cluster lives (default: <repo>/.cockpit)
COCKPIT_TIMEZONE      the city's local time zone (default Asia/Shanghai)
COCKPIT_LANG          zh (default) or en
COCKPIT_TILES         optional local raster base map: a folder of {z}/{x}/{y}.png tiles or a
                      .pmtiles file, served by this app at /tiles/{z}/{x}/{y}; unset -> no base map
COCKPIT_WALL_ROTATE   seconds the wall (/wall) stays on each district before the next (default 30;
                      0 stops the rotation); a page's ?rotate=N overrides it

Serving (`cockpit serve`; flags of the same name override them):
COCKPIT_WORKERS            gunicorn worker processes (default 2)
COCKPIT_THREADS            threads per worker (default 4)
COCKPIT_POOL_SIZE          pooled store connections kept per worker (default 5)
COCKPIT_POOL_OVERFLOW      extra connections a worker may open at a peak (default 10)
COCKPIT_STATEMENT_TIMEOUT  seconds any one query of the web app may run before PostgreSQL
                           cancels it (default 30; 0: no limit), so no request holds a worker
                           for minutes; the admin commands (demo, migrate, rollup) have none
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cockpit.errors import CockpitError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    state_dir: Path
    timezone: ZoneInfo
    lang: str
    tiles: str | None = None
    wall_rotate: int = 30
    workers: int = 2
    threads: int = 4
    pool_size: int = 5
    pool_overflow: int = 10
    statement_timeout: int = 30  # seconds
    writer_database_url: str | None = None


def _whole(name: str, default: int, what: str = "a whole number of seconds (0 turns it off)",
           least: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        raise CockpitError(f"{name}={raw!r} must be {what}")
    return int(raw)


def settings() -> Settings:
    tz_name = os.environ.get("COCKPIT_TIMEZONE", "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CockpitError(f"COCKPIT_TIMEZONE={tz_name!r} is not a known time zone (e.g. Asia/Shanghai)")
    lang = os.environ.get("COCKPIT_LANG", "zh")
    if lang not in ("zh", "en"):
        raise CockpitError(f"COCKPIT_LANG={lang!r} must be 'zh' or 'en'")
    state = Path(os.environ.get("COCKPIT_STATE_DIR") or REPO_ROOT / ".cockpit")
    return Settings(
        database_url=os.environ.get("COCKPIT_DATABASE_URL") or None,
        state_dir=state.resolve(),
        timezone=tz,
        lang=lang,
        tiles=os.environ.get("COCKPIT_TILES") or None,
        wall_rotate=_whole("COCKPIT_WALL_ROTATE", 30),
        workers=_whole("COCKPIT_WORKERS", 2, "a whole number of processes, at least 1", 1),
        threads=_whole("COCKPIT_THREADS", 4, "a whole number of threads, at least 1", 1),
        pool_size=_whole("COCKPIT_POOL_SIZE", 5, "a whole number of connections, at least 1", 1),
        pool_overflow=_whole("COCKPIT_POOL_OVERFLOW", 10, "a whole number of connections"),
        statement_timeout=_whole("COCKPIT_STATEMENT_TIMEOUT", 30),
        writer_database_url=os.environ.get("COCKPIT_WRITER_DATABASE_URL") or None,
    )
