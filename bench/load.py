"""A command centre's load: many wall screens and officers' browsers against one served cockpit.

    .venv/bin/python bench/load.py --clients N [--seconds 30] [--url <store>] [--only on|off]

Serves the cockpit as `make run` does (`cockpit serve`: gunicorn, COCKPIT_WORKERS workers) on a
free port, against the 10 M-event bench store of bench/drilldown.py when it is built (database
`cockpit_bench_10000000`), else the demo store (--url picks another; the output says which),
while `cockpit simulate --rate 5` writes. N clients replay real Dash callback bodies over HTTP,
each signed in through its own one-time link (cockpit.access.users.issue_link, as the owner):

  half are wall screens (a leader, whole city): the wall's refresh whenever a new change token
  arrives (with the sigs and ticker ids the page holds);
  half are officers of one district each: a drill-down click (the page's render callback, a
  random unit of their district and a random period or filter) every 2-5 s, and, as the open
  page does, the live refresh when a new token arrives.

Measured for `--seconds` as the cockpit works now: tokens pushed down each page's change stream
(cockpit/live_push.py; the 1 s poll slowed to every 10 s), views and answers shared through the
view cache (cockpit.metrics.viewcache, cockpit/callbacks/shared_answers.py). Then again the plain
way, as before issue 13: every page polls every second (`tick`) and computes its own view
(COCKPIT_VIEW_CACHE=0). Ends with:
    RESULT clients=<N> p95_ms=<p95 over all requests> errors=<n> rps=<r>
    RESULT plain_p95_ms=<the plain way> plain_errors=<n> plain_rps=<r> ratio=<plain p95 / ours>
An error is any answer but 200/204, or none within 10 s. Also prints p95 per kind of request and
the CPU of the server, the store and this load generator, to say where time goes.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
import requests  # noqa: E402
from scratch import signed_in  # noqa: E402  (bench/scratch.py)
import sqlalchemy as sa  # noqa: E402

from cockpit import store  # noqa: E402
from cockpit.ports import free_port, wait_for_port  # noqa: E402
from cockpit.store.cluster import ManagedCluster  # noqa: E402
from cockpit.config import settings  # noqa: E402

BENCH_DB = "cockpit_bench_10000000"
TIMEOUT = 10.0
PERIODS = ["today", "7d", "30d", "30d", "this_month", "last_month"]
WALL_TICK = "..wall-live-token.data...wall-live-status.children...wall-live-status.className.."
HOME_TICK = "..cockpit-live-token.data...cockpit-live-status.children...cockpit-live-status.className.."


def outputs_of(key: str) -> list[dict]:
    """A callback's outputs as the browser sends them, from its callback_map key."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in parts]


def body(key: str, inputs: list[tuple], state: list[tuple], changed: str) -> dict:
    return {"output": key, "outputs": outputs_of(key),
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
            "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
            "changedPropIds": [changed]}


def store_url(given: str | None) -> tuple[str, str]:
    """(owner URL, what it is) of the store to serve."""
    if given:
        return given, "given store"
    server = store.managed_cluster().up()
    admin = sa.make_url(server).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        built = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone()
    if built:
        url = sa.make_url(server).set(database=BENCH_DB).render_as_string(hide_password=False)
        with store.engine(url).connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
        if n >= 10_000_000:
            return url, f"10 M bench store ({n:,} events)"
    url = store.database_url()
    with store.engine(url).connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    return url, f"demo store ({n:,} events; the 10 M bench store is not built: bench/drilldown.py builds it)"


def app_url(url: str) -> str:
    return store.as_app_role(url)


def cpu_of(procs: list) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def database_processes(url: str) -> list:
    """The store's server processes (its backends included), when it runs on this machine."""
    with store.engine(url).connect() as conn:
        data = conn.execute(sa.text("SELECT current_setting('data_directory')")).scalar()
    try:
        pid = int(Path(data, "postmaster.pid").read_text().split()[0])
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except (OSError, psutil.Error, ValueError):
        return []


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors = 0
        self.first_errors: list[str] = []

    def post(self, session: requests.Session, base: str, kind: str, payload: dict) -> dict | None:
        started = time.perf_counter()
        try:
            r = session.post(f"{base}/_dash-update-component", json=payload, timeout=TIMEOUT)
            ok = r.status_code in (200, 204)
            why = f"{kind}: HTTP {r.status_code} {r.text[:120]!r}"
        except requests.RequestException as exc:
            r, ok, why = None, False, f"{kind}: {type(exc).__name__}"
        ms = (time.perf_counter() - started) * 1000
        with self.lock:
            self.times.setdefault(kind, []).append(ms)
            if not ok:
                self.errors += 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(why)
        if ok and r.status_code == 200:
            return r.json().get("response", {})
        return None

    def fail(self, why: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(why)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values or [0.0])


def tick(rec, s, base, key, page_token):
    """The page's 1 s poll; the token it then holds."""
    token_id = key[2:].split(".")[0]  # wall-live-token / cockpit-live-token
    tick_id = token_id.replace("-live-token", "-live-tick")
    got = rec.post(s, base, "tick", body(key, [(tick_id, "n_intervals", 1)],
                                         [(token_id, "data", page_token),
                                          (token_id.replace("token", "status"), "className", "live-status"),
                                          ("lang", "data", "zh")], f"{tick_id}.n_intervals"))
    return (got or {}).get(token_id, {}).get("data", page_token)


class Changes:
    """How a page learns of a change, as the browser does it.

    push: the page's change stream (cockpit/live_push.py; assets/cockpit_push.js), read in its
    own thread, reopened when the unit shown changes; the 1 s poll then runs every 10 s only.
    poll (the plain way, before the stream): the 1 s poll (`tick`) alone.
    """

    def __init__(self, rec, s, base, key, push: bool):
        self.rec, self.s, self.base, self.key, self.push = rec, s, base, key, push
        self.page = "wall" if key == WALL_TICK else "cockpit"
        self.token: str | None = None
        self.pushed: queue.Queue = queue.Queue()
        self.stream = None
        self.unit: str | None = None
        self.next_tick = time.monotonic()

    def follow(self, unit: str | None) -> None:
        """(Re)open the stream for the unit the page shows."""
        if not self.push or (self.stream is not None and unit == self.unit):
            return
        self.close()
        self.unit = unit
        q = f"page={self.page}" + (f"&unit={unit}" if unit else "") + (f"&since={self.token}" if self.token else "")
        try:
            r = self.s.get(f"{self.base}/_live/stream?{q}", stream=True, timeout=(TIMEOUT, 60))
        except requests.RequestException as exc:
            self.rec.fail(f"stream: {type(exc).__name__}")
            return
        if r.status_code != 200:
            self.rec.fail(f"stream: HTTP {r.status_code}")
            return
        self.stream = r
        threading.Thread(target=self._read, args=(r,), daemon=True).start()

    def _read(self, r) -> None:
        # Closing a response from another thread blocks until this read returns, so a stream
        # that is no longer followed is closed here, at its next line (a keepalive comes every 15 s).
        try:
            for line in r.iter_lines():
                if self.stream is not r:
                    break
                if line.startswith(b"data: "):
                    self.pushed.put(line[6:].decode())
        except (requests.RequestException, AttributeError, ValueError):
            pass
        r.close()

    def close(self) -> None:
        self.stream = None  # its reader closes it

    def wait(self, until: float) -> str | None:
        """The next token the page gets before `until` (monotonic), or None."""
        while True:
            now = time.monotonic()
            if now >= until:
                return None
            if now >= self.next_tick:
                self.next_tick = now + (10.0 if self.push and self.stream is not None else 1.0)
                new = tick(self.rec, self.s, self.base, self.key, self.token)
                if new != self.token and new is not None:
                    self.token = new
                    return new
                continue
            try:
                new = self.pushed.get(timeout=max(0.0, min(until, self.next_tick) - now))
            except queue.Empty:
                continue
            if new != self.token:
                self.token = new
                return new


def wall_client(rec, stop, base, s, keys, focus, push):
    changes = Changes(rec, s, base, WALL_TICK, push)
    changes.follow(None)
    known, sigs = None, None
    while not stop.is_set():
        token = changes.wait(time.monotonic() + 0.5)
        if token is None:
            continue
        got = rec.post(s, base, "wall_refresh", body(
            keys["wall"], [("wall-live-token", "data", token), ("wall-focus", "data", focus)],
            [("wall-ticker-ids", "data", known), ("wall-sigs", "data", sigs), ("lang", "data", "zh")],
            "wall-live-token.data"))
        if got:
            known = got.get("wall-ticker-ids", {}).get("data", known)
            sigs = got.get("wall-sigs", {}).get("data", sigs)
    changes.close()


def officer_client(rec, stop, base, s, keys, units, rng, push):
    changes = Changes(rec, s, base, HOME_TICK, push)
    known, query, view = None, None, None
    next_click = time.monotonic()
    while not stop.is_set():
        if time.monotonic() >= next_click:
            r = rng.random()
            unit = rng.choice(units)
            query = f"unit={unit}&period={rng.choice(PERIODS)}" + ("&source=hotline_12345" if r < 0.2 else "")
            got = rec.post(s, base, "drilldown", body(
                keys["render"], [("query", "data", query)], [("map-kpi", "value", None), ("lang", "data", "zh")],
                "query.data"))
            if got and "view" in got:
                view = got["view"]["data"]
                changes.follow(view.get("unit"))
            next_click = time.monotonic() + rng.uniform(2, 5)
        token = changes.wait(min(next_click, time.monotonic() + 0.5))
        if token is not None and view:
            got = rec.post(s, base, "drilldown_live", body(
                keys["live"], [("cockpit-live-token", "data", token), ("view", "data", view)],
                [("query", "data", query), ("cockpit-ticker-ids", "data", known), ("lang", "data", "zh")],
                "cockpit-live-token.data"))
            if got:
                known = got.get("cockpit-ticker-ids", {}).get("data", known)
    changes.close()


def callback_keys(env: dict) -> dict:
    """The keys (output strings) of the callbacks replayed, read from the app itself."""
    code = ("import json; from cockpit.callbacks.app import create_app; m = create_app().callback_map; "
            "f = lambda s, i: next(k for k, v in m.items() if s in k and v['inputs'][0]['id'] == i); "
            "print(json.dumps({'wall': f('wall-sigs.data', 'wall-live-token'), 'render': f('view.data', 'query'), "
            "'live': f('cockpit-ticker-ids.data', 'cockpit-live-token')}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(clients: int, seconds: float, url: str, cache: bool) -> dict:
    push = cache  # ours: the view cache and the change stream; plain: neither, as before issue 13
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_APP_DATABASE_URL": app_url(url),
           "COCKPIT_VIEW_CACHE": "1" if cache else "0"}
    keys = callback_keys(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(ROOT / ".venv/bin/cockpit"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sim = None
    try:
        if not wait_for_port(port, seconds=90):
            raise SystemExit(f"bench: the server did not start: {server.stderr.read()[-500:]}")
        with store.engine(url).connect() as conn:
            districts = conn.execute(sa.text(
                "SELECT code FROM units WHERE parent_id = (SELECT id FROM units WHERE parent_id IS NULL) "
                "ORDER BY code")).scalars().all()
            below = {d: conn.execute(sa.text("""
                SELECT u.code FROM unit_closure c JOIN units u ON u.id = c.descendant_id
                JOIN units a ON a.id = c.ancestor_id WHERE a.code = :d AND c.depth <= 2
                ORDER BY c.depth, u.code LIMIT 40"""), {"d": d}).scalars().all() for d in districts}
        rec = Recorder()
        stop = threading.Event()
        threads = []
        walls = clients - clients // 2
        for i in range(clients):
            rng = random.Random(i)
            if i < walls:
                s = signed_in(base, url, "bench-wall", "leader", None)
                focus = None if i % 3 == 0 else districts[i % len(districts)]
                t = threading.Thread(target=wall_client, args=(rec, stop, base, s, keys, focus, push), daemon=True)
            else:
                d = districts[i % len(districts)]
                s = signed_in(base, url, f"bench-officer-{d}", "officer", d)
                t = threading.Thread(target=officer_client, args=(rec, stop, base, s, keys, below[d], rng, push),
                                     daemon=True)
            threads.append(t)
        sim = subprocess.Popen([str(ROOT / ".venv/bin/cockpit"), "simulate", "--rate", "5"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for t in threads:
            t.start()
            time.sleep(1.0 / clients)  # spread over the first second, as screens opened over time are
        time.sleep(3)  # every client has painted once
        with rec.lock:
            rec.times.clear()  # what the first paints cost is not the steady state measured
            rec.errors = 0
            rec.first_errors.clear()
        groups = {"server": [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)],
                  "store": database_processes(url), "clients": [psutil.Process()]}
        cpu0 = {k: cpu_of(v) for k, v in groups.items()}
        started = time.monotonic()
        time.sleep(seconds)
        cpu = {k: cpu_of(v) - cpu0[k] for k, v in groups.items()}
        with rec.lock:
            times = {k: list(v) for k, v in rec.times.items()}
            errors = rec.errors
            first_errors = list(rec.first_errors)
        elapsed = time.monotonic() - started
        stop.set()
        for t in threads:
            t.join(TIMEOUT + 2)
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(10)
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    every = [ms for v in times.values() for ms in v]
    return {"p95": p95(every), "errors": errors, "rps": len(every) / elapsed, "cpu": {k: 100 * v / elapsed for k, v in cpu.items()},
            "kinds": {k: (len(v), p95(v)) for k, v in sorted(times.items())}, "first_errors": first_errors}


def show(label: str, r: dict) -> None:
    kinds = "  ".join(f"{k} n={n} p95={ms:.0f}ms" for k, (n, ms) in r["kinds"].items())
    cpu = ", ".join(f"{k} {v:.0f} %" for k, v in r["cpu"].items())
    print(f"{label}: p95 {r['p95']:.0f} ms, {r['errors']} errors, {r['rps']:.0f} req/s; CPU (2 cores = 200 %, "
          f"load average {os.getloadavg()[0]:.1f}): {cpu}\n    {kinds}", flush=True)
    for e in r["first_errors"]:
        print(f"    error: {e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL"))
    ap.add_argument("--only", choices=("on", "off"), help="measure one way only (no ratio)")
    args = ap.parse_args()
    url, what = store_url(args.url)
    print(f"store: {what}; {args.clients} clients ({args.clients - args.clients // 2} walls, "
          f"{args.clients // 2} officers) for {args.seconds:.0f} s each way, cockpit simulate --rate 5 writing",
          flush=True)
    ours = plain = None
    if args.only != "off":
        ours = run(args.clients, args.seconds, url, cache=True)
        show("pushed, shared", ours)
    if args.only != "on":
        plain = run(args.clients, args.seconds, url, cache=False)
        show("polled, each its own (plain)", plain)
    if ours:
        print(f"RESULT clients={args.clients} p95_ms={ours['p95']:.0f} errors={ours['errors']} rps={ours['rps']:.0f}")
    if plain:
        ratio = f" ratio={plain['p95'] / ours['p95']:.1f}" if ours and ours["p95"] else ""
        print(f"RESULT plain_p95_ms={plain['p95']:.0f} plain_errors={plain['errors']} "
              f"plain_rps={plain['rps']:.0f}{ratio}")


if __name__ == "__main__":
    main()
