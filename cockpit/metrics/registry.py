"""The figures the screens show, each named and defined once: 一量三率 and the open backlog.

Every list of cards, rates, map colourings, palettes and labels is derived from FIGURES, so a
figure added here appears everywhere at once. Pure data (no SQL, no Dash): the formulas behind
the counts are in cockpit.metrics.kpi, the colours in cockpit.ui.colour_scale.
"""
from __future__ import annotations

from dataclasses import dataclass

COUNT, RATE = "count", "rate"
HIGHER, LOWER = "higher", "lower"  # which way a figure is good; None: neither (volume is demand, not merit)


@dataclass(frozen=True)
class Figure:
    key: str  # as in unit_view()["kpi"], live_view's numbers and `cockpit kpi --json`
    kind: str  # COUNT or RATE
    better: str | None
    numerator: str | None = None  # rates: count names of cockpit.metrics.kpi.CONDITIONS
    denominator: str | None = None
    on_map: bool = True  # offered as a colouring of the map
    of_period: bool = True  # False: the backlog as it is now, whatever the period
    label: str = ""  # its key in cockpit.ui.i18n.LABELS; default: the figure's key

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.key)

    @property
    def is_rate(self) -> bool:
        return self.kind == RATE


FIGURES: tuple[Figure, ...] = (
    Figure("volume", COUNT, None),
    Figure("closure_rate", RATE, HIGHER, "closed", "volume"),
    Figure("on_time_rate", RATE, HIGHER, "closed_on_time", "closed"),
    Figure("satisfaction_rate", RATE, HIGHER, "satisfied", "rated"),
    Figure("open", COUNT, LOWER, on_map=False, of_period=False),
    Figure("overdue", COUNT, LOWER, of_period=False),
)

FIGURE = {f.key: f for f in FIGURES}
CARD_KEYS = tuple(f.key for f in FIGURES)  # the cards of the drill-down and of the wall, in order
RATES = tuple(f.key for f in FIGURES if f.is_rate)
MAP_CHOICES = tuple(f.key for f in FIGURES if f.on_map)
PERIOD_FIGURES = tuple(f.key for f in FIGURES if f.of_period)  # compared with the previous period
FRACTIONS = {f.key: (f.numerator, f.denominator) for f in FIGURES if f.is_rate}
