"""`cockpit quarantine list|export|retry` against real PostGIS: rows import-events rejected are
listed, exported in the --rejects shape, and loaded by a retry with a fixed mapping."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from cockpit import store
from conftest import box_city, run_cli

# two districts of one grid each (1°×1° squares)
UNITS = [
    ("C", "河港市", "city", None, (10, 50, 12, 51)),
    ("D1", "北区", "district", "C", (10, 50, 11, 51)),
    ("D2", "南区", "district", "C", (11, 50, 12, 51)),
    ("G1", "北区网格", "grid", "D1", (10, 50, 11, 51)),
    ("G2", "南区网格", "grid", "D2", (11, 50, 12, 51)),
]

MAPPING = """
[columns]
external_id = "编号"
category = "类别"
reported_at = "受理时间"
status = "状态"
lon = "经度"
lat = "纬度"
[values.status]
"处理中" = "handling"
[options]
source = "hotline_12345"
"""

ROWS = [  # 编号, 状态, 经度, 纬度
    ("A1", "处理中", "10.5", "50.5"),   # loads
    ("A2", "挂起", "11.5", "50.5"),     # unmapped status; loads once 挂起 is mapped
    ("A3", "挂起", "30.0", "30.0"),     # unmapped status, and outside every unit behind it
    ("A1", "处理中", "11.5", "50.5"),   # a later duplicate of A1
]


@pytest.fixture
def city(databases) -> str:
    url = databases.create("quarantine")
    box_city(url, UNITS)
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name, deadline_hours) VALUES ('SR01', '暴露垃圾', 24)"))
    return url


@pytest.fixture
def imported(city, tmp_path):
    """The file imported: A1 loaded, A2 and A3 quarantined for 挂起, the second A1 as a duplicate."""
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    df = pd.DataFrame([{"编号": e, "类别": "SR01", "受理时间": f"2026-03-{5 + i:02d}T10:00:00+08:00", "状态": s,
                        "经度": x, "纬度": y} for i, (e, s, x, y) in enumerate(ROWS)])
    path = tmp_path / "工单.csv"
    df.to_csv(path, index=False)
    r = run_cli("import-events", str(path), "--mapping", str(mapping), "--json", url=city)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inserted"] == 1
    assert out["quarantined_by_reason"] == {"unmapped_status": 2, "duplicate_in_file": 1}
    return city, out["import_id"], mapping, df


def quarantined(url):
    with store.engine(url).connect() as conn:
        return {(r.raw["编号"], r.row_no): (r.reason, r.detail) for r in conn.execute(sa.text(
            "SELECT raw, row_no, reason, detail FROM quarantine"))}


def volume(url):
    r = run_cli("kpi", "--unit", "C", "--from", "2026-03-01", "--to", "2026-03-31", "--json", url=url)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["volume"]


def test_list_shows_counts_per_import_and_reason_and_the_rows(imported):
    url, imp, _, _ = imported
    r = run_cli("quarantine", "list", url=url)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^import {imp}\s+\S*工单\.csv", r.stdout, re.M)
    assert re.search(r"^\s+unmapped_status\s+2\b", r.stdout, re.M)
    assert re.search(r"^\s+duplicate_in_file\s+1\b", r.stdout, re.M)
    assert "total 3 rows" in r.stdout

    r = run_cli("quarantine", "list", "--import", str(imp), "--reason", "unmapped_status", url=url)
    assert r.returncode == 0, r.stderr
    row_lines = [line for line in r.stdout.splitlines() if line.lstrip().startswith("row ")]
    assert len(row_lines) == 2
    # jsonb keeps its own key order, so the cells are looked for one by one
    assert re.search(r"row\s+2\s+unmapped_status\s+\{", row_lines[0])
    assert '"编号": "A2"' in row_lines[0] and '"状态": "挂起"' in row_lines[0]
    assert re.search(r"row\s+3\s+unmapped_status\s+\{", row_lines[1]) and '"编号": "A3"' in row_lines[1]
    assert "duplicate_in_file" not in r.stdout


def test_export_writes_the_raw_rows_in_the_rejects_shape(imported, tmp_path):
    url, imp, _, df = imported
    out = tmp_path / "q.csv"
    r = run_cli("quarantine", "export", str(out), "--import", str(imp), url=url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 quarantined rows written")
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    # jsonb keeps its own key order (as --rejects does): the file's columns, in some order
    assert list(got.columns[:2]) == ["row", "reason"] and sorted(got.columns[2:]) == sorted(df.columns)
    assert got["row"].tolist() == ["2", "3", "4"]
    assert got["reason"].tolist() == ["unmapped_status", "unmapped_status", "duplicate_in_file"]
    # the cells are the file's own, row for row
    pd.testing.assert_frame_equal(got[list(df.columns)], df.iloc[1:].reset_index(drop=True))

    # the same as --rejects wrote at import time
    rejects = tmp_path / "rejects.csv"
    src = tmp_path / "again.csv"
    df.to_csv(src, index=False)
    r2 = run_cli("import-events", str(src), "--mapping", str(imported[2]), "--rejects", str(rejects), url=url)
    assert r2.returncode == 0, r2.stderr
    assert pd.read_csv(rejects, dtype=str, keep_default_na=False).equals(got)

    # across imports an import column leads, since row numbers repeat; --reason narrows
    r = run_cli("quarantine", "export", str(out), "--reason", "unmapped_status", url=url)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns[:3]) == ["import", "row", "reason"] and sorted(got.columns[3:]) == sorted(df.columns)
    assert len(got) == 4 and got["import"].nunique() == 2 and set(got["reason"]) == {"unmapped_status"}


def test_retry_with_the_fixed_mapping_loads_what_it_can_and_keeps_the_rest(imported):
    url, imp, mapping, _ = imported
    assert volume(url) == 1
    r = run_cli("quarantine", "retry", "--import", str(imp), "--mapping", str(mapping),
                "--value", "status:挂起=handling", url=url)
    assert r.returncode == 0, r.stderr
    assert re.search(r"read 2, inserted 1, updated 0, unchanged 0, quarantined 1", r.stdout)
    assert "quarantined outside_units: 1" in r.stdout
    assert "left the quarantine: 1; still quarantined (under their own imports): 1" in r.stdout

    with store.engine(url).connect() as conn:
        ev = conn.execute(sa.text("SELECT e.status, u.code FROM events e JOIN units u ON u.id = e.grid_id "
                                  "WHERE external_id = 'A2'")).one()
        retry_imp = conn.execute(sa.text("SELECT file_name, format, inserted, summary FROM imports "
                                         "WHERE id <> :i"), {"i": imp}).one()
    assert tuple(ev) == ("handling", "G2")
    assert retry_imp.file_name == f"quarantine retry of import {imp}" and retry_imp.format == "quarantine"
    assert retry_imp.inserted == 1 and retry_imp.summary["left_quarantine"] == 1
    left = quarantined(url)
    # A2 left; A3 stays at its own row with this attempt's reason; the duplicate was not retried
    assert set(left) == {("A3", 3), ("A1", 4)}
    assert left[("A3", 3)] == ("outside_units", f"still rejected by retry import {retry_imp.summary['import_id']}")
    assert left[("A1", 4)][0] == "duplicate_in_file"
    assert volume(url) == 2

    # a retry that still loads nothing: one line, exit 2, the row kept
    r = run_cli("quarantine", "retry", "--mapping", str(mapping), "--value", "status:挂起=handling", url=url)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith("cockpit: nothing could be")
    assert set(quarantined(url)) == {("A3", 3), ("A1", 4)}
    assert volume(url) == 2


def test_retry_of_the_same_mapping_changes_nothing_and_keeps_the_reason(imported):
    url, imp, mapping, _ = imported
    r = run_cli("quarantine", "retry", "--reason", "unmapped_status", "--mapping", str(mapping), url=url)
    assert r.returncode == 2, r.stdout
    assert "quarantined unmapped_status: 2" in r.stdout and "unmapped status '挂起': 2 rows" in r.stdout
    assert {k: v[0] for k, v in quarantined(url).items()} == {
        ("A2", 2): "unmapped_status", ("A3", 3): "unmapped_status", ("A1", 4): "duplicate_in_file"}
    assert volume(url) == 1


def test_retry_across_imports_loads_each_import_as_its_files_were(imported, tmp_path):
    url, imp, mapping, df = imported
    again = tmp_path / "次日.csv"  # the next day's export repeats the rows: same keys, same row numbers
    df.to_csv(again, index=False)
    r = run_cli("import-events", str(again), "--mapping", str(mapping), url=url)
    assert r.returncode == 0, r.stderr
    with store.engine(url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(DISTINCT import_id), count(*) FROM quarantine")).one() == (2, 6)

    r = run_cli("quarantine", "retry", "--mapping", str(mapping), "--value", "status:挂起=handling", "--json",
                url=url)
    assert r.returncode == 0, r.stderr
    first, second = json.loads(r.stdout)
    # A2 of the first file is inserted; the second file's A2 is the same event again, not a duplicate
    assert (first["read"], first["inserted"], first["left_quarantine"], first["still_quarantined"]) == (2, 1, 1, 1)
    assert (second["read"], second["unchanged"], second["left_quarantine"], second["still_quarantined"]) == (2, 1, 1, 1)
    assert first["file"] == f"quarantine retry of import {imp}"
    with store.engine(url).connect() as conn:
        kept = conn.execute(sa.text("SELECT import_id, row_no, reason FROM quarantine ORDER BY 1, 2")).all()
    assert [tuple(k) for k in kept] == [(imp, 3, "outside_units"), (imp, 4, "duplicate_in_file"),
                                        (imp + 1, 3, "outside_units"), (imp + 1, 4, "duplicate_in_file")]
    assert volume(url) == 2


def test_a_duplicate_is_retried_only_when_asked_and_then_updates_the_event(imported):
    url, imp, mapping, _ = imported
    r = run_cli("quarantine", "retry", "--reason", "duplicate_in_file", "--mapping", str(mapping), "--json", url=url)
    assert r.returncode == 0, r.stderr
    (out,) = json.loads(r.stdout)
    assert (out["read"], out["updated"], out["left_quarantine"]) == (1, 1, 1)
    with store.engine(url).connect() as conn:
        (rep,) = conn.execute(sa.text("SELECT reported_at FROM events WHERE external_id = 'A1'")).one()
    assert rep.isoformat() == "2026-03-08T02:00:00+00:00"  # the later row's report time
    assert {k: v[0] for k, v in quarantined(url).items()} == {("A2", 2): "unmapped_status",
                                                              ("A3", 3): "unmapped_status"}


@pytest.mark.parametrize("args, says", [
    (("list", "--reason", "bogus"), "--reason 'bogus' is not a quarantine reason"),
    (("list", "--import", "999"), "--import 999: no such import"),
    (("export",), "quarantine export needs the CSV file"),
    (("list", "x.csv"), "quarantine list takes no file"),
    (("list", "--value", "status:挂起=handling"), "--value is for quarantine retry"),
    (("retry", "--map", "external_id"), "--map 'external_id': write FIELD=COLUMN"),
    (("retry", "--reason", "unreadable_row", "--map", "external_id=a", "--map", "reported_at=b",
      "--map", "category=c", "--source", "iot"), "not retried"),
    (("retry", "--preset", "open311", "--tz", "Mars/Base"), "--tz 'Mars/Base' is not an IANA time zone"),
    (("list", "--import", "1", "--limit", "0"), "--limit must be 1 or more"),
])
def test_bad_flags_are_one_line_and_exit_2(imported, args, says):
    url = imported[0]
    r = run_cli("quarantine", *args, url=url)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("cockpit: ") and says in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert len(quarantined(url)) == 3
