"""`cockpit simulate`: a live stream of realistic events, written the way an outside system would.

Everything goes through plain SQL INSERT/UPDATE statements (no bulk paths, no triggers
disabled): new events carry only a point, so the grid trigger places them and the rollup
triggers count them; older open events move along their life cycle (dispatched, handling,
follow-up, closed and rated), each step with its transition row. For demos and tests.
"""
from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cockpit.demo.events import HAS_REPORTER, LEVEL_SHARE, STARS_ON_TIME, source_weights
from cockpit.store.schema import HANDLING_LEVELS, SOURCES

NEXT = {"reported": "dispatched", "dispatched": "handling", "handling": "follow_up", "follow_up": "closed"}

NEW_EVENT = sa.text("""
    WITH grid AS (
        SELECT id, geom FROM units u WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id)
        ORDER BY random() * coalesce(population, 1000) DESC LIMIT 1
    ), cat AS (
        SELECT id, deadline_hours FROM categories WHERE deadline_hours IS NOT NULL ORDER BY random() LIMIT 1
    )
    INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at, status,
                        reporter_name, reporter_phone)
    SELECT :source, :external_id, cat.id, now(),
           (ST_Dump(ST_GeneratePoints(grid.geom, 1, :seed))).geom,
           now() + make_interval(hours => cat.deadline_hours), 'reported', :name, :phone
    FROM grid, cat
    RETURNING id
""")

# Within the last month: on the partitioned table the newest open events are then read from the
# newest partitions only (unbounded, every month's index was walked to its end: seconds at 10 M).
PICK_OPEN = sa.text("""
    SELECT id, status, handling_level FROM events
    WHERE closed_at IS NULL AND status <> 'closed' AND reported_at > now() - interval '31 days'
    ORDER BY reported_at DESC LIMIT 200
""")

ADVANCE = sa.text("""
    WITH moved AS (
        UPDATE events SET status = CAST(:to AS text),
               handling_level = coalesce(handling_level, CAST(:level AS text)),
               closed_at = CASE WHEN CAST(:to AS text) = 'closed' THEN now() END,
               rating = CASE WHEN CAST(:to AS text) = 'closed' THEN CAST(:rating AS smallint) END,
               rated_at = CASE WHEN CAST(:to AS text) = 'closed' AND :rating IS NOT NULL THEN now() END
        WHERE id = :id AND status = CAST(:from AS text)
        RETURNING id, grid_id, reported_at
    )
    INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at, unit_id, grid_id)
    SELECT moved.id, moved.reported_at, CAST(:from AS text), CAST(:to AS text), now(),
           (SELECT c.ancestor_id FROM unit_closure c
            WHERE c.descendant_id = moved.grid_id AND c.depth > 0 ORDER BY c.depth LIMIT 1),
           moved.grid_id
    FROM moved
""")


def step(conn: sa.Connection, rng: random.Random) -> tuple[int, int]:
    """One new event, and usually one older event moved on. Returns (new, moved)."""
    source = rng.choices(SOURCES, weights=source_weights())[0]
    citizen = source in HAS_REPORTER
    conn.execute(NEW_EVENT, {
        "source": source, "external_id": f"SIM-{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}",
        "seed": rng.randrange(1, 2**31), "name": "市民" if citizen else None,
        "phone": f"13{rng.randrange(10**9):09d}" if citizen else None,
    })
    moved = 0
    open_events = conn.execute(PICK_OPEN).all()
    if open_events and rng.random() < 0.9:
        ev = rng.choice(open_events)
        to = NEXT[ev.status]
        rating = rng.choices([1, 2, 3, 4, 5], weights=STARS_ON_TIME)[0] if to == "closed" and citizen else None
        moved = conn.execute(ADVANCE, {"id": ev.id, "from": ev.status, "to": to, "rating": rating,
                                       "level": rng.choices(HANDLING_LEVELS, LEVEL_SHARE["default"])[0]}
                             ).rowcount
    return 1, moved


def run(eng: Engine, rate: float = 5.0, seconds: float | None = None, seed: int | None = None,
        progress: Callable[[str], None] = print) -> dict:
    """About `rate` new events a second (Poisson), each in its own transaction, until stopped."""
    rng = random.Random(seed)
    started = time.monotonic()
    created = moved = 0
    last_report = started
    try:
        while seconds is None or time.monotonic() - started < seconds:
            with eng.begin() as conn:
                new, m = step(conn, rng)
            created += new
            moved += m
            now = time.monotonic()
            if now - last_report >= 10:
                progress(f"simulate: {created:,} new events, {moved:,} moved on in {now - started:.0f} s")
                last_report = now
            time.sleep(rng.expovariate(rate))
    except KeyboardInterrupt:
        pass
    return {"created": created, "moved": moved, "seconds": time.monotonic() - started}
