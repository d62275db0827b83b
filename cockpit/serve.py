"""`cockpit serve`: the web app under gunicorn (several workers; debug off)."""
from __future__ import annotations

from cockpit.config import Settings
from cockpit.errors import CockpitError
from cockpit.ports import bind_error


def serve(s: Settings, host: str = "127.0.0.1", port: int = 8050, workers: int | None = None,
          threads: int | None = None) -> None:
    """Serve with gunicorn: `workers` processes (default COCKPIT_WORKERS) of `threads` threads
    (default COCKPIT_THREADS); each worker builds its own context after the fork."""
    from gunicorn.app.base import BaseApplication

    if (err := bind_error(port, host)) is not None:
        raise CockpitError(f"cannot listen on {host}:{port}: {err.strerror} (choose another --port)")
    from cockpit.maps.tiles import configured_tiles

    configured_tiles(s.tiles)  # a misconfigured COCKPIT_TILES: one line now, not a bare map later
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
    Cockpit().run()
