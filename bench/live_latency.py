"""Live intake latency: an event committed by plain SQL -> seen on the wall in a browser.

    .venv/bin/python bench/live_latency.py --url <store> [--n 60] [--gap 0.5]

Serves the cockpit the way `make run` does (`cockpit serve`: gunicorn, 2 workers) on a free
port, opens /wall?kiosk=1&rotate=0 in headless Chromium at 1920x1080, and inserts N events one
by one through plain SQL (the INSERT `cockpit simulate` uses; the grid and rollup triggers do the
rest), `--gap` seconds apart. A MutationObserver in the page stamps the moment each event's row
appears in the ticker; latency = that moment - the moment the INSERT's commit returned (one
clock: same machine). Also counts what the page downloaded meanwhile (Dash callback responses)
per change (gzipped bodies), against the plain way: the whole wall state sent again at each change (what the
refresh returns when the page shows nothing yet), measured in the same run. Ends with:
    RESULT p95_ms=<p95> n=<N> bytes_per_change=<ours> plain_bytes_per_change=<plain> ratio=<plain/ours>
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import plotly  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402

from cockpit import store  # noqa: E402
from cockpit.access import walltokens  # noqa: E402
from cockpit.demo.simulate import NEW_EVENT  # noqa: E402
from cockpit.ports import free_port, wait_for_port  # noqa: E402

OBSERVE = """
performance.setResourceTimingBufferSize(100000);
window.__seen = {};
function stamp() {
    var now = Date.now();
    document.querySelectorAll('#wall-ticker li[data-event]').forEach(function (li) {
        var id = li.getAttribute('data-event');
        if (!(id in window.__seen)) { window.__seen[id] = now; }
    });
}
stamp();
new MutationObserver(stamp).observe(document.body, {childList: true, subtree: true});
"""
UPDATES = """
return performance.getEntriesByType('resource')
    .filter(function (e) { return e.name.indexOf('_dash-update-component') >= 0; })
    .map(function (e) { return [e.startTime, e.transferSize, e.encodedBodySize]; });
"""


def plain_bytes(url: str) -> int:
    """The whole wall state, as one refresh sends it to a page that shows nothing yet."""
    os.environ["COCKPIT_DATABASE_URL"] = url
    os.environ["COCKPIT_APP_DATABASE_URL"] = store.as_app_role(url)
    from cockpit.access.people import Person
    from cockpit.callbacks.app import create_app
    from cockpit.callbacks.context import set_person

    app = create_app()
    refresh = next(cb for key, cb in app.callback_map.items() if "wall-sigs.data" in key)["callback"]
    with app.server.test_request_context():  # callbacks find the app's context and the person there
        set_person(Person("bench", "wall", "leader"))  # a wall screen of the whole city
        out = refresh.__wrapped__(None, None, None, {}, "zh")
    return len(gzip.compress(json.dumps(out, cls=plotly.utils.PlotlyJSONEncoder).encode()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL") or os.environ.get("COCKPIT_DATABASE_URL"))
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between inserts")
    args = ap.parse_args()
    url = args.url or store.database_url()
    eng = store.engine(url)
    with eng.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    port = free_port()
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_APP_DATABASE_URL": store.as_app_role(url)}
    with eng.begin() as conn:  # the wall screen's kiosk URL, as `cockpit wall-token create` makes it
        key = walltokens.create(conn, f"bench-{uuid.uuid4().hex[:8]}")
    server = subprocess.Popen([str(ROOT / ".venv/bin/cockpit"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    opts = Options()
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1920,1080", "--hide-scrollbars"):
        opts.add_argument(flag)
    driver = None
    try:
        if not wait_for_port(port):
            raise SystemExit(f"the cockpit did not start on port {port}")
        driver = webdriver.Chrome(options=opts)
        driver.get(f"http://127.0.0.1:{port}/wall?kiosk=1&rotate=0&key={key}")
        deadline = time.monotonic() + 60
        while not driver.execute_script("return document.querySelectorAll('#wall-ticker li[data-event]').length"):
            if time.monotonic() > deadline:
                raise SystemExit("the wall never showed its ticker")
            time.sleep(0.2)
        time.sleep(2)
        driver.execute_script(OBSERVE)
        before = len(driver.execute_script(UPDATES))
        print(f"store: {total:,} events; wall on port {port}; inserting {args.n} events {args.gap} s apart")
        committed: dict[str, float] = {}
        for i in range(args.n):
            with eng.begin() as conn:
                new_id = conn.execute(NEW_EVENT, {
                    "source": "grid_app", "external_id": f"BENCH-{uuid.uuid4().hex[:20]}",
                    "seed": 1000 + i, "name": None, "phone": None}).scalar()
            committed[str(new_id)] = time.time() * 1000
            time.sleep(args.gap)
        deadline = time.monotonic() + 10
        seen = {}
        while time.monotonic() < deadline:
            seen = driver.execute_script("return window.__seen")
            if all(k in seen for k in committed):
                break
            time.sleep(0.2)
        updates = driver.execute_script(UPDATES)[before:]
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait(10)
        with eng.begin() as conn:  # leave the store as it was
            conn.execute(sa.text("DELETE FROM events WHERE external_id LIKE 'BENCH-%'"))
    lat = sorted(seen[k] - committed[k] for k in committed if k in seen)
    missing = len(committed) - len(lat)
    if not lat:
        raise SystemExit("no inserted event was seen on the wall")
    p = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]  # noqa: E731
    print(f"seen {len(lat)}/{len(committed)} events (missing {missing}); latency ms: "
          f"min {lat[0]:.0f}  p50 {p(0.5):.0f}  mean {statistics.mean(lat):.0f}  p95 {p(0.95):.0f}  max {lat[-1]:.0f}")
    ours = sum(u[2] for u in updates) / max(len(committed), 1)  # gzipped bodies, like `plain`
    plain = plain_bytes(url)
    print(f"callback responses during the run: {len(updates)} ({sum(u[2] for u in updates):,} gzipped bytes, "
          f"{ours:,.0f} per change); the whole wall state: {plain:,} gzipped bytes per change")
    print(f"RESULT p95_ms={p(0.95):.0f} n={len(lat)} bytes_per_change={ours:.0f} plain_bytes_per_change={plain} "
          f"ratio={plain / max(ours, 1):.1f}")
    if missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
