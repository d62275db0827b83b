"""Heat payload at city level: server-side bins against shipping every event's point.

    .venv/bin/python bench/heat_payload.py --url <store>   (e.g. the 10 M store of bench/drilldown.py)

For each window (1 h, 24 h, 7 d) prints the binned payload (JSON bytes, gzipped bytes, points,
query ms) and the plain way's (every event as [lat, lon]), measured in the same run. Ends with:
    RESULT heat_7d_bytes=<binned JSON bytes> plain_7d_bytes=<raw JSON bytes> ratio=<plain/binned>
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from cockpit import store  # noqa: E402
from cockpit.metrics.unit_view import unit_by_code  # noqa: E402
from cockpit.metrics.heat import WINDOWS, heat  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL") or os.environ.get("COCKPIT_DATABASE_URL"))
    args = ap.parse_args()
    eng = store.engine(args.url)
    end = datetime.now(timezone.utc)
    sizes = {}
    with eng.connect() as conn:
        city = unit_by_code(conn, None)
        total = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        print(f"store: {total:,} events; city level; end = {end:%Y-%m-%d %H:%M} UTC")
        print(f"{'window':<6} {'events':>9} {'points':>7} {'bytes':>9} {'gzip':>8} {'ms':>7} | "
              f"{'plain bytes':>12} {'plain gzip':>11} {'plain ms':>9}")
        for name, window in WINDOWS.items():
            started = time.perf_counter()
            h = heat(conn, city.id, window, end)
            ms = (time.perf_counter() - started) * 1000
            body = json.dumps(h["points"], separators=(",", ":")).encode()
            started = time.perf_counter()
            raw = conn.execute(sa.text("""
                SELECT round(ST_Y(location)::numeric, 5)::float8, round(ST_X(location)::numeric, 5)::float8
                FROM events WHERE reported_at >= :s AND reported_at < :e"""), {"s": end - window, "e": end}).all()
            plain = json.dumps([list(r) for r in raw], separators=(",", ":")).encode()
            plain_ms = (time.perf_counter() - started) * 1000
            sizes[name] = (len(body), len(plain))
            print(f"{name:<6} {h['events']:>9,} {len(h['points']):>7,} {len(body):>9,} {len(gzip.compress(body)):>8,} "
                  f"{ms:>7.0f} | {len(plain):>12,} {len(gzip.compress(plain)):>11,} {plain_ms:>9.0f}")
    ours, plain = sizes["7d"]
    print(f"RESULT heat_7d_bytes={ours} plain_7d_bytes={plain} ratio={plain / max(ours, 1):.1f}")


if __name__ == "__main__":
    main()
