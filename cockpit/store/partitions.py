"""Monthly partitions of events and event_transitions (migration 0012, docs/schema.md).

A month is a calendar month in UTC: `internal.events_YYYYMM` holds the events reported in it
and `internal.event_transitions_YYYYMM` their transitions. Rows of a month without its
partitions land in the DEFAULT partitions; creating the month moves them (ensure_months).
`cockpit serve` creates the current month and AHEAD more at start and every hour
(serve.start_partition_upkeep); the importer and the demo create the months their rows need
before inserting. Detached months become standalone tables in the schema `archive`: out of the
raw tables (lists, backlog, maps), their keys freed in event_keys; the rollups keep their
numbers (aggregates are history, not raw data).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

import sqlalchemy as sa

from cockpit.errors import CockpitError

AHEAD = 3
LOCK_KEY = 0x636B7061  # 'ckpa': one creator at a time across servers
TABLES = (("events", "reported_at"), ("event_transitions", "event_reported_at"))


def month_of(t: datetime | date) -> date:
    if isinstance(t, datetime):
        t = t.astimezone(timezone.utc)
    return date(t.year, t.month, 1)


def next_month(m: date) -> date:
    return date(m.year + m.month // 12, m.month % 12 + 1, 1)


def parse_month(text: str) -> date:
    m = re.fullmatch(r"(\d{4})-(\d{2})", (text or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise CockpitError(f"a month is written YYYY-MM, e.g. 2026-01, not {text!r}")
    return date(int(m.group(1)), int(m.group(2)), 1)


def _bounds(m: date) -> tuple[str, str]:
    return f"{m.isoformat()} 00:00+00", f"{next_month(m).isoformat()} 00:00+00"


def existing(conn: sa.Connection) -> list[date]:
    """Months that have their partitions."""
    rows = conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'public.events'::regclass")).scalars()
    return sorted(date(int(n[7:11]), int(n[11:13]), 1) for n in rows if re.fullmatch(r"events_\d{6}", n))


def ensure_months(conn: sa.Connection, months) -> list[date]:
    """Create the partitions of these months (first days) that do not exist yet; returns those made.

    Rows of such a month already in the DEFAULT partitions are moved into the new ones, in the
    same transaction, the user triggers off (the rollups and keys already hold them).
    """
    wanted = sorted({month_of(m) for m in months})
    if not wanted or set(wanted) <= set(existing(conn)):  # the usual case: no lock taken at all
        return []
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    have = set(existing(conn))
    made = []
    for m in wanted:
        if m in have:
            continue
        lo, hi = _bounds(m)
        suffix = m.strftime("%Y%m")
        stray = conn.execute(sa.text(
            "SELECT count(*) FROM internal.events_default WHERE reported_at >= CAST(:lo AS timestamptz) "
            "AND reported_at < CAST(:hi AS timestamptz)"), {"lo": lo, "hi": hi}).scalar_one()
        if stray:
            for table, _ in TABLES:
                conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            for table, col in TABLES:
                conn.execute(sa.text(
                    f"CREATE TEMP TABLE move_{table} ON COMMIT DROP AS SELECT * FROM internal.{table}_default "
                    f"WHERE {col} >= CAST(:lo AS timestamptz) AND {col} < CAST(:hi AS timestamptz)"), {"lo": lo, "hi": hi})
            for table, col in reversed(TABLES):  # transitions first: they refer to the events
                conn.execute(sa.text(
                    f"DELETE FROM internal.{table}_default "
                    f"WHERE {col} >= CAST(:lo AS timestamptz) AND {col} < CAST(:hi AS timestamptz)"), {"lo": lo, "hi": hi})
        for table, _ in TABLES:
            conn.execute(sa.text(
                f"CREATE TABLE internal.{table}_{suffix} PARTITION OF {table} FOR VALUES FROM ('{lo}') TO ('{hi}')"))
        if stray:
            for table, _ in TABLES:
                conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM move_{table}"))
                conn.execute(sa.text(f"DROP TABLE move_{table}"))
            for table, _ in TABLES:
                conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        made.append(m)
    return made


def ensure_ahead(conn: sa.Connection, ahead: int = AHEAD, now: datetime | None = None) -> list[date]:
    """The current month (UTC) and `ahead` more."""
    m = month_of(now or datetime.now(timezone.utc))
    months = [m]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    return ensure_months(conn, months)


def ensure_range(conn: sa.Connection, lo: datetime | None, hi: datetime | None) -> list[date]:
    """Every month from lo's to hi's (the rows an import or a load is about to insert)."""
    if lo is None or hi is None:
        return []
    months, m, last = [], month_of(lo), month_of(hi)
    while m <= last:
        months.append(m)
        m = next_month(m)
    return ensure_months(conn, months)


def fill_event_keys(conn, where: str) -> None:
    """Keys of events inserted with the user triggers off (bulk import, demo load); `where` picks them.

    A key already held fails it with uq_events_source_external_id, as the trigger would.
    """
    sql = (f"INSERT INTO event_keys (source, external_id, event_id) "
           f"SELECT source, external_id, id FROM events WHERE {where}")
    if isinstance(conn, sa.Connection):
        conn.execute(sa.text(sql))
    else:  # a DB-API cursor
        conn.execute(sql)


def listing(conn: sa.Connection) -> list[dict]:
    """Each partition of events: month ('default' for the DEFAULT one), events, transitions, bytes."""
    rows = conn.execute(sa.text("""
        SELECT c.relname AS name,
               pg_total_relation_size(c.oid) + coalesce(pg_total_relation_size(t.oid), 0) AS bytes,
               t.relname AS tname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        LEFT JOIN pg_class t ON t.relname = 'event_transitions' || substr(c.relname, 7)
                            AND t.relnamespace = c.relnamespace
        WHERE i.inhparent = 'public.events'::regclass
        ORDER BY c.relname = 'events_default', c.relname""")).all()
    out = []
    for r in rows:
        n = conn.execute(sa.text(f"SELECT count(*) FROM internal.{r.name}")).scalar_one()
        nt = conn.execute(sa.text(f"SELECT count(*) FROM internal.{r.tname}")).scalar_one() if r.tname else 0
        month = "default" if r.name == "events_default" else f"{r.name[7:11]}-{r.name[11:13]}"
        out.append({"month": month, "events": n, "transitions": nt, "bytes": int(r.bytes)})
    return out


def detach_before(conn: sa.Connection, before: str, now: datetime | None = None) -> dict:
    """Detach every month before `before` (YYYY-MM) into the schema archive; returns what moved."""
    cutoff = parse_month(before)
    current = month_of(now or datetime.now(timezone.utc))
    if cutoff > current:
        raise CockpitError(f"--before {before} is after the current month ({current:%Y-%m}): "
                           "only past months may be detached")
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS archive"))
    conn.execute(sa.text("REVOKE ALL ON SCHEMA archive FROM PUBLIC"))
    months = [m for m in existing(conn) if m < cutoff]
    events = transitions = 0
    for m in months:
        suffix = m.strftime("%Y%m")
        e, t = f"events_{suffix}", f"event_transitions_{suffix}"
        if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": f"archive.{e}"}).scalar():
            raise CockpitError(f"archive.{e} exists already: rename or drop it first")
        events += conn.execute(sa.text(f"SELECT count(*) FROM internal.{e}")).scalar_one()
        transitions += conn.execute(sa.text(f"SELECT count(*) FROM internal.{t}")).scalar_one()
        conn.execute(sa.text(f"ALTER TABLE event_transitions DETACH PARTITION internal.{t}"))
        conn.execute(sa.text(f"ALTER TABLE internal.{t} DROP CONSTRAINT IF EXISTS fk_event_transitions_event_id_events"))
        conn.execute(sa.text(f"ALTER TABLE events DETACH PARTITION internal.{e}"))
        conn.execute(sa.text(
            f"DELETE FROM event_keys k USING internal.{e} a WHERE k.source = a.source AND k.external_id = a.external_id"))
        conn.execute(sa.text(f"ALTER TABLE internal.{e} SET SCHEMA archive"))
        conn.execute(sa.text(f"ALTER TABLE internal.{t} SET SCHEMA archive"))
    stray = conn.execute(sa.text(
        "SELECT count(*) FROM internal.events_default WHERE reported_at < CAST(:c AS timestamptz)"),
        {"c": _bounds(cutoff)[0]}).scalar_one()
    return {"months": [m.strftime("%Y-%m") for m in months], "events": events, "transitions": transitions,
            "left_in_default": stray}


UPKEEP_SECONDS = 3600
UPKEEP_LOCK = 0x636B7062  # 'ckpb': one worker at a time does the hourly check


def upkeep(eng: sa.Engine, ahead: int = AHEAD) -> list[date]:
    """The current month and `ahead` more, unless another worker is at it right now."""
    with eng.begin() as conn:
        if not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": UPKEEP_LOCK}).scalar():
            return []
        if conn.execute(sa.text("SELECT to_regclass('internal.events_default')")).scalar() is None:
            return []  # a store not migrated to 0012 yet
        # a long import holding the events tables must not hold up the server: next time then
        conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        return ensure_ahead(conn, ahead)


def start_upkeep(s, interval: float = UPKEEP_SECONDS):
    """`cockpit serve`'s thread (daemon, one per worker): the months ahead, checked every interval."""
    import logging
    import threading
    import time

    from cockpit.store.database import database_url, engine

    log = logging.getLogger("cockpit.partitions")

    def loop() -> None:
        eng = engine(database_url(s))  # the owner: only it may create partitions
        while True:
            try:
                made = upkeep(eng)
                if made:
                    log.warning("partitions created: %s", ", ".join(m.strftime("%Y-%m") for m in made))
            except Exception:  # a store restarting must not end the upkeep
                log.exception("partition upkeep failed; trying again next interval")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="partition-upkeep", daemon=True)
    thread.start()
    return thread
