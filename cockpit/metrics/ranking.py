"""League tables of units (one level) or departments on 一量三率, fair to small numbers.

The method (stated on /rank's "how is this scored" panel and in the README):
- Each rate (closure, on-time, satisfaction: the registry's fractions, counted by the rules of
  cockpit.metrics.kpi) gets its 95 % Wilson score interval. The score uses the interval's lower
  bound: what the unit's record shows at least, with 95 % confidence. 2 of 2 closed gives a
  lower bound of 34.2 %, 1,980 of 2,000 gives 98.5 %, so the small unit cannot come first by
  luck; as n grows the bound closes in on the raw rate. A rate with no denominator (nothing
  closed, nothing rated) has the bound 0: no evidence earns nothing.
- score = 100 × Σ weight × lower bound, weights from COCKPIT_RANK_WEIGHTS (default closure 0.3,
  on-time 0.4, satisfaction 0.3; they sum to 1, so the score is 0-100), rounded to 0.01; units
  whose rounded scores are equal share a rank (competition ranking 1, 2, 2, 4).
- Volume does not enter the score. It is demand (how much the area generates), not merit: a
  unit does not handle its events better because more of them happen there, and rewarding volume
  would reward bigger or busier areas (the registry marks volume as neither good nor bad). Volume
  enters through the intervals (more events, tighter bounds) and the minimum: a unit with fewer
  than COCKPIT_RANK_MIN_VOLUME events (default 30) is listed "not ranked (n < N)", with its
  numbers; a unit with no events is listed last.
- Rank change compares with the previous period (kpi.previous_period: a month with the month
  before, a quarter with the quarter before, a week or a range with as many days just before),
  ranked the same way; "new" marks a unit ranked now and not then. The trend is the score of the
  last 8 such periods.
- By department: events.department_id (承办部门); events without a department are in no row.

The counts come from one query over the 8 periods at once (width_bucket over their bounds):
from the ranking rollups (cockpit.metrics.rollup: unit_month_rollup for whole months,
unit_day_rollup / department_day_rollup otherwise) when they are built for the city's time zone
and no category group or source filter is set; with a filter, from kpi_rollup for levels whose
units are all rolled up (districts, streets), else from raw events. The arithmetic runs in
numpy over one (unit, period, count) array. Measured with bench/rank.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import chain
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from cockpit.errors import BadRequest
from cockpit.metrics import rollup
from cockpit.metrics.kpi import COUNT_NAMES, FIRST_YEAR, LAST_YEAR, Period, count_columns, previous_period
from cockpit.metrics.registry import FRACTIONS
from cockpit.store.schema import LEVELS, departments, events, unit_closure, units

Z95 = 1.959963984540054  # two-sided 95 %
TREND_PERIODS = 8
RATES = {"closure": "closure_rate", "on_time": "on_time_rate", "satisfaction": "satisfaction_rate"}
RANKED, SMALL, EMPTY = "ranked", "small", "empty"
BY = ("unit", "department")


# -- periods ---------------------------------------------------------------------------------

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})", re.I)
_QUARTER = re.compile(r"(\d{4})-Q([1-4])", re.I)
PERIOD_HELP = "2026-10 (month), 2026-W44 (ISO week), 2026-Q4 (quarter) or 2026-10-01..2026-10-15 (days, both included)"


def parse_period(text: str, tz: ZoneInfo) -> tuple[Period, str]:
    """A period as people name it, and its kind: month, week, quarter or range."""
    raw = (text or "").strip()

    def bad(why: str = "") -> BadRequest:
        return BadRequest(f"period {raw!r} {why or 'is not one of ' + PERIOD_HELP}")

    def year(y: str) -> int:
        if not FIRST_YEAR <= int(y) <= LAST_YEAR:
            raise bad(f"is outside the years {FIRST_YEAR}–{LAST_YEAR}")
        return int(y)

    if m := _MONTH.fullmatch(raw):
        y, mo = year(m[1]), int(m[2])
        if not 1 <= mo <= 12:
            raise bad("has no month " + m[2])
        return Period(date(y, mo, 1), date(y + mo // 12, mo % 12 + 1, 1), tz), "month"
    if m := _WEEK.fullmatch(raw):
        y = year(m[1])
        try:
            monday = date.fromisocalendar(y, int(m[2]), 1)
        except ValueError:
            raise bad(f"has no ISO week {m[2]} (weeks run 01–52 or 53)") from None
        return Period(monday, monday + timedelta(days=7), tz), "week"
    if m := _QUARTER.fullmatch(raw):
        y, q = year(m[1]), int(m[2])
        first = date(y, 3 * q - 2, 1)
        return Period(first, date(y + q // 4, (3 * q) % 12 + 1, 1), tz), "quarter"
    a, sep, b = raw.partition("..")
    if sep:
        try:
            first, last = date.fromisoformat(a.strip()), date.fromisoformat(b.strip())
        except ValueError:
            raise bad("needs two days YYYY-MM-DD..YYYY-MM-DD") from None
        year(str(first.year)), year(str(last.year))
        if last < first:
            raise bad(f"ends ({last}) before it starts ({first})")
        return Period(first, last + timedelta(days=1), tz), "range"
    raise bad()


def period_label(p: Period, kind: str) -> str:
    """The period's name as parse_period reads it: 2026-10, 2026-W44, 2026-Q4, a..b."""
    if kind == "month":
        return f"{p.first:%Y-%m}"
    if kind == "week":
        y, w, _ = p.first.isocalendar()
        return f"{y}-W{w:02d}"
    if kind == "quarter":
        return f"{p.first.year}-Q{(p.first.month + 2) // 3}"
    return f"{p.first.isoformat()}..{p.last.isoformat()}"


def periods_back(p: Period, n: int = TREND_PERIODS) -> list[Period]:
    """The n periods ending with p, oldest first, each the previous_period of the next."""
    out = [p]
    while len(out) < n:
        out.insert(0, previous_period(out[0]))
    return out


# -- the arithmetic ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    """k of n, the raw rate and its 95 % Wilson score interval (None when n = 0)."""
    k: int
    n: int
    raw: float | None
    low: float | None
    high: float | None

    @property
    def adjusted(self) -> float:
        """The value the score uses: the interval's lower bound, 0 without evidence."""
        return self.low or 0.0


def wilson_bounds(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw rate k/n and its 95 % Wilson score interval, elementwise; NaN where n = 0."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        # exactly 0 and 1 when k is 0 and n (rounding would leave 0.9999999999999999)
        low = np.where(k == 0, 0.0, np.maximum(0.0, centre - half))
        high = np.where(k == n, 1.0, np.minimum(1.0, centre + half))
    none = n <= 0
    return np.where(none, np.nan, p), np.where(none, np.nan, low), np.where(none, np.nan, high)


def _rate(k, n, raw, low, high) -> Rate:
    if n <= 0:
        return Rate(int(k), int(n), None, None, None)
    return Rate(int(k), int(n), float(raw), float(low), float(high))


def wilson(k: int, n: int, z: float = Z95) -> Rate:
    raw, low, high = wilson_bounds([k], [n], z)
    return _rate(k, n, raw[0], low[0], high[0])


def competition_ranks(scores: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """1 + how many ranked scores are higher (1, 2, 2, 4), for the ranked entries; 0 elsewhere."""
    scores = np.asarray(scores, dtype=float)
    ranked = np.asarray(ranked, dtype=bool)
    asc = np.sort(scores[ranked])
    higher = len(asc) - np.searchsorted(asc, scores, side="right")
    return np.where(ranked, higher + 1, 0)


# -- the table -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankRow:
    rank: int | None
    key: str  # unit code or department code
    name: str
    unit_id: int | None
    volume: int
    population: int | None
    per_10k: float | None
    closure: Rate
    on_time: Rate
    satisfaction: Rate
    score: float | None
    change: int | None  # positive: moved up
    new: bool  # ranked now, not ranked in the previous period
    trend: list[float | None]  # score over the last 8 periods, oldest first, this one last
    status: str  # RANKED, SMALL (volume < min_volume) or EMPTY (no events)


@dataclass
class Ranking:
    by: str
    level: str | None
    period: Period
    previous: Period
    label: str
    kind: str
    weights: dict[str, float]
    min_volume: int
    group: str | None = None
    source: str | None = None
    trend_labels: list[str] = field(default_factory=list)
    rows: list[RankRow] = field(default_factory=list)

    def as_dicts(self) -> list[dict]:
        """One flat dict per row, in table order: what --json and --csv print."""
        out = []
        for r in self.rows:
            d = {"rank": r.rank, "status": r.status, "key": r.key, "name": r.name, "volume": r.volume,
                 "population": r.population, "per_10k": None if r.per_10k is None else round(r.per_10k, 2)}
            for name in RATES:
                rate: Rate = getattr(r, name)
                d.update({f"{name}_k": rate.k, f"{name}_n": rate.n, f"{name}_rate": rate.raw,
                          f"{name}_low": rate.low, f"{name}_high": rate.high})
            d.update({"score": r.score, "change": r.change, "new": r.new, "trend": list(r.trend)})
            out.append(d)
        return out

    def header(self) -> dict:
        return {"by": self.by, "level": self.level, "period": self.label, **self.period.as_dict(),
                "previous": self.previous.as_dict(), "group": self.group, "source": self.source,
                "weights": self.weights, "min_volume": self.min_volume, "method": "wilson_lower_95",
                "trend_periods": self.trend_labels}


def known_levels(conn: sa.Connection) -> list[str]:
    """The levels this city has, top first."""
    have = set(conn.execute(sa.select(units.c.level).distinct()).scalars())
    return [lv for lv in LEVELS if lv in have]


def _candidates(conn: sa.Connection, by: str, level: str | None) -> list[tuple]:
    """Every unit of the level (or every department): all are listed, events or not."""
    if by == "department":
        q = sa.select(departments.c.id, departments.c.code.label("key"), departments.c.name,
                      sa.null().label("population")).order_by(departments.c.code)
    else:
        q = (sa.select(units.c.id, units.c.code.label("key"), units.c.name, units.c.population)
             .where(units.c.level == level).order_by(units.c.code))
    return [tuple(r) for r in conn.execute(q).all()]  # (id, key, name, population)


def _bounds_utc(ps: list[Period]) -> list:
    return [p.start_utc for p in ps] + [ps[-1].end_utc]


def raw_counts(conn, by: str, level: str | None, ps: list[Period], filters, gid: int | None) -> np.ndarray:
    """Counts per unit (or department) and period, from raw events: one scan of the 8 periods."""
    from cockpit.metrics.unit_view import _event_filters  # the drill-down's filters, as they are

    k = sa.func.width_bucket(events.c.reported_at, sa.cast(sa.literal(_bounds_utc(ps)),
                                                           sa.ARRAY(sa.DateTime(timezone=True)))).label("k")
    base = [events.c.reported_at >= ps[0].start_utc, events.c.reported_at < ps[-1].end_utc,
            *_event_filters(events, filters, gid)]
    if by == "department":
        key = events.c.department_id.label("id")
        q = sa.select(key, k, *count_columns()).where(events.c.department_id.is_not(None), *base)
    else:
        key = unit_closure.c.ancestor_id.label("id")
        q = (sa.select(key, k, *count_columns())
             .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id)
                          .join(units, units.c.id == unit_closure.c.ancestor_id))
             .where(units.c.level == level, *base))
    return _array(conn.execute(q.group_by(sa.text("1"), sa.text("2"))).all())


def _array(rows) -> np.ndarray:
    """Rows (id, k, *counts) as one int64 array, one row each."""
    return np.fromiter(chain.from_iterable(rows), dtype=np.int64).reshape(-1, 2 + len(COUNT_NAMES))


def period_counts(conn, by: str, level: str | None, ps: list[Period], filters, gid: int | None,
                  plain: bool = False) -> np.ndarray:
    """Rows (unit or department id, period 1..8, *counts) from the ranking rollups when they
    answer, else from raw events in one scan. plain: the plain way, a GROUP BY over raw events
    per period (the reference of the tests and the baseline of bench/rank.py)."""
    if plain:
        parts = []
        for j, p in enumerate(ps):
            part = raw_counts(conn, by, level, [p], filters, gid)
            part[:, 1] = j + 1
            parts.append(part)
        return np.concatenate(parts)
    bounds = [p.first for p in ps] + [ps[-1].end]
    if not filters.group and not filters.source and rollup.recorded_timezone(conn) == ps[0].tz.key:
        return _array(conn.execute(rollup.rank_counts_query(by, level, bounds)).all())
    if by == "unit" and rollup.level_rolled_up(conn, level, ps[0].tz):  # filtered, larger units
        return _array(conn.execute(rollup.filtered_rank_counts_query(level, bounds, filters.source, gid)).all())
    return raw_counts(conn, by, level, ps, filters, gid)


def rank(conn: sa.Connection, tz: ZoneInfo, *, level: str | None = None, period_text: str, group: str | None = None,
         source: str | None = None, by: str = "unit", weights: dict[str, float] | None = None,
         min_volume: int | None = None, plain: bool = False) -> Ranking:
    """The league table of one level's units (or of the departments) for a period."""
    from cockpit.metrics.unit_view import Filters, group_id

    if weights is None or min_volume is None:
        from cockpit.config import settings

        s = settings()
        weights = dict(s.rank_weights) if weights is None else weights
        min_volume = s.rank_min_volume if min_volume is None else min_volume
    if by not in BY:
        raise BadRequest(f"cannot rank by {by!r}; choose one of {', '.join(BY)}")
    period, kind = parse_period(period_text, tz)
    if by == "unit":
        levels = known_levels(conn)
        if level is None:
            level = levels[1] if len(levels) > 1 else (levels or [None])[0]
        if level not in levels:
            raise BadRequest(f"unknown level {level!r}; this city has: {', '.join(levels) or '(no units yet)'}")
    else:
        level = None
    filters = Filters(group, source).validated(conn)
    gid = group_id(conn, group) if group else None
    if not plain:
        conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))

    ps = periods_back(period)
    data = period_counts(conn, by, level, ps, filters, gid, plain)
    cands = _candidates(conn, by, level)
    c = np.zeros((len(cands), len(ps), len(COUNT_NAMES)), dtype=np.int64)  # unit, period, count
    ids = np.array([cand[0] for cand in cands], dtype=np.int64)
    order = np.argsort(ids)
    at = order[np.minimum(np.searchsorted(ids, data[:, 0], sorter=order), len(ids) - 1)] if len(ids) else []
    keep = (ids[at] == data[:, 0]) & (data[:, 1] >= 1) & (data[:, 1] <= len(ps)) if len(ids) else []
    c[at[keep], data[keep, 1] - 1] = data[keep, 2:]
    col = {name: c[:, :, j] for j, name in enumerate(COUNT_NAMES)}
    volume = col["volume"]
    bounds = {name: wilson_bounds(col[FRACTIONS[key][0]], col[FRACTIONS[key][1]]) for name, key in RATES.items()}
    total = np.zeros(volume.shape)
    for name, w in weights.items():
        total = total + w * np.nan_to_num(bounds[name][1], nan=0.0)  # no denominator: bound 0
    scores = np.array([round(x, 2) for x in (100 * total).ravel().tolist()]).reshape(volume.shape)
    ranked = volume >= max(min_volume, 1)
    now_rank = competition_ranks(scores[:, -1], ranked[:, -1]).tolist()
    before_rank = competition_ranks(scores[:, -2], ranked[:, -2]).tolist()

    # this period's numbers as Python lists: one conversion, not one numpy lookup per cell
    now = {name: list(zip(col[FRACTIONS[key][0]][:, -1].tolist(), col[FRACTIONS[key][1]][:, -1].tolist(),
                          *(b[:, -1].tolist() for b in bounds[name]))) for name, key in RATES.items()}
    rows = []
    for i, (cand, score_row, volume_row) in enumerate(zip(cands, scores.tolist(), volume.tolist())):
        vol = volume_row[-1]
        r, before = now_rank[i] or None, before_rank[i] or None
        rates = {name: _rate(*now[name][i]) for name in RATES}
        trend = [s if v else None for s, v in zip(score_row, volume_row)]
        uid, key, name, pop = cand
        rows.append(RankRow(
            rank=r, key=key, name=name, unit_id=uid if by == "unit" else None,
            volume=vol, population=pop, per_10k=vol * 10_000 / pop if pop else None,
            closure=rates["closure"], on_time=rates["on_time"], satisfaction=rates["satisfaction"],
            score=trend[-1], change=(before - r) if r is not None and before is not None else None,
            new=r is not None and before is None, trend=trend,
            status=RANKED if r is not None else (SMALL if vol else EMPTY)))
    order = {RANKED: 0, SMALL: 1, EMPTY: 2}
    rows.sort(key=lambda x: (order[x.status], x.rank or 0, -x.volume, x.key))
    return Ranking(by=by, level=level, period=period, previous=ps[-2], label=period_label(period, kind), kind=kind,
                   weights=dict(weights), min_volume=min_volume, group=group, source=source,
                   trend_labels=[period_label(p, kind) for p in ps], rows=rows)
