"""The event store's tables: the contract that operators' systems write to (docs/schema.md).

Alembic migrations (cockpit/store/migrations) create exactly this; a test compares the two.
"""
from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

LEVELS = ("city", "district", "street", "community", "grid")
SOURCES = ("hotline_12345", "grid_app", "iot", "video_ai", "mailbox", "citizen_app")
STATUSES = ("reported", "dispatched", "handling", "follow_up", "closed")
HANDLING_LEVELS = ("community", "street", "district")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

units = sa.Table(
    "units", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True, comment="unified unit/grid code (统一网格编码)"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("units.id"), index=True),
    sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True)),
    sa.Column("population", sa.Integer),
    sa.CheckConstraint(_in("level", LEVELS), name="level"),
    sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
)

# Every (ancestor, descendant) pair of the unit tree, each unit being its own ancestor at
# depth 0. Maintained by a trigger on `units` (migration 0001); lets "events in a unit's
# subtree" be one indexed join whatever the depth of the tree.
unit_closure = sa.Table(
    "unit_closure", metadata,
    sa.Column("ancestor_id", sa.Integer, sa.ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("descendant_id", sa.Integer, sa.ForeignKey("units.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("depth", sa.SmallInteger, nullable=False),
    sa.Index("ix_unit_closure_descendant_id", "descendant_id", "ancestor_id"),
)

categories = sa.Table(
    "categories", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("categories.id")),
    sa.Column("deadline_hours", sa.Integer, comment="time allowed to close (限时办结); NULL on groups"),
    sa.CheckConstraint("deadline_hours IS NULL OR deadline_hours > 0", name="deadline_positive"),
)

departments = sa.Table(
    "departments", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
)

# Partitioned by month of reported_at (migration 0012, cockpit/store/partitions.py): the
# partitions live in the schema `internal`, out of the app's reach.
events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("source", sa.Text, nullable=False, comment="source (渠道): how the event came in"),
    sa.Column("external_id", sa.Text, nullable=False, comment="the id in the source system"),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False),
    sa.Column("reported_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("location", Geometry("POINT", srid=4326, spatial_index=True)),
    sa.Column("grid_id", sa.Integer, sa.ForeignKey("units.id"),
              comment="unit holding the event: the leaf unit containing location (filled by trigger when NULL; "
                      "NULL outside all leaf units), or any unit when only that unit is known (placed only at "
                      "this level)"),
    sa.Column("status", sa.Text, nullable=False, server_default="reported"),
    sa.Column("handling_level", sa.Text),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id")),
    sa.Column("deadline_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("rating", sa.SmallInteger, comment="1-5 stars (五星评价)"),
    sa.Column("rated_at", sa.DateTime(timezone=True)),
    sa.Column("supervised", sa.Boolean, nullable=False, server_default=sa.false(), comment="挂牌督办"),
    sa.Column("location_approximate", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="location is a geocoding fallback point: counted in KPIs, left out of heat and spatial analysis"),
    sa.Column("description", sa.Text),
    sa.Column("address", sa.Text),
    sa.Column("reporter_name", sa.Text, comment="personal data"),
    sa.Column("reporter_phone", sa.Text, comment="personal data"),
    sa.CheckConstraint(_in("source", SOURCES), name="source"),
    sa.CheckConstraint(_in("status", STATUSES), name="status"),
    sa.CheckConstraint(f"handling_level IS NULL OR {_in('handling_level', HANDLING_LEVELS)}", name="handling_level"),
    sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
    sa.CheckConstraint("closed_at IS NULL OR closed_at >= reported_at", name="closed_after_reported"),
    sa.Index("ix_events_reported_at", "reported_at"),
    # (source, external_id) is unique through event_keys; this finds an event by its key.
    sa.Index("ix_events_source_external_id", "source", "external_id"),
    # Covering: a small unit's numbers are read from this index alone (no heap visits).
    sa.Index("ix_events_grid_id_reported_at", "grid_id", "reported_at",
             postgresql_include=["id", "category_id", "source", "status", "handling_level", "closed_at",
                                 "deadline_at", "rating"]),
    # The open backlog (small: open events only), by grid, readable from the index alone.
    sa.Index("ix_events_open_deadline", "grid_id", "deadline_at", postgresql_include=["category_id", "source"],
             postgresql_where=sa.text("closed_at IS NULL")),
    postgresql_partition_by="RANGE (reported_at)",
)

# Each event's (source, external_id) once: the global uniqueness a partitioned index cannot
# give (it would have to hold reported_at). Kept by statement triggers on events (migration 0012).
event_keys = sa.Table(
    "event_keys", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("source", "external_id", name="uq_events_source_external_id"),
)

event_transitions = sa.Table(
    "event_transitions", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("from_status", sa.Text),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), comment="unit acting / receiving"),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id")),
    sa.Column("note", sa.Text),
    sa.Column("event_reported_at", sa.DateTime(timezone=True), primary_key=True,
              comment="the event's reported_at: its partition"),
    sa.Column("grid_id", sa.Integer, comment="the event's grid_id, kept by triggers: what row-level security checks"),
    sa.ForeignKeyConstraint(["event_id", "event_reported_at"], ["events.id", "events.reported_at"],
                            ondelete="CASCADE", onupdate="CASCADE"),
    sa.CheckConstraint(f"from_status IS NULL OR {_in('from_status', STATUSES)}", name="from_status"),
    sa.CheckConstraint(_in("to_status", STATUSES), name="to_status"),
    # Covering: an event's stints (time between its transitions) come from the index alone.
    # event_reported_at included: a lookup naming the event's month stays index-only; grid_id:
    # so does a scoped reader's (the row-level policy reads it)
    sa.Index("ix_event_transitions_event_id_at", "event_id", "at",
             postgresql_include=["id", "from_status", "event_reported_at", "grid_id"]),
    postgresql_partition_by="RANGE (event_reported_at)",
)

# Bearer tokens for other systems using the HTTP API (cockpit/access/tokens.py). Only a hash is
# kept: the token itself is shown once, when made.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True, comment="who or what holds it"),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True, comment="sha256 of the token, hex"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True), comment="set: the token no longer works"),
    sa.Column("scope", sa.Text, nullable=False, server_default="read",
              comment="read: GET the API; write: also POST events"),
    sa.CheckConstraint("scope IN ('read', 'write')", name="scope"),
    sa.Column("scope_code", sa.Text, comment="code of the unit whose subtree the token reads; NULL: the whole city"),
)

ROLES = ("leader", "officer", "duty", "admin")

# Accounts of the web app (cockpit/access/users.py). Scope is a unit *code*, not an id: a city
# re-imported with the same codes keeps its users' scopes, and a code that no longer exists
# shows nothing (the row-level policies find no such unit) rather than everything.
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text,
              comment="argon2id; NULL: signs in only by a one-time link or single sign-on"),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("scope_code", sa.Text, comment="code of the unit whose subtree the user sees; NULL: the whole city"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("disabled_at", sa.DateTime(timezone=True)),
    sa.Column("failed_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_failed_at", sa.DateTime(timezone=True)),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("last_sign_in_at", sa.DateTime(timezone=True)),
    sa.Column("login_token_hash", sa.Text, unique=True, comment="sha256 of a one-time sign-in link, hex"),
    sa.Column("login_token_expires_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(_in("role", ROLES), name="role"),
)

# Kiosk URLs of unattended wall screens (cockpit/access/walltokens.py): /wall only, one subtree.
wall_tokens = sa.Table(
    "wall_tokens", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("scope_code", sa.Text, comment="code of the unit the wall shows; NULL: the whole city"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# Who did what, when, from where (留痕): append-only (a trigger refuses UPDATE and DELETE; the
# app role may only INSERT). cockpit/access/audit.py writes and reads it.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.clock_timestamp()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("actor_kind", sa.Text, nullable=False),  # user, wall, api, cli or sql
    sa.Column("address", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("unit_code", sa.Text),
    sa.Column("event_id", sa.BigInteger),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.CheckConstraint("outcome IN ('ok', 'denied', 'failed')", name="outcome"),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_address_at", "address", "at",
             postgresql_where=sa.text("action = 'sign_in' AND outcome = 'failed'")),
    implicit_returning=False,  # RETURNING needs SELECT, which the app role does not have
)

# One row per `cockpit import-events` run, with its counts (cockpit/ingest/events.py).
imports = sa.Table(
    "imports", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("rows_read", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("inserted", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("updated", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("unchanged", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("quarantined", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("summary", JSONB),
)

# Rows an import could not load, with their original content and why: never lost.
quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id", ondelete="CASCADE"), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("row_no", sa.BigInteger, nullable=False),
    sa.Column("raw", JSONB, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_quarantine_import_id_reason", "import_id", "reason"),
)

WARNING_KINDS = ("surge", "recurrence", "cluster")
WARNING_STATES = ("new", "acknowledged", "closed", "expired")

# Hotspot warnings (cockpit/hotspots): one row per warning, kept while detection still finds it
# (last_seen moves), so every screen and worker sees the same warnings and their state.
warnings = sa.Table(
    "warnings", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id", ondelete="CASCADE"), nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id", ondelete="CASCADE")),
    sa.Column("window", sa.Text, nullable=False, comment="the window tested, e.g. 24h or 14d"),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("observed", sa.Integer, nullable=False),
    sa.Column("expected", sa.Float(53)),
    sa.Column("statistic", sa.Float(53)),
    sa.Column("p_value", sa.Float(53)),
    sa.Column("q_value", sa.Float(53)),
    sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("key", sa.Text, nullable=False,
              comment="what makes it the same warning on the next run (kind, unit, category, window, spot)"),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.Text, nullable=False, server_default="new"),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sa.CheckConstraint(_in("kind", WARNING_KINDS), name="kind"),
    sa.CheckConstraint(_in("state", WARNING_STATES), name="state"),
    sa.CheckConstraint("last_seen >= first_seen", name="seen_order"),
    # One live warning per key: an expired or closed one may come back as a new row.
    sa.Index("uq_warnings_key_live", "key", unique=True,
             postgresql_where=sa.text("state IN ('new', 'acknowledged')")),
    sa.Index("ix_warnings_unit_id_last_seen", "unit_id", "last_seen"),
)

# The demo's known truth (cockpit/demo/events.py plants them): what detection is checked against.
planted_anomalies = sa.Table(
    "planted_anomalies", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id", ondelete="CASCADE"), nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id", ondelete="CASCADE")),
    sa.Column("start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("size", sa.Integer, nullable=False, comment="events planted"),
    sa.Column("lon", sa.Float(53)),
    sa.Column("lat", sa.Float(53)),
    sa.CheckConstraint("kind IN ('surge', 'recurrence')", name="kind"),
)
