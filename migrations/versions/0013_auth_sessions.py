"""auth sessions

Revision ID: 0013_auth_sessions
Revises: 0012_notification_texts
Create Date: 2026-12-10 09:00:00

Staff sessions kept on the server (staff_session: the hash of the token the session cookie carries,
when it was created and last used, when and why it ended), so that logout, a password change, a role
change and a deactivation end sessions at once and idle sessions expire. They replace the per-user
session_version. Failed sign-ins no longer lock an account (growing delays in Redis instead,
organisation/throttle.py): failed_logins and locked_until go. Administrators may add a second
factor (totp_secret, totp_enabled_at, totp_last_step on staff_user).
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0013_auth_sessions'
down_revision = '0012_notification_texts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('second_factor_due', sa.Boolean(), nullable=False),
    sa.Column('ended_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_staff_session_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_session_token_hash'))
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_session_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('session_version')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret')
        batch_op.add_column(sa.Column('locked_until', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))

    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_staff_session_ended_at'))

    op.drop_table('staff_session')
