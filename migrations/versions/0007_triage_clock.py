"""complaint triage target; the answer clock starts at receipt

Revision ID: 0007_triage_clock
Revises: 0006
Create Date: 2026-12-07 19:00:00

A complaint's answer period is counted from the day of receipt (民法典 第二百零一条), so a case
now gets its deadline when it is registered, not when an officer accepts it; triage gets its own
per-institution target, complaint_settings.triage_days (working days, default 1).

The schema change is the new setting only. Cases registered before this revision and not yet
triaged have no deadline: they get it from the deadline recomputation
(complaints.deadlines.recompute_open_deadlines, counted from their receipt with the same code as
every other deadline), which `flask seed-calendar` runs whenever such a case exists. That command
is part of every upgrade (docs/deployment.md, section 17), so no data is computed here.
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_triage_clock'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('complaint_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('triage_days', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('complaint_settings', schema=None) as batch_op:
        batch_op.drop_column('triage_days')
