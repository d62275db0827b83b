"""`cockpit import-events` against real PostGIS: formats, mapping, time zones, placement,
quarantine, idempotence and updates, and the KPIs of what was loaded."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from cockpit import store
from conftest import FOUR_GRIDS as UNITS, box_city, run_cli

SH = ZoneInfo("Asia/Shanghai")

# a point inside each grid
INSIDE = {"G11": (10.5, 50.5), "G12": (10.5, 51.5), "G21": (11.5, 50.5), "G22": (11.5, 51.5)}


@pytest.fixture
def city(databases) -> str:
    url = databases.create("import")
    box_city(url, UNITS)
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name) VALUES ('SR', '市容环境')"))
        conn.execute(sa.text("INSERT INTO categories (code, name, parent_id, deadline_hours) "
                             "VALUES ('SR01', '暴露垃圾', (SELECT id FROM categories WHERE code = 'SR'), 24)"))
    return url


def cli_json(*args, url, ok=True):
    r = run_cli("import-events", *args, "--json", url=url)
    if ok:
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    return r


def q(url, sql, **params):
    with store.engine(url).connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def hotline_rows(n=40, start=datetime(2026, 3, 2, 8, 0)):
    """A 12345 export: Chinese headers, US-style local times, some rows naming only the district."""
    rows = []
    grids = list(INSIDE)
    for i in range(n):
        rep = start + timedelta(hours=7 * i, minutes=13)
        g = grids[i % 4]
        closed = i % 3 != 0
        row = {"工单编号": f"RX{i:05d}", "诉求分类": "暴露垃圾" if i % 2 else "噪音扰民",
               "受理时间": rep.strftime("%m/%d/%Y %I:%M:%S %p"),
               "办结时间": (rep + timedelta(hours=5 + 3 * (i % 13))).strftime("%m/%d/%Y %I:%M:%S %p") if closed else "",
               "办理状态": "已办结" if closed else "处理中",
               "满意度评价": ["满意", "不满意", "5", ""][i % 4] if closed else "",
               "经度": "" if i % 5 == 4 else str(INSIDE[g][0] + 0.01 * (i % 7)),
               "纬度": "" if i % 5 == 4 else str(INSIDE[g][1]),
               "所属社区": "西区" if i % 5 == 4 else "",
               "承办单位": ["城管局", "环保局"][i % 2]}
        rows.append(row)
    return pd.DataFrame(rows)


def expected_kpi(df: pd.DataFrame, deadline_hours: dict[str, float], mask=None) -> dict:
    """The KPIs of a hotline file computed independently with pandas (local times in Shanghai)."""
    df = df if mask is None else df[mask]
    fmt = "%m/%d/%Y %I:%M:%S %p"
    rep = pd.to_datetime(df["受理时间"], format=fmt)
    closed = pd.to_datetime(df["办结时间"].replace("", None), format=fmt)
    deadline = rep + pd.to_timedelta(df["诉求分类"].map(deadline_hours), unit="h")
    stars = df["满意度评价"].map({"满意": 4, "不满意": 2, "5": 5, "": None})
    return {"volume": len(df), "closed": int(closed.notna().sum()),
            "closed_on_time": int((closed <= deadline).sum()),
            "rated": int(stars.notna().sum()), "satisfied": int((stars >= 4).sum())}


def kpi(url, unit, frm="2026-03-01", to="2026-03-31"):
    r = run_cli("kpi", "--unit", unit, "--from", frm, "--to", to, "--json", url=url)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_hotline_export_loads_with_local_times_unit_names_new_categories_and_kpis(city, tmp_path):
    df = hotline_rows()
    path = tmp_path / "工单.csv"
    df.to_csv(path, index=False)
    out = cli_json(str(path), "--preset", "hotline12345", "--default-deadline-hours", "48", url=city)
    assert out["read"] == 40 and out["inserted"] == 40 and out["quarantined"] == 0
    assert out["placed_by_unit_only"] == 8
    assert out["categories_created"] == 1 and out["departments_created"] == 2
    assert out["without_deadline"] == 0

    # 03/02/2026 08:13:00 AM in Shanghai is 00:13 UTC
    (first,) = q(city, "SELECT reported_at, status, grid_id, deadline_at FROM events WHERE external_id = 'RX00000'")
    assert first.reported_at == datetime(2026, 3, 2, 0, 13, tzinfo=timezone.utc)
    assert first.status == "handling"
    assert first.deadline_at - first.reported_at == timedelta(hours=48)  # new category: the default
    by_unit = dict(q(city, "SELECT u.code, count(*) FROM events e JOIN units u ON u.id = e.grid_id GROUP BY 1"))
    assert by_unit["D1"] == 8 and sum(by_unit.values()) == 40
    (cat,) = q(city, "SELECT code, name, deadline_hours FROM categories WHERE name = '噪音扰民'")
    assert cat.deadline_hours is None

    hours = {"暴露垃圾": 24, "噪音扰民": 48}
    got = kpi(city, "C")
    want = expected_kpi(df, hours)
    assert {k: got[k] for k in want} == want
    # the rows naming only the district count in it and the city, in no grid
    west = expected_kpi(df, hours, df["经度"] != "")
    d1 = kpi(city, "D1")
    assert d1["volume"] == 8 + sum(1 for i in range(40) if i % 5 != 4 and i % 4 in (0, 1))
    assert kpi(city, "G11")["volume"] == sum(1 for i in range(40) if i % 5 != 4 and i % 4 == 0)
    assert west["volume"] == 32
    # the triggers' rollups equal a rebuild: events placed at a district are counted once there too
    assert run_cli("rollup", "rebuild", url=city).returncode == 0
    assert kpi(city, "C") == got and kpi(city, "D1") == d1

    # new events' transitions: one step from reported to the status in the file
    trans = q(city, "SELECT e.external_id, t.from_status, t.to_status, t.at, e.closed_at FROM event_transitions t "
                    "JOIN events e ON e.id = t.event_id ORDER BY e.external_id")
    assert len(trans) == 40
    for t in trans:
        assert t.from_status == "reported"
        if t.to_status == "closed":
            assert t.at == t.closed_at


# the columns and values of the hand-made exports with bad rows below
BAD_MAPPING = """
[columns]
external_id = "id"
source = "src"
category = "cat"
reported_at = "reported"
closed_at = "closed"
status = "status"
rating = "rating"
lon = "lon"
lat = "lat"
unit_code = "unit"

[values.status]
open = "reported"
done = "closed"

[values.source]
hotline = "hotline_12345"
"""


def test_bad_rows_are_quarantined_with_reasons_and_counted_exactly(city, tmp_path):
    ok = {"lon": "10.5", "lat": "50.5", "unit": "", "status": "open", "src": "hotline", "rating": "",
          "reported": "2026-03-10 09:00:00", "closed": "", "cat": "SR01"}
    rows = [
        {**ok, "id": "A1"},
        {**ok, "id": "A2", "status": "done", "closed": "2026-03-10 12:00:00", "rating": "4"},
        {**ok, "id": "A3", "lon": "", "lat": "", "unit": "G22"},               # placed by code: fine
        {**ok, "id": "A4", "status": "done", "closed": "2026-03-10 08:57:00"},  # 3 min skew: clamped
        {**ok, "id": ""},                                                        # missing_external_id
        {**ok, "id": "B1", "reported": "yesterday"},                             # unparsable_time
        {**ok, "id": "B2", "reported": ""},                                      # unparsable_time
        {**ok, "id": "B3", "lon": "", "lat": ""},                                # no_location
        {**ok, "id": "B4", "lon": "abc", "lat": "50.5"},                         # no_location
        {**ok, "id": "B5", "lon": "0", "lat": "0"},                              # outside_units
        {**ok, "id": "B6", "lon": "", "lat": "", "unit": "NOPE"},                # unknown_unit
        {**ok, "id": "B7", "status": "done", "closed": "2026-03-09 09:00:00"},   # closed_before_reported
        {**ok, "id": "B8", "status": "挂起"},                                     # unmapped_status
        {**ok, "id": "B9", "status": "挂起"},                                     # unmapped_status
        {**ok, "id": "C1", "status": "lost"},                                    # unmapped_status
        {**ok, "id": "C2", "src": "fax"},                                        # unmapped_source
        {**ok, "id": "C3", "status": "done", "closed": "2026-03-10 12:00:00", "rating": "7"},  # bad_rating
        {**ok, "id": "C4", "cat": ""},                                           # missing_category
        {**ok, "id": "A1", "status": "done", "closed": "2026-03-11 09:00:00"},   # duplicate_in_file
    ]
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    mapping = tmp_path / "m.toml"
    mapping.write_text(BAD_MAPPING, encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    out = cli_json(str(path), "--mapping", str(mapping), "--rejects", str(rejects), url=city)
    want = {"missing_external_id": 1, "unparsable_time": 2, "no_location": 2, "outside_units": 1,
            "unknown_unit": 1, "closed_before_reported": 1, "unmapped_status": 3, "unmapped_source": 1,
            "bad_rating": 1, "missing_category": 1, "duplicate_in_file": 1}
    assert out["quarantined_by_reason"] == want
    assert out["read"] == 19 and out["inserted"] == 4 and out["quarantined"] == 15
    assert out["unmapped"] == {"status": {"挂起": 2, "lost": 1}, "source": {"fax": 1}}
    assert out["clamped_close_times"] == 1

    stored = q(city, "SELECT row_no, reason, raw FROM quarantine WHERE import_id = :i ORDER BY row_no",
               i=out["import_id"])
    assert [s.row_no for s in stored] == list(range(5, 20))
    assert stored[0].raw["id"] == "" and stored[1].raw == {**{k: v for k, v in ok.items()}, "id": "B1",
                                                            "reported": "yesterday"}
    assert {s.row_no: s.reason for s in stored}[19] == "duplicate_in_file"
    assert stored[-1].raw["closed"] == "2026-03-11 09:00:00"  # the later duplicate is the one kept aside

    rej = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert len(rej) == 15 and list(rej.columns[:2]) == ["row", "reason"]
    assert rej.loc[rej["id"] == "B5", "reason"].item() == "outside_units"

    (a4,) = q(city, "SELECT reported_at, closed_at FROM events WHERE external_id = 'A4'")
    assert a4.closed_at == a4.reported_at
    (a3,) = q(city, "SELECT u.code FROM events e JOIN units u ON u.id = e.grid_id WHERE external_id = 'A3'")
    assert a3.code == "G22"
    (a1,) = q(city, "SELECT status FROM events WHERE external_id = 'A1'")
    assert a1.status == "reported"  # the first row of a key wins


def test_reimport_changes_nothing_and_a_later_export_updates_and_appends_transitions(city, tmp_path):
    df = hotline_rows(12)
    first = tmp_path / "export1.csv"
    df.to_csv(first, index=False)
    args = ("--preset", "hotline12345")
    out = cli_json(str(first), *args, url=city)
    assert (out["inserted"], out["updated"], out["unchanged"]) == (12, 0, 0)
    before = q(city, "SELECT count(*) FROM event_transitions")[0][0]

    again = cli_json(str(first), *args, url=city)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 12)
    assert q(city, "SELECT count(*) FROM events")[0][0] == 12
    assert q(city, "SELECT count(*) FROM event_transitions")[0][0] == before

    # later: RX00000 (handling) is closed and rated, RX00001 (closed) gets a different rating
    later = df.copy()
    later.loc[0, ["办理状态", "办结时间", "满意度评价"]] = ["已办结", "03/03/2026 09:00:00 AM", "满意"]
    later.loc[1, "满意度评价"] = "非常满意"
    second = tmp_path / "export2.csv"
    later.to_csv(second, index=False)
    upd = cli_json(str(second), *args, url=city)
    assert (upd["inserted"], upd["updated"], upd["unchanged"]) == (0, 2, 10)
    (e0,) = q(city, "SELECT id, status, closed_at, rating FROM events WHERE external_id = 'RX00000'")
    assert e0.status == "closed" and e0.rating == 4
    assert e0.closed_at == datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc)
    assert q(city, "SELECT rating FROM events WHERE external_id = 'RX00001'")[0][0] == 5
    hist = q(city, "SELECT from_status, to_status, at FROM event_transitions WHERE event_id = :i ORDER BY at, id",
             i=e0.id)
    assert [(h.from_status, h.to_status) for h in hist] == [("reported", "handling"), ("handling", "closed")]
    assert hist[-1].at == e0.closed_at
    assert q(city, "SELECT count(*) FROM event_transitions")[0][0] == before + 1

    assert cli_json(str(second), *args, url=city)["updated"] == 0


def _plain_rows(n, prefix):
    grids = list(INSIDE)
    return [{"id": f"{prefix}{i}", "type": "SR01", "time": f"2026-03-{1 + i % 28:02d}T10:00:00+08:00",
             "x": INSIDE[grids[i % 4]][0], "y": INSIDE[grids[i % 4]][1]} for i in range(n)]


PLAIN_MAP = ("--map", "external_id=id", "--map", "category=type", "--map", "reported_at=time",
             "--map", "lon=x", "--map", "lat=y", "--source", "iot")


def test_gzip_parquet_and_json_lines_load_alike(city, tmp_path):
    gz = tmp_path / "a.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        pd.DataFrame(_plain_rows(9, "G")).to_csv(f, index=False)
    pq = tmp_path / "b.parquet"
    pd.DataFrame(_plain_rows(7, "P")).to_parquet(pq, index=False)
    jl = tmp_path / "c.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in _plain_rows(5, "J")) + "\n", encoding="utf-8")
    for path, n in ((gz, 9), (pq, 7), (jl, 5)):
        out = cli_json(str(path), *PLAIN_MAP, url=city)
        assert (out["read"], out["inserted"], out["quarantined"]) == (n, n, 0), path
    per_grid = dict(q(city, "SELECT u.code, count(*) FROM events e JOIN units u ON u.id = e.grid_id GROUP BY 1"))
    assert per_grid == {"G11": 3 + 2 + 2, "G12": 2 + 2 + 1, "G21": 2 + 2 + 1, "G22": 2 + 1 + 1}
    (t,) = q(city, "SELECT reported_at FROM events WHERE external_id = 'P0'")
    assert t.reported_at == datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)


def test_open311_preset(city, tmp_path):
    reqs = [
        {"service_request_id": "638344", "status": "closed", "service_code": "006", "service_name": "Pothole",
         "requested_datetime": "2026-03-05T10:00:00-08:00", "updated_datetime": "2026-03-06T10:00:00-08:00",
         "expected_datetime": "2026-03-08T10:00:00-08:00", "agency_responsible": "Public Works",
         "lat": 51.5, "long": 11.5, "address": "8TH AVE"},
        {"service_request_id": "638345", "status": "open", "service_code": "007", "service_name": "Graffiti",
         "requested_datetime": "2026-03-05T11:00:00-08:00", "updated_datetime": None,
         "expected_datetime": None, "agency_responsible": "Public Works", "lat": 50.2, "long": 10.2},
        {"service_request_id": "638346", "status": "closed", "service_code": "006", "service_name": "Pothole",
         "requested_datetime": "2026-03-05T12:00:00-08:00", "lat": 51.1, "long": 10.1},  # closed, no time
    ]
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(reqs), encoding="utf-8")
    out = cli_json(str(path), "--preset", "open311", url=city)
    assert (out["inserted"], out["quarantined_by_reason"]) == (2, {"closed_without_time": 1})
    assert out["without_deadline"] == 1  # the graffiti: no expected time, a new category, no default
    rows = q(city, "SELECT e.external_id, e.status, e.closed_at, e.deadline_at, c.name, d.name AS dep, u.code "
                   "FROM events e JOIN categories c ON c.id = e.category_id JOIN units u ON u.id = e.grid_id "
                   "LEFT JOIN departments d ON d.id = e.department_id ORDER BY 1")
    assert [(r.external_id, r.status, r.name, r.dep, r.code) for r in rows] == [
        ("638344", "closed", "Pothole", "Public Works", "G22"), ("638345", "reported", "Graffiti", "Public Works", "G11")]
    assert rows[0].closed_at == datetime(2026, 3, 6, 18, 0, tzinfo=timezone.utc)
    assert rows[0].deadline_at == datetime(2026, 3, 8, 18, 0, tzinfo=timezone.utc)


def test_dst_gap_moves_forward_and_repeated_hour_takes_the_earlier_instant(city, tmp_path):
    rows = [{"id": "N1", "type": "SR01", "time": "2026-03-08 02:30:00", "x": 10.5, "y": 50.5},   # in the gap
            {"id": "N2", "type": "SR01", "time": "2026-11-01 01:30:00", "x": 10.5, "y": 50.5},   # twice
            {"id": "N3", "type": "SR01", "time": "2026-07-01 12:00:00", "x": 10.5, "y": 50.5}]
    path = tmp_path / "ny.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = cli_json(str(path), *PLAIN_MAP, "--tz", "America/New_York", url=city)
    assert out["inserted"] == 3
    got = dict(q(city, "SELECT external_id, reported_at FROM events"))
    assert got["N1"] == datetime(2026, 3, 8, 7, 0, tzinfo=timezone.utc)   # 03:00 EDT, first instant after
    assert got["N2"] == datetime(2026, 11, 1, 5, 30, tzinfo=timezone.utc)  # 01:30 EDT, the earlier one
    assert got["N3"] == datetime(2026, 7, 1, 16, 0, tzinfo=timezone.utc)


def test_unusable_input_is_one_line_and_nothing_loaded_is_an_error(city, tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame(_plain_rows(3, "X")).to_csv(path, index=False)
    r = run_cli("import-events", str(path), *PLAIN_MAP, "--map", "status=state", url=city)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        r.stderr.strip()] and "'state' (status) is not in the file" in r.stderr
    bogus = tmp_path / "y.parquet"
    bogus.write_text("id,time\n1,2\n")
    r = run_cli("import-events", str(bogus), *PLAIN_MAP, url=city)
    assert r.returncode == 2 and "cannot be read as parquet" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("import-events", str(path), "--preset", "nope", url=city)
    assert r.returncode == 2 and "--preset 'nope' is unknown" in r.stderr
    r = run_cli("import-events", str(path), *PLAIN_MAP, "--tz", "Mars/Base", url=city)
    assert r.returncode == 2 and "Mars/Base" in r.stderr
    assert q(city, "SELECT count(*) FROM events")[0][0] == 0

    outside = tmp_path / "z.csv"
    pd.DataFrame([{**r_, "x": 0, "y": 0} for r_ in _plain_rows(3, "Z")]).to_csv(outside, index=False)
    r = run_cli("import-events", str(outside), *PLAIN_MAP, url=city)
    assert r.returncode == 2 and "nothing could be loaded" in r.stderr and "quarantined outside_units: 3" in r.stdout
    assert q(city, "SELECT count(*) FROM quarantine WHERE reason = 'outside_units'")[0][0] == 3


def test_a_broken_json_line_is_quarantined_and_the_rest_loads(city, tmp_path):
    lines = [json.dumps(r) for r in _plain_rows(4, "L")]
    lines.insert(2, '{"id": "L9", "type": "SR01", "time": ')  # cut off mid-record
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = cli_json(str(path), *PLAIN_MAP, url=city)
    assert (out["read"], out["inserted"], out["quarantined_by_reason"]) == (5, 4, {"unreadable_row": 1})
    (row,) = q(city, "SELECT row_no, raw FROM quarantine")
    assert row.row_no == 3 and row.raw == {"line": '{"id": "L9", "type": "SR01", "time": '}


def test_gb18030_export_needs_and_takes_its_encoding(city, tmp_path):
    df = hotline_rows(6)
    path = tmp_path / "gbk.csv"
    df.to_csv(path, index=False, encoding="gb18030")
    r = run_cli("import-events", str(path), "--preset", "hotline12345", url=city)
    assert r.returncode == 2 and "--encoding" in r.stderr and "Traceback" not in r.stderr
    out = cli_json(str(path), "--preset", "hotline12345", "--encoding", "gb18030", url=city)
    assert out["inserted"] == 6
    assert {n for (n,) in q(city, "SELECT name FROM departments")} == {"城管局", "环保局"}


def test_new_categories_join_the_groups_the_mapping_gives(city, tmp_path):
    rows = [{**r, "type": t} for r, t in zip(_plain_rows(3, "K"), ["噪音扰民", "占道经营", "暴露垃圾"])]
    path = tmp_path / "k.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    mapping = tmp_path / "groups.toml"
    mapping.write_text('[category_groups]\n"噪音扰民" = "环境保护"\n"占道经营" = "市容环境"\n', encoding="utf-8")
    out = cli_json(str(path), *PLAIN_MAP, "--mapping", str(mapping), url=city)
    assert out["inserted"] == 3 and out["categories_created"] == 3  # two items and the new group 环境保护
    groups = dict(q(city, "SELECT c.name, g.name FROM categories c LEFT JOIN categories g ON g.id = c.parent_id"))
    assert groups["噪音扰民"] == "环境保护" and groups["占道经营"] == "市容环境" and groups["暴露垃圾"] == "市容环境"
    assert groups["环境保护"] is None


def _recent_rows(n, prefix, start):
    """Hotline rows of the last days (inside the heat map's retention), most closed, some rated."""
    grids = list(INSIDE)
    rows = []
    for i in range(n):
        rep = start + timedelta(hours=3 * i, minutes=7)
        g = grids[i % 4]
        closed = i % 3 != 0
        rows.append({"工单编号": f"{prefix}{i:05d}", "诉求分类": "暴露垃圾" if i % 2 else "噪音扰民",
                     "受理时间": rep.strftime("%Y-%m-%d %H:%M:%S"),
                     "办结时间": (rep + timedelta(hours=2 + i % 50)).strftime("%Y-%m-%d %H:%M:%S") if closed else "",
                     "办理状态": "已办结" if closed else ["处理中", "已派单", "待受理"][i % 9 // 3],
                     "满意度评价": ["满意", "不满意", "5", ""][i % 4] if closed else "",
                     "经度": "" if i % 5 == 4 else str(INSIDE[g][0] + 0.01 * (i % 7)),
                     "纬度": "" if i % 5 == 4 else str(INSIDE[g][1] + 0.01 * (i % 3)),
                     "所属社区": "西区" if i % 5 == 4 else ""})
    return pd.DataFrame(rows)


def _derived(url):
    """Everything the events' triggers keep, in a comparable form."""
    from cockpit.metrics.rollup import RANK_ROLLUPS

    return {t: sorted(map(tuple, q(url, f"SELECT * FROM {t}")))
            for t in ("kpi_rollup", "stage_rollup", "heat_rollup", *(r[0] for r in RANK_ROLLUPS))}


@pytest.mark.parametrize("rebuild", [True, False], ids=["keys-rebuilt", "keys-kept"])
def test_bulk_import_leaves_rollups_heat_and_feed_as_the_triggers_would(city, databases, tmp_path, monkeypatch,
                                                                        rebuild):
    from cockpit.ingest import events as importer
    from cockpit.ingest.events import build_mapping, import_events
    from cockpit.metrics import heat, rollup

    # a first import into an empty store rebuilds the keys and indexes; a later one keeps them
    monkeypatch.setattr(importer, "REBUILD_FROM", 0.0 if rebuild else float("inf"))

    other = databases.create("import_triggers")
    box_city(other, UNITS)
    with store.engine(other).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name) VALUES ('SR', '市容环境')"))
        conn.execute(sa.text("INSERT INTO categories (code, name, parent_id, deadline_hours) "
                             "VALUES ('SR01', '暴露垃圾', (SELECT id FROM categories WHERE code = 'SR'), 24)"))
    start = datetime.now().replace(microsecond=0) - timedelta(days=5)
    known = _recent_rows(30, "RX", start)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    known.to_csv(first, index=False)
    # the later export: every known event closed and rated now, plus 200 new ones
    later = known.copy()
    later["办理状态"], later["满意度评价"] = "已办结", "非常满意"
    later["办结时间"] = (start + timedelta(days=4)).strftime("%Y-%m-%d %H:%M:%S")
    # new ones from 15 days back (before the heat map's retention) to 10 days ahead
    pd.concat([later, _recent_rows(200, "NX", start - timedelta(days=10))]).to_csv(second, index=False)
    mapping = build_mapping(preset="hotline12345", default_deadline_hours=48)

    for url, bulk_rows in ((city, 0), (other, 10**9)):  # the bulk path here, the triggers there
        eng = store.engine(url)
        for path in (first, second):
            with eng.connect() as listen, eng.connect() as conn:
                listen.execute(sa.text("LISTEN cockpit_events"))
                listen.commit()
                res = import_events(conn, path, mapping, SH, bulk_rows=bulk_rows)
                # the plan settings the foreign keys were validated with are the session's again
                assert conn.execute(sa.text("SELECT current_setting('enable_hashjoin') || "
                                            "current_setting('enable_mergejoin')")).scalar() == "onon"
                conn.commit()
                notes = list(listen.connection.driver_connection.notifies(timeout=2, stop_after=1))
                assert notes, "the live feed heard of the import"
        assert (res.inserted, res.updated, res.unchanged) == (200, 30, 0)
    # the triggers switched off for the bulk insert are all on again, the keys and indexes back
    assert q(city, "SELECT count(*) FROM pg_indexes WHERE tablename IN ('events', 'event_transitions')") == \
        q(other, "SELECT count(*) FROM pg_indexes WHERE tablename IN ('events', 'event_transitions')")
    assert q(city, "SELECT count(*) FROM pg_constraint WHERE conrelid IN ('events'::regclass, "
                   "'event_transitions'::regclass)")[0][0] == \
        q(other, "SELECT count(*) FROM pg_constraint WHERE conrelid IN ('events'::regclass, "
                 "'event_transitions'::regclass)")[0][0]
    assert q(city, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O' "
                   "AND tgrelid IN ('events'::regclass, 'event_transitions'::regclass, 'event_keys'::regclass)")[0][0] == 0
    assert q(city, "SELECT contype FROM pg_constraint WHERE conrelid = 'event_keys'::regclass") == [("p",)]
    # the bulk path numbers its events itself: every key names its own event, and the store's
    # identity goes on above them
    keys = "SELECT k.source, k.external_id, e.external_id, e.source FROM event_keys k JOIN events e ON e.id = k.event_id"
    assert sorted(q(city, keys)) == sorted(q(other, keys)) and all(r[1] == r[2] for r in q(city, keys))
    assert len(q(city, keys)) == 230
    steps = ("SELECT e.external_id, e.status, t.from_status, t.to_status, t.at, t.unit_id, t.note "
             "FROM event_transitions t JOIN events e ON e.id = t.event_id")
    assert sorted(q(city, steps)) == sorted(q(other, steps))
    # first file: 30 events, 3 still 'reported'; second: 10 closed now, 200 new of which 22 'reported'
    assert len(q(city, steps)) == 27 + 10 + 178
    bulk = _derived(city)
    assert bulk == _derived(other)
    kept = q(city, "SELECT count(*) FROM events WHERE location IS NOT NULL AND reported_at >= now() - interval '8 days'")
    assert 80 < sum(r[-1] for r in bulk["heat_rollup"]) < 184  # of 184 events with coordinates, the recent ones
    assert sum(r[-1] for r in bulk["heat_rollup"]) >= kept[0][0]
    with store.engine(city).begin() as conn:
        rollup.rebuild(conn, SH)
        heat.rebuild(conn)
    rebuilt = _derived(city)
    # a rebuild counts from 8 days back to the second, the triggers keep that first hour whole
    recent = datetime.now(timezone.utc) - timedelta(days=7)
    for derived in (bulk, rebuilt):
        derived["heat_rollup"] = [r for r in derived["heat_rollup"] if r[0] >= recent]
    assert rebuilt == bulk
    with store.engine(city).begin() as conn:
        conn.execute(sa.text("INSERT INTO events (source, external_id, category_id, reported_at, status) "
                             "SELECT 'grid_app', 'after-import', min(id), now(), 'reported' FROM categories"))


def test_open311_streams_in_chunks_and_a_key_repeated_in_a_later_chunk_is_quarantined(city, tmp_path):
    from cockpit.ingest.events import build_mapping, import_events

    def req(i, key):
        return {"service_request_id": key, "status": "open", "service_code": "006", "service_name": "Pothole",
                "requested_datetime": f"2026-03-05T1{i % 10}:00:00-08:00", "lat": 51.5, "long": 11.5}

    # keys 0..9, then key 2 again (a later chunk) and key 9 again (the same chunk as its first)
    reqs = [req(i, f"K{i}") for i in range(10)] + [req(10, "K2"), req(11, "K9")]
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(reqs), encoding="utf-8")
    mapping = build_mapping(preset="open311", fmt="open311")
    lines = []
    with store.engine(city).connect() as conn:
        res = import_events(conn, path, mapping, SH, chunk_rows=4, progress=lines.append)
        conn.commit()
    assert [ln for ln in lines if ln.startswith("read ")][0].startswith("read 4 rows")  # streamed, 4 at a time
    assert (res.read, res.inserted, dict(res.quarantined)) == (12, 10, {"duplicate_in_file": 2})
    assert [r.row_no for r in q(city, "SELECT row_no FROM quarantine ORDER BY row_no")] == [11, 12]


def test_an_import_creates_its_months_and_a_key_sent_again_in_another_month_stays_one_event(city, tmp_path):
    """Monthly partitions (docs/schema.md §2a): the file's months are made before its rows go
    in (none waits in DEFAULT), and re-importing a row whose report time moved to another month
    updates that event rather than adding one."""
    df = hotline_rows(12, start=datetime(2019, 5, 30, 8, 0))  # spans May and June 2019
    path = tmp_path / "h.csv"
    df.to_csv(path, index=False)
    cli_json(str(path), "--preset", "hotline12345", url=city)
    assert q(city, "SELECT count(*) FROM internal.events_default")[0][0] == 0
    assert q(city, "SELECT count(*) FROM internal.events_201905")[0][0] > 0
    assert q(city, "SELECT count(*) FROM internal.events_201906")[0][0] > 0
    df.loc[0, "受理时间"] = "07/15/2019 09:00:00 AM"  # RX00000 now reported in July
    df.loc[0, "办结时间"] = ""
    df.loc[0, "办理状态"] = "处理中"
    df.to_csv(path, index=False)
    out = cli_json(str(path), "--preset", "hotline12345", url=city)
    assert out["inserted"] == 0 and out["updated"] == 1
    assert q(city, "SELECT count(*) FROM events WHERE external_id = 'RX00000'")[0][0] == 1
    assert q(city, "SELECT count(*) FROM internal.events_201907")[0][0] == 1
    assert q(city, "SELECT count(*) FROM event_keys")[0][0] == 12


def test_many_points_are_placed_as_one_at_a_time_would_borders_to_the_lowest_id(city, monkeypatch):
    import numpy as np

    from cockpit.ingest import events as importer

    rng = np.random.default_rng(3)
    # random points over and around the four grids, and points on their shared borders and corners
    edges = [(11.0, 50.5), (10.5, 51.0), (11.0, 51.0), (10.0, 50.0), (12.0, 52.0), (11.0, 52.0), (12.0, 50.7)]
    lon = np.r_[rng.uniform(9.5, 12.5, 5000), [x for x, _ in edges]]
    lat = np.r_[rng.uniform(49.5, 52.5, 5000), [y for _, y in edges]]
    with store.engine(city).connect() as conn:
        placer = importer.Store(conn)
        ids = dict(conn.execute(sa.text("SELECT code, id FROM units")).all())
    swept = placer.place(lon, lat)  # 5,007 points in 4 grids: the sweep
    monkeypatch.setattr(importer, "PLACE_SWEEP_POINTS_PER_LEAF", float("inf"))
    queried = placer.place(lon, lat)  # the tree, point by point
    assert (swept == queried).all()
    assert 0 < (swept < 0).sum() < 5000 and len(set(swept[swept >= 0])) == 4
    # on a shared border or corner the lowest id of the grids touching it
    lowest = {(11.0, 50.5): min(ids["G11"], ids["G21"]), (10.5, 51.0): min(ids["G11"], ids["G12"]),
              (11.0, 51.0): min(ids[g] for g in ("G11", "G12", "G21", "G22"))}
    for i, point in enumerate(edges[:3]):
        assert swept[5000 + i] == lowest[point]
    assert swept[5003] == ids["G11"] and swept[5004] == ids["G22"] and swept[5006] == ids["G21"]


BAD_KINDS = {  # a row of each kind of mistake, as a hotline export writes them (columns of BAD_MAPPING)
    "missing_external_id": {"id": ""},
    "unparsable_time": {"reported": "yesterday"},
    "no_location": {"lon": "", "lat": ""},
    "outside_units": {"lon": "0", "lat": "0"},
    "unknown_unit": {"lon": "", "lat": "", "unit": "NOPE"},
    "closed_before_reported": {"status": "done", "closed": "2026-02-01 09:00:00"},
    "unmapped_status": {"status": "挂起"},
    "unmapped_source": {"src": "fax"},
    "bad_rating": {"status": "done", "closed": "2026-03-30 12:00:00", "rating": "7"},
    "missing_category": {"cat": ""},
}


def test_a_file_with_5_percent_bad_rows_of_every_kind_loads_the_other_95_percent(city, tmp_path, capsys):
    """22,000 rows, 5 % of them bad: 100 of each kind of BAD_KINDS and 100 repeated keys, shuffled.
    The other 95 % load (20,900 rows: the bulk path), each kind is counted exactly, and the KPIs
    equal pandas' over the good rows."""
    import numpy as np

    rng = np.random.default_rng(11)
    n, per_kind = 21_900, 100
    reported = pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 28 * 86400, n), unit="s")
    closed = rng.random(n) < 0.7
    close = reported + pd.to_timedelta(rng.integers(600, 3 * 86400, n), unit="s")
    rated = closed & (rng.random(n) < 0.6)
    good = pd.DataFrame({
        "id": [f"R{i:06d}" for i in range(n)], "src": "hotline", "cat": "SR01", "unit": "",
        "reported": reported.strftime("%Y-%m-%d %H:%M:%S"),
        "closed": np.where(closed, close.strftime("%Y-%m-%d %H:%M:%S"), ""),
        "status": np.where(closed, "done", "open"),
        "rating": np.where(rated, rng.integers(1, 6, n).astype(str), ""),
        "lon": np.round(rng.uniform(10.001, 11.999, n), 6).astype(str),
        "lat": np.round(rng.uniform(50.001, 51.999, n), 6).astype(str),
    })
    rows = good.copy()
    bad_at = rng.permutation(n)[: per_kind * (len(BAD_KINDS) + 1)]
    kind_of = {}
    for k, (kind, change) in enumerate(BAD_KINDS.items()):
        at = bad_at[k * per_kind:(k + 1) * per_kind]
        for col, value in change.items():
            rows.loc[at, col] = value
        kind_of.update(dict.fromkeys(at.tolist(), kind))
    # repeated keys: a copy of a good row later in the file (the first one of a key loads)
    originals = [i for i in range(n) if i not in kind_of][:per_kind]
    rows = pd.concat([rows, good.loc[originals]], ignore_index=True)
    bad = set(kind_of)
    good_rows = good.drop(index=list(bad))
    assert len(rows) == n + per_kind and len(bad) == per_kind * len(BAD_KINDS)
    path = tmp_path / "five_percent_bad.csv"
    rows.sample(frac=1, random_state=3).to_csv(path, index=False)
    mapping = tmp_path / "m.toml"
    mapping.write_text(BAD_MAPPING, encoding="utf-8")

    out = cli_json(str(path), "--mapping", str(mapping), "--default-deadline-hours", "48", url=city)
    want = {kind: per_kind for kind in BAD_KINDS} | {"duplicate_in_file": per_kind}
    assert out["quarantined_by_reason"] == want
    assert out["read"] == n + per_kind == 22_000 and out["quarantined"] == per_kind * 11 == 0.05 * 22_000
    assert out["inserted"] == len(good_rows) == n - per_kind * 10
    assert out["unmapped"] == {"status": {"挂起": per_kind}, "source": {"fax": per_kind}}

    rep = pd.to_datetime(good_rows["reported"])
    cl = pd.to_datetime(good_rows["closed"].replace("", None))
    stars = pd.to_numeric(good_rows["rating"].replace("", None))
    deadline = rep + pd.Timedelta(hours=24)  # SR01's deadline_hours
    expected = {"volume": len(good_rows), "closed": int(cl.notna().sum()), "closed_on_time": int((cl <= deadline).sum()),
                "rated": int(stars.notna().sum()), "satisfied": int((stars >= 4).sum())}
    got = kpi(city, "C")
    assert {k: got[k] for k in expected} == expected
    # the summary as an operator reads it (the closing note quotes it)
    human = run_cli("import-events", str(path), "--mapping", str(mapping), url=city)
    assert human.returncode == 0 and "unchanged 20,900" in human.stdout, human.stdout
