"""Reporters' names and phone numbers: personal data.

The app role cannot read them (column grants, cockpit/store/roles.py). It reads them masked
(张*, 138****5678: the rule is the store's, cockpit_mask_name/phone in migration 0011) and a
duty officer or admin reveals one event's contact with a stated reason; the store checks role,
reason and scope and writes the audit row itself, so no caller can reveal without a record.
"""
from __future__ import annotations

import sqlalchemy as sa

from cockpit.errors import BadRequest, Forbidden, NotFound


def masked(conn: sa.Connection, event_ids: list[int]) -> dict[int, tuple[str | None, str | None]]:
    """{event id: (masked name, masked phone)} for the events in the connection's scope."""
    if not event_ids:
        return {}
    rows = conn.execute(sa.text("SELECT event_id, reporter_name, reporter_phone FROM cockpit_masked_contacts(:ids)"),
                        {"ids": list(event_ids)})
    return {r[0]: (r[1], r[2]) for r in rows}


def reveal(conn: sa.Connection, event_id: int, reason: str | None) -> tuple[str | None, str | None]:
    """(name, phone) in clear. Commits (the audit row must stay even when the answer is no),
    which ends the connection's scope: use a connection for this alone."""
    outcome, name, phone = conn.execute(sa.text("SELECT * FROM cockpit_reveal_contact(:e, :r)"),
                                        {"e": int(event_id), "r": reason}).one()
    conn.commit()
    if outcome == "no_event":
        raise NotFound(f"no event {event_id}")
    if outcome == "role":
        raise Forbidden("only a duty officer or an administrator may reveal a reporter's contact")
    if outcome == "reason":
        raise BadRequest("state why you need the reporter's contact")
    return name, phone
