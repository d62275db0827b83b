"""Weekly and monthly reports (`cockpit report`, the download button on /rank): content.py
gathers what a report says, one module per file format renders it. No Dash in here."""
from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from cockpit.config import switched_off
from cockpit.errors import BadRequest, CockpitError

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


_apart: ProcessPoolExecutor | None = None
_apart_lock = threading.Lock()


def _die_with_parent() -> None:
    """In the child: end when the web worker ends, however it ends (a worker killed by gunicorn
    runs no exit hook to stop its pool, and the child would stay, holding its memory)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the pool's own shutdown at exit is all there is
        pass


def _pool() -> ProcessPoolExecutor:
    global _apart
    with _apart_lock:
        if _apart is None:
            _apart = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_die_with_parent)
        return _apart


def render_apart(report, fmt: str) -> bytes:
    """render() in a child process, for the web: typesetting and spreadsheet writing are pure
    Python (a month's grid ranking: ~10 s as PDF, ~2 s as xlsx), which in a web worker would hold
    the interpreter lock that every other screen served by that worker needs. One child per
    process, started (spawned: the worker has threads) on first use and kept for the next;
    downloads in one worker take their turns. COCKPIT_REPORTS_APART=0 writes in the asking
    thread instead (the plain way bench/report_download.py compares to)."""
    global _apart
    if switched_off("COCKPIT_REPORTS_APART"):
        return render(report, fmt)
    pool = _pool()
    try:
        return pool.submit(render, report, fmt).result()
    except BrokenProcessPool:
        with _apart_lock:
            if _apart is pool:
                _apart = None  # the next download starts a new child
        raise CockpitError(f"the {fmt} report could not be written: its process ended (out of memory?)")


def file_name(report, fmt: str) -> str:
    return f"{report.file_stem}.{fmt}"
