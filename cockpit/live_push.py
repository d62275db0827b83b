"""Changes pushed to the browser: one server-sent event stream per open screen, no polling.

Without it every screen asks "changed?" once a second (the `live-tick` poll): half of all
requests a command centre makes, and on average half a second of latency. With it, a page opens
`GET <prefix>/_live/stream?page=…&unit=…&since=<token>` (assets/cockpit_push.js; not `token=`,
which names a sign-in link) and the server writes the new change token the moment its change feed reads one; the page's refresh callbacks then
run as they did after a poll. The poll stays, slowed down, as the badge's heartbeat and the
fallback: a page whose stream fails (an old proxy, the development server) polls as before.

Served on the event loop of each `cockpit serve` worker (cockpit/serve.py), not by the WSGI
thread pool: an open stream costs a coroutine and a socket, never a thread. One thread per
process (`_Hub`) waits on the change feed and wakes every stream of the process at once.

Who may open one is decided by the app's own guard: the stream first asks the app for
`<prefix>/_live/check` with the browser's cookies (callbacks/guard.py answers it like any
request: signed in, or a wall screen), and streams only on a 204.

Before a new token is sent, the hub has the views this process's screens asked for lately
computed for it (cockpit.metrics.warmup): the refreshes the token sets off then find them made.

A stream that shows one unit (`unit=`, the drill-down) is sent only the tokens whose step touched
that unit's subtree (ChangeFeed.changed_since), and at least every STALE seconds a token if the
store changed at all (for what moves with the clock alone: overdue, today). A wall is sent every
token. Tokens come on the feed's read grid (cockpit.metrics.changes.QUANTUM), so a wall refreshes
at most 1/QUANTUM times a second.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from cockpit.metrics import warmup
from cockpit.metrics.changes import is_news

PATH = "_live/stream"
CHECK = "_live/check"
KEEPALIVE = 15.0  # seconds between comments on a quiet stream (proxies close silent connections)
STALE = 60.0  # seconds a unit's screen may go without a token while the store changes elsewhere
RETRY_MS = 2000  # the browser's pause before reconnecting a dropped stream
MAX_STREAMS = 2000  # per worker process: past this a new stream is refused (503) and the page polls
MAX_PARAM = 200  # characters of a unit code or token in the URL


class _Hub:
    """Wakes every stream of this process's event loop when the change feed's token moves, once
    the views for that token are warmed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, feed_of: Callable):
        self.loop = loop
        self.feed_of = feed_of
        self.changed: asyncio.Future = loop.create_future()
        self.streams = 0
        self.announced: str | None = None  # the newest token whose views were warmed
        threading.Thread(target=self._watch, name="cockpit-live-push", daemon=True).start()

    def token(self, feed) -> str | None:
        """The token streams send: the announced one (the feed's own before the first)."""
        return self.announced if self.announced is not None else feed.token

    def _watch(self) -> None:
        token = None
        while True:
            try:
                token = self.feed_of().wait_change(token, KEEPALIVE)
            except Exception:  # noqa: BLE001 — no store configured yet, or it went away: try again
                time.sleep(1)
                continue
            if token is not None and token != self.announced:
                warmup.warm()
            self.announced = token
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        done, self.changed = self.changed, self.loop.create_future()
        done.set_result(None)


async def _plain(send, status: int, text: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": text.encode()})


async def _allowed(app, scope, check_path: str) -> int:
    """The status the app's guard gives this browser for the check route (204: may stream)."""
    status = 500
    asked = False

    async def receive():
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the check never reads further

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    check = {**scope, "method": "GET", "path": check_path, "raw_path": check_path.encode(), "query_string": b""}
    await app(check, receive, send)
    return status


def _param(query: dict, name: str) -> str | None:
    value = (query.get(name) or [None])[-1]
    if value is None or len(value) > MAX_PARAM or "\x00" in value:
        return None
    return value


def router(app, feed_of: Callable, prefix: str = "/"):
    """An ASGI app: the stream at <prefix>_live/stream, everything else to `app`."""
    base = prefix.rstrip("/")
    stream_path, check_path = f"{base}/{PATH}", f"{base}/{CHECK}"
    hubs: dict[asyncio.AbstractEventLoop, _Hub] = {}

    async def routed(scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != stream_path:
            return await app(scope, receive, send)
        if scope.get("method") != "GET":
            return await _plain(send, 405, "GET only\n")
        status = await _allowed(app, scope, check_path)
        if status != 204:
            return await _plain(send, 401 if status in (302, 401) else status, "sign in first\n")
        loop = asyncio.get_running_loop()
        hub = hubs.get(loop) or hubs.setdefault(loop, _Hub(loop, feed_of))
        if hub.streams >= MAX_STREAMS:
            return await _plain(send, 503, "too many streams; poll instead\n")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        hub.streams += 1
        try:
            await _stream(hub, send, receive, _param(query, "unit"), _param(query, "since"))
        finally:
            hub.streams -= 1

    return routed


async def _stream(hub: _Hub, send, receive, unit: str | None, token: str | None) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no")]})  # nginx: pass each event on at once
    await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True})
    gone = asyncio.ensure_future(_disconnected(receive))
    sent, sent_at = token, time.monotonic()
    checked = token  # the last token whose steps were looked at for this unit
    try:
        while not gone.done():
            feed = hub.feed_of()
            now = hub.token(feed)
            if now is not None and is_news(now, sent):
                due = unit is None or time.monotonic() - sent_at > STALE
                if not due:
                    due = feed.changed_since(checked, unit)
                    checked = now
                if due:
                    await send({"type": "http.response.body", "body": f"data: {now}\n\n".encode(), "more_body": True})
                    sent, sent_at, checked = now, time.monotonic(), now
            waiting = asyncio.shield(hub.changed)
            done, _ = await asyncio.wait({waiting, gone}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
    except OSError:
        pass  # the client went away mid-write
    finally:
        gone.cancel()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
