"""Fast bulk loading: PostgreSQL binary COPY built from numpy arrays, and a bulk-load mode.

Row-by-row COPY from Python costs ~1-2 microseconds a field; at 10 M events and ~40 M
transitions that alone blows a 5-minute budget. Here a whole batch of rows becomes one
numpy structured array per *row shape* (which columns are NULL, which category a
small-vocabulary text column holds), so the COPY stream is made at memcpy speed.

Column kinds:
    Col.int8/int4/int2/float8/bool(values, null=None)
    Col.timestamptz(microseconds since the Unix epoch, null=None)
    Col.fixed_text(values as numpy 'S<n>' bytes, all non-NULL values n bytes long, null=None)
    Col.category(codes, vocabulary of str; code -1 is NULL)
    Col.point(x, y)  -> PostGIS geometry(Point, 4326) as EWKB
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in microseconds since 1970
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
EWKB_POINT_SRID = 0x20000001


@dataclass
class Col:
    name: str
    kind: str
    values: object
    null: np.ndarray | None = None
    vocab: tuple[bytes, ...] | None = None

    @classmethod
    def int8(cls, name, v, null=None):
        return cls(name, ">i8", np.asarray(v), null)

    @classmethod
    def int4(cls, name, v, null=None):
        return cls(name, ">i4", np.asarray(v), null)

    @classmethod
    def int2(cls, name, v, null=None):
        return cls(name, ">i2", np.asarray(v), null)

    @classmethod
    def float8(cls, name, v, null=None):
        return cls(name, ">f8", np.asarray(v), null)

    @classmethod
    def bool(cls, name, v, null=None):
        return cls(name, "u1", np.asarray(v).astype(np.uint8), null)

    @classmethod
    def timestamptz(cls, name, unix_us, null=None):
        return cls(name, ">i8", np.asarray(unix_us, dtype=np.int64) - PG_EPOCH_US, null)

    @classmethod
    def date(cls, name, days_since_2000, null=None):
        return cls(name, ">i4", np.asarray(days_since_2000, dtype=np.int32), null)

    @classmethod
    def fixed_text(cls, name, v, null=None):
        v = np.asarray(v)
        assert v.dtype.kind == "S", "fixed_text takes numpy bytes ('S<n>')"
        return cls(name, f"S{v.dtype.itemsize}", v, null)

    @classmethod
    def category(cls, name, codes, vocab):
        codes = np.asarray(codes)
        return cls(name, "category", codes, codes < 0, tuple(s.encode() for s in vocab))

    @classmethod
    def point(cls, name, x, y):
        return cls(name, "point", (np.asarray(x, dtype="<f8"), np.asarray(y, dtype="<f8")))

    def __len__(self) -> int:
        return len(self.values[0] if self.kind == "point" else self.values)


def _shape_key(cols: list[Col], n: int) -> np.ndarray:
    """One integer per row naming its shape: NULL pattern + category codes (mixed radix)."""
    key = np.zeros(n, dtype=np.int64)
    for c in cols:
        if c.kind == "category":
            key = key * (len(c.vocab) + 1) + (c.values + 1)
        elif c.null is not None:
            key = key * 2 + c.null.astype(np.int64)
    return key


def _shape_block(cols: list[Col], rows: np.ndarray) -> bytes:
    """Binary COPY rows for rows that all share one shape."""
    first = rows[0]
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    fills: dict[str, object] = {"nfields": len(cols)}
    for i, c in enumerate(cols):
        is_null = c.null is not None and bool(c.null[first])
        if is_null:
            fields.append((f"l{i}", ">i4"))
            fills[f"l{i}"] = -1
            continue
        if c.kind == "category":
            text = c.vocab[c.values[first]]
            fields += [(f"l{i}", ">i4"), (f"v{i}", f"S{len(text)}")] if text else [(f"l{i}", ">i4")]
            fills[f"l{i}"] = len(text)
            if text:
                fills[f"v{i}"] = text
        elif c.kind == "point":
            fields += [(f"l{i}", ">i4"), (f"bo{i}", "u1"), (f"t{i}", "<u4"), (f"s{i}", "<u4"),
                       (f"x{i}", "<f8"), (f"y{i}", "<f8")]
            fills.update({f"l{i}": 25, f"bo{i}": 1, f"t{i}": EWKB_POINT_SRID, f"s{i}": 4326,
                          f"x{i}": c.values[0][rows], f"y{i}": c.values[1][rows]})
        else:
            width = np.dtype(c.kind).itemsize
            fields += [(f"l{i}", ">i4"), (f"v{i}", c.kind)]
            fills[f"l{i}"] = width
            fills[f"v{i}"] = c.values[rows]
    block = np.empty(len(rows), dtype=np.dtype(fields))
    for name, value in fills.items():
        block[name] = value
    return block.tobytes()


def binary_copy_chunks(cols: list[Col]) -> Iterator[bytes]:
    """The body of a binary COPY (without header/trailer) for the given columns."""
    n = len(cols[0])
    if n == 0:
        return
    key = _shape_key(cols, n)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    bounds = np.flatnonzero(np.diff(sorted_key)) + 1
    for rows in np.split(order, bounds):
        yield _shape_block(cols, rows)


@dataclass
class Payload:
    """A batch of rows ready to stream: built in one thread, copied in another."""
    table: str
    columns: tuple[str, ...]
    rows: int
    chunks: list[bytes]


def payload(table: str, cols: list[Col]) -> Payload:
    return Payload(table, tuple(c.name for c in cols), len(cols[0]) if cols else 0, list(binary_copy_chunks(cols)))


def copy_payload(cursor, p: Payload, freeze: bool = False) -> int:
    """COPY a prepared payload (psycopg 3 cursor); returns the number of rows."""
    options = "FORMAT binary, FREEZE true" if freeze else "FORMAT binary"
    with cursor.copy(f"COPY {p.table} ({', '.join(p.columns)}) FROM STDIN WITH ({options})") as copy:
        copy.write(HEADER)
        for chunk in p.chunks:
            copy.write(chunk)
        copy.write(TRAILER)
    return p.rows


def copy_columns(cursor, table: str, cols: list[Col], freeze: bool = False) -> int:
    """COPY the columns into `table`; returns the number of rows."""
    return copy_payload(cursor, payload(table, cols), freeze)


# A partitioned table's foreign key is validated partition by partition against the whole table it
# refers to. For an import's million events (one transition each) probing the events' key per
# transition took 1.6 s against 3.4 s by hash; for the demo's 10 M events and 43 M transitions
# the hash is faster (43 s against 84 s), so only run_here (cockpit import-events) probes. Only a
# key into one of the loaded tables: into a small one (categories, units) the hash is cheaper.
PROBE_SETTINGS = ("enable_hashjoin", "enable_mergejoin")


def _refers_to_loaded(definition: str, tables: list[str]) -> bool:
    return any(f" REFERENCES {t}(" in definition for t in tables)


@dataclass
class Restore:
    """What bulk_load_mode took off the tables, to put back once the load has committed.

    One connection per table, tables in parallel (2 cores): its keys first (so foreign keys
    from the other table can find them early), then its indexes, then its foreign keys,
    added NOT VALID (instant) and validated (a lock that lets the other table's index builds
    go on). Measured at 10 M events: ~210 s one statement after the other, ~100 s this way.
    """
    tables: list[str]
    indexes: list[tuple[str, str, str]]  # (table, name, CREATE INDEX ...)
    keys: list[tuple[str, str, str]]  # (table, name, PRIMARY KEY / UNIQUE ...)
    foreign: list[tuple[str, str, str]]  # (table, name, FOREIGN KEY ...)

    def run(self, connect: Callable[[], object], progress=lambda line: None) -> None:
        # A foreign key needs the key it points at: no lane adds one before every lane has
        # added its keys (on small tables a lane can otherwise overtake another).
        keys_added = threading.Barrier(len(self.tables))

        def lane(table: str) -> None:
            with connect() as conn:
                def timed(label: str, sql: str) -> None:
                    started = time.monotonic()
                    conn.execute(sql)
                    progress(f"  {label}: {time.monotonic() - started:.1f} s")

                try:
                    for t, name, definition in sorted(self.keys, key=lambda k: "PRIMARY" not in k[2]):
                        if t == table:
                            timed(f"key {name}", f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition}')
                except BaseException:
                    keys_added.abort()  # the other lanes stop waiting (BrokenBarrierError)
                    raise
                keys_added.wait()
                for t, name, definition in self.indexes:
                    if t == table:
                        timed(f"index {name}", definition)
                for t, name, definition in self.foreign:
                    if t == table:
                        partitioned = conn.execute(
                            "SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", (t,)).fetchone()[0]
                        if partitioned:  # PostgreSQL 15 refuses NOT VALID foreign keys there
                            timed(f"foreign key {name}", f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition}')
                            continue
                        conn.execute(f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition} NOT VALID')
                        timed(f"foreign key {name}", f'ALTER TABLE {t} VALIDATE CONSTRAINT "{name}"')

        with ThreadPoolExecutor(max_workers=len(self.tables)) as pool:
            list(pool.map(lane, self.tables))

    def run_here(self, cursor, progress=lambda line: None) -> None:
        """Put everything back on `cursor`'s own connection, one statement after the other: for a
        load that must commit whole (cockpit import-events), its keys checked before it does."""
        def timed(label: str, sql: str) -> None:
            started = time.monotonic()
            cursor.execute(sql)
            progress(f"{time.monotonic() - started:6.1f} s  {label}")

        for t, name, definition in sorted(self.keys, key=lambda k: "PRIMARY" not in k[2]):
            timed(f"key {name}", f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition}')
        for t, name, definition in self.indexes:
            timed(f"index {name}", definition)
        cursor.execute(f"SELECT {', '.join(f'current_setting({s!r})' for s in PROBE_SETTINGS)}")
        saved = cursor.fetchone()
        for t, name, definition in self.foreign:
            probe = _refers_to_loaded(definition, self.tables)
            for setting, value in zip(PROBE_SETTINGS, saved):  # for this transaction only
                cursor.execute("SELECT set_config(%s, %s, true)", (setting, "off" if probe else value))
            timed(f"foreign key {name}", f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {definition}')
        for setting, value in zip(PROBE_SETTINGS, saved):
            cursor.execute("SELECT set_config(%s, %s, true)", (setting, value))


@contextlib.contextmanager
def bulk_load_mode(cursor, tables: list[str]) -> Iterator[Restore]:
    """Drop the tables' keys, indexes, foreign keys and user triggers for a bulk load.

    Building an index once after a load is several times cheaper than maintaining it row by
    row (measured here: COPY of 2 M rows 2.0 s without a primary key, 7.7 s with one), and a
    foreign key re-added is validated by one join instead of one lookup a row. The
    definitions come from the catalog, so this follows whatever the migrations made. Pass
    every table whose foreign keys point into the others (events + event_transitions).
    Triggers come back on when the block ends (same transaction); keys and indexes come back
    with the yielded Restore's run(), after the caller commits.
    """
    cursor.execute(
        """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype
        FROM pg_constraint
        WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'p', 'u')
          AND conparentid = 0  -- not the per-partition copies of a partitioned table's foreign key
        ORDER BY contype  -- f before p/u: foreign keys go before the keys they use
        """,
        (tables,),
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        (tables,),
    )
    # a partitioned table's index prints as ON ONLY (the parent alone, invalid until each
    # partition's is attached): built again, it must cover the partitions too
    indexes = [(t, n, d.replace(" ON ONLY ", " ON ", 1)) for t, n, d in cursor.fetchall()]
    for table, name, _, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for _, name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    for table in tables:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    yield Restore(
        tables=list(tables),
        indexes=indexes,
        keys=[(t, n, d) for t, n, d, kind in constraints if kind in ("p", "u")],
        foreign=[(t, n, d) for t, n, d, kind in constraints if kind == "f"],
    )
    for table in tables:
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def prefetched(items: Iterator, depth: int = 1) -> Iterator:
    """Iterate `items` in a worker thread, keeping up to `depth` ready ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work():
        try:
            for item in items:
                q.put(item)
            q.put(done)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)

    threading.Thread(target=work, daemon=True, name="prefetch").start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
