"""The project-managed local PostgreSQL cluster (`cockpit db up|down|status`).

Used when COCKPIT_DATABASE_URL is unset. The cluster lives in the state folder
(default `.cockpit/pg`), listens on 127.0.0.1 and a unix socket in `.cockpit/run`, on a free
port chosen at creation (5432 is often taken by a system PostgreSQL), and survives between
runs. PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
that Debian's packages create.

Every connection needs a password (scram-sha-256, TCP and socket alike). Three login roles:
`cockpit`, owner and superuser (migrations, demo loads, the admin commands), `cockpit_app`,
which the web app uses and which may only read, and `cockpit_writer`, which stores the events
POSTed to the API (cockpit/store/roles.py). Their passwords are generated here and kept in the
state folder, mode 0600 (`db-secret`, `db-app-secret`, `db-writer-secret`); the cluster itself
only ever sees their SCRAM verifiers. A cluster made before (trust auth) is
secured in place by the next `up()`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from cockpit.errors import CockpitError
from cockpit.store.roles import APP_ROLE, OWNER_ROLE, WRITER_ROLE
from cockpit.ports import free_port, is_free

DB_NAME = "cockpit"
DB_USER = OWNER_ROLE
FIRST_PORT = 54329

# role -> (login role, file in the state folder holding its password)
ROLES = {"owner": (OWNER_ROLE, "db-secret"), "app": (APP_ROLE, "db-app-secret"),
         "writer": (WRITER_ROLE, "db-writer-secret")}
LOGIN_ROLES = ("app", "writer")  # made by _ensure_login_roles with no privileges of their own
APP_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

# The whole pg_hba.conf: a password for every connection, on the socket and on 127.0.0.1 (the
# only address the server listens on); no trust, no peer, no replication.
HBA = """# written by cockpit (cockpit/store/cluster.py): every connection needs its role's password
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  scram-sha-256
host    all       all   127.0.0.1/32   scram-sha-256
"""

# Tuned for one analytical store on a small machine. wal_level=minimal lets the demo loader's
# COPY into a freshly truncated table skip the WAL; this is a local demo/dev cluster, not a
# replicated production server.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "password_encryption": "'scram-sha-256'",
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


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a scram-sha-256 password (RFC 5802/7677), made here so that
    the plain password never reaches the server, its logs or a file the server user can read."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored verifier is this password's."""
    m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", verifier or "")
    if not m:
        return False
    again = scram_verifier(password, base64.b64decode(m.group(2)), int(m.group(1)))
    return hmac.compare_digest(again, verifier)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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

    def url(self, role: str = "owner") -> str:
        """libpq URI as `role`: "owner" (cockpit: migrations, admin commands), "app"
        (cockpit_app: the web app, read only) or "writer" (cockpit_writer: POST /api/events)."""
        port = self.port
        if port is None:
            raise CockpitError(f"no managed cluster in {self.data}: run `cockpit db up`")
        user = ROLES[role][0]
        return f"postgresql://{user}:{quote(self.secret(role), safe='')}@127.0.0.1:{port}/{DB_NAME}"

    # -- passwords -----------------------------------------------------------------------
    def secret_path(self, role: str) -> Path:
        return self.state_dir / ROLES[role][1]

    def secret(self, role: str) -> str:
        path = self.secret_path(role)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise CockpitError(f"no password for the local PostgreSQL in {path}: run `cockpit db up`") from None

    def _ensure_secret(self, role: str) -> bool:
        """Make the role's password file (mode 0600, this user's) if missing; True if made."""
        path = self.secret_path(role)
        if path.exists():
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole, then linked into place: a concurrent `up` never reads half a password
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False  # another process made it first: theirs is the one
        finally:
            tmp.unlink()
        return True

    def _hba_is_ours(self) -> bool:
        try:
            return (self.data / "pg_hba.conf").read_text() == HBA
        except OSError:
            return False

    def _secured(self) -> bool:
        return self._hba_is_ours() and all(self.secret_path(role).exists() for role in ROLES)

    def _write_hba(self) -> None:
        tmp = self.data / "pg_hba.conf.cockpit-new"
        tmp.write_text(HBA)
        os.chmod(tmp, 0o600)
        self._chown(tmp)
        os.replace(tmp, self.data / "pg_hba.conf")

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
        for role in ROLES:
            self._ensure_secret(role)
        # initdb reads the owner's password from a file the server user can read: give it the
        # verifier only, for as long as initdb runs.
        pwfile = self.run / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(scram_verifier(self.secret("owner")) + "\n")
        self._chown(pwfile)
        try:
            self._run([
                str(bin_dir / "initdb"), "-D", str(self.data), "-U", DB_USER, "--auth=scram-sha-256",
                f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-instructions",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists = 'cockpit.conf'\n")
        self._write_conf(free_port(FIRST_PORT, what="the local PostgreSQL"))
        self._write_hba()

    def up(self) -> str:
        state = self.status()
        if state == "absent":
            print(f"cockpit: creating a local PostgreSQL cluster in {self.data}", flush=True)
            self.init()
        elif not self._secured():
            state = self._secure(state)
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

        for attempt in range(50):
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user=DB_USER, password=self.secret("owner"),
                                     dbname="postgres", autocommit=True, connect_timeout=5) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
                        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                    self._ensure_login_roles(conn)
                    return
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    raise CockpitError(
                        f"the local PostgreSQL refuses the password in {self.secret_path('owner')}: remove that "
                        "file and run `cockpit db up` to set a new one") from None
                time.sleep(0.1)  # the server may still be finishing its start-up
        raise CockpitError(f"the local PostgreSQL on port {self.port} does not accept connections (see {self.log})")

    def _ensure_login_roles(self, conn) -> None:
        """The web app's roles: may log in with their passwords, nothing more (grants: roles.py)."""
        for role in LOGIN_ROLES:
            name, password = ROLES[role][0], self.secret(role)
            row = conn.execute(
                "SELECT rolpassword, rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls "
                "OR NOT rolcanlogin FROM pg_authid WHERE rolname = %s", (name,)).fetchone()
            if row is None:
                conn.execute(f"CREATE ROLE {name} {APP_ROLE_ATTRIBUTES} PASSWORD {_literal(scram_verifier(password))}")
            elif row[1] or not scram_matches(row[0], password):
                conn.execute(f"ALTER ROLE {name} {APP_ROLE_ATTRIBUTES} PASSWORD {_literal(scram_verifier(password))}")

    # -- securing a cluster made before passwords ---------------------------------------
    def _secure(self, state: str) -> str:
        """Give a cluster made with trust auth (or whose password file was lost) passwords and
        the password-only pg_hba.conf; returns its state afterwards. The login roles follow in
        _ensure_database."""
        made = self._ensure_secret("owner")
        for role in LOGIN_ROLES:
            self._ensure_secret(role)
        if not made and self._hba_is_ours():
            return state  # only the app's or the writer's password was missing
        print(f"cockpit: securing the local PostgreSQL in {self.data}: scram-sha-256 passwords, "
              f"kept in {self.state_dir}", flush=True)
        verifier = scram_verifier(self.secret("owner"))
        if state == "running":
            if self._secure_live(verifier):
                return "running"
            self.down()  # its owner's password is unknown here: reset it with the server stopped
        self._single_user(f"ALTER ROLE {DB_USER} PASSWORD {_literal(verifier)};")
        self._write_hba()
        return "stopped"

    def _secure_live(self, verifier: str) -> bool:
        """A running cluster that still trusts its socket (or knows our password): set the owner's
        password, write pg_hba.conf and reload. False if the server would not let us in."""
        import psycopg

        def owner(**extra):
            return psycopg.connect(host=str(self.run), port=self.port, user=DB_USER, dbname="postgres",
                                   autocommit=True, connect_timeout=5, **extra)

        try:
            conn = owner(password=self.secret("owner"))
        except psycopg.OperationalError:
            return False
        with conn:
            conn.execute(f"ALTER ROLE {DB_USER} PASSWORD {_literal(verifier)}")
            loaded = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
            self._write_hba()
            conn.execute("SELECT pg_reload_conf()")
        # The reload is asynchronous: wait until new connections get the new pg_hba.conf (their
        # pg_conf_load_time is the postmaster's, set when it re-read its files).
        for attempt in range(100):
            try:
                with owner(password=self.secret("owner")) as conn:
                    if conn.execute("SELECT pg_conf_load_time() > %s", (loaded,)).fetchone()[0]:
                        break
            except psycopg.OperationalError:
                pass
            time.sleep(0.05)
        return True

    def _single_user(self, sql: str) -> None:
        """Run statements (one a line) in single-user mode: the server stopped, nothing listening."""
        argv = self._as_server_user([str(find_bin_dir() / "postgres"), "--single", "-D", str(self.data), "postgres"])
        r = subprocess.run(argv, input=sql + "\n", capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or re.search(r"^\s*(ERROR|FATAL|PANIC):", out, re.M):
            lines = [ln for ln in out.splitlines() if re.search(r"ERROR|FATAL|PANIC", ln)] or out.splitlines()
            raise CockpitError(f"postgres --single failed: {lines[0].strip() if lines else r.returncode}")

    def down(self) -> bool:
        if self.status() != "running":
            return False
        self._run([str(find_bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        return True
