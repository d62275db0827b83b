"""The KPI module against an independent pandas computation on the same rows."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.errors import CockpitError
from cockpit.metrics.kpi import Period, rate, unit_kpi

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def frames(demo_engine):
    with demo_engine.connect() as conn:
        units = pd.read_sql("SELECT id, code, level, parent_id FROM units", conn)
        events = pd.read_sql("SELECT grid_id, reported_at, closed_at, deadline_at, rating FROM events", conn)
    return units, events


def pandas_kpi(units: pd.DataFrame, events: pd.DataFrame, code: str, period: Period) -> dict:
    """Independent: walks parent_id in pandas (not the closure table), filters, counts."""
    root = int(units.loc[units.code == code, "id"].iloc[0])
    subtree, frontier = {root}, {root}
    while frontier:
        frontier = set(units.loc[units.parent_id.isin(frontier), "id"].astype(int)) - subtree
        subtree |= frontier
    start = pd.Timestamp(datetime(period.first.year, period.first.month, period.first.day), tz=TZ)
    end = pd.Timestamp(datetime(period.end.year, period.end.month, period.end.day), tz=TZ)
    e = events[events.grid_id.isin(subtree) & (events.reported_at >= start) & (events.reported_at < end)]
    closed = e[e.closed_at.notna()]
    on_time = closed[closed.closed_at <= closed.deadline_at]
    rated = e[e.rating.notna()]
    satisfied = rated[rated.rating >= 4]

    def r(a, b):
        return None if len(b) == 0 else len(a) / len(b)

    return {"volume": len(e), "closed": len(closed), "closed_on_time": len(on_time), "rated": len(rated),
            "satisfied": len(satisfied), "closure_rate": r(closed, e), "on_time_rate": r(on_time, closed),
            "satisfaction_rate": r(satisfied, rated)}


def sample_codes(units: pd.DataFrame) -> list[str]:
    return [units.loc[units.level == lv, "code"].sort_values().iloc[len(units[units.level == lv]) // 2]
            for lv in ("city", "district", "street", "community", "grid")]


@pytest.mark.parametrize("days_back, length", [(0, 30), (0, 7), (40, 1), (60, 45)])
def test_kpi_equals_pandas(demo_engine, frames, days_back, length):
    units, events = frames
    today = datetime.now(TZ).date()
    period = Period(today - timedelta(days=days_back + length - 1), today - timedelta(days=days_back - 1), TZ)
    with demo_engine.connect() as conn:
        for code in sample_codes(units):
            ours = unit_kpi(conn, code, period)
            expected = pandas_kpi(units, events, code, period)
            got = {k: ours[k] for k in expected}
            assert got == pytest.approx(expected), code
            assert ours["volume"] > 0 or code.count("-") == 3


def test_empty_period_gives_null_rates(demo_engine, frames):
    units, _ = frames
    period = Period(date(2001, 1, 1), date(2001, 2, 1), TZ)
    with demo_engine.connect() as conn:
        k = unit_kpi(conn, sample_codes(units)[0], period)
    assert k["volume"] == 0
    assert k["closure_rate"] is None and k["on_time_rate"] is None and k["satisfaction_rate"] is None


def test_rate_of_nothing_is_none_not_zero_or_nan():
    assert rate(0, 0) is None
    assert rate(0, 5) == 0.0
    assert rate(3, 4) == 0.75
    assert not any(isinstance(x, float) and math.isnan(x) for x in (rate(0, 0), rate(1, 1)))


def test_days_are_local_days(empty_url):
    """An event at 00:30 Beijing time on Oct 1 is Oct 1's, though it is Sep 30 in UTC."""
    eng = store.engine(empty_url)
    with eng.begin() as conn:
        conn.execute(sa.text("""
            INSERT INTO units (code, name, level, geom) VALUES
              ('C', 'c', 'city', ST_Multi(ST_MakeEnvelope(114, 22, 115, 23, 4326)));
            INSERT INTO units (code, name, level, parent_id, geom) SELECT
              'G', 'g', 'grid', id, geom FROM units WHERE code = 'C';
            INSERT INTO categories (code, name, deadline_hours) VALUES ('X', 'x', 24);
            INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at)
            SELECT 'iot', 'e1', id, '2026-10-01 00:30+08', ST_SetSRID(ST_MakePoint(114.5, 22.5), 4326),
                   '2026-10-02 00:30+08' FROM categories""").execution_options())
    with eng.connect() as conn:
        oct1 = unit_kpi(conn, "C", Period(date(2026, 10, 1), date(2026, 10, 2), TZ))
        sep30 = unit_kpi(conn, "C", Period(date(2026, 9, 30), date(2026, 10, 1), TZ))
        utc = unit_kpi(conn, "C", Period(date(2026, 9, 30), date(2026, 10, 1), ZoneInfo("UTC")))
    assert (oct1["volume"], sep30["volume"], utc["volume"]) == (1, 0, 1)
    assert oct1["closure_rate"] == 0.0 and oct1["on_time_rate"] is None


def test_period_parsing():
    """--to is the last day included, as in the URL; the JSON says the same days it was given."""
    p = Period.parse("2026-10-01", "2026-10-31", TZ)
    assert (p.first, p.end) == (date(2026, 10, 1), date(2026, 11, 1))
    assert p.as_dict() == {"from": "2026-10-01", "to": "2026-10-31", "timezone": "Asia/Shanghai"}
    assert p.start_utc.isoformat() == "2026-10-01T00:00:00+08:00"
    default = Period.parse(None, None, TZ)
    assert (default.end - default.first).days == 30 and default.end == datetime.now(TZ).date() + timedelta(days=1)
    only_to = Period.parse(None, "2026-10-31", TZ)
    assert only_to.first == date(2026, 10, 2) and only_to.end == date(2026, 11, 1)
    one_day = Period.parse("2026-10-31", "2026-10-31", TZ)
    assert (one_day.first, one_day.end) == (date(2026, 10, 31), date(2026, 11, 1))
    with pytest.raises(CockpitError, match="not a date"):
        Period.parse("2026-13-01", None, TZ)
    with pytest.raises(CockpitError, match="before"):
        Period.parse("2026-11-02", "2026-11-01", TZ)
