"""Hotspot warnings in the store: detection as of a time, the `warnings` table's life cycle
(new -> acknowledged -> closed | expired) and what the screens read.

Detection reads events (counts by unit and week-offset, recent positions, leaf adjacency) and
hands arrays to cockpit.hotspots.detect; it runs as the owner (CLI, the server's scheduler).
Acknowledging is the only write the web makes (the writer role may UPDATE warnings).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import sqlalchemy as sa
from scipy import sparse

from cockpit.config import HotspotSettings, settings
from cockpit.errors import CockpitError
from cockpit.hotspots import detect
from cockpit.store.schema import WARNING_KINDS
from cockpit.ui.formatting import MISSING

SURGE_LEVELS = ("grid", "community", "street")
WEEK_S = 7 * 86400
LIVE = ("new", "acknowledged")


def window_label(hours: int) -> str:
    return f"{hours // 24}d" if hours % 24 == 0 and hours >= 48 else f"{hours}h"


@dataclass
class Warning:
    id: int | None
    kind: str
    unit_id: int
    category_id: int | None
    window: str
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float | None
    statistic: float | None
    p_value: float | None
    q_value: float | None
    detail: dict
    key: str
    first_seen: datetime
    last_seen: datetime
    state: str = "new"
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    note: str | None = None
    unit_code: str = ""
    unit_name: str = ""
    unit_level: str = ""
    category_name: str | None = None

    def explain(self, lang: str = "zh") -> str:
        """One sentence saying why this is a warning, with its numbers (a number the row lacks: —)."""
        d = self.detail or {}
        top = d.get("top_category_name") or self.category_name
        span = _span_words(self.window, lang)
        expected = _fixed(self.expected, ".1f")
        if self.kind == "surge":
            if lang == "en":
                s = f"observed {self.observed} vs expected {expected} (p = {_p(self.p_value)}) in {span}"
                return s + (f", mostly {top}" if top else "")
            s = f"{span}发生 {self.observed} 起，预期 {expected} 起（p = {_p(self.p_value)}）"
            return s + (f"，主要为{top}" if top else "")
        if self.kind == "recurrence":
            r = d.get("radius_m")
            chance = _fixed(self.expected, ".2g")
            if lang == "en":
                return (f"{self.category_name} {self.observed} times within {r} m in {span} "
                        f"(expected by chance {chance}, p = {_p(self.p_value)})")
            return (f"{span}同一地点（{r} 米内）{self.category_name}重复发生 {self.observed} 起"
                    f"（随机预期 {chance} 起，p = {_p(self.p_value)}）")
        n = len(d.get("units", [])) or 1
        z = _fixed(self.statistic, ".1f")
        if lang == "en":
            return (f"cluster of {n} neighbouring units: {self.observed} events in {span} "
                    f"(Gi* z = {z}, q = {_p(self.q_value)})")
        return f"相邻 {n} 个单元聚集：{span}共 {self.observed} 起（Gi* z = {z}，q = {_p(self.q_value)}）"

    def as_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        out["explain"] = self.explain("en")
        return out


def _fixed(v: float | None, spec: str) -> str:
    return MISSING if v is None else format(v, spec)


def _p(p: float | None) -> str:
    if p is None:
        return MISSING
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _span_words(window: str, lang: str) -> str:
    n, unit = int(window[:-1]), window[-1]
    if lang == "en":
        return f"the last {n} {'h' if unit == 'h' else 'days'}"
    return f"近{n}{'小时' if unit == 'h' else '天'}"


@dataclass
class RunResult:
    at: datetime
    found: dict[str, int] = field(default_factory=dict)
    new: int = 0
    kept: int = 0
    expired: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------- detection


def _units(conn) -> dict[int, tuple[str, str, str]]:
    rows = conn.execute(sa.text("SELECT id, code, name, level FROM units"))
    return {r.id: (r.code, r.name, r.level) for r in rows}


def _surges(conn, hs: HotspotSettings, at: datetime, units: dict) -> list[Warning]:
    # Every event-holding unit's ancestors among the tested levels (itself included).
    pairs = np.array(conn.execute(sa.text(f"""
        SELECT cl.descendant_id, cl.ancestor_id FROM unit_closure cl JOIN units a ON a.id = cl.ancestor_id
        WHERE a.level IN ({", ".join(repr(lv) for lv in SURGE_LEVELS)})""")).all(), dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return []
    tested = np.unique(pairs[:, 1])
    slot = {int(u): i for i, u in enumerate(tested)}
    anc_slot = np.array([slot[int(a)] for a in pairs[:, 1]])
    max_id = int(max(units)) + 1
    out: list[Warning] = []
    tests = []  # (window hours, observed, baseline, scale)
    # One pass over the events for every window: per unit and week-offset k, how many fall in
    # the first `hours` of that week's slot.
    longest = max(hs.windows)
    counts_sql = ", ".join(f"count(*) FILTER (WHERE e.age - kk.k * 604800 < {int(h) * 3600})" for h in hs.windows)
    rows = conn.execute(sa.text(f"""
        SELECT grid_id, k, {counts_sql} FROM (
            SELECT grid_id, extract(epoch FROM (:at - reported_at)) AS age FROM events
            WHERE reported_at < :at AND reported_at >= :at - make_interval(weeks => :weeks, hours => :hours)
              AND grid_id IS NOT NULL) e,
            LATERAL (SELECT floor(e.age / 604800)::int AS k) kk
        WHERE kk.k <= :weeks GROUP BY 1, 2"""), {"at": at, "weeks": hs.weeks, "hours": longest}).all()
    r = np.array(rows, dtype=np.int64).reshape(-1, 2 + len(hs.windows))
    for w, hours in enumerate(hs.windows):
        by_unit = np.zeros((max_id, hs.weeks + 1))
        np.add.at(by_unit, (r[:, 0], r[:, 1]), r[:, 2 + w])
        counts = np.zeros((len(tested), hs.weeks + 1))
        np.add.at(counts, anc_slot, by_unit[pairs[:, 0]])
        city = by_unit.sum(axis=0)
        scale = float(np.clip((city[0] + 1) / (city[1:].mean() + 1), 0.5, 2.0))
        tests.append((hours, counts[:, 0], counts[:, 1:], scale))
    # One multiple-testing family: every unit and window tested in this run.
    obs = np.concatenate([t[1] for t in tests])
    base = np.concatenate([t[2] for t in tests])
    scale = np.concatenate([np.full(len(tested), t[3]) for t in tests])
    res = detect.surge(obs, base, q=hs.q, min_count=hs.min_count, min_excess=hs.min_excess, city_scale=scale)
    for i in np.flatnonzero(res.flagged):
        hours = tests[i // len(tested)][0]
        unit = int(tested[i % len(tested)])
        start = at - timedelta(hours=hours)
        top = conn.execute(sa.text("""
            SELECT c.id, c.name, count(*) AS n FROM events e JOIN unit_closure cl ON cl.descendant_id = e.grid_id
            JOIN categories c ON c.id = e.category_id
            WHERE cl.ancestor_id = :u AND e.reported_at >= :s AND e.reported_at < :at
            GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1"""), {"u": unit, "s": start, "at": at}).first()
        label = window_label(hours)
        out.append(Warning(
            None, "surge", unit, None, label, start, at, int(res.observed[i]), float(res.expected[i]),
            float(res.observed[i] / max(res.expected[i], 1e-9)), float(res.p[i]), float(res.q[i]),
            {"top_category_id": top.id, "top_category_name": top.name, "top_category_count": top.n,
             "baseline_weeks": hs.weeks} if top else {"baseline_weeks": hs.weeks},
            f"surge:{unit}:{label}", at, at))
    return out


def _recurrences(conn, hs: HotspotSettings, at: datetime) -> list[Warning]:
    # As five arrays in one row: far quicker to read than a row per event.
    ids, cat, grid, lon, lat = conn.execute(sa.text("""
        SELECT array_agg(id), array_agg(category_id), array_agg(grid_id), array_agg(ST_X(location)),
               array_agg(ST_Y(location))
        FROM events
        WHERE reported_at < :at AND reported_at >= :at - make_interval(days => :days)
          AND location IS NOT NULL AND NOT location_approximate AND grid_id IS NOT NULL"""),
        {"at": at, "days": hs.days}).one()
    if not ids:
        return []
    ids, cat, grid = (np.array(v, dtype=np.int64) for v in (ids, cat, grid))
    lon, lat = np.array(lon, dtype=float), np.array(lat, dtype=float)
    out = []
    start = at - timedelta(days=hs.days)
    area = _areas(conn)
    unit_ids, inverse = np.unique(grid, return_inverse=True)
    area_m2 = np.array([area.get(int(g), 0.0) for g in unit_ids])[inverse]
    for spot in detect.recurrence(cat, lon, lat, radius_m=hs.radius_m, repeats=hs.repeats, grid=grid,
                                  area_m2=area_m2, q=hs.q):
        c = spot.centre
        unit = int(grid[c])
        # The spot's name across runs: category, unit and the radius-sized cell of its centre.
        cell = np.floor(detect.to_metres(lon[[c]], lat[[c]])[0] / hs.radius_m).astype(int)
        out.append(Warning(
            None, "recurrence", unit, spot.category, window_label(hs.days * 24), start, at, len(spot.members),
            spot.expected, float(len(spot.members)), spot.p, spot.q,
            {"lon": float(lon[c]), "lat": float(lat[c]), "radius_m": hs.radius_m,
             "event_ids": sorted(int(i) for i in ids[spot.members])},
            f"recurrence:{spot.category}:{unit}:{cell[0]}:{cell[1]}", at, at))
    return out


def _areas(conn) -> dict[int, float]:
    """Area in square metres of every unit with a boundary (cached like the adjacency)."""
    return _areas_cached(conn.engine.url.render_as_string(hide_password=False), _signature(conn))


def _signature(conn) -> tuple:
    return tuple(conn.execute(sa.text("SELECT count(*), max(id), max(xmin::text::bigint) FROM units")).one())


@lru_cache(maxsize=8)
def _areas_cached(url: str, signature: tuple) -> dict[int, float]:
    from cockpit.store.database import engine
    with engine(url).connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT id, ST_Area(geom::geography) FROM units WHERE geom IS NOT NULL")).all())


@lru_cache(maxsize=8)
def _adjacency(url: str, signature: tuple) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Leaf units and which of them touch (cached per store and units' signature)."""
    from cockpit.store.database import engine
    with engine(url).connect() as conn:
        leaves = np.array(conn.execute(sa.text(
            "SELECT id FROM units u WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id) "
            "AND geom IS NOT NULL ORDER BY id")).scalars().all(), dtype=np.int64)
        pairs = np.array(conn.execute(sa.text("""
            WITH l AS (SELECT id, geom FROM units u WHERE geom IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = u.id))
            SELECT a.id, b.id FROM l a JOIN l b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)""")).all(),
            dtype=np.int64).reshape(-1, 2)
    pos = np.searchsorted(leaves, pairs)
    n = len(leaves)
    m = sparse.coo_matrix((np.ones(len(pos)), (pos[:, 0], pos[:, 1])), shape=(n, n))
    return leaves, (m + m.T).tocsr()


def _clusters(conn, hs: HotspotSettings, at: datetime) -> list[Warning]:
    leaves, adj = _adjacency(conn.engine.url.render_as_string(hide_password=False), _signature(conn))
    if len(leaves) < 3:
        return []
    rows = conn.execute(sa.text("""
        SELECT grid_id, count(*) FROM events
        WHERE reported_at < :at AND reported_at >= :at - make_interval(days => :days)
          AND location IS NOT NULL AND NOT location_approximate AND grid_id IS NOT NULL GROUP BY 1"""),
        {"at": at, "days": hs.cluster_days}).all()
    x = np.zeros(len(leaves))
    if rows:
        r = np.array(rows, dtype=np.int64)
        pos = np.searchsorted(leaves, r[:, 0])
        ok = (pos < len(leaves)) & (leaves[np.minimum(pos, len(leaves) - 1)] == r[:, 0])
        x[pos[ok]] = r[ok, 1]
    out = []
    start = at - timedelta(days=hs.cluster_days)
    for cl in detect.getis_ord(x, adj, q=hs.q, min_count=hs.min_count):
        top = cl.top
        unit = int(leaves[top])
        out.append(Warning(
            None, "cluster", unit, None, window_label(hs.cluster_days * 24), start, at, int(x[cl.units].sum()),
            None, float(cl.z[top]), float(cl.p[top]), float(cl.q[top]),
            {"units": [int(u) for u in leaves[cl.units]], "z": [round(float(cl.z[i]), 2) for i in cl.units]},
            f"cluster:{unit}", at, at))
    return out


def detect_all(conn, at: datetime | None = None, hs: HotspotSettings | None = None) -> list[Warning]:
    """Every warning in force as of `at` (default now), computed from the events; nothing stored."""
    hs = hs or settings().hotspot
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    units = _units(conn)
    if not units:
        return []
    found = _surges(conn, hs, at, units) + _recurrences(conn, hs, at) + _clusters(conn, hs, at)
    _name(conn, found, units)
    return found


def recompute(conn, at: datetime | None = None, unit_code: str | None = None,
              kind: str | None = None) -> list[Warning]:
    """detect_all narrowed to a unit's subtree and a kind, by kind and unit code (a past day can
    be replayed without touching the stored warnings)."""
    root = unit_id_of(conn, unit_code) if unit_code is not None else None
    found = detect_all(conn, at)
    if root is not None:
        inside = set(conn.execute(sa.text("SELECT descendant_id FROM unit_closure WHERE ancestor_id = :u"),
                                  {"u": root}).scalars())
        found = [w for w in found if w.unit_id in inside]
    if kind is not None:
        found = [w for w in found if w.kind == kind]
    return sorted(found, key=lambda w: (w.kind, w.unit_code))


def _name(conn, found: list[Warning], units: dict) -> None:
    cats = dict(conn.execute(sa.text("SELECT id, name FROM categories")).all())
    for w in found:
        w.unit_code, w.unit_name, w.unit_level = units[w.unit_id]
        if w.category_id is not None:
            w.category_name = cats.get(w.category_id)


# ---------------------------------------------------------------- the table

_COLUMNS = ("kind", "unit_id", "category_id", "window", "window_start", "window_end", "observed", "expected",
            "statistic", "p_value", "q_value", "detail", "key", "first_seen", "last_seen")
_UPSERT = sa.text(f"""
    INSERT INTO warnings ({", ".join(f'"{c}"' for c in _COLUMNS)})
    VALUES ({", ".join(f":{c}" for c in _COLUMNS)})
    ON CONFLICT (key) WHERE state IN ('new', 'acknowledged') DO UPDATE SET
        last_seen = greatest(warnings.last_seen, excluded.last_seen),
        window_start = excluded.window_start, window_end = excluded.window_end, observed = excluded.observed,
        expected = excluded.expected, statistic = excluded.statistic, p_value = excluded.p_value,
        q_value = excluded.q_value, detail = excluded.detail
    RETURNING (xmax = 0) AS inserted""")


def run(conn, tz=None, at: datetime | None = None, hs: HotspotSettings | None = None) -> RunResult:
    """Detect as of `at` and bring `warnings` up to date: new ones inserted (state new), ones
    still in force keep their row (last_seen moves), live ones no longer found expire."""
    started = time.monotonic()
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    found = detect_all(conn, at, hs)
    result = RunResult(at)
    for w in found:
        result.found[w.kind] = result.found.get(w.kind, 0) + 1
        row = {c: getattr(w, c) for c in _COLUMNS}
        row["detail"] = json.dumps(w.detail, ensure_ascii=False)
        if conn.execute(_UPSERT, row).scalar():
            result.new += 1
        else:
            result.kept += 1
    result.expired = conn.execute(sa.text(
        "UPDATE warnings SET state = 'expired' WHERE state IN ('new', 'acknowledged') "
        "AND NOT (key = ANY(:keys)) AND last_seen <= :at"), {"keys": [w.key for w in found], "at": at}).rowcount
    result.seconds = time.monotonic() - started
    return result


_SELECT = """
    SELECT w.*, u.code AS unit_code, u.name AS unit_name, u.level AS unit_level, c.name AS category_name
    FROM warnings w JOIN units u ON u.id = w.unit_id LEFT JOIN categories c ON c.id = w.category_id"""


def _warning(row) -> Warning:
    m = dict(row._mapping)
    return Warning(**{f.name: m.get(f.name) for f in fields(Warning)})


def unit_id_of(conn, code: str) -> int:
    uid = conn.execute(sa.text("SELECT id FROM units WHERE code = :c"), {"c": code}).scalar()
    if uid is None:
        raise CockpitError(f"no unit with code {code!r}")
    return uid


def in_force(conn, at: datetime | None = None, unit_code: str | None = None, kind: str | None = None) -> list[Warning]:
    """Warnings in force (state new or acknowledged; with `at`: seen at that time), newest first,
    within the subtree of unit_code when given."""
    where, params = [], {}
    if at is None:
        where.append("w.state IN ('new', 'acknowledged')")
    else:
        where.append("w.first_seen <= :at AND w.last_seen >= :at AND w.state <> 'closed'")
        params["at"] = at
    if unit_code is not None:
        params["root"] = unit_id_of(conn, unit_code)
        where.append("w.unit_id IN (SELECT descendant_id FROM unit_closure WHERE ancestor_id = :root)")
    if kind is not None:
        where.append("w.kind = :kind")
        params["kind"] = kind
    rows = conn.execute(sa.text(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY w.first_seen DESC, w.id DESC"),
                        params)
    return [_warning(r) for r in rows]


def for_subtree(conn, unit_id: int, limit: int = 50) -> list[Warning]:
    """Live warnings of a unit and every unit below it, newest first."""
    rows = conn.execute(sa.text(f"""{_SELECT}
        WHERE w.state IN ('new', 'acknowledged')
          AND w.unit_id IN (SELECT descendant_id FROM unit_closure WHERE ancestor_id = :u)
        ORDER BY w.first_seen DESC, w.id DESC LIMIT :n"""), {"u": unit_id, "n": limit})
    return [_warning(r) for r in rows]


@dataclass
class PeriodWarnings:
    total: int
    rows: list[Warning]  # newest first, at most the limit
    by_kind: dict[str, int]  # every kind, 0 when none


def of_period(conn, start: datetime, end: datetime, group_id: int | None = None, limit: int = 50) -> PeriodWarnings:
    """Warnings in force at some time in [start, end) — first seen before its end and last seen at
    or after its start, whatever their state now — newest first. With group_id, only those whose
    category (a surge's: its top category) is that group or one of its categories; a cluster has
    none and so never matches a group."""
    where = "w.first_seen < :end AND w.last_seen >= :start"
    params = {"start": start, "end": end, "n": limit}
    if group_id is not None:
        where += (" AND coalesce(w.category_id, (w.detail->>'top_category_id')::int) IN "
                  "(SELECT id FROM categories WHERE id = :g OR parent_id = :g)")
        params["g"] = group_id
    rows = conn.execute(sa.text(f"{_SELECT} WHERE {where} ORDER BY w.first_seen DESC, w.id DESC LIMIT :n"), params)
    listed = [_warning(r) for r in rows]
    by_kind = dict.fromkeys(WARNING_KINDS, 0) | dict(conn.execute(sa.text(
        f"SELECT w.kind, count(*) FROM warnings w WHERE {where} GROUP BY 1"), params).all())
    return PeriodWarnings(sum(by_kind.values()), listed, by_kind)


def get(conn, warning_id: int) -> Warning:
    row = conn.execute(sa.text(f"{_SELECT} WHERE w.id = :id"), {"id": warning_id}).first()
    if row is None:
        raise CockpitError(f"no warning {warning_id}")
    return _warning(row)


def series(conn, warning_id: int, weeks: int | None = None) -> list[tuple[datetime, int, float]]:
    """The warned unit's recent counts against its baseline, for a mini chart: (bucket start,
    observed, expected) with hourly buckets over the last day for windows up to 24 h, daily
    buckets over the last 14 days otherwise; expected = the mean of the same bucket in the
    previous `weeks` weeks (default: the detection setting)."""
    w = get(conn, warning_id)
    weeks = weeks or settings().hotspot.weeks
    step, n = (timedelta(hours=1), 24) if w.window.endswith("h") and int(w.window[:-1]) <= 24 \
        else (timedelta(days=1), 14)
    end = w.window_end
    first = end - n * step
    units = w.detail.get("units") or [w.unit_id]
    rows = conn.execute(sa.text("""
        SELECT floor(extract(epoch FROM (:end - e.reported_at)) / :step)::int AS b, count(*)
        FROM events e JOIN unit_closure cl ON cl.descendant_id = e.grid_id
        WHERE cl.ancestor_id = ANY(:units) AND e.reported_at < :end
          AND e.reported_at >= :end - make_interval(weeks => :weeks) - :span
          AND (CAST(:cat AS integer) IS NULL OR e.category_id = :cat)
        GROUP BY 1"""), {"end": end, "step": step.total_seconds(), "units": units, "weeks": weeks,
                         "span": n * step, "cat": w.category_id}).all()
    by_age = dict(rows)
    per_week = int(timedelta(weeks=1) / step)
    out = []
    for i in range(n):
        age = n - 1 - i  # bucket age, 0 = the newest
        base = [by_age.get(age + k * per_week, 0) for k in range(1, weeks + 1)]
        out.append((first + i * step, int(by_age.get(age, 0)), float(np.mean(base))))
    return out


def events_of(conn, warning_id: int, limit: int = 50) -> list[dict]:
    """The events behind a warning, newest first: a recurrence's own events; for a surge or a
    cluster the events of its unit(s) in its window."""
    w = get(conn, warning_id)
    cols = ("SELECT e.id, e.external_id, e.source, e.reported_at, e.status, c.name AS category, e.address, "
            "e.grid_id, ST_X(e.location) AS lon, ST_Y(e.location) AS lat FROM events e "
            "JOIN categories c ON c.id = e.category_id")
    if w.kind == "recurrence":
        rows = conn.execute(sa.text(f"{cols} WHERE e.id = ANY(:ids) ORDER BY e.reported_at DESC LIMIT :n"),
                            {"ids": w.detail.get("event_ids", []), "n": limit})
    else:
        rows = conn.execute(sa.text(f"""{cols} JOIN unit_closure cl ON cl.descendant_id = e.grid_id
            WHERE cl.ancestor_id = ANY(:units) AND e.reported_at >= :s AND e.reported_at < :e
            ORDER BY e.reported_at DESC LIMIT :n"""),
            {"units": w.detail.get("units") or [w.unit_id], "s": w.window_start, "e": w.window_end, "n": limit})
    return [dict(r._mapping) for r in rows]


def acknowledge(conn, warning_id: int, who: str, note: str | None = None) -> Warning:
    """A duty officer has seen it: state acknowledged, by whom, when, with a note."""
    who = (who or "").strip()
    if not who:
        raise CockpitError("acknowledging a warning needs the name of who acknowledges it")
    done = conn.execute(sa.text("""
        UPDATE warnings SET state = 'acknowledged', acknowledged_by = :who, acknowledged_at = now(),
               note = :note
        WHERE id = :id AND state IN ('new', 'acknowledged') RETURNING id"""),
        {"id": warning_id, "who": who, "note": (note or "").strip() or None}).first()
    if done is None:
        get(conn, warning_id)  # says "no warning N" when there is none
        raise CockpitError(f"warning {warning_id} is no longer in force")
    return get(conn, warning_id)


def close(conn, warning_id: int, who: str, note: str | None = None) -> Warning:
    """Dealt with: state closed (it may come back as a new warning if detection finds it again)."""
    done = conn.execute(sa.text("""
        UPDATE warnings SET state = 'closed', acknowledged_by = coalesce(acknowledged_by, :who),
               acknowledged_at = coalesce(acknowledged_at, now()), note = coalesce(:note, note)
        WHERE id = :id AND state IN ('new', 'acknowledged') RETURNING id"""),
        {"id": warning_id, "who": who, "note": (note or "").strip() or None}).first()
    if done is None:
        get(conn, warning_id)
        raise CockpitError(f"warning {warning_id} is no longer in force")
    return get(conn, warning_id)
