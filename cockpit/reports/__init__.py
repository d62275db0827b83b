"""Weekly and monthly reports (`cockpit report`, the download button on /rank): content.py
gathers what a report says, one module per file format renders it. No Dash in here."""
from __future__ import annotations

from cockpit.errors import BadRequest

FORMATS = ("xlsx", "pdf")
MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "pdf": "application/pdf"}


def render(report, fmt: str) -> bytes:
    """The report as a file of the given format, as bytes."""
    if fmt == "xlsx":
        from cockpit.reports import xlsx

        return xlsx.render(report)
    if fmt == "pdf":
        from cockpit.reports import pdf

        return pdf.render(report)
    raise BadRequest(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def file_name(report, fmt: str) -> str:
    return f"{report.file_stem}.{fmt}"
