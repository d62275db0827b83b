"""Settings, all from the environment so `make run`, tests and CI configure the same way.

COCKPIT_DATABASE_URL  libpq URI of an existing store; unset -> the project-managed cluster
COCKPIT_WRITER_DATABASE_URL  with COCKPIT_DATABASE_URL: the same store as a role that may store
                      events (POST /api/events; grants: cockpit/store/roles.py); unset -> that
                      endpoint answers 503. The managed cluster has its own (cockpit_writer).
COCKPIT_APP_DATABASE_URL  with COCKPIT_DATABASE_URL: the same store as the role the web app reads
                      as, which must not own the tables nor bypass row-level security (README
                      "Users, roles and scope"); `cockpit serve` refuses a role that would see
                      every district. The managed cluster has its own (cockpit_app).
COCKPIT_READ_URL      a streaming replica of the store, as the web app's role: the screens read
                      from it; sign-ins, the audit log and the change feed (LISTEN does not work
                      on a standby) stay on the store itself (docs/scaling.md)
COCKPIT_STATE_DIR     where the managed cluster lives (default: <repo>/.cockpit)
COCKPIT_TIMEZONE      the city's local time zone (default Asia/Shanghai)
COCKPIT_LANG          zh (default) or en
COCKPIT_TILES         optional local raster base map: a folder of {z}/{x}/{y}.png tiles or a
                      .pmtiles file, served by this app at /tiles/{z}/{x}/{y}; unset -> no base map
COCKPIT_WALL_ROTATE   seconds the wall (/wall) stays on each district before the next (default 30;
                      0 stops the rotation); a page's ?rotate=N overrides it

Serving (`cockpit serve`; flags of the same name override them):
COCKPIT_WORKERS            gunicorn worker processes (default 2)
COCKPIT_THREADS            threads per worker that run the app (default 4); connections are held
                           by each worker's event loop, not by these threads (cockpit/serve.py)
COCKPIT_POOL_SIZE          pooled store connections kept per worker (default 5)
COCKPIT_POOL_OVERFLOW      extra connections a worker may open at a peak (default 10)
COCKPIT_STATEMENT_TIMEOUT  seconds any one query of the web app may run before PostgreSQL
                           cancels it (default 30; 0: no limit), so no request holds a worker
                           for minutes; the admin commands (demo, migrate, rollup) have none

Security headers (cockpit/callbacks/headers.py):
COCKPIT_FRAME_ANCESTORS      who may show the cockpit inside a frame: origins, comma-separated (e.g.
                             https://portal.city.example for a command centre's portal); unset ->
                             nobody (frame-ancestors 'none')
COCKPIT_FORCE_HTTPS          1: redirect plain HTTP to HTTPS and send Strict-Transport-Security
                             (default 0: intranets serve plain HTTP)

Sign-in (cockpit/callbacks/signin.py; README "Users, roles and scope"):
COCKPIT_SECRET_KEY           signs session cookies; unset -> a random key kept in the state folder
                             (`session-secret`, mode 0600), the same for every worker
COCKPIT_SESSION_IDLE_MINUTES a session unused this long is over (default 30)
COCKPIT_AUTH_HEADER          single sign-on: the header a trusted reverse proxy puts the user's name
                             in (e.g. X-Remote-User); unset -> no single sign-on
COCKPIT_TRUSTED_PROXIES      comma-separated addresses whose COCKPIT_AUTH_HEADER and X-Forwarded-For
                             are believed (default none)

Hotspot warnings (cockpit/hotspots; README "Hotspot warnings"):
COCKPIT_HOTSPOT_INTERVAL     seconds between detection runs in `cockpit serve` (default 600; 0: off)
COCKPIT_HOTSPOT_WINDOWS      surge windows in hours, comma-separated (default 24,168: last day, last week)
COCKPIT_HOTSPOT_WEEKS        weeks of baseline before a window, same hours of the week (default 4)
COCKPIT_HOTSPOT_Q            false discovery rate of surges and clusters, Benjamini-Hochberg (default 0.01)
COCKPIT_HOTSPOT_MIN_COUNT    fewest events in a window for any warning (default 5)
COCKPIT_HOTSPOT_MIN_EXCESS   fewest events above expected for a surge (default 4)
COCKPIT_HOTSPOT_RADIUS_M     recurrence: same place = within this many metres (default 30)
COCKPIT_HOTSPOT_REPEATS      recurrence: this many events or more of one category ... (default 4)
COCKPIT_HOTSPOT_DAYS         ... within this many days (default 14)
COCKPIT_HOTSPOT_CLUSTER_DAYS cluster: Gi* over leaf units' counts of this many days (default 7)
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
    rank_weights: tuple[tuple[str, float], ...] = ()  # (rate, weight) of cockpit.metrics.ranking
    rank_min_volume: int = 30
    hotspot: "HotspotSettings" = None  # type: ignore[assignment]
    app_database_url: str | None = None
    read_url: str | None = None
    secret_key: str | None = None
    session_idle_minutes: int = 30
    auth_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ()  # CSP frame-ancestors sources; () -> 'none'
    force_https: bool = False


@dataclass(frozen=True)
class HotspotSettings:
    interval: int = 600  # seconds
    windows: tuple[int, ...] = (24, 168)  # hours
    weeks: int = 4
    q: float = 0.01
    min_count: int = 5
    min_excess: int = 4
    radius_m: int = 30
    repeats: int = 4
    days: int = 14
    cluster_days: int = 7


def hotspot_settings() -> HotspotSettings:
    raw = os.environ.get("COCKPIT_HOTSPOT_WINDOWS", "").strip()
    windows = HotspotSettings.windows
    if raw:
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and 1 <= int(p) <= 168 for p in parts):
            raise CockpitError(f"COCKPIT_HOTSPOT_WINDOWS={raw!r} must be window lengths in hours (1 to 168), "
                               "comma-separated, e.g. 24,168")
        windows = tuple(sorted({int(p) for p in parts}))
    raw_q = os.environ.get("COCKPIT_HOTSPOT_Q", "").strip()
    q = HotspotSettings.q
    if raw_q:
        try:
            q = float(raw_q)
        except ValueError:
            q = -1.0
        if not 0 < q < 1:
            raise CockpitError(f"COCKPIT_HOTSPOT_Q={raw_q!r} must be a false discovery rate between 0 and 1, e.g. 0.01")
    return HotspotSettings(
        interval=_whole("COCKPIT_HOTSPOT_INTERVAL", 600),
        windows=windows,
        weeks=_whole("COCKPIT_HOTSPOT_WEEKS", 4, "a whole number of weeks, at least 1", 1),
        q=q,
        min_count=_whole("COCKPIT_HOTSPOT_MIN_COUNT", 5, "a whole number of events, at least 1", 1),
        min_excess=_whole("COCKPIT_HOTSPOT_MIN_EXCESS", 4, "a whole number of events, at least 1", 1),
        radius_m=_whole("COCKPIT_HOTSPOT_RADIUS_M", 30, "a whole number of metres, at least 1", 1),
        repeats=_whole("COCKPIT_HOTSPOT_REPEATS", 4, "a whole number of events, at least 2", 2),
        days=_whole("COCKPIT_HOTSPOT_DAYS", 14, "a whole number of days, at least 1", 1),
        cluster_days=_whole("COCKPIT_HOTSPOT_CLUSTER_DAYS", 7, "a whole number of days, at least 1", 1),
    )


def switched_off(name: str) -> bool:
    """A bench's switch for the plain way (COCKPIT_VIEW_CACHE=0, COCKPIT_REPORTS_APART=0)."""
    return os.environ.get(name, "1").strip().lower() in ("0", "off", "no", "false")


def _whole(name: str, default: int, what: str = "a whole number of seconds (0 turns it off)",
           least: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        raise CockpitError(f"{name}={raw!r} must be {what}")
    return int(raw)


RANK_WEIGHT_NAMES = ("closure", "on_time", "satisfaction")  # the three rates of 一量三率
DEFAULT_RANK_WEIGHTS = "closure=0.3,on_time=0.4,satisfaction=0.3"


def rank_weights(text: str) -> tuple[tuple[str, float], ...]:
    """COCKPIT_RANK_WEIGHTS: NAME=WEIGHT pairs, each rate at most once, weights >= 0 summing to 1
    (a rate left out weighs 0), so a score stays on the 0-100 scale the page explains."""
    weights: dict[str, float] = {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in RANK_WEIGHT_NAMES or name in weights:
            raise CockpitError(f"COCKPIT_RANK_WEIGHTS={text!r}: write each of {', '.join(RANK_WEIGHT_NAMES)} "
                               f"at most once as NAME=WEIGHT, e.g. {DEFAULT_RANK_WEIGHTS}")
        try:
            weights[name] = float(value)
        except ValueError:
            weights[name] = float("nan")
        if not 0 <= weights[name] <= 1:
            raise CockpitError(f"COCKPIT_RANK_WEIGHTS={text!r}: {name}={value.strip()!r} is not a weight from 0 to 1")
    if abs(sum(weights.values()) - 1) > 1e-9:
        raise CockpitError(f"COCKPIT_RANK_WEIGHTS={text!r}: the weights add up to {sum(weights.values()):g}, not 1")
    return tuple((n, weights.get(n, 0.0)) for n in RANK_WEIGHT_NAMES)


def frame_ancestors(text: str) -> tuple[str, ...]:
    """COCKPIT_FRAME_ANCESTORS: origins (scheme://host[:port], a host, *.host) or 'self'."""
    sources = tuple(x for x in text.replace(",", " ").split() if x)
    for x in sources:
        if x != "'self'" and (not x.isascii() or any(c in x for c in ";'\"")):
            raise CockpitError(f"COCKPIT_FRAME_ANCESTORS={text!r}: {x!r} is not an origin; write origins such as "
                               "https://portal.city.example, comma-separated, or 'self'")
    return sources


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
        rank_weights=rank_weights(os.environ.get("COCKPIT_RANK_WEIGHTS", "").strip() or DEFAULT_RANK_WEIGHTS),
        rank_min_volume=_whole("COCKPIT_RANK_MIN_VOLUME", 30, "a whole number of events (0: rank every unit with events)"),
        hotspot=hotspot_settings(),
        app_database_url=os.environ.get("COCKPIT_APP_DATABASE_URL") or None,
        read_url=os.environ.get("COCKPIT_READ_URL") or None,
        secret_key=os.environ.get("COCKPIT_SECRET_KEY") or None,
        session_idle_minutes=_whole("COCKPIT_SESSION_IDLE_MINUTES", 30, "a whole number of minutes, at least 1", 1),
        auth_header=(os.environ.get("COCKPIT_AUTH_HEADER") or "").strip() or None,
        trusted_proxies=tuple(a.strip() for a in os.environ.get("COCKPIT_TRUSTED_PROXIES", "").split(",") if a.strip()),
        frame_ancestors=frame_ancestors(os.environ.get("COCKPIT_FRAME_ANCESTORS", "")),
        force_https=_whole("COCKPIT_FORCE_HTTPS", 0, "0 or 1") == 1,
    )
