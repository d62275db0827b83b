"""One context per process: settings read once, the store resolved once, every web query bounded."""
from __future__ import annotations

import pytest

from conftest import signed_in_client
import sqlalchemy as sa

from cockpit import context
from cockpit.config import settings
from cockpit.errors import CockpitError, StoreUnavailable
from cockpit.store import cluster


def test_web_queries_run_under_the_statement_timeout(demo_url, use_store, monkeypatch):
    use_store(demo_url)
    monkeypatch.setenv("COCKPIT_STATEMENT_TIMEOUT", "1")
    monkeypatch.setenv("COCKPIT_POOL_SIZE", "3")
    ctx = context.for_web()
    assert ctx.engine.pool.size() == 3
    with ctx.connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1s"
    with pytest.raises(StoreUnavailable, match="statement timeout"):
        with ctx.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(3)"))
    # the admin commands (demo, migrate, rollup rebuild) run for minutes: no limit there
    with context.for_admin().connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "0"


def test_default_statement_timeout_is_thirty_seconds(demo_url, use_store, monkeypatch):
    use_store(demo_url)
    monkeypatch.delenv("COCKPIT_STATEMENT_TIMEOUT", raising=False)
    with context.for_web().connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "30s"


def test_the_app_resolves_the_store_once_not_per_request(demo_url, use_store, monkeypatch):
    """Where the store is is decided when the app is made; a callback or a poll never asks again
    (resolving the managed cluster reads its config and, as root, runs a subprocess)."""
    use_store(demo_url)
    calls = []
    real = settings

    def counting_settings():
        calls.append(1)
        return real()

    from cockpit.callbacks.app import create_app

    app = create_app()
    c = signed_in_client(app)
    monkeypatch.setattr("cockpit.config.settings", counting_settings)
    monkeypatch.setattr("cockpit.store.database.settings", counting_settings)
    monkeypatch.setattr(cluster.ManagedCluster, "url", lambda *a, **k: pytest.fail("store resolved again"))
    for _ in range(3):
        assert c.get("/geo/_root.json").status_code == 200
    assert calls == []


@pytest.mark.parametrize("name,value", [("COCKPIT_WORKERS", "0"), ("COCKPIT_THREADS", "many"),
                                        ("COCKPIT_POOL_SIZE", "-1"), ("COCKPIT_STATEMENT_TIMEOUT", "1.5")])
def test_bad_serving_settings_are_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(CockpitError, match=f"^{name}="):
        settings()
