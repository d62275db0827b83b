"""Pre-aggregated events, kept right by triggers whoever writes, so a click costs milliseconds.

Plain GROUP BY over 10 M events takes 0.5-1 s; the screens need < 150 ms. Two rollups:

kpi_rollup    (unit, local day, category group, source) -> every measure of cockpit.metrics.measures
stage_rollup  (unit, local day, status, duration bucket) -> how many stints lasted that long

and, for the rankings (cockpit.metrics.ranking), the KPI counts of kpi.CONDITIONS per unit
holding the events (events.grid_id: a leaf, or the unit an event was placed at), whatever its
level, and per department (events.department_id), without group or source:
unit_day_rollup        (holder unit, local day)        ~1.1 M rows for 10 M events / 3,000 grids
unit_week_rollup       (holder unit, local ISO week)   ~160 k rows
unit_month_rollup      (holder unit, local month)      ~36 k rows: 8 months of 3,000 grids in ms
department_day_rollup  (department, local day)
A level's units add up their holders through unit_closure at query time, so these do not
depend on the tree and a change of the tree does not touch them.

Only *rolled-up units* get rows: those with leaf units (the smallest units, which hold the
events: grids in the demo) at least two levels below them (city, districts and streets in the
demo; ~1 M rows for 10 M events). Smaller units (communities, grids) have few events and are
answered from raw events through their indexes (cockpit.metrics.unit_view picks per unit).
Which units qualify follows the tree (rollup_units), whatever its levels are called.

Triggers maintain both for any writer, plain SQL included:
- events: statement-level INSERT/UPDATE/DELETE triggers add the new rows' measures and take
  the old rows' away (transition tables), so a close, a rating, an escalation or a moved
  point is reflected at once; TRUNCATE empties the rollups.
- event_transitions: an INSERT adds each new row's stint (time since the event's previous
  transition, or since it was reported) to stage_rollup. Transitions are append-only, in time
  order (docs/schema.md); anything else needs `cockpit rollup rebuild`.
- units: a change to the tree rebuilds the rollups when it changes which units are rolled up
  or where leaf units hang.

Days are local days of the time zone recorded in cockpit_state; if COCKPIT_TIMEZONE differs,
`cockpit migrate` rebuilds (and until then the drill-down reads raw events, correct but slow).

The SQL below is rendered from cockpit.metrics.measures, so the triggers count what the raw path
counts; migrations install it (a change here ships with a migration that re-installs).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cockpit.metrics.kpi import COUNT_NAMES, Period
from cockpit.metrics.measures import MEASURES, counted, signed
from cockpit.store.schema import events, metadata

log = logging.getLogger(__name__)

BUCKETS = 40  # half-octaves of minutes: 0 .. ~500 days, each bucket ~41% wide


def _bucket(seconds, m):
    """The duration bucket of `seconds`, in the arithmetic `m` (SQL text or numpy): the one formula
    behind cockpit_bucket() and the demo loader's own stage rollups, so both bucket alike."""
    return m.least(BUCKETS - 1, m.floor(2 * m.ln(1 + m.greatest(0, seconds) / 60) / m.ln(2)))


class _SqlText:
    """Just enough SQL arithmetic to render _bucket, parenthesised as Python grouped it."""
    SUM, PRODUCT, ATOM = 1, 2, 3

    def __init__(self, text: str, rank: int = ATOM):
        self.text, self.rank = text, rank

    @staticmethod
    def _of(x, rank: int, right: bool = False) -> str:
        x = x if isinstance(x, _SqlText) else _SqlText(repr(x))
        return f"({x.text})" if x.rank < rank or (right and x.rank == rank) else x.text

    def _op(self, other, op: str, rank: int, swap: bool = False) -> _SqlText:
        a, b = (other, self) if swap else (self, other)
        return _SqlText(f"{self._of(a, rank)} {op} {self._of(b, rank, right=True)}", rank)

    def __add__(self, o): return self._op(o, "+", self.SUM)
    def __radd__(self, o): return self._op(o, "+", self.SUM, swap=True)
    def __mul__(self, o): return self._op(o, "*", self.PRODUCT)
    def __rmul__(self, o): return self._op(o, "*", self.PRODUCT, swap=True)
    def __truediv__(self, o): return self._op(o, "/", self.PRODUCT)
    def __rtruediv__(self, o): return self._op(o, "/", self.PRODUCT, swap=True)

    @staticmethod
    def call(name: str):
        return lambda *args: _SqlText(f"{name}({', '.join(_SqlText._of(a, 0) for a in args)})")


_SQL_MATH = SimpleNamespace(**{f: _SqlText.call(f) for f in ("least", "greatest", "floor", "ln")})
_NUMPY_MATH = SimpleNamespace(least=np.minimum, greatest=np.maximum, floor=np.floor, ln=np.log)


def bucket_of(seconds: np.ndarray) -> np.ndarray:
    """cockpit_bucket() for durations in whole seconds, in numpy (the same float operations)."""
    return _bucket(seconds, _NUMPY_MATH).astype(np.int64)


rollup_units = sa.Table(
    "rollup_units", metadata,
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
)

cockpit_state = sa.Table(
    "cockpit_state", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

kpi_rollup = sa.Table(
    "kpi_rollup", metadata,
    sa.Column("unit_id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("grp", sa.Integer, primary_key=True, comment="category group: the item's parent, or the item"),
    sa.Column("source", sa.Text, primary_key=True),
    *(sa.Column(name, sa.Integer, nullable=False, server_default="0") for name in MEASURES),
)

def _rank_rollup(name: str, key: str, day_comment: str) -> sa.Table:
    # keyed by day first: a ranking reads every unit of a few consecutive days (or months)
    return sa.Table(
        name, metadata,
        sa.Column("day", sa.Date, primary_key=True, comment=day_comment),
        sa.Column(key, sa.Integer, primary_key=True),
        *(sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in COUNT_NAMES),
    )


unit_day_rollup = _rank_rollup("unit_day_rollup", "unit_id", "local day")
unit_week_rollup = _rank_rollup("unit_week_rollup", "unit_id", "Monday of the local ISO week")
unit_month_rollup = _rank_rollup("unit_month_rollup", "unit_id", "first local day of the month")
department_day_rollup = _rank_rollup("department_day_rollup", "department_id", "local day")

stage_rollup = sa.Table(
    "stage_rollup", metadata,
    sa.Column("unit_id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("stage", sa.Text, primary_key=True),
    sa.Column("bucket", sa.SmallInteger, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)


# -- SQL rendered from the measures ---------------------------------------------------------

def _sql(stmt) -> str:
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


TREE_JOIN = """JOIN unit_closure cl ON cl.descendant_id = d.grid_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id"""


def _measure_select(rows: str, tree_join: str = TREE_JOIN) -> str:
    """SELECT unit, day, group, source + signed measures FROM rows carrying a `sign` column.

    `tree_join` must bind `cl.ancestor_id` to the unit each row is added to.
    """
    d = sa.Table("d", sa.MetaData(), *(sa.Column(c.name, c.type) for c in events.c), sa.Column("sign", sa.Integer))
    sums = ",\n               ".join(f"{_sql(signed(d, d.c.sign, name).element)} AS {name}" for name in MEASURES)
    return f"""
        SELECT cl.ancestor_id AS unit_id,
               (d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
               coalesce(c.parent_id, c.id) AS grp, d.source AS source,
               {sums}
        FROM {rows} AS d
        JOIN categories c ON c.id = d.category_id
        {tree_join}
        GROUP BY 1, 2, 3, 4"""


def _upsert(select_sql: str) -> str:
    cols = ", ".join(MEASURES)
    updates = ", ".join(f"{m} = r.{m} + excluded.{m}" for m in MEASURES)
    return (f"INSERT INTO kpi_rollup AS r (unit_id, day, grp, source, {cols}) {select_sql}\n"
            f"        ON CONFLICT (unit_id, day, grp, source) DO UPDATE SET {updates}")


LOCAL_TIME = "(d.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))"
# table, its key column, the events' column it comes from, the local day (or month) of a row
RANK_ROLLUPS = (
    ("unit_day_rollup", "unit_id", "d.grid_id", f"{LOCAL_TIME}::date"),
    ("unit_week_rollup", "unit_id", "d.grid_id", f"date_trunc('week', {LOCAL_TIME})::date"),
    ("unit_month_rollup", "unit_id", "d.grid_id", f"date_trunc('month', {LOCAL_TIME})::date"),
    ("department_day_rollup", "department_id", "d.department_id", f"{LOCAL_TIME}::date"),
)


def _rank_upserts(rows: str) -> str:
    """Add the signed counts of `rows` (events-shaped, with `sign`) to the ranking rollups."""
    d = sa.Table("d", sa.MetaData(), *(sa.Column(c.name, c.type) for c in events.c), sa.Column("sign", sa.Integer))
    sums = ", ".join(_sql(signed(d, d.c.sign, name).element) for name in COUNT_NAMES)
    cols = ", ".join(COUNT_NAMES)
    updates = ", ".join(f"{n} = r.{n} + excluded.{n}" for n in COUNT_NAMES)
    return ";".join(f"""
        INSERT INTO {table} AS r ({key}, day, {cols})
        SELECT {source}, {day}, {sums}
        FROM {rows} AS d WHERE {source} IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (day, {key}) DO UPDATE SET {updates}""" for table, key, source, day in RANK_ROLLUPS)


def _rank_fill() -> str:
    """Fill the (emptied) ranking rollups from the events table; months from the days."""
    d = events.alias("d")
    counts = ", ".join(_sql(counted(d, name).element) for name in COUNT_NAMES)
    cols = ", ".join(COUNT_NAMES)
    out = []
    for table, key, source, day in RANK_ROLLUPS:
        if table in ("unit_week_rollup", "unit_month_rollup"):
            unit = "week" if table == "unit_week_rollup" else "month"
            out.append(f"""
        INSERT INTO {table} ({key}, day, {cols})
        SELECT unit_id, date_trunc('{unit}', day)::date, {", ".join(f"sum({n})" for n in COUNT_NAMES)}
        FROM unit_day_rollup GROUP BY 1, 2 ORDER BY 2""")
        else:
            out.append(f"""
        INSERT INTO {table} ({key}, day, {cols})
        SELECT {source}, {day}, {counts}
        FROM events AS d WHERE {source} IS NOT NULL GROUP BY 1, 2 ORDER BY 2""")
    return ";".join(out)


def _stints_select(stints: str, tree_join: str = TREE_JOIN.replace("d.grid_id", "e.grid_id"),
                   event_rows: str = "events", sign: int = 1) -> str:
    """SELECT unit, day, stage, bucket, count FROM transitions carrying `prev_at`.

    `event_rows` supplies each event's grid and report time (the table, or old/new rows).
    """
    return f"""
    SELECT cl.ancestor_id AS unit_id,
           (e.reported_at AT TIME ZONE (SELECT value FROM cockpit_state WHERE key = 'timezone'))::date AS day,
           t.from_status AS stage, cockpit_bucket(t.at - coalesce(t.prev_at, e.reported_at)) AS bucket,
           {sign} * count(*) AS n
    FROM {stints} t
    JOIN {event_rows} e ON e.id = t.event_id
    {tree_join}
    WHERE t.from_status IS NOT NULL
    GROUP BY 1, 2, 3, 4"""


def _stints_of(event_rows: str, sign: int) -> str:
    """The stints of all transitions of the given events, placed by those rows' grid and day."""
    stints = f"""(SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t WHERE t.event_id IN (SELECT id FROM {event_rows} x))"""
    return _stints_select(stints, event_rows=event_rows, sign=sign)


def _stage_upsert(select_sql: str) -> str:
    return (f"INSERT INTO stage_rollup AS r (unit_id, day, stage, bucket, n)\n"
            f"        SELECT unit_id, day, stage, bucket, sum(n) FROM ({select_sql}) s GROUP BY 1, 2, 3, 4\n"
            f"        ON CONFLICT (unit_id, day, stage, bucket) DO UPDATE SET n = r.n + excluded.n")


def added_events_statements(rows: str) -> list[str]:
    """Add the measures of the events in relation `rows` to kpi_rollup and the ranking rollups:
    what the INSERT trigger runs on its new rows, and what a bulk import runs once on the rows it
    inserted unseen (one statement each)."""
    delta = f"(SELECT *, 1 AS sign FROM {rows})"
    return [_upsert(_measure_select(delta)), *_rank_upserts(delta).split(";")]


def added_events_sql(rows: str) -> str:
    return ";".join(added_events_statements(rows))


def added_transitions_sql(rows: str) -> str:
    """Add the stints of the transitions in relation `rows` (appended after their events' earlier
    ones) to stage_rollup: the transitions INSERT trigger's work, reused by bulk imports."""
    new_stints = f"""(SELECT n.*, (SELECT max(p.at) FROM event_transitions p
                         WHERE p.event_id = n.event_id AND (p.at, p.id) < (n.at, n.id)) AS prev_at
                  FROM {rows} n)"""
    return added_stints_sql(new_stints)


def added_stints_sql(stints: str) -> str:
    """Add the stints in relation `stints` (transitions carrying their `prev_at`) to stage_rollup."""
    return f"""INSERT INTO stage_rollup AS r (unit_id, day, stage, bucket, n)
        {_stints_select(stints)}
        ON CONFLICT (unit_id, day, stage, bucket) DO UPDATE SET n = r.n + excluded.n"""


def install_sql() -> list[str]:
    """Functions and triggers that keep the rollups right (run by migrations)."""
    delta_delete = "(SELECT *, -1 AS sign FROM old_rows)"
    delta_update = "(SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 AS sign FROM old_rows)"
    heights = """
        SELECT cl.ancestor_id FROM unit_closure cl JOIN units d ON d.id = cl.descendant_id
        WHERE NOT EXISTS (SELECT 1 FROM units k WHERE k.parent_id = d.id)
        GROUP BY cl.ancestor_id HAVING max(cl.depth) >= 2"""
    fn = []
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_bucket(spent interval) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT {_bucket(_SqlText("extract(epoch FROM spent)::float8"), _SQL_MATH).text}::smallint
    $$""")
    # An event that changes grid or report time takes its stints along; one deleted takes
    # them away (row-level BEFORE DELETE: its transitions still exist then).
    moved = ("(SELECT {side}.* FROM old_rows o JOIN new_rows n ON n.id = o.id "
             "WHERE (o.grid_id, o.reported_at) IS DISTINCT FROM (n.grid_id, n.reported_at))")
    stints_moved = f"""
        {_stage_upsert(_stints_of(moved.format(side="o"), -1) + " UNION ALL " + _stints_of(moved.format(side="n"), 1))};"""
    for op, delta in (("insert", None), ("update", delta_update), ("delete", delta_delete)):
        fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {added_events_sql("new_rows") if delta is None else _upsert(_measure_select(delta)) + ";" + _rank_upserts(delta)};{stints_moved if op == "update" else ""}
        RETURN NULL;
    END $$""")
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rollup_event_gone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- an UPDATE moving the event to another month's partition deletes and inserts it inside
        -- PostgreSQL: its stints stay (the statement UPDATE trigger moves them)
        IF current_setting('cockpit.moving_event', true) = OLD.id::text THEN
            PERFORM set_config('cockpit.moving_event', '', true);
            RETURN OLD;
        END IF;
        {_stage_upsert(_stints_of("(SELECT OLD.id AS id, OLD.reported_at AS reported_at, OLD.grid_id AS grid_id)", -1))};
        RETURN OLD;
    END $$""")
    # Which partition a row is in is the trigger's own table (row triggers fire on the partition):
    # when the new reported_at belongs to another, the UPDATE is a move (docs/schema.md §2a).
    fn.append("""
    CREATE OR REPLACE FUNCTION cockpit_rollup_event_moving() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- by the catalog, not to_regclass: writers have no USAGE on the schema internal
        IF (SELECT relname FROM pg_class WHERE oid = TG_RELID) <> coalesce(
               (SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'internal'
                  AND c.relname = 'events_' || to_char(NEW.reported_at AT TIME ZONE 'UTC', 'YYYYMM')),
               'events_default') THEN
            PERFORM set_config('cockpit.moving_event', OLD.id::text, true);
        END IF;
        RETURN NEW;
    END $$""")
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rank_rollups_fill() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        -- the day rollups from all events; weeks and months from the days
        TRUNCATE {", ".join(t[0] for t in RANK_ROLLUPS)};{_rank_fill()};
    END $$""")
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rollup_events_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM kpi_rollup;
        DELETE FROM stage_rollup;
        {"; ".join(f"DELETE FROM {t[0]}" for t in RANK_ROLLUPS)};
        RETURN NULL;
    END $$""")
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rollup_transitions_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {added_transitions_sql("new_rows")};
        RETURN NULL;
    END $$""")
    all_stints = """(SELECT t.*, lag(t.at) OVER (PARTITION BY t.event_id ORDER BY t.at, t.id) AS prev_at
                  FROM event_transitions t)"""
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM rollup_units;
        INSERT INTO rollup_units (unit_id) {heights};
        TRUNCATE kpi_rollup, stage_rollup;
        -- events are added up once per grid's lowest rolled-up unit, then carried up the tree
        CREATE TEMP TABLE lowest ON COMMIT DROP AS
            SELECT DISTINCT ON (cl.descendant_id) cl.descendant_id AS grid_id, cl.ancestor_id AS unit_id
            FROM unit_closure cl JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
            ORDER BY cl.descendant_id, cl.depth;
        ANALYZE lowest;
        CREATE TEMP TABLE base ON COMMIT DROP AS {_measure_select(
            "(SELECT e.*, 1 AS sign FROM events e)",
            "JOIN lowest cl(descendant_id, ancestor_id) ON cl.descendant_id = d.grid_id")};
        ANALYZE base;
        INSERT INTO kpi_rollup (unit_id, day, grp, source, {", ".join(MEASURES)})
        SELECT cl.ancestor_id, b.day, b.grp, b.source, {", ".join(f"sum(b.{m})" for m in MEASURES)}
        FROM base b JOIN unit_closure cl ON cl.descendant_id = b.unit_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4;
        CREATE TEMP TABLE stage_base ON COMMIT DROP AS {_stints_select(
            all_stints, "JOIN lowest cl(descendant_id, ancestor_id) ON cl.descendant_id = e.grid_id")};
        ANALYZE stage_base;
        INSERT INTO stage_rollup (unit_id, day, stage, bucket, n)
        SELECT cl.ancestor_id, b.day, b.stage, b.bucket, sum(b.n)
        FROM stage_base b JOIN unit_closure cl ON cl.descendant_id = b.unit_id
        JOIN rollup_units ru ON ru.unit_id = cl.ancestor_id
        GROUP BY 1, 2, 3, 4;
        DROP TABLE lowest, base, stage_base;
        PERFORM cockpit_rank_rollups_fill();
    END $$""")
    fn.append(f"""
    CREATE OR REPLACE FUNCTION cockpit_rollup_units_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- rebuild when the set of rolled-up units changes, or when a unit moved in the tree
        IF TG_OP = 'UPDATE' OR EXISTS (
            ({heights}) EXCEPT SELECT unit_id FROM rollup_units
        ) OR EXISTS (
            SELECT unit_id FROM rollup_units EXCEPT ({heights})
        ) THEN
            PERFORM cockpit_rollup_rebuild();
        END IF;
        RETURN NULL;
    END $$""")
    triggers = [
        "CREATE TRIGGER events_rollup_insert AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_insert()",
        "CREATE TRIGGER events_rollup_update AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows "
        "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_update()",
        "CREATE TRIGGER events_rollup_delete AFTER DELETE ON events REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_delete()",
        "CREATE TRIGGER events_rollup_gone BEFORE DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION cockpit_rollup_event_gone()",
        "CREATE TRIGGER events_rollup_moving BEFORE UPDATE OF reported_at ON events "
        "FOR EACH ROW EXECUTE FUNCTION cockpit_rollup_event_moving()",
        "CREATE TRIGGER events_rollup_truncate AFTER TRUNCATE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_events_truncate()",
        "CREATE TRIGGER transitions_rollup_insert AFTER INSERT ON event_transitions REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_transitions_insert()",
        # after units_closure_refresh (trigger names fire in alphabetical order)
        "CREATE TRIGGER units_rollup_refresh AFTER INSERT OR DELETE OR UPDATE OF parent_id ON units "
        "FOR EACH STATEMENT EXECUTE FUNCTION cockpit_rollup_units_changed()",
    ]
    return fn + triggers


def uninstall_sql() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS units_rollup_refresh ON units",
        "DROP TRIGGER IF EXISTS transitions_rollup_insert ON event_transitions",
        *(f"DROP TRIGGER IF EXISTS events_rollup_{op} ON events" for op in ("insert", "update", "delete", "truncate", "gone",
                                                                           "moving")),
        "DROP FUNCTION IF EXISTS cockpit_rollup_event_gone()",
        "DROP FUNCTION IF EXISTS cockpit_rollup_event_moving()",
        "DROP FUNCTION IF EXISTS cockpit_rollup_units_changed()",
        "DROP FUNCTION IF EXISTS cockpit_rollup_rebuild()",
        "DROP FUNCTION IF EXISTS cockpit_rank_rollups_fill()",
        "DROP FUNCTION IF EXISTS cockpit_rollup_transitions_insert()",
        *(f"DROP FUNCTION IF EXISTS cockpit_rollup_events_{op}()" for op in ("insert", "update", "delete", "truncate")),
        "DROP FUNCTION IF EXISTS cockpit_bucket(interval)",
    ]


# -- keeping it in step with the settings ---------------------------------------------------

def recorded_timezone(conn: sa.Connection) -> str | None:
    return conn.execute(sa.select(cockpit_state.c.value).where(cockpit_state.c.key == "timezone")).scalar()


def rebuild(conn: sa.Connection, tz: ZoneInfo) -> None:
    """Recompute both rollups from the raw tables, for days in time zone `tz`."""
    conn.execute(postgresql.insert(cockpit_state).values(key="timezone", value=tz.key)
                 .on_conflict_do_update(index_elements=["key"], set_={"value": tz.key}))
    conn.execute(sa.text("SET LOCAL work_mem = '512MB'"))
    conn.execute(sa.text("SELECT cockpit_rollup_rebuild()"))


def fill_rank_rollups(conn: sa.Connection) -> None:
    """Refill the ranking rollups from the events (after a bulk load that bypassed the triggers)."""
    conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    conn.execute(sa.text("SELECT cockpit_rank_rollups_fill()"))


def status(conn: sa.Connection) -> list[str]:
    """Lines for `cockpit rollup status`."""
    n_units = conn.execute(sa.select(sa.func.count()).select_from(rollup_units)).scalar()
    n_kpi = conn.execute(sa.select(sa.func.count()).select_from(kpi_rollup)).scalar()
    n_stage = conn.execute(sa.select(sa.func.count()).select_from(stage_rollup)).scalar()
    return [f"time zone: {recorded_timezone(conn) or '(not built)'}", f"rolled-up units: {n_units:,}",
            f"kpi_rollup rows: {n_kpi:,}", f"stage_rollup rows: {n_stage:,}"]


def ensure_timezone(conn: sa.Connection, tz: ZoneInfo) -> bool:
    """Rebuild if the rollups were made for another time zone; True if it rebuilt."""
    if recorded_timezone(conn) == tz.key:
        return False
    rebuild(conn, tz)
    return True


# -- reading --------------------------------------------------------------------------------

def rolled_up(conn: sa.Connection, unit_ids: Iterable[int], tz: ZoneInfo) -> set[int]:
    """Which of these units can be answered from the rollups (in this time zone)."""
    if recorded_timezone(conn) != tz.key:
        log.warning("rollups are for another time zone: reading raw events (run `cockpit rollup rebuild`)")
        return set()
    ids = list(unit_ids)
    return set(conn.execute(sa.select(rollup_units.c.unit_id).where(rollup_units.c.unit_id.in_(ids))).scalars())


def _where(period: Period, filters, gid: int | None) -> list:
    r = kpi_rollup
    conds = [r.c.day >= period.first, r.c.day < period.end]
    if filters.source:
        conds.append(r.c.source == filters.source)
    if gid is not None:
        conds.append(r.c.grp == gid)
    return conds


def totals(conn: sa.Connection, unit_ids: list[int], period: Period, filters, gid: int | None) -> dict[int, dict]:
    if not unit_ids:
        return {}
    r = kpi_rollup
    q = (sa.select(r.c.unit_id, *(sa.func.sum(r.c[m]).label(m) for m in MEASURES))
         .where(r.c.unit_id.in_(unit_ids), *_where(period, filters, gid)).group_by(r.c.unit_id)
         .having(sa.func.sum(r.c.volume) != 0))  # rows emptied by deletes count as absent
    return {row.unit_id: {k: int(v) for k, v in row._asdict().items()} for row in conn.execute(q)}


def breakdown(conn: sa.Connection, unit_id: int, period: Period, filters, gid: int | None) -> list[dict]:
    """Same shape as unit_view.raw_breakdown: grouping sets (), day, group, source."""
    r = kpi_rollup
    q = (sa.select(r.c.day, r.c.grp, r.c.source, *(sa.func.sum(r.c[m]).label(m) for m in MEASURES),
                   sa.func.grouping(r.c.day, r.c.grp, r.c.source).label("g"))
         .where(r.c.unit_id == unit_id, *_where(period, filters, gid))
         .group_by(sa.func.grouping_sets(sa.tuple_(), sa.tuple_(r.c.day), sa.tuple_(r.c.grp), sa.tuple_(r.c.source)))
         .having(sa.func.sum(r.c.volume) != 0))
    out = []
    for row in conn.execute(q):
        d = row._asdict()
        out.append({k: (int(v or 0) if k in MEASURES else v) for k, v in d.items()})
    return out


def stage_histogram(conn: sa.Connection, unit_id: int, period: Period) -> dict[str, list[int]]:
    s = stage_rollup
    q = (sa.select(s.c.stage, s.c.bucket, sa.func.sum(s.c.n).label("n"))
         .where(s.c.unit_id == unit_id, s.c.day >= period.first, s.c.day < period.end)
         .group_by(s.c.stage, s.c.bucket))
    return histograms(conn.execute(q))


# -- durations ------------------------------------------------------------------------------

def bucket_sql(spent: sa.ColumnElement) -> sa.ColumnElement:
    return sa.func.cockpit_bucket(spent)


def bucket_edges(b: int) -> tuple[float, float]:
    """The minutes bucket b covers: [2^(b/2) - 1, 2^((b+1)/2) - 1)."""
    return 2 ** (b / 2) - 1, 2 ** ((b + 1) / 2) - 1


def histograms(rows) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for stage, bucket, n in rows:
        out.setdefault(stage, [0] * BUCKETS)[bucket] += int(n)
    return out


def median_minutes(hist: list[int] | None) -> float | None:
    """The median of a bucketed distribution, interpolated geometrically inside its bucket."""
    if not hist or sum(hist) == 0:
        return None
    half = sum(hist) / 2
    seen = 0
    for b, n in enumerate(hist):
        if n and seen + n >= half:
            lo, hi = bucket_edges(b)
            frac = (half - seen) / n
            return math.exp(math.log1p(lo) + frac * (math.log1p(hi) - math.log1p(lo))) - 1
        seen += n
    return None



# -- the rankings' counts ---------------------------------------------------------------------

def rank_counts_query(by: str, level: str | None, bounds: list) -> sa.Select:
    """Counts per unit of `level` (or per department) and period k (1..len(bounds)-1), for the
    consecutive periods [bounds[k-1], bounds[k]) of local days, from the ranking rollups.

    Whole months read the month rows (8 months of 3,000 grids: 24 k rows instead of 730 k),
    whole ISO weeks the week rows (24 k instead of 168 k), anything else the day rows.
    Holders are added up per period first, then carried to their unit of the level.
    """
    from cockpit.store.schema import unit_closure, units

    if by == "department":
        t, key = department_day_rollup, department_day_rollup.c.department_id
    else:
        t = (unit_month_rollup if all(b.day == 1 for b in bounds)
             else unit_week_rollup if all(b.weekday() == 0 for b in bounds) else unit_day_rollup)
        key = t.c.unit_id
    k = sa.func.width_bucket(t.c.day, sa.cast(sa.literal(list(bounds)), sa.ARRAY(sa.Date))).label("k")
    per_holder = (sa.select(key.label("id"), k, *(sa.func.sum(t.c[n]).label(n) for n in COUNT_NAMES))
                  .where(t.c.day >= bounds[0], t.c.day < bounds[-1])
                  .group_by(key, k).having(sa.func.sum(t.c.volume) != 0))  # emptied by deletes: absent
    if by == "department":
        return per_holder
    h = per_holder.cte("h")
    # sums of bigints are numeric: cast back, so that rows arrive as plain integers
    return (sa.select(unit_closure.c.ancestor_id.label("id"), h.c.k,
                      *(sa.cast(sa.func.sum(h.c[n]), sa.BigInteger).label(n) for n in COUNT_NAMES))
            .select_from(h.join(unit_closure, unit_closure.c.descendant_id == h.c.id)
                         .join(units, units.c.id == unit_closure.c.ancestor_id))
            .where(units.c.level == level).group_by(unit_closure.c.ancestor_id, h.c.k))


def level_rolled_up(conn: sa.Connection, level: str, tz: ZoneInfo) -> bool:
    """Whether every unit of the level has kpi_rollup rows (in this time zone)."""
    from cockpit.store.schema import units

    if recorded_timezone(conn) != tz.key:
        return False
    missing = sa.select(units.c.id).where(units.c.level == level, units.c.id.not_in(sa.select(rollup_units.c.unit_id)))
    return conn.execute(sa.select(sa.exists(missing))).scalar() is False


def filtered_rank_counts_query(level: str, bounds: list, source: str | None, gid: int | None) -> sa.Select:
    """rank_counts_query's rows for a level whose units are all rolled up, from kpi_rollup, which
    keeps category group and source: the rankings' filtered path for the larger units."""
    from cockpit.store.schema import units

    r = kpi_rollup
    k = sa.func.width_bucket(r.c.day, sa.cast(sa.literal(list(bounds)), sa.ARRAY(sa.Date))).label("k")
    conds = [r.c.unit_id.in_(sa.select(units.c.id).where(units.c.level == level)),
             r.c.day >= bounds[0], r.c.day < bounds[-1]]
    if source:
        conds.append(r.c.source == source)
    if gid is not None:
        conds.append(r.c.grp == gid)
    return (sa.select(r.c.unit_id.label("id"), k,
                      *(sa.cast(sa.func.sum(r.c[n]), sa.BigInteger).label(n) for n in COUNT_NAMES))
            .where(*conds).group_by(r.c.unit_id, k).having(sa.func.sum(r.c.volume) != 0))
