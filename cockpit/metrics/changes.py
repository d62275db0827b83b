"""Change notification: every statement that writes `events` tells the listening servers.

A statement trigger on events (any writer, plain SQL included) sends NOTIFY on CHANNEL with
its transaction id; PostgreSQL delivers it when that transaction commits, so a listener learns
of a committed change within milliseconds and never of one that rolled back.

Each server process keeps one LISTEN connection (ChangeFeed, a daemon thread). What it exposes
is a *token* naming the store's state: the store's own watermark (newest event and transition
ids, WATERMARK), read on connecting and again after notifications. Reads happen on a wall-clock
grid of QUANTUM seconds: a notification is answered by one read just after the next multiple of
QUANTUM, however many arrive meanwhile. Because the token comes from the store, and every worker
of every server reads it at the same instants, they all derive the same token for the same state
(two reads a millisecond apart disagree only if a commit falls between them), so a browser may ask
any worker "changed since <token>?" and the answer costs no query when nothing changed, and
caches of computed views (cockpit.metrics.viewcache) can be keyed by it. The grid also bounds how
often a shared view is recomputed while events pour in (at most 1/QUANTUM times a second), at
the price of up to QUANTUM seconds of latency.

With each new token the feed also reads which units the step touched (`touched`): the codes of
every ancestor of the grids of the new events and of the events whose new transitions it holds.
A screen showing one unit needs no refresh for a step that did not touch it
(`changed_since`), and a view of one unit can be keyed by the last token that touched it
(`version_for`), so it survives changes elsewhere in the city. A step that cannot be read that
way (an id-less write, a bulk import, a store that moved backwards) touches everything.

A write that moves neither id (an UPDATE without a transition, a DELETE) still changes the
state: then the token is the watermark with the notification's transaction id appended
(`w12.40~981`); every feed that saw that notification derives the same. A feed that connected
after it holds the bare watermark; `is_news` counts that as no news, so no screen refreshes for
it. If the store goes away the feed says since when, retries with a growing pause (capped), and
on recovery reads the watermark again: screens refresh if the store changed meanwhile.

The same connection listens on ACCOUNTS_CHANNEL, which statement triggers on `users` and
`wall_tokens` notify: each such notification (and each reconnection, when some may have been
missed) moves `accounts_epoch` at once, not on the grid. A process may then keep the accounts it
has read for as long as the epoch stands (callbacks/signin.py), and still a disabled user or a
revoked wall is shut out within milliseconds on every worker of every server.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from datetime import datetime, timezone

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "cockpit_events"
ACCOUNTS_CHANNEL = "cockpit_accounts"  # users or wall tokens changed
RETRY_FIRST, RETRY_MAX = 0.5, 8.0  # seconds between reconnection attempts: doubling, capped
QUANTUM = 0.5  # seconds: the wall-clock grid on which every feed reads the watermark
HISTORY = 600  # token steps remembered with what they touched (minutes at a busy city's pace)
MAX_TOUCHED_ROWS = 5000  # a step with more new rows than this touches everything (a bulk import)


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
        *accounts_install_sql(),
    ]


def accounts_install_sql() -> list[str]:
    """Whoever changes an account or a wall token (the CLI, the admin page, plain SQL) tells the
    listening servers, which then forget the accounts they keep."""
    return [
        f"""
    CREATE OR REPLACE FUNCTION cockpit_notify_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{ACCOUNTS_CHANNEL}', '');
        RETURN NULL;
    END $$""",
        *(f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
          "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_notify_accounts()" for table in ("users", "wall_tokens")),
    ]


def uninstall_sql() -> list[str]:
    return ["DROP TRIGGER IF EXISTS events_notify ON events", "DROP FUNCTION IF EXISTS cockpit_notify_events()"]


WATERMARK = ("SELECT 'w' || coalesce((SELECT max(id) FROM events), 0) || '.' "
             "|| coalesce((SELECT max(id) FROM event_transitions), 0)")


# Where the primary's WAL is when a change is heard: a replica that has replayed this far has it.
LSN = "SELECT pg_current_wal_lsn()::text"


# The codes of every ancestor (the unit itself included) of the grids a step touched, and whether
# one of its events has no unit (then the step touches everything). Ranges of ids: cheap, indexed.
TOUCHED = """
    WITH g AS (
        SELECT grid_id FROM events WHERE id > %(e0)s AND id <= %(e1)s
        UNION
        SELECT e.grid_id FROM event_transitions t
        JOIN events e ON e.id = t.event_id AND e.reported_at = t.event_reported_at  -- one month's partition
        WHERE t.id > %(t0)s AND t.id <= %(t1)s)
    SELECT coalesce((SELECT bool_or(grid_id IS NULL) FROM g), false),
           ARRAY(SELECT DISTINCT u.code FROM g JOIN unit_closure c ON c.descendant_id = g.grid_id
                 JOIN units u ON u.id = c.ancestor_id)"""

_MARK = re.compile(r"^w(\d+)\.(\d+)$")


def _ids(token: str | None) -> tuple[int, int] | None:
    m = _MARK.match(token or "")
    return (int(m[1]), int(m[2])) if m else None


def step_ranges(old: str | None, new: str) -> dict | None:
    """The id ranges of what a step from token `old` to `new` added, or None when the step is
    not a small forward move of the ids (an id-less write, a reload, a bulk import)."""
    a, b = _ids(old), _ids(new)
    if a is None or b is None or b[0] < a[0] or b[1] < a[1]:
        return None
    if (b[0] - a[0]) + (b[1] - a[1]) > MAX_TOUCHED_ROWS:
        return None
    return {"e0": a[0], "e1": b[0], "t0": a[1], "t1": b[1]}


def until_next_read(now: float | None = None) -> float:
    """Seconds to the next instant of the read grid (just past a multiple of QUANTUM)."""
    now = time.time() if now is None else now
    return QUANTUM - (now % QUANTUM) + 0.002


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
        self.accounts_epoch = 0  # moves whenever accounts may have changed (module docstring)
        self.error: str | None = None
        # (token, codes the step to it touched, or None: everything), oldest first
        self._steps: deque[tuple[str, frozenset[str] | None]] = deque(maxlen=HISTORY)
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

    def wait_accounts_moved(self, epoch: int, timeout: float) -> bool:
        """Block until `accounts_epoch` is no longer `epoch` (for tests)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.accounts_epoch != epoch, timeout)

    def changed_since(self, token: str | None, code: str) -> bool:
        """Whether the store changed for unit `code` since a page read it at `token`: False only
        when every step since is known and none touched the unit."""
        with self._lock:
            if token == self.token:
                return False
            touched = self._since(token)
        return touched is None or code in touched

    def version_for(self, code: str | None) -> str | None:
        """The version of one unit's numbers: `version` at the newest step that touched the unit
        (or, if none did within the remembered history, at the oldest step remembered). Equal
        for every worker that heard the same steps; a step touching everything moves every unit."""
        if code is None:
            return self.version
        with self._lock:
            if self.token is None:
                return None
            found = self._steps[0][0] if self._steps else self.token
            for token, touched in reversed(self._steps):
                if touched is None or code in touched:
                    found = token
                    break
            return f"{self.store_id}:{found}"

    def _since(self, token: str | None) -> frozenset[str] | None:
        """Everything the steps after `token` touched; None when unknown or everything."""
        out: set[str] = set()
        for step, touched in reversed(self._steps):
            if step == token:
                return frozenset(out)
            if touched is None:
                return None
            out |= touched
        return None  # older than what is remembered

    def _touched(self, conn, old: str | None, new: str) -> frozenset[str] | None:
        ranges = step_ranges(watermark_of(old), watermark_of(new)) if "~" not in new else None
        if ranges is None:
            return None
        anywhere, codes = conn.execute(TOUCHED, ranges).fetchone()
        return None if anywhere else frozenset(codes)

    def _set(self, **values) -> None:
        with self._lock:
            for k, v in values.items():
                setattr(self, k, v)
            self._lock.notify_all()

    def _events_among(self, notes) -> psycopg.Notify | None:
        """The last notification of events among `notes`; an accounts one moves the epoch now."""
        last = None
        for note in notes:
            if note.channel == ACCOUNTS_CHANNEL:
                self._set(accounts_epoch=self.accounts_epoch + 1)
            else:
                last = note
        return last

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
                    conn.execute(f"LISTEN {ACCOUNTS_CHANNEL}")
                    # the watermark spans the whole store: under row-level security (migration
                    # 0011) this connection sees every row; it reads nothing but two ids
                    conn.execute("SELECT set_config('cockpit.scope_unit', '*', false)")
                    token = conn.execute(WATERMARK).fetchone()[0]
                    oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
                    self._steps.clear()  # (re)connected: what happened while away is unknown
                    self._steps.append((token, None))
                    self._set(token=token, lsn=conn.execute(LSN).fetchone()[0], store_id=str(oid), down_since=None,
                              error=None, accounts_epoch=self.accounts_epoch + 1)  # changes while away unheard
                    pause = RETRY_FIRST
                    while not self._stop.is_set():
                        heard = list(conn.notifies(timeout=self.poll_seconds, stop_after=1))
                        if not heard:
                            conn.execute("SELECT 1")  # notices a server that went away while idle
                            continue
                        last = self._events_among(heard)
                        for note in conn.notifies(timeout=until_next_read()):  # the rest, to the grid
                            last = self._events_among([note]) or last
                        if last is None:  # accounts only
                            continue
                        mark = conn.execute(WATERMARK).fetchone()[0]
                        new = next_token(self.token, mark, last.payload)
                        if new != self.token:
                            self._steps.append((new, self._touched(conn, self.token, new)))
                        self._set(token=new, lsn=conn.execute(LSN).fetchone()[0])
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
    from cockpit.store import database

    libpq_url = database.libpq_url(libpq_url)  # one feed per store, whichever form its URL was given in
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
