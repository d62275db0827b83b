"""How numbers read on screen and in the CLI: one definition, so both agree."""
from __future__ import annotations

import unicodedata
from datetime import date, datetime

from cockpit.ui.i18n import t

MISSING = "—"  # a rate with no denominator: not 0%, not NaN
HOURS_FROM = 60  # minutes: below this, whole minutes
DAYS_FROM = 48 * 60  # minutes: from here on, days (a day or two still reads best in hours)


def event_time(at: datetime, tz, today: date | None = None) -> str:
    """An event's time on a live list: the clock alone for today (the city's calendar), the
    month and day too for any other day (and the year for another year), so yesterday's 23:50
    never reads as tonight's."""
    local = at.astimezone(tz)
    today = today or datetime.now(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M" if local.year == today.year else "%Y-%m-%d %H:%M")


def percent(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value * 100:.{digits}f}%"


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def duration(minutes: float | None, lang: str = "zh") -> str:
    """35分钟, 6.1小时, 2.3天 (35 min, 6.1 h, 2.3 d); no measurement: "—"."""
    if minutes is None:
        return MISSING
    if round(minutes) < HOURS_FROM:
        return t("minutes", lang).format(n=int(round(minutes)))
    if minutes < DAYS_FROM:
        return t("hours", lang).format(n=f"{minutes / 60:.1f}")
    return t("days", lang).format(n=f"{minutes / 1440:.1f}")


def rate_interval(raw: float | None, low: float | None, high: float | None) -> str:
    """A rate with its 95 % interval: 96.1% [94.0–97.5]; no denominator: "—"."""
    if raw is None:
        return MISSING
    return f"{percent(raw)} [{low * 100:.1f}–{high * 100:.1f}]"


def rank_change(change: int | None, new: bool, lang: str = "zh") -> str:
    """▲3 (moved up 3 places), ▼1, = (same place), 新/new (not ranked the period before), "" (not ranked now)."""
    if new:
        return t("rank_new", lang)
    if change is None:
        return ""
    return f"▲{change}" if change > 0 else f"▼{-change}" if change < 0 else "="


ELLIPSIS = "…"


def _cols(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def shorten(name: str, width: int) -> str:
    """`name` cut to `width` columns (a CJK character is two) with an ellipsis, for labels
    that cannot ellipsize themselves (chart ticks); the full name goes in the hover."""
    if sum(_cols(c) for c in name) <= width:
        return name
    out, used = [], _cols(ELLIPSIS)
    for c in name:
        if used + _cols(c) > width:
            break
        out.append(c)
        used += _cols(c)
    return "".join(out) + ELLIPSIS


def top_and_rest(rows: list[dict], n: int, key: str = "volume") -> tuple[list[dict], list[dict]]:
    """The n largest rows by `key` (ties by code) and the rest. A rest of one row is no rest: it
    is shown itself, since an "others" bar would hide a name in the space that name needs."""
    ranked = sorted(rows, key=lambda r: (-r[key], r.get("code", "")))
    if len(ranked) <= n + 1:
        return ranked, []
    return ranked[:n], ranked[n:]
