"""A wall's poll while slow and idle clients hold connections open (issue 13 §2).

    .venv/bin/python bench/slow_clients.py [--url <store>] [--seconds 30] [--idle 200] [--slowloris 16]

Loopback only, bounded in time. For each serving setup — the plain way first (gunicorn's
threaded workers, as `cockpit serve` was before issue 13) and then `cockpit serve` as it is —
serves the store on a free port of 127.0.0.1, signs a session in through a one-time link
(cockpit.access.users.issue_link, as the store's owner), then holds `--idle` connections that
send nothing and `--slowloris` connections that trickle a request's headers one byte every
`--trickle` seconds (a connection the server closes is opened again, as an attacker would), and
meanwhile sends the wall's poll (the live tick callback, the POST a wall makes every second)
every 0.5 s for `--seconds` seconds. A poll that has no answer within `--poll-timeout` seconds
counts as that long and as an error. Prints per setup and then the ratio:

    RESULT setup=<plain|ours> poll_p95_ms=<p95> idle=<n> slowloris=<n> polls=<n> errors=<n> reconnects=<n>
    RESULT poll_p95_ms=<ours> idle=<n> slowloris=<n> plain_poll_p95_ms=<plain> ratio=<plain/ours>

Target: ours <= 1000 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from scratch import signed_in  # noqa: E402  (bench/scratch.py)

from cockpit import store  # noqa: E402
from cockpit.layouts.live_parts import lid  # noqa: E402
from cockpit.ports import free_port, wait_for_port  # noqa: E402

HOST = "127.0.0.1"  # loopback only: nothing here ever connects elsewhere


def serve_plain(port: int) -> None:
    """The baseline server (run in a child process): gunicorn's gthread workers."""
    from cockpit.config import settings
    from cockpit.serve import serve

    s = settings()
    store.check(store.engine(store.app_database_url(s)))
    serve(s, host=HOST, port=port, plain=True)


def start(mode: str, port: int, env: dict) -> subprocess.Popen:
    if mode == "plain":
        cmd = [sys.executable, __file__, "--serve-plain", str(port)]
    else:
        cmd = [sys.executable, "-m", "cockpit.cli", "serve", "--host", HOST, "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def tick_body(token) -> dict:
    """The wall's live tick callback as the browser posts it (callbacks/live_parts.py `tick`)."""
    tick, tok, status = lid("wall", "live-tick"), lid("wall", "live-token"), lid("wall", "live-status")
    return {
        "output": f"..{tok}.data...{status}.children...{status}.className..",
        "outputs": [{"id": tok, "property": "data"}, {"id": status, "property": "children"},
                    {"id": status, "property": "className"}],
        "inputs": [{"id": tick, "property": "n_intervals", "value": 1}],
        "changedPropIds": [f"{tick}.n_intervals"],
        "state": [{"id": tok, "property": "data", "value": token},
                  {"id": status, "property": "className", "value": None},
                  {"id": "lang", "property": "data", "value": "en"}],
    }


def poll(session: requests.Session, base: str, token, timeout: float) -> tuple[float, bool, object]:
    """One poll: (milliseconds, answered, the token it leaves the page with)."""
    t0 = time.perf_counter()
    try:
        answer = session.post(f"{base}/_dash-update-component", json=tick_body(token), timeout=timeout)
        ok = answer.status_code in (200, 204)
        if answer.status_code == 200:
            token = answer.json()["response"][lid("wall", "live-token")]["data"]
    except requests.RequestException:
        ok = False
    ms = (time.perf_counter() - t0) * 1000
    return (ms if ok else max(ms, timeout * 1000)), ok, token


class Attackers:
    """`idle` connections that say nothing and `slow` ones that trickle headers, kept open."""

    def __init__(self, port: int, idle: int, slow: int, trickle: float):
        self.port, self.trickle = port, trickle
        self.idle: list[socket.socket | None] = [None] * idle
        self.slow: list[socket.socket | None] = [None] * slow
        self.reconnects = 0
        self.stop = threading.Event()

    def _open(self, slow: bool) -> socket.socket | None:
        try:
            sock = socket.create_connection((HOST, self.port), timeout=2)
            if slow:
                sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            return sock
        except OSError:
            return None

    def _alive(self, sock: socket.socket | None) -> bool:
        if sock is None:
            return False
        try:
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
                return data != b""  # b"": the server closed it
            except BlockingIOError:
                return True
            finally:
                sock.setblocking(True)
        except OSError:
            return False

    def _keep(self, pool: list, slow: bool, send: bool) -> None:
        for i, sock in enumerate(pool):
            if not self._alive(sock):
                if sock is not None:
                    sock.close()
                    self.reconnects += 1
                pool[i] = sock = self._open(slow)
            elif send and slow:
                try:
                    sock.sendall(b"X")  # one more byte of a header line that never ends
                except OSError:
                    pass

    def run(self) -> None:
        last = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            send = now - last >= self.trickle
            last = now if send else last
            self._keep(self.slow, True, send)
            self._keep(self.idle, False, False)
            self.stop.wait(0.5)

    def close(self) -> None:
        self.stop.set()
        for sock in self.idle + self.slow:
            if sock is not None:
                sock.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def measure(mode: str, args, url: str, env: dict) -> dict:
    port = free_port()
    server = start(mode, port, env)
    base = f"http://{HOST}:{port}"
    attackers = None
    try:
        if not wait_for_port(port, seconds=60):
            raise SystemExit(f"{mode}: the cockpit did not start on port {port}: {server.stderr.read()[-2000:]}")
        session = signed_in(base, url, f"bench-slow-{uuid.uuid4().hex[:6]}")
        token = None
        for _ in range(5):  # warm: the first poll waits for the change feed
            _, _, token = poll(session, base, token, 10)
        attackers = Attackers(port, args.idle, args.slowloris, args.trickle)
        thread = threading.Thread(target=attackers.run, daemon=True)
        thread.start()
        time.sleep(2)  # let them take hold
        times, errors = [], 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            ms, ok, token = poll(session, base, token, args.poll_timeout)
            times.append(ms)
            errors += not ok
            time.sleep(max(0.0, args.interval - (time.monotonic() - t0)))
        held = sum(s is not None for s in attackers.idle), sum(s is not None for s in attackers.slow)
        result = {"p95": p95(times), "polls": len(times), "errors": errors, "reconnects": attackers.reconnects,
                  "held": held}
        print(f"RESULT setup={mode} poll_p95_ms={result['p95']:.0f} idle={args.idle} slowloris={args.slowloris} "
              f"polls={len(times)} errors={errors} reconnects={attackers.reconnects}", flush=True)
        return result
    finally:
        if attackers is not None:
            attackers.close()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("COCKPIT_BENCH_URL") or os.environ.get("COCKPIT_DATABASE_URL"),
                    help="the store as its owner (default: the managed cluster)")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--slowloris", type=int, default=16)
    ap.add_argument("--trickle", type=float, default=3, help="seconds between a slow client's bytes")
    ap.add_argument("--poll-timeout", type=float, default=10)
    ap.add_argument("--serve-plain", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_plain:
        return serve_plain(args.serve_plain)
    args.seconds = min(args.seconds, 300)  # bounded whatever is asked
    url = args.url or store.database_url()
    env = dict(os.environ)
    if args.url:
        env["COCKPIT_DATABASE_URL"] = args.url  # COCKPIT_APP_DATABASE_URL: as the caller set it
    plain = measure("plain", args, url, env)
    ours = measure("ours", args, url, env)
    print(f"RESULT poll_p95_ms={ours['p95']:.0f} idle={args.idle} slowloris={args.slowloris} "
          f"plain_poll_p95_ms={plain['p95']:.0f} ratio={plain['p95'] / max(ours['p95'], 1):.1f}", flush=True)


if __name__ == "__main__":
    main()
