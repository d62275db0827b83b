"""What the drill-down screen asks of the store, for one unit, period and filters.

Every question is answered either from the raw `events` table or from the rollups
(cockpit.metrics.rollup), unit by unit: rolled-up units (those with many events below them) read the
rollups, small units read raw events through their indexes. Both paths add up the same
measures (cockpit.metrics.measures), so they give the same numbers; `plain=True` forces the raw path
(the baseline of bench/drilldown.py and the reference of the consistency tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from cockpit.metrics import rollup
from cockpit.access import contacts
from cockpit.errors import BadRequest, CockpitError
from cockpit.metrics.kpi import (COUNT_NAMES, FIRST_YEAR, LAST_YEAR, UNIT_COLUMNS, Counts, Period, previous_period,  # noqa: F401
                                 unit_by_code)
from cockpit.metrics.measures import MEASURES, counted
from cockpit.metrics.registry import MAP_CHOICES
from cockpit.store.schema import (HANDLING_LEVELS, SOURCES, STATUSES, categories, departments, event_transitions,
                                  events, unit_closure, units)

PERIOD_KINDS = ("today", "7d", "30d", "this_month", "last_month", "custom")
KPI_CHOICES = MAP_CHOICES  # what may colour the map (the URL's kpi=)
STAGES = STATUSES[:-1]  # time is spent in every status but the last
MAX_GRID_EVENTS = 5000
# The longest custom period the drill-down draws: its trend has a point per day, and a period of
# thousands of years answered 55 MB (issue 13). Five years cover any review people ask for.
MAX_CUSTOM_DAYS = 5 * 366


def period_of(kind: str, tz: ZoneInfo, first: str | date | None = None, last: str | date | None = None,
              today: date | None = None) -> Period:
    """A period by its control value; `custom` takes first/last days, both included."""
    today = today or datetime.now(tz).date()
    if kind == "today":
        return Period(today, today + timedelta(days=1), tz)
    if kind == "7d":
        return Period.last_days(7, tz, today)
    if kind == "30d":
        return Period.last_days(30, tz, today)
    if kind == "this_month":
        return Period(today.replace(day=1), today + timedelta(days=1), tz)
    if kind == "last_month":
        end = today.replace(day=1)
        return Period((end - timedelta(days=1)).replace(day=1), end, tz)
    if kind == "custom":
        try:
            a = first if isinstance(first, date) else date.fromisoformat(str(first))
            b = last if isinstance(last, date) else date.fromisoformat(str(last))
        except (ValueError, TypeError):  # "2026-13-01", "\x00", a forged non-text value
            raise BadRequest(f"custom period needs two dates (YYYY-MM-DD), got {str(first)[:40]!r} "
                             f"and {str(last)[:40]!r}") from None
        if b < a:
            a, b = b, a
        if a.year < FIRST_YEAR or b.year > LAST_YEAR:
            raise BadRequest(f"custom period {a}..{b} is outside the years {FIRST_YEAR}–{LAST_YEAR}")
        if (b - a).days + 1 > MAX_CUSTOM_DAYS:
            raise BadRequest(f"custom period {a}..{b} is {(b - a).days + 1:,} days long: "
                             f"choose at most {MAX_CUSTOM_DAYS:,} days (five years)")
        return Period(a, b + timedelta(days=1), tz)
    raise BadRequest(f"unknown period {kind!r}; choose one of {', '.join(PERIOD_KINDS)}")


@dataclass(frozen=True)
class Filters:
    group: str | None = None  # category group code
    source: str | None = None  # one of SOURCES (渠道)

    def validated(self, conn: sa.Connection) -> Filters:
        if self.source is not None and self.source not in SOURCES:
            raise CockpitError(f"unknown source {self.source!r}")
        if self.group is not None and group_id(conn, self.group) is None:
            raise CockpitError(f"unknown category group {self.group!r}")
        return self


def group_id(conn: sa.Connection, code: str) -> int | None:
    return conn.execute(sa.select(categories.c.id).where(categories.c.code == code,
                                                         categories.c.parent_id.is_(None))).scalar()


def category_groups(conn: sa.Connection) -> list[dict]:
    rows = conn.execute(sa.select(categories.c.id, categories.c.code, categories.c.name)
                        .where(categories.c.parent_id.is_(None)).order_by(categories.c.code)).all()
    return [r._asdict() for r in rows]


# -- the unit tree ---------------------------------------------------------------------------

def breadcrumb(conn: sa.Connection, unit_id: int) -> list[dict]:
    rows = conn.execute(
        sa.select(units.c.code, units.c.name, units.c.level)
        .join(unit_closure, unit_closure.c.ancestor_id == units.c.id)
        .where(unit_closure.c.descendant_id == unit_id)
        .order_by(unit_closure.c.depth.desc())
    ).all()
    return [r._asdict() for r in rows]


def children_of(conn: sa.Connection, unit_id: int) -> list[sa.Row]:
    return conn.execute(sa.select(*UNIT_COLUMNS).where(units.c.parent_id == unit_id).order_by(units.c.code)).all()


# -- raw path ----------------------------------------------------------------------------------

def _event_filters(e: sa.Table, filters: Filters, gid: int | None) -> list[sa.ColumnElement]:
    conds = []
    if filters.source:
        conds.append(e.c.source == filters.source)
    if gid is not None:
        conds.append(e.c.category_id.in_(
            sa.select(categories.c.id).where(sa.or_(categories.c.id == gid, categories.c.parent_id == gid))))
    return conds


def _in_period(e: sa.Table, period: Period) -> list[sa.ColumnElement]:
    return _reported_in(e.c.reported_at, period)


def _reported_in(column: sa.ColumnElement, period: Period) -> list[sa.ColumnElement]:
    """Reported within the period. Also said of a transition's event_reported_at when it is joined
    to events of the period: the bound, seen when planning, leaves out the other months' partitions
    (a community's stage histogram as a scoped user: 48 -> 23 ms)."""
    return [column >= period.start_utc, column < period.end_utc]


def raw_totals(conn, unit_ids: list[int], period: Period, filters: Filters, gid: int | None,
               names=tuple(MEASURES)) -> dict[int, dict]:
    """Measures per unit (each unit's whole subtree), from raw events."""
    if not unit_ids:
        return {}
    q = (sa.select(unit_closure.c.ancestor_id.label("unit_id"), *(counted(events, n) for n in names))
         .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id))
         .where(unit_closure.c.ancestor_id.in_(unit_ids), *_in_period(events, period),
                *_event_filters(events, filters, gid))
         .group_by(unit_closure.c.ancestor_id))
    return {r.unit_id: r._asdict() for r in conn.execute(q)}


def raw_breakdown(conn, unit_id: int, period: Period, filters: Filters, gid: int | None, tz: ZoneInfo) -> list[dict]:
    """Measures of one unit by day, by category group and by source (one scan, grouping sets)."""
    cat = categories.alias("cat")
    day = sa.cast(sa.func.timezone(tz.key, events.c.reported_at), sa.Date).label("day")
    grp = sa.func.coalesce(cat.c.parent_id, cat.c.id).label("grp")
    q = (sa.select(day, grp, events.c.source, *(counted(events, n) for n in MEASURES),
                   sa.func.grouping(day, grp, events.c.source).label("g"))
         .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id)
                      .join(cat, cat.c.id == events.c.category_id))
         .where(unit_closure.c.ancestor_id == unit_id, *_in_period(events, period),
                *_event_filters(events, filters, gid))
         .group_by(sa.func.grouping_sets(sa.tuple_(), sa.tuple_(day), sa.tuple_(grp), sa.tuple_(events.c.source))))
    return [r._asdict() for r in conn.execute(q)]


def backlog(conn, unit_ids: list[int], filters: Filters, gid: int | None) -> dict[int, dict]:
    """Open events now, and those past their deadline, per unit subtree (whenever reported)."""
    if not unit_ids:
        return {}
    # counted per grid first, then summed up the tree: the join to every ancestor then has one
    # row per grid, not one per open event (the city's backlog: 23 -> 13 ms at 10 M events)
    per_grid = (sa.select(events.c.grid_id, sa.func.count().label("open"),
                          sa.func.count().filter(events.c.deadline_at < sa.func.now()).label("overdue"))
                .where(events.c.closed_at.is_(None), *_event_filters(events, filters, gid),
                       events.c.grid_id.in_(sa.select(unit_closure.c.descendant_id)
                                            .where(unit_closure.c.ancestor_id.in_(unit_ids))))
                .group_by(events.c.grid_id).subquery())
    q = (sa.select(unit_closure.c.ancestor_id.label("unit_id"), sa.func.sum(per_grid.c.open).label("open"),
                   sa.func.sum(per_grid.c.overdue).label("overdue"))
         .select_from(per_grid.join(unit_closure, unit_closure.c.descendant_id == per_grid.c.grid_id))
         .where(unit_closure.c.ancestor_id.in_(unit_ids))
         .group_by(unit_closure.c.ancestor_id))
    return {r.unit_id: {"open": int(r.open), "overdue": int(r.overdue)} for r in conn.execute(q)}


def raw_stage_histogram(conn, unit_id: int, period: Period) -> dict[str, list[int]]:
    """Time spent in each status by the unit's events of the period, as histograms."""
    ev = (sa.select(events.c.id, events.c.reported_at)
          .join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id)
          .where(unit_closure.c.ancestor_id == unit_id, *_in_period(events, period)).cte("ev"))
    t = event_transitions
    prev = sa.func.lag(t.c.at).over(partition_by=t.c.event_id, order_by=(t.c.at, t.c.id))
    spent = (sa.select(t.c.from_status.label("stage"),
                       (t.c.at - sa.func.coalesce(prev, ev.c.reported_at)).label("spent"))
             # the event's month too: its partition only (docs/schema.md §2a)
             .join(ev, sa.and_(ev.c.id == t.c.event_id, ev.c.reported_at == t.c.event_reported_at))
             .where(*_reported_in(t.c.event_reported_at, period)).subquery())
    bucket = rollup.bucket_sql(spent.c.spent).label("bucket")
    q = sa.select(spent.c.stage, bucket, sa.func.count().label("n")).group_by(spent.c.stage, bucket)
    return rollup.histograms(conn.execute(q))


def placed_here(conn, unit_id: int, period: Period, filters: Filters, gid: int | None) -> int:
    """Events of the period held by the unit itself, not by any unit below it ("placed only at
    this level", docs/schema.md §4): the children's numbers add up to the unit's minus these.
    Read raw whatever the unit's size: ix_events_grid_id_reported_at makes it an index range."""
    q = (sa.select(sa.func.count()).select_from(events)
         .where(events.c.grid_id == unit_id, *_in_period(events, period), *_event_filters(events, filters, gid)))
    return conn.execute(q).scalar_one()


# -- assembling a view ----------------------------------------------------------------------

def unit_totals(conn: sa.Connection, ids: list[int], period: Period, filters: Filters = Filters(),
                gid: int | None = None, rolled: set[int] | None = None) -> dict[int, dict]:
    """Measures per unit: rolled-up units from the rollups, the others from raw events."""
    if rolled is None:
        rolled = rollup.rolled_up(conn, ids, period.tz)
    fast = [i for i in ids if i in rolled]
    slow = [i for i in ids if i not in rolled]
    return {**rollup.totals(conn, fast, period, filters, gid), **raw_totals(conn, slow, period, filters, gid)}


def counts_of(m: dict | None) -> Counts:
    return Counts(**{k: (m or {}).get(k, 0) for k in COUNT_NAMES})


def card_numbers(m: dict | None) -> dict:
    """The KPI counts and rates, and the closed events without a deadline (the on-time card's note)."""
    return {**counts_of(m).as_dict(), "closed_no_deadline": int((m or {}).get("closed_no_deadline") or 0)}


def unit_view(conn: sa.Connection, code: str | None, period: Period, filters: Filters = Filters(),
              plain: bool = False) -> dict:
    """Everything one click shows for a unit: its numbers, its children's, its panels."""
    if not plain:
        # Our queries read a few thousand index entries at most: starting parallel workers
        # for each costs more than it saves. Plain SQL keeps them (it scans millions of rows).
        conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
    unit = unit_by_code(conn, code)
    filters = filters.validated(conn)
    gid = group_id(conn, filters.group) if filters.group else None
    kids = children_of(conn, unit.id)
    tz = period.tz
    rolled = set() if plain else rollup.rolled_up(conn, [unit.id, *(k.id for k in kids)], tz)

    def totals(ids: list[int], p: Period) -> dict[int, dict]:
        return unit_totals(conn, ids, p, filters, gid, rolled)

    now_totals = totals([unit.id, *(k.id for k in kids)], period)
    before = totals([unit.id], previous_period(period)).get(unit.id)
    if unit.id in rolled:
        rows = rollup.breakdown(conn, unit.id, period, filters, gid)
        stages = rollup.stage_histogram(conn, unit.id, period)
    else:
        rows = raw_breakdown(conn, unit.id, period, filters, gid, tz)
        stages = raw_stage_histogram(conn, unit.id, period)
    open_now = backlog(conn, [unit.id, *(k.id for k in kids)], filters, gid)

    mine = now_totals.get(unit.id, {})
    # a leaf holds all its events itself: "only at this level" means "in none of the children"
    placed = placed_here(conn, unit.id, period, filters, gid) if kids else 0
    groups = {g["id"]: g for g in category_groups(conn)}
    trend = {r["day"]: r for r in rows if r["g"] == 3}
    days = [period.first + timedelta(days=k) for k in range((period.end - period.first).days)]
    return {
        "unit": {"code": unit.code, "name": unit.name, "level": unit.level},
        "breadcrumb": breadcrumb(conn, unit.id),
        "period": {**period.as_dict(), "last": period.last.isoformat()},
        "previous_period": previous_period(period).as_dict(),
        "filters": {"group": filters.group, "source": filters.source},
        "kpi": {**card_numbers(mine), **open_now.get(unit.id, {"open": 0, "overdue": 0})},
        "previous": counts_of(before).as_dict(),
        "placed_here": placed,
        "children": [
            {"code": k.code, "name": k.name, "level": k.level,
             **counts_of(now_totals.get(k.id)).as_dict(), **open_now.get(k.id, {"open": 0, "overdue": 0})}
            for k in kids
        ],
        "trend": [{"day": d.isoformat(), "volume": trend.get(d, {}).get("volume", 0),
                   "closed": trend.get(d, {}).get("closed", 0)} for d in days],
        "by_group": sorted(({"code": groups[r["grp"]]["code"], "name": groups[r["grp"]]["name"],
                             "volume": r["volume"]} for r in rows if r["g"] == 5 and r["grp"] in groups),
                           key=lambda x: (-x["volume"], x["code"])),
        "by_source": sorted(({"source": r["source"], "volume": r["volume"]} for r in rows if r["g"] == 6),
                            key=lambda x: (-x["volume"], x["source"])),
        "funnel": funnel(mine, stages),
        "levels": {lv: mine.get(f"at_{lv}", 0) for lv in HANDLING_LEVELS},
    }


def funnel(m: dict, stages: dict[str, list[int]]) -> list[dict]:
    """Events that reached each status (at it now or past it) and the median time spent in it."""
    at = [m.get(f"status_{s}", 0) for s in STATUSES]
    reached = [sum(at[i:]) for i in range(len(STATUSES))]
    return [{"stage": s, "reached": reached[i], "now": at[i],
             "median_minutes": rollup.median_minutes(stages.get(s)) if s in STAGES else None}
            for i, s in enumerate(STATUSES)]


# -- the grid's own events ---------------------------------------------------------------------

def map_point(e: sa.Table) -> list[sa.ColumnElement]:
    """lon, lat to draw the event at, NULL when its location is a geocoding fallback (it is listed,
    not drawn: the point says where the geocoder gave up), and that flag as `approximate`."""
    def drawn(coord):
        return sa.case((sa.not_(e.c.location_approximate), coord(e.c.location)))

    return [drawn(sa.func.ST_X).label("lon"), drawn(sa.func.ST_Y).label("lat"),
            e.c.location_approximate.label("approximate")]


def grid_events(conn: sa.Connection, code: str, period: Period, filters: Filters = Filters()) -> list[dict]:
    """The events of one grid (or any small unit) in the period, newest first, for the table,
    with their reporters' contacts masked."""
    unit = unit_by_code(conn, code)
    gid = group_id(conn, filters.group) if filters.group else None
    cat, grp = categories.alias("cat"), categories.alias("grp")
    last_unit = (sa.select(units.c.name).select_from(event_transitions.join(units, units.c.id == event_transitions.c.unit_id))
                 .where(event_transitions.c.event_id == events.c.id,
                        event_transitions.c.event_reported_at == events.c.reported_at,  # one partition
                        *_reported_in(event_transitions.c.event_reported_at, period))
                 .order_by(event_transitions.c.at.desc(), event_transitions.c.id.desc()).limit(1)
                 .scalar_subquery())
    q = (sa.select(events.c.id, events.c.source, events.c.reported_at, events.c.status, events.c.deadline_at,
                   events.c.closed_at, events.c.rating, events.c.supervised, events.c.handling_level,
                   cat.c.name.label("category"), grp.c.name.label("category_group"),
                   sa.func.coalesce(departments.c.name, last_unit).label("handler"),
                   *map_point(events))
         .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id)
                      .join(cat, cat.c.id == events.c.category_id)
                      .outerjoin(grp, grp.c.id == cat.c.parent_id)
                      .outerjoin(departments, departments.c.id == events.c.department_id))
         .where(unit_closure.c.ancestor_id == unit.id, *_in_period(events, period),
                *_event_filters(events, filters, gid))
         .order_by(events.c.reported_at.desc()).limit(MAX_GRID_EVENTS))
    now = datetime.now(period.tz)
    out = []
    for r in conn.execute(q):
        d = r._asdict()
        d["overdue"] = d["closed_at"] is None and d["deadline_at"] is not None and d["deadline_at"] < now
        out.append(d)
    masked = contacts.masked(conn, [d["id"] for d in out])  # personal data: never in clear in a list
    for d in out:
        d["reporter"], d["phone"] = masked.get(d["id"], (None, None))
    return out


def event_history(conn: sa.Connection, event_id: int) -> list[dict]:
    t = event_transitions
    q = (sa.select(t.c.from_status, t.c.to_status, t.c.at, t.c.note, units.c.name.label("unit"),
                   departments.c.name.label("department"))
         .select_from(t.outerjoin(units, units.c.id == t.c.unit_id).outerjoin(departments, departments.c.id == t.c.department_id))
         .where(t.c.event_id == event_id).order_by(t.c.at, t.c.id))
    return [r._asdict() for r in conn.execute(q)]

