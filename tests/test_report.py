"""`cockpit report`: the xlsx and the PDF, opened as a reader opens them (openpyxl, pdfplumber) and
checked against `cockpit rank --json`, `cockpit kpi --json` and plain SQL over the same store.

The PDF's first page and its ranking page are rendered to tests/artifacts/ (kept by the run,
git-ignored) for a person to look at.
"""
from __future__ import annotations

import json
import re
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pdfplumber
import pytest
import sqlalchemy as sa

from cockpit.config import settings
from cockpit.metrics.ranking import parse_period
from cockpit.reports.content import LIST_CAP
from conftest import run_cli
from test_cli import assert_one_line_error

# openpyxl reads the sparklines' extension without keeping it (they are checked in the XML)
pytestmark = pytest.mark.filterwarnings("ignore:Sparkline Group extension is not supported")
ARTIFACTS = Path(__file__).parent / "artifacts"
CITY = "440300"


def last_full_month() -> str:
    today = datetime.now(settings().timezone).date()
    return f"{(today.replace(day=1) - timedelta(days=1)):%Y-%m}"


def last_full_week() -> str:
    today = datetime.now(settings().timezone).date()
    y, w, _ = (today - timedelta(days=today.weekday() + 7)).isocalendar()
    return f"{y}-W{w:02d}"


MONTH = last_full_month()


def cli_json(url: str, *args: str):
    r = run_cli(*args, "--json", url=url)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def made(demo_url, tmp_path_factory):
    """The monthly report of the streets, both formats, Chinese, made by the CLI."""
    folder = tmp_path_factory.mktemp("report")
    out = {}
    for fmt in ("xlsx", "pdf"):
        path = folder / f"月报.{fmt}"
        r = run_cli("report", "--period", MONTH, "--level", "street", "--format", fmt, "--out", str(path), url=demo_url)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(str(path)) and f"{path.stat().st_size:,} bytes" in r.stdout
        out[fmt] = path
    return out


@pytest.fixture(scope="module")
def rank_json(demo_url):
    return cli_json(demo_url, "rank", "--period", MONTH, "--level", "street")


@pytest.fixture(scope="module")
def kpi_now_and_before(demo_url, rank_json):
    now = cli_json(demo_url, "kpi", "--unit", CITY, "--from", rank_json["from"], "--to", rank_json["to"])
    prev = rank_json["previous"]
    before = cli_json(demo_url, "kpi", "--unit", CITY, "--from", prev["from"], "--to", prev["to"])
    return now, before


# -- xlsx ------------------------------------------------------------------------------------------

def test_xlsx_has_a_sheet_per_section_with_frozen_headers_and_filters(made):
    wb = openpyxl.load_workbook(made["xlsx"])
    assert wb.sheetnames == ["概览", "排名", "综合得分", "办件量趋势", "事项类别", "超期事件", "督办事件", "热点预警"]
    for name in ("排名", "综合得分", "办件量趋势", "事项类别", "超期事件", "督办事件", "热点预警"):
        ws = wb[name]
        assert ws.freeze_panes is not None, name
        header_row = openpyxl.utils.cell.coordinate_to_tuple(ws.freeze_panes)[0] - 1
        assert ws.cell(header_row, 1).fill.fgColor.rgb.endswith("1F3A5F"), name  # the header is the frozen row
    for name in ("排名", "办件量趋势", "事项类别", "超期事件", "督办事件", "热点预警"):
        assert wb[name].auto_filter.ref, name
    assert "首次发现" in [c.value for c in wb["热点预警"]["A"]]  # its contents: tests/test_report_hotspots.py
    with zipfile.ZipFile(made["xlsx"]) as z:
        names = z.namelist()
        charts = [n for n in names if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
        assert len(charts) == 3  # scores, trend, categories: native Excel charts
        ranking_xml = z.read("xl/worksheets/sheet2.xml").decode()
    assert "x14:sparklineGroup" in ranking_xml  # the 8-period trend as native sparklines


def test_xlsx_ranking_is_the_cli_ranking_with_real_number_formats(made, rank_json):
    ws = openpyxl.load_workbook(made["xlsx"])["排名"]
    header_row = openpyxl.utils.cell.coordinate_to_tuple(ws.freeze_panes)[0] - 1
    head = [c.value for c in ws[header_row]]
    col = {h: i for i, h in reversed(list(enumerate(head)))}  # first column of each header
    rows = list(ws.iter_rows(min_row=header_row + 1))
    assert len(rows) == len(rank_json["rows"]) > 1
    for cells, expected in zip(rows, rank_json["rows"]):
        assert cells[col["编码"]].value == expected["key"]
        assert cells[col["单位"]].value == expected["name"]
        if expected["rank"] is not None:
            assert cells[col["名次"]].value == expected["rank"]
        volume = cells[col["办件量"]]
        assert volume.value == expected["volume"] and isinstance(volume.value, int)
        assert volume.number_format == "#,##0"
        for label, name in (("办结率", "closure"), ("及时率", "on_time"), ("满意率", "satisfaction")):
            cell = cells[col[label]]
            assert cell.value == pytest.approx(expected[f"{name}_rate"]) if expected[f"{name}_rate"] is not None \
                else cell.value is None
            assert cell.number_format == "0.0%"
            low = cells[col[label] + 1]
            assert (low.value is None) == (expected[f"{name}_low"] is None)
            if low.value is not None:
                assert low.value == pytest.approx(expected[f"{name}_low"])
        score = cells[col["综合得分"]]
        assert score.value == expected["score"] and score.number_format == "0.00"
        change = cells[col["较上期"]]
        if expected["new"]:
            assert change.value == "新"
        else:
            assert change.value == expected["change"]
            assert change.number_format == "▲0;▼0;="
        trend = [c.value for c in cells[len(head) - len(rank_json["trend_periods"]):]]
        assert trend == expected["trend"]
    assert head[-8:] == rank_json["trend_periods"]


def test_xlsx_headline_is_cockpit_kpi(made, kpi_now_and_before):
    now, before = kpi_now_and_before
    ws = openpyxl.load_workbook(made["xlsx"])["概览"]
    table = {r[0].value: r for r in ws.iter_rows() if r[0].value in ("办件量", "办结率", "及时率", "满意率")}
    assert table["办件量"][1].value == now["volume"] and table["办件量"][2].value == before["volume"]
    assert table["办件量"][3].value == pytest.approx((now["volume"] - before["volume"]) / before["volume"])
    for label, key, k, n in (("办结率", "closure_rate", "closed", "volume"),
                             ("及时率", "on_time_rate", "closed_on_time", "closed"),
                             ("满意率", "satisfaction_rate", "satisfied", "rated")):
        row = table[label]
        assert row[1].value == pytest.approx(now[key]) and row[1].number_format == "0.0%"
        assert row[2].value == pytest.approx(before[key])
        assert row[3].value == pytest.approx((now[key] - before[key]) * 100)  # percentage points
        assert (row[4].value, row[5].value) == (now[k], now[n])


def test_xlsx_trend_and_categories_add_up_to_the_volume(made, kpi_now_and_before):
    now, _ = kpi_now_and_before
    wb = openpyxl.load_workbook(made["xlsx"])
    trend = [r for r in wb["办件量趋势"].iter_rows(min_row=2, values_only=True)]
    first, last = date.fromisoformat(now["period"]["from"]), date.fromisoformat(now["period"]["to"])
    assert [r[0].date() for r in trend] == [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert sum(r[1] for r in trend) == now["volume"] and sum(r[2] for r in trend) == now["closed"]
    cats = list(wb["事项类别"].iter_rows(min_row=2, values_only=True))
    assert sum(r[3] for r in cats) == now["volume"]
    assert [r[3] for r in cats] == sorted((r[3] for r in cats), reverse=True)
    assert all(r[5] == r[3] - r[4] for r in cats)
    assert sum(r[7] for r in cats) == pytest.approx(1)


def _overdue_at(conn, at: datetime) -> list[int]:
    """Ids of the city's events open and past their deadline at `at`, longest overdue first (plain SQL)."""
    return list(conn.execute(sa.text(
        "SELECT e.id FROM events e JOIN unit_closure c ON c.descendant_id = e.grid_id "
        "JOIN units u ON u.id = c.ancestor_id AND u.code = :city "
        "WHERE e.reported_at < :at AND e.deadline_at < :at AND (e.closed_at IS NULL OR e.closed_at > :at) "
        "ORDER BY e.deadline_at, e.id"), {"city": CITY, "at": at}).scalars())


def test_xlsx_overdue_and_supervised_lists_against_plain_sql(made, demo_engine):
    period, _ = parse_period(MONTH, settings().timezone)
    end = period.end_utc
    with demo_engine.connect() as conn:
        overdue = _overdue_at(conn, end)
        supervised = conn.execute(sa.text(
            "SELECT count(*) AS total, count(*) FILTER (WHERE closed_at <= :end) AS closed, "
            "count(*) FILTER (WHERE (closed_at IS NULL OR closed_at > :end) AND deadline_at < :end) AS overdue "
            "FROM events WHERE supervised AND reported_at >= :start AND reported_at < :end AND grid_id IS NOT NULL"),
            {"start": period.start_utc, "end": end}).one()
    assert len(overdue) > LIST_CAP and supervised.total > 0  # the demo has stuck events: the cap is exercised
    wb = openpyxl.load_workbook(made["xlsx"])
    ws = wb["超期事件"]
    assert f"共{len(overdue):,}件，列出{LIST_CAP}件" in ws["A2"].value
    listed = [r[0] for r in ws.iter_rows(min_row=5, values_only=True)]
    assert listed == overdue[:LIST_CAP]
    days = [r[8] for r in ws.iter_rows(min_row=5, values_only=True)]
    assert all(d > 0 for d in days) and days == sorted(days, reverse=True)
    ws = wb["督办事件"]
    note = ws["A2"].value
    assert f"共{supervised.total:,}件" in note
    assert f"办结 {supervised.closed:,}" in note and f"超期 {supervised.overdue:,}" in note
    assert len(list(ws.iter_rows(min_row=5))) == min(supervised.total, LIST_CAP)
    highlights = [c.value for c in wb["概览"]["A"] if str(c.value).startswith("• ")]
    assert any(f"超期未办结事件{len(overdue):,}件；本期督办事件{supervised.total:,}件" in h for h in highlights)


# -- pdf ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pdf_pages(made):
    with pdfplumber.open(made["pdf"]) as pdf:
        yield [(p, p.extract_text()) for p in pdf.pages]


def test_pdf_headline_and_ranking_match_kpi_and_rank(pdf_pages, kpi_now_and_before, rank_json):
    now, before = kpi_now_and_before
    texts = [t for _, t in pdf_pages]
    assert "滨海市城市运行月报" in texts[0] and "目录" in texts[0]
    overview = next(t for t in texts[1:] if t.startswith("全市一量三率"))
    assert f"{now['volume']:,}" in overview and f"上期 {before['volume']:,}" in overview
    for key in ("closure_rate", "on_time_rate", "satisfaction_rate"):
        assert f"{now[key] * 100:.1f}%" in overview and f"上期 {before[key] * 100:.1f}%" in overview
    ranking = next(t for t in texts if "街道排名" in t and "评分方法" in t)
    lines = ranking.splitlines()
    order = []
    for row in rank_json["rows"]:
        line = next(ln for ln in lines if row["key"] in ln)
        order.append(lines.index(line))
        assert row["name"] in line and f"{row['volume']:,}" in line
        if row["score"] is not None:
            assert f"{row['score']:.2f}" in line
        if row["rank"] is not None:
            assert line.split()[0] == str(row["rank"])
    assert order == sorted(order)  # the CLI's order
    assert any("期内生效过的预警" in t for t in texts)


def test_pdf_uses_an_embedded_cjk_font_for_every_chinese_character(pdf_pages):
    fonts = {(c["fontname"]) for p, _ in pdf_pages for c in p.chars if ord(c["text"]) >= 0x3000}
    assert fonts and all(re.search(r"WenQuanYi|Noto.*CJK|Source.?Han", f) for f in fonts), fonts


def test_pdf_pages_render_to_png_for_a_person_to_look_at(made):
    ARTIFACTS.mkdir(exist_ok=True)
    with pdfplumber.open(made["pdf"]) as pdf:
        ranking_page = next(i for i, p in enumerate(pdf.pages) if "评分方法" in (p.extract_text() or ""))
        for name, i in (("report_page1.png", 0), ("report_ranking.png", ranking_page)):
            image = pdf.pages[i].to_image(resolution=110)
            image.save(ARTIFACTS / name)
            grey = image.original.convert("L")
            dark = sum(grey.histogram()[:128])
            assert dark > 2000, name  # text and the cover's band, not a blank page
    assert pdf.pages[ranking_page].width > pdf.pages[ranking_page].height  # the wide table is landscape


# -- the command -----------------------------------------------------------------------------------

def test_weekly_english_report(demo_url, tmp_path):
    week = last_full_week()
    path = tmp_path / "weekly.pdf"
    r = run_cli("report", "--period", week, "--level", "district", "--out", str(path), "--lang", "en", url=demo_url)
    assert r.returncode == 0, r.stderr
    with pdfplumber.open(path) as pdf:
        text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "Weekly report" in text and f"Week {int(week[-2:])} of" in text
    assert "Warnings in force at some time in the period" in text  # the hotspot section (tests/test_report_hotspots.py)
    assert "District ranking" in text
    xlsx = tmp_path / "weekly.xlsx"
    r = run_cli("report", "--period", week, "--out", str(xlsx), "--lang", "en", url=demo_url)
    assert r.returncode == 0, r.stderr
    wb = openpyxl.load_workbook(xlsx)
    assert len(list(wb["Volume trend"].iter_rows(min_row=2))) == 7  # a week, day by day
    assert "Weekly report" in wb["Overview"]["A1"].value


def test_report_mistakes_are_one_line(demo_url, tmp_path):
    out = str(tmp_path / "r.pdf")
    assert_one_line_error(run_cli("report", "--period", "2026-13", "--out", out, url=demo_url), "2026-13")
    assert_one_line_error(run_cli("report", "--period", "2026-W99", "--out", out, url=demo_url), "week")
    assert_one_line_error(run_cli("report", "--period", MONTH, "--level", "town", "--out", out, url=demo_url),
                          "unknown level 'town'")
    assert_one_line_error(run_cli("report", "--period", MONTH, "--out", str(tmp_path / "none" / "r.pdf"),
                                  url=demo_url), "--out", "no such folder")
    assert_one_line_error(run_cli("report", "--period", MONTH, "--out", str(tmp_path), url=demo_url), "--out")
    assert_one_line_error(run_cli("report", "--period", MONTH, "--out", str(tmp_path / "r.docx"), url=demo_url),
                          "xlsx, pdf")
    assert_one_line_error(run_cli("report", "--period", MONTH, "--out", out, "--lang", "fr", url=demo_url), "--lang")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_departments_and_a_category_group(demo_url, demo_engine, tmp_path):
    """--by department ranks 承办部门 as `cockpit rank --by department`; --group narrows every section."""
    path = tmp_path / "dept.xlsx"
    r = run_cli("report", "--period", MONTH, "--by", "department", "--out", str(path), url=demo_url)
    assert r.returncode == 0, r.stderr
    expected = cli_json(demo_url, "rank", "--period", MONTH, "--by", "department")["rows"]
    ws = openpyxl.load_workbook(path)["排名"]
    assert [c.value for c in ws[4]][:3] == ["名次", "承办部门", "编码"]
    got = [(row[2], row[3]) for row in ws.iter_rows(min_row=5, values_only=True)]
    assert got == [(e["key"], e["volume"]) for e in expected] and len(got) > 1
    path = tmp_path / "dept.pdf"
    r = run_cli("report", "--period", MONTH, "--by", "department", "--out", str(path), url=demo_url)
    assert r.returncode == 0, r.stderr
    with pdfplumber.open(path) as pdf:
        page = next(p.extract_text() for p in pdf.pages if "评分方法" in (p.extract_text() or ""))
    assert "承办部门排名" in page and "名次 编码 承办部门 办件量 办结率" in page  # no per-10k column for departments
    lines = page.splitlines()
    for e in expected:
        line = next(ln for ln in lines if e["key"] in ln)
        assert e["name"] in line and f"{e['volume']:,}" in line

    with demo_engine.connect() as conn:
        group, name = conn.execute(sa.text("SELECT code, name FROM categories WHERE parent_id IS NULL "
                                           "ORDER BY code LIMIT 1")).one()
    path = tmp_path / "group.xlsx"
    r = run_cli("report", "--period", MONTH, "--group", group, "--source", "hotline_12345", "--out", str(path),
                url=demo_url)
    assert r.returncode == 0, r.stderr
    wb = openpyxl.load_workbook(path)
    assert any(f"{name} · 12345热线" == c.value for c in wb["概览"]["B"])
    volume = next(row[1].value for row in wb["概览"].iter_rows() if row[0].value == "办件量")
    cats = list(wb["事项类别"].iter_rows(min_row=2, values_only=True))
    assert cats and {c[1] for c in cats} == {name} and sum(c[3] for c in cats) == volume > 0
    ranked = cli_json(demo_url, "rank", "--period", MONTH, "--group", group, "--source", "hotline_12345")["rows"]
    assert [row[2] for row in wb["排名"].iter_rows(min_row=5, values_only=True)] == [e["key"] for e in ranked]
    trend = list(wb["办件量趋势"].iter_rows(min_row=2, values_only=True))
    assert sum(t[1] for t in trend) == volume


def test_a_period_still_running_says_so_and_draws_no_future_days(demo_url, tmp_path):
    today = datetime.now(settings().timezone).date()
    path = tmp_path / "now.xlsx"
    r = run_cli("report", "--period", f"{today:%Y-%m}", "--out", str(path), url=demo_url)
    assert r.returncode == 0, r.stderr
    wb = openpyxl.load_workbook(path)
    assert "本期尚未结束，数据截至" in wb["概览"]["A2"].value
    days = [row[0].date() for row in wb["办件量趋势"].iter_rows(min_row=2, values_only=True)]
    assert days == [today.replace(day=1) + timedelta(days=i) for i in range(today.day)]
    r = run_cli("report", "--period", MONTH, "--out", str(tmp_path / "done.xlsx"), url=demo_url)
    assert "尚未结束" not in openpyxl.load_workbook(tmp_path / "done.xlsx")["概览"]["A2"].value


def test_the_web_writes_reports_in_a_child_process_with_the_same_content(demo_url, demo_engine, made):
    """A download on /rank is written by reports.render_apart: in another process (a ~10 s
    typesetting must not hold the web worker's interpreter lock), the same file as the CLI's."""
    import io
    import os

    from cockpit import reports
    from cockpit.reports.content import gather

    with demo_engine.connect() as conn:
        report = gather(conn, settings().timezone, period_text=MONTH, by="unit", level="street", group=None,
                        source=None, lang="zh")
    xlsx = reports.render_apart(report, "xlsx")
    pdf = reports.render_apart(report, "pdf")
    assert reports._apart.submit(os.getpid).result() != os.getpid()

    def sheets(data):
        book = openpyxl.load_workbook(data if isinstance(data, Path) else io.BytesIO(data))
        return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in book.worksheets}

    def unstamped(text):  # the minute each was made at differs
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "…", str(text))

    ours, cli = sheets(xlsx), sheets(made["xlsx"])
    assert ours.keys() == cli.keys() and all(len(ours[k]) == len(cli[k]) for k in cli)
    diff = [(name, i, a, b) for name in cli for i, (a, b) in enumerate(zip(ours[name], cli[name]))
            if list(map(unstamped, a)) != list(map(unstamped, b))]
    assert not diff, diff[:3]
    with pdfplumber.open(io.BytesIO(pdf)) as ours, pdfplumber.open(made["pdf"]) as cli:
        assert [unstamped(p.extract_text()) for p in ours.pages] == [unstamped(p.extract_text()) for p in cli.pages]
    with pytest.raises(Exception, match="unknown report format"):
        reports.render_apart(report, "docx")


def test_the_report_process_ends_with_the_process_that_started_it(demo_engine, tmp_path):
    """A web worker killed outright (gunicorn's SIGKILL) leaves no report process behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).parent.parent)!r})\n"
        "from cockpit import reports\n"
        "if __name__ == '__main__':\n"
        "    print(reports._pool().submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the report process outlived its parent")
