"""Department and touchpoint codes are unique regardless of case; a new touchpoint's department is chosen, never
defaulted (issue 10, point 7)."""
from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from core import create_app
from core.audit import AuditEntry
from core.extensions import db
from organisation.models import Department, Touchpoint
from tests.factories import make_department, make_touchpoint, unique

from .conftest import body, fresh
from .test_import import DEPARTMENT_HEADER, TOUCHPOINT_HEADER, csv_bytes, row_errors, upload

# The new touchpoint form ---------------------------------------------------------------


def test_the_new_touchpoint_form_preselects_no_department(admin_client, tenant_a):
    page = body(admin_client.get(f"/i/{tenant_a.id}/touchpoints/new"))
    select_box = re.search(r'<select[^>]*name="department_id".*?</select>', page, re.S).group(0)
    options = re.findall(r"<option([^>]*)>([^<]*)</option>", select_box)
    assert options[0][1] == "请选择科室" and "selected" in options[0][0]
    assert not any("selected" in attrs for attrs, _label in options[1:])


def test_a_touchpoint_without_a_chosen_department_is_refused(admin_client, tenant_a):
    code = unique("W-NODEPT-")
    response = admin_client.post(f"/i/{tenant_a.id}/touchpoints/new",
                                 data={"code": code, "name": "未选科室的窗口", "kind": "window", "department_id": ""})
    assert response.status_code == 400
    assert "请选择所属科室。" in body(response)
    assert db.session.scalar(select(Touchpoint).where(Touchpoint.code == code)) is None


def test_editing_a_touchpoint_keeps_its_department_selected(admin_client, tenant_a):
    page = body(admin_client.get(f"/i/{tenant_a.id}/touchpoints/{tenant_a.touchpoint.id}/edit"))
    selected = re.search(r'<option selected value="(\d+)"|<option value="(\d+)" selected', page)
    assert selected is not None and int(selected.group(1) or selected.group(2)) == tenant_a.touchpoint.department_id


# Codes regardless of case -----------------------------------------------------------------

def test_a_department_code_differing_only_in_case_is_refused(admin_client, tenant_a):
    existing = make_department(tenant_a.institution, code=unique("GKA"))
    response = admin_client.post(f"/i/{tenant_a.id}/departments/new",
                                 data={"code": existing.code.lower(), "name": "骨科二", "kind": "clinical"})
    assert response.status_code == 400
    assert f"编码 {existing.code.lower()} 与本机构已有的编码 {existing.code} 只有大小写不同" in body(response)
    assert db.session.scalar(select(func.count()).select_from(Department).where(
        Department.institution_id == tenant_a.id, func.lower(Department.code) == existing.code.lower())) == 1


def test_a_touchpoint_renamed_to_another_code_in_other_case_is_refused(admin_client, tenant_a):
    taken = make_touchpoint(tenant_a.institution, code=unique("W-CASE-"))
    mine = make_touchpoint(tenant_a.institution)
    response = admin_client.post(f"/i/{tenant_a.id}/touchpoints/{mine.id}/edit", data={
        "code": taken.code.lower(), "name": mine.name, "kind": "window", "department_id": mine.department_id})
    assert response.status_code == 400
    assert "只有大小写不同" in body(response)
    assert fresh(mine).code != taken.code.lower()


def test_a_code_may_change_its_own_case(admin_client, tenant_a):
    department = make_department(tenant_a.institution, code=unique("abc"))
    response = admin_client.post(f"/i/{tenant_a.id}/departments/{department.id}/edit", data={
        "code": department.code.upper(), "name": department.name, "kind": "clinical"})
    assert response.status_code == 302
    assert fresh(department).code == department.code.upper()


def test_a_touchpoint_may_share_a_departments_code_and_another_hospital_a_code(tenant_a, tenant_b):
    department = make_department(tenant_a.institution, code=unique("SAME"))
    make_touchpoint(tenant_a.institution, department, code=department.code.lower())
    make_department(tenant_b.institution, code=department.code.lower())


@pytest.mark.parametrize("model", [Department, Touchpoint])
def test_the_database_refuses_codes_differing_only_in_case(tenant_a, model):
    row = make_touchpoint(tenant_a.institution) if model is Touchpoint else make_department(tenant_a.institution)
    twin = model(institution_id=tenant_a.id, code=row.code.lower(), name="大小写孪生", kind=row.kind,
                 **({"department_id": row.department_id} if model is Touchpoint else {}))
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add(twin)
        db.session.flush()


def test_an_import_matches_codes_regardless_of_case(admin_client, tenant_a):
    department = make_department(tenant_a.institution, code=unique("IMPCASE"), name="原名")
    response = upload(admin_client, tenant_a, "departments",
                      csv_bytes([DEPARTMENT_HEADER, [department.code.lower(), "新名", "临床", ""]]), "d.csv")
    assert response.status_code == 200
    assert fresh(department).name == "新名" and fresh(department).code == department.code
    response = upload(admin_client, tenant_a, "touchpoints", csv_bytes([
        TOUCHPOINT_HEADER, ["w-imp-1", "一号窗", "窗口", department.code.lower(), ""],
        ["W-IMP-1", "一号窗", "窗口", department.code, ""]]), "t.csv")
    assert response.status_code == 400
    assert [(n, m) for n, _c, m in row_errors(response)] == [(3, "与第 2 行重复。")]


# The migration: codes that already differ only in case ------------------------------------

DUPLICATES_SQL = [
    "INSERT INTO region (id, code, name, level, path, active, created_at, updated_at) "
    "VALUES (900, '999999', '测试区', 'county', '/900/', {true}, {now}, {now})",
    "INSERT INTO institution (id, name, short_name, registration_code, level, grade, category, region_id, active, "
    "created_at, updated_at) VALUES (900, '测试医院', '', 'MIG-900', 'tertiary', 'a', 'general', 900, {true}, {now}, "
    "{now})",
    "INSERT INTO department (id, institution_id, code, name, kind, active, created_at, updated_at) VALUES "
    "(901, 900, 'CWK', '财务科', 'administrative', {true}, {now}, {now}), "
    "(902, 900, 'cwk', '财务科（重复）', 'administrative', {true}, {now}, {now}), "
    "(903, 900, 'Cwk', '财务科（又一个）', 'administrative', {true}, {now}, {now}), "
    "(904, 900, 'XNK', '心内科', 'clinical', {true}, {now}, {now})",
    "INSERT INTO touchpoint (id, institution_id, code, name, kind, department_id, location, active, created_at, "
    "updated_at) VALUES (911, 900, 'W-01', '一号窗', 'window', 901, '', {true}, {now}, {now}), "
    "(912, 900, 'w-01', '一号窗（重复）', 'window', 901, '', {true}, {now}, {now})",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request, tmp_path, admin_dsn):
    """A database migrated to the revision before 0010 holding codes that differ only in case; yields its URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"tingjian_mig_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(admin_dsn, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_dsn.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.real_engine
def test_the_migration_renames_codes_differing_only_in_case_and_reports_them(old_database, tmp_path, capfd):
    import flask_migrate

    app = create_app({"CONFIG": "testing", "DATABASE_URL": old_database, "INSTANCE_PATH": str(tmp_path / "i")})
    try:
        with app.app_context():
            flask_migrate.upgrade(revision="0009_intake_safeguards")
            sqlite = db.engine.dialect.name == "sqlite"
            with db.engine.begin() as conn:
                for statement in DUPLICATES_SQL:
                    conn.execute(text(statement.format(true="1" if sqlite else "TRUE",
                                                       now="CURRENT_TIMESTAMP")))
            capfd.readouterr()
            flask_migrate.upgrade()  # alembic logs to stderr through its own logging configuration
            reported = capfd.readouterr().err
            with db.engine.connect() as conn:
                codes = dict(conn.execute(text("SELECT id, code FROM department WHERE institution_id = 900")).all())
                points = dict(conn.execute(text("SELECT id, code FROM touchpoint WHERE institution_id = 900")).all())
                audit = conn.execute(text("SELECT action, target_id, institution_id FROM audit_entry "
                                          "WHERE action LIKE '%code_renamed' ORDER BY id")).all()
            assert codes == {901: "CWK", 902: "cwk-902", 903: "Cwk-903", 904: "XNK"}
            assert points == {911: "W-01", 912: "w-01-912"}
            assert [tuple(row) for row in audit] == [("department.code_renamed", "902", 900),
                                                     ("department.code_renamed", "903", 900),
                                                     ("touchpoint.code_renamed", "912", 900)]
            assert "code 'cwk' differs only in case from that of department 901; renamed to 'cwk-902'" in reported
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(text("INSERT INTO department (institution_id, code, name, kind, active, created_at, "
                                  "updated_at) VALUES (900, 'xnk', '重复', 'clinical', {true}, CURRENT_TIMESTAMP, "
                                  "CURRENT_TIMESTAMP)".format(true="1" if sqlite else "TRUE")))
            entry = db.session.scalar(select(AuditEntry).where(AuditEntry.target_id == "902"))
            assert entry.data["code"] == ["cwk", "cwk-902"]
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
