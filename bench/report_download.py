"""A wall's poll while a leader downloads a report from the same web worker.

    .venv/bin/python bench/report_download.py [--url <store>] [--level grid] [--period 2026-10] [--format pdf]

Typesetting a month's grid ranking as PDF is ~10 s of pure Python (WeasyPrint). Written in the
web worker's own thread, it holds the interpreter lock the worker's other requests need; written
by `reports.render_apart` it runs in a child process. For each way — the plain way first
(COCKPIT_REPORTS_APART=0: in the asking thread) and then as the cockpit does it — serves the store
on a free port of 127.0.0.1 with ONE worker (so the poll and the download share it, as they do
whenever they land on the same worker), signs a leader in, starts the /rank page's download
callback for --level and --period, and meanwhile sends the wall's poll (the live tick callback)
every 0.2 s until the download has answered. Against the 10 M bench store of bench/drilldown.py
when it is built, else the demo store. Prints per way and then the ratio:

    RESULT setup=<plain|ours> poll_p95_ms=<p95 during the download> polls=<n> download_s=<s>
    RESULT poll_p95_ms=<ours> plain_poll_p95_ms=<plain> ratio=<plain/ours> download_s=<ours>
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from load import store_url  # noqa: E402  (bench/load.py)
from scratch import signed_in  # noqa: E402  (bench/scratch.py)
from slow_clients import HOST, poll  # noqa: E402  (bench/slow_clients.py)

from cockpit import store  # noqa: E402
from cockpit.ports import free_port, wait_for_port  # noqa: E402


def download_body(level: str, period: str, fmt: str) -> dict:
    """The /rank page's download callback as the browser posts it (callbacks/report_download.py)."""
    button = f"report-{fmt}"
    state = {"rank-by": "unit", "rank-level": level, "rank-period": period, "rank-group": None,
             "rank-source": None}
    return {
        "output": "..report-download.data...report-status.children..",
        "outputs": [{"id": "report-download", "property": "data"}, {"id": "report-status", "property": "children"}],
        "inputs": [{"id": "report-pdf", "property": "n_clicks", "value": 1 if fmt == "pdf" else None},
                   {"id": "report-xlsx", "property": "n_clicks", "value": 1 if fmt == "xlsx" else None}],
        "changedPropIds": [f"{button}.n_clicks"],
        "state": [*({"id": k, "property": "value", "value": v} for k, v in state.items()),
                  {"id": "rank-lang", "property": "data", "value": "zh"}],
    }


def run(mode: str, url: str, level: str, period: str, fmt: str) -> dict:
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_APP_DATABASE_URL": store.as_app_role(url),
           "COCKPIT_REPORTS_APART": "0" if mode == "plain" else "1"}
    port = free_port()
    base = f"http://{HOST}:{port}"
    server = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "serve", "--host", HOST, "--port", str(port),
                               "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        if not wait_for_port(port, seconds=90):
            raise SystemExit(f"bench: the server did not start: {server.stderr.read()[-500:]}")
        leader = signed_in(base, url, "bench-leader", "leader", None)
        wall = signed_in(base, url, "bench-wall", "leader", None)
        token = None
        for _ in range(5):  # warm: the wall's first polls read the feed
            _, _, token = poll(wall, base, token, 10)
        answer: dict = {}

        def download():
            t0 = time.perf_counter()
            r = leader.post(f"{base}/_dash-update-component", json=download_body(level, period, fmt), timeout=300)
            answer.update(status=r.status_code, seconds=time.perf_counter() - t0, size=len(r.content),
                          ok=r.status_code == 200 and '"report-download"' in r.text and "base64" in r.text)

        t = threading.Thread(target=download)
        t.start()
        times, errors = [], 0
        while t.is_alive():
            ms, ok, token = poll(wall, base, token, 10)
            times.append(ms)
            errors += not ok
            time.sleep(0.2)
        t.join()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    if not answer.get("ok"):
        raise SystemExit(f"bench: the download failed ({mode}): {answer}")
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)
    print(f"RESULT setup={mode} poll_p95_ms={p95:.0f} polls={len(times)} errors={errors} "
          f"download_s={answer['seconds']:.1f} bytes={answer['size']}", flush=True)
    return {"p95": p95, "seconds": answer["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL"))
    ap.add_argument("--level", default="grid")
    ap.add_argument("--period", default="2026-10")
    ap.add_argument("--format", choices=("pdf", "xlsx"), default="pdf")
    a = ap.parse_args()
    url, what = store_url(a.url)
    print(f"store: {what}; the {a.format} report of the {a.level}s for {a.period}", flush=True)
    plain = run("plain", url, a.level, a.period, a.format)
    ours = run("ours", url, a.level, a.period, a.format)
    print(f"RESULT poll_p95_ms={ours['p95']:.0f} plain_poll_p95_ms={plain['p95']:.0f} "
          f"ratio={plain['p95'] / max(ours['p95'], 1e-9):.1f} download_s={ours['seconds']:.1f}")


if __name__ == "__main__":
    main()
