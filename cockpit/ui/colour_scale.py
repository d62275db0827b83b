"""Colour classes for the map: which colour a child unit gets for the chosen KPI.

Breaks are quantiles of the children's values (at most five classes), so the map always
separates the units shown; the legend states each class's range. A figure whose higher values
are better (the rates) runs red (low, bad) to green (high, good); the others (volume, overdue
backlog) run from dark blue (little) to hot orange (much): which way is good comes from
cockpit.metrics.registry. A unit with no value (a rate without a denominator) is grey: "no
data", never 0%.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cockpit.metrics.registry import FIGURES, HIGHER
from cockpit.ui.formatting import count, percent

HEAT = ("#1b3a5c", "#1f6fb2", "#2fa7c9", "#f2c14e", "#f26b38")
GOOD = ("#d9534f", "#f0883e", "#f2c14e", "#7cc68d", "#1fa67a")
NO_DATA = "#2b3746"
MAX_CLASSES = 5

PALETTES = {f.key: GOOD if f.better == HIGHER else HEAT for f in FIGURES}
IS_RATE = {f.key for f in FIGURES if f.is_rate}


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


def scale(values: Sequence[float | None], kpi: str) -> Scale:
    """Quantile classes of the distinct known values, with the colours of the KPI's palette.

    Quantiles of distinct values (not of all values) so that ties, e.g. several units at 100%,
    do not swallow the classes below them. Breaks are actual values: a unit's class never
    depends on rounding.
    """
    distinct = sorted({v for v in values if v is not None})
    if not distinct:
        return Scale((), ())
    n = min(MAX_CLASSES, len(distinct))
    palette = PALETTES[kpi]
    if n == 1:
        return Scale((), (palette[len(palette) // 2],))
    bounds = tuple(distinct[round(k * len(distinct) / n) - 1] for k in range(1, n))
    picks = [round(i * (len(palette) - 1) / (n - 1)) for i in range(n)]
    return Scale(bounds, tuple(palette[i] for i in picks))


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
    last = len(sc.colours) - 1
    for i, colour in enumerate(sc.colours):
        a, b = edges[i], edges[i + 1]  # the class holds (a, b]; the first [low, b]
        if i == 0:
            if kpi in IS_RATE or low is None:
                text = f"≤ {fmt(b)}"
            else:
                text = fmt(b) if low >= b else f"{fmt(low)} – {fmt(b)}"
        elif kpi in IS_RATE:
            text = f"> {fmt(a)}" if i == last else f"{fmt(a)} – {fmt(b)}"
        else:  # counts: whole numbers, so (a, b] is a+1 .. b
            text = f"≥ {fmt(a + 1)}" if i == last else (fmt(b) if a + 1 == b else f"{fmt(a + 1)} – {fmt(b)}")
        out.append((colour, text))
    return out
