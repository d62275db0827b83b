"""Kiosk URLs of unattended wall screens (`cockpit wall-token create|list|revoke`).

A wall token opens `/wall?key=…` on a browser nobody signs in to. It shows that subtree only,
read-only, never personal data, and nothing but the wall (cockpit/callbacks/guard.py). Like an
API token it is 32 random bytes kept as a SHA-256; revoking it ends every screen using it at
its next request.
"""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from cockpit.access.people import Person
from cockpit.access.users import check_scope
from cockpit.errors import BadRequest, NotFound
from cockpit.store.schema import wall_tokens

PREFIX = "wall_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: sa.Connection, name: str, scope_code: str | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise BadRequest("a wall token needs a name (which screen it is for)")
    scope_code = check_scope(conn, scope_code)
    if conn.execute(sa.select(wall_tokens.c.id).where(wall_tokens.c.name == name)).first():
        raise BadRequest(f"a wall token named {name!r} exists: revoke it first or choose another name")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(wall_tokens.insert().values(name=name, token_hash=_hash(token), scope_code=scope_code))
    return token


def revoke(conn: sa.Connection, name: str) -> None:
    done = conn.execute(wall_tokens.update().where(wall_tokens.c.name == name, wall_tokens.c.revoked_at.is_(None))
                        .values(revoked_at=sa.func.now())).rowcount
    if not done:
        raise NotFound(f"no live wall token named {name!r}")


def listing(conn: sa.Connection) -> list[dict]:
    w = wall_tokens.c
    return [r._asdict() for r in conn.execute(sa.select(w.name, w.scope_code, w.created_at, w.revoked_at)
                                               .order_by(w.name))]


def person_for(conn: sa.Connection, token: str | None) -> Person | None:
    """The wall screen a live token stands for, or None (unknown or revoked: the same)."""
    if not token or not token.startswith(PREFIX):
        return None
    row = conn.execute(sa.select(wall_tokens.c.id, wall_tokens.c.name, wall_tokens.c.scope_code).where(
        wall_tokens.c.token_hash == _hash(token), wall_tokens.c.revoked_at.is_(None))).first()
    return wall_person(row) if row else None


def wall_person(row) -> Person:
    return Person(name=row.name, kind="wall", role="leader", scope_code=row.scope_code, user_id=row.id)


def person_by_id(conn: sa.Connection, token_id: int) -> Person | None:
    """The wall as it is now; None once revoked."""
    row = conn.execute(sa.select(wall_tokens.c.id, wall_tokens.c.name, wall_tokens.c.scope_code).where(
        wall_tokens.c.id == token_id, wall_tokens.c.revoked_at.is_(None))).first()
    return wall_person(row) if row else None
