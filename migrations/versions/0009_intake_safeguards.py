"""intake safeguards: pending files, single-use form tokens, public safety reports

Revision ID: 0009_intake_safeguards
Revises: 0008_complainant_retention
Create Date: 2027-01-12 10:00:00

- complaint_pending_file: files chosen on an intake form that came back with a
  mistake, kept for that form's submission id until it is sent or they expire;
- used_form_token: the complaint form's tokens are single-use;
- complaint.safety_reported_at / safety_report_notified_at: a complainant's own
  form in a quality-and-safety category tells the officers on duty (grouped),
  who flag the emergency that pages leadership. Cases registered before this
  revision were flagged at registration as before: they owe no review notice.
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0009_intake_safeguards'
down_revision = '0008_complainant_retention'
branch_labels = None
depends_on = None

SAFETY_REPORT_UNNOTIFIED_SQL = "safety_reported_at IS NOT NULL AND safety_report_notified_at IS NULL"


def upgrade():
    op.create_table(
        'complaint_pending_file',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('submission_hash', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=120), nullable=False),
        sa.Column('content_type', sa.String(length=60), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institution.id'],
                                name=op.f('fk_complaint_pending_file_institution_id_institution')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_pending_file')),
    )
    with op.batch_alter_table('complaint_pending_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_pending_file_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_pending_file_institution_id'), ['institution_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_pending_file_submission_hash'), ['submission_hash'],
                              unique=False)

    op.create_table(
        'used_form_token',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('used_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_used_form_token')),
    )
    with op.batch_alter_table('used_form_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_form_token_used_at'), ['used_at'], unique=False)

    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('safety_reported_at', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('safety_report_notified_at', core.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_complaint_safety_report_unnotified', ['institution_id'], unique=False,
                              postgresql_where=sa.text(SAFETY_REPORT_UNNOTIFIED_SQL),
                              sqlite_where=sa.text(SAFETY_REPORT_UNNOTIFIED_SQL))


def downgrade():
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index('ix_complaint_safety_report_unnotified')
        batch_op.drop_column('safety_report_notified_at')
        batch_op.drop_column('safety_reported_at')
    with op.batch_alter_table('used_form_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_form_token_used_at'))
    op.drop_table('used_form_token')
    with op.batch_alter_table('complaint_pending_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_pending_file_submission_hash'))
        batch_op.drop_index(batch_op.f('ix_complaint_pending_file_institution_id'))
        batch_op.drop_index(batch_op.f('ix_complaint_pending_file_created_at'))
    op.drop_table('complaint_pending_file')
