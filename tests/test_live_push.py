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
