"""Intake: categories, case numbers, registration from every channel, attachments, emergencies, survey alerts."""
from __future__ import annotations

import io
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from complaints import case_page, emergency, intake, tasks, triage
from complaints import categories as category_service
from complaints.attachments import Upload
from complaints.intake import IntakeError
from complaints.models import (
    Attachment,
    CaseCounter,
    CaseEvent,
    Category,
    Channel,
    Complaint,
    ComplaintSettings,
    DeclineReason,
)
from core.audit import AuditEntry
from core.extensions import db
from core.privacy import mask_name, mask_phone
from organisation.models import Notification
from tests.complaints.conftest import (
    department,
    hidden_fields,
    open_form,
    photo,
    post_complaint,
    staff_login,
    touchpoint,
)
from tests.factories import demo_institution, demo_user
from tests.survey.conftest import record_response

JPEG = photo("jpg")
PNG = photo("png")
PDF = b"%PDF-1.7\n" + b"\x00" * 200
HEIC = photo("heic")


def beijing(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai"))


def cases_of(institution) -> list[Complaint]:
    db.session.expire_all()
    return list(db.session.scalars(select(Complaint).where(Complaint.institution_id == institution.id)
                                   .order_by(Complaint.id)))


# Categories ---------------------------------------------------------------------------

def test_default_categories_are_the_national_list_and_seeding_twice_adds_nothing(ctx):
    first = category_service.default_categories(actor="test")
    again = category_service.default_categories(actor="test")
    assert [c.name for c in first] == ["医德医风", "医疗质量安全", "服务态度", "收费价格", "环境后勤", "安全保卫",
                                       "其他"]
    assert [c.id for c in again] == [c.id for c in first]
    assert db.session.scalar(select(func.count()).select_from(Category)
                             .where(Category.institution_id.is_(None))) == 7
    by_code = {c.code: c for c in first}
    assert by_code["quality_safety"].safety and not by_code["attitude"].safety
    assert by_code["charges"].charges and not by_code["quality_safety"].charges
    assert all(c.institution_id is None and c.active for c in first)


def test_categories_for_adds_the_institutions_own_active_categories_only(rmyy, zyy, categories):
    own = category_service.create_category(rmyy, name="膳食服务", actor="test")
    retired = category_service.create_category(rmyy, name="停车收费", charges=True, actor="test")
    category_service.set_category_active(retired, False, actor="test")
    theirs = category_service.create_category(zyy, name="中药代煎", actor="test")
    names = [c.name for c in category_service.categories_for(rmyy)]
    assert names[:7] == [c.name for c in categories.values()] and "膳食服务" in names
    assert "停车收费" not in names and "中药代煎" not in names
    assert retired in category_service.categories_for(rmyy, include_inactive=True)
    assert theirs in category_service.categories_for(zyy) and own not in category_service.categories_for(zyy)


def test_categories_for_seeds_the_defaults_on_a_fresh_install(rmyy):
    db.session.execute(delete(Category).where(Category.institution_id.is_(None)))
    assert {c.code for c in category_service.categories_for(rmyy)} >= {"ethics", "quality_safety", "other"}


def test_category_names_must_be_unique_and_defaults_cannot_be_changed(rmyy, categories):
    with pytest.raises(category_service.CategoryError, match="同名"):
        category_service.create_category(rmyy, name="服务态度", actor="test")
    with pytest.raises(category_service.CategoryError):
        category_service.update_category(categories["other"], name="杂项", safety=False, charges=False, sort=1,
                                         actor="test")
    with pytest.raises(category_service.CategoryError):
        category_service.set_category_active(categories["other"], False, actor="test")


def test_officer_adds_renames_and_deactivates_a_category_on_the_admin_page(client, rmyy, categories):
    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/categories"
    page = client.get(base)
    assert page.status_code == 200 and "医疗质量安全" in page.get_data(as_text=True)
    assert client.post(base, data={"name": "膳食服务", "sort": "70"}).status_code == 302
    category = db.session.scalar(select(Category).where(Category.institution_id == rmyy.id))
    assert category.name == "膳食服务" and category.active
    assert client.post(f"{base}/{category.id}/edit", data={"name": "营养膳食", "sort": "70", "safety": "y"}
                       ).status_code == 302
    assert client.post(f"{base}/{category.id}/toggle").status_code == 302
    db.session.refresh(category)
    assert (category.name, category.safety, category.active) == ("营养膳食", True, False)
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "complaint_category",
                                                                     AuditEntry.target_id == str(category.id))))
    assert actions == {"complaint_category.create", "complaint_category.update", "complaint_category.deactivate"}
    duplicate = client.post(base, data={"name": "其他", "sort": "1"})
    assert duplicate.status_code == 400 and "已有同名类别" in duplicate.get_data(as_text=True)


def test_category_pages_are_for_complaint_managers_and_their_own_hospital(client, rmyy, zyy, categories):
    own = category_service.create_category(zyy, name="中药代煎", actor="test")
    staff_login(client, "rmyy-handler")
    assert client.get(f"/i/{rmyy.id}/complaints/categories").status_code == 403
    staff_login(client, "rmyy-officer")
    assert client.get(f"/i/{zyy.id}/complaints/categories").status_code == 404
    assert client.post(f"/i/{rmyy.id}/complaints/categories/{own.id}/toggle").status_code == 404
    assert client.post(f"/i/{rmyy.id}/complaints/categories/{categories['other'].id}/toggle").status_code == 404


# Case numbers --------------------------------------------------------------------------

def test_case_numbers_count_per_institution_and_year(rmyy, zyy, make_case):
    a = make_case(received_at=beijing(2026, 3, 2, 9, 0))
    b = make_case(received_at=beijing(2026, 3, 2, 9, 5))
    c = make_case(institution=zyy, received_at=beijing(2026, 3, 2, 9, 6))
    d = make_case(received_at=datetime.now(UTC))
    year = datetime.now(UTC).year
    assert (a.case_number, b.case_number, c.case_number) == ("TS2026-00001", "TS2026-00002", "TS2026-00001")
    if year != 2026:
        assert d.case_number == f"TS{year}-00001"


def test_the_year_of_a_case_number_is_the_year_in_beijing(rmyy):
    # 2025-12-31 17:00 UTC is already 2026-01-01 01:00 in Beijing.
    assert intake.next_case_number(rmyy, datetime(2025, 12, 31, 17, 0, tzinfo=UTC)) == "TS2026-00001"
    assert intake.next_case_number(rmyy, datetime(2025, 12, 31, 15, 59, tzinfo=UTC)) == "TS2025-00001"


def test_the_case_number_prefix_is_the_institutions_setting(rmyy):
    db.session.add(ComplaintSettings(institution_id=rmyy.id, case_prefix="SY"))
    db.session.flush()
    assert intake.next_case_number(rmyy, beijing(2026, 5, 6, 10, 0)) == "SY2026-00001"
    assert intake.next_case_number(rmyy, beijing(2026, 5, 6, 10, 0)) == "SY2026-00002"


@pytest.mark.real_engine
def test_two_registrations_at_once_get_different_numbers(app):
    """Two web processes take a number at the same moment: the counter row lock serialises them."""
    from core.extensions import db as database

    year = 2091  # nobody else's counter
    results, errors = [], []
    first_has_lock = threading.Event()
    second_started = threading.Event()

    def take(hold: bool):
        try:
            with app.app_context():
                institution = demo_institution("rmyy")
                if not hold:
                    first_has_lock.wait(5)
                    second_started.set()
                number = intake.next_case_number(institution, datetime(year, 6, 1, 4, tzinfo=UTC))
                if hold:
                    first_has_lock.set()
                    second_started.wait(5)
                    threading.Event().wait(0.3)  # the other one is now blocked on the row
                results.append(number)
                database.session.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(True,)), threading.Thread(target=take, args=(False,))]
    try:
        # Create the year's row first, so both updates contend for the same row.
        with app.app_context():
            intake.next_case_number(demo_institution("rmyy"), datetime(year, 6, 1, 4, tzinfo=UTC))
            database.session.commit()
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        assert not errors
        assert sorted(results) == [f"TS{year}-00002", f"TS{year}-00003"]
    finally:
        with app.app_context():
            database.session.execute(delete(CaseCounter).where(CaseCounter.year == year))
            database.session.commit()


# Registration --------------------------------------------------------------------------

def test_registration_records_the_case_its_event_and_an_audit_entry_without_personal_data(rmyy, make_case):
    officer = demo_user("rmyy-officer")
    case = make_case(channel=Channel.PHONE, complainant_name="李小红", complainant_phone="139 1234 5678",
                     departments_concerned=["XNK"], staff_involved="王医生", relation="family")
    assert case.status == "registered" and case.channel == "phone" and case.first_contact_id == officer.id
    assert case.complainant_phone == "13912345678" and case.complainant_relation == "family"
    assert [d.code for d in case.concerned_departments] == ["XNK"]
    event = db.session.scalar(select(CaseEvent).where(CaseEvent.complaint_id == case.id))
    assert event.action == "registered" and event.actor_id == officer.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.register",
                                                       AuditEntry.target_id == str(case.id)))
    assert entry.institution_id == rmyy.id and entry.data["channel"] == "phone"
    for text in (str(entry.data), str(event.data), event.note, entry.target_label):
        assert "李小红" not in text and "13912345678" not in text and "1234" not in text


def test_the_lookup_code_is_six_digits_stored_only_as_a_keyed_hash(make_case):
    case = make_case()
    code = case.plain_lookup_code
    assert re.fullmatch(r"\d{6}", code)
    assert code not in case.lookup_code_hash and len(case.lookup_code_hash) == 64
    assert intake.check_lookup_code(case, code)
    assert not intake.check_lookup_code(case, f"{(int(code) + 1) % 1_000_000:06d}")


def test_the_same_submission_id_registers_one_case_and_gives_the_same_code(rmyy, make_case):
    sid = uuid.uuid4().hex
    first = make_case(submission_id=sid)
    again = make_case(submission_id=sid, description="另一段文字")
    assert again.id == first.id and again.plain_lookup_code == first.plain_lookup_code
    assert len(cases_of(rmyy)) == 1


def test_a_hotline_transfer_needs_its_work_order_number(make_case):
    with pytest.raises(IntakeError) as raised:
        make_case(channel=Channel.HOTLINE_12345, channel_ref="")
    assert raised.value.field == "channel_ref" and "工单编号" in str(raised.value)
    case = make_case(channel=Channel.HOTLINE_12345, channel_ref="GD20260930001")
    assert case.channel_ref == "GD20260930001"


@pytest.mark.parametrize("overrides, field", [
    ({"description": "   "}, "description"),
    ({"complainant_phone": "12345"}, "complainant_phone"),
    ({"relation": "boss"}, "relation"),
    ({"received_at": datetime.now(UTC) + timedelta(hours=2)}, "received_at"),
])
def test_bad_registrations_are_refused_with_a_field_and_a_chinese_message(make_case, overrides, field):
    with pytest.raises(IntakeError) as raised:
        make_case(**overrides)
    assert raised.value.field == field and re.search(r"[\u4e00-\u9fff]", str(raised.value))


def test_another_hospitals_category_touchpoint_or_department_is_refused(rmyy, zyy, make_case):
    theirs = category_service.create_category(zyy, name="中药代煎", actor="test")
    with pytest.raises(IntakeError):
        make_case(category=theirs)
    with pytest.raises(IntakeError):
        make_case(touchpoint=touchpoint(zyy, "W-GH-01"))
    with pytest.raises(IntakeError):
        make_case(departments_concerned=[department(zyy, "ZYNK")])


def test_a_touchpoint_names_its_department_as_concerned(make_case):
    case = make_case(touchpoint="W-GH-01")
    assert [d.code for d in case.concerned_departments] == ["CWK"]


def test_masks_show_enough_to_tell_cases_apart_and_no_more():
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***"
    assert mask_phone("13912345678") == "139****5678" and mask_phone("") == ""


# Attachments -----------------------------------------------------------------------------

def test_attachments_are_checked_by_content_and_stored(make_case):
    case = make_case(attachments=[Upload("收据.JPG", JPEG), Upload("x.png", PNG), Upload("病历", PDF),
                                  Upload("IMG_0001.HEIC", HEIC, "application/octet-stream")])
    rows = db.session.scalars(select(Attachment).where(Attachment.complaint_id == case.id)
                              .order_by(Attachment.id)).all()
    assert [(r.filename, r.content_type) for r in rows] == [
        ("收据.JPG", "image/jpeg"), ("x.png", "image/png"), ("病历.pdf", "application/pdf"),
        ("IMG_0001.jpg", "image/jpeg")]  # an iPhone's HEIC is stored as a JPEG every PC opens
    assert rows[0].data.startswith(b"\xff\xd8\xff") and rows[0].size == len(rows[0].data)
    assert rows[2].data == PDF  # a PDF is stored as it came


@pytest.mark.parametrize("uploads, message", [
    ([Upload("a.exe", b"MZ\x90\x00" + b"\x00" * 100, "image/jpeg")], "格式不支持"),
    ([Upload("fake.jpg", b"GIF89a" + b"\x00" * 100)], "格式不支持"),
    ([Upload("big.jpg", b"\xff\xd8\xff" + b"\x00" * (20 * 1024 * 1024))], "超过 20 MB"),
    ([Upload("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 200)], "无法读取"),
    ([Upload(f"{i}.png", PNG) for i in range(6)], "最多上传 5 个"),
    ([Upload("empty.png", b"")], "是空的"),
])
def test_bad_attachments_are_refused_with_a_clear_message(rmyy, make_case, uploads, message):
    with pytest.raises(IntakeError) as raised:
        make_case(attachments=uploads)
    assert message in str(raised.value) and raised.value.field == "attachments"
    assert cases_of(rmyy) == []


def test_an_officer_downloads_an_attachment_and_handlers_only_their_departments(client, rmyy, zyy, make_case):
    case = make_case(attachments=[Upload("收据.pdf", PDF)])
    row = db.session.scalar(select(Attachment).where(Attachment.complaint_id == case.id))
    url = f"/i/{rmyy.id}/complaints/attachments/{row.id}"
    staff_login(client, "rmyy-officer")
    got = client.get(url)
    assert got.status_code == 200 and got.data == PDF and got.mimetype == "application/pdf"
    assert "attachment" in got.headers["Content-Disposition"] and "no-store" in got.headers["Cache-Control"]
    assert client.get(f"/i/{zyy.id}/complaints/attachments/{row.id}").status_code == 404
    staff_login(client, "rmyy-handler")
    assert client.get(url).status_code == 404  # not routed to the handler's departments
    case.lead_department_id = department(rmyy, "XNK").id
    assert client.get(url).status_code == 200
    staff_login(client, "zyy-officer")
    assert client.get(url).status_code == 404


# Quality-and-safety emergencies ---------------------------------------------------------------

def test_the_officers_emergency_tick_flags_the_case_and_its_notice_alerts_officers_admins_and_leadership(
        rmyy, make_case, outbox):
    case = make_case(category="quality_safety", touchpoint="B-XNK", complainant_name="王五", safety_emergency=True,
                     complainant_phone="13800138000", description="输液时护士拿错了药，险些输错")
    assert case.safety_emergency
    assert outbox == []  # never sent inside the registering transaction
    assert tasks.notify_emergency(case.id) is True
    (message,) = outbox
    assert message.kind == "complaint_emergency" and case.case_number in message.subject
    assert set(message.recipients) == {"rmyy-officer", "rmyy-admin", "rmyy-leader"}
    text = message.subject + message.body
    assert "王五" not in text and "13800138000" not in text and "拿错了药" not in text
    actions = [e.action for e in case.events]
    assert actions[:3] == ["registered", "deadline_set", "emergency"] and "emergency_alerted" in actions
    for action in ("complaint.flag_emergency", "complaint.emergency_notice_sent"):
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == action,
                                                          AuditEntry.target_id == str(case.id))) is not None
    assert case.emergency_notified_at is not None


def test_an_officer_registering_a_safety_category_without_the_tick_pages_nobody(make_case, outbox):
    """The form's box says it: only the tick alerts leadership; the officer who registers it has seen it."""
    case = make_case(category="quality_safety")
    assert not case.safety_emergency and case.safety_reported_at is None
    assert tasks.sweep_emergency_notices() == 0 and tasks.sweep_safety_reports() == 0 and outbox == []


def test_flagging_twice_alerts_once_and_other_categories_do_not_alert(make_case, outbox):
    case = make_case(category="attitude")
    assert not case.safety_emergency and outbox == []
    assert emergency.flag_emergency(case, actor=demo_user("rmyy-officer")) is True
    assert emergency.flag_emergency(case, actor=demo_user("rmyy-officer")) is False
    assert tasks.notify_emergency(case.id) is True
    assert tasks.notify_emergency(case.id) is False  # a retry, or the sweep, sends nothing more
    assert tasks.sweep_emergency_notices() == 0
    assert len(outbox) == 1


def test_a_failing_notifier_does_not_lose_the_case_and_the_sweep_sends_the_notice_later(app, rmyy, make_case,
                                                                                          monkeypatch, outbox):
    from core import notify

    def broken(message):
        raise ConnectionError("sms gateway down")

    monkeypatch.setitem(notify.BACKENDS, "broken", broken)
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "broken")
    case = make_case(category="quality_safety", safety_emergency=True)
    db.session.commit()  # as the registering page does before the notice is queued
    with pytest.raises(ConnectionError):
        tasks.notify_emergency(case.id)
    assert tasks.sweep_emergency_notices() == 0  # still down: the failure is noted once on the timeline
    assert case.safety_emergency and case.emergency_notified_at is None
    assert [e.action for e in case.events].count("emergency_alert_failed") == 1

    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "memory")
    assert tasks.sweep_emergency_notices() == 1
    assert [m.meta["complaint_id"] for m in outbox] == [case.id]
    assert tasks.sweep_emergency_notices() == 0 and len(outbox) == 1


def test_a_failed_enqueue_leaves_the_notice_to_the_sweep_which_sends_it_once(client, rmyy, categories, october_2026,
                                                                             outbox, monkeypatch):
    from core import tasks as core_tasks

    def redis_gone(*args, **kwargs):
        raise ConnectionError("the queue is unreachable")

    monkeypatch.setattr(core_tasks, "enqueue", redis_gone)
    staff_login(client, "rmyy-officer")
    response, _ = officer_form(client, rmyy, emergency="y")
    assert response.status_code == 200 and "投诉已登记" in response.get_data(as_text=True)
    (case,) = cases_of(rmyy)
    assert case.safety_emergency and case.emergency_notified_at is None and outbox == []

    assert tasks.sweep_emergency_notices() == 1
    assert [m.meta["complaint_id"] for m in outbox] == [case.id]
    assert tasks.sweep_emergency_notices() == 0 and len(outbox) == 1


def test_the_sweep_leaves_finished_cases_and_cases_already_told_alone(rmyy, make_case, outbox):
    from complaints.models import Status

    told = make_case(category="quality_safety", safety_emergency=True)
    finished = make_case(category="quality_safety", safety_emergency=True)
    tasks.notify_emergency(told.id)
    finished.status = Status.CLOSED.value
    db.session.flush()
    assert tasks.sweep_emergency_notices() == 0
    assert [m.meta["complaint_id"] for m in outbox] == [told.id]


def test_an_officer_flags_a_registered_case_from_the_case_page(client, rmyy, make_case, outbox):
    case = make_case()
    staff_login(client, "rmyy-handler")
    assert client.post(f"/i/{rmyy.id}/complaints/{case.id}/emergency").status_code == 403
    staff_login(client, "rmyy-officer")
    assert client.post(f"/i/{rmyy.id}/complaints/{case.id}/emergency").status_code == 302
    db.session.refresh(case)
    assert case.safety_emergency and len(outbox) == 1


# The complainant's own form ---------------------------------------------------------------------

def file_field(data: bytes, name: str):
    return (io.BytesIO(data), name)


def test_the_public_form_is_a_phone_page_in_one_request(client, rmyy, categories):
    page = client.get(f"/c/{rmyy.id}/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "我要投诉" in html and rmyy.name in html
    # The form works without JavaScript; one deferred script file only adds the character counters.
    assert 'enctype="multipart/form-data"' in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/text_limits.js" defer>']
    assert "<link rel=\"stylesheet\"" not in html and 'rel="icon" href="data:,"' in html
    fields = hidden_fields(html)
    assert re.fullmatch(r"[0-9a-f]{32}", fields["submission_id"]) and fields["form_token"]
    assert all(name in html for name in ("医德医风", "医疗质量安全", "收费价格", "其他"))


def test_a_complainant_files_a_complaint_and_gets_the_number_and_code_once(client, rmyy, categories):
    response, data = post_complaint(client, rmyy, files=[file_field(JPEG, "票据.jpg")])
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "投诉已提交" in html
    (case,) = cases_of(rmyy)
    assert case.channel == "self_service" and case.first_contact_id is None and case.status == "registered"
    assert case.subject.startswith("在收费窗口排队一小时") and case.complainant_phone == "13912345678"
    code = re.search(r'class="code pin">(\d{6})<', html).group(1)
    assert case.case_number in html and intake.check_lookup_code(case, code)
    assert "一般 5 个工作日内答复" in html and f"/c/lookup?i={rmyy.id}" in html
    assert response.headers["Cache-Control"] == "no-store"
    assert db.session.scalar(select(func.count()).select_from(Attachment)
                             .where(Attachment.complaint_id == case.id)) == 1


@pytest.mark.parametrize("typed", ["139-0000-1234", "+86 139 0000 1234", "１３９００００１２３４",
                                   "+86 - 139 - 0000 - 1234"])  # 23 characters: the one length rule is core.phone's
def test_the_public_form_takes_a_number_written_as_the_qr_form_takes_it(client, rmyy, categories, typed):
    response, _data = post_complaint(client, rmyy, fields={"complainant_phone": typed})
    assert response.status_code == 200, response.get_data(as_text=True)
    (case,) = cases_of(rmyy)
    assert case.complainant_phone == "13900001234"


def test_a_double_tap_stores_one_case_and_shows_the_same_receipt(client, rmyy, categories):
    first, data = post_complaint(client, rmyy)
    data.pop("attachments", None)
    again = client.post(f"/c/{rmyy.id}/new", data=data, content_type="multipart/form-data")
    assert again.status_code == 200 and len(cases_of(rmyy)) == 1
    code = re.compile(r'class="code pin">(\d{6})<')
    assert code.search(first.get_data(as_text=True)).group(1) == code.search(again.get_data(as_text=True)).group(1)


def test_a_form_with_mistakes_comes_back_with_chinese_messages_and_the_text_kept(client, rmyy, categories):
    response, _data = post_complaint(client, rmyy, fields={"description": "", "complainant_phone": "12",
                                                           "wish": "请回电"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "请写下发生了什么" in html and "请回电" in html
    assert cases_of(rmyy) == []
    response, _data = post_complaint(client, rmyy, fields={"complainant_phone": "12345"})
    assert response.status_code == 400 and "电话号码" in response.get_data(as_text=True)
    assert cases_of(rmyy) == []


def test_a_bad_attachment_on_the_public_form_is_a_400_with_the_reason(client, rmyy, categories):
    response, _ = post_complaint(client, rmyy, files=[file_field(b"MZ" + b"\x00" * 50, "virus.jpg")])
    assert response.status_code == 400 and "格式不支持" in response.get_data(as_text=True)
    assert cases_of(rmyy) == []


def test_a_forged_form_token_stores_nothing_and_keeps_what_was_typed(client, rmyy, categories):
    response, _ = post_complaint(client, rmyy, fields={"form_token": "forged", "wish": "请给我一个说法"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "页面已过期" in html and "请给我一个说法" in html
    assert cases_of(rmyy) == []
    resubmit = hidden_fields(html)
    assert resubmit["form_token"] != "forged"


def test_on_a_fresh_install_the_first_form_seeds_categories_that_hold(client, rmyy):
    db.session.execute(delete(Category).where(Category.institution_id.is_(None)))
    page = client.get(f"/c/{rmyy.id}/new").get_data(as_text=True)
    chosen = re.search(r'name="category" type="radio" value="(\d+)"|type="radio" name="category" value="(\d+)"|'
                       r'name="category"[^>]*value="(\d+)"', page)
    category_id = next(g for g in chosen.groups() if g)
    response, _ = post_complaint(client, rmyy, fields={"category": category_id})
    assert response.status_code == 200 and cases_of(rmyy)[0].category_id == int(category_id)


def test_a_body_too_large_to_read_gets_a_chinese_413_page_with_a_link_back(client, rmyy, categories, monkeypatch):
    from complaints import uploads

    monkeypatch.setattr(uploads, "READ_LIMIT", 4096)
    response, _ = post_complaint(client, rmyy, files=[file_field(JPEG * 40, "big.jpg")])
    html = response.get_data(as_text=True)
    assert response.status_code == 413 and "文件太大" in html and "每个文件不超过 20 MB，最多 5 个" in html
    assert f'href="/c/{rmyy.id}/new"' in html
    assert cases_of(rmyy) == []


def test_an_unknown_or_inactive_hospital_has_no_form(client, rmyy):
    assert client.get("/c/999999/new").status_code == 404
    rmyy.active = False
    assert client.get(f"/c/{rmyy.id}/new").status_code == 404


def test_the_public_form_is_rate_limited_per_device_with_a_friendly_page(app, client, rmyy, categories,
                                                                        monkeypatch):
    monkeypatch.setitem(app.config, "COMPLAINT_INTAKE_DEVICE_LIMIT", "2 per minute")
    answers = [post_complaint(client, rmyy)[0] for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 0 < int(answers[2].headers["Retry-After"]) <= 60  # the rest of this minute's window
    assert len(cases_of(rmyy)) == 2


@pytest.fixture
def window_response(rmyy):
    """A low rating (不满意) of rmyy's registration window, with a comment and a request for contact."""
    from survey import versioning

    templates = {t.code: t for t in versioning.install_builtin_templates(actor="test")}

    def make(score: str = "1", comment: str = "收费员态度很差，还多收了钱", phone: str | None = "13800138000"):
        fields = {"WIN_OVERALL": score, "WIN_COMMENT": comment}
        if phone:
            fields.update(WIN_CONTACT="yes", contact_phone=phone)
        return record_response(version=templates["WIN"].published, institution_id=rmyy.id,
                               touchpoint=touchpoint(rmyy, "W-GH-01"), fields=fields)

    return make


def test_a_complaint_from_the_survey_thank_you_page_is_linked_to_the_low_rating(client, rmyy, categories,
                                                                               window_response):
    rating = window_response(score="1")
    thanks = client.get(f"/thanks/{rating.submission_id}")
    assert f"/c/{rmyy.id}/new?response={rating.submission_id}" in thanks.get_data(as_text=True)
    response, _ = post_complaint(client, rmyy, query=f"?response={rating.submission_id}")
    assert response.status_code == 200
    (case,) = cases_of(rmyy)
    assert case.channel == "survey_alert" and case.survey_response_id == rating.id
    assert case.touchpoint_id == rating.touchpoint_id


def test_a_complaint_after_a_good_rating_is_self_service_and_other_hospitals_responses_are_ignored(
        client, rmyy, zyy, categories, window_response):
    rating = window_response(score="5", phone=None)
    post_complaint(client, rmyy, query=f"?response={rating.submission_id}")
    post_complaint(client, zyy, query=f"?response={rating.submission_id}")
    (ours,) = cases_of(rmyy)
    (theirs,) = cases_of(zyy)
    assert ours.channel == "self_service" and ours.survey_response_id == rating.id
    assert theirs.channel == "self_service" and theirs.survey_response_id is None


# The officer's registration form -------------------------------------------------------------

def officer_form(client, institution, **fields):
    hidden = open_form(client, f"/i/{institution.id}/complaints/new")
    data = {**hidden, "channel": "walk_in", "received_at": "2026-10-08T09:30",
            "category": str(category_service.categories_for(institution)[2].id), "subject": "门诊护士态度差",
            "description": "患者家属来访反映门诊护士态度差。", "relation": "family",
            "complainant_name": "赵六", "complainant_phone": "13712345678", **fields}
    return client.post(f"/i/{institution.id}/complaints/new", data=data, content_type="multipart/form-data"), data


@pytest.fixture
def october_2026(monkeypatch):
    """Registration accepts receipts up to a year back; the tests enter October 2026."""
    monkeypatch.setattr(intake, "utcnow", lambda: datetime(2026, 10, 9, 2, 0, tzinfo=UTC))


def test_an_officer_registers_a_walk_in_and_becomes_first_contact(client, rmyy, categories, october_2026):
    officer = staff_login(client, "rmyy-officer")
    xnk = department(rmyy, "XNK")
    response, _ = officer_form(client, rmyy, departments=[str(xnk.id)], staff_involved="护士甲",
                               attachments=[file_field(PNG, "照片.png")])
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "投诉已登记" in html
    (case,) = cases_of(rmyy)
    assert case.first_contact_id == officer.id and case.channel == "walk_in"
    assert case.received_at == beijing(2026, 10, 8, 9, 30)
    assert [d.id for d in case.concerned_departments] == [xnk.id] and case.staff_involved == "护士甲"
    code = re.search(r"<code>(\d{6})</code>", html).group(1)
    assert intake.check_lookup_code(case, code) and case.case_number in html
    assert f"/c/lookup?i={rmyy.id}" in html


def test_a_hotline_transfer_without_its_work_order_number_comes_back(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    response, _ = officer_form(client, rmyy, channel="hotline_12345", channel_ref="")
    assert response.status_code == 400 and "12345 热线转办须填写工单编号" in response.get_data(as_text=True)
    assert cases_of(rmyy) == []
    response, _ = officer_form(client, rmyy, channel="hotline_12345", channel_ref="12345-GD-0001")
    assert response.status_code == 200 and cases_of(rmyy)[0].channel_ref == "12345-GD-0001"


def test_an_officer_double_click_registers_once(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    first, data = officer_form(client, rmyy)
    again = client.post(f"/i/{rmyy.id}/complaints/new", data=data, content_type="multipart/form-data")
    assert again.status_code == 200 and "该投诉已登记" in again.get_data(as_text=True)
    assert len(cases_of(rmyy)) == 1


def test_an_officer_can_raise_the_emergency_flag_at_registration(client, rmyy, categories, october_2026, outbox):
    staff_login(client, "rmyy-officer")
    officer_form(client, rmyy, emergency="y")
    (case,) = cases_of(rmyy)
    assert case.safety_emergency and [m.kind for m in outbox] == ["complaint_emergency"]


@pytest.mark.parametrize("fields, message", [
    ({"received_at": "2026-13-40T99:00"}, "请填写日期和时间"),
    ({"received_at": "2026-10-10T09:00"}, "不能晚于现在"),
    ({"description": ""}, "请填写投诉内容"),
])
def test_bad_officer_input_is_a_400(client, rmyy, categories, october_2026, fields, message):
    staff_login(client, "rmyy-officer")
    response, _ = officer_form(client, rmyy, **fields)
    assert response.status_code == 400 and cases_of(rmyy) == []
    assert message in response.get_data(as_text=True) and 'role="alert"' in response.get_data(as_text=True)


def test_only_complaint_managers_register_and_only_for_their_hospital(client, rmyy, zyy, categories):
    staff_login(client, "rmyy-handler")
    assert client.get(f"/i/{rmyy.id}/complaints/new").status_code == 403
    staff_login(client, "rmyy-leader")
    assert client.get(f"/i/{rmyy.id}/complaints/new").status_code == 403
    staff_login(client, "rmyy-officer")
    assert client.get(f"/i/{zyy.id}/complaints/new").status_code == 404
    assert client.get(f"/i/{rmyy.id}/complaints/new").status_code == 200


def test_an_officer_reissues_a_lost_lookup_code(client, rmyy, make_case):
    case = make_case()
    old = case.plain_lookup_code
    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/lookup-code")
    new = re.search(r"<code>(\d{6})</code>", response.get_data(as_text=True)).group(1)
    db.session.refresh(case)
    assert intake.check_lookup_code(case, new)
    assert new == old or not intake.check_lookup_code(case, old)
    staff_login(client, "rmyy-handler")
    assert client.post(f"/i/{rmyy.id}/complaints/{case.id}/lookup-code").status_code == 403


# Survey alerts ----------------------------------------------------------------------------------

def alert_of(response):
    from survey.models import RecoveryAlert

    return db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == response.id))


def test_an_alert_becomes_a_complaint_once_with_the_ratings_comment_place_and_phone(rmyy, categories,
                                                                                  window_response):
    rating = window_response(score="1")
    alert = alert_of(rating)
    officer = demo_user("rmyy-officer")
    case, code = intake.complaint_from_alert(rmyy, alert.id, actor=officer)
    assert case.channel == "survey_alert" and case.survey_response_id == rating.id
    assert case.description == "收费员态度很差，还多收了钱" and case.complainant_phone == "13800138000"
    assert case.touchpoint_id == alert.touchpoint_id and [d.id for d in case.concerned_departments] == [
        alert.department_id]
    assert case.first_contact_id == officer.id and case.category.code == "other"
    assert alert.status == "acknowledged"
    again, again_code = intake.complaint_from_alert(rmyy, alert.id, actor=officer)
    assert again.id == case.id and again_code == code and len(cases_of(rmyy)) == 1


def test_an_alert_raised_only_for_a_contact_request_does_not_become_a_low_rating(rmyy, categories,
                                                                                 window_response):
    from survey import alerts

    rating = window_response(score="5", comment="")
    alert = alert_of(rating)
    assert alert.reasons == ["contact_requested"]
    facts = alerts.alert_for_complaint(rmyy.id, alert.id)
    assert not facts.low_score and facts.rating.low is False and facts.rating.response_id == rating.id
    case, _code = intake.complaint_from_alert(rmyy, alert.id, actor=demo_user("rmyy-officer"))
    assert "低分" not in case.description and "患者希望被联系" in case.description
    assert case.channel == "survey_alert" and case.survey_response_id == rating.id


def test_an_alert_raised_for_a_low_score_says_so(rmyy, categories, window_response):
    from survey import alerts

    alert = alert_of(window_response(score="1", comment="", phone=None))
    facts = alerts.alert_for_complaint(rmyy.id, alert.id)
    assert facts.low_score and facts.rating.low is True
    case, _code = intake.complaint_from_alert(rmyy, alert.id, actor=demo_user("rmyy-officer"))
    assert case.description == "患者在满意度评价中给出低分（评分低于预警线），未填写具体意见。"


def test_the_alert_button_converts_with_a_category_and_a_second_click_shows_the_same_case(
        client, rmyy, categories, window_response):
    rating = window_response(score="2", comment="", phone=None)
    alert = alert_of(rating)
    url = f"/i/{rmyy.id}/complaints/from-alert/{alert.id}"
    staff_login(client, "rmyy-handler")
    assert client.post(url).status_code == 403
    staff_login(client, "rmyy-officer")
    first = client.post(url, data={"category": str(categories["charges"].id)})
    assert first.status_code == 200 and "已转为投诉" in first.get_data(as_text=True)
    (case,) = cases_of(rmyy)
    assert case.category_id == categories["charges"].id and "未填写具体意见" in case.description
    assert case.complainant_phone is None
    second = client.post(url)
    assert second.status_code == 200 and "该提醒已转为投诉" in second.get_data(as_text=True)
    assert len(cases_of(rmyy)) == 1
    staff_login(client, "zyy-officer")
    assert client.post(f"/i/{rmyy.id}/complaints/from-alert/{alert.id}").status_code == 404


def test_the_alert_page_helper_offers_the_button_to_managers_only(app, client, rmyy, categories, window_response):
    from flask_login import login_user, logout_user

    from complaints.views_intake import alert_button_context

    alert = alert_of(window_response())
    with app.test_request_context():
        login_user(demo_user("rmyy-officer"))
        offered = alert_button_context(rmyy, alert)
        assert offered["can_convert"] and offered["converted"] is None
        assert offered["convert_url"].endswith(f"/complaints/from-alert/{alert.id}")
        logout_user()
        login_user(demo_user("rmyy-handler"))
        assert alert_button_context(rmyy, alert) == {"can_convert": False}


def test_the_case_page_shows_the_intake_section_and_its_actions_to_managers(client, rmyy, make_case):
    case = make_case(departments_concerned=["XNK", "CWK"])
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="intake"' in html and "财务科、心血管内科" in html
    assert f"/complaints/{case.id}/lookup-code" in html and f"/complaints/{case.id}/emergency" in html
    case.lead_department_id = department(rmyy, "XNK").id
    staff_login(client, "rmyy-handler")
    html = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert 'id="intake"' in html and "lookup-code" not in html and "/emergency" not in html


def test_the_case_page_model_decides_the_intake_sections_buttons(app, rmyy, make_case, officer, handler):
    case, done = make_case(), make_case()
    triage.decline_complaint(done, DeclineReason.REPEATED, "告知", actor=officer)
    with app.test_request_context():
        page = case_page.build(officer, rmyy, case)
        assert (page.may_reissue_code, page.may_flag_emergency) == (True, True)
        page = case_page.build(handler, rmyy, case)
        assert (page.may_reissue_code, page.may_flag_emergency) == (False, False)
        page = case_page.build(officer, rmyy, done)            # declined: finished, no alarm any more
        assert (page.may_reissue_code, page.may_flag_emergency) == (True, False)
        emergency.flag_emergency(case, actor=officer)
        page = case_page.build(officer, rmyy, case)            # flagged once is enough
        assert (page.may_reissue_code, page.may_flag_emergency) == (True, False)
        case.merged_into_id = done.id
        page = case_page.build(officer, rmyy, case)
        assert (page.may_reissue_code, page.may_flag_emergency) == (False, False)
        assert not hasattr(page, "lead_row")


def test_the_survey_alert_page_shows_the_convert_button_and_then_the_case(client, rmyy, categories, window_response):
    alert = alert_of(window_response(score="1"))
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/survey/alerts/{alert.id}").get_data(as_text=True)
    assert "转为投诉" in page and f"/i/{rmyy.id}/complaints/from-alert/{alert.id}" in page
    case, _code = intake.complaint_from_alert(rmyy, alert.id, actor=demo_user("rmyy-officer"))
    page = client.get(f"/i/{rmyy.id}/survey/alerts/{alert.id}").get_data(as_text=True)
    assert "已转为投诉" in page and case.case_number in page


def test_a_finished_case_cannot_raise_an_emergency_alarm(client, rmyy, make_case, outbox):
    from complaints.models import Status

    case = make_case()
    case.status = Status.CLOSED.value
    db.session.flush()
    with pytest.raises(emergency.EmergencyError):
        emergency.flag_emergency(case, actor=demo_user("rmyy-officer"))
    assert not case.safety_emergency and outbox == []


@pytest.mark.real_engine
def test_a_slow_emergency_notice_does_not_hold_up_the_next_registration_at_the_hospital(app, monkeypatch):
    """The notice goes out after the registration's commit, so the case-number row lock is free while it is sent."""
    from flask.testing import FlaskClient

    from core import notify
    from tests.factories import login

    slow_seconds = 3.0
    notice_started, times = threading.Event(), {}

    def slow_gateway(message):
        notice_started.set()
        threading.Event().wait(slow_seconds)
        times["notice_sent"] = time.monotonic()

    monkeypatch.setitem(notify.BACKENDS, "slow", slow_gateway)
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "slow")
    year = 2093  # a counter nobody else uses: registrations are committed for real here
    monkeypatch.setattr(intake, "utcnow", lambda: datetime(year, 6, 1, 4, 0, tzinfo=UTC))
    with app.app_context():
        had_categories = not category_service.defaults_missing()
        categories = {c.code: c.id for c in category_service.default_categories(actor="test")}
        institution_id = demo_institution("rmyy").id
        officer = demo_user("rmyy-officer")
        db.session.commit()

    def register(category: str):
        client = FlaskClient(app, app.response_class, use_cookies=True)
        with app.app_context():
            login(client, db.session.merge(officer))
        form = {"submission_id": uuid.uuid4().hex, "channel": "walk_in", "received_at": f"{year}-06-01T11:30",
                "category": str(categories[category]), "subject": "并发登记", "description": "并发登记测试。",
                "relation": "self", **({"emergency": "y"} if category == "quality_safety" else {})}
        response = client.post(f"/i/{institution_id}/complaints/new", data=form, content_type="multipart/form-data")
        assert response.status_code == 200, response.status_code
        return response

    errors = []

    def first():
        try:
            register("quality_safety")
        except Exception as exc:  # reported below
            errors.append(exc)

    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert notice_started.wait(20), "the first registration's notice never started"
        started = time.monotonic()
        register("attitude")  # the same hospital, the same year's counter row
        times["second_done"] = time.monotonic()
        thread.join(30)
        assert errors == []
        assert times["second_done"] - started < slow_seconds / 2
        assert times["second_done"] < times["notice_sent"]
        with app.app_context():
            numbers = sorted(db.session.scalars(select(Complaint.case_number).where(
                Complaint.institution_id == institution_id, Complaint.case_number.like(f"TS{year}-%"))))
            assert numbers == [f"TS{year}-00001", f"TS{year}-00002"]
    finally:
        with app.app_context():
            ids = [str(i) for i in db.session.scalars(select(Complaint.id).where(
                Complaint.case_number.like(f"TS{year}-%")))]
            db.session.execute(delete(AuditEntry).where(AuditEntry.target_type == "complaint",
                                                        AuditEntry.target_id.in_(ids)))
            db.session.execute(delete(Notification).where(Notification.key.in_(
                [f"complaint:{i}:emergency" for i in ids])))
            db.session.execute(delete(Complaint).where(Complaint.case_number.like(f"TS{year}-%")))
            db.session.execute(delete(CaseCounter).where(CaseCounter.year == year))
            if not had_categories:
                db.session.execute(delete(Category).where(Category.institution_id.is_(None)))
                db.session.execute(delete(AuditEntry).where(AuditEntry.action == "complaint_category.seed_defaults"))
            db.session.commit()
