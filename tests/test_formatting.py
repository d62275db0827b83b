"""Texts both screens share: durations, and the figure registry the cards and colours follow."""
from __future__ import annotations

from cockpit.metrics.kpi import Counts
from cockpit.metrics.registry import CARD_KEYS, FIGURE, FRACTIONS, MAP_CHOICES, RATES
from cockpit.metrics.unit_view import KPI_CHOICES
from cockpit.ui.colour_scale import GOOD, HEAT, IS_RATE, PALETTES
from cockpit.ui.formatting import duration
from cockpit.ui.i18n import LABELS


def test_durations_cut_over_at_one_hour_and_two_days():
    assert [duration(m) for m in (0, 35, 59.4, 59.6, 366)] == ["0分钟", "35分钟", "59分钟", "1.0小时", "6.1小时"]
    # up to two days in hours (a 24 h or 48 h deadline reads as such), then days
    assert [duration(m) for m in (24 * 60, 47.9 * 60, 48 * 60, 3312)] == ["24.0小时", "47.9小时", "2.0天", "2.3天"]
    assert duration(None) == "—"
    assert [duration(m, "en") for m in (35, 90, 3 * 1440)] == ["35 min", "1.5 h", "3.0 d"]


def test_every_list_of_figures_follows_the_registry():
    assert CARD_KEYS == ("volume", "closure_rate", "on_time_rate", "satisfaction_rate", "open", "overdue")
    assert RATES == ("closure_rate", "on_time_rate", "satisfaction_rate") and set(RATES) == IS_RATE
    assert KPI_CHOICES == MAP_CHOICES == ("volume", *RATES, "overdue")
    assert {k: PALETTES[k] for k in MAP_CHOICES} == {"volume": HEAT, "overdue": HEAT, **{r: GOOD for r in RATES}}
    assert all(FIGURE[k].label in LABELS for k in CARD_KEYS)
    c = Counts(volume=10, closed=8, closed_on_time=6, rated=0, satisfied=0).as_dict()
    assert {r: c[r] for r in RATES} == {"closure_rate": 0.8, "on_time_rate": 0.75, "satisfaction_rate": None}
    assert FRACTIONS["on_time_rate"] == ("closed_on_time", "closed")


def test_shorten_counts_a_cjk_character_as_two_columns():
    from cockpit.ui.formatting import shorten

    assert shorten("龙湖区", 16) == "龙湖区"
    assert shorten("松岗国家级高新技术产业开发区", 16) == "松岗国家级高新…"  # 7 characters + the ellipsis
    assert shorten("Songgang National Hi-tech Zone", 16) == "Songgang Nation…"
    assert shorten("城市道路abc", 8) == "城市道…"  # never past the width, even if a column is left over
    assert shorten("", 4) == ""


def test_top_and_rest_keeps_a_lone_rest_as_itself():
    from cockpit.ui.formatting import top_and_rest

    rows = [{"code": c, "volume": v} for c, v in (("A", 5), ("B", 9), ("C", 5), ("D", 1))]
    assert top_and_rest(rows, 3) == ([rows[1], rows[0], rows[2], rows[3]], [])
    top, rest = top_and_rest(rows, 2)
    assert [r["code"] for r in top] == ["B", "A"] and [r["code"] for r in rest] == ["C", "D"]


def test_an_event_time_carries_its_date_unless_it_is_from_today_in_the_citys_calendar():
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from cockpit.ui.formatting import event_time

    tz = ZoneInfo("Asia/Shanghai")
    today = date(2026, 11, 28)
    assert event_time(datetime.fromisoformat("2026-11-28T06:05:09+00:00"), tz, today) == "14:05:09"
    assert event_time(datetime.fromisoformat("2026-11-27T06:05:09+00:00"), tz, today) == "11-27 14:05"
    assert event_time(datetime.fromisoformat("2026-11-27T16:00:00+00:00"), tz, today) == "00:00:00"  # midnight there
    assert event_time(datetime.fromisoformat("2026-11-27T15:59:59+00:00"), tz, today) == "11-27 23:59"
    assert event_time(datetime.fromisoformat("2025-11-28T06:05:09+00:00"), tz, today) == "2025-11-28 14:05"  # a year back
