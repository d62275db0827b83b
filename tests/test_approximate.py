"""Geocoding fallback points: `cockpit import-events` flags their rows `location_approximate`;
they count in the KPIs and stay out of the heat map (rollup and plain paths, and its triggers)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.metrics import heat
from conftest import FOUR_GRIDS as UNITS, box_city, run_cli

CITY_HALL = (11.2345, 51.6789)  # the geocoder's default point, in G22
MARKET = (10.4321, 50.2468)     # a busy market, in G11
MAP = ("--map", "external_id=id", "--map", "category=type", "--map", "reported_at=time", "--map", "closed_at=done",
       "--map", "lon=x", "--map", "lat=y", "--source", "grid_app", "--json")


@pytest.fixture
def city(databases) -> str:
    url = databases.create("approx")
    box_city(url, UNITS)
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name, deadline_hours) VALUES ('SR01', '暴露垃圾', 24)"))
    return url


def export(n: int, at: dict[tuple[float, float], int], seed: int = 1, prefix: str = "E") -> pd.DataFrame:
    """n events of the last days, at scattered points except `at` (point -> rows there); a third
    closed late (30 h), a third closed in time (10 h), a third open."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(10.01, 11.99, n).round(6), rng.uniform(50.01, 51.99, n).round(6)
    i = 0
    for (px, py), k in at.items():
        x[i:i + k], y[i:i + k] = px, py
        i += k
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rep = [now - timedelta(hours=2 + (j * 7) % 100, minutes=j % 60) for j in range(n)]
    done = [(r + timedelta(hours=(10, 30)[j % 3])).isoformat() if j % 3 < 2 and r + timedelta(hours=30) < now else ""
            for j, r in enumerate(rep)]
    return pd.DataFrame({"id": [f"{prefix}{j}" for j in range(n)], "type": "SR01",
                         "time": [r.isoformat() for r in rep], "done": done, "x": x, "y": y})


def load(url, tmp_path, df, *extra, name="export.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    r = run_cli("import-events", str(path), *MAP, *extra, url=url)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def q(url, sql, **params):
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def flagged(url) -> set[str]:
    return {r[0] for r in q(url, "SELECT external_id FROM events WHERE location_approximate")}


def test_a_fallback_point_at_15_percent_is_flagged_counted_in_kpis_and_left_out_of_heat(city, tmp_path):
    df = export(1200, {CITY_HALL: 180, MARKET: 30})
    out = load(city, tmp_path, df)
    assert out["inserted"] == 1200
    assert out["approximate_locations"] == [{"lon": CITY_HALL[0], "lat": CITY_HALL[1], "rows": 180}]
    at_hall = (df.x == CITY_HALL[0]) & (df.y == CITY_HALL[1])
    assert flagged(city) == set(df.id[at_hall])
    text = run_cli("import-events", str(tmp_path / "export.csv"), *MAP[:-1], url=city).stdout
    assert "approximate location (geocoding fallback) 11.2345,51.6789: 180 rows" in text

    # KPIs count them: the city and the grid holding the point, against pandas
    rep = pd.to_datetime(df.time)
    closed = pd.to_datetime(df.done.replace("", None))
    for unit, mask in (("C", df.x > 0), ("G22", (df.x >= 11) & (df.y >= 51))):
        frm = rep.min().tz_convert("Asia/Shanghai").date().isoformat()
        to = rep.max().tz_convert("Asia/Shanghai").date().isoformat()
        r = run_cli("kpi", "--unit", unit, "--from", frm, "--to", to, "--json", url=city)
        got = json.loads(r.stdout)
        assert got["volume"] == int(mask.sum())
        assert got["closed"] == int((closed.notna() & mask).sum())
        assert got["closed_on_time"] == int(((closed - rep <= pd.Timedelta(hours=24)) & mask).sum())

    # heat: every row in the window but those at the fallback point, on both paths
    end = datetime.now(timezone.utc)
    in_window = (rep >= end - timedelta(days=7)) & (rep < end)
    want = int((in_window & ~at_hall).sum())
    assert want < int(in_window.sum())
    eng = store.engine(city)
    with eng.begin() as conn:
        cid = conn.execute(sa.text("SELECT id FROM units WHERE code = 'C'")).scalar()
        fast, plain = heat.heat(conn, cid, heat.WINDOWS["7d"], end), heat.heat(conn, cid, heat.WINDOWS["7d"], end,
                                                                                plain=True)
        assert fast["events"] == plain["events"] == want
        assert conn.execute(sa.text("SELECT sum(n) FROM heat_rollup")).scalar() == int((~at_hall).sum())
        # flipping the flag on a stored event moves its weight, and a rebuild agrees with the triggers
        conn.execute(sa.text("UPDATE events SET location_approximate = NOT location_approximate "
                             "WHERE external_id IN ('E0', 'E1', 'E500')"))  # two at the hall, one elsewhere
        assert conn.execute(sa.text("SELECT sum(n) FROM heat_rollup")).scalar() == int((~at_hall).sum()) + 2 - 1
        kept = set(conn.execute(sa.text("SELECT hour, cx, cy, n FROM heat_rollup WHERE n <> 0")).all())
        heat.rebuild(conn)
        assert set(conn.execute(sa.text("SELECT hour, cx, cy, n FROM heat_rollup WHERE n <> 0")).all()) == kept
        conn.rollback()

    # a later export of some of these events (a day's delta: too small to show the point) keeps the flag
    later = df[df.id.isin(["E0", "E1", "E2", "E700"])].copy()
    later["done"] = (pd.to_datetime(later.time) + timedelta(hours=1)).map(lambda t: t.isoformat())
    upd = load(city, tmp_path, later, name="later.csv")
    assert upd["approximate_locations"] == [] and upd["updated"] >= 1
    assert flagged(city) == set(df.id[at_hall])
    # and an export naming the point flags a new event there, whatever its count
    new = export(3, {CITY_HALL: 1}, seed=2, prefix="N")
    named = load(city, tmp_path, new, "--approximate-point", "11.2345,51.6789", name="new.csv")
    assert named["approximate_locations"] == [{"lon": CITY_HALL[0], "lat": CITY_HALL[1], "rows": 1}]
    assert flagged(city) == set(df.id[at_hall]) | {"N0"}


def test_natural_dense_places_and_tiny_files_are_not_flagged(city, tmp_path):
    # a market of 30 rows: too few rows
    out = load(city, tmp_path, export(1200, {MARKET: 30}))
    assert out["approximate_locations"] == [] and flagged(city) == set()
    # two busy places of 80 and 40 rows (4 % and 2 %): the densest is not far above the next
    other = (11.5555, 50.5555)
    out = load(city, tmp_path, export(2000, {MARKET: 80, other: 40}, seed=3, prefix="F"), name="two.csv")
    assert out["approximate_locations"] == [] and flagged(city) == set()
    # the same file with a lower ratio asked for: the market counts as a fallback
    out = load(city, tmp_path, export(2000, {MARKET: 80, other: 40}, seed=3, prefix="F"), "--approximate-ratio", "2",
               name="two.csv")
    assert out["approximate_locations"] == [{"lon": MARKET[0], "lat": MARKET[1], "rows": 80}]
    assert len(flagged(city)) == 80
    # a tiny file, all at one point: 20 rows are no evidence
    out = load(city, tmp_path, export(20, {CITY_HALL: 20}, prefix="T"), name="tiny.csv")
    assert out["approximate_locations"] == [] and len(flagged(city)) == 80


def test_named_points_and_thresholds_from_the_mapping_file_and_bad_values(city, tmp_path):
    df = export(20, {CITY_HALL: 5, MARKET: 3}, prefix="M")
    mapping = tmp_path / "m.toml"
    mapping.write_text('[options]\napproximate_points = ["10.4321,50.2468"]\n', "utf-8")
    out = load(city, tmp_path, df, "--mapping", str(mapping), "--approximate-point", "11.23450,51.67890")
    assert sorted((p["lon"], p["rows"]) for p in out["approximate_locations"]) == [(10.4321, 3), (11.2345, 5)]
    assert flagged(city) == {f"M{i}" for i in range(8)}

    for args, says in ((("--approximate-point", "11.2,north"), "is not a point"),
                       (("--approximate-min-share", "5"), "a fraction"),
                       (("--approximate-ratio", "0.5"), "at least 1")):
        r = run_cli("import-events", str(tmp_path / "export.csv"), *MAP, *args, url=city)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr
    mapping.write_text("[options]\napproximate_min_rows = 2.5\n", "utf-8")
    r = run_cli("import-events", str(tmp_path / "export.csv"), *MAP, "--mapping", str(mapping), url=city)
    assert r.returncode == 2 and "approximate_min_rows" in r.stderr


def test_live_and_drilldown_list_an_approximate_event_but_do_not_draw_it(city):
    from zoneinfo import ZoneInfo

    from cockpit.callbacks.live_parts import heat_points
    from cockpit.metrics import live_view, unit_view
    from cockpit.metrics.kpi import Period
    from cockpit.layouts.events_table import points

    with store.engine(city).begin() as conn:
        for ext, approximate in (("here", False), ("hall", True)):
            conn.execute(sa.text(
                "INSERT INTO events (source, external_id, category_id, reported_at, location, location_approximate) "
                "SELECT 'grid_app', :e, id, now(), ST_SetSRID(ST_MakePoint(:x, :y), 4326), :a FROM categories"),
                {"e": ext, "x": CITY_HALL[0], "y": CITY_HALL[1], "a": approximate})
        latest = live_view.latest_events(conn)
        tz = ZoneInfo("Asia/Shanghai")
        listed = unit_view.grid_events(conn, "G22", Period.last_days(1, tz))
    for got in (latest, listed):
        by_ext = {e["id"]: e for e in got}
        assert len(by_ext) == 2
        assert sorted((e["approximate"], e["lat"] is None) for e in got) == [(False, False), (True, True)]
    assert len(heat_points(latest)) == 1
    listed = [{**e, "category": "x"} for e in listed]
    assert len(points(listed, tz, "zh")["features"]) == 1
