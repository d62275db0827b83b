"""How numbers read on screen and in the CLI: one definition, so both agree."""
from __future__ import annotations

from cockpit.ui.i18n import t

MISSING = "—"  # a rate with no denominator: not 0%, not NaN
HOURS_FROM = 60  # minutes: below this, whole minutes
DAYS_FROM = 48 * 60  # minutes: from here on, days (a day or two still reads best in hours)


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
