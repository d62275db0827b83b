"""The per-event flags the drill-down adds up, beside the KPI counts of cockpit.metrics.kpi.

Each measure is "count the events for which <rule> holds". Four places add them up the same
way, all built from this one table: a GROUP BY over raw events (count FILTER), the rollup
tables (sum of stored counts), the rollup triggers (sum of +1/-1 FILTER) and the demo loader
(numpy, kpi.holds).
"""
from __future__ import annotations

import sqlalchemy as sa

from cockpit.metrics import kpi
from cockpit.metrics.kpi import Both, Equals, Known, Missing, Rule
from cockpit.store.schema import HANDLING_LEVELS, STATUSES

MEASURES: dict[str, Rule] = {
    **kpi.CONDITIONS,
    **{f"at_{level}": Equals("handling_level", level) for level in HANDLING_LEVELS},
    **{f"status_{status}": Equals("status", status) for status in STATUSES},
    # closed with no deadline at all: not on time (cockpit.metrics.kpi); the on-time card says how many
    "closed_no_deadline": Both(Known("closed_at"), Missing("deadline_at")),
}


def counted(e: sa.Table, name: str) -> sa.ColumnElement[int]:
    """count(*) [FILTER (WHERE condition)] over an events-shaped table."""
    return kpi.count_where(MEASURES[name].sql(e), name)


def signed(e: sa.Table, sign: sa.ColumnElement[int], name: str) -> sa.ColumnElement[int]:
    """sum(sign) [FILTER (WHERE condition)]: +1 for rows added, -1 for rows taken away."""
    condition = MEASURES[name].sql(e)
    total = sa.func.sum(sign) if condition is None else sa.func.sum(sign).filter(condition)
    return sa.func.coalesce(total, 0).label(name)
