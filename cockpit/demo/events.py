"""Demo events and their life cycle, generated a chunk of days at a time, all vectorised.

What makes them look real: daily and weekly rhythm per source (渠道), a source mix with
category affinities (IoT raises noise/smoke/flooding, video raises street vending and
parking), persistent hotspot grids, an emerging surge in the last two weeks, the same
problem coming back at the same spot, per-street differences in speed and satisfaction,
escalation from community to street/district, a few stuck (overdue) events, and star
ratings skewed to 4-5 with a tail that is worse when an event was late.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from cockpit.store.bulkcopy import Col
from cockpit.config import REPO_ROOT
from cockpit.demo.city import sample_in
from cockpit.metrics.kpi import holds
from cockpit.metrics.measures import MEASURES
from cockpit.metrics.rollup import bucket_of
from cockpit.store.schema import HANDLING_LEVELS, SOURCES, STATUSES

HOUR = 3_600_000_000  # microseconds
DAY = 24 * HOUR
NEVER = np.iinfo(np.int64).max // 2
SURGE_DAYS = 14  # the emerging surges ramp up over the last this many days

SOURCE_SHARE = {"hotline_12345": 0.38, "grid_app": 0.32, "iot": 0.12, "video_ai": 0.10,
                 "citizen_app": 0.06, "mailbox": 0.02}
EXTERNAL_PREFIX = {"hotline_12345": b"RX", "grid_app": b"WG", "iot": b"IO", "video_ai": b"SP",
                   "citizen_app": b"AP", "mailbox": b"XX"}
RATED_SHARE = {"hotline_12345": 0.72, "grid_app": 0.08, "iot": 0.0, "video_ai": 0.0,
               "citizen_app": 0.60, "mailbox": 0.55}
HAS_REPORTER = {"hotline_12345", "citizen_app", "mailbox"}


def source_weights() -> list[float]:
    """SOURCE_SHARE in SOURCES order (the order of every numpy array indexed by source)."""
    return [SOURCE_SHARE[s] for s in SOURCES]


# share of events reported in each local hour, per source
HOURLY = {
    "human": [0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 2.0, 4.0, 5.5, 6.0, 5.5, 4.0, 3.8, 4.8, 5.2, 5.0, 4.5,
              3.8, 3.6, 3.4, 2.8, 1.8, 1.0],
    "grid_app": [0.05] * 7 + [1, 4, 6, 6, 5.5, 3, 3, 5.5, 6, 5.5, 4, 1.5, 0.5, 0.3, 0.2, 0.1, 0.05],
    "iot": [3, 3, 2.5, 2, 1.5, 1.5, 2, 2.5, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3.5, 4, 4.5, 5, 4.5, 3.5],
    "video_ai": [0.3] * 6 + [1, 2.5, 3, 3, 3, 3.5, 3.5, 3, 3, 3, 3.5, 4.5, 5, 5, 4, 3, 1.5, 0.8],
}
WEEKDAY = np.array([1.05, 1.04, 1.03, 1.02, 1.0, 0.82, 0.75])
# handling level by category group (micro matters by community, small by street, hard jointly)
LEVEL_SHARE = {"default": (0.70, 0.22, 0.08), "MD": (0.50, 0.32, 0.18), "ZF": (0.50, 0.30, 0.20),
               "ZA": (0.55, 0.30, 0.15), "AQ": (0.60, 0.25, 0.15)}
STARS_ON_TIME = np.array([0.06, 0.03, 0.07, 0.22, 0.62])  # P(1..5 stars)
STARS_LATE = np.array([0.18, 0.12, 0.18, 0.22, 0.30])

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏建红宇浩凯博文雪琳晨欣怡梓涵子轩俊晓海燕婷波辉"


@dataclass
class Reference:
    """Category list, departments and the grids' place in the tree (database ids)."""
    category_ids: np.ndarray
    category_group: list[str]
    category_dept: np.ndarray  # department id per category
    deadline_h: np.ndarray
    weight: np.ndarray
    iot: np.ndarray
    video: np.ndarray
    grid_ids: np.ndarray
    grid_polys: np.ndarray
    grid_weight: np.ndarray
    grid_level_unit: np.ndarray  # (n_grids, 3): community, street, district unit id
    grid_street: np.ndarray  # index of the grid's street, for per-street quality
    category_grp: np.ndarray  # database id of each category's group
    grid_rollup: np.ndarray  # database id of each grid's lowest rolled-up unit, -1 if none


def read_csv(name: str) -> list[dict]:
    with open(REPO_ROOT / "data" / name, encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass
class Plan:
    """Fixed for a whole generation run: which days get how many events, hotspots, spots."""
    day_start_us: np.ndarray  # local midnight of each day, as UTC microseconds
    day_count: np.ndarray
    now_us: int
    grid_p: np.ndarray
    emerging: np.ndarray  # grid indices surging in the last two weeks
    emerging_cat: np.ndarray
    spot_grid: np.ndarray  # recurring problems: grid, point, category
    spot_x: np.ndarray
    spot_y: np.ndarray
    spot_cat: np.ndarray
    street_speed: np.ndarray
    street_mood: np.ndarray
    source_cat_p: np.ndarray  # (sources, categories)


def make_plan(ref: Reference, rng: np.random.Generator, n_events: int, days: int, now: datetime,
              tz: ZoneInfo) -> Plan:
    today = now.astimezone(tz).date()
    dates = [today - timedelta(days=days - 1 - k) for k in range(days)]
    starts = np.array([int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1e6) for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates])
    w = WEEKDAY[[d.weekday() for d in dates]] * (1 + 0.08 * np.sin(2 * np.pi * doy / 365 + 1.3))
    w *= np.array([0.65 if (d.month == 10 and d.day <= 7) else 1.0 for d in dates])  # National Day week
    w *= rng.lognormal(0, 0.05, days)
    now_us = int(now.timestamp() * 1e6)
    w[-1] *= min(1.0, (now_us - starts[-1]) / DAY)  # today is only partly over
    counts = rng.multinomial(n_events, w / w.sum())

    n_grids = len(ref.grid_ids)
    boost = np.ones(n_grids)
    hot = rng.choice(n_grids, size=max(3, n_grids // 250), replace=False)
    boost[hot] *= rng.uniform(3, 7, len(hot))
    grid_p = ref.grid_weight * boost
    emerging = rng.choice(n_grids, size=max(1, n_grids // 1000), replace=False)
    groups = np.array(ref.category_group)
    emerging_cat = rng.choice(np.flatnonzero(np.isin(groups, ["HJ", "SR", "AQ"])), len(emerging))

    n_spots = max(10, n_grids // 50)
    spot_grid = rng.choice(n_grids, n_spots, p=grid_p / grid_p.sum())
    sx, sy = sample_in(ref.grid_polys, spot_grid, rng)
    spot_cat = rng.choice(len(ref.category_ids), n_spots, p=ref.weight / ref.weight.sum())

    n_streets = int(ref.grid_street.max()) + 1
    source_p = []
    for src in SOURCES:
        if src == "iot":
            p = ref.weight * ref.iot
        elif src == "video_ai":
            p = ref.weight * ref.video
        elif src == "grid_app":
            p = ref.weight * np.where(np.isin(groups, ["SR", "AQ", "ZA"]), 1.6, 0.7)
        else:
            p = ref.weight.astype(float)
        source_p.append(p / p.sum())
    return Plan(
        day_start_us=starts, day_count=counts, now_us=now_us, grid_p=grid_p / grid_p.sum(),
        emerging=emerging, emerging_cat=emerging_cat, spot_grid=spot_grid, spot_x=sx, spot_y=sy,
        spot_cat=spot_cat, street_speed=rng.lognormal(0, 0.3, n_streets),
        street_mood=rng.normal(0, 0.06, n_streets), source_cat_p=np.array(source_p),
    )


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded ASCII, numpy 'S<width>'."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    d = (values[:, None] // powers) % 10 + 48
    return np.ascontiguousarray(d.astype(np.uint8)).view(f"S{width}").ravel()


def _utf8_table(chars: str) -> np.ndarray:
    return np.frombuffer("".join(chars).encode(), dtype=np.uint8).reshape(len(chars), 3)


_SURNAME_B = _utf8_table(SURNAMES)
_GIVEN_B = _utf8_table(GIVEN)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Three-character Chinese names (nine UTF-8 bytes each)."""
    b = np.concatenate([_SURNAME_B[rng.integers(0, len(_SURNAME_B), n)],
                        _GIVEN_B[rng.integers(0, len(_GIVEN_B), n)],
                        _GIVEN_B[rng.integers(0, len(_GIVEN_B), n)]], axis=1)
    return np.ascontiguousarray(b).view("S9").ravel()


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    second = np.array([3, 5, 7, 8, 9])[rng.integers(0, 5, n)]
    return _digits(10_000_000_000 + second * 1_000_000_000 + rng.integers(0, 1_000_000_000, n), 11)


def _span(rng, n, median_h, sigma, scale=1.0) -> np.ndarray:
    """Lognormal durations in whole seconds, as microseconds."""
    return (rng.lognormal(np.log(median_h), sigma, n) * scale * 3600).astype(np.int64) * 1_000_000


def generate_chunk(ref: Reference, plan: Plan, day_lo: int, day_hi: int, first_event_id: int,
                   first_transition_id: int, seq_by_source: np.ndarray, seed: int):
    """Events reported on plan days [day_lo, day_hi) and their transitions, as COPY columns.

    Returns (event columns, transition columns); seq_by_source is advanced in place so
    external ids stay unique per source across chunks.
    """
    rng = np.random.default_rng([seed, day_lo])
    counts = plan.day_count[day_lo:day_hi]
    n = int(counts.sum())
    day = np.repeat(np.arange(day_lo, day_hi), counts)

    # source, then time of day from that source's rhythm
    source = rng.choice(len(SOURCES), n, p=source_weights())
    hour = np.empty(n, dtype=np.int64)
    for si, src in enumerate(SOURCES):
        m = source == si
        prof = np.array(HOURLY.get(src, HOURLY["human"]), dtype=float)
        hour[m] = rng.choice(24, int(m.sum()), p=prof / prof.sum())
    reported = plan.day_start_us[day] + hour * HOUR + rng.integers(0, 3600, n) * 1_000_000
    late = reported >= plan.now_us  # today's events cannot be in the future
    reported[late] = plan.day_start_us[day[late]] + (
        rng.random(int(late.sum())) * (plan.now_us - plan.day_start_us[day[late]]) / 1e6).astype(np.int64) * 1_000_000

    # category given source, grid by population and hotspots
    cat = np.empty(n, dtype=np.int64)
    for si in range(len(SOURCES)):
        m = source == si
        cat[m] = rng.choice(len(ref.category_ids), int(m.sum()), p=plan.source_cat_p[si])
    grid = rng.choice(len(ref.grid_ids), n, p=plan.grid_p)
    x, y = sample_in(ref.grid_polys, grid, rng)

    days_total = len(plan.day_count)
    ramp = np.clip((day - (days_total - SURGE_DAYS)) / SURGE_DAYS, 0, 1)
    surge = rng.random(n) < 0.012 * ramp
    k = rng.integers(0, len(plan.emerging), int(surge.sum()))
    grid[surge] = plan.emerging[k]
    cat[surge] = plan.emerging_cat[k]
    if surge.any():
        x[surge], y[surge] = sample_in(ref.grid_polys, grid[surge], rng)
    spot = rng.random(n) < 0.025
    s = rng.integers(0, len(plan.spot_grid), int(spot.sum()))
    grid[spot], cat[spot] = plan.spot_grid[s], plan.spot_cat[s]
    x[spot], y[spot] = plan.spot_x[s], plan.spot_y[s]  # the very same place, again
    planted = (np.bincount(k, minlength=len(plan.emerging)), np.bincount(s, minlength=len(plan.spot_grid)))

    # life cycle: stage times in microseconds; NEVER = not (yet) happened
    street = ref.grid_street[grid]
    speed = plan.street_speed[street]
    deadline_h = ref.deadline_h[cat]
    machine = np.isin(source, [SOURCES.index("iot"), SOURCES.index("video_ai")])
    urgency = np.minimum(1.0, deadline_h / 24)  # a 4-hour smoke alarm moves faster at every stage
    t_disp = reported + _span(rng, n, 0.4, 0.8, np.where(machine, 0.4, 1.0) * urgency)
    t_hand = t_disp + _span(rng, n, 1.0, 0.9, speed * urgency)

    groups = np.array(ref.category_group)[cat]
    level = np.empty(n, dtype=np.int64)
    u = rng.random(n)
    for g in set(groups.tolist()):
        m = groups == g
        p = LEVEL_SHARE.get(g, LEVEL_SHARE["default"])
        level[m] = np.where(u[m] < p[0], 0, np.where(u[m] < p[0] + p[1], 1, 2))
    escalated = (level > 0) & (rng.random(n) < 0.45)
    t_esc = np.where(escalated, t_hand + _span(rng, n, 6, 0.7, urgency), NEVER)
    t_hand2 = np.where(escalated, t_esc + _span(rng, n, 1.0, 0.8, urgency), NEVER)
    work_from = np.where(escalated, t_hand2, t_hand)
    t_fu = work_from + _span(rng, n, 0.2, 0.75, deadline_h * speed * np.where(level == 2, 1.3, 1.0))
    t_close = t_fu + _span(rng, n, 3.0, 0.8, urgency)

    # a few events get stuck in a stage for weeks; the recent ones are the overdue backlog
    stuck = rng.random(n) < 0.012
    stuck_stage = rng.integers(1, 4, n)  # stuck after: 1 dispatched, 2 handling, 3 follow-up
    lag = np.where(stuck, _span(rng, n, 15 * 24, 0.6), 0)
    t_hand = t_hand + np.where(stuck_stage < 2, lag, 0)
    t_esc = np.where(escalated, t_esc + np.where(stuck_stage < 2, lag, 0), NEVER)
    t_hand2 = np.where(escalated, t_hand2 + np.where(stuck_stage < 2, lag, 0), NEVER)
    t_fu = t_fu + np.where(stuck_stage < 3, lag, 0)
    t_close = t_close + lag

    now = plan.now_us
    done = {name: t <= now for name, t in
            (("disp", t_disp), ("hand", t_hand), ("esc", t_esc), ("hand2", t_hand2), ("fu", t_fu),
             ("close", t_close))}
    status = np.zeros(n, dtype=np.int64)  # index into STATUSES
    status[done["disp"]] = 1
    status[done["hand"]] = 2
    status[done["esc"]] = 1
    status[done["hand2"]] = 2
    status[done["fu"]] = 3
    status[done["close"]] = 4

    initial_level = np.where(escalated, 0, level)
    current_level = np.where(done["esc"], level, initial_level)
    units = ref.grid_level_unit[grid]  # (n, 3)
    rows = np.arange(n)
    initial_unit = units[rows, initial_level]
    final_unit = units[rows, level]
    dept_final = ref.category_dept[cat]
    event_dept = np.where(done["disp"] & (current_level == 2), dept_final, -1)

    deadline_at = reported + deadline_h.astype(np.int64) * HOUR
    closed = done["close"]
    on_time = t_close <= deadline_at
    src_names = np.array(SOURCES)[source]
    rated_share = np.array([RATED_SHARE[s] for s in SOURCES])[source]
    t_rated = t_close + _span(rng, n, 8.0, 0.9)
    rated = closed & (rng.random(n) < rated_share) & (t_rated <= now)
    probs = np.where(on_time[:, None], STARS_ON_TIME, STARS_LATE).copy()
    mood = plan.street_mood[street]
    probs[:, 4] += mood
    probs[:, 0] -= mood / 2
    probs[:, 1] -= mood / 2
    probs = np.clip(probs, 0.005, None)
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    stars = 1 + (rng.random(n)[:, None] > cum).sum(axis=1)
    stars = np.minimum(stars, 5)
    overdue_open = ~closed & (deadline_at + 72 * HOUR < now)
    supervised = (rng.random(n) < 0.004) | (overdue_open & (rng.random(n) < 0.3))

    ids = first_event_id + rows
    ext = np.empty(n, dtype="S14")
    for si, src in enumerate(SOURCES):
        m = source == si
        k = int(m.sum())
        ext[m] = np.char.add(EXTERNAL_PREFIX[src], _digits(seq_by_source[si] + np.arange(k, dtype=np.int64), 12))
        seq_by_source[si] += k
    has_reporter = np.isin(src_names, list(HAS_REPORTER))
    handling_level = np.where(done["disp"], current_level, -1)  # none until dispatched

    event_cols = [
        Col.int8("id", ids),
        Col.category("source", source, SOURCES),
        Col.fixed_text("external_id", ext),
        Col.int4("category_id", ref.category_ids[cat]),
        Col.timestamptz("reported_at", reported),
        Col.point("location", x, y),
        Col.int4("grid_id", ref.grid_ids[grid]),
        Col.category("status", status, STATUSES),
        Col.category("handling_level", handling_level, HANDLING_LEVELS),
        Col.int4("department_id", event_dept, null=event_dept < 0),
        Col.timestamptz("deadline_at", deadline_at),
        Col.timestamptz("closed_at", t_close, null=~closed),
        Col.int2("rating", stars, null=~rated),
        Col.timestamptz("rated_at", t_rated, null=~rated),
        Col.bool("supervised", supervised),
        Col.fixed_text("reporter_name", _names(rng, n), null=~has_reporter),
        Col.fixed_text("reporter_phone", _phones(rng, n), null=~has_reporter),
    ]

    # transitions: one row per status change that has happened by now
    esc_note = np.where(level == 2, 2, 1)  # index into NOTES
    steps = [  # (happened, from, to, at, unit, department, note)
        (done["disp"], 0, 1, t_disp, initial_unit, np.where(initial_level == 2, dept_final, -1), -1),
        (done["hand"], 1, 2, t_hand, initial_unit, np.where(initial_level == 2, dept_final, -1), -1),
        (done["esc"], 2, 1, t_esc, final_unit, np.where(level == 2, dept_final, -1), esc_note),
        (done["hand2"], 1, 2, t_hand2, final_unit, np.where(level == 2, dept_final, -1), -1),
        (done["fu"], 2, 3, t_fu, final_unit, np.where(level == 2, dept_final, -1), -1),
        (done["close"], 3, 4, t_close, final_unit, np.where(level == 2, dept_final, -1), 0),
    ]
    event_grid = ref.grid_ids[grid]
    parts = []
    for happened, frm, to, at, unit, dept, note in steps:
        m = happened
        k = int(m.sum())
        note_codes = np.full(k, note) if np.isscalar(note) else note[m]
        parts.append((ids[m], reported[m], np.full(k, frm), np.full(k, to), at[m], unit[m], dept[m], note_codes,
                      event_grid[m]))
    ev, ev_rep, fr, to, at, unit, dept, note, ev_grid = (np.concatenate(c) for c in zip(*parts))
    t_ids = first_transition_id + np.arange(len(ev), dtype=np.int64)
    transition_cols = [
        Col.int8("id", t_ids),
        Col.int8("event_id", ev),
        Col.category("from_status", fr, STATUSES),
        Col.category("to_status", to, STATUSES),
        Col.timestamptz("at", at),
        Col.int4("unit_id", unit),
        Col.int4("department_id", dept, null=dept < 0),
        Col.category("note", note, NOTES),
        Col.timestamptz("event_reported_at", ev_rep),  # the event's month: its partition
        Col.int4("grid_id", ev_grid),  # the event's grid: what row-level security checks
    ]
    # The rollups the triggers would have made, had the bulk load not bypassed them: added up
    # per (lowest rolled-up unit, ...) here and carried up the tree by cockpit.demo.
    # The same rules as the SQL (cockpit.metrics.measures), read on the columns just written.
    written = {
        "closed_at": np.ma.masked_array(t_close, mask=~closed),
        "deadline_at": deadline_at,
        "rating": np.ma.masked_array(stars, mask=~rated),
        "handling_level": Coded(handling_level, HANDLING_LEVELS),
        "status": Coded(status, STATUSES),
    }
    flags = {name: holds(rule, written, n) for name, rule in MEASURES.items()}
    prev_at = [reported, t_disp, t_hand, t_esc, np.where(escalated, t_hand2, t_hand), t_fu]  # each step's start
    stints = [(happened, frm, (step_at - prev)[happened])
              for (happened, frm, _to, step_at, *_), prev in zip(steps, prev_at)]
    parts = rollup_parts(ref, grid, day, cat, source, flags, stints)
    # How many events each planted surge and recurring spot got (the known truth, planted_truth).
    parts["planted"] = planted
    return event_cols, transition_cols, parts


class Coded:
    """A text column as codes into `labels` (-1: NULL), compared with a text as SQL compares."""
    __hash__ = None

    def __init__(self, codes: np.ndarray, labels: tuple[str, ...]):
        self.codes, self.labels = codes, labels

    def __eq__(self, value: str) -> np.ma.MaskedArray:
        return np.ma.masked_array(self.codes == self.labels.index(value), mask=self.codes < 0)


def rollup_parts(ref: Reference, grid, day, cat, source, flags, stints) -> dict:
    """KPI measures and stage stints summed by (lowest rolled-up unit, day, group|stage, ...)."""
    unit = ref.grid_rollup[grid]
    keep = unit >= 0
    kpi_keys = np.stack([unit, day, ref.category_grp[cat], source])[:, keep]
    kpi = sum_by(kpi_keys, np.stack([flags[m] for m in MEASURES])[:, keep])
    stage_keys, ones = [], []
    for happened, frm, spent_us in stints:
        k = np.stack([unit[happened], day[happened], np.full(int(happened.sum()), frm),
                      bucket_of(spent_us // 1_000_000)])
        stage_keys.append(k[:, k[0] >= 0])
    stage_keys = np.concatenate(stage_keys, axis=1)
    stage = sum_by(stage_keys, np.ones((1, stage_keys.shape[1]), dtype=np.int64))
    return {"kpi": kpi, "stage": stage}


KEY_BITS = (23, 16, 16, 8)  # unit id, day, group|stage, source|bucket: packed in one int64


def sum_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GROUP BY the four key rows, SUM the value rows: (unique keys, sums), both column-wise."""
    if keys.shape[1] == 0:
        return keys.astype(np.int64), values.astype(np.int64)
    packed = np.zeros(keys.shape[1], dtype=np.int64)
    for row, bits in zip(keys, KEY_BITS):
        assert row.min() >= 0 and row.max() < (1 << bits), "key out of range for packing"
        packed = (packed << bits) | row.astype(np.int64)
    uniq, inverse = np.unique(packed, return_inverse=True)
    out = np.empty((len(KEY_BITS), len(uniq)), dtype=np.int64)
    rest = uniq
    for i, bits in reversed(list(enumerate(KEY_BITS))):
        out[i] = rest & ((1 << bits) - 1)
        rest = rest >> bits
    sums = np.stack([np.bincount(inverse, weights=v, minlength=len(uniq)) for v in values])
    return out, sums.round().astype(np.int64)


def planted_truth(ref: Reference, plan: Plan, parts: list[dict]) -> list[dict]:
    """The anomalies this plan planted, as rows of planted_anomalies: each emerging surge (its
    grid, category, the days it ramps up, how many events it added) and each recurring spot
    (grid, category, exact point, how many events came back there)."""
    surge_n = sum(p["planted"][0] for p in parts) if parts else np.zeros(len(plan.emerging), dtype=int)
    spot_n = sum(p["planted"][1] for p in parts) if parts else np.zeros(len(plan.spot_grid), dtype=int)
    days = len(plan.day_count)
    # The ramp is 0 on day (days - SURGE_DAYS): the first surge events fall on the day after.
    surge_start = plan.day_start_us[max(0, days - SURGE_DAYS + 1)]
    rows = []
    for j, g in enumerate(plan.emerging):
        if surge_n[j]:
            rows.append({"kind": "surge", "unit_id": int(ref.grid_ids[g]),
                         "category_id": int(ref.category_ids[plan.emerging_cat[j]]), "start_us": int(surge_start),
                         "end_us": plan.now_us, "size": int(surge_n[j]), "lon": None, "lat": None})
    for j, g in enumerate(plan.spot_grid):
        if spot_n[j]:
            rows.append({"kind": "recurrence", "unit_id": int(ref.grid_ids[g]),
                         "category_id": int(ref.category_ids[plan.spot_cat[j]]),
                         "start_us": int(plan.day_start_us[0]), "end_us": plan.now_us, "size": int(spot_n[j]),
                         "lon": float(plan.spot_x[j]), "lat": float(plan.spot_y[j])})
    return rows


NOTES = ("回访结案", "上报街道协调处置", "上报区级联动处置")
