"""The report's hotspot section: warnings planted straight into the `warnings` table of a small
demo store (independent of detection), the report gathered and rendered, and both files opened
as a reader opens them (openpyxl, pdfplumber) and checked against the table.

The section lists the warnings in force at some time in the period: first seen before its end
and last seen at or after its start.
"""
from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone

import openpyxl
import pdfplumber
import pytest
import sqlalchemy as sa

from cockpit import store
from cockpit.config import settings
from cockpit.demo.load import load_demo
from cockpit.hotspots import store as hotspots
from cockpit.reports import content, render
from cockpit.ui.i18n import t

# openpyxl reads the sparklines' extension without keeping it
pytestmark = pytest.mark.filterwarnings("ignore:Sparkline Group extension is not supported")

CITY = {"seed": 5, "grids": 60, "events": 4000, "days": 60}
INSERT = sa.text("""
    INSERT INTO warnings (kind, unit_id, category_id, "window", window_start, window_end, observed, expected,
                          statistic, p_value, q_value, detail, key, first_seen, last_seen, state, acknowledged_by)
    VALUES (:kind, :unit, :cat, :window, :first, :last, :observed, :expected, :stat, :p, :q,
            CAST(:detail AS jsonb), :key, :first, :last, :state, :by)
    RETURNING id""")


@pytest.fixture(scope="module")
def planted(databases):
    """A 14-day period ending yesterday (local) and five warnings around it: three in force
    during it (one first seen before it), one over before it starts, one first seen after it."""
    url = databases.create("report_hotspots")
    tz = settings().timezone
    load_demo(store.engine(url), now=datetime.now(timezone.utc), progress=lambda _: None, **CITY)
    today = datetime.now(tz).date()
    first, last = today - timedelta(days=14), today - timedelta(days=1)
    start = datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(timezone.utc)
    with store.engine(url).begin() as conn:
        grids = conn.execute(sa.text("SELECT id FROM units WHERE level = 'grid' ORDER BY code LIMIT 5")).scalars().all()
        # a category in a group, and a category of another group
        cat = conn.execute(sa.text(
            "SELECT id, parent_id FROM categories WHERE parent_id IS NOT NULL ORDER BY parent_id, id LIMIT 1")).one()
        other = conn.execute(sa.text("SELECT id FROM categories WHERE parent_id IS NOT NULL AND parent_id <> :g "
                                     "ORDER BY id LIMIT 1"), {"g": cat.parent_id}).scalar()
        group_code = conn.execute(sa.text("SELECT code FROM categories WHERE id = :g"), {"g": cat.parent_id}).scalar()

        def add(name, kind, unit, first_h, last_h, cat=None, observed=23, expected=4.1, stat=5.6, p=0.0021,
                q=0.004, state="new", by=None, detail=None):
            return conn.execute(INSERT, {
                "kind": kind, "unit": unit, "cat": cat, "window": "24h" if kind == "surge" else "14d",
                "first": start + timedelta(hours=first_h, minutes=7),
                "last": start + timedelta(hours=last_h, minutes=7),
                "observed": observed, "expected": expected, "stat": stat, "p": p, "q": q,
                "detail": json.dumps(detail or {}), "key": f"test:{name}", "state": state, "by": by}).scalar()

        ids = {
            "surge": add("surge", "surge", grids[0], 48, 72, state="expired",
                         detail={"top_category_id": other, "top_category_name": "x", "baseline_weeks": 4}),
            "earlier": add("earlier", "recurrence", grids[1], -120, 30, cat=cat.id, observed=5, expected=0.02,
                           state="acknowledged", by="王五", detail={"radius_m": 30, "event_ids": []}),
            "cluster": add("cluster", "cluster", grids[2], 120, 150, observed=140, expected=None, p=None, q=None,
                           stat=None, state="closed", by="赵六", detail={"units": grids[2:4]}),
            "over_before": add("over_before", "surge", grids[3], -240, -72, state="expired"),
            "after": add("after", "surge", grids[4], 14 * 24 + 2, 14 * 24 + 3),
        }
    return {"url": url, "tz": tz, "period": f"{first}..{last}", "ids": ids, "group": group_code,
            "start": start, "end": start + timedelta(days=14)}


def gather(p, period=None, group=None, lang="zh"):
    with store.engine(p["url"]).connect() as conn:
        return content.gather(conn, p["tz"], period_text=period or p["period"], group=group, lang=lang)


def in_table(p, start, end) -> list[tuple]:
    """(id, kind) of the warnings in force in [start, end), newest first, by plain SQL."""
    with store.engine(p["url"]).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT id, kind FROM warnings WHERE first_seen < :e AND last_seen >= :s "
            "ORDER BY first_seen DESC, id DESC"),
            {"s": start, "e": end})]


def test_the_period_lists_its_warnings_newest_first_and_counts_them_by_kind(planted):
    r = gather(planted)
    ids = planted["ids"]
    assert [w.id for w in r.hotspots.rows] == [ids["cluster"], ids["surge"], ids["earlier"]]
    assert [(w.id, w.kind) for w in r.hotspots.rows] == in_table(planted, planted["start"], planted["end"])
    assert r.hotspots.by_kind == {"surge": 1, "recurrence": 1, "cluster": 1} and r.hotspots.total == 3
    assert {ids["over_before"], ids["after"]}.isdisjoint(w.id for w in r.hotspots.rows)
    assert all(w.first_seen.tzinfo == planted["tz"] for w in r.hotspots.rows)  # local, as the event lists


def test_a_group_filter_keeps_the_warnings_of_its_categories(planted):
    r = gather(planted, group=planted["group"])
    # the recurrence is of a category in the group; the surge's top category is in another; a cluster has none
    assert [w.id for w in r.hotspots.rows] == [planted["ids"]["earlier"]]
    assert r.hotspots.by_kind == {"surge": 0, "recurrence": 1, "cluster": 0}


def test_the_list_is_capped_and_says_its_total(planted):
    with store.engine(planted["url"]).connect() as conn:
        got = hotspots.of_period(conn, planted["start"], planted["end"], limit=2)
    assert got.total == 3 and [w.id for w in got.rows] == [planted["ids"]["cluster"], planted["ids"]["surge"]]
    r = gather(planted)
    r.hotspots = got
    assert t("report_warnings_shown", "zh").format(total=3, shown=2) in r.hotspots_note


def _hotspot_sheet(data: bytes):
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb[t("report_hotspots", "zh")]
    head = next(row for row in range(1, ws.max_row + 1) if ws.cell(row, 1).value == t("report_first_seen", "zh"))
    counts = {ws.cell(row, 1).value: ws.cell(row, 2).value for row in range(5, head - 1)}
    return ws, head, counts


def test_xlsx_sheet_lists_the_warnings_with_number_formats(planted):
    r = gather(planted)
    ws, head, counts = _hotspot_sheet(render(r, "xlsx"))
    assert counts == {t("warning_kind_surge", "zh"): 1, t("warning_kind_recurrence", "zh"): 1,
                      t("warning_kind_cluster", "zh"): 1}
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=head + 1)]
    with store.engine(planted["url"]).connect() as conn:
        table = {w.id: w for w in (hotspots.get(conn, i) for i in planted["ids"].values())}
    want = [table[i] for i, _ in in_table(planted, planted["start"], planted["end"])]
    assert len(rows) == len(want) == 3
    for row, w in zip(rows, want):
        first = w.first_seen.astimezone(planted["tz"]).replace(tzinfo=None)
        assert row[0] == first.replace(second=0, microsecond=0) or abs((row[0] - first).total_seconds()) < 1
        assert row[2] == t(f"warning_kind_{w.kind}", "zh") and row[4] == w.unit_code
        assert row[6] == w.explain("zh") and row[7] == w.observed
        assert row[8] == w.expected and row[9] == t(f"warning_state_{w.state}", "zh")
        assert row[10] == w.acknowledged_by
    cells = list(ws.iter_rows(min_row=head + 1, max_row=head + 1))[0]
    assert cells[0].number_format == "yyyy-mm-dd hh:mm" and cells[7].number_format == "#,##0"
    assert cells[8].value is None  # the cluster, newest, has no expected count: an empty cell, not 0
    assert "—" in rows[0][6]  # ... and its explanation says so
    assert ws.freeze_panes == f"A{head + 1}" and ws.auto_filter.ref.startswith(f"A{head}")


def test_pdf_table_lists_the_period_warnings_and_none_outside_it(planted):
    r = gather(planted)
    with pdfplumber.open(io.BytesIO(render(r, "pdf"))) as pdf:
        pages = [p for p in pdf.pages if t("report_hotspots_note", "zh")[:8] in (p.extract_text() or "")]
        assert pages, "no hotspot section"
        text = "\n".join(p.extract_text() for p in pages)
    stamps = [r.stamp(w.first_seen) for w in r.hotspots.rows]
    # a table row starts with its first-seen and last-seen times
    firsts = [line[:16] for line in text.splitlines() if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d \d{4}-", line)]
    assert firsts == stamps
    for w in r.hotspots.rows:
        assert w.explain("zh") in text
    with store.engine(planted["url"]).connect() as conn:
        out = [hotspots.get(conn, planted["ids"][k]) for k in ("over_before", "after")]
    for w in out:
        assert r.stamp(w.first_seen.astimezone(planted["tz"])) not in text
    assert "王五" in text and "赵六" in text
    flat = text.replace("\n", "")
    assert all(f"{t('warning_kind_' + k, 'zh')} 1" in flat for k in ("surge", "recurrence", "cluster"))


def test_a_period_without_warnings_says_none_in_both_files(planted):
    start = planted["start"].astimezone(planted["tz"]).date()
    period = f"{start - timedelta(days=40)}..{start - timedelta(days=30)}"
    r = gather(planted, period=period, lang="en")
    assert r.hotspots.total == 0 and r.hotspots.rows == []
    ws = openpyxl.load_workbook(io.BytesIO(render(r, "xlsx")))["Hotspot warnings"]
    head = next(row for row in range(1, ws.max_row + 1) if ws.cell(row, 1).value == "First seen")
    assert ws.cell(head + 1, 1).value == "none"
    with pdfplumber.open(io.BytesIO(render(r, "pdf"))) as pdf:
        text = "\n".join(p.extract_text() or "" for p in pdf.pages)
    section = text[text.rindex("Hotspot warnings"):]
    assert "none" in section and "Surge 0" in section.replace("\n", " ")
