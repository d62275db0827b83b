"""`cockpit quarantine list|export|retry`: the rows `cockpit import-events` could not load.

An operator reads why rows were rejected (`list`), takes them out as CSV (`export`, the shape of
`import-events --rejects`), fixes the mapping and loads them again (`retry`). A retry goes through
the importer's own `load_records` with the mapping given, as new `imports` rows (format
`quarantine`), all in one transaction:

- the rows of each original import are retried as one new import, oldest first, as the files
  were loaded (a key in two files is an update, not a duplicate);
- a row that now loads is **deleted** from `quarantine`: the event holds it from then on, and the
  retry's `imports` row counts it, so a "retried" flag would only keep a second copy to go stale;
- a row that still fails **stays where it was** (its import, file name and row number: the
  operator's way back to the file) with the reason of this attempt, and `detail` names the retry.

`duplicate_in_file` rows are left out unless `--reason duplicate_in_file` asks for them: loading a
later duplicate would overwrite the event the file's first row made. `unreadable_row` rows are
never retried: no mapping makes a record that could not be parsed readable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from cockpit.errors import BadRequest, CockpitError, NotFound
from cockpit.ingest.events import (CHUNK_ROWS, REASONS, Mapping, Result, _as_text, load_records,
                                   write_rejects_csv)

NOT_RETRIED_BY_DEFAULT = ("duplicate_in_file",)
NEVER_RETRIED = ("unreadable_row",)
SHORT_RAW = 100  # characters of a raw row shown by `list --import`


def _selection(conn: sa.Connection, import_id: int | None, reason: str | None) -> tuple[str, dict]:
    if reason is not None and reason not in REASONS:
        raise BadRequest(f"--reason {reason!r} is not a quarantine reason (one of {', '.join(REASONS)})")
    if import_id is not None and conn.execute(sa.text("SELECT 1 FROM imports WHERE id = :i"),
                                              {"i": import_id}).first() is None:
        raise NotFound(f"--import {import_id}: no such import (`cockpit quarantine list` shows them)")
    where, params = ["true"], {}
    if import_id is not None:
        where.append("q.import_id = :import_id")
        params["import_id"] = import_id
    if reason is not None:
        where.append("q.reason = :reason")
        params["reason"] = reason
    return " AND ".join(where), params


def counts(conn: sa.Connection, import_id: int | None = None, reason: str | None = None) -> list[dict]:
    """Quarantined rows per import and reason, oldest import first."""
    where, params = _selection(conn, import_id, reason)
    rows = conn.execute(sa.text(
        f"SELECT q.import_id, i.file_name, i.started_at, q.reason, count(*) AS n FROM quarantine q "
        f"JOIN imports i ON i.id = q.import_id WHERE {where} "
        f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 5 DESC, 4"), params).all()
    return [r._asdict() for r in rows]


def rows(conn: sa.Connection, import_id: int, reason: str | None = None,
         limit: int | None = None) -> list[dict]:
    """One import's quarantined rows: row number, reason, a short view of the raw row."""
    where, params = _selection(conn, import_id, reason)
    sql = f"SELECT q.row_no, q.reason, q.raw::text AS raw FROM quarantine q WHERE {where} ORDER BY q.row_no"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    out = []
    for r in conn.execute(sa.text(sql), params):
        text = json.dumps(json.loads(r.raw), ensure_ascii=False)
        out.append({"row": r.row_no, "reason": r.reason,
                    "raw": text if len(text) <= SHORT_RAW else text[:SHORT_RAW - 1] + "…"})
    return out


def export(conn: sa.Connection, path: str | Path, import_id: int | None = None,
           reason: str | None = None) -> int:
    """Write the selected rows as CSV; returns how many.

    With one import it is exactly `--rejects`' shape (row, reason, the file's columns); across
    imports an `import` column comes first, since row numbers repeat from file to file.
    """
    where, params = _selection(conn, import_id, reason)
    lead = () if import_id is not None else ("import",)
    select = "q.row_no, q.reason, q.raw::text" if import_id is not None else "q.import_id, q.row_no, q.reason, q.raw::text"
    got = conn.execute(sa.text(f"SELECT {select} FROM quarantine q WHERE {where} ORDER BY q.import_id, q.row_no"),
                       params).all()
    write_rejects_csv([tuple(r) for r in got], Path(path), "quarantine export", lead)
    return len(got)


def retry(conn: sa.Connection, mapping: Mapping, tz: ZoneInfo, import_id: int | None = None,
          reason: str | None = None, *, chunk_rows: int = CHUNK_ROWS,
          progress: Callable[[str], None] = lambda _: None) -> list[tuple[Result, int, int]]:
    """Load the selected rows again with `mapping` (committed by the caller).

    The rows of each original import are loaded as one new import, oldest first, exactly as the
    files were: within one the first row of a key wins, a later one updates what an earlier one
    loaded. Returns per original import (the retry's result, rows that left the quarantine, rows
    still in it); empty when nothing was selected.
    """
    if reason in NEVER_RETRIED:
        raise BadRequest(f"--reason {reason}: a record that could not be parsed is not retried; "
                         "fix the file and import it again")
    where, params = _selection(conn, import_id, reason)
    skipped = [*NEVER_RETRIED, *(r for r in NOT_RETRIED_BY_DEFAULT if r != reason)]
    where += " AND q.reason NOT IN (" + ", ".join(f"'{r}'" for r in skipped) + ")"
    # Locked first, so a second retry running at the same time waits and then finds them gone.
    conn.execute(sa.text(f"WITH l AS (SELECT q.id FROM quarantine q WHERE {where} FOR UPDATE) "
                         f"SELECT count(*) FROM l"), params)
    conn.execute(sa.text(
        f"CREATE TEMP TABLE quarantine_retry ON COMMIT DROP AS "
        f"SELECT row_number() OVER (ORDER BY q.import_id, q.row_no, q.id) AS seq, q.id AS qid, q.import_id "
        f"FROM quarantine q WHERE {where}"), params)
    conn.execute(sa.text("CREATE UNIQUE INDEX ON quarantine_retry (seq)"))
    spans = conn.execute(sa.text("SELECT import_id, min(seq), max(seq) FROM quarantine_retry "
                                 "GROUP BY import_id ORDER BY import_id")).all()
    done = []
    for original, first, last in spans:
        def chunks(first=first, last=last) -> Iterator[pd.DataFrame]:
            # record numbers are positions in the selection (the importer matches staged rows by them)
            for start in range(first, last + 1, chunk_rows):
                got = conn.execute(sa.text(
                    "SELECT m.seq, q.raw::text FROM quarantine_retry m JOIN quarantine q ON q.id = m.qid "
                    "WHERE m.seq BETWEEN :a AND :b ORDER BY m.seq"),
                    {"a": start, "b": min(start + chunk_rows - 1, last)}).all()
                df = _as_text(pd.DataFrame.from_records([json.loads(r[1]) for r in got]))
                df.index = pd.Index([r[0] for r in got])
                yield df

        res = load_records(conn, chunks, f"quarantine retry of import {original}", "quarantine", mapping, tz,
                           progress=progress)
        # this attempt's rejects replace the reasons of the rows they came from, then go
        kept = conn.execute(sa.text(
            "UPDATE quarantine q SET reason = n.reason, detail = :detail "
            "FROM quarantine n JOIN quarantine_retry m ON m.seq = n.row_no "
            "WHERE n.import_id = :new AND q.id = m.qid"),
            {"new": res.import_id, "detail": f"still rejected by retry import {res.import_id}"}).rowcount
        left = conn.execute(sa.text(
            "DELETE FROM quarantine q USING quarantine_retry m WHERE q.id = m.qid AND m.import_id = :old "
            "AND NOT EXISTS (SELECT 1 FROM quarantine n WHERE n.import_id = :new AND n.row_no = m.seq)"),
            {"new": res.import_id, "old": original}).rowcount
        conn.execute(sa.text("DELETE FROM quarantine WHERE import_id = :new"), {"new": res.import_id})
        conn.execute(sa.text("UPDATE imports SET summary = summary || CAST(:s AS jsonb) WHERE id = :new"),
                     {"new": res.import_id, "s": json.dumps({"retry_of_import": original, "left_quarantine": left,
                                                             "still_quarantined": kept})})
        done.append((res, left, kept))
    conn.execute(sa.text("DROP TABLE quarantine_retry"))
    return done
