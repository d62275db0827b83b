"""A ranking as people read it, on /rank and from `cockpit rank`: one formatting, same cells."""
from __future__ import annotations

import unicodedata

from cockpit.metrics.ranking import EMPTY, RATES, SMALL, Ranking, RankRow
from cockpit.ui.formatting import MISSING, count, rank_change, rate_interval
from cockpit.ui.i18n import t

RATE_LABELS = {"closure": "closure_rate", "on_time": "on_time_rate", "satisfaction": "satisfaction_rate"}


def rank_cell(r: RankRow, min_volume: int, lang: str) -> str:
    if r.status == SMALL:
        return t("not_ranked", lang).format(n=min_volume)
    if r.status == EMPTY:
        return t("no_events", lang)
    return str(r.rank)


def display_row(r: RankRow, min_volume: int, lang: str) -> dict:
    """The cells of one row (strings), keyed as the page's columns."""
    return {
        "rank": rank_cell(r, min_volume, lang),
        "key": r.key,
        "name": r.name,
        "volume": count(r.volume),
        "per_10k": MISSING if r.per_10k is None else f"{r.per_10k:.1f}",
        **{name: rate_interval(getattr(r, name).raw, getattr(r, name).low, getattr(r, name).high) for name in RATES},
        "score": MISSING if r.score is None else f"{r.score:.2f}",
        "change": rank_change(r.change, r.new, lang),
    }


def columns(by: str, lang: str) -> list[tuple[str, str]]:
    """(key, header) of the table, in order, for ranking by unit or department."""
    who = "rank_department" if by == "department" else "rank_unit"
    cols = [("rank", t("rank", lang)), ("key", "code" if lang == "en" else "编码"), ("name", t(who, lang)),
            ("volume", t("volume", lang))]
    if by == "unit":
        cols.append(("per_10k", t("per_10k", lang)))
    cols += [(name, t(RATE_LABELS[name], lang)) for name in RATES]
    cols += [("score", t("score", lang)), ("change", t("rank_change", lang))]
    return cols


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


def text_table(ranking: Ranking, lang: str = "zh") -> str:
    """The table as plain text for a terminal, columns aligned (CJK characters count double)."""
    cols = columns(ranking.by, lang)
    cells = [[h for _, h in cols]] + [[display_row(r, ranking.min_volume, lang)[k] for k, _ in cols]
                                      for r in ranking.rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(cols))]
    what = ranking.level if ranking.by == "unit" else "department"
    head = (f"{what} · {ranking.label} ({ranking.period.first} .. {ranking.period.last}, {ranking.period.tz.key}) · "
            f"vs {ranking.previous.first} .. {ranking.previous.last}"
            + (f" · group {ranking.group}" if ranking.group else "") + (f" · source {ranking.source}" if ranking.source else ""))
    lines = [head]
    for row in cells:
        lines.append("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
