"""How the drill-down reads its numbers: change against the previous period.

Pure text; the numbers themselves come from cockpit.metrics.unit_view.unit_view and the formatting of
counts, rates and durations from cockpit.ui.formatting.
"""
from __future__ import annotations

from dataclasses import dataclass

from cockpit.ui.formatting import MISSING
from cockpit.ui.i18n import t


@dataclass(frozen=True)
class Change:
    text: str
    direction: str  # up | down | flat | none


def rate_change(now: float | None, before: float | None, lang: str = "zh") -> Change:
    """A rate's change in percentage points: "↑ 2.1 个百分点" / "↓ 0.4 pt"."""
    if now is None or before is None:
        return Change(MISSING, "none")
    diff = round((now - before) * 100, 1)
    if diff == 0:
        return Change(f"→ 0.0 {t('point', lang)}", "flat")
    arrow = "↑" if diff > 0 else "↓"
    return Change(f"{arrow} {abs(diff):.1f} {t('point', lang)}", "up" if diff > 0 else "down")


def count_change(now: int | None, before: int | None) -> Change:
    """A count's relative change: "↑ 12.9%"; no base to compare with: "—"."""
    if now is None or not before:
        return Change(MISSING, "none")
    pct = round((now - before) / before * 100, 1)
    if pct == 0:
        return Change("→ 0.0%", "flat")
    arrow = "↑" if pct > 0 else "↓"
    return Change(f"{arrow} {abs(pct):.1f}%", "up" if pct > 0 else "down")


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
