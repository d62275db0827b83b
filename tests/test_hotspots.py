"""Hotspot warnings: surges, recurrences and clusters found (and not found) on cities whose
events are known, the warnings' life in the store, and `cockpit hotspots`."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.config import HotspotSettings
from cockpit.errors import CockpitError
from cockpit.hotspots import detect
from cockpit.hotspots import store as hot
from conftest import box_city, run_cli

AT = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)
SIDE = 0.02  # degrees: a grid about 2 km across
HS = HotspotSettings()
PER_DAY = 3.0  # ordinary events per grid and day


def units(n: int = 5) -> list[tuple]:
    """A street of two communities holding n x n grids."""
    rows = [("C", "城", "city", None, (113.9, 22.5, 114.0, 22.6)),
            ("C-1", "区", "district", "C", (113.9, 22.5, 114.0, 22.6)),
            ("C-1-1", "街道", "street", "C-1", (113.9, 22.5, 114.0, 22.6))]
    for c in range(2):
        rows.append((f"C-1-1-{c}", f"社区{c}", "community", "C-1-1", (113.9 + 0.05 * c, 22.5, 113.95 + 0.05 * c, 22.6)))
    for i in range(n):
        for j in range(n):
            x0, y0, x1, y1 = (round(v, 6) for v in (113.9 + i * SIDE, 22.5 + j * SIDE,
                                                    113.9 + (i + 1) * SIDE, 22.5 + (j + 1) * SIDE))
            rows.append((f"G{i}{j}", f"网格{i}{j}", "grid", f"C-1-1-{0 if i < n // 2 else 1}",
                         (x0, y0, x1, y1)))
    return rows


def add_events(url: str, grid: list[str], at: list[datetime], lon: list[float], lat: list[float],
               category: list[str], approximate: list[bool] | None = None) -> list[int]:
    """Store events (category codes C0..C4); returns their ids in the order given."""
    n = len(grid)
    with store.engine(url).begin() as conn:
        first = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM events")).scalar()
        ids = conn.execute(sa.text("""
            INSERT INTO events (source, external_id, category_id, reported_at, location, grid_id, location_approximate)
            SELECT 'grid_app', 'T' || (:first + o), c.id, t.at, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), u.id, t.approx
            FROM unnest(CAST(:grid AS text[]), CAST(:at AS timestamptz[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]),
                        CAST(:cat AS text[]), CAST(:approx AS boolean[])) WITH ORDINALITY
                 AS t(grid, at, lon, lat, cat, approx, o)
            JOIN units u ON u.code = t.grid JOIN categories c ON c.code = t.cat
            ORDER BY o RETURNING id"""),
            {"first": first, "grid": grid, "at": at, "lon": lon, "lat": lat, "cat": category,
             "approx": approximate or [False] * n}).scalars().all()
    assert len(ids) == n
    return list(ids)


def ordinary_city(url: str, seed: int = 1, weeks: int = 6, n: int = 5) -> None:
    """n x n grids, each with Poisson(PER_DAY) events a day at random times and places, 5 categories."""
    box_city(url, units(n))
    with store.engine(url).begin() as conn:
        for k in range(5):
            conn.execute(sa.text("INSERT INTO categories (code, name, deadline_hours) VALUES (:c, :n, 24)"),
                         {"c": f"C{k}", "n": f"类别{k}"})
    rng = np.random.default_rng(seed)
    grid, at, lon, lat, cat = [], [], [], [], []
    start = AT - timedelta(weeks=weeks)
    for i in range(n):
        for j in range(n):
            k = rng.poisson(PER_DAY * weeks * 7)
            secs = np.sort(rng.uniform(0, weeks * 7 * 86400, k))
            grid += [f"G{i}{j}"] * k
            at += [start + timedelta(seconds=float(s)) for s in secs]
            lon += list(113.9 + i * SIDE + rng.uniform(0.001, SIDE - 0.001, k))
            lat += list(22.5 + j * SIDE + rng.uniform(0.001, SIDE - 0.001, k))
            cat += [f"C{c}" for c in rng.integers(0, 5, k)]
    add_events(url, grid, at, lon, lat, cat)


@pytest.fixture
def city(databases) -> str:
    url = databases.create("hot")
    ordinary_city(url)
    return url


def plant_surge(url: str, grid: str = "G33", n: int = 25, hours: float = 20) -> None:
    rng = np.random.default_rng(5)
    i, j = int(grid[1]), int(grid[2])
    add_events(url, [grid] * n, [AT - timedelta(hours=float(h)) for h in rng.uniform(0.1, hours, n)],
               list(113.9 + i * SIDE + rng.uniform(0.001, SIDE - 0.001, n)),
               list(22.5 + j * SIDE + rng.uniform(0.001, SIDE - 0.001, n)), ["C2"] * n)


SPOT = (113.9 + 1.5 * SIDE, 22.5 + 0.5 * SIDE)  # the middle of G10


def plant_spot(url: str, n: int = 5, approximate: bool = False) -> list[int]:
    """n events of C4 at (almost exactly) one spot over the last 10 days; returns their ids."""
    rng = np.random.default_rng(9)
    jitter = rng.uniform(-0.0001, 0.0001, (n, 2))  # about 10 m
    return add_events(url, ["G10"] * n, [AT - timedelta(days=10 * (k + 0.5) / n) for k in range(n)],
                      list(SPOT[0] + jitter[:, 0]), list(SPOT[1] + jitter[:, 1]), ["C4"] * n, [approximate] * n)


def found(url: str, at: datetime = AT, kind: str | None = None) -> list[hot.Warning]:
    with store.engine(url).connect() as conn:
        return [w for w in hot.detect_all(conn, at, HS) if kind is None or w.kind == kind]


def test_planted_surge_is_found_and_explains_itself(city):
    plant_surge(city)
    surges = found(city, kind="surge")
    grids = {w.unit_code for w in surges if w.unit_level == "grid"}
    assert grids == {"G33"}
    w = next(w for w in surges if w.unit_code == "G33" and w.window == "24h")
    assert w.observed >= 25 and w.expected < 8 and w.q_value <= HS.q
    assert w.detail["top_category_name"] == "类别2"
    text = w.explain("en")
    assert text.startswith(f"observed {w.observed} vs expected {w.expected:.1f} (p = ")
    assert "in the last 24 h, mostly 类别2" in text
    assert "主要为类别2" in w.explain("zh")


def test_ordinary_weeks_are_not_flagged(city):
    # Nothing planted: with Benjamini-Hochberg at q = 0.01 a run has a false warning with
    # probability about 0.01 (README); twenty runs over the last ten days may show at most one.
    runs = [AT - timedelta(hours=12 * k) for k in range(20)]
    false = [w for at in runs for w in found(city, at)]
    assert len(false) <= 1, [(w.kind, w.unit_code, w.explain("en")) for w in false]


def test_recurrence_lists_exactly_the_planted_events(city):
    planted = plant_spot(city, n=5)
    rec = found(city, kind="recurrence")
    assert len(rec) == 1
    w = rec[0]
    assert w.detail["event_ids"] == sorted(planted)
    assert (w.unit_code, w.category_name, w.observed) == ("G10", "类别4", 5)
    assert abs(w.detail["lon"] - SPOT[0]) < 0.0002 and abs(w.detail["lat"] - SPOT[1]) < 0.0002


def test_fewer_than_the_repeats_is_no_recurrence(city):
    plant_spot(city, n=HS.repeats - 1)
    assert found(city, kind="recurrence") == []


def test_approximate_locations_are_left_out_of_spatial_warnings(city):
    plant_spot(city, n=6, approximate=True)
    assert found(city, kind="recurrence") == []
    rng = np.random.default_rng(3)
    n = 60  # a pile of approximate events in one grid: counted as a surge, not as a cluster
    add_events(city, ["G22"] * n, [AT - timedelta(hours=float(h)) for h in rng.uniform(1, 20, n)],
               [113.9 + 2.5 * SIDE] * n, [22.5 + 2.5 * SIDE] * n, ["C1"] * n, [True] * n)
    assert "G22" in {w.unit_code for w in found(city, kind="surge")}
    assert found(city, kind="cluster") == []


def test_a_real_cluster_is_found(databases):
    # Gi* needs room: in a 5 x 5 city one 3 x 3 neighbourhood is a third of it.
    city = databases.create("hot_wide")
    ordinary_city(city, weeks=2, n=10)
    rng = np.random.default_rng(4)
    grid, at, lon, lat = [], [], [], []
    for g in ("G22", "G23", "G32", "G33"):
        i, j = int(g[1]), int(g[2])
        grid += [g] * 40
        at += [AT - timedelta(hours=float(h)) for h in rng.uniform(1, 140, 40)]
        lon += list(113.9 + i * SIDE + rng.uniform(0.001, SIDE - 0.001, 40))
        lat += list(22.5 + j * SIDE + rng.uniform(0.001, SIDE - 0.001, 40))
    add_events(city, grid, at, lon, lat, ["C0"] * len(grid))
    clusters = found(city, kind="cluster")
    assert len(clusters) == 1
    members = set(clusters[0].detail["units"])
    with store.engine(city).connect() as conn:
        codes = set(conn.execute(sa.text("SELECT code FROM units WHERE id = ANY(:m)"), {"m": list(members)}).scalars())
    assert len(codes & {"G22", "G23", "G32", "G33"}) >= 3
    assert clusters[0].unit_code in {"G22", "G23", "G32", "G33"} and clusters[0].statistic > 3


def test_tiny_counts_never_warn():
    # A unit that never had an event gets 1..min_count-1: whatever the q threshold, no warning.
    obs = np.arange(1, HS.min_count)
    res = detect.surge(obs, np.zeros((len(obs), 4)), q=1.0, min_count=HS.min_count, min_excess=HS.min_excess)
    assert not res.flagged.any()
    # Enough events but hardly above expected: no warning either.
    res = detect.surge(np.array([40.0]), np.full((1, 4), 37.0), q=1.0, min_count=HS.min_count,
                       min_excess=HS.min_excess)
    assert not res.flagged.any()
    # The same numbers, well above: a warning (so the two above could have failed).
    res = detect.surge(np.array([12.0]), np.zeros((1, 4)), q=0.01, min_count=HS.min_count,
                       min_excess=HS.min_excess)
    assert res.flagged.all()


def test_tiny_counts_in_a_quiet_city_never_warn(databases):
    url = databases.create("hot_quiet")
    box_city(url, units())
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name, deadline_hours) VALUES ('C0', '类别0', 24)"))
    n = HS.min_count - 1
    add_events(url, ["G00"] * n, [AT - timedelta(hours=k + 1) for k in range(n)], [113.905] * n,
               [22.505 + 0.00001 * k for k in range(n)], ["C0"] * n)
    assert [w.kind for w in found(url)] == ["recurrence"]  # 4 at one spot is a recurrence, not a surge


def test_benjamini_hochberg():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert np.allclose(detect.bh(p), [0.02, 0.04, 0.04, 0.02])


def _run(url: str, at: datetime) -> hot.RunResult:
    with store.engine(url).begin() as conn:
        return hot.run(conn, None, at, HS)


def _rows(url: str) -> list[dict]:
    with store.engine(url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM warnings ORDER BY id"))]


def test_running_again_keeps_one_warning_and_moves_last_seen(city):
    plant_surge(city)
    plant_spot(city)
    first = _run(city, AT)
    assert first.new >= 2 and first.found["recurrence"] == 1
    again = _run(city, AT + timedelta(minutes=10))
    assert again.new == 0 and again.kept == first.new and again.expired == 0
    rows = _rows(city)
    assert len(rows) == first.new
    assert all(r["first_seen"] == AT and r["last_seen"] == AT + timedelta(minutes=10) for r in rows)
    assert len({r["key"] for r in rows}) == len(rows)


def test_warnings_no_longer_found_expire(city):
    plant_surge(city)
    _run(city, AT)
    later = _run(city, AT + timedelta(days=3))  # the 24 h surge is over
    rows = {(r["kind"], r["window"]): r for r in _rows(city) if r["kind"] == "surge"}
    assert rows[("surge", "24h")]["state"] == "expired"
    assert later.expired >= 1
    with store.engine(city).connect() as conn:
        assert all(w.window != "24h" for w in hot.in_force(conn, kind="surge"))
        past = hot.in_force(conn, at=AT, kind="surge")  # as it stood then
    assert any(w.window == "24h" and w.unit_code == "G33" for w in past)


def test_acknowledge(city):
    plant_spot(city)
    _run(city, AT)
    with store.engine(city).begin() as conn:
        w = hot.in_force(conn, kind="recurrence")[0]
        done = hot.acknowledge(conn, w.id, "值班员张三", "已通知社区")
        assert (done.state, done.acknowledged_by, done.note) == ("acknowledged", "值班员张三", "已通知社区")
        assert done.acknowledged_at is not None
        with pytest.raises(CockpitError, match="name of who"):
            hot.acknowledge(conn, w.id, "  ")
        with pytest.raises(CockpitError, match="no warning 999999"):
            hot.acknowledge(conn, 999999, "x")
        # still in force after the next run, still acknowledged
    _run(city, AT + timedelta(minutes=10))
    with store.engine(city).begin() as conn:
        again = hot.get(conn, w.id)
        assert (again.state, again.last_seen) == ("acknowledged", AT + timedelta(minutes=10))
        assert [x.id for x in hot.for_subtree(conn, hot.unit_id_of(conn, "C-1"), 10) if x.kind == "recurrence"] == [w.id]
        assert len(hot.events_of(conn, w.id)) == 5
        series = hot.series(conn, w.id)
        # the unit's counts of the category against the same days of earlier weeks
        assert len(series) == 14 and sum(o for _, o, _ in series) >= 5 and all(e >= 0 for _, _, e in series)
        hot.close(conn, w.id, "值班员张三")
        with pytest.raises(CockpitError, match="no longer in force"):
            hot.acknowledge(conn, w.id, "x")


def test_cli_json_and_bad_input(city):
    plant_surge(city)
    plant_spot(city)
    at = AT.isoformat()
    res = run_cli("hotspots", "--at", at, "--json", url=city)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {(w["kind"], w["unit_code"]) for w in out} >= {("surge", "G33"), ("recurrence", "G10")}
    assert all(w["explain"] for w in out)
    res = run_cli("hotspots", "--at", at, "--json", "--kind", "recurrence", "--unit", "C-1-1-0", url=city)
    assert [w["unit_code"] for w in json.loads(res.stdout)] == ["G10"]
    res = run_cli("hotspots", "--at", at, "--json", "--kind", "recurrence", "--unit", "C-1-1-1", url=city)
    assert json.loads(res.stdout) == []
    assert _rows(city) == []  # replaying stores nothing
    res = run_cli("hotspots", "--at", at, "--run", url=city)
    assert res.returncode == 0 and "G33" in res.stdout
    assert len(_rows(city)) >= 2
    for bad, says in ((["--at", "yesterday"], "--at 'yesterday' is not a timestamp"),
                      (["--kind", "fire"], "--kind 'fire' must be one of surge, recurrence, cluster"),
                      (["--unit", "nowhere"], "no unit with code 'nowhere'")):
        res = run_cli("hotspots", *bad, url=city)
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(f"cockpit: {says}")


def test_the_schedule_runs_once_per_interval_whatever_the_workers(city):
    from dataclasses import replace

    from cockpit.config import settings
    from cockpit.hotspots import schedule

    plant_spot(city)
    s = replace(settings(), hotspot=HS)
    eng = store.engine(city)
    assert schedule.run_if_due(eng, s, AT)
    assert not schedule.run_if_due(eng, s, AT + timedelta(seconds=HS.interval // 2))  # another worker, too soon
    assert len(_rows(city)) == 1
    assert schedule.run_if_due(eng, s, AT + timedelta(seconds=HS.interval))
    assert [r["last_seen"] for r in _rows(city)] == [AT + timedelta(seconds=HS.interval)]


def test_a_coincidence_in_a_busy_grid_is_no_recurrence():
    # Four events of one category within a few metres: a recurrence in a grid that has only
    # them, a coincidence in a 1 km square grid with 3,000 such events in the same days.
    rng = np.random.default_rng(2)
    spot_lon, spot_lat = 114.0 + rng.uniform(0, 0.0001, 4), 22.5 + rng.uniform(0, 0.0001, 4)
    alone = detect.recurrence(np.zeros(4), spot_lon, spot_lat, radius_m=30, repeats=4, grid=np.zeros(4),
                              area_m2=np.full(4, 1e6), q=0.01)
    assert len(alone) == 1 and alone[0].p < 1e-6
    busy_lon = np.concatenate([spot_lon, 114.0 + rng.uniform(0, 0.0097, 3000)])
    busy_lat = np.concatenate([spot_lat, 22.5 + rng.uniform(0, 0.009, 3000)])
    spots = detect.recurrence(np.zeros(3004), busy_lon, busy_lat, radius_m=30, repeats=4, grid=np.zeros(3004),
                              area_m2=np.full(3004, 1e6), q=0.01)
    assert spots == []
    # without the grid's areas, every group of 4 is kept (the chance test is what removed them)
    assert detect.recurrence(np.zeros(3004), busy_lon, busy_lat, radius_m=30, repeats=4)


@pytest.mark.parametrize("kind", ["surge", "recurrence", "cluster"])
def test_explain_shows_a_dash_for_numbers_the_row_lacks(kind):
    # a row written by hand or by an older detection may hold NULL expected / statistic / p / q
    w = hot.Warning(None, kind, 1, 2, "24h", AT - timedelta(hours=24), AT, 7, None, None, None, None,
                    {"radius_m": 30, "units": [1, 2]}, f"{kind}:1", AT, AT, category_name="类别2")
    for lang in ("zh", "en"):
        text = w.explain(lang)
        assert "7" in text and "—" in text, text
    if kind == "surge":
        assert "expected — (p = —)" in w.explain("en")
    if kind == "cluster":
        assert "Gi* z = —，q = —" in w.explain("zh")
    w.expected, w.statistic, w.p_value, w.q_value = 4.1, 2.5, 0.0021, 0.004
    assert "—" not in w.explain("en") and "—" not in w.explain("zh")
    assert w.as_json()["explain"] == w.explain("en")
