"""What the live screens (the wall, the cockpit's ticker) ask of the store: small, fast questions.

Every function reads a few hundred index entries at most, so a screen can ask each time the
change feed (cockpit.metrics.changes) says something was written. Today's numbers use the same totals
as the drill-down (rollups for big units, raw rows for small ones) and the KPI formulas of
cockpit.metrics.kpi; "today" is the city's local day.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from cockpit.metrics.unit_view import (Filters, backlog, card_numbers, children_of, counts_of, group_id, map_point, period_of,
                                       placed_here, unit_totals)
from cockpit.metrics.kpi import Period
from cockpit.metrics.kpi import unit_by_code
from cockpit.store.schema import categories, events, unit_closure, units

TICKER_SIZE = 12
LIST_SIZE = 6  # rows that fit the wall's side panels
BUSY_WINDOW = timedelta(hours=1)
TICKER_WINDOWS = (timedelta(days=2), timedelta(days=40))  # then all time


def _fast(conn: sa.Connection) -> None:
    conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))


def place_names(conn: sa.Connection, unit_ids: set[int]) -> dict[int, dict]:
    """Where each unit is, for one-line labels: {"area": names of its ancestors one and two levels
    below the root (a district and a street in the demo), "unit": its own name}.

    By depth, not by level name: a city may have other levels, or fewer.
    """
    if not unit_ids:
        return {}
    rows = conn.execute(sa.text("""
        SELECT unit_id, below_root, depth, name FROM (
            SELECT c.descendant_id AS unit_id, c.depth, u.name,
                   max(c.depth) OVER (PARTITION BY c.descendant_id) - c.depth AS below_root
            FROM unit_closure c JOIN units u ON u.id = c.ancestor_id
            WHERE c.descendant_id = ANY(:ids)) p
        WHERE depth = 0 OR below_root IN (1, 2)
        ORDER BY unit_id, below_root"""), {"ids": list(unit_ids)})
    out: dict[int, dict] = {}
    for r in rows:
        place = out.setdefault(r.unit_id, {"area": [], "unit": None})
        if r.depth == 0:
            place["unit"] = r.name
        else:
            place["area"].append(r.name)
    return out


def place_label(place: dict | None, with_unit: bool = True) -> str:
    """The area's names, then the unit's own (unless the unit is named beside the label): 福田区 · 沙头街道 · 网格."""
    place = place or {}
    names = [*place.get("area", ()), *([place["unit"]] if with_unit and place.get("unit") else [])]
    return " · ".join(names)


def _with_places(conn: sa.Connection, rows: list[dict], key: str = "grid_id") -> list[dict]:
    places = place_names(conn, {r[key] for r in rows if r[key]})
    for r in rows:
        r["place"] = places.get(r[key], {})
    return rows


def latest_events(conn: sa.Connection, unit_id: int | None = None, limit: int = TICKER_SIZE,
                  now: datetime | None = None) -> list[dict]:
    """The most recently reported events (report time, then id), optionally inside one unit.

    By report time, not by id: the ids of a bulk import say nothing of when things happened.
    Asked of the last days first, then of a wider window, then of all time: a bound the planner
    sees prunes the month partitions (planning a scan of every month costs more than reading it),
    and a grid's few events are found in its own (grid, time) index instead of walking the whole
    city's newest events backwards. Events dated after `now` are in every window.
    """
    _fast(conn)
    cat = categories.alias("cat")
    q = (sa.select(events.c.id, events.c.reported_at, events.c.source, events.c.status, events.c.grid_id,
                   cat.c.name.label("category"),
                   *map_point(events))
         .select_from(events.join(cat, cat.c.id == events.c.category_id))
         .order_by(events.c.reported_at.desc(), events.c.id.desc()).limit(limit))
    if unit_id is not None:
        q = q.where(events.c.grid_id.in_(sa.select(unit_closure.c.descendant_id)
                                         .where(unit_closure.c.ancestor_id == unit_id)))
    now = now or datetime.now(timezone.utc)
    for window in (*TICKER_WINDOWS, None):
        asked = q if window is None else q.where(events.c.reported_at >= now - window)
        rows = [r._asdict() for r in conn.execute(asked)]
        if len(rows) >= limit:  # the window holds the newest `limit`: nothing older can come before them
            break
    return _with_places(conn, rows)


def today_numbers(conn: sa.Connection, unit_ids: list[int], tz, now: datetime | None = None) -> dict[int, dict]:
    """一量三率 of today (local day) plus the open backlog and overdue now, per unit."""
    _fast(conn)
    today = period_of("today", tz, today=(now or datetime.now(tz)).astimezone(tz).date())
    totals = unit_totals(conn, unit_ids, today)
    open_now = backlog(conn, unit_ids, Filters(), None)
    return {i: {**counts_of(totals.get(i)).as_dict(), **open_now.get(i, {"open": 0, "overdue": 0})}
            for i in unit_ids}


def unit_numbers(conn: sa.Connection, code: str | None, period: Period, filters: Filters = Filters()) -> dict:
    """The drill-down's six card numbers for one unit (what a new or closed event changes), and
    its events placed only at its own level (the note beside the cards; 0 for a leaf, as in unit_view)."""
    _fast(conn)
    unit = unit_by_code(conn, code)
    filters = filters.validated(conn)
    gid = group_id(conn, filters.group) if filters.group else None
    totals = unit_totals(conn, [unit.id], period, filters, gid).get(unit.id)
    open_now = backlog(conn, [unit.id], filters, gid).get(unit.id, {"open": 0, "overdue": 0})
    placed = placed_here(conn, unit.id, period, filters, gid) if children_of(conn, unit.id) else 0
    return {"id": unit.id, **card_numbers(totals), **open_now, "placed_here": placed}


def overdue_events(conn: sa.Connection, unit_id: int, limit: int = LIST_SIZE) -> list[dict]:
    """Open events past their deadline inside the unit, longest overdue first."""
    _fast(conn)
    cat = categories.alias("cat")
    q = (sa.select(events.c.id, events.c.deadline_at, events.c.reported_at, events.c.source, events.c.grid_id,
                   cat.c.name.label("category"))
         .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id)
                      .join(cat, cat.c.id == events.c.category_id))
         .where(unit_closure.c.ancestor_id == unit_id, events.c.closed_at.is_(None),
                events.c.deadline_at < sa.func.now())
         .order_by(events.c.deadline_at, events.c.id).limit(limit))
    return _with_places(conn, [r._asdict() for r in conn.execute(q)])


def busiest_grids(conn: sa.Connection, unit_id: int, now: datetime | None = None,
                  window: timedelta = BUSY_WINDOW, limit: int = LIST_SIZE) -> list[dict]:
    """Grids of the unit with the most events reported in the last `window`."""
    _fast(conn)
    now = now or datetime.now(timezone.utc)
    q = (sa.select(units.c.id, units.c.code, units.c.name, sa.func.count().label("n"))
         .select_from(events.join(unit_closure, unit_closure.c.descendant_id == events.c.grid_id)
                      .join(units, units.c.id == events.c.grid_id))
         .where(unit_closure.c.ancestor_id == unit_id, events.c.reported_at >= now - window,
                events.c.reported_at < now)
         .group_by(units.c.id).order_by(sa.func.count().desc(), units.c.code).limit(limit))
    return _with_places(conn, [r._asdict() for r in conn.execute(q)], key="id")


def wall_city(conn: sa.Connection, tz, now: datetime | None = None) -> dict:
    """What every wall of a scope shows whatever its focus: the top unit and its children today,
    and the newest events."""
    city = unit_by_code(conn, None)
    districts = children_of(conn, city.id)
    numbers = today_numbers(conn, [city.id, *(d.id for d in districts)], tz, now)
    return {
        "city": {"code": city.code, "name": city.name, **numbers[city.id]},
        "districts": [{"code": d.code, "name": d.name, **numbers[d.id]} for d in districts],
        "latest": latest_events(conn),
    }


def wall_focus(conn: sa.Connection, focus: str | None, tz, now: datetime | None = None,
               city: dict | None = None) -> dict:
    """The focused unit's numbers and lists (the top unit's when no focus). Numbers `city`
    (wall_city's answer) already holds, the top unit's or a child's, are taken from it."""
    unit = unit_by_code(conn, focus) if focus else unit_by_code(conn, None)
    known = next((u for u in ([city["city"], *city["districts"]] if city else []) if u["code"] == unit.code), None)
    numbers = {k: v for k, v in known.items() if k not in ("code", "name")} if known else \
        today_numbers(conn, [unit.id], tz, now)[unit.id]
    return {
        "focus": {"code": unit.code, "name": unit.name, "level": unit.level, **numbers},
        "overdue": overdue_events(conn, unit.id),
        "busiest": busiest_grids(conn, unit.id, now),
    }


def wall_view(conn: sa.Connection, focus: str | None, tz, now: datetime | None = None) -> dict:
    """Everything the wall shows: the city and its districts today, and the focused unit's lists."""
    city = wall_city(conn, tz, now)
    return {**city, **wall_focus(conn, focus, tz, now, city)}
