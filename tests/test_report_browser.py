"""The 下载月报/周报 button on /rank, in headless Chromium: the file that arrives is the report of
what the page shows (dash_duo's browser saves downloads in dash_duo.download_path)."""
from __future__ import annotations

import time
from pathlib import Path

import openpyxl
import pdfplumber
import pytest

from conftest import start
from test_rank_browser import cli_rows, marker
from test_report import ARTIFACTS, last_full_month, last_full_week

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:Sparkline Group extension is not supported")]


def arrived(dash_duo, suffix: str) -> Path:
    """The downloaded file once Chromium has finished writing it (no .crdownload left)."""
    folder = Path(dash_duo.download_path)

    def done():
        files = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        return files[0] if files and not list(folder.glob("*.crdownload")) else None

    dash_duo._wait_for(lambda d: done() is not None, timeout=90, msg=f"no {suffix} downloaded")
    path = done()
    size = -1
    while path.stat().st_size != size:  # settled
        size = path.stat().st_size
        time.sleep(0.2)
    return path


def test_monthly_xlsx_and_weekly_pdf_from_the_page(dash_duo, demo_url, use_store):
    use_store(demo_url)
    month = last_full_month()
    start(dash_duo, f"/rank?level=street&period={month}")
    dash_duo._wait_for(lambda d: marker(dash_duo).get("period") == month, timeout=25, msg="/rank did not render")
    assert dash_duo.find_element("#report-label").text == "下载月报"
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "rank-report-button.png"))
    dash_duo.find_element("#report-xlsx").click()
    path = arrived(dash_duo, ".xlsx")
    assert path.name == f"滨海市_月报_{month}_街道.xlsx"
    ws = openpyxl.load_workbook(path)["排名"]
    expected = cli_rows(demo_url, "--level", "street", "--period", month)
    assert [r[2] for r in ws.iter_rows(min_row=5, values_only=True)] == [r["key"] for r in expected]
    path.unlink()

    week = last_full_week()
    start(dash_duo, f"/rank?level=district&period={week}&lang=en")
    dash_duo._wait_for(lambda d: marker(dash_duo).get("period") == week, timeout=25, msg="/rank did not render")
    dash_duo._wait_for(lambda d: d.find_element("css selector", "#report-label").text == "Download weekly report",
                       timeout=10, msg="the button does not say weekly")
    dash_duo.find_element("#report-pdf").click()
    path = arrived(dash_duo, ".pdf")
    with pdfplumber.open(path) as pdf:
        text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "Weekly report" in text and "District ranking" in text and f"Week {int(week[-2:])} of" in text
    assert dash_duo.find_element("#report-status").text == ""
    assert dash_duo.get_logs() == []
