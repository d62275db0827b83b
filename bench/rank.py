"""Ranking speed at 10 M events: rank() (ranking rollups) against the plain way, same run.

    .venv/bin/python bench/rank.py --url URL [--repeat 8] [--plain-repeat 2]

URL: a store at the schema head (`cockpit migrate` run on it) holding the 10 M-event bench city
(bench/drilldown.py builds one as cockpit_bench_10000000; migrate a copy of it, not a store
another branch uses). Nothing is written. For each level (district, street, community, grid)
and period kind (month, week) it times rank() of the whole level, server side: the table of
the period, the previous period (rank change) and the 8-period trend, over --repeat periods
(the last full months / ISO weeks). The plain way answers the same question with one GROUP BY
over raw events per period (rank(plain=True)), --plain-repeat times, and must give the same
table. Ends with:
    RESULT grid_month_p95_ms=<ours> plain_ms=<plain median> ratio=<plain/ours>
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

from cockpit import store  # noqa: E402
from cockpit.config import settings  # noqa: E402
from cockpit.errors import CockpitError  # noqa: E402
from cockpit.metrics.ranking import rank  # noqa: E402
from cockpit.store import migrate  # noqa: E402

LEVELS = ("district", "street", "community", "grid")


def periods(kind: str, newest: date, n: int) -> list[str]:
    """The n full months / ISO weeks before the one holding `newest`, newest first."""
    out = []
    if kind == "month":
        d = newest.replace(day=1)
        for _ in range(n):
            d = (d - timedelta(days=1)).replace(day=1)
            out.append(f"{d:%Y-%m}")
    else:
        d = newest - timedelta(days=newest.weekday())
        for _ in range(n):
            d -= timedelta(days=7)
            y, w, _ = d.isocalendar()
            out.append(f"{y}-W{w:02d}")
    return out


def timed(conn, **kw) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    table = rank(conn, settings().timezone, **kw)
    took = (time.perf_counter() - started) * 1000
    conn.rollback()  # rank() sets a transaction-local setting: leave nothing behind
    return took, table.as_dicts()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL"), required="COCKPIT_BENCH_URL" not in os.environ)
    ap.add_argument("--repeat", type=int, default=8, help="periods timed per level and kind (ours)")
    ap.add_argument("--plain-repeat", type=int, default=2, help="periods timed per level and kind (plain)")
    args = ap.parse_args()

    eng = store.engine(args.url)
    head = ScriptDirectory.from_config(migrate.alembic_config(None)).get_current_head()
    if migrate.current(eng) != head:
        raise SystemExit(f"bench/rank.py: the store is at {migrate.current(eng)}, not {head}: "
                         "run `cockpit migrate` on it (a copy of the bench store) first")
    tz = settings().timezone
    with eng.connect() as conn:
        newest = conn.execute(sa.text("SELECT max(reported_at) FROM events")).scalar()
        n_events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        n_grids = conn.execute(sa.text("SELECT count(*) FROM units WHERE level = 'grid'")).scalar()
    newest = newest.astimezone(tz).date() if newest else datetime.now(tz).date()
    print(f"store: {n_events:,} events, {n_grids:,} grids; time zone {tz.key}")

    ours: dict[tuple[str, str], list[float]] = {}
    plain: dict[tuple[str, str], list[float]] = {}
    with eng.connect() as conn:
        for kind in ("month", "week"):
            names = periods(kind, newest, max(args.repeat, args.plain_repeat))
            timed(conn, level="grid", period_text=names[0])  # warm the caches like a live server
            for level in LEVELS:
                tables = {}
                for name in names[:args.repeat]:
                    took, tables[name] = timed(conn, level=level, period_text=name)
                    ours.setdefault((level, kind), []).append(took)
                for name in names[:args.plain_repeat]:
                    took, table = timed(conn, level=level, period_text=name, plain=True)
                    plain.setdefault((level, kind), []).append(took)
                    if table != tables[name]:
                        raise CockpitError(f"{level} {name}: the plain way gives another table")
                o, p = ours[(level, kind)], plain[(level, kind)]
                print(f"{level:<10} {kind:<6} rows {len(tables[names[0]]):>5}  ours p50 {statistics.median(o):7.1f} ms"
                      f"  p95 {pct(o, .95):7.1f} ms   plain p50 {statistics.median(p):8.1f} ms", flush=True)
    grid = pct(ours[("grid", "month")], .95)
    grid_plain = statistics.median(plain[("grid", "month")])
    print(f"RESULT grid_month_p95_ms={grid:.1f} plain_ms={grid_plain:.1f} ratio={grid_plain / grid:.1f}")


if __name__ == "__main__":
    main()
