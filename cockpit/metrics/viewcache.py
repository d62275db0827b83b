"""Views many screens share, computed once per change token and served to every screen asking.

A wall's view of (focus, scope) and a unit's drill-down view of (unit, period, filters, scope)
are the same for every screen that asks between two changes of the store. `ViewCache.get(key,
compute)` computes one once per key and hands the same answer to everyone else; concurrent
askers of the same key wait for the one computation (single flight) instead of starting their own.

The key always holds the change token (cockpit.metrics.changes: the store's own watermark, the
same in every worker and server) and the asker's `Person.scope_key`: a new token is a new key, so
a stale answer never outlives the next token, and a district officer never gets the city's view
(two people with the same scope_key see the same rows). An answer also ages out after `max_age`
seconds, for what changes with the clock alone (overdue now, the busiest last hour, today).
Without a token (the feed has not read the store) nothing is cached.

Mechanism, across the worker processes of one server: a small cache in the state folder
(COCKPIT_STATE_DIR/viewcache), one file per key (pickled, written to a temporary name and
renamed, so a reader sees a whole answer or none), and a lock file per stripe of keys taken with
flock: the process that gets the lock computes, the others block on it and then read the file.
It needs nothing to run or configure (no Redis, no schema change), the kernel drops the lock of
a worker that dies, and the files stay in the page cache (a read is a fraction of a millisecond,
against ~15-60 ms to compute a view). Each process also keeps the answers it has read in memory
(per-thread single flight in front of the files), so a second ask in the same worker does not
touch the disk. Several servers each have their own state folder: a view is computed at most
once per server and token, which is what the issue asks. Answers are kept as pickled bytes and
unpickled per asker, so no caller can change another's copy.

COCKPIT_VIEW_CACHE=0 turns it off (every ask computes: the plain way bench/load.py compares to).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import pickle
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from cockpit.config import switched_off

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_AGE = 30.0  # seconds an answer may serve while the store does not change
MEMORY_ENTRIES = 256  # answers kept in each process's memory (a few per screen kind and scope)
STRIPES = 256  # lock files: keys sharing one wait for each other's computation, briefly
SWEEP_EVERY = 60.0  # seconds between removals of old answer files


class _Flight:
    """One computation in progress in this process; its askers wait on `done`."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.blob: bytes | None = None
        self.error: BaseException | None = None


class ViewCache:
    def __init__(self, directory: Path | None, max_age: float = MAX_AGE, enabled: bool = True):
        self.directory = Path(directory) if directory is not None else None
        self.max_age = max_age
        self.enabled = enabled
        self._memory: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._swept = 0.0
        self._warned = False
        self.computed = 0  # computations this process ran (tests and the bench count them)
        if self.directory is not None:
            try:
                (self.directory / "locks").mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a read-only state folder: each process caches for itself
                log.warning("view cache kept per process: cannot use %s: %s", self.directory, exc)
                self.directory = None

    def get(self, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """The answer for `key` (whose first item is the change token), computed at most once per
        key while it is fresh; `compute` runs only in the asker that got to compute."""
        if not self.enabled or key[0] is None:
            with self._lock:
                self.computed += 1
            return compute()
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
        with self._lock:
            hit = self._memory.get(name)
            if hit is not None and time.time() - hit[0] < self.max_age:
                self._memory.move_to_end(name)
                return pickle.loads(hit[1])
            flight = self._flights.get(name)
            leader = flight is None
            if leader:
                flight = self._flights[name] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return pickle.loads(flight.blob)
        try:
            at, blob = self._shared(name, compute)
            with self._lock:
                self._memory[name] = (at, blob)
                self._memory.move_to_end(name)
                while len(self._memory) > MEMORY_ENTRIES:
                    self._memory.popitem(last=False)
            flight.blob = blob
            return pickle.loads(blob)
        except BaseException as exc:  # the waiting askers get the same error (a store gone away)
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(name, None)
            flight.done.set()

    def _compute(self, compute: Callable[[], object]) -> tuple[float, bytes]:
        at = time.time()
        value = compute()
        with self._lock:
            self.computed += 1
        return at, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def _shared(self, name: str, compute: Callable[[], object]) -> tuple[float, bytes]:
        """(computed at, answer) from the state folder, or computed under the key's lock and put there."""
        if self.directory is None:
            return self._compute(compute)
        path = self.directory / f"{name}.pickle"
        stripe = self.directory / "locks" / str(int(name[:8], 16) % STRIPES)
        try:
            lock = open(stripe, "a+b")
        except OSError as exc:  # the folder went away or became read-only: this process's memory only
            self._trouble(exc)
            return self._compute(compute)
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker computing this key: wait for it
            try:
                found = self._read(path)
                if found is not None:
                    return found
                at, blob = self._compute(compute)
                self._write(path, at, blob)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._sweep()
        return at, blob

    def _read(self, path: Path) -> tuple[float, bytes] | None:
        try:
            data = path.read_bytes()
            at = float(data[:20].decode())
        except (OSError, ValueError):  # none yet, or not whole (a disk that filled up): compute
            return None
        return (at, data[20:]) if time.time() - at < self.max_age else None

    def _write(self, path: Path, at: float, blob: bytes) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(f"{at:<20.6f}".encode()[:20] + blob)
            os.replace(tmp, path)
        except OSError as exc:  # the answer still serves this process; the others compute their own
            self._trouble(exc)

    def _trouble(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("view cache in %s not shared between workers: %s", self.directory, exc)

    def _sweep(self) -> None:
        """Remove answer files older than max_age (their token is long gone or they aged out)."""
        now = time.time()
        with self._lock:
            if now - self._swept < SWEEP_EVERY:
                return
            self._swept = now
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_file() and now - entry.stat().st_mtime > 2 * self.max_age:
                    os.unlink(entry.path)
            except OSError:
                pass  # another worker swept it first


_caches: dict[tuple[Path, str], ViewCache] = {}
_caches_lock = threading.Lock()


def shared(state_dir: Path, layer: str = "viewcache") -> ViewCache:
    """This process's cache over the state folder's shared one (made on first use; the
    environment's COCKPIT_VIEW_CACHE is read then, once).

    `layer`: each layer has its own folder and lock files. A computation in one layer may ask
    the next one down (a shared answer, cockpit/callbacks/shared_answers.py, is built from shared
    views) but never the other way: locks are always taken in that order, so two workers can
    never wait on each other, and a key never waits on its own stripe."""
    with _caches_lock:
        cache = _caches.get((state_dir, layer))
        if cache is None:
            enabled = not switched_off("COCKPIT_VIEW_CACHE")
            cache = _caches[(state_dir, layer)] = ViewCache(Path(state_dir) / layer, enabled=enabled)
        return cache


def view_key(token: str | None, store: str, scope_key: str, kind: str, *args: Hashable) -> tuple:
    """The key of one shared view: the change token first (read before computing, so an answer
    is never older than its token), the store, who may see it, what view and of what."""
    return (token, store, scope_key, kind, *args)
