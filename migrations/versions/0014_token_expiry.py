"""API token expiry

Revision ID: 0014_token_expiry
Revises: 0012_notification_texts
Create Date: 2026-12-07 22:00:00

An optional expiry per API token (api_token.expires_at), chosen when the token is issued (a year by
default). Tokens issued before keep NULL, which never expires: an upgrade must not cut off a hospital
system's discharge feed without notice; their admins see "永不过期" in the list and can replace them.
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0014_token_expiry'
down_revision = '0013_auth_sessions'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
