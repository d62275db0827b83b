"""Colour classes for the map: which colour a child unit gets for the chosen KPI.

Breaks are quantiles of the children's values (at most five classes), so the map always
separates the units shown; the legend states each class's range. Rates run red (low, bad) to
green (high, good); volume and overdue backlog run from dark blue (little) to hot orange (much).
A unit with no value (a rate without a denominator) is grey: "no data", never 0%.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cockpit.formatting import count, percent

HEAT = ("#1b3a5c", "#1f6fb2", "#2fa7c9", "#f2c14e", "#f26b38")
GOOD = ("#d9534f", "#f0883e", "#f2c14e", "#7cc68d", "#1fa67a")
NO_DATA = "#2b3746"
MAX_CLASSES = 5

PALETTES = {"volume": HEAT, "overdue": HEAT, "closure_rate": GOOD, "on_time_rate": GOOD, "satisfaction_rate": GOOD}
IS_RATE = {"closure_rate", "on_time_rate", "satisfaction_rate"}


@dataclass(frozen=True)
class Scale:
    breaks: tuple[float, ...]  # upper bound (inclusive) of every class but the last
    colours: tuple[str, ...]  # one more than breaks, or none when there is no value at all

    def colour(self, value: float | None) -> str:
        if value is None or not self.colours:
            return NO_DATA
        for bound, colour in zip(self.breaks, self.colours):
            if value <= bound:
                return colour
        return self.colours[-1]

    def as_hideout(self) -> dict:
        return {"breaks": list(self.breaks), "colours": list(self.colours)}


def _round(value: float, kpi: str) -> float:
    return round(value, 3) if kpi in IS_RATE else float(round(value))


def scale(values: Sequence[float | None], kpi: str) -> Scale:
    """Quantile classes of the known values, with the colours of the KPI's palette."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return Scale((), ())
    distinct = sorted(set(known))
    n = min(MAX_CLASSES, len(distinct))
    palette = PALETTES[kpi]
    if n == 1:
        return Scale((), (palette[len(palette) // 2],))
    bounds: list[float] = []
    for k in range(1, n):
        q = known[min(len(known) - 1, round(k * len(known) / n) - 1)]
        b = _round(q, kpi)
        if b < distinct[-1] and (not bounds or b > bounds[-1]):
            bounds.append(b)
    # spread the palette over the classes there are, keeping both ends
    m = len(bounds) + 1
    picks = [round(i * (len(palette) - 1) / (m - 1)) for i in range(m)] if m > 1 else [len(palette) // 2]
    return Scale(tuple(bounds), tuple(palette[i] for i in picks))


def value_label(kpi: str) -> Callable[[float | None], str]:
    if kpi in IS_RATE:
        return lambda v: percent(v, 1)
    return lambda v: count(None if v is None else int(round(v)))


def legend(sc: Scale, kpi: str, low: float | None, high: float | None) -> list[tuple[str, str]]:
    """(colour, range text) per class, lowest first; low/high: the smallest and largest value."""
    if not sc.colours:
        return []
    fmt = value_label(kpi)
    if len(sc.colours) == 1:
        return [(sc.colours[0], fmt(low) if low == high else f"{fmt(low)} – {fmt(high)}")]
    edges = [low, *sc.breaks, high]
    out = []
    for i, colour in enumerate(sc.colours):
        a, b = edges[i], edges[i + 1]
        text = f"≤ {fmt(b)}" if i == 0 else (f"> {fmt(a)}" if i == len(sc.colours) - 1 else f"{fmt(a)} – {fmt(b)}")
        out.append((colour, text))
    return out
