"""Changes pushed to the browser (cockpit/live_push.py) and what a change touched (ChangeFeed):
a unit's screen hears of changes in its subtree only, and a served stream needs a signed-in
browser and carries the store's token as it moves."""
from __future__ import annotations

import http.client
import time

import sqlalchemy as sa

from conftest import sign_in_link
from cockpit import store
from cockpit.metrics import changes
from cockpit.ports import free_port
from test_live import feeds  # noqa: F401 — the fixture stopping feeds
from test_serve import _browser, _get, _ready, _serve

INSERT_IN = sa.text("""
    INSERT INTO events (source, external_id, category_id, reported_at, location)
    SELECT 'grid_app', :ext, (SELECT id FROM categories WHERE parent_id IS NOT NULL ORDER BY code LIMIT 1), now(),
           ST_PointOnSurface(g.geom)
    FROM units g JOIN unit_closure c ON c.descendant_id = g.id JOIN units d ON d.id = c.ancestor_id
    WHERE d.code = :district AND g.level = 'grid' ORDER BY g.code LIMIT 1""")


def _districts(url: str) -> list[str]:
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT code FROM units WHERE level = 'district' ORDER BY code")).scalars().all()


def test_the_feed_knows_which_units_a_change_touched(databases, feeds):  # noqa: F811
    from cockpit.demo.load import load_demo

    url = databases.create("touched")
    load_demo(store.engine(url), grids=30, events=50, days=2, progress=lambda _: None)
    a, b = _districts(url)[:2]
    feed = changes.ChangeFeed(url).start()
    try:
        assert feed.wait_ready(10)
        before = feed.token
        version_a, version_b = feed.version_for(a), feed.version_for(b)
        with store.engine(url).begin() as conn:
            conn.execute(INSERT_IN, {"ext": "TOUCH-A", "district": a})
        after = feed.wait_change(before, 5)
        assert after != before
        assert feed.changed_since(before, a) and not feed.changed_since(before, b)
        assert not feed.changed_since(after, a)  # nothing since the page's own token
        assert feed.version_for(a) != version_a and feed.version_for(a).endswith(":" + after)
        assert feed.version_for(b) == version_b  # district B's views outlive A's change
        assert feed.version_for(None) == feed.version
        # a token older than the feed remembers: changed, to be safe
        assert feed.changed_since("w0.0", b)
        # an id-less write (no transition) touches everything
        with store.engine(url).begin() as conn:
            conn.execute(sa.text("UPDATE events SET rating = 5 WHERE external_id = 'TOUCH-A'"))
        third = feed.wait_change(after, 5)
        assert third != after and feed.changed_since(after, b) and feed.version_for(b) != version_b
    finally:
        feed.stop()


def test_reads_happen_on_a_grid_every_feed_shares():
    assert abs(changes.until_next_read(100.0) - changes.QUANTUM - 0.002) < 1e-9
    assert abs(changes.until_next_read(100.4) - (0.1 + 0.002)) < 1e-6
    assert changes.step_ranges("w1.1", "w3.5") == {"e0": 1, "e1": 3, "t0": 1, "t1": 5}
    assert changes.step_ranges("w5.5", "w3.5") is None  # a store reloaded: everything
    assert changes.step_ranges("w1.1", f"w{changes.MAX_TOUCHED_ROWS + 2}.1") is None  # a bulk import
    assert changes.step_ranges(None, "w1.1") is None


def _stream(port: int, path: str, cookie: str | None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    return conn, conn.getresponse()


def _next_token(response, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = response.fp.readline().decode().strip()
        if line.startswith("data: "):
            return line[6:]
    return None


def test_a_served_stream_pushes_tokens_to_signed_in_screens_only(databases):
    from cockpit.demo.load import load_demo

    url = databases.create("push")
    load_demo(store.engine(url), grids=30, events=50, days=2, progress=lambda _: None)
    a, b = _districts(url)[:2]
    port = free_port()
    server = _serve(url, port, "--workers", "2")
    try:
        _ready(port)
        conn, anonymous = _stream(port, "/_live/stream?page=wall", None)
        assert anonymous.status == 401
        conn.close()
        browser = _browser()
        assert _get(browser, f"http://127.0.0.1:{port}/?token={sign_in_link('leader', url=url)}")[0] == 200
        cookie = "; ".join(f"{c.name}={c.value}" for h in browser.handlers if hasattr(h, "cookiejar")
                           for c in h.cookiejar)
        wall_conn, wall = _stream(port, "/_live/stream?page=wall", cookie)
        assert wall.status == 200 and wall.getheader("Content-Type").startswith("text/event-stream")
        first = _next_token(wall, 5)
        assert first and first.startswith("w")
        b_conn, b_stream = _stream(port, f"/_live/stream?page=cockpit&unit={b}&since={first}", cookie)
        a_conn, a_stream = _stream(port, f"/_live/stream?page=cockpit&unit={a}&since={first}", cookie)
        time.sleep(0.5)
        with store.engine(url).begin() as c:
            c.execute(INSERT_IN, {"ext": "PUSH-A", "district": a})
        started = time.monotonic()
        pushed = _next_token(wall, 5)
        assert pushed and pushed != first and time.monotonic() - started < 1.5
        assert _next_token(a_stream, 5) == pushed  # A's screen hears of A's change
        b_stream.fp.raw._sock.settimeout(2)  # B's screen does not
        try:
            assert _next_token(b_stream, 2) is None
        except TimeoutError:
            pass
        for c in (wall_conn, a_conn, b_conn):
            c.close()
    finally:
        server.terminate()
        server.wait(15)


def test_a_new_token_reaches_the_walls_once_their_views_are_made(databases, use_store, tmp_path):
    """The hub warms the views its walls asked for (cockpit.metrics.warmup) before it sends a
    new token: when the token arrives, the views for it are in the view cache although no
    screen has asked since the change."""
    import json
    import os
    import subprocess
    import sys
    import urllib.request

    from cockpit.callbacks.app import create_app
    from cockpit.demo.load import load_demo

    url = use_store(databases.create("warm"))
    load_demo(store.engine(url), grids=30, events=50, days=2, progress=lambda _: None)
    district = _districts(url)[0]
    wall = next(k for k, v in create_app().callback_map.items()
                if "wall-sigs.data" in k and v["inputs"][0]["id"] == "wall-live-token")
    port = free_port()
    env = {**os.environ, "COCKPIT_STATE_DIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _ready(port)
        browser = _browser()
        assert _get(browser, f"http://127.0.0.1:{port}/?token={sign_in_link('leader', url=url)}")[0] == 200
        cookie = "; ".join(f"{c.name}={c.value}" for h in browser.handlers if hasattr(h, "cookiejar")
                           for c in h.cookiejar)
        conn, stream = _stream(port, "/_live/stream?page=wall", cookie)
        first = _next_token(stream, 5)
        parts = wall[2:-2].split("...")
        body = {"output": wall, "outputs": [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in parts],
                "inputs": [{"id": "wall-live-token", "property": "data", "value": first},
                           {"id": "wall-focus", "property": "data", "value": district}],
                "state": [{"id": "wall-ticker-ids", "property": "data", "value": None},
                          {"id": "wall-sigs", "property": "data", "value": None},
                          {"id": "lang", "property": "data", "value": "zh"}],
                "changedPropIds": ["wall-live-token.data"]}
        asked = urllib.request.Request(f"http://127.0.0.1:{port}/_dash-update-component", json.dumps(body).encode(),
                                       {"Content-Type": "application/json"})
        with browser.open(asked, timeout=30) as r:
            assert r.status == 200 and "wall-sigs" in json.loads(r.read())["response"]
        views = tmp_path / "viewcache"
        before = {p.name for p in views.glob("*.pickle")}
        assert len(before) == 2  # the city's part and the focus's, for the first token
        with store.engine(url).begin() as c:
            c.execute(INSERT_IN, {"ext": "WARM-1", "district": district})
        pushed = _next_token(stream, 5)
        assert pushed and pushed != first
        made = {p.name for p in views.glob("*.pickle")} - before
        assert len(made) == 2, made  # both made for the new token before it was sent, by nobody's request
        conn.close()
    finally:
        server.terminate()
        server.wait(15)


def test_warming_runs_what_was_asked_lately_within_its_budget(monkeypatch):
    from cockpit.metrics import warmup

    warmup.forget_all()
    ran = []
    clock = [1000.0]
    monkeypatch.setattr(warmup.time, "monotonic", lambda: clock[0])
    warmup.remember(("scope", "wall", None), lambda: ran.append("city"))
    warmup.remember(("scope", "wall", ["odd"]), lambda: ran.append("odd"))  # unhashable arguments name one too
    warmup.remember(("scope", "wall", None), lambda: ran.append("city again"))  # the newer recipe replaces
    assert warmup.warm() == 2 and sorted(ran) == ["city again", "odd"]
    clock[0] += warmup.FORGET_AFTER + 1  # nobody asked since: the walls were closed
    ran.clear()
    assert warmup.warm() == 0 and ran == []

    def slow():
        clock[0] += 1.0  # each takes a second: the budget stops the rest, which wait for their ask
        ran.append("slow")

    def broken():
        raise RuntimeError("store gone")

    for i in range(5):
        warmup.remember(("scope", "slow", i), slow)
    clock[0] += 0.001
    warmup.remember(("scope", "broken"), broken)
    failed, over = warmup.stats["failed"], warmup.stats["over_budget"]
    clock[0] += 0.001  # the broken one was asked last: it runs first, fails and is skipped
    assert warmup.warm(budget=2.5) == 3 and ran == ["slow"] * 3  # at 0, 1 and 2 s; not at 3
    assert warmup.stats["failed"] == failed + 1 and warmup.stats["over_budget"] == over + 1
    warmup.forget_all()
