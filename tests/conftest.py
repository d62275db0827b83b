"""Throwaway databases on a real PostgreSQL + PostGIS server.

The server is COCKPIT_DATABASE_URL's when set (its user must be allowed to CREATE DATABASE),
else the project-managed cluster, started if needed, as its owner role (`up()` gives that URL). Each database made here is dropped at
the end of the run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cockpit.store import migrate
from cockpit import store
from cockpit.config import settings
from cockpit.demo.load import load_demo
from cockpit.store.cluster import ManagedCluster

# The demo the read-only tests share: small enough to build in seconds, big enough to have
# every level, source, status and rating.
DEMO = {"seed": 11, "grids": 300, "events": 60_000, "days": 90}


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("COCKPIT_DATABASE_URL")
    if url:
        return url
    return ManagedCluster(settings().state_dir).up()


class Databases:
    def __init__(self, server_url: str):
        self.server = make_url(server_url)
        self.made: list[str] = []

    def _admin(self) -> psycopg.Connection:
        admin = self.server.set(database="postgres").render_as_string(hide_password=False)
        return psycopg.connect(admin, autocommit=True)

    def create(self, label: str, migrated: bool = True) -> str:
        name = f"cockpit_test_{label}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        url = self.server.set(database=name).render_as_string(hide_password=False)
        if migrated:
            migrate.upgrade(store.engine(url))
        return url

    def drop_all(self) -> None:
        store._engine_for.cache_clear()  # pooled connections are cut by WITH (FORCE)
        with self._admin() as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(server_url):
    dbs = Databases(server_url)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def demo_url(databases) -> str:
    """A migrated store holding the shared demo city (read-only for tests)."""
    url = databases.create("demo")
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None, **DEMO)
    return url


@pytest.fixture(scope="session")
def demo_engine(demo_url) -> sa.Engine:
    return store.engine(demo_url)


@pytest.fixture
def empty_url(databases) -> str:
    """A fresh migrated store with no rows, for tests that write."""
    return databases.create("empty")


@pytest.fixture
def use_store(monkeypatch):
    """Point this process (and CLI subprocesses) at a given store URL."""
    def point(url: str) -> str:
        monkeypatch.setenv("COCKPIT_DATABASE_URL", url)
        monkeypatch.setenv("COCKPIT_APP_DATABASE_URL", app_url(url))  # the web reads under row-level security
        return url
    return point


def app_url(url: str) -> str:
    """The same database as the web app's role, `cockpit_app`, which row-level security binds
    (the owner URLs the fixtures give are exempt from it)."""
    return store.as_app_role(url)


def run_cli(*args: str, url: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `cockpit` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    if url is not None:
        full_env["COCKPIT_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)


def sign_in_link(role: str = "admin", scope_code: str | None = None, url: str | None = None) -> str:
    """A one-time sign-in token of a new account with this role and scope, in the store in use
    (COCKPIT_DATABASE_URL, as set by `use_store`)."""
    from cockpit.access import users

    url = url or os.environ["COCKPIT_DATABASE_URL"]
    name = f"test-{role}-{scope_code or 'city'}-{uuid.uuid4().hex[:6]}"
    with store.engine(url).begin() as conn:
        users.create(conn, name, role, scope_code)
        return users.issue_link(conn, name)


def with_token(path: str, token: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}token={token}"


def signed_in_client(app, role: str = "admin", scope_code: str | None = None, url: str | None = None):
    """A Flask test client of `app` signed in (through a one-time link) as a new account."""
    client = app.server.test_client()
    answer = client.get(with_token("/", sign_in_link(role, scope_code, url)))
    assert answer.status_code == 302, answer.get_data(as_text=True)[:200]
    return client


def open_signed_in(dash_duo, path: str, role: str = "admin", scope_code: str | None = None) -> None:
    """Open `path` on the running test server as a new account (its one-time link redirects to
    the page without the token)."""
    dash_duo.wait_for_page(f"{dash_duo.server_url}{with_token(path, sign_in_link(role, scope_code))}")


def serve_signed_in(dash_duo, app, path: str = "/", role: str = "admin", scope_code: str | None = None) -> None:
    """Serve `app` and open `path` signed in (an unsigned browser would land on /login, which
    Dash's own start_server would wait on for ever)."""
    dash_duo.start_server(app, navigate=False)
    dash_duo._url = dash_duo.server.url
    open_signed_in(dash_duo, path, role, scope_code)


def start(dash_duo, path: str, width: int = 1920, height: int = 1080, role: str = "admin",
          scope_code: str | None = None, app=None) -> None:
    """Serve the app on the store in use and open `path` at an exact screen size, signed in as a
    new account of `role` over `scope_code` (None: the whole city)."""
    from cockpit.callbacks.app import create_app

    dash_duo.start_server(app or create_app(), navigate=False)
    dash_duo._url = dash_duo.server.url
    viewport(dash_duo, width, height)
    open_signed_in(dash_duo, path, role, scope_code)


def viewport(dash_duo, width: int, height: int) -> None:
    """An exact viewport (a wall screen's pixels), whatever the browser window adds."""
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


# A small city of three levels: two districts, each with two grids (1°×1° squares).
FOUR_GRIDS = [
    ("C", "滨江市", "city", None, (10, 50, 12, 52)),
    ("D1", "西区", "district", "C", (10, 50, 11, 52)),
    ("D2", "东区", "district", "C", (11, 50, 12, 52)),
    ("G11", "西区第1网格", "grid", "D1", (10, 50, 11, 51)),
    ("G12", "西区第2网格", "grid", "D1", (10, 51, 11, 52)),
    ("G21", "东区第1网格", "grid", "D2", (11, 50, 12, 51)),
    ("G22", "东区第2网格", "grid", "D2", (11, 51, 12, 52)),
]


def box_city(url: str, units: list[tuple]) -> None:
    """Units whose boundaries are lon/lat boxes: (code, name, level, parent code, (x0, y0, x1, y1))."""
    with store.engine(url).begin() as conn:
        for code, name, level, parent, (x0, y0, x1, y1) in units:
            conn.execute(sa.text(
                "INSERT INTO units (code, name, level, parent_id, geom) VALUES (:c, :n, :l, "
                "(SELECT id FROM units WHERE code = :p), ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)))"),
                {"c": code, "n": name, "l": level, "p": parent, "x0": x0, "y0": y0, "x1": x1, "y1": y1})


def router_request(client, pathname: str, search: str = "", **headers):
    """What the browser's page router posts when the page loads: its own path and query."""
    body = {
        "output": "page-content.children",
        "outputs": {"id": "page-content", "property": "children"},
        "inputs": [{"id": "page-url", "property": "pathname", "value": pathname}],
        "state": [{"id": "page-url", "property": "search", "value": search}],
        "changedPropIds": ["page-url.pathname"],
    }
    return client.post("/_dash-update-component", json=body, headers=headers)


def component_ids(tree) -> set[str]:
    """Every component id in a Dash answer's JSON."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("props"), dict) and "id" in node["props"]:
                found.add(str(node["props"]["id"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(tree)
    return found
