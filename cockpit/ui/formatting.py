"""How numbers read on screen and in the CLI: one definition, so both agree."""
from __future__ import annotations

MISSING = "—"  # a rate with no denominator: not 0%, not NaN


def percent(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value * 100:.{digits}f}%"


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"
