"""The drill-down's pure helpers: URL state, map colour classes, change and duration texts."""
from __future__ import annotations

from cockpit.ui.colour_scale import NO_DATA, legend, scale
from cockpit.ui.formatting import duration
from cockpit.ui.url_state import ViewState, parse, serialise
from cockpit.layouts.readouts import count_change, rate_change


def test_url_state_round_trips_and_falls_back():
    s = ViewState(unit="440303-004", period="custom", first="2026-10-01", last="2026-10-31",
                  kpi="closure_rate", group="SR", source="iot", lang="en")
    assert serialise(s) == ("?unit=440303-004&period=custom&from=2026-10-01&to=2026-10-31"
                            "&kpi=closure_rate&group=SR&source=iot&lang=en")
    assert parse(serialise(s)) == s
    assert parse("") == ViewState()
    # unknown values fall back; from/to mean nothing without period=custom
    assert parse("?period=forever&kpi=mood&lang=fr&from=2026-01-01") == ViewState()
    assert serialise(ViewState()) == "?period=30d&kpi=volume"


def test_url_state_reads_channel_as_source_and_writes_source():
    """Links made when the filter was called `channel` still open with it applied."""
    old = parse("?unit=440303&channel=iot")
    assert old == ViewState(unit="440303", source="iot")
    assert serialise(old) == "?unit=440303&period=30d&kpi=volume&source=iot"
    assert parse("?source=grid_app&channel=iot").source == "grid_app"  # both: source wins


def test_colour_classes_separate_ties_and_mark_missing_values():
    sc = scale([1.0, 0.5, 1.0, 1.0, None], "satisfaction_rate")
    assert sc.colour(0.5) != sc.colour(1.0)  # units at 100% do not swallow the one at 50%
    assert sc.colour(None) == NO_DATA
    assert [text for _, text in legend(sc, "satisfaction_rate", 0.5, 1.0)] == ["≤ 50.0%", "> 50.0%"]
    counts = scale(list(range(10)), "volume")
    assert [text for _, text in legend(counts, "volume", 0, 9)] == ["0 – 1", "2 – 3", "4 – 5", "6 – 7", "≥ 8"]
    assert len({counts.colour(v) for v in range(10)}) == 5
    assert [text for _, text in legend(scale([0, 1, 2, 5], "overdue"), "overdue", 0, 5)] == ["0", "1", "2", "≥ 3"]
    assert scale([None, None], "volume").colour(3) == NO_DATA


def test_changes_and_durations_read_like_the_screen():
    assert rate_change(0.95, 0.929).text == "↑ 2.1 个百分点"
    assert rate_change(0.9, 0.95, "en").text == "↓ 5.0 pt"
    assert rate_change(None, 0.9).text == "—"
    assert count_change(112, 100).text == "↑ 12.0%"
    assert count_change(5, 0).text == "—"
    assert [duration(m) for m in (35, 59.6, 366, 3312, None)] == ["35分钟", "1.0小时", "6.1小时", "2.3天", "—"]
    assert duration(35, "en") == "35 min"
