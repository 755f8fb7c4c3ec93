"""Review: an import file carrying NUL bytes is refused with a message, never a 500."""
from __future__ import annotations

from sqlalchemy import func, select

from core.extensions import db
from organisation.models import Department

from .test_import import DEPARTMENT_HEADER, csv_bytes, upload


def _departments(tenant) -> int:
    return db.session.scalar(select(func.count()).select_from(Department)
                             .where(Department.institution_id == tenant.id))


def test_a_csv_with_nul_bytes_is_refused_with_a_message_and_writes_nothing(admin_client, tenant_a):
    before = _departments(tenant_a)
    content = csv_bytes([DEPARTMENT_HEADER, ["NEW1", "新\x00科室", "临床", ""]])

    response = upload(admin_client, tenant_a, "departments", content, "departments.csv")

    assert response.status_code == 400
    assert "无效字符" in response.get_data(as_text=True)
    assert _departments(tenant_a) == before

