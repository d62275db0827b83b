"""What the first screen shows, computed in the core so callbacks stay free of SQL."""
from __future__ import annotations

from cockpit import store
from cockpit.config import settings
from cockpit.formatting import count, percent
from cockpit.geo import children_features
from cockpit.i18n import t
from cockpit.kpi import DEFAULT_DAYS, Period, root_unit, unit_counts


def city_overview(lang: str = "zh") -> dict:
    """The city's 一量三率 for the last 30 local days and its children's polygons."""
    period = Period.last_days(DEFAULT_DAYS, settings().timezone)
    with store.connect() as conn:
        city = root_unit(conn)
        counts = unit_counts(conn, city.id, period)
        children = children_features(conn, city.id)
    for f in children["features"]:
        f["properties"]["tooltip"] = f["properties"]["name"]
    return {
        "values": [count(counts.volume), percent(counts.closure_rate), percent(counts.on_time_rate),
                   percent(counts.satisfaction_rate)],
        "details": [
            f"{t('last_30_days', lang)} · {period.first:%m-%d}–{period.last:%m-%d}",
            f"{counts.closed:,} / {counts.volume:,}",
            f"{counts.closed_on_time:,} / {counts.closed:,}",
            f"{counts.satisfied:,} / {counts.rated:,}",
        ],
        "scope": f"{city.name} · {t('last_30_days', lang)}",
        "districts": children,
    }
