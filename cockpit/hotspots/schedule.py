"""Detection on a schedule inside `cockpit serve`: one background thread per worker process,
but one run per interval for the whole server.

Every worker's thread wakes each COCKPIT_HOTSPOT_INTERVAL; the one that takes the advisory lock
and finds the last run (cockpit_state) older than the interval runs detection as the store's
owner; the others see a fresh run and go back to sleep. So adding workers adds no runs.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from cockpit.config import Settings

LOCK_KEY = 0x686f7473  # "hots": pg_try_advisory_xact_lock's key for detection runs
LAST_RUN_KEY = "hotspots_last_run"
log = logging.getLogger("cockpit.hotspots")


def run_if_due(eng: sa.Engine, s: Settings, now: datetime | None = None) -> bool:
    """Run detection unless another worker is running it or ran it less than an interval ago."""
    from cockpit.hotspots.store import run

    now = now or datetime.now(timezone.utc)
    with eng.begin() as conn:
        if not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar():
            return False
        last = conn.execute(sa.text("SELECT value FROM cockpit_state WHERE key = :k"), {"k": LAST_RUN_KEY}).scalar()
        # a little slack: workers woken a moment early must not skip a whole interval
        if last and datetime.fromisoformat(last) > now - timedelta(seconds=s.hotspot.interval * 0.9):
            return False
        result = run(conn, s.timezone, now, s.hotspot)
        conn.execute(sa.text("INSERT INTO cockpit_state (key, value) VALUES (:k, :v) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
                     {"k": LAST_RUN_KEY, "v": now.isoformat()})
    log.info("hotspot detection: %s new, %s kept, %s expired in %.1f s", result.new, result.kept, result.expired,
             result.seconds)
    return True


def start(s: Settings) -> threading.Thread | None:
    """The worker's detection thread (daemon); None when COCKPIT_HOTSPOT_INTERVAL is 0."""
    if s.hotspot.interval <= 0:
        return None
    from cockpit.store.database import database_url, engine

    def loop() -> None:
        eng = engine(database_url(s))  # the owner: detection writes the warnings table
        while True:
            try:
                run_if_due(eng, s)
            except Exception:  # a failed run (store restarting, ...) must not end the schedule
                log.exception("hotspot detection failed; trying again next interval")
            time.sleep(s.hotspot.interval)

    thread = threading.Thread(target=loop, name="hotspot-detection", daemon=True)
    thread.start()
    return thread
