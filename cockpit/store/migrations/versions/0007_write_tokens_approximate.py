"""write tokens and approximate locations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- api_tokens.scope: a token may only read (`read`, what every token made before could do) or
  also send events (`write`, for `POST /api/events`).
- events.location_approximate: the point is a geocoder's fallback (a city hall or district
  office used as the default point when an address could not be placed), not where the event
  is. Such events still count in their unit's KPIs but are left out of the heat map and any
  spatial analysis (docs/schema.md).
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

UP = [
    "ALTER TABLE api_tokens ADD COLUMN scope text DEFAULT 'read' NOT NULL",
    "ALTER TABLE api_tokens ADD CONSTRAINT ck_api_tokens_scope CHECK (scope IN ('read', 'write'))",
    "COMMENT ON COLUMN api_tokens.scope IS 'read: GET the API; write: also POST events'",
    # a constant default: PostgreSQL stores it once, no table rewrite even at 10 M events
    "ALTER TABLE events ADD COLUMN location_approximate boolean DEFAULT false NOT NULL",
    "COMMENT ON COLUMN events.location_approximate IS 'location is a geocoding fallback point: counted in KPIs, "
    "left out of heat and spatial analysis'",
]

DOWN = [
    "ALTER TABLE events DROP COLUMN location_approximate",
    "ALTER TABLE api_tokens DROP COLUMN scope",
]


def upgrade() -> None:
    for stmt in UP:
        op.execute(stmt)


def downgrade() -> None:
    for stmt in DOWN:
        op.execute(stmt)
