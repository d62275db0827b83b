"""`cockpit demo`: load a deterministic demo city and a year of its events into the store."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone

import numpy as np
import psycopg
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cockpit.demo import events as de
from cockpit.metrics import heat, rollup
from cockpit.store import partitions
from cockpit.store.bulkcopy import Col, Payload, bulk_load_mode, copy_columns, copy_payload, payload, prefetched
from cockpit.metrics.measures import MEASURES
from cockpit.store.schema import STATUSES
from cockpit.config import settings
from cockpit.demo.city import MAX_DISTRICTS, City, build_city
from cockpit.errors import CockpitError
from cockpit.store.database import BULK_LOAD_KEY
from cockpit.store.database import check, connect, libpq_url

STORE_TABLES = ("planted_anomalies, warnings, kpi_rollup, stage_rollup, rollup_units, event_transitions, events, "
                "unit_closure, units, categories, departments")
CHUNK_EVENTS = 1_000_000


def count_events(eng: Engine) -> int:
    with connect(eng) as conn:
        return conn.execute(sa.text("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) e")).scalar()


def _insert_reference(cur, city: City) -> tuple[dict[str, int], list[dict]]:
    depts = de.read_csv("demo_departments.csv")
    with cur.copy("COPY departments (id, code, name) FROM STDIN") as cp:
        for i, d in enumerate(depts, start=1):
            cp.write_row((i, d["code"], d["name"]))
    dept_id = {d["code"]: i for i, d in enumerate(depts, start=1)}
    cats = de.read_csv("demo_categories.csv")
    groups = list(dict.fromkeys((c["group_code"], c["group_name"]) for c in cats))
    with cur.copy("COPY categories (id, code, name, parent_id, deadline_hours) FROM STDIN") as cp:
        for i, (code, name) in enumerate(groups, start=1):
            cp.write_row((i, code, name, None, None))
        group_id = {code: i for i, (code, _) in enumerate(groups, start=1)}
        for i, c in enumerate(cats, start=len(groups) + 1):
            cp.write_row((i, c["code"], c["name"], group_id[c["group_code"]], int(c["deadline_hours"])))
    with cur.copy("COPY units (id, code, name, level, parent_id, geom, population) FROM STDIN") as cp:
        for i, u in enumerate(city.units, start=1):
            geom = shapely.to_wkb(shapely.set_srid(u.geom, 4326), hex=True, include_srid=True)
            cp.write_row((i, u.code, u.name, u.level, None if u.parent is None else u.parent + 1,
                          geom, u.population))
    for table in ("departments", "categories", "units"):
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    return dept_id, cats


def _rollup_map(cur) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Per leaf unit its lowest rolled-up unit; per such unit, the rolled-up units above it (itself too).

    Read back from the store, where the units trigger just decided which units are rolled up.
    """
    cur.execute("""
        SELECT cl.descendant_id, cl.ancestor_id, cl.depth,
               NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = d.id)
        FROM unit_closure cl JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        JOIN units d ON d.id = cl.descendant_id ORDER BY cl.descendant_id, cl.depth""")
    lowest: dict[int, int] = {}
    above: dict[int, list[int]] = {}
    for descendant, ancestor, depth, is_leaf in cur.fetchall():
        if is_leaf:
            lowest.setdefault(descendant, ancestor)
        above.setdefault(descendant, []).append(ancestor)
    return lowest, above


def _reference(city: City, cats: list[dict], dept_id: dict[str, int], lowest: dict[int, int]) -> de.Reference:
    group_ids = {code: i for i, code in enumerate(dict.fromkeys(c["group_code"] for c in cats), start=1)}
    n_groups = len(group_ids)
    grid_idx = city.of_level("grid")

    def ancestor_at(i: int, level: str) -> int:
        """The unit at `level` above unit i, or the nearest one above if the level is missing."""
        order = ["grid", "community", "street", "district", "city"]
        j = i
        while city.units[j].parent is not None and order.index(city.units[j].level) < order.index(level):
            j = city.units[j].parent
        return j + 1  # database id

    streets = {}
    grid_street = np.array([streets.setdefault(ancestor_at(i, "street"), len(streets)) for i in grid_idx])
    return de.Reference(
        category_ids=np.arange(n_groups + 1, n_groups + 1 + len(cats)),
        category_group=[c["group_code"] for c in cats],
        category_dept=np.array([dept_id[c["department_code"]] for c in cats]),
        deadline_h=np.array([int(c["deadline_hours"]) for c in cats]),
        weight=np.array([float(c["weight"]) for c in cats]),
        iot=np.array([int(c["iot"]) for c in cats]),
        video=np.array([int(c["video"]) for c in cats]),
        grid_ids=np.array([i + 1 for i in grid_idx]),
        grid_polys=np.array([city.units[i].geom for i in grid_idx]),
        grid_weight=np.array([city.units[i].population for i in grid_idx], dtype=float),
        grid_level_unit=np.array([[ancestor_at(i, lv) for lv in ("community", "street", "district")]
                                  for i in grid_idx]),
        grid_street=grid_street,
        category_grp=np.array([group_ids[c["group_code"]] for c in cats]),
        grid_rollup=np.array([lowest.get(i + 1, -1) for i in grid_idx]),
    )


def _payloads(ref: de.Reference, plan: de.Plan, seed: int) -> Iterator[tuple[Payload, Payload, dict]]:
    """COPY-ready events and transitions, about CHUNK_EVENTS events at a time, in day order."""
    days = len(plan.day_count)
    seq = np.zeros(len(de.SOURCES), dtype=np.int64)
    n_events = n_transitions = 0
    day = 0
    while day < days:
        hi = day + 1
        while hi < days and plan.day_count[day:hi + 1].sum() <= CHUNK_EVENTS:
            hi += 1
        ev_cols, tr_cols, parts = de.generate_chunk(ref, plan, day, hi, n_events + 1, n_transitions + 1, seq, seed)
        n_events += len(ev_cols[0])
        n_transitions += len(tr_cols[0])
        yield payload("events", ev_cols), payload("event_transitions", tr_cols), parts
        day = hi


def _copy_rollups(cur, parts: list[dict], above: dict[int, list[int]], plan: de.Plan, tz) -> None:
    """The rollups of the loaded events (the bulk load bypassed the triggers that keep them).

    The chunks summed per lowest rolled-up unit; here each sum is carried to every rolled-up
    unit above it. tests/test_rollup.py checks the result equals `cockpit rollup rebuild`.
    """
    days = np.array([(datetime.fromtimestamp(s / 1e6, tz).date() - date(2000, 1, 1)).days
                     for s in plan.day_start_us])
    for table, key_names in (("kpi", ("grp", "source")), ("stage", ("stage", "bucket"))):
        keys = np.concatenate([p[table][0] for p in parts], axis=1)
        values = np.concatenate([p[table][1] for p in parts], axis=1)
        fan_keys, fan_values = [], []
        for low in np.unique(keys[0]):
            rows = keys[0] == low
            for unit in above.get(int(low), [int(low)]):
                k = keys[:, rows].copy()
                k[0] = unit
                fan_keys.append(k)
                fan_values.append(values[:, rows])
        if not fan_keys:
            continue
        k, v = de.sum_by(np.concatenate(fan_keys, axis=1), np.concatenate(fan_values, axis=1))
        if table == "kpi":
            cols = [Col.int4("unit_id", k[0]), Col.date("day", days[k[1]]), Col.int4("grp", k[2]),
                    Col.category("source", k[3], de.SOURCES),
                    *(Col.int4(m, v[i]) for i, m in enumerate(MEASURES))]
            copy_columns(cur, "kpi_rollup", cols, freeze=True)
        else:
            cols = [Col.int4("unit_id", k[0]), Col.date("day", days[k[1]]), Col.category("stage", k[2], STATUSES),
                    Col.int2("bucket", k[3]), Col.int4("n", v[0])]
            copy_columns(cur, "stage_rollup", cols, freeze=True)
    cur.execute("INSERT INTO cockpit_state (key, value) VALUES ('timezone', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (tz.key,))


def _record_truth(cur, rows: list[dict]) -> None:
    """planted_anomalies: what hotspot detection should find (bench/hotspots.py checks it)."""
    cur.executemany(
        'INSERT INTO planted_anomalies (kind, unit_id, category_id, start, "end", size, lon, lat) '
        "VALUES (%(kind)s, %(unit_id)s, %(category_id)s, to_timestamp(%(start_us)s / 1e6), "
        "to_timestamp(%(end_us)s / 1e6), %(size)s, %(lon)s, %(lat)s)", rows)


def load_demo(eng: Engine, *, seed: int = 7, grids: int = 3000, events: int = 511_000, days: int = 365,
              districts: int | None = None, now: datetime | None = None, replace: bool = False,
              progress: Callable[[str], None] = print) -> dict:
    """Replace the store's contents with the demo city; returns what was loaded."""
    if grids < 10:
        raise CockpitError("--grids must be at least 10")
    if events < 0 or days < 1:
        raise CockpitError("--events must be >= 0 and --days >= 1")
    if districts is not None and not 2 <= districts <= MAX_DISTRICTS:
        raise CockpitError(f"--districts must be between 2 and {MAX_DISTRICTS}, not {districts}")
    if districts is not None and grids < 8 * districts:
        # every district holds at least two streets, each two communities, each two grids
        raise CockpitError(f"--grids must be at least 8 per district ({8 * districts} for {districts} districts)")
    check(eng, reloading=True)
    existing = count_events(eng)
    if existing and not replace:
        raise CockpitError("the store already holds events; pass --replace to wipe it and load the demo")
    tz = settings().timezone
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    city = build_city(rng, grids, districts)
    progress(f"city: {len(city.units):,} units ({len(city.of_level('grid')):,} grids) "
             f"in {time.monotonic() - started:.1f} s")

    # the months of the period and the months ahead, before any row goes in (none into DEFAULT)
    with eng.connect() as pconn:
        partitions.ensure_range(pconn, now - timedelta(days=days + 1), now)
        partitions.ensure_ahead(pconn, now=now)
        pconn.commit()
    raw = eng.raw_connection()
    try:
        cur = raw.cursor()
        # TRUNCATE in this transaction lets COPY FREEZE skip later vacuuming (and, on a
        # wal_level=minimal server such as the managed one, skip the WAL too).
        cur.execute(f"TRUNCATE {STORE_TABLES} RESTART IDENTITY CASCADE")
        dept_id, cats = _insert_reference(cur, city)
        lowest, above = _rollup_map(cur)
        ref = _reference(city, cats, dept_id, lowest)
        plan = de.make_plan(ref, rng, events, days, now, tz)
        n_events = n_transitions = 0
        with bulk_load_mode(cur, ["events", "event_transitions", "kpi_rollup", "stage_rollup"]) as restore:
            # Generation (numpy, this process) overlaps COPY (the server): two cores, both busy.
            parts = []
            for ev, tr, part in prefetched(_payloads(ref, plan, seed)):
                # no FREEZE: PostgreSQL refuses it into a partitioned table
                n_events += copy_payload(cur, ev)
                n_transitions += copy_payload(cur, tr)
                parts.append(part)
                progress(f"events {n_events:,}/{events:,} ({n_events / max(events, 1):.0%}), "
                         f"transitions {n_transitions:,}, {time.monotonic() - started:.0f} s")
            _copy_rollups(cur, parts, above, plan, tz)
            partitions.fill_event_keys(cur, "true")  # the key trigger is off with the others
        _record_truth(cur, de.planted_truth(ref, plan, parts))
        for table, last_id in (("events", n_events), ("event_transitions", n_transitions)):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(last_id, 1)})")
        # Until the keys are back the store must not be used: store.check() refuses it.
        cur.execute("INSERT INTO cockpit_state (key, value) VALUES (%s, 'keys and indexes are being rebuilt') "
                    "ON CONFLICT (key) DO NOTHING", (BULK_LOAD_KEY,))
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    progress(f"data in after {time.monotonic() - started:.0f} s; building keys, indexes and constraints ...")
    libpq = libpq_url(eng.url.render_as_string(hide_password=False))
    restore.run(lambda: psycopg.connect(libpq, autocommit=True), progress)
    with eng.begin() as conn:
        heat.rebuild(conn)  # the recent hours only (heat.RETAIN), through the restored indexes
        rollup.fill_rank_rollups(conn)  # one pass over the events, through the restored indexes
        conn.execute(sa.text("DELETE FROM cockpit_state WHERE key = :k"), {"k": BULK_LOAD_KEY})
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    took = time.monotonic() - started
    progress(f"demo city loaded: {n_events:,} events, {n_transitions:,} transitions in {took:.1f} s")
    return {"units": len(city.units), "events": n_events, "transitions": n_transitions, "seconds": took}
