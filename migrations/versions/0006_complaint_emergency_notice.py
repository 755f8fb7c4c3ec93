"""complaint emergency notice

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:00:00

The quality-and-safety emergency notice is sent by a job after the
registration commits, claimed through emergency_notified_at; a minutely
sweep re-drives the ones still owed, found through a small partial index.
Cases flagged before this revision were told (or their failure logged) in
the request that flagged them: they owe nothing.
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

EMERGENCY_UNNOTIFIED_SQL = "safety_emergency AND emergency_notified_at IS NULL"


def upgrade():
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('emergency_notified_at', core.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE complaint SET emergency_notified_at = received_at WHERE safety_emergency")
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index('ix_complaint_emergency_unnotified', ['id'], unique=False,
                              postgresql_where=sa.text(EMERGENCY_UNNOTIFIED_SQL),
                              sqlite_where=sa.text(EMERGENCY_UNNOTIFIED_SQL))


def downgrade():
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index('ix_complaint_emergency_unnotified')
        batch_op.drop_column('emergency_notified_at')
