"""The warnings' looks without a browser: the badge counts new ones, the map layers follow the
warnings (a cluster outlines all its units, spots only for recurrences), the wall counts what it
cannot list, and the events list says when it shows only the latest."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from cockpit.hotspots.store import Warning
from cockpit.layouts import warnings as layout
from cockpit.ui.i18n import t

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Shanghai")


def warning(i: int, kind: str, unit: int, state: str = "new", **detail) -> Warning:
    return Warning(i, kind, unit, None, "24h", NOW - timedelta(hours=24), NOW, 9, 2.0, 4.5, 0.002, 0.01, detail,
                   f"k{i}", NOW - timedelta(minutes=i), NOW, state, unit_code=f"G{unit}", unit_name=f"网格{unit}",
                   category_name="暴露垃圾")


def test_the_badge_counts_the_new_ones_only():
    ws = [warning(1, "surge", 10), warning(2, "surge", 11, "acknowledged"), warning(3, "cluster", 12)]
    assert layout.badge(ws, "zh") == (t("warnings_new", "zh").format(n=2), "warnings-badge", "2")
    assert layout.badge(ws[1:2], "en") == ("", "warnings-badge none", "0")


def test_map_layers_follow_the_warnings():
    ws = [warning(1, "recurrence", 10, lon=113.9, lat=22.5, radius_m=30, event_ids=[1, 2, 3, 4]),
          warning(2, "cluster", 11, units=[11, 12, 10]), warning(3, "surge", 13, "acknowledged")]
    assert layout.warned_units(ws) == {  # 10 is the newer recurrence's, not the cluster's
        10: {"warning": 1, "kind": "recurrence", "state": "new"}, 11: {"warning": 2, "kind": "cluster", "state": "new"},
        12: {"warning": 2, "kind": "cluster", "state": "new"},
        13: {"warning": 3, "kind": "surge", "state": "acknowledged"}}
    spots = layout.spots(ws, "zh")["features"]
    assert [f["geometry"]["coordinates"] for f in spots] == [[113.9, 22.5]]
    assert spots[0]["properties"]["tooltip"] == ws[0].explain("zh")


def test_the_wall_lists_the_newest_and_counts_the_rest():
    ws = [warning(i, "surge", 10 + i) for i in range(1, 6)]
    rows = layout.wall_list(ws, TZ, "zh")
    assert [r.to_plotly_json()["props"].get("data-warning") for r in rows[:-1]] == ["1", "2", "3"]
    assert rows[-1].children == t("warnings_more", "zh").format(n=2)
    assert len(layout.wall_list(ws[:3], TZ, "zh")) == 3


def test_the_events_title_says_when_only_the_latest_are_shown():
    row = {"id": 1, "reported_at": NOW, "category": "c", "address": None}
    assert layout.events([row] * 3, TZ, "zh")[0].children == t("warning_events", "zh").format(n=3)
    full = layout.events([row] * layout.EVENTS_LIMIT, TZ, "en")[0].children
    assert full == t("warning_events_latest", "en").format(n=layout.EVENTS_LIMIT)


def test_the_mini_chart_is_observed_against_baseline_in_local_ticks():
    hourly = [(NOW + timedelta(hours=h), h % 3, 1.25) for h in range(24)]
    fig = layout.series_figure(hourly, TZ, "zh")
    assert [s["y"] for s in fig["data"]] == [[h % 3 for h in range(24)], [1.25] * 24]
    assert fig["data"][0]["x"][0] == "2026-11-28 14:00"  # 06:00 UTC on the city's clock
    assert fig["layout"]["xaxis"]["tickformat"] == "%H:%M"
    daily = [(NOW + timedelta(days=d), 1, 1.0) for d in range(14)]
    assert layout.series_figure(daily, TZ, "en")["layout"]["xaxis"]["tickformat"] == "%m-%d"
