"""notifications

Revision ID: 0011_notifications
Revises: 0010_codes_and_complaint_contact
Create Date: 2026-12-07 18:52:36

Staff notices kept in the app (notification: one row per recipient, unique per item so a re-run job
tells nobody twice, with a partial index for the header's unread count), each institution's outbound
channels (notifier_settings: WeCom and DingTalk group robots, an SMTP relay) and the outbox the delivery
job works through (notifier_delivery).
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0011_notifications'
down_revision = '0010_codes_and_complaint_contact'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notifier_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=2000), nullable=False),
    sa.Column('link', sa.String(length=500), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('gave_up_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_notifier_delivery_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifier_delivery'))
    )
    with op.batch_alter_table('notifier_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_notifier_delivery_recent', ['institution_id', 'channel', 'created_at'], unique=False)
        batch_op.create_index('ix_notifier_delivery_waiting', ['next_attempt_at'], unique=False, postgresql_where=sa.text('sent_at IS NULL AND gave_up_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL AND gave_up_at IS NULL'))

    op.create_table('notifier_settings',
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('wecom_webhook', sa.String(length=500), nullable=False),
    sa.Column('dingtalk_webhook', sa.String(length=500), nullable=False),
    sa.Column('dingtalk_secret', sa.String(length=200), nullable=False),
    sa.Column('smtp_host', sa.String(length=200), nullable=False),
    sa.Column('smtp_port', sa.Integer(), nullable=False),
    sa.Column('smtp_security', sa.String(length=12), nullable=False),
    sa.Column('smtp_username', sa.String(length=200), nullable=False),
    sa.Column('smtp_password', sa.String(length=200), nullable=False),
    sa.Column('smtp_sender', sa.String(length=254), nullable=False),
    sa.Column('smtp_recipients', sa.String(length=1000), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_notifier_settings_institution_id_institution')),
    sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_notifier_settings'))
    )
    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=500), nullable=False),
    sa.Column('link', sa.String(length=300), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_notification_institution_id_institution')),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_notification_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('user_id', 'key', name=op.f('uq_notification_user_id_key'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index('ix_notification_unread', ['user_id'], unique=False, postgresql_where=sa.text('read_at IS NULL'), sqlite_where=sa.text('read_at IS NULL'))
        batch_op.create_index('ix_notification_user_created', ['user_id', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_user_created')
        batch_op.drop_index('ix_notification_unread', postgresql_where=sa.text('read_at IS NULL'), sqlite_where=sa.text('read_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_notification_institution_id'))

    op.drop_table('notification')
    op.drop_table('notifier_settings')
    with op.batch_alter_table('notifier_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_notifier_delivery_waiting', postgresql_where=sa.text('sent_at IS NULL AND gave_up_at IS NULL'), sqlite_where=sa.text('sent_at IS NULL AND gave_up_at IS NULL'))
        batch_op.drop_index('ix_notifier_delivery_recent')

    op.drop_table('notifier_delivery')
