"""Accounts of the web app: create, sign in (throttled), one-time links, disable, passwords.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's advice).
Failed sign-ins are
throttled per account (LOCK_AFTER failures lock it for LOCK_MINUTES) and per address
(ADDRESS_LIMIT failures within LOCK_MINUTES refuse that address), both counted in the store so
every worker and server agrees. A one-time sign-in link (`?token=`) works once, within its
lifetime: how the first admin gets in without a password (`cockpit serve` prints one), and how
an admin lets a new user in.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cockpit.access import audit
from cockpit.access.people import ROLES, Person
from cockpit.errors import BadRequest, Forbidden, NotFound, Unauthorized
from cockpit.store.schema import units, users

LOCK_AFTER = 5
LOCK_MINUTES = 15
ADDRESS_LIMIT = 20
LINK_MINUTES = 24 * 60
MIN_PASSWORD = 8
FIRST_ADMIN = "admin"

_hasher = PasswordHasher()
_DUMMY = _hasher.hash(secrets.token_hex(16))  # verified against when the name is unknown: same time taken


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def person_of(row) -> Person:
    return Person(name=row.name, kind="user", role=row.role, scope_code=row.scope_code, user_id=row.id)


def check_scope(conn: sa.Connection, scope_code: str | None) -> str | None:
    """A scope as given on the command line: a unit code that exists, or None for the whole city."""
    code = (scope_code or "").strip() or None
    if code in (None, "*"):
        return None
    if conn.execute(sa.select(units.c.id).where(units.c.code == code)).first() is None:
        raise NotFound(f"no unit with code {code!r} (a scope is a unit code, or '*' for the whole city)")
    return code


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def create(conn: sa.Connection, name: str, role: str, scope_code: str | None = None,
           password: str | None = None) -> Person:
    name = (name or "").strip()
    if not name:
        raise BadRequest("a user needs a name")
    check_role(role)
    scope_code = check_scope(conn, scope_code)
    if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
        raise BadRequest(f"a user named {name!r} exists")
    pw_hash = _hasher.hash(check_password(password)) if password is not None else None
    uid = conn.execute(users.insert().values(name=name, role=role, scope_code=scope_code, password_hash=pw_hash)
                       .returning(users.c.id)).scalar_one()
    return Person(name=name, kind="user", role=role, scope_code=scope_code, user_id=uid)


def _row(conn: sa.Connection, name: str):
    row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return row


def set_password(conn: sa.Connection, name: str, password: str) -> None:
    _row(conn, name)
    conn.execute(users.update().where(users.c.name == name).values(
        password_hash=_hasher.hash(check_password(password)), failed_count=0, locked_until=None))


def disable(conn: sa.Connection, name: str) -> None:
    """Signed-in sessions end at their next request (the account is re-read on every one)."""
    if _row(conn, name).disabled_at is not None:
        raise BadRequest(f"the user {name!r} is already disabled")
    conn.execute(users.update().where(users.c.name == name).values(
        disabled_at=sa.func.now(), login_token_hash=None, login_token_expires_at=None))


def listing(conn: sa.Connection) -> list[dict]:
    u = users.c
    rows = conn.execute(sa.select(u.name, u.role, u.scope_code, u.created_at, u.last_sign_in_at, u.disabled_at,
                                  u.locked_until, (u.password_hash.isnot(None)).label("has_password"))
                        .order_by(u.name))
    return [r._asdict() for r in rows]


def person_by_id(conn: sa.Connection, user_id: int) -> Person | None:
    """The account as it is now; None once disabled or removed."""
    row = conn.execute(sa.select(users).where(users.c.id == user_id, users.c.disabled_at.is_(None))).first()
    return person_of(row) if row else None


def person_by_name(conn: sa.Connection, name: str) -> Person | None:
    row = conn.execute(sa.select(users).where(users.c.name == name, users.c.disabled_at.is_(None))).first()
    return person_of(row) if row else None


def verify(conn: sa.Connection, name: str, password: str, address: str | None = None) -> Person:
    """The Person whose name and password these are, recording the attempt either way (the
    caller commits). Unauthorized for a wrong name or password (the same words for both);
    Forbidden while the account or the address is locked out."""
    now = _now()
    name = (name or "").strip()
    since = now - timedelta(minutes=LOCK_MINUTES)
    if address and conn.execute(sa.text("SELECT cockpit_failed_sign_ins(:a, :s)"),
                                {"a": address, "s": since}).scalar() >= ADDRESS_LIMIT:
        audit.record(conn, None, "sign_in", outcome="denied", address=address, actor=name or "?",
                     reason="address locked")
        raise Forbidden(f"too many failed sign-ins from this address: try again in {LOCK_MINUTES} minutes")
    row = conn.execute(sa.select(users).where(users.c.name == name)).first() if name else None
    if row is not None and row.locked_until is not None and row.locked_until > now:
        audit.record(conn, None, "sign_in", outcome="denied", address=address, actor=name, reason="account locked")
        minutes = max(1, int((row.locked_until - now).total_seconds() // 60) + 1)
        raise Forbidden(f"too many failed sign-ins for this account: try again in {minutes} minutes")
    ok = False
    try:
        ok = _hasher.verify(row.password_hash if row is not None and row.password_hash else _DUMMY, password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and row is not None and row.password_hash is not None and row.disabled_at is None
    if not ok:
        audit.record(conn, None, "sign_in", outcome="failed", address=address, actor=name or "?")
        if row is not None:
            recent = row.last_failed_at is not None and row.last_failed_at >= since
            count = (row.failed_count if recent else 0) + 1
            conn.execute(users.update().where(users.c.id == row.id).values(
                failed_count=count, last_failed_at=now,
                locked_until=now + timedelta(minutes=LOCK_MINUTES) if count >= LOCK_AFTER else None))
        raise Unauthorized("wrong name or password")
    person = person_of(row)
    values = dict(failed_count=0, locked_until=None, last_sign_in_at=now)
    conn.execute(users.update().where(users.c.id == row.id).values(**values))
    audit.record(conn, person, "sign_in", address=address, method="password")
    return person


def issue_link(conn: sa.Connection, name: str, minutes: int = LINK_MINUTES) -> str:
    """A one-time sign-in token for `name` (replacing any earlier one)."""
    row = _row(conn, name)
    if row.disabled_at is not None:
        raise BadRequest(f"the user {name!r} is disabled")
    token = secrets.token_urlsafe(32)
    conn.execute(users.update().where(users.c.id == row.id).values(
        login_token_hash=_sha(token), login_token_expires_at=_now() + timedelta(minutes=minutes)))
    return token


def redeem_link(conn: sa.Connection, token: str | None, address: str | None = None) -> Person:
    """The Person a one-time token was issued to; the token is spent (the caller commits)."""
    row = None
    if token:
        row = conn.execute(sa.select(users).where(users.c.login_token_hash == _sha(token),
                                                  users.c.disabled_at.is_(None))).first()
    if row is None or row.login_token_expires_at is None or row.login_token_expires_at <= _now():
        audit.record(conn, None, "sign_in", outcome="failed", address=address, actor="?", method="link")
        raise Unauthorized("this sign-in link is not valid (used, expired or unknown): ask for a new one")
    conn.execute(users.update().where(users.c.id == row.id).values(
        login_token_hash=None, login_token_expires_at=None, last_sign_in_at=_now(), failed_count=0,
        locked_until=None))
    person = person_of(row)
    audit.record(conn, person, "sign_in", address=address, method="link")
    return person


def ensure_first_admin(conn: sa.Connection) -> str | None:
    """On a store with no accounts, the `admin` account (whole city, no password yet); while it
    has no password, a fresh one-time link for it. None when nothing is needed."""
    if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 0:
        create(conn, FIRST_ADMIN, "admin")
    row = conn.execute(sa.select(users).where(users.c.name == FIRST_ADMIN)).first()
    if row is None or row.password_hash is not None or row.disabled_at is not None:
        return None
    return issue_link(conn, FIRST_ADMIN)
