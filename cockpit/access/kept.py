"""The accounts a process has read, kept while no account changed.

A request names its account in the session cookie ("u:<id>", "w:<id>"); reading the account on
every request (so that disabling a user or revoking a wall shuts them out at once) was a query
per request. Accounts change rarely, and every change tells the listening servers (the triggers
of migration 0014 notify; the change feed's `accounts_epoch` moves when that arrives, and on
every reconnection, when notifications may have been missed). So an account read at one epoch
serves this process's requests until the epoch moves, and at most MAX_AGE seconds. While the
feed is not connected nothing is kept: every request reads its account, as before.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cockpit.access.people import Person

MAX_AGE = 60.0  # seconds: a backstop; the epoch is what normally ends a kept account


class KeptAccounts:
    def __init__(self, max_age: float = MAX_AGE):
        self.max_age = max_age
        # (the store's URL, the session's account) -> (the feed, its epoch, when read, the account):
        # ids are per store, and an epoch counts only within the feed that numbered it
        self._kept: dict[tuple[str, str], tuple[object, int, float, Person | None]] = {}
        self._lock = threading.Lock()
        self.reads = 0  # accounts read from the store (tests count them)

    def get(self, feed, key: str, read: Callable[[], Person | None]) -> Person | None:
        """The account `key` names (None: disabled, revoked or unknown), read by `read` unless
        this process read it since the feed's accounts epoch last moved."""
        epoch = feed.accounts_epoch if feed.connected else None  # read before the account
        where = (feed.url, key)
        if epoch is not None:
            with self._lock:
                hit = self._kept.get(where)
            if hit is not None and hit[0] is feed and hit[1] == epoch and time.monotonic() - hit[2] < self.max_age:
                return hit[3]
        found = read()
        with self._lock:
            self.reads += 1
            if epoch is not None:
                self._kept[where] = (feed, epoch, time.monotonic(), found)
        return found

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()
