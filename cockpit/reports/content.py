"""What a weekly or monthly report says, as plain data: every format (xlsx, pdf) renders this.

The numbers come from the places the screens read them, so a report never disagrees with
them: the city's 一量三率 and its daily trend from the drill-down's unit_view (the formulas of
cockpit.metrics.kpi, the same numbers as `cockpit kpi`), the league table from
cockpit.metrics.ranking (the same as `cockpit rank` and /rank). What only a report asks —
categories against the previous period, the overdue backlog at the period's end, the
supervised (督办) events — is read here from the events table; the period's hotspot warnings
from cockpit.hotspots.store (those in force at some time in the period).

"At the period's end" means the end of its last day, or now for a period still running.
Lists of events are capped (LIST_CAP) and always carry their total.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from cockpit.hotspots import store as hotspot_store
from cockpit.metrics import ranking
from cockpit.metrics.kpi import Period, unit_by_code
from cockpit.metrics.registry import FIGURE, PERIOD_FIGURES
from cockpit.metrics.unit_view import Filters, _event_filters, group_id, unit_view
from cockpit.store.schema import categories, departments, events, unit_closure, units
from cockpit.ui.formatting import MISSING, percent
from cockpit.ui.i18n import t

LIST_CAP = 50  # events listed per list (overdue, supervised) and warnings listed; the totals count them all
TOP_CATEGORIES = 10  # categories drawn and printed; the xlsx lists every category
BARS_EACH_END = 15  # ranking chart: all ranked units up to 2 × this, else the top and the bottom this many
DAILY_UP_TO = 62  # days: a longer period's trend is by week
KINDS = ("month", "week", "quarter", "range")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")


# -- the pieces ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Headline:
    """One of 一量三率 this period and the previous one."""
    key: str  # volume, closure_rate, on_time_rate, satisfaction_rate
    value: float | int | None
    previous: float | int | None
    numerator: int | None = None  # rates: k of n
    denominator: int | None = None

    @property
    def is_rate(self) -> bool:
        return FIGURE[self.key].is_rate

    @property
    def change(self) -> float | None:
        """Rates: the difference (0.012 = 1.2 points); volume: the relative change (0.05 = +5 %)."""
        if self.value is None or self.previous is None:
            return None
        if self.is_rate:
            return self.value - self.previous
        return (self.value - self.previous) / self.previous if self.previous else None


@dataclass(frozen=True)
class TrendPoint:
    first: date  # the day, or the Monday of the week
    volume: int
    closed: int


@dataclass(frozen=True)
class CategoryRow:
    code: str
    name: str
    group: str
    volume: int
    previous: int
    share: float | None  # of the period's volume

    @property
    def change(self) -> int:
        return self.volume - self.previous

    @property
    def change_pct(self) -> float | None:
        return (self.volume - self.previous) / self.previous if self.previous else None


@dataclass(frozen=True)
class EventRow:
    id: int
    source: str
    reported_at: datetime  # local
    category: str
    group: str
    unit: str | None  # the unit of the ranked level holding the event (by department: the level below the city)
    grid: str | None
    department: str | None
    deadline_at: datetime | None  # local
    closed_at: datetime | None  # local; None: still open now
    status: str  # now
    supervised: bool
    overdue_days: float | None  # past the deadline at the period's end (closed late: by how much)


@dataclass
class EventList:
    total: int
    rows: list[EventRow]
    cap: int = LIST_CAP
    counts: dict[str, int] = field(default_factory=dict)  # supervised: closed, open, overdue at the end

    @property
    def capped(self) -> bool:
        return self.total > len(self.rows)


@dataclass
class Report:
    lang: str
    kind: str  # month, week, quarter, range
    city: str
    city_code: str
    period: Period
    previous: Period
    period_text: str  # as parse_period reads it: 2026-10, 2026-W44...
    as_at: datetime  # the period's end, or now if it is still running (local)
    generated_at: datetime  # local
    by: str
    level: str | None
    group: dict | None  # {code, name}
    source: str | None
    headline: list[Headline]
    ranking: ranking.Ranking
    trend_unit: str  # day or week
    trend: list[TrendPoint]
    categories: list[CategoryRow]
    overdue: EventList
    supervised: EventList
    hotspots: hotspot_store.PeriodWarnings

    # -- words, in the report's language ---------------------------------------------------------

    def t(self, key: str, **kw) -> str:
        text = t(key, self.lang)
        return text.format(**kw) if kw else text

    @property
    def kind_name(self) -> str:
        """月报 / 周报 / 季报 / 报告."""
        return self.t(f"report_{self.kind}")

    @property
    def title(self) -> str:
        return self.t("report_title", city=self.city, kind=self.kind_name)

    @property
    def period_name(self) -> str:
        return period_name(self.period, self.kind, self.lang)

    @property
    def previous_name(self) -> str:
        return period_name(self.previous, self.kind, self.lang)

    @property
    def ranked_what(self) -> str:
        """What the table ranks: 街道 / Street, or 承办部门."""
        return self.t("report_department") if self.by == "department" else self.t(self.level)

    @property
    def filters_text(self) -> str:
        parts = []
        if self.group:
            parts.append(self.group["name"])
        if self.source:
            parts.append(self.t(f"source_{self.source}"))
        return " · ".join(parts) if parts else self.t("report_no_filter")

    @property
    def file_stem(self) -> str:
        """滨海市_月报_2026-10_街道 (a download's name, without its extension)."""
        bits = [self.city, self.kind_name.replace(" ", "-"), self.period_text.replace("..", "_"), self.ranked_what]
        if self.group:
            bits.append(self.group["code"])
        if self.source:
            bits.append(self.source)
        return "_".join(b.replace("/", "-").replace(" ", "-") for b in bits)

    @property
    def running(self) -> str:
        """'still running, figures up to …' for a period that has not ended, else ''."""
        return self.t("report_running", at=self.stamp(self.as_at)) if self.as_at < self.period.end_utc else ""

    @property
    def method_text(self) -> str:
        """How the ranking's score is made, with this report's weights and minimum volume."""
        w = dict(self.ranking.weights)
        return self.t("how_scored_text", n=self.ranking.min_volume,
                      **{k: f"{w.get(k, 0):g}" for k in ("closure", "on_time", "satisfaction")})

    def list_note(self, lst: EventList, key: str) -> str:
        """What a list holds (report_overdue_note / report_supervised_note), its total and, for the
        supervised, how many are closed, open and overdue."""
        parts = [self.t(key, at=self.stamp(self.as_at))]
        parts.append(self.t("report_shown", total=f"{lst.total:,}", shown=len(lst.rows)) if lst.capped
                     else self.t("report_all_shown", total=f"{lst.total:,}"))
        text = ("。" if self.lang == "zh" else ". ").join(parts)
        if lst.counts:
            text += " · " + " · ".join(f"{self.t(k)} {lst.counts[c]:,}" for k, c in
                                       (("closed", "closed"), ("report_open_at_end", "open"), ("overdue", "overdue")))
        return text

    @property
    def hotspots_note(self) -> str:
        """What the warnings list holds, its total and how many of each kind."""
        h = self.hotspots
        parts = [self.t("report_hotspots_note", at=self.stamp(self.as_at))]
        parts.append(self.t("report_warnings_shown", total=f"{h.total:,}", shown=len(h.rows))
                     if h.total > len(h.rows) else self.t("report_warnings_all_shown", total=f"{h.total:,}"))
        text = ("。" if self.lang == "zh" else ". ").join(parts)
        return text + " · " + " · ".join(f"{self.t('warning_kind_' + k)} {n:,}" for k, n in h.by_kind.items())

    @property
    def highlights(self) -> list[str]:
        """A few sentences a leader reads first, from the numbers below them."""
        sep = self.t("report_list_sep")
        h = {x.key: x for x in self.headline}
        vol = h["volume"]
        change = MISSING if vol.change is None else f"{vol.change * 100:+.1f}%"
        out = [self.t("report_hl_volume", v=f"{vol.value:,}", c=change,
                      **{k: percent(h[f"{k}_rate"].value) for k in ("closure", "on_time", "satisfaction")})]
        ranked = [r for r in self.ranking.rows if r.status == ranking.RANKED]
        n = min(3, len(ranked) // 2)
        if n:
            def names(rows):
                return sep.join(self.paren(r.name, f"{r.score:.2f}") for r in rows)
            out.append(self.t("report_hl_top", names=names(ranked[:n])))
            out.append(self.t("report_hl_bottom", names=names(ranked[-n:])))
        grew = sorted((c for c in self.categories if c.change > 0), key=lambda c: (-c.change, c.code))[:3]
        if grew:
            out.append(self.t("report_hl_rise", items=sep.join(
                self.paren(c.name, f"{c.change:+,}" + ("" if c.change_pct is None else f", {c.change_pct * 100:+.1f}%"))
                for c in grew)))
        out.append(self.t("report_hl_overdue", at=self.stamp(self.as_at), n=f"{self.overdue.total:,}",
                          s=f"{self.supervised.total:,}", o=f"{self.supervised.counts.get('open', 0):,}"))
        out.append(self.t("report_hl_hotspots", n=f"{self.hotspots.total:,}", kinds=sep.join(
            f"{self.t('warning_kind_' + k)} {n:,}" for k, n in self.hotspots.by_kind.items())))
        return out

    def day(self, d: date, short: bool = False) -> str:
        return day_name(d, self.lang, short)

    def paren(self, text: str, aside) -> str:
        """text（aside） / text (aside)."""
        return f"{text}（{aside}）" if self.lang == "zh" else f"{text} ({aside})"

    def stamp(self, at: datetime | None) -> str:
        return "" if at is None else f"{at:%Y-%m-%d %H:%M}"


def day_name(d: date, lang: str, short: bool = False) -> str:
    return t("report_day_short" if short else "report_day", lang).format(
        y=d.year, m=d.month, d=d.day, mon=MONTHS_EN[d.month - 1][:3])


def period_name(p: Period, kind: str, lang: str) -> str:
    """2026年10月 / October 2026, 2026年第44周（10月26日—11月1日）, 2026年第4季度 / Q4 2026, a day range."""
    if kind == "month":
        return t("report_period_month", lang).format(y=p.first.year, m=p.first.month,
                                                     month=MONTHS_EN[p.first.month - 1])
    if kind == "week":
        y, w, _ = p.first.isocalendar()
        return t("report_period_week", lang).format(y=y, w=w, first=day_name(p.first, lang, short=True),
                                                    last=day_name(p.last, lang, short=True))
    if kind == "quarter":
        return t("report_period_quarter", lang).format(y=p.first.year, q=(p.first.month + 2) // 3)
    return t("report_period_range", lang).format(first=day_name(p.first, lang), last=day_name(p.last, lang))


# -- reading the store ---------------------------------------------------------------------------

def gather(conn: sa.Connection, tz: ZoneInfo, *, period_text: str, level: str | None = None, by: str = "unit",
           group: str | None = None, source: str | None = None, lang: str = "zh",
           now: datetime | None = None) -> Report:
    """Everything a report shows, for the ranking's level (or the departments), period and filters."""
    table = ranking.rank(conn, tz, level=level, period_text=period_text, group=group, source=source, by=by)
    period, previous = table.period, table.previous
    root = unit_by_code(conn, None)
    filters = Filters(group, source)
    gid = group_id(conn, group) if group else None
    now = (now or datetime.now(timezone.utc)).astimezone(tz)
    as_at = min(period.end_utc, now)

    view = unit_view(conn, root.code, period, filters)
    headline = [_headline(key, view["kpi"], view["previous"]) for key in PERIOD_FIGURES]
    # a period still running has no days after today yet: they are not drawn as zeros
    trend = [TrendPoint(date.fromisoformat(d["day"]), d["volume"], d["closed"]) for d in view["trend"]
             if date.fromisoformat(d["day"]) <= as_at.astimezone(tz).date()]
    trend_unit = "day"
    if len(trend) > DAILY_UP_TO:
        trend, trend_unit = _weekly(trend), "week"

    place_level = table.level if by == "unit" else _level_below_city(conn)
    group_row = None
    if group:
        group_row = {"code": group, "name": conn.execute(
            sa.select(categories.c.name).where(categories.c.id == gid)).scalar_one()}
    return Report(
        lang=lang, kind=table.kind, city=root.name, city_code=root.code, period=period, previous=previous,
        period_text=table.label, as_at=as_at.astimezone(tz), generated_at=now, by=by, level=table.level,
        group=group_row, source=source, headline=headline, ranking=table, trend_unit=trend_unit, trend=trend,
        categories=_categories(conn, root.id, period, previous, filters, gid),
        overdue=_overdue(conn, root.id, as_at, filters, gid, place_level, tz),
        supervised=_supervised(conn, root.id, period, as_at, filters, gid, place_level, tz),
        hotspots=_hotspots(conn, period, as_at, gid, tz),
    )


def _headline(key: str, now: dict, before: dict) -> Headline:
    fig = FIGURE[key]
    if fig.is_rate:
        return Headline(key, now[key], before[key], now[fig.numerator], now[fig.denominator])
    return Headline(key, now[key], before[key])


def _weekly(days: list[TrendPoint]) -> list[TrendPoint]:
    """Days added up by ISO week (Monday first); a week cut by the period's edge holds only its days in it."""
    weeks: dict[date, list[int]] = {}
    for p in days:
        monday = p.first - timedelta(days=p.first.weekday())
        acc = weeks.setdefault(monday, [0, 0])
        acc[0] += p.volume
        acc[1] += p.closed
    return [TrendPoint(m, v, c) for m, (v, c) in sorted(weeks.items())]


def _level_below_city(conn: sa.Connection) -> str | None:
    levels = ranking.known_levels(conn)
    return levels[1] if len(levels) > 1 else (levels or [None])[0]


def _in_city(root_id: int) -> list[sa.ColumnElement]:
    return [events.c.grid_id == unit_closure.c.descendant_id, unit_closure.c.ancestor_id == root_id]


def _categories(conn, root_id: int, period: Period, previous: Period, filters: Filters,
                gid: int | None) -> list[CategoryRow]:
    """Every category with events in either period, by volume this period (then last period's)."""
    cat, grp = categories.alias("cat"), categories.alias("grp")
    this = events.c.reported_at >= period.start_utc
    q = (sa.select(cat.c.code, cat.c.name, sa.func.coalesce(grp.c.name, cat.c.name).label("grp"),
                   sa.func.count().filter(this).label("volume"),
                   sa.func.count().filter(sa.not_(this)).label("previous"))
         .select_from(events.join(unit_closure, sa.and_(*_in_city(root_id)))
                      .join(cat, cat.c.id == events.c.category_id).outerjoin(grp, grp.c.id == cat.c.parent_id))
         .where(events.c.reported_at >= previous.start_utc, events.c.reported_at < period.end_utc,
                *_event_filters(events, filters, gid))
         .group_by(cat.c.code, cat.c.name, grp.c.name))
    rows = conn.execute(q).all()
    total = sum(r.volume for r in rows)
    out = [CategoryRow(r.code, r.name, r.grp, r.volume, r.previous, r.volume / total if total else None)
           for r in rows]
    return sorted(out, key=lambda c: (-c.volume, -c.previous, c.code))


def _event_query(root_id: int, place_level: str | None, as_at: datetime, conds: list, order, cap: int):
    """Events in the city matching `conds`, with what the lists show, `cap` of them and the total."""
    cat, grp, grid, place = categories.alias("cat"), categories.alias("grp"), units.alias("grid"), units.alias("place")
    # the unit of the report's level above the event's grid (none when placed only above that level)
    up = unit_closure.alias("up")
    place_name = (sa.select(place.c.name).select_from(up.join(place, place.c.id == up.c.ancestor_id))
                  .where(up.c.descendant_id == events.c.grid_id, place.c.level == place_level)
                  .limit(1).scalar_subquery())
    late = sa.func.extract("epoch", sa.func.coalesce(sa.func.least(events.c.closed_at, as_at), as_at)
                           - events.c.deadline_at) / 86400.0
    return (sa.select(events.c.id, events.c.source, events.c.reported_at, cat.c.name.label("category"),
                      sa.func.coalesce(grp.c.name, cat.c.name).label("grp"), place_name.label("unit"),
                      grid.c.name.label("grid"), departments.c.name.label("department"), events.c.deadline_at,
                      events.c.closed_at, events.c.status, events.c.supervised,
                      sa.case((events.c.deadline_at < sa.func.coalesce(events.c.closed_at, as_at), late))
                      .label("overdue_days"),
                      sa.func.count().over().label("total"))
            .select_from(events.join(unit_closure, sa.and_(*_in_city(root_id)))
                         .join(cat, cat.c.id == events.c.category_id)
                         .outerjoin(grp, grp.c.id == cat.c.parent_id)
                         .outerjoin(grid, grid.c.id == events.c.grid_id)
                         .outerjoin(departments, departments.c.id == events.c.department_id))
            .where(*conds).order_by(*order).limit(cap))


def _rows(result, tz: ZoneInfo) -> tuple[int, list[EventRow]]:
    total, rows = 0, []
    for r in result:
        d = r._asdict()
        total = d.pop("total")
        for k in ("reported_at", "deadline_at", "closed_at"):
            if d[k] is not None:
                d[k] = d[k].astimezone(tz)
        d["group"] = d.pop("grp")
        d["overdue_days"] = None if d["overdue_days"] is None else float(d["overdue_days"])
        rows.append(EventRow(**d))
    return total, rows


def _open_past_deadline(as_at: datetime) -> list[sa.ColumnElement]:
    """Open at `as_at` (not closed by then) and past the deadline then."""
    return [events.c.reported_at < as_at, events.c.deadline_at < as_at,
            sa.or_(events.c.closed_at.is_(None), events.c.closed_at > as_at)]


def _overdue(conn, root_id, as_at, filters, gid, place_level, tz) -> EventList:
    """The backlog past its deadline at the period's end, whenever reported: the longest overdue first."""
    q = _event_query(root_id, place_level, as_at, [*_open_past_deadline(as_at), *_event_filters(events, filters, gid)],
                     (events.c.deadline_at, events.c.id), LIST_CAP)
    total, rows = _rows(conn.execute(q), tz)
    return EventList(total, rows)


def _supervised(conn, root_id, period, as_at, filters, gid, place_level, tz) -> EventList:
    """The period's supervised events: open ones first (the longest overdue first), then the closed."""
    base = [events.c.supervised, events.c.reported_at >= period.start_utc, events.c.reported_at < period.end_utc,
            *_event_filters(events, filters, gid)]
    still_open = sa.or_(events.c.closed_at.is_(None), events.c.closed_at > as_at)
    q = _event_query(root_id, place_level, as_at, base,
                     (sa.case((still_open, 0), else_=1), events.c.deadline_at.nulls_last(), events.c.id), LIST_CAP)
    total, rows = _rows(conn.execute(q), tz)
    counts = conn.execute(
        sa.select(sa.func.count().filter(sa.not_(still_open)).label("closed"),
                  sa.func.count().filter(still_open).label("open"),
                  sa.func.count().filter(sa.and_(*_open_past_deadline(as_at))).label("overdue"))
        .select_from(events.join(unit_closure, sa.and_(*_in_city(root_id)))).where(*base)).one()._asdict()
    return EventList(total, rows, counts=counts)


def _hotspots(conn, period: Period, as_at: datetime, gid: int | None, tz: ZoneInfo) -> hotspot_store.PeriodWarnings:
    """Warnings in force at some time in the period (up to its end, or now); the group filter
    matches a warning's category group, the source filter does not apply (detection counts every
    source). Times in local time, as the event lists."""
    found = hotspot_store.of_period(conn, period.start_utc, as_at, group_id=gid, limit=LIST_CAP)
    for w in found.rows:
        for k in ("first_seen", "last_seen", "acknowledged_at"):
            if getattr(w, k) is not None:
                setattr(w, k, getattr(w, k).astimezone(tz))
    return found
