"""Events other systems send to `POST /api/events`: Open311 service requests, stored the way an
import stores them.

A request body is one Open311 GeoReport v2 service request (a JSON object) or a list of them
(at most MAX_ITEMS, MAX_BYTES). Its records go through the importer's `load_records` with the
open311 preset's mapping and the city's time zone, as one `imports` row named `api:<token name>`:
a POSTed event is validated, placed, deduplicated and stored by the same rules as a file's
(cockpit/ingest/events.py), and sending the same service_request_id again updates it (a status
change appends a transition), as a re-import does.

All or nothing: if the importer would quarantine any item, nothing is kept (the caller's
transaction is rolled back) and `Invalid` lists each bad field of each bad item; the importer's
quarantine reasons are turned into the Open311 field they are about. The importer names the
first rule a record breaks, so the bad items go through it again with the faults found so far
set right (a placeholder id, category or report time; an empty status) until it finds no more:
every bad field is listed, found by the importer's own rules. A value of the wrong JSON type is
listed before the importer runs.

Source: an item's `source` (one of ours) or else the preset's own, hotline_12345 (311 is the
citizen hotline), so an event POSTed live and the same request in a later Open311 export are
one event, keyed (source, service_request_id).
"""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from cockpit.errors import BadRequest, Invalid, TooLarge
from cockpit.ingest.events import (CLOCK_SKEW, REASONS, TIME_FIELDS, Mapping, build_mapping, load_records,
                                   parse_times)
from cockpit.store.schema import SOURCES, STATUSES

MAX_ITEMS = 1000
MAX_BYTES = 2 * 1024 * 1024  # 1,000 requests of 2 KB each: a long description fits
SOURCE_FIELD = "source"
# Serialises API writers: the importer inserts new keys with a plain INSERT, which two requests
# carrying the same new service_request_id at once would make fail instead of one updating.
LOCK_KEY = "cockpit.api.events"


def mapping() -> Mapping:
    """The open311 preset, plus an optional `source` per request."""
    m = build_mapping(preset="open311")
    m.columns["source"] = SOURCE_FIELD
    return m


def parse_body(data: bytes) -> list[dict]:
    """The request objects of a body; BadRequest (not JSON, wrong shape) or TooLarge."""
    if len(data) > MAX_BYTES:
        raise TooLarge(f"the body is larger than {MAX_BYTES:,} bytes: send the events in several requests")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"the body is not JSON ({str(exc).splitlines()[0][:120]})") from None
    items = doc if isinstance(doc, list) else [doc] if isinstance(doc, dict) else None
    if items is None:
        raise BadRequest("the body must be an Open311 service request (a JSON object) or a list of them")
    if not items:
        raise BadRequest("the list is empty: send at least one service request")
    if len(items) > MAX_ITEMS:
        raise TooLarge(f"{len(items):,} service requests in one body: at most {MAX_ITEMS:,}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"item {i} is not a JSON object (an Open311 service request)")
    return items


def _text(value) -> tuple[str, str | None]:
    """A JSON value as the importer's cell text ('' when null), or '' and what is wrong with it."""
    if value is None:
        return "", None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "", "must be text or a number"
    text = value if isinstance(value, str) else repr(value)
    if "\x00" in text:
        return "", "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "", "is not valid Unicode (a lone surrogate)"
    return text, None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _time_errors(row: dict, m: Mapping, tz: ZoneInfo) -> list[tuple[str, str]]:
    """Each time field the importer's parser cannot read (and a missing report time)."""
    out = []
    for ours in TIME_FIELDS:
        theirs = m.columns.get(ours)
        if theirs is None:
            continue
        text = row[theirs].strip()
        if not text:
            if ours == "reported_at":
                out.append((theirs, "required: when the request was made"))
            continue
        _, bad = parse_times(pd.Series([text]), m.time_formats, tz)
        if bad.iloc[0]:
            out.append((theirs, f"{_shown(text)} is not a time (ISO 8601, e.g. 2026-12-02T09:30:00+08:00)"))
    return out


def _coordinate_errors(row: dict, m: Mapping, outside: bool) -> list[tuple[str, str]]:
    pairs = [(m.columns["lat"], 90.0), (m.columns["lon"], 180.0)]
    if outside:
        return [(f, "the point (lat, long) is outside every unit of the city") for f, _ in pairs]
    out = []
    for field, limit in pairs:
        try:
            ok = abs(float(row[field])) <= limit
        except ValueError:
            ok = False
        if not ok:
            out.append((field, f"{_shown(row[field])} is not a WGS 84 coordinate (required: lat and long)"
                        if row[field].strip() else "required: lat and long in WGS 84 degrees"))
    return out or [(f, "no usable coordinates (lat and long in WGS 84 degrees)") for f, _ in pairs]


def _field_errors(reason: str, row: dict, m: Mapping, tz: ZoneInfo) -> list[tuple[str | None, str]]:
    """The Open311 fields behind one quarantine reason of the importer."""
    c = m.columns
    if reason == "missing_external_id":
        return [(c["external_id"], "required: the request's id in your system")]
    if reason == "unparsable_time":
        return _time_errors(row, m, tz) or [(c["reported_at"], REASONS[reason])]
    if reason == "unmapped_status":
        known = [*m.values.get("status", {}), *STATUSES]
        return [(c["status"], f"{_shown(row[c['status']])} is not one of {', '.join(dict.fromkeys(known))}")]
    if reason == "unmapped_source":
        return [(SOURCE_FIELD, f"{_shown(row[SOURCE_FIELD])} is not one of {', '.join(SOURCES)}")]
    if reason == "missing_category":
        return [(c["category"], f"required: {c['category']} or {c['category_name']}")]
    if reason == "closed_without_time":
        return [(c["updated_at"], "required for a closed request: when it was closed")]
    if reason == "closed_before_reported":
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        return [(c["updated_at"], f"closed more than {minutes} min before {c['reported_at']}")]
    if reason in ("no_location", "outside_units"):
        return _coordinate_errors(row, m, outside=reason == "outside_units")
    if reason == "duplicate_in_file":
        return [(c["external_id"], f"{_shown(row[c['external_id']])} is earlier in this request too")]
    return [(None, REASONS.get(reason, reason))]


PLACEHOLDER_TIME = "1970-01-01T00:00:00Z"  # before any close time: sets no other rule off


def _set_right(reason: str, row: dict, m: Mapping, tz: ZoneInfo, i: int) -> dict | None:
    """The row with the fault behind `reason` replaced by a harmless value, so the importer can
    look at its other fields; None when nothing is left to learn (location and duplicates are the
    importer's last rules)."""
    c, fixed = m.columns, dict(row)
    if reason == "missing_external_id":
        fixed[c["external_id"]] = f"cockpit-check-{i}"
    elif reason == "unparsable_time":
        for field, _ in _time_errors(row, m, tz):
            fixed[field] = PLACEHOLDER_TIME if field == c["reported_at"] else ""
    elif reason in ("unmapped_status", "closed_without_time", "closed_before_reported"):
        fixed[c["status"]] = ""
        if reason == "closed_before_reported":
            fixed[c["updated_at"]] = ""
    elif reason == "unmapped_source":
        fixed[SOURCE_FIELD] = ""
    elif reason == "missing_category":
        fixed[c["category"]] = "cockpit-check"
    return fixed if fixed != row else None


def _quarantined(conn: sa.Connection, import_id: int) -> list[tuple[int, str]]:
    return conn.execute(sa.text("SELECT row_no, reason FROM quarantine WHERE import_id = :i ORDER BY row_no"),
                        {"i": import_id}).all()


def _check_again(conn: sa.Connection, pending: dict[int, dict], m: Mapping, tz: ZoneInfo, sender: str,
                 errors: dict) -> None:
    """Run the bad items (index -> row set right so far) through the importer until it finds no
    new fault; only ever in a transaction that is then rolled back."""
    for _ in range(len(REASONS)):  # each round sets at least one fault right: bounded
        if not pending:
            return
        order = sorted(pending)
        frame = pd.DataFrame([pending[i] for i in order], index=pd.RangeIndex(1, len(order) + 1))
        res = load_records(conn, lambda: iter([frame]), f"api:{sender}:check", "open311", m, tz)
        again = {}
        for row_no, reason in _quarantined(conn, res.import_id):
            i = order[int(row_no) - 1]
            for field, message in _field_errors(reason, pending[i], m, tz):
                errors.setdefault((i, field), message)
            fixed = _set_right(reason, pending[i], m, tz, i)
            if fixed is not None:
                again[i] = fixed
        pending = again


_SNAPSHOT = sa.text("""
    SELECT k.i, e.id, md5(e::text) FROM unnest(CAST(:s AS text[]), CAST(:x AS text[])) WITH ORDINALITY
        AS k(source, external_id, i)
    JOIN events e ON e.source = k.source AND e.external_id = k.external_id""")


def _snapshot(conn: sa.Connection, keys: list[tuple[str, str]]) -> dict[int, tuple[int, str]]:
    """Item index -> (event id, digest of its row) for the items' events the store holds."""
    rows = conn.execute(_SNAPSHOT, {"s": [k[0] for k in keys], "x": [k[1] for k in keys]})
    return {i - 1: (eid, digest) for i, eid, digest in rows}


def store_events(conn: sa.Connection, items: list[dict], tz: ZoneInfo, sender: str) -> dict:
    """Store the items on conn (the caller commits) or raise Invalid (the caller must roll back:
    the importer has written by then). Returns the per-item results and the imports row's id."""
    m = mapping()
    columns = list(dict.fromkeys(m.columns.values()))
    errors: dict[tuple[int, str | None], str] = {}
    rows = []
    for i, item in enumerate(items):
        row = {}
        for field in columns:
            row[field], problem = _text(item.get(field))
            if problem:
                errors[(i, field)] = problem
        rows.append(row)
    # every mapped column present: a missing field is then the item's error, not the request's
    frame = pd.DataFrame(rows, columns=columns, index=pd.RangeIndex(1, len(rows) + 1))
    ext = frame[m.columns["external_id"]].str.strip()
    source = frame[SOURCE_FIELD].str.strip().replace("", m.source)
    keys = list(zip(source, ext))

    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY})
    before = _snapshot(conn, keys)
    res = load_records(conn, lambda: iter([frame]), f"api:{sender}", "open311", m, tz)
    pending = {}
    for row_no, reason in _quarantined(conn, res.import_id):
        i = int(row_no) - 1
        for field, message in _field_errors(reason, rows[i], m, tz):
            errors.setdefault((i, field), message)
        fixed = _set_right(reason, rows[i], m, tz, i)
        if fixed is not None:
            pending[i] = fixed
    if pending:
        _check_again(conn, pending, m, tz, sender, errors)
    if errors:
        listed = [{"index": i, "field": f, "message": msg} for (i, f), msg in sorted(
            errors.items(), key=lambda kv: (kv[0][0], columns.index(kv[0][1]) if kv[0][1] in columns else 99))]
        bad = len({i for i, _ in errors})
        raise Invalid(f"{bad} of {len(items)} service requests are not valid: nothing was stored", listed)

    after = _snapshot(conn, keys)
    results = []
    for i, (src, external_id) in enumerate(keys):
        eid, digest = after[i]
        status = "inserted" if i not in before else "unchanged" if before[i][1] == digest else "updated"
        results.append({"index": i, "service_request_id": external_id, "source": src, "id": eid, "status": status})
    return {"import_id": res.import_id, "inserted": res.inserted, "updated": res.updated,
            "unchanged": res.unchanged, "results": results}
