"""Tiered access in the store itself (migration 0011), by plain SQL on real PostGIS: row-level
security as the web app's role `cockpit_app`, masked and revealed contacts, the append-only audit
log, sign-in throttling and one-time links, revoked wall tokens, and the policies' use of indexes."""
from __future__ import annotations

from datetime import datetime

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, ProgrammingError

from cockpit import store
from cockpit.access import audit, scope, users, walltokens
from cockpit.access.people import Person
from cockpit.config import settings
from cockpit.errors import Forbidden, Unauthorized
from conftest import FOUR_GRIDS, app_url, box_city

# FOUR_GRIDS with a street between each district and its grids, so that the districts are rolled
# up too (units with leaves two levels below: cockpit/metrics/rollup.py) and kpi_rollup has their rows
CITY = [u for u in FOUR_GRIDS if u[2] != "grid"] + [
    ("S1", "西区街道", "street", "D1", (10, 50, 11, 52)), ("S2", "东区街道", "street", "D2", (11, 50, 12, 52))] + [
    (code, name, level, "S" + parent[1], box) for code, name, level, parent, box in FOUR_GRIDS if level == "grid"]
D1_UNITS = {"D1", "S1", "G11", "G12"}
# tables holding per-unit rows, by the column naming the unit
UNIT_TABLES = {"rollup_units": "unit_id", "kpi_rollup": "unit_id", "stage_rollup": "unit_id",
               "unit_day_rollup": "unit_id", "unit_week_rollup": "unit_id", "unit_month_rollup": "unit_id",
               "warnings": "unit_id", "events": "grid_id"}
CITY_TABLES = ("department_day_rollup",)
OPERATOR_TABLES = ("imports", "quarantine")  # raw rows of import files: never the web's to read
# (external id, lon, lat, reporter, phone): two events in D1 (G11, G12), one in D2 (G21)
EVENTS = [("w1", 10.5, 50.5, "张三", "13812345678"), ("w2", 10.5, 51.5, "王小明", "13900001111"),
          ("e1", 11.5, 50.5, "李四", "13787654321")]


@pytest.fixture(scope="module")
def city(databases):
    """A city of two districts with events, transitions, warnings, an import and a quarantined row,
    all written as the owner (the rollups and heat fill by trigger). -> (owner url, {ext: event id})"""
    url = databases.create("access_store")
    box_city(url, CITY)
    ids = {}
    with store.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO categories (code, name, deadline_hours) VALUES ('X', '测试', 24)"))
        conn.execute(sa.text("INSERT INTO departments (code, name) VALUES ('CG', '城管局')"))
        for ext, lon, lat, name, phone in EVENTS:
            ids[ext] = conn.execute(sa.text("""
                INSERT INTO events (source, external_id, category_id, reported_at, location, deadline_at,
                                    reporter_name, reporter_phone, department_id)
                SELECT 'hotline_12345', :ext, c.id, now() - interval '1 hour', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                       now() + interval '1 day', :name, :phone, (SELECT id FROM departments WHERE code = 'CG')
                FROM categories c WHERE c.code = 'X' RETURNING id"""),
                {"ext": ext, "lon": lon, "lat": lat, "name": name, "phone": phone}).scalar()
            conn.execute(sa.text("""
                INSERT INTO event_transitions (event_id, event_reported_at, from_status, to_status, at, unit_id)
                SELECT id, reported_at, 'reported', 'dispatched', now() - interval '30 minutes', grid_id FROM events WHERE id = :id"""),
                {"id": ids[ext]})
        for code in ("G11", "G21"):
            conn.execute(sa.text("""
                INSERT INTO warnings (kind, unit_id, "window", window_start, window_end, observed, key, first_seen, last_seen)
                SELECT 'surge', id, '24h', now() - interval '1 day', now(), 5, 'surge:' || code, now(), now()
                FROM units WHERE code = :c"""), {"c": code})
        imp = conn.execute(sa.text("INSERT INTO imports (file_name, format) VALUES ('a.csv', 'csv') RETURNING id")).scalar()
        conn.execute(sa.text("INSERT INTO quarantine (import_id, file_name, row_no, raw, reason) "
                             "VALUES (:i, 'a.csv', 2, '{\"id\": \"x\"}', 'unreadable_row')"), {"i": imp})
    return url, ids


@pytest.fixture(scope="module")
def owner(city):
    return store.engine(city[0])


@pytest.fixture(scope="module")
def app(city):
    eng = sa.create_engine(app_url(city[0]))
    yield eng
    eng.dispose()


def put(conn, scope_unit: str | None = None, role: str = "leader", actor: str = "tester", address: str = "") -> None:
    """What the web layer does on each request: transaction-local settings."""
    if scope_unit is not None:
        conn.execute(sa.text(
            "SELECT set_config('cockpit.scope_unit', :s, true), set_config('cockpit.role', :r, true), "
            "set_config('cockpit.actor', :a, true), set_config('cockpit.actor_kind', 'user', true), "
            "set_config('cockpit.address', :ad, true)"), {"s": scope_unit, "r": role, "a": actor, "ad": address})


def unit_ids(conn, codes) -> set[int]:
    return set(conn.execute(sa.text("SELECT id FROM units WHERE code = ANY(:c)"), {"c": list(codes)}).scalars())


def rows_by_unit(conn) -> dict[str, list[int]]:
    return {t: sorted(conn.execute(sa.text(f"SELECT {col} FROM {t}")).scalars()) for t, col in UNIT_TABLES.items()}


def counts(conn, tables) -> dict[str, int]:
    return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}


def test_a_district_scope_sees_its_subtree_only(owner, app):
    with owner.connect() as conn:
        d1 = unit_ids(conn, D1_UNITS)
        everything = rows_by_unit(conn)
        transitions_d1 = conn.execute(sa.text(
            "SELECT count(*) FROM event_transitions t JOIN events e ON e.id = t.event_id WHERE e.grid_id = ANY(:ids)"),
            {"ids": list(d1)}).scalar()
    with app.begin() as conn:
        put(conn, "D1")
        assert set(conn.execute(sa.text("SELECT code FROM units")).scalars()) == D1_UNITS
        pairs = conn.execute(sa.text("SELECT ancestor_id, descendant_id FROM unit_closure")).all()
        assert pairs and {x for p in pairs for x in p} == d1
        seen = rows_by_unit(conn)
        assert conn.execute(sa.text("SELECT count(*) FROM event_transitions")).scalar() == transitions_d1 == 2
        assert counts(conn, CITY_TABLES) == {t: 0 for t in CITY_TABLES}
    for table, ids in seen.items():
        assert ids == [i for i in everything[table] if i in d1], table
        assert ids, f"{table}: the test city should have rows in D1"
        assert len(ids) < len(everything[table]), f"{table}: D2's rows should be hidden"
    assert seen["events"] and len(seen["events"]) == 2 and len(seen["warnings"]) == 1


def test_a_transition_carries_its_events_grid_whoever_writes_it(city, owner):
    """What the transitions' policy checks (migration 0013): filled on insert when the writer leaves
    it out, and moved with the event when the event's point moves to another district."""
    w1 = city[1]["w1"]
    pairs = sa.text("SELECT t.grid_id, e.grid_id FROM event_transitions t JOIN events e ON e.id = t.event_id "
                    "WHERE t.event_id = :id")
    with owner.connect() as conn:
        tx = conn.begin()
        before = conn.execute(pairs, {"id": w1}).all()
        assert before and all(t == e and t is not None for t, e in before)  # the fixture sent none
        conn.execute(sa.text("UPDATE events SET location = ST_SetSRID(ST_MakePoint(11.5, 50.5), 4326) WHERE id = :id"),
                     {"id": w1})
        after = conn.execute(pairs, {"id": w1}).all()
        assert after and all(t == e for t, e in after) and after[0][0] != before[0][0]
        tx.rollback()


def test_no_setting_sees_nothing_and_star_sees_everything(owner, app):
    with owner.connect() as conn:
        all_counts = counts(conn, [*UNIT_TABLES, *CITY_TABLES, "units", "unit_closure", "event_transitions",
                                   "heat_rollup"])
        assert all(counts(conn, OPERATOR_TABLES).values())
    assert all(all_counts[t] for t in ("events", "kpi_rollup", "department_day_rollup",
                                       "heat_rollup", "warnings", "event_transitions"))
    with app.begin() as conn:
        put(conn, "*")
        assert counts(conn, all_counts) == all_counts
    with app.begin() as conn:  # the same pooled connection, a new transaction: the setting is gone
        assert counts(conn, all_counts) == {t: 0 for t in all_counts}
    with app.begin() as conn:  # the root's code: every unit's rows, but not the city-only tables
        put(conn, "C")
        got = counts(conn, all_counts)
        assert got == {t: 0 if t in CITY_TABLES else n for t, n in all_counts.items()}
    with app.begin() as conn:  # an unknown code is nothing, not everything
        put(conn, "NOPE")
        assert counts(conn, all_counts) == {t: 0 for t in all_counts}
    fresh = sa.create_engine(app.url, poolclass=sa.NullPool)
    with fresh.connect() as conn:
        assert counts(conn, all_counts) == {t: 0 for t in all_counts}
    fresh.dispose()


def test_heat_is_cut_to_the_scope_extent(owner, app):
    with owner.connect() as conn:
        x0, cell = conn.execute(sa.text("SELECT x0, cell FROM heat_frame")).one()
        cells = conn.execute(sa.text("SELECT cx, cy FROM heat_rollup")).all()
    d1_max_cx = int((11 - x0) // cell)  # D1 spans lon 10..11
    inside = sorted(c for c in cells if c[0] <= d1_max_cx)
    assert inside and len(inside) < len(cells)
    with app.begin() as conn:
        put(conn, "D1")
        assert sorted(conn.execute(sa.text("SELECT cx, cy FROM heat_rollup")).all()) == inside
    with app.begin() as conn:
        put(conn, "G21")  # lon 11..12, lat 50..51: only e1's cell
        (only,) = conn.execute(sa.text("SELECT cx, cy FROM heat_rollup")).all()
        assert only[0] > d1_max_cx


def test_the_app_role_cannot_read_reporters(app):
    for column in ("reporter_name", "reporter_phone", "*"):
        with app.begin() as conn:
            put(conn, "*")
            with pytest.raises(ProgrammingError) as err:
                conn.execute(sa.text(f"SELECT {column} FROM events"))
            assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)
    with app.begin() as conn:
        put(conn, "*")
        assert conn.execute(sa.text("SELECT count(external_id) FROM events")).scalar() == 3


def test_masked_contacts_only_in_scope(city, app):
    _, ids = city
    every = [ids["w1"], ids["w2"], ids["e1"]]
    q = sa.text("SELECT event_id, reporter_name, reporter_phone FROM cockpit_masked_contacts(:ids) ORDER BY 1")
    with app.begin() as conn:
        put(conn, "D1")
        assert [tuple(r) for r in conn.execute(q, {"ids": every})] == [
            (ids["w1"], "张*", "138****5678"), (ids["w2"], "王**", "139****1111")]
    with app.begin() as conn:
        put(conn, "*")
        assert [r[1] for r in conn.execute(q, {"ids": every})] == ["张*", "王**", "李*"]
    with app.begin() as conn:
        assert conn.execute(q, {"ids": every}).all() == []  # no scope, nothing


def _reveal(app, event_id, reason, scope_unit, role, actor="duty1", address="10.0.0.7"):
    with app.connect() as conn:
        with conn.begin():
            put(conn, scope_unit, role, actor, address)
            return tuple(conn.execute(sa.text("SELECT * FROM cockpit_reveal_contact(:e, :r)"),
                                      {"e": event_id, "r": reason}).one())


def _last_reveal(owner):
    with owner.connect() as conn:
        return conn.execute(sa.text("SELECT actor, actor_kind, address, unit_code, event_id, outcome, detail "
                                    "FROM audit_log WHERE action = 'reveal_contact' ORDER BY id DESC LIMIT 1")).one()


def test_reveal_contact_checks_role_reason_scope_and_always_audits(city, owner, app):
    _, ids = city
    w1, e1 = ids["w1"], ids["e1"]
    assert _reveal(app, w1, "callback", "D1", "officer", "off1") == ("role", None, None)
    row = _last_reveal(owner)
    assert (row.actor, row.outcome, row.event_id, row.unit_code) == ("off1", "denied", w1, "G11")
    assert row.detail["refused"] == "role"

    assert _reveal(app, w1, "   ", "D1", "duty") == ("reason", None, None)
    assert _last_reveal(owner).detail["refused"] == "reason"

    assert _reveal(app, e1, "callback", "D1", "duty") == ("no_event", None, None)  # e1 is in D2
    row = _last_reveal(owner)
    assert (row.outcome, row.event_id, row.unit_code, row.detail["refused"]) == ("denied", e1, None, "no_event")

    assert _reveal(app, w1, "reporter asked for a call back", "D1", "duty") == ("ok", "张三", "13812345678")
    row = _last_reveal(owner)
    assert (row.actor, row.actor_kind, row.address, row.unit_code, row.event_id, row.outcome) == \
        ("duty1", "user", "10.0.0.7", "G11", w1, "ok")
    assert row.detail["reason"] == "reporter asked for a call back" and row.detail.get("refused") is None
    assert _reveal(app, e1, "citywide check", "*", "admin", "adm")[0] == "ok"


def test_audit_log_is_insert_only_for_the_app_and_append_only_for_all(owner, app):
    with app.begin() as conn:
        audit.record(conn, Person("someone", "user", "leader"), "report_download", address="10.9.9.9", unit_code="D1")
    for sql in ("SELECT * FROM audit_log", "SELECT count(*) FROM audit_log",
                "UPDATE audit_log SET outcome = 'ok'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with app.connect() as conn:
            with pytest.raises(ProgrammingError) as err:
                conn.execute(sa.text(sql))
            assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege), sql
    with owner.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE actor = 'someone' AND address = '10.9.9.9'"
                                 )).scalar()
        assert n == 1
    for sql in ("UPDATE audit_log SET outcome = 'ok' WHERE actor = 'someone'", "DELETE FROM audit_log"):
        with owner.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(sa.text(sql))
    with owner.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE actor = 'someone'")).scalar() == 1


def _attempt(app, name, password, address="10.0.0.1"):
    """One sign-in as the web app makes it: the attempt's rows are committed whatever the answer."""
    with app.connect() as conn:
        try:
            return users.verify(conn, name, password, address)
        finally:
            conn.commit()


def _sign_ins(owner, actor):
    with owner.connect() as conn:
        return conn.execute(sa.text("SELECT outcome, address, detail FROM audit_log WHERE action = 'sign_in' "
                                    "AND actor = :a ORDER BY id"), {"a": actor}).all()


def test_sign_in_right_and_wrong_then_locked(owner, app):
    with owner.begin() as conn:
        users.create(conn, "liu", "officer", "D1", password="right password")
    person = _attempt(app, "liu", "right password", "10.0.0.2")
    assert (person.name, person.kind, person.role, person.scope_code) == ("liu", "user", "officer", "D1")
    assert [tuple(r)[:2] for r in _sign_ins(owner, "liu")] == [("ok", "10.0.0.2")]
    with pytest.raises(Unauthorized):
        _attempt(app, "liu", "wrong password", "10.0.0.2")
    assert _sign_ins(owner, "liu")[-1].outcome == "failed"
    for _ in range(users.LOCK_AFTER - 1):
        with pytest.raises(Unauthorized):
            _attempt(app, "liu", "wrong again", "10.0.0.3")
    with pytest.raises(Forbidden, match="account"):
        _attempt(app, "liu", "right password", "10.0.0.4")  # locked: even the right password
    last = _sign_ins(owner, "liu")[-1]
    assert (last.outcome, last.detail["reason"]) == ("denied", "account locked")
    with owner.connect() as conn:
        assert conn.execute(sa.text("SELECT locked_until > now() FROM users WHERE name = 'liu'")).scalar()


def test_too_many_failures_from_one_address_refuse_it(owner, app):
    with owner.begin() as conn:
        users.create(conn, "sun", "leader", password="sun password")
    for i in range(users.ADDRESS_LIMIT):  # unknown names: no account gets locked, the address does
        with pytest.raises(Unauthorized):
            _attempt(app, f"guess{i}", "whatever", "192.0.2.66")
    with pytest.raises(Forbidden, match="address"):
        _attempt(app, "sun", "sun password", "192.0.2.66")
    assert _attempt(app, "sun", "sun password", "192.0.2.67").name == "sun"  # another address is fine


def test_links_disabled_users_and_revoked_walls(owner, app):
    with owner.begin() as conn:
        users.create(conn, "zhou", "duty", "D2")
        token = users.issue_link(conn, "zhou")
    with app.begin() as conn:
        person = users.redeem_link(conn, token, "10.0.0.5")
    assert (person.name, person.role, person.scope_code) == ("zhou", "duty", "D2")
    with app.connect() as conn:
        with pytest.raises(Unauthorized):
            users.redeem_link(conn, token, "10.0.0.5")  # once only
    with owner.begin() as conn:
        stale = users.issue_link(conn, "zhou", minutes=-1)
    with app.connect() as conn:
        with pytest.raises(Unauthorized):
            users.redeem_link(conn, stale)  # expired
        assert users.person_by_id(conn, person.user_id) == person
    with owner.begin() as conn:
        users.disable(conn, "zhou")
    with app.connect() as conn:
        assert users.person_by_id(conn, person.user_id) is None
        assert users.person_by_name(conn, "zhou") is None

    with owner.begin() as conn:
        key = walltokens.create(conn, "lobby", "D1")
    with app.connect() as conn:
        wall = walltokens.person_for(conn, key)
        assert (wall.kind, wall.scope_code) == ("wall", "D1")
    with owner.begin() as conn:
        walltokens.revoke(conn, "lobby")
    with app.connect() as conn:
        assert walltokens.person_for(conn, key) is None
        assert walltokens.person_by_id(conn, wall.user_id) is None


def test_the_policy_keeps_index_scans(owner, app):
    with owner.connect() as conn:
        d1 = conn.execute(sa.text("SELECT id FROM units WHERE code = 'D1'")).scalar()
    with app.begin() as conn:
        scope.apply(conn, Person("tester", "user", "leader", scope_code="D1"))
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a tiny table: ask what the plan could use
        # the rollups' days are the city's local days: in UTC's evening Shanghai is a day ahead
        today = datetime.now(settings().timezone).date()
        plan = "\n".join(conn.execute(sa.text(
            "EXPLAIN SELECT day, volume FROM kpi_rollup WHERE unit_id = :u AND day BETWEEN :t - 30 AND :t"),
            {"u": d1, "t": today}).scalars())
        rows = conn.execute(sa.text("SELECT count(*) FROM kpi_rollup WHERE unit_id = :u AND day BETWEEN "
                                    ":t - 30 AND :t"), {"u": d1, "t": today}).scalar()
    assert "Index" in plan and "Seq Scan on kpi_rollup" not in plan, plan
    assert rows >= 1


@pytest.mark.parametrize("table", OPERATOR_TABLES)
def test_import_files_rows_are_not_the_apps_to_read_even_city_wide(app, table):
    with app.begin() as conn:
        put(conn, "*")
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text(f"SELECT count(*) FROM {table}"))
