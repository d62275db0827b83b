"""A Person: who is asking, in which role, over which part of the city.

Users, wall screens, API tokens and the command line are all Persons, so every check (what
page, which subtree, may they see a phone number) asks the same object. `scope_code` None is
the whole city; anything else is the code of the unit whose subtree they see.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("leader", "officer", "duty", "admin")
KINDS = ("user", "wall", "api", "cli")
REVEALERS = ("duty", "admin")  # may see one event's reporter contact, with a reason


@dataclass(frozen=True)
class Person:
    name: str
    kind: str  # one of KINDS
    role: str  # one of ROLES; a wall screen or an API token reads like a leader of its subtree
    scope_code: str | None = None
    user_id: int | None = None

    @property
    def may_reveal(self) -> bool:
        return self.kind == "user" and self.role in REVEALERS

    @property
    def is_admin(self) -> bool:
        return self.kind in ("user", "cli") and self.role == "admin"

    @property
    def city_wide(self) -> bool:
        return self.scope_code is None

    @property
    def scope_key(self) -> str:
        """What a cache of computed views is keyed by: two people with the same key see the
        same rows."""
        return "*" if self.scope_code is None else f"unit:{self.scope_code}"

    @property
    def setting(self) -> str:
        """The value of `cockpit.scope_unit` for this person (migration 0011)."""
        return "*" if self.scope_code is None else self.scope_code


# The admin commands run as the store's owner, which no policy restricts; recorded as this.
CLI_PERSON = Person(name="cli", kind="cli", role="admin")
