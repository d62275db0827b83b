"""The project-managed local PostgreSQL cluster (`cockpit db up|down|status`).

Used when COCKPIT_DATABASE_URL is unset. The cluster lives in the state folder
(default `.cockpit/pg`), listens on 127.0.0.1 and a unix socket in `.cockpit/run`, on a free
port chosen at creation (5432 is often taken by a system PostgreSQL), and survives between
runs. PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
that Debian's packages create.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

from cockpit.errors import CockpitError
from cockpit.ports import free_port, is_free

DB_NAME = "cockpit"
DB_USER = "cockpit"
FIRST_PORT = 54329

# Tuned for one analytical store on a small machine. wal_level=minimal lets the demo loader's
# COPY into a freshly truncated table skip the WAL; this is a local demo/dev cluster, not a
# replicated production server.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'1GB'",
    "work_mem": "'64MB'",
    "maintenance_work_mem": "'1GB'",
    "effective_cache_size": "'8GB'",
    "max_wal_size": "'8GB'",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "synchronous_commit": "off",
    "random_page_cost": "1.1",
    "jit": "off",
    "max_connections": "200",
}


def find_bin_dir() -> Path:
    """The newest PostgreSQL server whose installation also has PostGIS, else the newest one."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
        reverse=True,
    )
    for bin_dir in candidates:
        version = bin_dir.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists():
            return bin_dir
    if candidates:
        return candidates[0]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise CockpitError(
        "PostgreSQL server programs not found: install them (Debian: apt-get install postgresql "
        "postgresql-15-postgis-3) or set COCKPIT_DATABASE_URL to an existing PostGIS database"
    )


class ManagedCluster:
    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.as_root = os.geteuid() == 0
        base = self.state_dir
        if self.as_root and not self._postgres_can_reach(base):
            # e.g. a clone under /root (mode 700): keep the cluster where `postgres` can reach,
            # at a path derived from the project's so each checkout gets its own.
            digest = hashlib.sha1(str(base).encode()).hexdigest()[:10]
            base = Path(f"/var/tmp/cockpit-{digest}")
        self.base = base
        self.data = base / "pg"
        self.run = base / "run"
        self.conf = self.data / "cockpit.conf"
        self.log = self.data / "cockpit-server.log"

    # -- helpers -------------------------------------------------------------------------
    def _postgres_can_reach(self, path: Path) -> bool:
        probe = path
        while not probe.exists():
            probe = probe.parent
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return True  # nothing to check against; initdb will say what is wrong
        r = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(probe)], capture_output=True)
        return r.returncode == 0

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if not self.as_root:
            return argv
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise CockpitError("running as root needs the 'postgres' system user (apt-get install postgresql)")
        return ["runuser", "-u", "postgres", "--", *argv]

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self._as_server_user(argv), capture_output=True, text=True)
        if check and r.returncode != 0:
            detail = (r.stderr or r.stdout).strip().splitlines()
            raise CockpitError(f"{Path(argv[0]).name} failed: {detail[-1] if detail else r.returncode}")
        return r

    def _chown(self, path: Path) -> None:
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    @property
    def port(self) -> int | None:
        try:
            m = re.search(r"^port\s*=\s*(\d+)", self.conf.read_text(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None

    def url(self) -> str:
        port = self.port
        if port is None:
            raise CockpitError(f"no managed cluster in {self.data}: run `cockpit db up`")
        return f"postgresql://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"

    def _write_conf(self, port: int) -> None:
        lines = [f"port = {port}", f"unix_socket_directories = '{self.run}'"]
        lines += [f"{k} = {v}" for k, v in SERVER_SETTINGS.items()]
        self.conf.write_text("# written by cockpit (cockpit/store/cluster.py)\n" + "\n".join(lines) + "\n")
        self._chown(self.conf)

    # -- commands ------------------------------------------------------------------------
    def status(self) -> str:
        if not (self.data / "PG_VERSION").exists():
            return "absent"
        r = self._run([str(find_bin_dir() / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        return "running" if r.returncode == 0 else "stopped"

    def init(self) -> None:
        bin_dir = find_bin_dir()
        self.base.mkdir(parents=True, exist_ok=True)
        for d in (self.data, self.run):
            d.mkdir(parents=True, exist_ok=True)
            self._chown(d)
        os.chmod(self.data, 0o700)
        self._run([
            str(bin_dir / "initdb"), "-D", str(self.data), "-U", DB_USER, "--auth=trust",
            "-E", "UTF8", "--no-locale", "--no-instructions",
        ])
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists = 'cockpit.conf'\n")
        self._write_conf(free_port(FIRST_PORT, what="the local PostgreSQL"))

    def up(self) -> str:
        state = self.status()
        if state == "absent":
            print(f"cockpit: creating a local PostgreSQL cluster in {self.data}", flush=True)
            self.init()
        if state != "running":
            if not is_free(self.port or 0):  # someone took our port meanwhile
                self._write_conf(free_port(self.port + 1, what="the local PostgreSQL"))
            self.run.mkdir(parents=True, exist_ok=True)
            self._chown(self.run)
            r = self._run([
                str(find_bin_dir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-w", "-t", "60", "start",
            ], check=False)
            if r.returncode != 0:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] if self.log.exists() else []
                raise CockpitError(f"the local PostgreSQL did not start: {tail[0] if tail else r.stderr.strip()}")
        self._ensure_database()
        return self.url()

    def _ensure_database(self) -> None:
        import psycopg

        admin = f"postgresql://{DB_USER}@127.0.0.1:{self.port}/postgres"
        for attempt in range(50):
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
                        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)  # the server may still be finishing its start-up
        raise CockpitError(f"the local PostgreSQL on port {self.port} does not accept connections (see {self.log})")

    def down(self) -> bool:
        if self.status() != "running":
            return False
        self._run([str(find_bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        return True
