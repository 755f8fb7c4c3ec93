"""survey flag indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:10:00

The repeat-device and network-burst flags look up recent ratings of one
device or one network at a touchpoint; these indexes keep that a short index
search when a touchpoint receives thousands of ratings in the window.
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_survey_response_touchpoint_device', 'survey_response',
                    ['touchpoint_id', 'device_hash', 'submitted_at'], unique=False)
    op.create_index('ix_survey_response_touchpoint_network', 'survey_response',
                    ['touchpoint_id', 'ip_hash', 'submitted_at'], unique=False)


def downgrade():
    op.drop_index('ix_survey_response_touchpoint_network', table_name='survey_response')
    op.drop_index('ix_survey_response_touchpoint_device', table_name='survey_response')
