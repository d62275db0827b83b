"""Rankings (cockpit/metrics/ranking.py, `cockpit rank`) on fixtures whose answer is known by
construction, and against an independent pandas computation over the events table."""
from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.config import rank_weights
from cockpit.errors import BadRequest, CockpitError
from cockpit.metrics.kpi import Period, previous_period
from cockpit.metrics.ranking import competition_ranks, parse_period, period_label, rank, wilson
from conftest import box_city, run_cli

TZ = ZoneInfo("Asia/Shanghai")
WEIGHTS = {"closure": 0.3, "on_time": 0.4, "satisfaction": 0.3}


# -- periods -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, first, last, kind", [
    ("2026-10", date(2026, 10, 1), date(2026, 10, 31), "month"),
    ("2026-02", date(2026, 2, 1), date(2026, 2, 28), "month"),
    ("2026-W44", date(2026, 10, 26), date(2026, 11, 1), "week"),
    ("2026-W53", date(2026, 12, 28), date(2027, 1, 3), "week"),  # ISO week across the year's end
    ("2020-W01", date(2019, 12, 30), date(2020, 1, 5), "week"),  # ISO week 1 starting the year before
    ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), "quarter"),
    ("2026-q1", date(2026, 1, 1), date(2026, 3, 31), "quarter"),
    ("2026-10-01..2026-10-15", date(2026, 10, 1), date(2026, 10, 15), "range"),
    ("2026-10-01..2026-10-01", date(2026, 10, 1), date(2026, 10, 1), "range"),
])
def test_periods_parse(text, first, last, kind):
    p, k = parse_period(text, TZ)
    assert (p.first, p.last, k) == (first, last, kind)
    assert parse_period(period_label(p, k), TZ) == (p, k)


@pytest.mark.parametrize("text, says", [
    ("2026-13", "no month 13"), ("2026-00", "no month 00"), ("2026-W54", "no ISO week 54"),
    ("2025-W53", "no ISO week 53"), ("2026-Q5", "is not one of"), ("october", "is not one of"), ("", "is not one of"),
    ("2026-10-15..2026-10-01", "ends (2026-10-01) before it starts"), ("2026-02-30..2026-03-01", "needs two days"),
    ("0001-01", "outside the years"), ("2026-10-01..", "needs two days"),
])
def test_bad_periods_say_why_in_one_line(text, says):
    with pytest.raises(BadRequest) as err:
        parse_period(text, TZ)
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, previous", [
    ("2026-10", ("2026-09-01", "2026-09-30")), ("2026-03", ("2026-02-01", "2026-02-28")),
    ("2026-Q1", ("2025-10-01", "2025-12-31")), ("2027-W01", ("2026-12-28", "2027-01-03")),
    ("2026-10-01..2026-10-15", ("2026-09-16", "2026-09-30")),
])
def test_previous_period(text, previous):
    p = previous_period(parse_period(text, TZ)[0])
    assert (p.first.isoformat(), p.last.isoformat()) == previous


# -- arithmetic --------------------------------------------------------------------------------

@pytest.mark.parametrize("k, n, low, high", [
    (81, 263, 0.2553, 0.3662),  # the textbook example (Wilson 1927 / Newcombe 1998 method 3)
    (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (2, 2, 0.3424, 1.0), (1980, 2000, 0.9846, 0.9935),
])
def test_wilson_interval_known_values(k, n, low, high):
    r = wilson(k, n)
    assert (round(r.low, 4), round(r.high, 4)) == (low, high)
    assert r.raw == k / n and r.adjusted == r.low


def test_wilson_without_a_denominator_is_no_rate_and_scores_nothing():
    r = wilson(0, 0)
    assert (r.raw, r.low, r.high, r.adjusted) == (None, None, None, 0.0)


def test_competition_ranks_share_a_place_and_skip_the_next():
    scores = [90.0, 80.0, 80.0, 70.0, 95.0, 70.0, 70.0, 10.0]
    ranked = [True, True, True, True, False, True, True, True]  # 95: too few events, not ranked
    assert competition_ranks(scores, ranked).tolist() == [1, 2, 2, 4, 0, 4, 4, 7]


@pytest.mark.parametrize("text, says", [
    ("closure=0.5,on_time=0.4", "add up to 0.9"), ("closure=1,speed=0", "at most once"),
    ("closure=1,closure=0", "at most once"), ("closure=x,on_time=1", "not a weight"), ("closure", "NAME=WEIGHT"),
    ("closure=-0.5,on_time=1.5", "not a weight"),
])
def test_bad_weights_are_refused(text, says):
    with pytest.raises(CockpitError) as err:
        rank_weights(text)
    assert says in str(err.value)


def test_weights_left_out_weigh_nothing():
    assert dict(rank_weights("on_time=1")) == {"closure": 0.0, "on_time": 1.0, "satisfaction": 0.0}


# -- a city where the answer is known by construction --------------------------------------

BOX = (0, 0, 1, 1)
GRIDS = ["G1", "G2", "G3", "G4", "G5", "G6", "G7"]


def _events(conn, grid: str, month: int, n: int, closed: int, on_time: int, rated: int, satisfied: int,
            dept: str | None = None) -> None:
    """n events on the 10th of a 2026 month (local noon): the first `closed` closed, of which
    the first `on_time` by their deadline; the first `rated` rated, `satisfied` of them 5 stars."""
    conn.execute(sa.text("""
        INSERT INTO events (source, external_id, category_id, reported_at, grid_id, status, department_id,
                            deadline_at, closed_at, rating)
        SELECT 'hotline_12345', :g || '-' || :m || '-' || i, (SELECT id FROM categories WHERE code = 'item'),
               make_timestamptz(2026, :m, 10, 12, 0, 0, 'Asia/Shanghai'), (SELECT id FROM units WHERE code = :g),
               CASE WHEN i <= :closed THEN 'closed' ELSE 'handling' END,
               (SELECT id FROM departments WHERE code = :dept),
               make_timestamptz(2026, :m, 11, 12, 0, 0, 'Asia/Shanghai'),
               CASE WHEN i <= :on_time THEN make_timestamptz(2026, :m, 10, 18, 0, 0, 'Asia/Shanghai')
                    WHEN i <= :closed THEN make_timestamptz(2026, :m, 20, 12, 0, 0, 'Asia/Shanghai') END,
               CASE WHEN i <= :satisfied THEN 5 WHEN i <= :rated THEN 2 END
        FROM generate_series(1, :n) i"""),
        {"g": grid, "m": month, "n": n, "closed": closed, "on_time": on_time, "rated": rated,
         "satisfied": satisfied, "dept": dept})


@pytest.fixture(scope="module")
def known(databases) -> str:
    url = databases.create("rank")
    box_city(url, [("C", "city", "city", None, BOX), ("D1", "district one", "district", "C", BOX),
                   ("D2", "district two", "district", "C", BOX),
                   *((g, f"grid {g}", "grid", "D1" if i < 4 else "D2", BOX) for i, g in enumerate(GRIDS))])
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name) VALUES ('grp', 'group')"))
        conn.execute(sa.text("INSERT INTO categories (code, name, parent_id, deadline_hours) "
                             "SELECT 'item', 'item', id, 24 FROM categories"))
        conn.execute(sa.text("INSERT INTO departments (code, name) VALUES ('DA', 'dept A'), ('DB', 'dept B'), "
                             "('DC', 'dept C (no events)')"))
        conn.execute(sa.text("INSERT INTO cockpit_state (key, value) VALUES ('timezone', 'Asia/Shanghai') "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value"))
        # October: G1 2,000 events at 99 %, G2 2 at 100 %, G3 = G4 (a tie), G7 new, G5 G6 nothing
        _events(conn, "G1", 10, 2000, 1980, 1980, 1980, 1960, dept="DA")
        _events(conn, "G2", 10, 2, 2, 2, 2, 2)
        _events(conn, "G3", 10, 100, 90, 90, 50, 40, dept="DB")
        _events(conn, "G4", 10, 100, 90, 90, 50, 40)
        _events(conn, "G7", 10, 50, 25, 20, 10, 5)
        # September: G3 = G4 first, G1 third, G6 ranked (and gone in October)
        _events(conn, "G1", 9, 100, 50, 40, 40, 20, dept="DA")
        _events(conn, "G3", 9, 100, 90, 90, 50, 40)
        _events(conn, "G4", 9, 100, 90, 90, 50, 40)
        _events(conn, "G6", 9, 40, 20, 10, 10, 5)
    return url


def _table(url: str, **kw) -> list[dict]:
    with store.engine(url).connect() as conn:
        return rank(conn, TZ, **{"weights": WEIGHTS, "min_volume": 30, "period_text": "2026-10", **kw}).as_dicts()


def test_order_ties_small_and_empty_are_as_constructed(known):
    rows = _table(known, level="grid")
    assert [(r["key"], r["rank"], r["status"]) for r in rows] == [
        ("G1", 1, "ranked"), ("G3", 2, "ranked"), ("G4", 2, "ranked"), ("G7", 4, "ranked"),
        ("G2", None, "small"), ("G5", None, "empty"), ("G6", None, "empty")]
    g1, g3, g4 = rows[0], rows[1], rows[2]
    assert (g1["volume"], g1["closure_k"], g1["closure_n"], g1["closure_rate"]) == (2000, 1980, 2000, 0.99)
    assert g3["score"] == g4["score"]
    assert rows[-1]["volume"] == 0 and rows[-1]["closure_rate"] is None and rows[-1]["score"] is None


def test_two_events_at_100_percent_never_outrank_2000_at_99(known):
    for min_volume in (0, 1, 2):  # even when both are ranked
        rows = {r["key"]: r for r in _table(known, level="grid", min_volume=min_volume)}
        assert rows["G2"]["closure_rate"] == 1.0 and rows["G1"]["closure_rate"] == 0.99
        assert rows["G1"]["rank"] == 1 and rows["G2"]["rank"] > rows["G1"]["rank"]
        assert rows["G2"]["closure_low"] == pytest.approx(0.3424, abs=1e-4)


def test_rank_change_new_and_trend_against_the_previous_period(known):
    rows = {r["key"]: r for r in _table(known, level="grid")}
    assert (rows["G1"]["change"], rows["G1"]["new"]) == (2, False)  # 3rd in September, 1st now
    assert (rows["G3"]["change"], rows["G4"]["change"]) == (-1, -1)  # shared 1st, now shared 2nd
    assert (rows["G7"]["change"], rows["G7"]["new"]) == (None, True)
    assert (rows["G6"]["change"], rows["G6"]["new"], rows["G6"]["status"]) == (None, False, "empty")
    assert rows["G1"]["trend"][:6] == [None] * 6 and rows["G1"]["trend"][-1] == rows["G1"]["score"]
    september = {r["key"]: r for r in _table(known, level="grid", period_text="2026-09")}
    assert rows["G1"]["trend"][-2] == september["G1"]["score"]
    assert september["G6"]["rank"] == 4 and september["G3"]["rank"] == september["G4"]["rank"] == 1


def test_score_is_the_weighted_wilson_lower_bounds(known):
    g1 = _table(known, level="grid")[0]
    expected = 100 * (0.3 * wilson(1980, 2000).low + 0.4 * wilson(1980, 1980).low + 0.3 * wilson(1960, 1980).low)
    assert g1["score"] == round(expected, 2)


def test_higher_levels_add_their_grids_up(known):
    rows = {r["key"]: r for r in _table(known, level="district")}
    assert rows["D1"]["volume"] == 2000 + 2 + 100 + 100 and rows["D2"]["volume"] == 50


def test_departments_rank_their_events_only(known):
    rows = _table(known, by="department", level="grid")  # the level is ignored by department
    assert [(r["key"], r["rank"], r["status"], r["volume"]) for r in rows] == [
        ("DA", 1, "ranked", 2000), ("DB", 2, "ranked", 100), ("DC", None, "empty", 0)]
    assert rows[0]["population"] is None and rows[0]["per_10k"] is None


def test_filtered_rankings_from_the_rollups_equal_raw_events(demo_engine):
    month = (datetime.now(TZ).date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    with demo_engine.connect() as conn:
        group = conn.execute(sa.text("SELECT code FROM categories WHERE parent_id IS NULL ORDER BY code")).scalar()
        for kw in ({"level": "district", "source": "iot"}, {"level": "street", "group": group},
                   {"level": "grid", "source": "hotline_12345", "group": group}, {"by": "department", "source": "iot"}):
            fast = rank(conn, TZ, weights=WEIGHTS, min_volume=30, period_text=month, **kw)
            plain = rank(conn, TZ, weights=WEIGHTS, min_volume=30, period_text=month, plain=True, **kw)
            assert fast.as_dicts() == plain.as_dicts(), kw
            assert any(r.volume for r in fast.rows), kw
            conn.rollback()


def test_the_rollups_answer_what_raw_events_answer_also_after_changes(known):
    for kw in ({"level": "grid"}, {"level": "district", "period_text": "2026-W41"}, {"by": "department"},
               {"level": "grid", "period_text": "2026-Q4"}, {"level": "grid", "period_text": "2026-10-05..2026-10-12"}):
        with store.engine(known).connect() as conn:
            fast = rank(conn, TZ, weights=WEIGHTS, min_volume=30, **{"period_text": "2026-10", **kw}).as_dicts()
            plain = rank(conn, TZ, weights=WEIGHTS, min_volume=30, plain=True, **{"period_text": "2026-10", **kw})
            assert fast == plain.as_dicts(), kw
    with store.engine(known).begin() as conn:  # the triggers keep the rollups: close, rate, move, delete
        conn.execute(sa.text("UPDATE events SET closed_at = reported_at + interval '1 hour', rating = 5 "
                             "WHERE external_id LIKE 'G7-10-%'"))
        conn.execute(sa.text("UPDATE events SET grid_id = (SELECT id FROM units WHERE code = 'G5') "
                             "WHERE external_id IN ('G4-10-1', 'G4-10-2')"))
        conn.execute(sa.text("UPDATE events SET department_id = NULL WHERE external_id LIKE 'G3-10-%'"))
        fast = rank(conn, TZ, weights=WEIGHTS, min_volume=30, level="grid", period_text="2026-10").as_dicts()
        plain = rank(conn, TZ, weights=WEIGHTS, min_volume=30, level="grid", period_text="2026-10", plain=True)
        assert fast == plain.as_dicts()
        assert {r["key"]: r["volume"] for r in fast}["G5"] == 2 and fast[1]["key"] == "G7"
        depts = rank(conn, TZ, weights=WEIGHTS, min_volume=30, by="department", level=None, period_text="2026-10")
        assert [r.key for r in depts.rows if r.volume] == ["DA"]
        conn.rollback()


def test_unknown_level_lists_the_known_ones(known):
    with pytest.raises(BadRequest, match=r"unknown level 'street'; this city has: city, district, grid"):
        _table(known, level="street")


def test_a_two_level_city_ranks_its_smallest_units_by_default(databases):
    url = databases.create("rank2")
    box_city(url, [("C", "city", "city", None, BOX), ("A", "grid A", "grid", "C", BOX), ("B", "grid B", "grid", "C", BOX)])
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name) VALUES ('grp', 'group')"))
        conn.execute(sa.text("INSERT INTO categories (code, name, parent_id, deadline_hours) "
                             "SELECT 'item', 'item', id, 24 FROM categories"))
        _events(conn, "A", 10, 40, 40, 40, 40, 40)
        _events(conn, "B", 10, 40, 30, 30, 40, 20)
    with store.engine(url).connect() as conn:
        table = rank(conn, TZ, level=None, period_text="2026-10", weights=WEIGHTS, min_volume=30)
    assert table.level == "grid" and [(r.key, r.rank) for r in table.rows] == [("A", 1), ("B", 2)]
    with pytest.raises(BadRequest, match="this city has: city, grid"):
        with store.engine(url).connect() as conn:
            rank(conn, TZ, level="district", period_text="2026-10", weights=WEIGHTS, min_volume=30)


# -- `cockpit rank` against pandas ----------------------------------------------------------------

def _pandas_ranking(engine, level: str, period: Period, before: Period, min_volume: int, weights: dict) -> list[dict]:
    """Independent: parent_id walked in pandas, counts by masks, the Wilson bound as the root of
    its quadratic ((n + z²) p² - (2k + z²) p + k²/n = 0), ranks by pandas' rank(method="min")."""
    with engine.connect() as conn:
        units = pd.read_sql("SELECT id, code, level, parent_id FROM units", conn)
        ev = pd.read_sql("SELECT grid_id, reported_at, closed_at, deadline_at, rating FROM events", conn)
    parent = dict(zip(units.id, units.parent_id))
    level_of = dict(zip(units.id, units.level))

    def up(uid):
        while uid is not None and not pd.isna(uid):
            if level_of[uid] == level:
                return uid
            uid = parent[uid]
        return None

    ev["unit"] = ev.grid_id.map(lambda g: up(g) if not pd.isna(g) else None)
    z = 1.959963984540054

    def low(k, n):
        if n == 0:
            return 0.0
        a, b, c = n + z * z, -(2 * k + z * z), k * k / n
        return max(0.0, (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a))

    def table(p: Period) -> pd.DataFrame:
        start = pd.Timestamp(datetime.combine(p.first, datetime.min.time()), tz=TZ)
        end = pd.Timestamp(datetime.combine(p.end, datetime.min.time()), tz=TZ)
        e = ev[(ev.reported_at >= start) & (ev.reported_at < end) & ev.unit.notna()].copy()
        e["closed"] = e.closed_at.notna()
        e["on_time"] = e.closed & (e.closed_at <= e.deadline_at)
        e["rated"] = e.rating.notna()
        e["satisfied"] = e.rating >= 4
        g = e.groupby("unit")[["closed", "on_time", "rated", "satisfied"]].sum()
        g["volume"] = e.groupby("unit").size()
        g["score"] = [round(100 * (weights["closure"] * low(r.closed, r.volume)
                                   + weights["on_time"] * low(r.on_time, r.closed)
                                   + weights["satisfaction"] * low(r.satisfied, r.rated)), 2) for r in g.itertuples()]
        ranked = g[g.volume >= min_volume]
        g["rank"] = ranked.score.rank(method="min", ascending=False)
        return g

    now, prev = table(period), table(before)
    out = []
    for uid, code in zip(units.id, units.code):
        if level_of[uid] != level:
            continue
        r = now.loc[uid] if uid in now.index else None
        rk = None if r is None or pd.isna(r["rank"]) else int(r["rank"])
        pr = prev.loc[uid]["rank"] if uid in prev.index else float("nan")
        out.append({"key": code, "rank": rk, "volume": 0 if r is None else int(r.volume),
                    "closure_k": 0 if r is None else int(r.closed), "on_time_k": 0 if r is None else int(r.on_time),
                    "satisfaction_k": 0 if r is None else int(r.satisfied),
                    "satisfaction_n": 0 if r is None else int(r.rated),
                    "score": None if r is None else float(r.score),
                    "change": None if rk is None or pd.isna(pr) else int(pr) - rk,
                    "status": "ranked" if rk else ("small" if r is not None else "empty")})
    status = {"ranked": 0, "small": 1, "empty": 2}
    return sorted(out, key=lambda d: (status[d["status"]], d["rank"] or 0, -d["volume"], d["key"]))


@pytest.mark.parametrize("level", ["street", "grid"])
def test_cli_json_equals_pandas(demo_url, demo_engine, level):
    today = datetime.now(TZ).date()
    month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")  # last month: inside the demo's 90 days
    got = run_cli("rank", "--level", level, "--period", month, "--json", url=demo_url,
                  env={"COCKPIT_RANK_WEIGHTS": "closure=0.2,on_time=0.5,satisfaction=0.3",
                       "COCKPIT_RANK_MIN_VOLUME": "40"})
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["weights"] == {"closure": 0.2, "on_time": 0.5, "satisfaction": 0.3} and out["min_volume"] == 40
    period, _ = parse_period(month, TZ)
    expected = _pandas_ranking(demo_engine, level, period, previous_period(period), 40,
                               {"closure": 0.2, "on_time": 0.5, "satisfaction": 0.3})
    keys = list(expected[0])
    assert [{k: r[k] for k in keys} for r in out["rows"]] == expected
    assert {r["status"] for r in out["rows"]} >= {"ranked"}


def test_cli_table_and_csv_carry_the_same_rows(demo_url):
    month = (datetime.now(TZ).date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    text = run_cli("rank", "--level", "district", "--period", month, url=demo_url, env={"COCKPIT_LANG": "en"})
    csv = run_cli("rank", "--level", "district", "--period", month, "--csv", url=demo_url)
    js = json.loads(run_cli("rank", "--level", "district", "--period", month, "--json", url=demo_url).stdout)
    assert text.returncode == csv.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[1].split()[:3] == ["Rank", "code", "Unit"]
    assert [ln.split()[1] for ln in lines[2:]] == [r["key"] for r in js["rows"]]
    assert [ln.split(",")[2] for ln in csv.stdout.splitlines()[1:]] == [r["key"] for r in js["rows"]]


@pytest.mark.parametrize("args, says", [
    (["--period", "2026-13"], "cockpit: period '2026-13' has no month 13"),
    (["--period", "2026-10", "--level", "ward"], "cockpit: unknown level 'ward'; this city has: city, district, street"),
    (["--period", "2026-10", "--source", "fax"], "cockpit: unknown source 'fax'"),
])
def test_cli_bad_input_is_one_line_exit_2(demo_url, args, says):
    got = run_cli("rank", *args, url=demo_url)
    assert got.returncode == 2 and got.stderr.startswith(says) and got.stderr.count("\n") == 1 and not got.stdout


def test_cli_bad_weight_setting_is_one_line_exit_2(demo_url):
    got = run_cli("rank", "--period", "2026-10", url=demo_url, env={"COCKPIT_RANK_WEIGHTS": "closure=2"})
    assert got.returncode == 2 and got.stderr.startswith("cockpit: COCKPIT_RANK_WEIGHTS='closure=2'")
