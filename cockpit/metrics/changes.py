"""Change notification: every statement that writes `events` tells the listening servers.

A statement trigger on events (any writer, plain SQL included) sends NOTIFY on CHANNEL with
its transaction id; PostgreSQL delivers it when that transaction commits, so a listener learns
of a committed change within milliseconds and never of one that rolled back.

Each server process keeps one LISTEN connection (ChangeFeed, a daemon thread). What it exposes
is a *token* naming the store's state: the store's own watermark (newest event and transition
ids, WATERMARK), read on connecting and again after each notification. A burst of notifications
costs one read: the feed waits DEBOUNCE for the burst to end, then reads once. Because the token
comes from the store and not from which notification a process happened to see, every worker of
every server derives the same token for the same state, so a browser may ask any worker "changed
since <token>?" and the answer costs no query when nothing changed, and caches of computed views
(cockpit.metrics.viewcache) can be keyed by it.

A write that moves neither id (an UPDATE without a transition, a DELETE) still changes the
state: then the token is the watermark with the notification's transaction id appended
(`w12.40~981`); every feed that saw that notification derives the same. A feed that connected
after it holds the bare watermark; `is_news` counts that as no news, so no screen refreshes for
it. If the store goes away the feed says since when, retries with a growing pause (capped), and
on recovery reads the watermark again: screens refresh if the store changed meanwhile.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "cockpit_events"
RETRY_FIRST, RETRY_MAX = 0.5, 8.0  # seconds between reconnection attempts: doubling, capped
DEBOUNCE = 0.05  # seconds a burst of notifications may take before the one watermark read for all


# what the trigger sends; a bulk import that runs with the triggers off sends it itself
NOTIFY = f"pg_notify('{CHANNEL}', txid_current()::text)"


def install_sql() -> list[str]:
    return [
        f"""
    CREATE OR REPLACE FUNCTION cockpit_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM {NOTIFY};
        RETURN NULL;
    END $$""",
        "CREATE TRIGGER events_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_notify_events()",
    ]


def uninstall_sql() -> list[str]:
    return ["DROP TRIGGER IF EXISTS events_notify ON events", "DROP FUNCTION IF EXISTS cockpit_notify_events()"]


WATERMARK = ("SELECT 'w' || coalesce((SELECT max(id) FROM events), 0) || '.' "
             "|| coalesce((SELECT max(id) FROM event_transitions), 0)")


# Where the primary's WAL is when a change is heard: a replica that has replayed this far has it.
LSN = "SELECT pg_current_wal_lsn()::text"


def watermark_of(token: str | None) -> str | None:
    """The watermark part of a token ("w12.40~981" -> "w12.40")."""
    return None if token is None else token.split("~", 1)[0]


def next_token(previous: str | None, watermark: str, txid: str | None) -> str:
    """The token after a notification from transaction `txid`, the store's watermark then being
    `watermark`: the watermark itself when it moved, else the watermark marked by the txid (the
    store changed all the same)."""
    if txid is None or watermark_of(previous) != watermark:
        return watermark
    return f"{watermark}~{txid}"


def is_news(ours: str | None, theirs: str | None) -> bool:
    """Whether a page holding token `theirs` must refresh for this process's token `ours`.

    No token here yet: no news (a worker that has not read the store never makes screens
    refresh). Another watermark: news, in either direction (a reloaded store restarts its ids).
    The same watermark: news only if we know of a later id-less write the page does not.
    """
    if ours is None:
        return False
    if theirs is None or watermark_of(ours) != watermark_of(theirs):
        return True
    mark = ours.partition("~")[2]
    return bool(mark) and mark != theirs.partition("~")[2]


class ChangeFeed:
    """One LISTEN connection kept open in a daemon thread; see the module docstring."""

    def __init__(self, libpq_url: str, poll_seconds: float = 1.0):
        self.url = libpq_url
        self.poll_seconds = poll_seconds
        self._lock = threading.Condition()
        self.token: str | None = None
        self.lsn: str | None = None  # the primary's WAL position with the token (cockpit/store/replica.py)
        self.store_id: str | None = None  # the database's oid: a store dropped and made again is another
        self.down_since: datetime | None = None  # UTC; None while connected
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cockpit-change-feed", daemon=True)

    def start(self) -> "ChangeFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def connected(self) -> bool:
        return self.token is not None and self.down_since is None

    @property
    def version(self) -> str | None:
        """The token with the database it names ("16384:w12.40"), for caches that may outlive a
        store (tests make and drop many under one name); None until the store was read."""
        with self._lock:
            return None if self.token is None else f"{self.store_id}:{self.token}"

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Block until the first connection attempt has ended (for tests and first requests)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.token is not None or self.down_since is not None, timeout)

    def wait_change(self, token: str | None, timeout: float) -> str | None:
        """The token once it differs from `token`, or the same after `timeout` seconds."""
        with self._lock:
            self._lock.wait_for(lambda: self.token != token, timeout)
            return self.token

    def _set(self, **values) -> None:
        with self._lock:
            for k, v in values.items():
                setattr(self, k, v)
            self._lock.notify_all()

    def _run(self) -> None:
        try:
            self._listen()
        except SystemExit:  # a test server stopping every thread it did not know; feed_for replaces us
            pass

    def _listen(self) -> None:
        pause = RETRY_FIRST
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=3,
                                     application_name="cockpit-feed") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # the watermark spans the whole store: under row-level security (migration
                    # 0011) this connection sees every row; it reads nothing but two ids
                    conn.execute("SELECT set_config('cockpit.scope_unit', '*', false)")
                    token = conn.execute(WATERMARK).fetchone()[0]
                    oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
                    self._set(token=token, lsn=conn.execute(LSN).fetchone()[0], store_id=str(oid), down_since=None,
                              error=None)
                    pause = RETRY_FIRST
                    while not self._stop.is_set():
                        last = None
                        for last in conn.notifies(timeout=self.poll_seconds, stop_after=1):
                            pass
                        if last is None:
                            conn.execute("SELECT 1")  # notices a server that went away while idle
                            continue
                        for last in conn.notifies(timeout=DEBOUNCE):  # the rest of the burst
                            pass
                        mark = conn.execute(WATERMARK).fetchone()[0]
                        self._set(token=next_token(self.token, mark, last.payload), lsn=conn.execute(LSN).fetchone()[0])
            except psycopg.Error as exc:
                first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                if self.down_since is None:
                    log.warning("change feed lost the store: %s", first)
                self._set(down_since=self.down_since or datetime.now(timezone.utc), error=first)
                self._stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX)


_feeds: dict[str, ChangeFeed] = {}
_feeds_lock = threading.Lock()


def feed_for(libpq_url: str) -> ChangeFeed:
    """This process's feed for a store (started on first use; one per store URL)."""
    with _feeds_lock:
        feed = _feeds.get(libpq_url)
        if feed is None or not feed.alive:  # a thread that ended for any reason is replaced
            feed = _feeds[libpq_url] = ChangeFeed(libpq_url).start()
    return feed



def stop_all() -> None:
    """Stop every feed of this process (tests, before their stores are dropped)."""
    with _feeds_lock:
        for feed in _feeds.values():
            feed.stop()
        _feeds.clear()
