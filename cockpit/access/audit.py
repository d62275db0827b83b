"""The audit trail (留痕): who did what, when, from where, to which unit or event, and how it ended.

Append-only: a trigger refuses UPDATE and DELETE of `audit_log` for everyone, and the app role
may only INSERT (cockpit/store/roles.py). Actions recorded (README "Personal data and audit"):

  sign_in, sign_out, reveal_contact (written by the store's own function, whatever the outcome),
  report_download, scope_denied, import_units, import_events, quarantine_retry,
  user_add, user_disable, user_passwd, user_link, wall_token_create, wall_token_revoke,
  api_token_create, api_token_revoke, warning_acknowledge, warning_close
"""
from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from cockpit.access.people import Person
from cockpit.store.schema import audit_log

OUTCOMES = ("ok", "denied", "failed")


def record(conn: sa.Connection, person: Person | None, action: str, *, outcome: str = "ok",
           address: str | None = None, unit_code: str | None = None, event_id: int | None = None,
           actor: str | None = None, **detail) -> None:
    """One row. `actor` names who it was when there is no Person yet (a failed sign-in)."""
    assert outcome in OUTCOMES, outcome
    conn.execute(audit_log.insert().values(
        actor=actor or (person.name if person else "?"), actor_kind=person.kind if person else "user",
        address=address, action=action, unit_code=unit_code, event_id=event_id, outcome=outcome,
        detail={k: v for k, v in detail.items() if v is not None}))


def query(conn: sa.Connection, since: datetime | None = None, user: str | None = None,
          action: str | None = None, limit: int = 1000) -> list[dict]:
    """The newest rows first (the store's owner only: the app role cannot read the log)."""
    a = audit_log.c
    q = sa.select(a.id, a.at, a.actor, a.actor_kind, a.address, a.action, a.unit_code, a.event_id, a.outcome,
                  a.detail).order_by(a.at.desc(), a.id.desc()).limit(limit)
    if since is not None:
        q = q.where(a.at >= since)
    if user:
        q = q.where(a.actor == user)
    if action:
        q = q.where(a.action == action)
    return [r._asdict() for r in conn.execute(q)]


def as_line(row: dict, tz) -> str:
    """One row as a line of `cockpit audit`."""
    where = " ".join(x for x in (row["unit_code"] and f"unit={row['unit_code']}",
                                 row["event_id"] and f"event={row['event_id']}") if x)
    detail = json.dumps(row["detail"], ensure_ascii=False) if row["detail"] else ""
    return "  ".join(x for x in (row["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"), f"{row['actor_kind']}:{row['actor']}",
                                 row["address"] or "-", row["action"], row["outcome"], where, detail) if x)


def unit_exists(conn: sa.Connection, code: str) -> bool:
    """Whether a unit with this code exists anywhere, in the connection's scope or not (to tell
    a denial from a typo in the record; the asker is told neither)."""
    if "\x00" in code:
        return False
    return bool(conn.execute(sa.text("SELECT cockpit_unit_exists(:c)"), {"c": code}).scalar())
