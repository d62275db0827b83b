"""`cockpit serve`: the web app under gunicorn (several workers; debug off).

Why this serving setup: with gunicorn's threaded workers every open connection held a thread
while it sent its headers or sat idle, so 16 slowloris connections or 200 idle ones took the
cockpit offline (issue 13). Here each gunicorn worker runs an asyncio event loop (uvicorn's
worker, h11): connections, their headers and their bodies are read by the loop, where a slow
or idle one costs a socket and a few kilobytes, not a thread. Only a complete request, its
body already read (`buffered`), reaches the Flask/Dash app, which runs unchanged as WSGI in a
pool of COCKPIT_THREADS threads per worker (a2wsgi). Headers must arrive within
HEADER_TIMEOUT seconds and an idle keep-alive connection is closed after KEEPALIVE seconds.
bench/slow_clients.py measures a wall's poll under such clients against the threaded setup.
"""
from __future__ import annotations

import asyncio

import sqlalchemy as sa

from cockpit.config import Settings
from cockpit.errors import CockpitError
from cockpit.ports import bind_error

HEADER_TIMEOUT = 10  # seconds from a connection (or its previous answer) to a request's last header line
BODY_TIMEOUT = 30  # seconds for a request's body to arrive once its headers have
KEEPALIVE = 5  # seconds an idle keep-alive connection stays open (a wall polls every second)
MAX_BODY = 4 * 1024 * 1024  # bytes any body may have before the app sees it (the API's cap is 2 MB,
# Dash callbacks' 1 MB, both enforced by Flask with their own messages: this is the outer wall)


def refuse_unbound_role(s: Settings) -> None:
    """The web app must read as a role that row-level security binds: one that owns the tables,
    is a superuser or may bypass RLS would show every district to everyone."""
    from cockpit.access.scope import bypasses_policies
    from cockpit.store.database import app_database_url, connect, describe, engine

    url = app_database_url(s)
    with connect(engine(url)) as conn:
        if bypasses_policies(conn):
            raise CockpitError(
                f"the web app would read {describe(url)} as a role that row-level security does not bind "
                "(a superuser, BYPASSRLS or the tables' owner): set COCKPIT_APP_DATABASE_URL to the same store "
                "as an unprivileged role (README \"Users, roles and scope\")")


def first_admin_link(s: Settings, host: str, port: int) -> str | None:
    """On a store without accounts, the `admin` account; while it has no password, a one-time
    sign-in link for it (README: the newcomer's path stays two commands and one click)."""
    from cockpit.access import audit, users
    from cockpit.access.people import CLI_PERSON
    from cockpit.context import for_admin

    ctx = for_admin(s)
    with ctx.connect() as conn:
        token = users.ensure_first_admin(conn)
        if token:
            audit.record(conn, CLI_PERSON, "user_link", unit_code=None, user=users.FIRST_ADMIN, by="cockpit serve")
        conn.commit()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}/?token={token}" if token else None


def buffered(app, limit: int = MAX_BODY, timeout: float = BODY_TIMEOUT):
    """An ASGI wrapper that reads a request's whole body on the event loop before the WSGI thread
    pool sees it: a client trickling its body holds a socket, never a thread. A body longer
    than `limit` is answered 413 and one slower than `timeout` 408, without the app."""
    async def plain(send, status: int, text: str) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": text.encode()})

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await plain(send, 413, f"the body is larger than {limit:,} bytes\n")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > limit:
                        return await plain(send, 413, f"the body is larger than {limit:,} bytes\n")
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            return await plain(send, 408, "the body did not arrive in time\n")
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only the client's disconnect

        return await app(scope, replay, send)

    return wrapped


def worker_class():
    """uvicorn's gunicorn worker on plain asyncio and h11 (no C extensions to build), with a
    deadline for headers: uvicorn by itself waits for them forever, and a connection that
    trickles a byte every few seconds would stay open as long as its client likes."""
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn_worker import UvicornWorker

    class HeaderDeadline(H11Protocol):
        def _arm(self) -> None:
            cycle = self.cycle
            self._header_deadline = self.loop.call_later(HEADER_TIMEOUT, self._headers_late, cycle)

        def _headers_late(self, cycle) -> None:
            # no request parsed since the deadline was armed: close (a request in progress is left alone)
            if self.cycle is cycle and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            self._header_deadline.cancel()
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc) -> None:
            self._header_deadline.cancel()
            super().connection_lost(exc)

    class CockpitWorker(UvicornWorker):
        CONFIG_KWARGS = {"loop": "asyncio", "http": HeaderDeadline}

    return CockpitWorker


def ensure_partitions(s: Settings) -> None:
    """The current month of events and the months ahead exist before the first request
    (cockpit/store/partitions.py); a store the server may not change is left as it is."""
    from cockpit.store import partitions
    from cockpit.store.database import database_url, engine

    try:
        made = partitions.upkeep(engine(database_url(s)))
    except sa.exc.SQLAlchemyError as exc:
        print(f"cockpit: months ahead of events not checked ({type(exc.orig or exc).__name__}); "
              "run cockpit partitions ensure as the store's owner", flush=True)
        return
    if made:
        print(f"cockpit: partitions created for {', '.join(m.strftime('%Y-%m') for m in made)}", flush=True)


def serve(s: Settings, host: str = "127.0.0.1", port: int = 8050, workers: int | None = None,
          threads: int | None = None, plain: bool = False) -> None:
    """Serve with gunicorn: `workers` processes (default COCKPIT_WORKERS), each an event loop whose
    WSGI pool has `threads` threads (default COCKPIT_THREADS); each worker builds its own
    context after the fork. `plain`: gunicorn's threaded workers as before issue 13 (the
    baseline of bench/slow_clients.py only)."""
    from gunicorn.app.base import BaseApplication

    if (err := bind_error(port, host)) is not None:
        raise CockpitError(f"cannot listen on {host}:{port}: {err.strerror} (choose another --port)")
    from cockpit.maps.tiles import configured_tiles

    configured_tiles(s.tiles)  # a misconfigured COCKPIT_TILES: one line now, not a bare map later
    refuse_unbound_role(s)
    link = first_admin_link(s, host, port)
    ensure_partitions(s)
    workers = workers or s.workers
    threads = threads or s.threads

    class Cockpit(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("timeout", 120)
            self.cfg.set("loglevel", "warning")
            if plain:
                self.cfg.set("threads", threads)
            else:
                self.cfg.set("worker_class", worker_class())
                self.cfg.set("keepalive", KEEPALIVE)

        def load(self):
            # In each worker, after the fork: connections the parent opened (the store check)
            # are the parent's, never to be shared.
            from cockpit import store

            store.forget_engines()
            # The web layer is imported only here: the core package stays free of Dash.
            from cockpit import context
            from cockpit.callbacks.app import create_app

            ctx = context.for_web(s)
            app = create_app(ctx)
            from cockpit.hotspots import schedule

            schedule.start(s)  # hotspot detection, one run per interval for all workers
            from cockpit.store import partitions

            partitions.start_upkeep(s)  # the months ahead of events, checked every hour
            # Dash learns which script files it may serve while rendering the index page; a
            # worker asked for a script before it ever rendered one answers 500 ("not a
            # registered library"). Render it once here, in every worker (no database needed).
            app.server.test_client().get(app.config.requests_pathname_prefix)
            if plain:
                return app.server
            from a2wsgi import WSGIMiddleware

            from cockpit import live_push

            # the change stream on the event loop; every other request through the thread pool
            return live_push.router(buffered(WSGIMiddleware(app.server, workers=threads)), lambda: ctx.feed,
                                    app.config.requests_pathname_prefix)

    print(f"cockpit: serving on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    if link:
        print(f"cockpit: sign in as admin (once, within a day) at {link}\n"
              "         then set a password: cockpit user passwd admin", flush=True)
    Cockpit().run()
