"""live intake: change notification and the hourly heat rollup

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

A statement trigger on events sends NOTIFY cockpit_events (cockpit/metrics/changes.py), and heat_rollup
counts events per UTC hour on a fine raster over the city (cockpit/metrics/heat.py), kept by triggers.
"""
from alembic import op
import sqlalchemy as sa

from cockpit.metrics import changes, heat


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('heat_rollup',
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False, comment='start of the UTC hour reported'),
    sa.Column('cx', sa.SmallInteger(), nullable=False, comment='fine raster column (heat_frame)'),
    sa.Column('cy', sa.SmallInteger(), nullable=False, comment='fine raster row'),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'cx', 'cy', name=op.f('pk_heat_rollup'))
    )
    op.create_table('heat_frame',
    sa.Column('id', sa.Boolean(), server_default=sa.true(), nullable=False, comment='one row'),
    sa.Column('x0', sa.Float(precision=53), nullable=False),
    sa.Column('y0', sa.Float(precision=53), nullable=False),
    sa.Column('cell', sa.Float(precision=53), nullable=False, comment='degrees per fine cell'),
    sa.CheckConstraint('id', name=op.f('ck_heat_frame_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_heat_frame'))
    )
    for statement in heat.install_sql() + changes.install_sql():
        op.execute(statement)
    heat.rebuild(op.get_bind())


def downgrade() -> None:
    for statement in changes.uninstall_sql() + heat.uninstall_sql():
        op.execute(statement)
    op.drop_table('heat_frame')
    op.drop_table('heat_rollup')
