"""Bearer tokens for other systems using the HTTP API (`cockpit api-token create|list|revoke`).

A token is 32 random bytes (URL-safe text, prefixed `ck_`), shown once when made. The store keeps
only its SHA-256: a token has the entropy of a key, so a fast hash is enough to make a leaked
table useless, and a lookup by hash costs one index read per request. Revoking keeps the row
(when, and that the name existed) but the token stops working at once, on every worker.
"""
from __future__ import annotations

import hashlib
import secrets
from typing import NamedTuple

import sqlalchemy as sa

from cockpit.access.people import Person
from cockpit.access.users import check_scope
from cockpit.errors import BadRequest, NotFound
from cockpit.store.schema import api_tokens

PREFIX = "ck_"
SCOPES = ("read", "write")


class Holder(NamedTuple):
    name: str
    scope: str  # read or write
    scope_code: str | None = None  # the subtree it reads; None: the whole city

    @property
    def may_write(self) -> bool:
        return self.scope == "write"

    @property
    def person(self) -> Person:
        return Person(name=self.name, kind="api", role="leader", scope_code=self.scope_code)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: sa.Connection, name: str, scope: str = "read", unit_code: str | None = None) -> str:
    """A new token for `name`, reading `unit_code`'s subtree (None: the whole city); the only
    time it is seen in clear."""
    if scope not in SCOPES:
        raise BadRequest(f"a token's scope is one of {', '.join(SCOPES)}, not {scope!r}")
    name = (name or "").strip()
    if not name:
        raise BadRequest("a token needs a name (who or what will use it)")
    if conn.execute(sa.select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
        raise BadRequest(f"a token named {name!r} exists: revoke it first or choose another name")
    unit_code = check_scope(conn, unit_code)
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(api_tokens.insert().values(name=name, token_hash=_hash(token), scope=scope, scope_code=unit_code))
    return token


def revoke(conn: sa.Connection, name: str) -> None:
    done = conn.execute(api_tokens.update().where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                        .values(revoked_at=sa.func.now())).rowcount
    if not done:
        raise NotFound(f"no live token named {name!r}")


def listing(conn: sa.Connection) -> list[dict]:
    rows = conn.execute(sa.select(api_tokens.c.name, api_tokens.c.scope, api_tokens.c.scope_code, api_tokens.c.created_at,
                                  api_tokens.c.revoked_at)
                        .order_by(api_tokens.c.name))
    return [r._asdict() for r in rows]


def holder(conn: sa.Connection, token: str | None) -> Holder | None:
    """Name and scope of a live token, or None (absent, unknown or revoked: the same to the asker)."""
    if not token or not token.startswith(PREFIX):
        return None
    row = conn.execute(sa.select(api_tokens.c.name, api_tokens.c.scope, api_tokens.c.scope_code).where(
        api_tokens.c.token_hash == _hash(token), api_tokens.c.revoked_at.is_(None))).first()
    return Holder(*row) if row else None
