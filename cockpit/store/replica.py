"""Reading from a streaming replica (COCKPIT_READ_URL) without reading the past.

The change feed listens on the primary and, with each token, notes the primary's WAL position
(`ChangeFeed.lsn`). A screen that refreshes because the token moved reads from the replica; if
the replica has not yet replayed up to that position, the read waits for it (briefly: on one
machine or one rack the lag is milliseconds), so the refreshed screen shows the change that
moved the token instead of missing it until the next one.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

WAIT_SECONDS = 1.0  # at most; past it the screen reads what the replica has (the next token catches up)
STEP_SECONDS = 0.01

_CAUGHT_UP = sa.text("SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), true)")


def wait_for(conn: sa.Connection, lsn: str | None) -> bool:
    """Wait until the replica behind `conn` has replayed `lsn`; True when it has."""
    if not lsn:
        return True
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        caught_up = conn.execute(_CAUGHT_UP, {"lsn": lsn}).scalar()
        conn.rollback()  # a fresh snapshot on the next try, and the caller's transaction starts clean
        if caught_up or time.monotonic() >= deadline:
            return bool(caught_up)
        time.sleep(STEP_SECONDS)
