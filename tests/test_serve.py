"""`cockpit serve` as `make run` starts it: gunicorn, several worker processes, reading under
row-level security, with a one-time link for the first admin."""
from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from conftest import app_url, sign_in_link
from cockpit import store
from cockpit.ports import free_port, wait_for_port


def _browser():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _get(opener, url: str) -> tuple[int, bytes]:
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _ready(port: int, seconds: float = 60) -> None:
    """The port is bound by gunicorn's arbiter before its workers have built the app: wait for an answer."""
    wait_for_port(port, seconds=20)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=seconds) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _serve(url: str, port: int, *more: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cockpit.cli", "serve", "--port", str(port), *more],
                            env={**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_APP_DATABASE_URL": app_url(url)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_every_worker_serves_the_pages_scripts(demo_url):
    """Whichever worker answers, each script the page names is served (Dash registers them
    per process while rendering the index: a cold worker used to answer 500)."""
    port = free_port()
    server = _serve(demo_url, port, "--workers", "3")
    try:
        base = f"http://127.0.0.1:{port}"
        _ready(port)
        browser = _browser()
        status, page = _get(browser, f"{base}/wall?token={sign_in_link('leader', url=demo_url)}")
        assert status == 200
        scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page.decode())
        assert len(scripts) > 5
        # all at once, as a browser asks: the requests spread over the workers
        with ThreadPoolExecutor(len(scripts)) as pool:
            statuses = set(pool.map(lambda s: _get(browser, base + s)[0], scripts * 3))
        assert statuses == {200}
        # every worker knows the session: the layout of the page answers whichever worker it reaches
        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(lambda _: _get(browser, f"{base}/_dash-layout")[0], range(12))) == {200}
        assert _get(_browser(), f"{base}/_dash-layout")[0] == 401  # and no session, no layout
    finally:
        server.terminate()
        server.wait(15)


def test_first_start_prints_a_one_time_link_for_the_admin(empty_url):
    port = free_port()
    server = _serve(empty_url, port, "--workers", "1")
    try:
        wait_for_port(port, seconds=20)
        link = None
        deadline = time.monotonic() + 20
        while link is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
            link = found.group(1) if found else None
        assert link, "no sign-in link printed"
        browser = _browser()
        status, page = _get(browser, link)
        assert status == 200 and b"react-entry-point" in page  # one click: the cockpit, signed in
        assert _get(_browser(), link)[0] == 401  # the link works once
        with store.engine(empty_url).connect() as conn:
            assert conn.execute(sa.text("SELECT name, role, scope_code FROM users")).all() == [("admin", "admin", None)]
    finally:
        server.terminate()
        server.wait(15)


def test_serve_refuses_a_role_that_row_level_security_does_not_bind(empty_url):
    env = {**os.environ, "COCKPIT_DATABASE_URL": empty_url}
    env.pop("COCKPIT_APP_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "cockpit.cli", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("cockpit: the web app would read") and "COCKPIT_APP_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_slow_and_idle_connections_do_not_hold_the_app(demo_url):
    """Served as `cockpit serve` serves (an event loop per worker, issue 13): 16 connections that
    trickle headers and 50 that say nothing leave a signed-in page answering; a connection
    whose headers do not arrive within HEADER_TIMEOUT is closed; a body past MAX_BODY is refused
    before the app reads it."""
    import socket

    from cockpit.serve import HEADER_TIMEOUT, MAX_BODY

    port = free_port()
    server = _serve(demo_url, port, "--workers", "1", "--threads", "2")
    held = []
    try:
        base = f"http://127.0.0.1:{port}"
        _ready(port)
        browser = _browser()
        assert _get(browser, f"{base}/?token={sign_in_link('admin', url=demo_url)}")[0] == 200
        for i in range(66):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i < 16:
                sock.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        # with two app threads, sixteen half-sent requests would have held every thread
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(lambda _: _get(browser, f"{base}/_dash-layout")[0], range(8))) == {200}
        slow = held[0]
        slow.settimeout(HEADER_TIMEOUT + 10)
        started = time.monotonic()
        assert slow.recv(100) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - started <= HEADER_TIMEOUT + 5
        # refused on the declared length, before the body is read (nor a thread taken)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"POST /_dash-update-component HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode())
            status = int(sock.recv(100).split()[1])
        assert status == 413
    finally:
        for sock in held:
            sock.close()
        server.terminate()
        server.wait(15)
