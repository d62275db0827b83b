"""`cockpit serve` as `make run` starts it: gunicorn, several worker processes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from cockpit.ports import free_port, wait_for_port


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_every_worker_serves_the_pages_scripts(demo_url):
    """Whichever worker answers, each script the page names is served (Dash registers them
    per process while rendering the index: a cold worker used to answer 500)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "serve", "--port", str(port), "--workers", "3"],
                              env={**os.environ, "COCKPIT_DATABASE_URL": demo_url},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_port(port, seconds=20)
        status, page = _get(f"{base}/wall")
        assert status == 200
        scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page.decode())
        assert len(scripts) > 5
        # all at once, as a browser asks: the requests spread over the workers
        with ThreadPoolExecutor(len(scripts)) as pool:
            statuses = set(pool.map(lambda s: _get(base + s)[0], scripts * 3))
        assert statuses == {200}
    finally:
        server.terminate()
        server.wait(15)
