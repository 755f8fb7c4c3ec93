"""notification texts

Revision ID: 0012_notification_texts
Revises: 0011_notifications
Create Date: 2026-12-09 10:00:00

A notification keeps what its subject and body were made of (the message ids and their parameters,
core.notify.Text), so that the in-app list shows it in the reader's language. Notifications recorded
before this revision have none and are shown as they were stored, in Chinese.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_notification_texts'
down_revision = '0011_notifications'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('texts', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('texts')
