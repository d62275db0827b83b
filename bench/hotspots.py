"""Hotspot detection against the demo's planted truth, and its speed.

    .venv/bin/python bench/hotspots.py [--grids 3000] [--events 511000] [--days 365] [--seed 7]
                                       [--every-h 6] [--span-d 16]
    .venv/bin/python bench/hotspots.py --url URL    # time one detection on an existing store

Default: loads a seeded demo city into database `cockpit_bench_hotspots` on the managed cluster
(made again each time), then runs detection (cockpit.hotspots.store.run, as the server's
schedule does) every --every-h hours over the last --span-d days, keeping the warnings table's
life cycle, and compares every surge and recurrence warning with planted_anomalies:
  - a surge warning is right when a planted surge's grid is in the warned unit's subtree and
    the warning was seen after the surge began; a recurrence warning is right when a planted
    spot of the same category lies within the recurrence radius of it;
  - precision = right warnings / warnings; recall = planted anomalies warned at least once /
    planted anomalies; delay = from a planted surge's start to its first warning (hours).
Ends with `RESULT precision=<p> recall=<r> median_delay_h=<d> detect_s=<median s per run>`.

With --url: one read-only detection as of now on that store (any revision from 0009: only
events, units and categories are read) and `RESULT detect_s=<s> events=<n> grids=<n>`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from cockpit import store  # noqa: E402
from cockpit.config import settings  # noqa: E402
from cockpit.demo.load import load_demo  # noqa: E402
from cockpit.hotspots import detect  # noqa: E402
from cockpit.hotspots import store as hot  # noqa: E402
import scratch  # noqa: E402  (bench/scratch.py)


def time_only(url: str) -> None:
    eng = store.engine(url)
    with eng.connect() as conn:
        n_events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        n_grids = conn.execute(sa.text("SELECT count(*) FROM units WHERE level = 'grid'")).scalar()
        at = conn.execute(sa.text("SELECT max(reported_at) FROM events")).scalar()
        hot.detect_all(conn, at)  # warm: the adjacency of leaf units is cached per process
        times = []
        for _ in range(3):
            t = time.monotonic()
            found = hot.detect_all(conn, at)
            times.append(time.monotonic() - t)
    kinds = {k: sum(w.kind == k for w in found) for k in ("surge", "recurrence", "cluster")}
    print(f"found as of {at:%Y-%m-%d %H:%M}: {kinds}; runs {', '.join(f'{t:.2f}' for t in times)} s "
          "(the first run of a process also reads the units' adjacency)")
    print(f"RESULT detect_s={statistics.median(times):.2f} events={n_events} grids={n_grids}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url")
    ap.add_argument("--grids", type=int, default=3000)
    ap.add_argument("--events", type=int, default=511_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--every-h", type=int, default=6)
    ap.add_argument("--span-d", type=int, default=16)
    args = ap.parse_args()
    if args.url:
        time_only(args.url)
        return
    hs = settings().hotspot
    eng = scratch.fresh_store("cockpit_bench_hotspots")
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    t = time.monotonic()
    load_demo(eng, seed=args.seed, grids=args.grids, events=args.events, days=args.days, now=now,
              progress=lambda _: None)
    print(f"demo city: {args.grids} grids, {args.events:,} events over {args.days} days in {time.monotonic() - t:.0f} s")
    times = []
    at = now - timedelta(days=args.span_d)
    while at <= now:
        with eng.begin() as conn:
            times.append(hot.run(conn, None, at, hs).seconds)
        at += timedelta(hours=args.every_h)
    with eng.connect() as conn:
        planted = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM planted_anomalies ORDER BY id"))]
        warned = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT * FROM warnings WHERE kind IN ('surge', 'recurrence') ORDER BY id"))]
        subtree = {}
        for w in warned:
            if w["unit_id"] not in subtree:
                subtree[w["unit_id"]] = set(conn.execute(sa.text(
                    "SELECT descendant_id FROM unit_closure WHERE ancestor_id = :u"), {"u": w["unit_id"]}).scalars())

    def matches(w: dict, p: dict) -> bool:
        if w["kind"] != p["kind"]:
            return False
        if w["kind"] == "surge":
            return p["unit_id"] in subtree[w["unit_id"]] and w["last_seen"] > p["start"]
        if w["category_id"] != p["category_id"]:
            return False
        a = detect.to_metres(np.array([w["detail"]["lon"], p["lon"]]), np.array([w["detail"]["lat"], p["lat"]]))
        return float(np.hypot(*(a[0] - a[1]))) <= hs.radius_m

    right = [w for w in warned if any(matches(w, p) for p in planted)]
    found = [p for p in planted if any(matches(w, p) for w in warned)]
    delays = [min((w["first_seen"] - p["start"]).total_seconds() / 3600 for w in warned if matches(w, p))
              for p in found if p["kind"] == "surge"]
    for kind in ("surge", "recurrence"):
        ws = [w for w in warned if w["kind"] == kind]
        ps = [p for p in planted if p["kind"] == kind]
        print(f"{kind}: {len(ws)} warnings, {sum(w in right for w in ws)} right; {len(ps)} planted, "
              f"{sum(p in found for p in ps)} found")
    for w in warned:
        if w not in right:
            print(f"  not planted: {w['kind']} unit {w['unit_id']} window {w['window']} observed {w['observed']} "
                  f"expected {w['expected']} q {w['q_value']}")
    precision = len(right) / len(warned) if warned else 1.0
    recall = len(found) / len(planted) if planted else 1.0
    delay = statistics.median(delays) if delays else float("nan")
    print(f"{len(times)} runs, every {args.every_h} h over {args.span_d} days: detection median "
          f"{statistics.median(times):.2f} s, max {max(times):.2f} s")
    print(f"RESULT precision={precision:.3f} recall={recall:.3f} median_delay_h={delay:.1f} "
          f"detect_s={statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
