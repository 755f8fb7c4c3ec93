"""codes unique regardless of case; the institution's complaint phone and address

Revision ID: 0010_codes_and_complaint_contact
Revises: 0009_intake_safeguards
Create Date: 2026-12-08 10:00:00

Department and touchpoint codes become unique within an institution regardless of
case ("CWK" and "cwk" are one code), enforced by a unique index on
(institution_id, lower(code)). Codes that already differ only in case would stop
that index from being built, so the migration first finds them: in each such group
the oldest row keeps its code and every later one is renamed to its code followed
by "-" and its id (cut to fit 32 characters), which is unique. Each rename is
reported in the migration's log and written to the audit trail (action
"department.code_renamed" or "touchpoint.code_renamed", with the old and the new
code), so the institution's admin sees it and may choose a better code.

The institution gets a complaint phone and address, shown to patients on the
pages that would otherwise be a dead end (a replaced QR code, a closed service
point).
"""
import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0010_codes_and_complaint_contact'
down_revision = '0009_intake_safeguards'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

CODE_LENGTH = 32
INDEXES = {"department": "uq_department_institution_code_ci", "touchpoint": "uq_touchpoint_institution_code_ci"}

audit_entry = sa.table(
    "audit_entry",
    sa.column("created_at", core.db.UTCDateTime(timezone=True)),
    sa.column("actor_id", sa.Integer),
    sa.column("actor_label", sa.String),
    sa.column("institution_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("target_type", sa.String),
    sa.column("target_id", sa.String),
    sa.column("target_label", sa.String),
    sa.column("data", sa.JSON),
)


def renamed_code(code: str, row_id: int, taken: set[str]) -> str:
    """The code followed by -<id> (cut to fit), unique among ``taken`` (lower-cased codes of the institution)."""
    for attempt in range(1, 1000):
        suffix = f"-{row_id}" if attempt == 1 else f"-{row_id}-{attempt}"
        candidate = code[:CODE_LENGTH - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
    raise RuntimeError(f"no free code for row {row_id}")  # unreachable: ids are unique


def rename_case_duplicates(table_name: str) -> list[tuple[int, int, str, str]]:
    """Rename the later rows of codes that differ only in case; returns (institution, id, old, new) of each."""
    bind = op.get_bind()
    table = sa.table(table_name, sa.column("id", sa.Integer), sa.column("institution_id", sa.Integer),
                     sa.column("code", sa.String), sa.column("name", sa.String))
    rows = bind.execute(sa.select(table.c.id, table.c.institution_id, table.c.code, table.c.name)
                        .order_by(table.c.institution_id, table.c.id)).all()
    taken: dict[int, set[str]] = {}
    for _id, institution_id, code, _name in rows:
        taken.setdefault(institution_id, set()).add(code.lower())
    first: dict[tuple[int, str], int] = {}
    renames = []
    now = datetime.now(UTC)
    for row_id, institution_id, code, name in rows:
        key = (institution_id, code.lower())
        if key not in first:
            first[key] = row_id
            continue
        new = renamed_code(code, row_id, taken[institution_id])
        taken[institution_id].add(new.lower())
        bind.execute(sa.update(table).where(table.c.id == row_id).values(code=new))
        bind.execute(sa.insert(audit_entry).values(
            created_at=now, actor_id=None, actor_label="migration 0007", institution_id=institution_id,
            action=f"{table_name}.code_renamed", target_type=table_name, target_id=str(row_id),
            target_label=(name or "")[:200],
            data={"code": [code, new], "reason": "codes differing only in case", "kept": first[key]}))
        log.warning("%s %s of institution %s: code %r differs only in case from that of %s %s; renamed to %r",
                    table_name, row_id, institution_id, code, table_name, first[key], new)
        renames.append((institution_id, row_id, code, new))
    return renames


def upgrade():
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('complaint_phone', sa.String(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('complaint_address', sa.String(length=200), nullable=False,
                                      server_default=''))
    for table_name, index_name in INDEXES.items():
        renames = rename_case_duplicates(table_name)
        if renames:
            log.warning("%d %s code(s) renamed so that codes are unique regardless of case (see the audit trail)",
                        len(renames), table_name)
        op.create_index(index_name, table_name, ['institution_id', sa.text('lower(code)')], unique=True)


def downgrade():
    for table_name, index_name in INDEXES.items():
        op.drop_index(index_name, table_name=table_name)
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_column('complaint_address')
        batch_op.drop_column('complaint_phone')
