"""Settings, all from the environment so `make run`, tests and CI configure the same way.

COCKPIT_DATABASE_URL  libpq URI of an existing store; unset -> the project-managed cluster
COCKPIT_STATE_DIR     where the managed cluster lives (default: <repo>/.cockpit)
COCKPIT_TIMEZONE      the city's local time zone (default Asia/Shanghai)
COCKPIT_LANG          zh (default) or en
COCKPIT_TILES         optional local raster base map: a folder of {z}/{x}/{y}.png tiles or a
                      .pmtiles file, served by this app at /tiles/{z}/{x}/{y}; unset -> no base map
COCKPIT_WALL_ROTATE   seconds the wall (/wall) stays on each district before the next (default 30;
                      0 stops the rotation); a page's ?rotate=N overrides it
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


def _seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise CockpitError(f"{name}={raw!r} must be a whole number of seconds (0 turns it off)")
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
        wall_rotate=_seconds("COCKPIT_WALL_ROTATE", 30),
    )
