"""record(): one audit entry per state change, pointing at its target and institution."""
from __future__ import annotations

from datetime import UTC

from sqlalchemy import select

from core.audit import AuditEntry, record
from core.extensions import db
from organisation.models import Department, Institution
from tests.factories import demo_institution, demo_user


def test_a_model_target_fills_type_id_label_and_its_institution(ctx):
    platform = demo_user("platform")  # belongs to no institution
    zyy = demo_institution("zyy")
    department = db.session.scalar(select(Department).where(Department.institution_id == zyy.id,
                                                            Department.code == "ZYNK"))
    entry = record(platform, "department.update", department, {"name": ["旧", "新"]})
    db.session.flush()

    assert (entry.target_type, entry.target_id, entry.target_label) == ("department", str(department.id), "中医内科")
    assert entry.institution_id == zyy.id
    assert (entry.actor_id, entry.actor_label) == (platform.id, "platform")
    assert entry.action == "department.update"
    assert entry.data == {"name": ["旧", "新"]}
    assert entry.created_at.tzinfo == UTC
    assert db.session.get(AuditEntry, entry.id) is entry


def test_an_institution_target_is_its_own_institution(ctx):
    rmyy = demo_institution("rmyy")
    entry = record(demo_user("region"), "institution.update", rmyy)
    assert entry.institution_id == rmyy.id
    assert entry.target_label == rmyy.name


def test_a_type_and_id_tuple_names_the_target(ctx):
    entry = record(demo_user("platform"), "export.download", ("export", 17))
    assert (entry.target_type, entry.target_id, entry.target_label) == ("export", "17", "")
    assert entry.institution_id is None


def test_a_tuple_target_takes_the_institution_of_the_staff_actor(ctx):
    officer = demo_user("rmyy-officer")
    entry = record(officer, "complaint.view", ("complaint", None))
    assert entry.target_id is None
    assert entry.institution_id == officer.institution_id == demo_institution("rmyy").id


def test_a_job_or_the_cli_is_named_as_a_string_actor(ctx):
    zyy = demo_institution("zyy")
    entry = record("job:sentiment", "institution.rollup", zyy)
    assert entry.actor_id is None
    assert entry.actor_label == "job:sentiment"
    assert entry.institution_id == zyy.id


def test_no_actor_and_no_target_is_the_system(ctx):
    entry = record(None, "maintenance.sweep")
    assert (entry.actor_id, entry.actor_label) == (None, "system")
    assert (entry.target_type, entry.target_id) == ("system", None)
    assert entry.data == {}


def test_a_new_target_is_flushed_to_get_its_id_and_institution(ctx):
    institution = Institution(name="新建测试医院", registration_code="TEST-AUDIT-NEW", level="secondary",
                              grade="a", category="general", region_id=demo_institution("rmyy").region_id)
    db.session.add(institution)
    assert institution.id is None
    entry = record(demo_user("platform"), "institution.create", institution)
    assert institution.id is not None
    assert entry.target_id == str(institution.id)
    assert entry.institution_id == institution.id


def test_a_new_institution_scoped_target_gets_its_id(ctx):
    rmyy = demo_institution("rmyy")
    department = Department(institution_id=rmyy.id, code="AUDIT-NEW", name="新科室", kind="clinical")
    db.session.add(department)
    entry = record("cli", "department.create", department)
    assert entry.target_id == str(department.id) and department.id is not None
    assert entry.institution_id == rmyy.id


def test_long_actor_names_are_cut_to_fit_the_column(ctx):
    entry = record("job:" + "x" * 300, "maintenance.sweep")
    db.session.flush()  # PostgreSQL refuses a value longer than the column
    assert entry.actor_label == ("job:" + "x" * 300)[:120]


def test_the_log_notifier_never_writes_a_phone_number_or_mail_address(app, caplog):
    import logging

    from core.notify import Message, _log_backend

    with caplog.at_level(logging.INFO, logger="core.notify"):
        _log_backend(Message(recipients=["rmyy-officer", "13912345678", "wang.li@example.cn"],
                             subject="答复", body="您的投诉已处理"))
    text = caplog.text
    assert "rmyy-officer" in text
    assert "13912345678" not in text and "139****5678" in text
    assert "wang.li@example.cn" not in text and "w***@example.cn" in text
