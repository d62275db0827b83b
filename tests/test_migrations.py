"""The migrations stand on their own and build what today's code expects.

Revisions hold frozen SQL (docs/schema.md §7): they never call cockpit.metrics. So the day the
measures, a trigger function or a table change in the code without a new revision, a store
migrated from empty no longer matches the code, and these tests say so.
"""
from __future__ import annotations

import ast
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cockpit import store
from cockpit.access import policies
from cockpit.metrics import changes, heat, rollup  # heat and rollup register their tables on the metadata
from cockpit.store import migrate, triggers
from cockpit.store.migrate import MIGRATIONS, include_object
from cockpit.store.schema import metadata

NEW_REVISION = "add a new migration revision (docs/schema.md §7)"
SCRIPTS = ScriptDirectory.from_config(migrate.alembic_config(None))
HEAD = SCRIPTS.get_current_head()
REVISIONS = [r.revision for r in reversed(list(SCRIPTS.walk_revisions()))]  # base first

FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(", re.I)
TRIGGER = re.compile(r"CREATE\s+TRIGGER\s+(\w+)\s.*?\sON\s+(\w+)\s", re.I | re.S)


def expected_sql() -> list[str]:
    """Every function and trigger the code means a store at head to have, as today's code writes it."""
    return (triggers.install_sql() + rollup.install_sql() + heat.install_sql() + changes.install_sql()
            + policies.install_sql())


def _ours(oid: str) -> str:
    """Not a member of an extension (PostGIS's functions, spatial_ref_sys)."""
    return f"NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.objid = {oid} AND x.deptype = 'e')"


CATALOG = {
    "columns": f"""
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped AND {_ours("c.oid")}""",
    "constraints": f"""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND conrelid <> 0 AND {_ours("conrelid")}
          AND conparentid = 0  -- not a partitioned foreign key's copies, one a partition""",
    "indexes": f"""
        SELECT c.relname, i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
        WHERE c.relnamespace = 'public'::regnamespace AND {_ours("c.oid")}""",
    "sequences": f"""
        SELECT c.relname, s.seqtypid::regtype::text, s.seqstart, s.seqincrement, s.seqmin, s.seqmax
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        WHERE c.relnamespace = 'public'::regnamespace AND {_ours("c.oid")}""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal""",
    "functions": f"""
        SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p
        WHERE pronamespace = 'public'::regnamespace AND prokind = 'f' AND {_ours("p.oid")}""",
}
TABLE_PARTS = ("columns", "constraints", "indexes", "sequences")


def catalog(conn: sa.Connection, parts=tuple(CATALOG), skip_tables=()) -> dict[str, list[tuple]]:
    """Our objects in the public schema, as PostgreSQL prints them, sorted."""
    out = {}
    for part in parts:
        rows = [tuple(r) for r in conn.execute(sa.text(CATALOG[part]))]
        out[part] = sorted((r for r in rows if r[0] not in skip_tables), key=repr)
    return out


@pytest.fixture(scope="module")
def migrated(databases) -> sa.Engine:
    """An empty database taken from base to head (read-only for the tests here)."""
    eng = store.engine(databases.create("migrations", migrated=False))
    migrate.upgrade(eng)
    return eng


def test_revisions_hold_their_own_sql():
    """No revision imports today's code beyond configuration (cockpit.config)."""
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
        ours = {m for m in imported if m == "cockpit" or m.startswith("cockpit.")}
        assert ours <= {"cockpit.config"}, f"{path.name} imports {sorted(ours)}: freeze the SQL in the revision"


def test_empty_store_migrates_to_the_declared_tables(migrated, databases):
    assert migrate.current(migrated) == HEAD
    with migrated.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True,
                                                     "compare_server_default": True})
        diffs = compare_metadata(ctx, metadata)
        assert diffs == [], f"the migrations do not build cockpit.store.schema.metadata: {NEW_REVISION}"
        built = catalog(conn, TABLE_PARTS, skip_tables={"alembic_version"})
    # Alembic does not compare everything (an index's INCLUDE or WHERE): compare the catalog
    # with a database made straight from the metadata.
    declared = store.engine(databases.create("declared", migrated=False))
    with declared.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        metadata.create_all(conn)
    with declared.connect() as conn:
        wanted = catalog(conn, TABLE_PARTS)
    for part in TABLE_PARTS:
        assert built[part] == wanted[part], f"{part} differ from cockpit.store.schema.metadata: {NEW_REVISION}"
    assert {r[0] for r in built["columns"]} >= {"events", "kpi_rollup", "stage_rollup", "heat_rollup"}


def test_functions_and_triggers_are_what_the_code_generates(migrated):
    statements = expected_sql()
    functions = {FUNCTION.search(s).group(1) for s in statements if FUNCTION.search(s)}
    triggers = {TRIGGER.search(s).group(1) for s in statements if not FUNCTION.search(s)}
    assert len(functions) + len(triggers) == len(statements) and len(functions) >= 15 and len(triggers) >= 15
    with migrated.connect() as conn:
        have = catalog(conn, ("functions", "triggers"))
        assert {r[0] for r in have["functions"]} == functions, f"functions differ from the code's: {NEW_REVISION}"
        assert {r[1] for r in have["triggers"]} == triggers, f"triggers differ from the code's: {NEW_REVISION}"
        # Define each one again as today's code does, in a transaction rolled back: PostgreSQL
        # must print the same definition (body, signature, language, trigger events) as before.
        for statement in statements:
            fn = FUNCTION.search(statement)
            name = fn.group(1) if fn else TRIGGER.search(statement).group(1)
            try:
                with conn.begin_nested():
                    if fn:
                        conn.exec_driver_sql(FUNCTION.sub(r"CREATE OR REPLACE FUNCTION \1(", statement, count=1))
                    else:
                        conn.exec_driver_sql(f"DROP TRIGGER {name} ON {TRIGGER.search(statement).group(2)}")
                        conn.exec_driver_sql(statement)
            except sa.exc.DBAPIError as exc:
                pytest.fail(f"today's {name} cannot replace the migrated one ({exc.orig}): {NEW_REVISION}")
        now = catalog(conn, ("functions", "triggers"))
        conn.rollback()
    migrated_defs = {r[-2]: r[-1] for part in ("functions", "triggers") for r in have[part]}
    current_defs = {r[-2]: r[-1] for part in ("functions", "triggers") for r in now[part]}
    differ = [name for name in sorted(functions | triggers) if migrated_defs[name] != current_defs[name]]
    assert differ == [], f"in a migrated store these are not what today's code generates: {NEW_REVISION} that installs them"


def test_each_revision_goes_down_and_up_again_to_the_same_schema(databases):
    eng = store.engine(databases.create("roundtrip", migrated=False))
    migrate.upgrade(eng)
    at = {}
    for rev in reversed(REVISIONS):  # head first, one step down at a time
        with eng.connect() as conn:
            at[rev] = catalog(conn)
        assert at[rev]["functions"] and at[rev]["triggers"]
        migrate.downgrade(eng, SCRIPTS.get_revision(rev).down_revision or "base")
    with eng.connect() as conn:
        left = catalog(conn)
    assert migrate.current(eng) is None
    assert {r[0] for part in TABLE_PARTS for r in left[part]} == {"alembic_version"}
    assert left["functions"] == [] and left["triggers"] == []
    for rev in REVISIONS:
        migrate.upgrade(eng, rev)
        with eng.connect() as conn:
            again = catalog(conn)
        for part in CATALOG:
            assert again[part] == at[rev][part], f"{part} at {rev} differ after going down and up again"


CITY = """
INSERT INTO units (code, name, level, geom) VALUES ('C', 'city', 'city', ST_Multi(ST_MakeEnvelope(114, 22, 115, 23, 4326)));
INSERT INTO units (code, name, level, parent_id, geom) SELECT 'C-1', 'community', 'community', id, geom FROM units;
INSERT INTO units (code, name, level, parent_id, geom)
SELECT 'C-1-' || g, 'grid', 'grid', (SELECT id FROM units WHERE code = 'C-1'),
       ST_Multi(ST_MakeEnvelope(114 + (g - 1) * 0.5, 22, 114 + g * 0.5, 23, 4326))
FROM generate_series(1, 2) g;
INSERT INTO categories (code, name) VALUES ('G', 'group');
INSERT INTO categories (code, name, parent_id, deadline_hours) SELECT 'G1', 'item', id, 24 FROM categories;
-- one event every 11 hours back from now: 17 of them in the heat rollup's 8 days
INSERT INTO events (source, external_id, category_id, reported_at, location, status, handling_level,
                    deadline_at, closed_at, rating)
SELECT (ARRAY['hotline_12345', 'grid_app'])[1 + g % 2], 'e' || g, (SELECT id FROM categories WHERE code = 'G1'),
       now() - g * interval '11 hours', ST_SetSRID(ST_MakePoint(114.01 + g * 0.02, 22.5), 4326),
       CASE WHEN g % 3 = 0 THEN 'closed' ELSE 'handling' END, 'community',
       now() - g * interval '11 hours' + interval '1 day',
       CASE WHEN g % 3 = 0 THEN now() - g * interval '11 hours' + interval '2 hours' END,
       CASE WHEN g % 3 = 0 THEN 1 + g % 5 END
FROM generate_series(1, 40) g;
INSERT INTO event_transitions (event_id, from_status, to_status, at)
SELECT id, NULL, 'reported', reported_at FROM events
UNION ALL SELECT id, 'reported', 'handling', reported_at + interval '30 minutes' FROM events
"""


def _rows(conn: sa.Connection, table: str) -> set[tuple]:
    return {tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))}


def test_upgrade_builds_the_rollups_from_existing_events_in_the_configured_zone(databases, monkeypatch):
    zone = ZoneInfo("America/New_York")  # local days far from the default Asia/Shanghai
    monkeypatch.setenv("COCKPIT_TIMEZONE", zone.key)
    eng = store.engine(databases.create("upgrade_data", migrated=False))
    migrate.upgrade(eng, REVISIONS[0])
    with eng.begin() as conn:
        for statement in CITY.split(";"):
            conn.execute(sa.text(statement))
    migrate.upgrade(eng)
    with eng.begin() as conn:
        assert conn.execute(sa.text("SELECT value FROM cockpit_state WHERE key = 'timezone'")).scalar() == zone.key
        city = conn.execute(sa.text("SELECT id FROM units WHERE code = 'C'")).scalar()
        assert _rows(conn, "rollup_units") == {(city,)}
        assert conn.execute(sa.text("SELECT sum(volume), sum(closed) FROM kpi_rollup")).one() == (40, 13)
        assert conn.execute(sa.text("SELECT sum(n) FROM stage_rollup")).scalar() == 40
        assert conn.execute(sa.text("SELECT sum(n) FROM heat_rollup")).scalar() == 17
        built = {t: _rows(conn, t) for t in ("kpi_rollup", "stage_rollup", "heat_rollup", "heat_frame")}
        # today's rebuilds make the same rows, in this zone and not in the default one
        rollup.rebuild(conn, zone)
        heat.rebuild(conn)
        assert built == {t: _rows(conn, t) for t in built}
        rollup.rebuild(conn, ZoneInfo("Asia/Shanghai"))
        assert _rows(conn, "kpi_rollup") != built["kpi_rollup"]
        conn.rollback()
