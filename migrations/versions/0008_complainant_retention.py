"""complainant retention

Revision ID: 0008_complainant_retention
Revises: 0007_triage_clock
Create Date: 2026-12-07 19:00:00

The complainant's name and phone number are purged by a nightly job once a case has been
finished for the institution's retention period (complaints/retention.py): two settings
per institution, with their defaults for the rows that exist, and the moment a case's
contact data was purged.
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0008_complainant_retention'
down_revision = '0007_triage_clock'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('complaint_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('complainant_retention_days', sa.Integer(), nullable=False,
                                      server_default='365'))
        batch_op.add_column(sa.Column('dispute_retention_days', sa.Integer(), nullable=False,
                                      server_default='1095'))
    with op.batch_alter_table('complaint_settings', schema=None) as batch_op:
        batch_op.alter_column('complainant_retention_days', server_default=None)
        batch_op.alter_column('dispute_retention_days', server_default=None)
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_purged_at', core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_column('contact_purged_at')
    with op.batch_alter_table('complaint_settings', schema=None) as batch_op:
        batch_op.drop_column('dispute_retention_days')
        batch_op.drop_column('complainant_retention_days')
