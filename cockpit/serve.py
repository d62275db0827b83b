"""`cockpit serve`: the web app under gunicorn (several workers; debug off)."""
from __future__ import annotations

from cockpit.config import Settings
from cockpit.errors import CockpitError
from cockpit.ports import bind_error


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


def serve(s: Settings, host: str = "127.0.0.1", port: int = 8050, workers: int | None = None,
          threads: int | None = None) -> None:
    """Serve with gunicorn: `workers` processes (default COCKPIT_WORKERS) of `threads` threads
    (default COCKPIT_THREADS); each worker builds its own context after the fork."""
    from gunicorn.app.base import BaseApplication

    if (err := bind_error(port, host)) is not None:
        raise CockpitError(f"cannot listen on {host}:{port}: {err.strerror} (choose another --port)")
    from cockpit.maps.tiles import configured_tiles

    configured_tiles(s.tiles)  # a misconfigured COCKPIT_TILES: one line now, not a bare map later
    refuse_unbound_role(s)
    link = first_admin_link(s, host, port)
    workers = workers or s.workers
    threads = threads or s.threads

    class Cockpit(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 120)
            self.cfg.set("loglevel", "warning")

        def load(self):
            # In each worker, after the fork: connections the parent opened (the store check)
            # are the parent's, never to be shared.
            from cockpit import store

            store.forget_engines()
            # The web layer is imported only here: the core package stays free of Dash.
            from cockpit import context
            from cockpit.callbacks.app import create_app

            app = create_app(context.for_web(s))
            from cockpit.hotspots import schedule

            schedule.start(s)  # hotspot detection, one run per interval for all workers
            # Dash learns which script files it may serve while rendering the index page; a
            # worker asked for a script before it ever rendered one answers 500 ("not a
            # registered library"). Render it once here, in every worker (no database needed).
            app.server.test_client().get(app.config.requests_pathname_prefix)
            return app.server

    print(f"cockpit: serving on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    if link:
        print(f"cockpit: sign in as admin (once, within a day) at {link}\n"
              "         then set a password: cockpit user passwd admin", flush=True)
    Cockpit().run()
