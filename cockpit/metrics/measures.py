"""The per-event flags the drill-down adds up, beside the KPI counts of cockpit.metrics.kpi.

Each measure is "count the events for which <condition> holds". Three places add them up
the same way, all built from this one table: a GROUP BY over raw events (count FILTER), the
rollup tables (sum of stored counts) and the rollup triggers (sum of +1/-1 FILTER).
"""
from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from cockpit.metrics import kpi
from cockpit.store.schema import HANDLING_LEVELS, STATUSES

Condition = Callable[[sa.Table], sa.ColumnElement[bool] | None]

MEASURES: dict[str, Condition] = {
    **kpi.CONDITIONS,
    **{f"at_{level}": (lambda e, lv=level: e.c.handling_level == lv) for level in HANDLING_LEVELS},
    **{f"status_{status}": (lambda e, st=status: e.c.status == st) for status in STATUSES},
}


def counted(e: sa.Table, name: str) -> sa.ColumnElement[int]:
    """count(*) [FILTER (WHERE condition)] over an events-shaped table."""
    return kpi.count_where(MEASURES[name](e), name)


def signed(e: sa.Table, sign: sa.ColumnElement[int], name: str) -> sa.ColumnElement[int]:
    """sum(sign) [FILTER (WHERE condition)]: +1 for rows added, -1 for rows taken away."""
    condition = MEASURES[name](e)
    total = sa.func.sum(sign) if condition is None else sa.func.sum(sign).filter(condition)
    return sa.func.coalesce(total, 0).label(name)
