"""Drill-down speed at 10 M events: our path (rollups + indexed raw reads) against plain SQL.

    .venv/bin/python bench/drilldown.py [--events 10000000] [--paths 200] [--plain-budget 600] [--as CODE]

Builds the store once (database `cockpit_bench_<events>` on the managed cluster, or
--url) and reuses it afterwards. Replays random drill paths city -> district -> street ->
community -> grid, each with a random period (today, 7 d, 30 d, this month, last month, or a
custom range up to 90 days) and random filters (category group, source). At every step it
times what one click recomputes on the server: the map colours of the children and every
panel (cockpit.metrics.unit_view.unit_view) plus the polygons the map draws (cockpit.maps.geo).

The plain path answers the same questions with GROUP BY over raw events and transitions
(unit_view(plain=True)). It is 10-100x slower, so it runs on a random sample of the same
clicks until --plain-budget seconds are spent (every level is sampled). Ends with:
    RESULT p95_ms=<ours> plain_p95_ms=<plain> ratio=<plain/ours>

--as CODE reads as the web app does for a user who sees only CODE's subtree: as the app role
(cockpit_app), row-level security on, each click one transaction with the scope set
(cockpit.access.scope.apply). The drill paths start at CODE, both paths run scoped, and the
same clicks are also timed as the owner (no policies), which prints
    RESULT scoped_p95_ms=<scoped> owner_p95_ms=<same clicks unscoped> rls_overhead=<ratio>
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from cockpit.store import migrate  # noqa: E402
from cockpit import store  # noqa: E402
from cockpit.config import settings  # noqa: E402
from cockpit.demo.load import load_demo  # noqa: E402
from cockpit.metrics.unit_view import Filters, category_groups, children_of, period_of, unit_by_code, unit_view  # noqa: E402
from cockpit.maps.geo import map_features  # noqa: E402
from cockpit.store.schema import SOURCES  # noqa: E402
from cockpit.access import scope  # noqa: E402
from cockpit.access.people import Person  # noqa: E402


def bench_store(events: int, url: str | None) -> sa.Engine:
    if url is None:
        server = store.managed_cluster().up()
        name = f"cockpit_bench_{events}"
        admin = sa.make_url(server).set(database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    eng = store.engine(url)
    migrate.upgrade(eng)
    with eng.connect() as conn:
        have = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    if have < events:
        print(f"building the store: {events:,} events (once; later runs reuse it)", flush=True)
        load_demo(eng, events=events, replace=True, progress=lambda line: print("  " + line, flush=True))
    else:
        print(f"reusing the store: {have:,} events", flush=True)
    return eng


def random_question(rng: random.Random, groups: list[str], tz):
    kind = rng.choice(["today", "7d", "30d", "30d", "this_month", "last_month", "custom"])
    if kind == "custom":
        last = period_of("today", tz).first - timedelta(days=rng.randrange(0, 200))
        period = period_of("custom", tz, last - timedelta(days=rng.randrange(0, 90)), last)
    else:
        period = period_of(kind, tz)
    r = rng.random()
    filters = (Filters() if r < 0.5 else Filters(group=rng.choice(groups)) if r < 0.75
               else Filters(source=rng.choice(SOURCES)) if r < 0.9
               else Filters(group=rng.choice(groups), source=rng.choice(SOURCES)))
    return kind, period, filters


def click(eng: sa.Engine, code, period, filters, plain: bool, person: Person | None = None) -> float:
    """One click as the web answers it: one transaction (with the person's scope, if any)."""
    started = time.perf_counter()
    with eng.connect() as conn:
        if person is not None:
            scope.apply(conn, person)
        view = unit_view(conn, code, period, filters, plain=plain)
        map_features(conn, unit_by_code(conn, code).id)
    took = time.perf_counter() - started
    assert view["unit"]["code"] == code
    return took * 1000


def app_engine(owner: sa.Engine) -> sa.Engine:
    """The same database as the web app's role (the managed cluster's cockpit_app)."""
    return store.engine(store.as_app_role(owner.url.render_as_string(hide_password=False)))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--paths", type=int, default=200)
    ap.add_argument("--plain-budget", type=float, default=600, help="seconds for the plain-SQL sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL"))
    ap.add_argument("--as", dest="as_code", metavar="CODE",
                    help="read as a user who sees only this unit's subtree (row-level security)")
    args = ap.parse_args()

    owner = bench_store(args.events, args.url)
    person = Person("bench", "user", "officer", scope_code=args.as_code) if args.as_code else None
    eng = app_engine(owner) if person else owner
    tz = settings().timezone
    rng = random.Random(args.seed)
    clicks = []  # (level, code, period kind, period, filters)
    with eng.connect() as conn:
        if person is not None:
            scope.apply(conn, person)
        groups = [g["code"] for g in category_groups(conn)]
        root = unit_by_code(conn, None)  # the top of what the reader sees
        for _ in range(args.paths):
            kind, period, filters = random_question(rng, groups, tz)
            unit = root
            while True:
                clicks.append((unit.level, unit.code, kind, period, filters))
                kids = children_of(conn, unit.id)
                if not kids:
                    break
                unit = rng.choice(kids)
        conn.execute(sa.text("SELECT 1"))

    ours: dict[str, list[float]] = {}
    for level, code, kind, period, filters in clicks[:20]:  # warm the caches like a live server
        click(eng, code, period, filters, False, person)
    for level, code, kind, period, filters in clicks:
        ours.setdefault(level, []).append(click(eng, code, period, filters, False, person))
    all_ours = [t for ts in ours.values() for t in ts]
    unscoped = [click(owner, c[1], c[3], c[4], False) for c in clicks] if person else []

    plain: dict[str, list[float]] = {}
    sample = clicks[:]
    rng.shuffle(sample)
    by_level = {}
    for c in sample:  # round-robin over levels so each is sampled
        by_level.setdefault(c[0], []).append(c)
    order = []
    while any(by_level.values()):
        for level in list(by_level):
            if by_level[level]:
                order.append(by_level[level].pop())
    budget_end = time.monotonic() + args.plain_budget
    for level, code, kind, period, filters in order:
        if time.monotonic() > budget_end:
            break
        plain.setdefault(level, []).append(click(eng, code, period, filters, True, person))
    all_plain = [t for ts in plain.values() for t in ts]

    print(f"\n{len(clicks)} clicks on {args.paths} drill paths; plain SQL on {len(all_plain)} of them")
    print(f"{'level':<10} {'n':>5} {'ours p50':>9} {'ours p95':>9} {'plain n':>8} {'plain p50':>10} {'plain p95':>10}")
    for level in ("city", "district", "street", "community", "grid"):
        if level in ours:
            o, p = ours[level], plain.get(level, [])
            print(f"{level:<10} {len(o):>5} {statistics.median(o):>9.1f} {pct(o, .95):>9.1f} {len(p):>8} "
                  f"{(statistics.median(p) if p else float('nan')):>10.1f} {(pct(p, .95) if p else float('nan')):>10.1f}")
    p95, plain_p95 = pct(all_ours, .95), pct(all_plain, .95)
    print(f"ours p50={statistics.median(all_ours):.1f} ms; plain p50={statistics.median(all_plain):.1f} ms")
    print(f"RESULT p95_ms={p95:.1f} plain_p95_ms={plain_p95:.1f} ratio={plain_p95 / p95:.1f}"
          + (f" as={args.as_code}" if person else ""))
    if person:
        print(f"RESULT scoped_p95_ms={p95:.1f} owner_p95_ms={pct(unscoped, .95):.1f} "
              f"rls_overhead={p95 / pct(unscoped, .95):.2f}")


if __name__ == "__main__":
    main()
