"""一量三率 — "one volume, three rates": the only place their formulas are written.

For the events reported in a period [start, end) whose grid lies in a unit's subtree:
    volume            = count of events
    closure_rate      = closed / volume             closed: closed_at is set
    on_time_rate      = closed_on_time / closed     closed_on_time: closed_at <= deadline_at
    satisfaction_rate = satisfied / rated           satisfied: rating >= 4 (of 1-5 stars)
A rate whose denominator is 0 is None ("—" on screen), never 0 or NaN. An event without a
deadline is not counted on time: a missing deadline is a data fault, not a credit.
Which figures exist and which counts make each rate: cockpit.metrics.registry.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from cockpit.errors import CockpitError, NotFound, UnknownUnit
from cockpit.metrics.registry import FIGURES
from cockpit.store.schema import events, unit_closure, units

SATISFIED_MIN_STARS = 4
DEFAULT_DAYS = 30
FIRST_YEAR, LAST_YEAR = 1900, 2200  # what a period may span


# -- which events a count counts ----------------------------------------------------------------
#
# Each rule reads two ways: as SQL over an events-shaped table (the raw path, the rollups and
# their triggers) and as numpy over columns of the same names (the demo loader, which writes the
# rollups itself). NULL is a masked entry, and a comparison with NULL counts nothing, as in SQL.

class Rule:
    def sql(self, e: sa.Table) -> sa.ColumnElement[bool] | None:
        raise NotImplementedError

    def array(self, cols: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """True where the rule holds (None: every row), on numpy or masked columns."""
        raise NotImplementedError


class Every(Rule):
    def sql(self, e):
        return None

    def array(self, cols):
        return None


@dataclass(frozen=True)
class Known(Rule):
    column: str

    def sql(self, e):
        return e.c[self.column].is_not(None)

    def array(self, cols):
        return ~np.ma.getmaskarray(cols[self.column])


@dataclass(frozen=True)
class Missing(Rule):
    column: str

    def sql(self, e):
        return e.c[self.column].is_(None)

    def array(self, cols):
        return np.ma.getmaskarray(cols[self.column])


@dataclass(frozen=True)
class Both(Rule):
    first: Rule
    second: Rule

    def sql(self, e):
        return sa.and_(self.first.sql(e), self.second.sql(e))

    def array(self, cols):
        return self.first.array(cols) & self.second.array(cols)


@dataclass(frozen=True)
class NotAfter(Rule):
    column: str
    limit: str  # another column

    def sql(self, e):
        return e.c[self.column] <= e.c[self.limit]

    def array(self, cols):
        return np.ma.filled(cols[self.column] <= cols[self.limit], False)


@dataclass(frozen=True)
class AtLeast(Rule):
    column: str
    value: int

    def sql(self, e):
        return e.c[self.column] >= self.value

    def array(self, cols):
        return np.ma.filled(cols[self.column] >= self.value, False)


@dataclass(frozen=True)
class Equals(Rule):
    column: str
    value: str

    def sql(self, e):
        return e.c[self.column] == self.value

    def array(self, cols):
        return np.ma.filled(cols[self.column] == self.value, False)


def holds(rule: Rule, cols: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The rule over n rows of numpy columns, as booleans."""
    got = rule.array(cols)
    return np.ones(n, dtype=bool) if got is None else np.asarray(got, dtype=bool)


# The counts behind the rates. Also used by cockpit.metrics.measures for the rollups and their
# triggers, and by the demo loader, so every path counts exactly the same events.
CONDITIONS: dict[str, Rule] = {
    "volume": Every(),
    "closed": Known("closed_at"),
    "closed_on_time": NotAfter("closed_at", "deadline_at"),
    "rated": Known("rating"),
    "satisfied": AtLeast("rating", SATISFIED_MIN_STARS),
}
COUNT_NAMES = tuple(CONDITIONS)


def count_where(condition: sa.ColumnElement[bool] | None, name: str) -> sa.ColumnElement[int]:
    """count(*) [FILTER (WHERE condition)], labelled."""
    return (sa.func.count() if condition is None else sa.func.count().filter(condition)).label(name)


def count_columns(e: sa.Table = events) -> list[sa.ColumnElement]:
    """The counts behind the rates, as SQL aggregates over an events-shaped table."""
    return [count_where(rule.sql(e), name) for name, rule in CONDITIONS.items()]


def rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class Counts:
    volume: int = 0
    closed: int = 0
    closed_on_time: int = 0
    rated: int = 0
    satisfied: int = 0

    def rates(self) -> dict[str, float | None]:
        return {f.key: rate(getattr(self, f.numerator), getattr(self, f.denominator))
                for f in FIGURES if f.is_rate}

    def as_dict(self) -> dict:
        return {**asdict(self), **self.rates()}


assert tuple(f.name for f in fields(Counts)) == COUNT_NAMES, "Counts holds exactly the counts of CONDITIONS"
assert {n for f in FIGURES if f.is_rate for n in (f.numerator, f.denominator)} <= set(COUNT_NAMES)


@dataclass(frozen=True)
class Period:
    """Local calendar days [first, end) in the city's time zone.

    `end` is exclusive because the queries compare instants with it; wherever a person or a
    program names a period (--from/--to, the URL's from/to, the JSON) `to` is `last`, included.
    """
    first: date
    end: date  # exclusive
    tz: ZoneInfo

    @property
    def last(self) -> date:
        """The last day included."""
        return self.end - timedelta(days=1)

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.first, time(), self.tz)

    @property
    def end_utc(self) -> datetime:
        return datetime.combine(self.end, time(), self.tz)

    @classmethod
    def last_days(cls, days: int, tz: ZoneInfo, today: date | None = None) -> Period:
        """The last `days` local days, today included."""
        today = today or datetime.now(tz).date()
        return cls(today - timedelta(days=days - 1), today + timedelta(days=1), tz)

    @classmethod
    def parse(cls, first: str | None, last: str | None, tz: ZoneInfo) -> Period:
        """From --from/--to strings (YYYY-MM-DD): the first and the last day, both included.

        Defaults: the last 30 days up to today; with only --to, the 30 days ending that day.
        """
        default = cls.last_days(DEFAULT_DAYS, tz)

        def day(text: str | None, flag: str, fallback: date) -> date:
            if text is None:
                return fallback
            try:
                parsed = date.fromisoformat(text)
            except ValueError:
                raise CockpitError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from None
            if not FIRST_YEAR <= parsed.year <= LAST_YEAR:  # year 1 or 9999: a typo, and past datetime's range
                raise CockpitError(f"{flag} {text!r} is outside the years {FIRST_YEAR}–{LAST_YEAR}")
            return parsed

        last_day = day(last, "--to", default.last)
        first_day = day(first, "--from", last_day - timedelta(days=DEFAULT_DAYS - 1) if last else default.first)
        if first_day > last_day:
            raise CockpitError(f"--from {first_day} must be on or before --to {last_day} (the last day included)")
        return cls(first_day, last_day + timedelta(days=1), tz)

    def as_dict(self) -> dict:
        """As `cockpit kpi --json` prints it: `to` is the last day included, as --to takes it."""
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "timezone": self.tz.key}


def months_spanned(p: Period) -> int | None:
    """How many whole calendar months the period is (a month, a quarter...), or None."""
    if p.first.day != 1 or p.end.day != 1:
        return None
    return (p.end.year - p.first.year) * 12 + p.end.month - p.first.month


def previous_period(p: Period) -> Period:
    """The period just before, compared with it: whole calendar months step back by as many
    months (October compares with September, Q4 with Q3), anything else by its length."""
    months = months_spanned(p)
    if months:
        k = p.first.year * 12 + p.first.month - 1 - months
        return Period(date(k // 12, k % 12 + 1, 1), p.first, p.tz)
    length = p.end - p.first
    return Period(p.first - length, p.first, p.tz)


UNIT_COLUMNS = (units.c.id, units.c.code, units.c.name, units.c.level, units.c.parent_id)


def unit_by_code(conn: sa.Connection, code: str | None) -> sa.Row:
    """A unit by its code; None means the top of the tree the connection sees (the first root if
    several): the city, or for someone who sees one district (row-level security, migration
    0011) that district, whose parent they cannot see. A unit outside what the connection sees
    is not found, exactly like a code that does not exist."""
    if code and "\x00" in code:  # PostgreSQL text cannot hold NUL: no unit has such a code
        raise UnknownUnit(code)
    q = sa.select(*UNIT_COLUMNS)
    if code:
        q = q.where(units.c.code == code)
    else:
        parent = units.alias("parent")
        q = q.where(~sa.exists().where(parent.c.id == units.c.parent_id)).order_by(units.c.id).limit(1)
    row = conn.execute(q).first()
    if row is None:
        if code:
            raise UnknownUnit(code)
        raise NotFound("the store has no units yet: load some (e.g. `cockpit demo`)")
    return row


def unit_counts(conn: sa.Connection, unit_id: int, period: Period) -> Counts:
    """The counts for a unit's subtree over a period, from the events table."""
    query = (
        sa.select(*count_columns())
        .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id))
        .where(
            unit_closure.c.ancestor_id == unit_id,
            events.c.reported_at >= period.start_utc,
            events.c.reported_at < period.end_utc,
        )
    )
    return Counts(**conn.execute(query).one()._asdict())


def unit_kpi(conn: sa.Connection, code: str, period: Period) -> dict:
    """What `cockpit kpi --json` prints and the screen shows for one unit."""
    unit = unit_by_code(conn, code)
    return {
        "unit": {"code": unit.code, "name": unit.name, "level": unit.level},
        "period": period.as_dict(),
        **unit_counts(conn, unit.id, period).as_dict(),
    }
