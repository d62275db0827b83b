"""`cockpit import-events` speed: a 1 M-row CSV end to end, against the plain way.

    .venv/bin/python bench/import.py [--rows 1000000] [--grids 3000] [--plain-sample 5000]

Builds a fresh demo city without events (database `cockpit_bench_import` on the managed
cluster), writes a hotline-style CSV to bench/out/ (local times, the demo's categories,
points over the city's extent, so a few fall outside and are quarantined), and times the whole
import (reading, parsing, placing, COPY, the upsert and transitions, commit). The plain way —
one INSERT per row, the store's trigger placing each point — runs on a sample and is
extrapolated. Ends with:
    RESULT events_per_s=<n> rows=<n> plain_events_per_s=<n> peak_rss_mb=<n>
with the seconds per phase above it; peak_rss_mb is the import's peak resident memory (a 5 M-row
file, --rows 5000000, shows it stays bounded: close to the 1 M figure).
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from cockpit.config import settings  # noqa: E402
from cockpit.demo.load import load_demo  # noqa: E402
from cockpit.ingest.events import build_mapping, import_events  # noqa: E402
import scratch  # noqa: E402  (bench/scratch.py)

OUT = Path(__file__).resolve().parent / "out"


def fresh_store(grids: int) -> sa.Engine:
    eng = scratch.fresh_store("cockpit_bench_import")
    load_demo(eng, grids=grids, events=0, days=30, progress=lambda _: None)
    return eng


def write_csv(eng: sa.Engine, rows: int, path: Path) -> None:
    with eng.connect() as conn:
        x0, y0, x1, y1 = conn.execute(sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units) s")).one()
        cats = [r[0] for r in conn.execute(sa.text("SELECT code FROM categories WHERE parent_id IS NOT NULL"))]
    rng = np.random.default_rng(7)
    rep = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 300 * 86400, rows), unit="s")
    closed = rng.random(rows) < 0.8
    close = rep + pd.to_timedelta(rng.integers(600, 10 * 86400, rows), unit="s")
    df = pd.DataFrame({
        "工单编号": np.char.add("RX", np.arange(rows).astype(str)),
        "诉求分类": np.array(cats)[rng.integers(0, len(cats), rows)],
        "受理时间": rep.strftime("%Y-%m-%d %H:%M:%S"),
        "办结时间": np.where(closed, close.strftime("%Y-%m-%d %H:%M:%S"), ""),
        "办理状态": np.where(closed, "已办结", "处理中"),
        "满意度评价": np.where(closed & (rng.random(rows) < 0.7), rng.integers(1, 6, rows).astype(str), ""),
        "经度": np.round(rng.uniform(x0, x1, rows), 6),
        "纬度": np.round(rng.uniform(y0, y1, rows), 6),
    })
    df.to_csv(path, index=False)


def _write_csv_child(eng: sa.Engine, rows: int, path: Path) -> None:
    eng.dispose(close=False)  # the parent's pooled connections are not ours to use
    write_csv(eng, rows, path)


def plain(eng: sa.Engine, path: Path, sample: int) -> float:
    """One INSERT per row, grid from the store's trigger: what a naive loader does."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=sample)
    started = time.monotonic()
    with eng.begin() as conn:
        for r in df.itertuples(index=False):
            conn.execute(sa.text(
                "INSERT INTO events (source, external_id, category_id, reported_at, location, status, closed_at) "
                "SELECT 'grid_app', :id, (SELECT id FROM categories WHERE code = :cat), "
                "CAST(:rep AS timestamp) AT TIME ZONE 'Asia/Shanghai', ST_SetSRID(ST_MakePoint(:x, :y), 4326), "
                ":st, CAST(NULLIF(:cl, '') AS timestamp) AT TIME ZONE 'Asia/Shanghai' "
                # the key is unique through event_keys (events is partitioned: migration 0012)
                "WHERE NOT EXISTS (SELECT 1 FROM event_keys WHERE source = 'grid_app' AND external_id = :id)"),
                {"id": r[0], "cat": r[1], "rep": r[2], "cl": r[3], "x": float(r[6]), "y": float(r[7]),
                 "st": "closed" if r[4] == "已办结" else "handling"})
    return sample / (time.monotonic() - started)


def reset_peak_rss() -> None:
    """Start the peak-RSS count (VmHWM) afresh: the import's own, not the file generation's."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--grids", type=int, default=3000)
    ap.add_argument("--plain-sample", type=int, default=5000)
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    eng = fresh_store(a.grids)
    path = OUT / f"import_{a.rows}.csv"
    if not path.exists():
        print(f"writing {path}", flush=True)
        # in a child process: the memory it takes would otherwise count in the import's peak RSS
        child = multiprocessing.get_context("fork").Process(target=_write_csv_child, args=(eng, a.rows, path))
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(f"writing {path} failed")
    mapping = build_mapping(preset="hotline12345", maps=["category=诉求分类"])
    reset_peak_rss()
    started = time.monotonic()
    with eng.connect() as conn:
        res = import_events(conn, path, mapping, settings().timezone,
                            progress=lambda line: print("  " + line, flush=True))
        conn.commit()
    took = time.monotonic() - started
    rss = peak_rss_mb()
    print("\n".join(res.lines()))
    for phase, seconds in res.phases.items():
        print(f"  phase {phase:<16} {seconds:6.1f} s")
    plain_rate = plain(eng, path, a.plain_sample)
    print(f"import: {res.read:,} rows in {took:.1f} s; plain INSERT per row: {plain_rate:,.0f} rows/s "
          f"(on {a.plain_sample:,} rows)")
    print(f"RESULT events_per_s={res.read / took:.0f} rows={res.read} plain_events_per_s={plain_rate:.0f} "
          f"peak_rss_mb={rss:.0f}")


if __name__ == "__main__":
    main()
