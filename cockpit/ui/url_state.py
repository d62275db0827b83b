"""The drill-down's state as it lives in the page URL, and back.

    /?unit=440303-004&period=custom&from=2026-10-01&to=2026-10-31&kpi=closure_rate&group=SR&source=iot

unit     a unit code; absent: the root (the city)
period   one of cockpit.metrics.unit_view.PERIOD_KINDS (default 30d)
from/to  only with period=custom: first and last day, both included (as the date picker shows them)
kpi      what colours the map, one of cockpit.metrics.unit_view.KPI_CHOICES (default volume)
group    a category group code; source: one of cockpit.store.schema.SOURCES (渠道); lang: zh or en
channel  read as source (links made before the two names became one); never written

assets/cockpit_state.js reads and writes the same parameters in the browser (its ``parse`` and
``serialise`` mirror the ones here); the server renders from this module's ``parse``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

from cockpit.metrics.unit_view import KPI_CHOICES, PERIOD_KINDS
from cockpit.ui.i18n import LANGS

DEFAULT_PERIOD = "30d"
DEFAULT_KPI = "volume"


@dataclass(frozen=True)
class ViewState:
    unit: str | None = None
    period: str = DEFAULT_PERIOD
    first: str | None = None  # custom only, inclusive
    last: str | None = None  # custom only, inclusive
    kpi: str = DEFAULT_KPI
    group: str | None = None
    source: str | None = None
    lang: str | None = None

    def at(self, unit: str | None) -> ViewState:
        return replace(self, unit=unit)


def parse(search: str | None) -> ViewState:
    """A URL query string (with or without its '?') as a ViewState; unknown values fall back."""
    raw = parse_qs((search or "").lstrip("?"), keep_blank_values=False)

    def one(name: str) -> str | None:
        values = raw.get(name)
        return values[0].strip() or None if values else None

    period = one("period")
    period = period if period in PERIOD_KINDS else DEFAULT_PERIOD
    kpi = one("kpi")
    lang = one("lang")
    return ViewState(
        unit=one("unit"),
        period=period,
        first=one("from") if period == "custom" else None,
        last=one("to") if period == "custom" else None,
        kpi=kpi if kpi in KPI_CHOICES else DEFAULT_KPI,
        group=one("group"),
        source=one("source") or one("channel"),
        lang=lang if lang in LANGS else None,
    )


# The wall's rotation (?rotate=N, COCKPIT_WALL_ROTATE), in seconds; 0 stops it. Each turn asks
# the server for the new focus, so ?rotate=1 made a tab fire requests many times a second: a turn
# takes at least MIN_ROTATE seconds, and at most a day (longer is no rotation in practice).
MIN_ROTATE, MAX_ROTATE = 5, 24 * 3600


def rotation(raw: str | int | None, default: int) -> int:
    """Seconds per turn of the wall from ?rotate= (ASCII digits only: "²" is a digit to
    str.isdigit, not to int), else `default`; always 0 or within MIN_ROTATE..MAX_ROTATE."""
    text = str(raw if raw is not None else "").strip()
    seconds = int(text) if text.isascii() and text.isdigit() else default
    return 0 if seconds <= 0 else min(max(seconds, MIN_ROTATE), MAX_ROTATE)


def serialise(state: ViewState) -> str:
    """The query string of a state, parameters always in the same order."""
    pairs = [("unit", state.unit), ("period", state.period)]
    if state.period == "custom":
        pairs += [("from", state.first), ("to", state.last)]
    pairs += [("kpi", state.kpi), ("group", state.group), ("source", state.source), ("lang", state.lang)]
    return "?" + urlencode([(k, v) for k, v in pairs if v])


def href(state: ViewState, path: str = "/") -> str:
    return path + serialise(state)


# -- the rankings page (/rank) -------------------------------------------------------------------
#
#     /rank?by=unit&level=street&period=2026-10&group=SR&source=iot&lang=en
#
# by      unit (default) or department; level: a level name (default: the level below the city)
# period  as cockpit.metrics.ranking.parse_period reads it: 2026-10, 2026-W44, 2026-Q4, a..b
#         (default: last month); group, source, lang as on "/"

RANK_BY = ("unit", "department")


@dataclass(frozen=True)
class RankState:
    by: str = "unit"
    level: str | None = None
    period: str | None = None
    group: str | None = None
    source: str | None = None
    lang: str | None = None


def parse_rank(search: str | None) -> RankState:
    raw = parse_qs((search or "").lstrip("?"), keep_blank_values=False)

    def one(name: str) -> str | None:
        values = raw.get(name)
        return values[0].strip() or None if values else None

    by, lang = one("by"), one("lang")
    return RankState(by=by if by in RANK_BY else "unit", level=one("level"), period=one("period"),
                     group=one("group"), source=one("source") or one("channel"),
                     lang=lang if lang in LANGS else None)


def serialise_rank(state: RankState) -> str:
    pairs = [("by", state.by if state.by != "unit" else None), ("level", state.level if state.by == "unit" else None),
             ("period", state.period), ("group", state.group), ("source", state.source), ("lang", state.lang)]
    return "?" + urlencode([(k, v) for k, v in pairs if v])


def drilldown_href(code: str, first: str, last: str, group: str | None, source: str | None,
                   lang: str | None) -> str:
    """The drill-down of a unit for the days first..last (both included): what a ranking row opens."""
    return href(ViewState(unit=code, period="custom", first=first, last=last, group=group, source=source, lang=lang))
