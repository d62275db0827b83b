"""The live path without a browser: change tokens, today's numbers, the ticker's patches."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from cockpit.metrics import changes, live_view as live
from cockpit import store
from cockpit.config import settings
from cockpit.metrics.unit_view import Filters, period_of, unit_view
from cockpit.metrics.kpi import unit_by_code, unit_kpi

INSERT = sa.text("""
    INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at)
    SELECT 'grid_app', :ext, c.id, now(), ST_PointOnSurface(g.geom), now() + interval '1 day'
    FROM categories c, (SELECT geom FROM units WHERE level = 'grid' ORDER BY code LIMIT 1) g
    WHERE c.deadline_hours IS NOT NULL ORDER BY c.code LIMIT 1
    RETURNING id""")


def newest_transition(url: str) -> int:
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM event_transitions")).scalar()


@pytest.fixture
def feeds():
    yield
    changes.stop_all()


def test_the_change_feed_moves_on_commit_and_not_on_rollback(databases, feeds):
    from cockpit.demo.load import load_demo

    demo_url = databases.create("feed")  # its own: this test writes
    load_demo(store.engine(demo_url), grids=10, events=200, days=2, progress=lambda _: None)
    feed = changes.feed_for(demo_url)
    assert feed.wait_ready(10) and feed.connected
    first = feed.token
    assert first == "w200.{}".format(newest_transition(demo_url))  # the watermark read on connecting
    eng = store.engine(demo_url)
    with eng.connect() as conn:
        conn.execute(INSERT, {"ext": "ROLLED-BACK"})
        conn.rollback()
    assert feed.wait_change(first, 1.5) == first
    started = time.monotonic()
    with eng.begin() as conn:
        conn.execute(INSERT, {"ext": "LIVE-1"})
    second = feed.wait_change(first, 5)
    assert second != first and time.monotonic() - started < 2
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE events SET status = 'dispatched' WHERE external_id = 'LIVE-1'"))
    assert feed.wait_change(second, 5) != second
    with eng.begin() as conn:
        conn.execute(sa.text("DELETE FROM events WHERE external_id = 'LIVE-1'"))


def test_a_store_given_in_sqlalchemy_form_has_a_feed_too(empty_url, feeds):
    """COCKPIT_DATABASE_URL=postgresql+psycopg://… works for the engines; the feed, which psycopg
    opens by itself, used to fail on it ("missing '='") and no screen ever refreshed."""
    given = store.engine(empty_url).url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    assert given.startswith("postgresql+psycopg://")
    feed = changes.feed_for(given)
    assert feed.wait_ready(10) and feed.connected and feed.error is None
    assert changes.feed_for(store.engine(empty_url).url.set(drivername="postgresql")
                            .render_as_string(hide_password=False)) is feed  # one feed per store


def test_the_feed_says_since_when_the_store_is_unreachable(feeds):
    feed = changes.ChangeFeed("postgresql://nobody@127.0.0.1:1/none").start()
    assert feed.wait_ready(10)
    assert not feed.connected and feed.down_since is not None and feed.error
    feed.stop()


def test_today_numbers_are_the_kpis_of_today(demo_engine):
    tz = settings().timezone
    with demo_engine.connect() as conn:
        view = live.wall_view(conn, None, tz)
        today = period_of("today", tz)
        for unit in [view["city"], *view["districts"]]:
            expected = unit_kpi(conn, unit["code"], today)
            assert {k: unit[k] for k in ("volume", "closed", "closure_rate", "on_time_rate", "satisfaction_rate")} == \
                {k: expected[k] for k in ("volume", "closed", "closure_rate", "on_time_rate", "satisfaction_rate")}
        code = view["districts"][0]["code"]
        # a focused district's numbers are taken from the city part: the same as asked on their own
        assert live.wall_view(conn, code, tz)["focus"] == live.wall_focus(conn, code, tz)["focus"]
        period = period_of("7d", tz)
        numbers = live.unit_numbers(conn, code, period, Filters(source="hotline_12345"))
        full = unit_view(conn, code, period, Filters(source="hotline_12345"))["kpi"]
        assert {k: numbers[k] for k in full} == full


def test_lists_follow_their_definitions(demo_engine):
    tz = settings().timezone
    with demo_engine.connect() as conn:
        district = conn.execute(sa.text("SELECT code FROM units WHERE level = 'district' ORDER BY code LIMIT 1")).scalar()
        view = live.wall_view(conn, district, tz)
        unit = unit_by_code(conn, district)
        late = conn.execute(sa.text("""
            SELECT e.id FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id
            WHERE c.ancestor_id = :u AND e.closed_at IS NULL AND e.deadline_at < now()
            ORDER BY e.deadline_at, e.id LIMIT :n"""), {"u": unit.id, "n": live.LIST_SIZE}).scalars().all()
        newest = conn.execute(sa.text("SELECT id FROM events ORDER BY reported_at DESC, id DESC LIMIT :n"),
                              {"n": live.TICKER_SIZE}).scalars().all()
    assert [r["id"] for r in view["overdue"]] == late and late
    assert [r["id"] for r in view["latest"]] == newest
    assert all(len(r["place"]["area"]) == 2 and r["place"]["unit"] for r in view["latest"] if r["grid_id"])
    assert all(live.place_label(r["place"]).count(" · ") == 2 for r in view["overdue"])  # district · street · grid
    assert view["focus"]["code"] == district and view["city"]["code"] == "440300"
    counts = [r["n"] for r in view["busiest"]]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("level", ["city", "district", "grid"])
@pytest.mark.parametrize("days_later", [0, 10, 100, 4000])
def test_the_ticker_is_the_newest_events_whichever_window_holds_them(demo_engine, level, days_later):
    """Asked as of `days_later` days after now: the short windows then hold fewer than a ticker's
    worth, and the answer must still be the unit's newest events of all time."""
    from datetime import timedelta
    now = datetime.now(timezone.utc) + timedelta(days=days_later)
    with demo_engine.connect() as conn:
        unit = conn.execute(sa.text("SELECT id FROM units WHERE level = :l ORDER BY code LIMIT 1"), {"l": level}).scalar()
        newest = conn.execute(sa.text("""
            SELECT e.id FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id
            WHERE c.ancestor_id = :u ORDER BY e.reported_at DESC, e.id DESC LIMIT :n"""),
            {"u": unit, "n": live.TICKER_SIZE}).scalars().all()
        shown = live.latest_events(conn, None if level == "city" else unit, now=now)
    assert len(newest) == live.TICKER_SIZE
    if level == "city":  # the city's ticker also lists events without a unit
        with demo_engine.connect() as conn:
            newest = conn.execute(sa.text("SELECT id FROM events ORDER BY reported_at DESC, id DESC LIMIT :n"),
                                  {"n": live.TICKER_SIZE}).scalars().all()
    assert [r["id"] for r in shown] == newest


def test_the_backlog_counts_open_and_overdue_events_of_each_subtree(demo_engine):
    from cockpit.metrics.unit_view import backlog
    with demo_engine.connect() as conn:
        ids = conn.execute(sa.text("(SELECT id FROM units WHERE level IN ('city', 'district')) UNION ALL "
                                   "(SELECT id FROM units WHERE level = 'grid' ORDER BY code LIMIT 3)")).scalars().all()
        expected = {r.u: {"open": r.open, "overdue": r.overdue} for r in conn.execute(sa.text("""
            SELECT c.ancestor_id AS u, count(*) AS open, count(*) FILTER (WHERE e.deadline_at < now()) AS overdue
            FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id
            WHERE c.ancestor_id = ANY(:ids) AND e.closed_at IS NULL GROUP BY 1"""), {"ids": ids})}
        got = backlog(conn, ids, Filters(), None)
        source = backlog(conn, ids, Filters(source="hotline_12345"), None)
        hotline = conn.execute(sa.text("""
            SELECT count(*) FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id
            WHERE c.ancestor_id = :u AND e.closed_at IS NULL AND e.source = 'hotline_12345'"""), {"u": ids[0]}).scalar()
    assert got == expected and sum(v["overdue"] for v in got.values()) > 0
    assert source[ids[0]]["open"] == hotline < got[ids[0]]["open"]


def test_the_ticker_sends_only_new_items():
    from cockpit.callbacks.live_parts import ticker_patch

    tz = settings().timezone
    now = datetime.now(timezone.utc)
    ev = lambda i: {"id": i, "reported_at": now, "source": "iot", "category": "c", "place": {}}  # noqa: E731
    children, shows, fresh = ticker_patch([ev(3), ev(2), ev(1)], None, None, tz, "zh")
    assert isinstance(children, list) and len(children) == 3 and shows["ids"] == [3, 2, 1] and fresh == []
    patch, shows, fresh = ticker_patch([ev(5), ev(4), ev(3)], shows, None, tz, "zh")
    ops = patch.to_plotly_json()["operations"]
    assert [o["operation"] for o in ops] == ["Prepend", "Prepend"] and [e["id"] for e in fresh] == [5, 4]
    assert shows["ids"] == [5, 4, 3, 2, 1]
    # another unit: a whole new list
    children, shows, _ = ticker_patch([ev(9)], shows, "440303", tz, "zh")
    assert isinstance(children, list) and shows["scope"] == "440303" and shows["ids"] == [9]


def test_the_ticker_dates_events_not_from_today_and_redraws_past_midnight():
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    from cockpit.callbacks.live_parts import ticker_patch

    tz = ZoneInfo("Asia/Shanghai")
    at = lambda s: datetime.fromisoformat(s)  # noqa: E731
    ev = lambda i, s: {"id": i, "reported_at": at(s), "source": "iot", "category": "c", "place": {}}  # noqa: E731
    time_of = lambda li: li.children[0].children  # noqa: E731
    today = date(2026, 11, 28)
    # 23:30 UTC on the 27th is 07:30 on the 28th in Shanghai: today there, though not in UTC
    events = [ev(3, "2026-11-27T23:30:05+00:00"), ev(2, "2026-11-27T15:59:59+00:00"), ev(1, "2026-11-20T06:05:00+00:00")]
    children, shows, _ = ticker_patch(events, None, None, tz, "zh", today)
    assert [time_of(li) for li in children] == ["07:30:05", "11-27 23:59", "11-20 14:05"]
    # the same items the next day: a whole new list, so 07:30 gains its date
    children, shows2, _ = ticker_patch(events, shows, None, tz, "zh", today + timedelta(days=1))
    assert isinstance(children, list) and time_of(children[0]) == "11-28 07:30" and shows2["day"] == "2026-11-29"
    # the same day: nothing to send
    patch, same, _ = ticker_patch(events, shows, None, tz, "zh", today)
    assert same == shows and not isinstance(patch, list)


def test_two_feeds_on_one_store_agree_on_the_token_after_each_write(databases, feeds):
    """What two workers (or two servers) derive for the same store state: the same token, whether
    the write moved an id or not, and however many notifications each one saw."""
    from cockpit.demo.load import load_demo

    url = databases.create("feeds2")
    load_demo(store.engine(url), grids=10, events=100, days=2, progress=lambda _: None)
    one = changes.ChangeFeed(url).start()
    eng = store.engine(url)
    try:
        assert one.wait_ready(10)
        with eng.begin() as conn:
            conn.execute(INSERT, {"ext": "AGREE-1"})
        moved = one.wait_change(one.token, 5)
        two = changes.ChangeFeed(url).start()  # a worker that started after the write
        assert two.wait_ready(10)
        assert moved == two.token == "w101.{}".format(newest_transition(url))
        with eng.begin() as conn:  # a write that moves no id
            conn.execute(sa.text("UPDATE events SET status = 'dispatched' WHERE external_id = 'AGREE-1'"))
        after = one.wait_change(moved, 5)
        assert after != moved and two.wait_change(moved, 5) == after and after.startswith(moved + "~")
        # a burst: every feed ends on the same watermark
        for i in range(5):
            with eng.begin() as conn:
                conn.execute(INSERT, {"ext": f"AGREE-B{i}"})
        deadline = time.monotonic() + 5
        while (one.token, two.token) != (("w106.{}".format(newest_transition(url)),) * 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert one.token == two.token == "w106.{}".format(newest_transition(url))
        assert one.version == two.version and one.version.endswith(":" + one.token)
    finally:
        one.stop()
        if "two" in locals():
            two.stop()


def test_news_is_another_state_than_the_page_holds():
    news = changes.is_news
    assert not news(None, None) and not news(None, "w1.1")  # no token here yet: never a refresh
    assert news("w1.1", None)  # a page's first token
    assert not news("w1.1", "w1.1") and news("w2.1", "w1.1") and news("w1.1", "w9.9")  # reloaded: ids restart
    assert news("w1.1~7", "w1.1") and not news("w1.1~7", "w1.1~7") and news("w1.1~8", "w1.1~7")
    # a worker that connected after an id-less write holds the bare watermark: no news for the page
    assert not news("w1.1", "w1.1~7")
    assert changes.next_token("w1.1", "w1.2", "99") == "w1.2"
    assert changes.next_token("w1.2", "w1.2", "99") == "w1.2~99"
    assert changes.next_token("w1.2~98", "w1.2", "99") == "w1.2~99"


def _tick(client, token):
    body = {
        "output": "..wall-live-token.data...wall-live-status.children...wall-live-status.className..",
        "outputs": [{"id": "wall-live-token", "property": "data"}, {"id": "wall-live-status", "property": "children"},
                    {"id": "wall-live-status", "property": "className"}],
        "inputs": [{"id": "wall-live-tick", "property": "n_intervals", "value": 3}],
        "state": [{"id": "wall-live-token", "property": "data", "value": token},
                  {"id": "wall-live-status", "property": "className", "value": "live-status"},
                  {"id": "lang", "property": "data", "value": "en"}],
        "changedPropIds": ["wall-live-tick.n_intervals"],
    }
    return client.post("/_dash-update-component", json=body)


def test_a_tick_before_the_feed_read_the_store_changes_nothing(empty_url, use_store, feeds):
    """A worker whose feed has not read the store yet (here: its store answers nothing) says "no
    change" (204), never a null token that would make the page refresh."""
    import socket

    from conftest import signed_in_client
    from cockpit.callbacks.app import create_app

    use_store(empty_url)
    app = create_app()
    client = signed_in_client(app)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers: the feed waits in its connect
    try:
        url = app.server.extensions["cockpit"].url
        slow = changes.ChangeFeed(f"postgresql://x@127.0.0.1:{silent.getsockname()[1]}/none").start()
        with changes._feeds_lock:
            changes._feeds[url] = slow
        assert slow.alive and slow.token is None
        assert _tick(client, "w5.5").status_code == 204
        assert _tick(client, None).status_code == 204
        # once the feed has read the store, a page with another token learns the store's
        with changes._feeds_lock:
            changes._feeds.pop(url)
        assert changes.feed_for(url).wait_ready(10)
        answer = _tick(client, "w5.5")
        assert answer.status_code == 200
        assert answer.get_json()["response"]["wall-live-token"]["data"] == changes.feed_for(url).token
    finally:
        silent.close()
