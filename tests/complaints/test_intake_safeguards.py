"""Intake as its users found it (issue 10): what people send is kept, limits are said, floods are stopped.

- photos as phones take them (up to 20 MB, HEIC included), downscaled and stripped of their position;
- files chosen on a form that comes back are kept for its submission and shown as attached;
- a body too large comes back as the form with its text (413); the limits are in the labels and
  a long text is refused with its count, never cut;
- the staff form reports every mistake at once, the service's own refusals included;
- single-use form tokens, caps per network, and public safety reports that go to the officers on
  duty (grouped) instead of paging leadership.
"""
from __future__ import annotations

import io
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from complaints import attachments, emergency, intake, tasks
from complaints import categories as category_service
from complaints.attachments import Upload
from complaints.models import Attachment, CaseEvent, Complaint, PendingFile
from core.extensions import db
from core.signing import UsedFormToken
from tests.complaints.conftest import hidden_fields, open_form, photo, post_complaint, staff_login

PDF = b"%PDF-1.7\n" + b"\x00" * 200


def cases_of(institution) -> list[Complaint]:
    db.session.expire_all()
    return list(db.session.scalars(select(Complaint).where(Complaint.institution_id == institution.id)
                                   .order_by(Complaint.id)))


def stored(case: Complaint) -> list[Attachment]:
    return list(db.session.scalars(select(Attachment).where(Attachment.complaint_id == case.id)
                                   .order_by(Attachment.id)))


def image_of(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def category_id(institution, code: str) -> str:
    return str(next(c.id for c in category_service.categories_for(institution) if c.code == code))


# Photos as phones take them ---------------------------------------------------------------------

def test_a_phone_photo_is_turned_upright_shrunk_and_stored_without_its_position(make_case):
    original = photo("jpg", (4000, 3000), noise=True, exif={
        0x0112: 6,                                   # the phone was held upright: rotate 90° to show it
        0x0132: "2026:10:08 09:30:00",               # when it was taken
        0x010F: "PhoneMaker", 0x0110: "Phone 15",    # the device
        0x8825: {1: "N", 2: (30.0, 39.0, 52.0)},     # where it was taken
    })
    case = make_case(attachments=[Upload("IMG_2231.JPG", original)])
    (row,) = stored(case)
    image = image_of(row.data)
    assert image.format == "JPEG" and image.size == (1536, 2048)  # upright, longest side 2048
    exif = image.getexif()
    assert exif.get(0x0112) is None and exif.get_ifd(0x8825) == {}   # no orientation left to apply, no GPS
    assert 0x010F not in exif and 0x0110 not in exif
    assert exif.get(0x0132) == "2026:10:08 09:30:00"
    assert row.size == len(row.data) < len(original) / 4 and row.filename == "IMG_2231.JPG"


def test_an_iphone_heic_photo_is_read_and_stored_as_a_jpeg_every_pc_opens(make_case):
    case = make_case(attachments=[Upload("IMG_0001.HEIC", photo("heic", (4032, 3024)), "image/heic")])
    (row,) = stored(case)
    assert (row.filename, row.content_type) == ("IMG_0001.jpg", "image/jpeg")
    assert image_of(row.data).size == (2048, 1536)


def test_a_screenshot_stays_png_and_a_photo_saved_as_png_becomes_jpeg(make_case):
    screenshot = photo("png", (1170, 2532))
    photo_png = photo("png", (2400, 1800), noise=True)
    case = make_case(attachments=[Upload("截图.png", screenshot), Upload("照片.png", photo_png)])
    first, second = stored(case)
    assert (first.filename, first.content_type, image_of(first.data).size) == ("截图.png", "image/png", (946, 2048))
    assert (second.filename, second.content_type) == ("照片.jpg", "image/jpeg")


def test_a_photo_of_almost_20_mb_is_taken_and_stored_small(make_case):
    big = photo("jpg", (4000, 3000), noise=True)
    big += b"\x00" * (19 * 1024 * 1024 - len(big))  # a camera's extra data after the picture
    assert 18 * 1024 * 1024 < len(big) <= attachments.MAX_UPLOAD_BYTES
    case = make_case(attachments=[Upload("IMG_5000.jpg", big)])
    (row,) = stored(case)
    assert row.size < 3 * 1024 * 1024


def test_a_photo_with_too_many_pixels_is_refused_with_a_way_out(rmyy, make_case):
    huge = photo("png", (12000, 10001))  # one colour: small on disk, 1.2 gigabytes of pixels when decoded
    with pytest.raises(intake.IntakeError) as raised:
        make_case(attachments=[Upload("全景.png", huge)])
    assert "像素太高" in str(raised.value) and cases_of(rmyy) == []


# Files kept for a form that came back ----------------------------------------------------------

def test_a_chosen_photo_is_kept_when_another_field_fails_and_sent_with_the_form(client, rmyy, categories):
    response, _ = post_complaint(client, rmyy, fields={"description": "", "wish": "请给个说法"},
                                 files=[(io.BytesIO(photo("jpg", (800, 600))), "票据.jpg")])
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "请写下发生了什么" in html
    assert "已附上：票据.jpg" in html and "请给个说法" in html and cases_of(rmyy) == []
    again = hidden_fields(html)
    again.update(category=category_id(rmyy, "attitude"), relation="self", description="收费窗口多收了 20 元。",
                 wish="请给个说法")
    response = client.post(f"/c/{rmyy.id}/new", data=again, content_type="multipart/form-data")  # no file chosen
    assert response.status_code == 200 and "投诉已提交" in response.get_data(as_text=True)
    (case,) = cases_of(rmyy)
    assert [a.filename for a in stored(case)] == ["票据.jpg"]
    assert db.session.scalar(select(func.count()).select_from(PendingFile)) == 0


def test_a_kept_file_whose_box_is_ticked_is_not_sent(client, rmyy, categories):
    response, _ = post_complaint(client, rmyy, fields={"complainant_phone": "12"},
                                 files=[(io.BytesIO(photo("jpg")), "错的照片.jpg")])
    html = response.get_data(as_text=True)
    kept = re.search(r'name="remove_file" value="(\d+)"', html).group(1)
    again = {**hidden_fields(html), "category": category_id(rmyy, "attitude"), "relation": "self",
             "description": "收费窗口多收了 20 元。", "remove_file": kept,
             "attachments": [(io.BytesIO(photo("png")), "对的照片.png")]}
    response = client.post(f"/c/{rmyy.id}/new", data=again, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    (case,) = cases_of(rmyy)
    assert [a.filename for a in stored(case)] == ["对的照片.png"]


def test_another_forms_kept_file_cannot_be_removed_or_sent(client, new_client, rmyy, categories):
    response, _ = post_complaint(client, rmyy, fields={"description": ""}, files=[(io.BytesIO(photo()), "a.jpg")])
    kept = re.search(r'name="remove_file" value="(\d+)"', response.get_data(as_text=True)).group(1)
    other = new_client()
    response, _ = post_complaint(other, rmyy, fields={"remove_file": kept})
    assert response.status_code == 200
    (case,) = cases_of(rmyy)
    assert stored(case) == [] and db.session.get(PendingFile, int(kept)) is not None


def test_a_made_up_file_to_remove_is_ignored(client, rmyy, categories):
    response, _ = post_complaint(client, rmyy, fields={"remove_file": ["99999999999", "abc", "３"]})
    assert response.status_code == 200 and len(cases_of(rmyy)) == 1


def test_six_files_keep_five_and_name_the_one_left_out(client, rmyy, categories):
    files = [(io.BytesIO(photo("jpg")), f"{i}.jpg") for i in range(1, 7)]
    response, _ = post_complaint(client, rmyy, files=files)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "最多上传 5 个文件，您选择了 6 个" in html
    assert html.count("已附上：") == 5 and "这些没有保留：6.jpg" in html
    assert 'type="file"' not in html  # five are attached: nothing more to choose


def test_kept_files_expire_and_the_cleanup_job_deletes_them(rmyy):
    sid = secrets.token_hex(16)
    attachments.keep_pending(rmyy.id, sid, [attachments.prepare(Upload("a.jpg", photo()))])
    assert [f.filename for f in attachments.pending_files(rmyy.id, sid)] == ["a.jpg"]
    assert attachments.pending_files(rmyy.id + 1, sid) == []  # keyed by the institution too
    later = datetime.now(UTC) + timedelta(seconds=attachments.PENDING_SECONDS + 60)
    assert tasks.clean_intake(later.isoformat())["files"] == 1
    assert tasks.clean_intake(later.isoformat())["files"] == 0
    assert attachments.pending_files(rmyy.id, sid) == []


def test_the_cleanup_job_forgets_used_tokens_once_they_would_have_expired(ctx):
    db.session.add(UsedFormToken(token_hash="a" * 64, used_at=datetime.now(UTC) - timedelta(hours=25)))
    db.session.add(UsedFormToken(token_hash="b" * 64, used_at=datetime.now(UTC) - timedelta(hours=23)))
    assert tasks.clean_intake()["tokens"] == 1
    assert db.session.get(UsedFormToken, "b" * 64) is not None


def test_the_public_form_keeps_at_most_so_many_files_per_network(app, client, rmyy, categories, monkeypatch):
    monkeypatch.setitem(app.config, "COMPLAINT_PENDING_NETWORK_LIMIT", "2 per hour")
    response, _ = post_complaint(client, rmyy, fields={"description": ""},
                                 files=[(io.BytesIO(photo()), "a.jpg"), (io.BytesIO(photo()), "b.jpg")])
    assert response.get_data(as_text=True).count("已附上：") == 2
    response, _ = post_complaint(client, rmyy, fields={"description": ""}, files=[(io.BytesIO(photo()), "c.jpg")])
    html = response.get_data(as_text=True)
    assert "已附上：" not in html and "没能暂存" in html


# Too large, too long ------------------------------------------------------------------------------

def test_a_body_over_the_limit_comes_back_as_the_form_with_its_text_and_a_413(client, rmyy, categories,
                                                                             monkeypatch):
    from complaints import uploads

    monkeypatch.setattr(uploads, "BODY_LIMIT", 20_000)
    response, _ = post_complaint(client, rmyy, fields={"wish": "请回电话"},
                                 files=[(io.BytesIO(photo("jpg", (400, 300), noise=True)), "IMG_1.jpg")])
    html = response.get_data(as_text=True)
    assert response.status_code == 413 and "我要投诉" in html
    assert "这次没有收到：IMG_1.jpg" in html and "请回电话" in html and "在收费窗口排队一小时" in html
    assert cases_of(rmyy) == []


def test_one_file_over_20_mb_is_named_and_the_others_kept(client, rmyy, categories):
    too_big = b"\xff\xd8\xff\xe0" + b"\x00" * (attachments.MAX_UPLOAD_BYTES + 10)
    response, _ = post_complaint(client, rmyy, files=[(io.BytesIO(too_big), "全景.jpg"),
                                                      (io.BytesIO(photo()), "票据.jpg")])
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "文件“全景.jpg”超过 20 MB" in html and "已附上：票据.jpg" in html


def test_the_limits_are_in_the_labels_and_nothing_cuts_a_pasted_text(client, rmyy, categories):
    html = client.get(f"/c/{rmyy.id}/new").get_data(as_text=True)
    assert "请说说发生了什么（最多 4000 字）" in html and "最多 2000 字" in html and "最多 40 字" in html
    assert "最多 5 个，每个不超过 20 MB" in html
    assert "maxlength" not in html and 'data-limit="4000"' in html


def test_a_text_over_its_limit_comes_back_whole_with_its_count(client, rmyy, categories):
    pasted = "投诉内容很长。" * 2857 + "完"  # 20,000 characters
    response, _ = post_complaint(client, rmyy, fields={"description": pasted})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "最多 4000 字，现在 20000 字，请删减 16000 字后再提交" in html
    assert pasted in html and cases_of(rmyy) == []


def test_line_breaks_count_as_one_character_as_the_counter_counts_them(client, rmyy, categories):
    text = ("一" * 9 + "\r\n") * 400  # 4,000 characters once a browser's CRLF is one line break
    response, _ = post_complaint(client, rmyy, fields={"description": text.strip()})
    assert response.status_code == 200, re.findall(r'class="err"[^>]*>([^<]+)', response.get_data(as_text=True))


# Every mistake at once --------------------------------------------------------------------------

@pytest.fixture
def october_2026(monkeypatch):
    monkeypatch.setattr(intake, "utcnow", lambda: datetime(2026, 10, 9, 2, 0, tzinfo=UTC))


def officer_post(client, institution, **fields):
    hidden = open_form(client, f"/i/{institution.id}/complaints/new")
    data = {**hidden, "channel": "walk_in", "received_at": "2026-10-08T09:30",
            "category": category_id(institution, "attitude"), "description": "患者家属来访反映门诊护士态度差。",
            "relation": "family", "complainant_phone": "13712345678", **fields}
    return client.post(f"/i/{institution.id}/complaints/new", data=data, content_type="multipart/form-data")


def test_the_officers_form_reports_every_mistake_at_once(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    response = officer_post(client, rmyy, channel="hotline_12345", channel_ref="", description="",
                            complainant_phone="12345", received_at="2026-10-10T09:00",
                            attachments=[(io.BytesIO(b"MZ" + b"\x00" * 50), "病毒.jpg")])
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("请填写投诉内容", "12345 热线转办须填写工单编号", "电话号码格式不正确", "不能晚于现在",
                    "文件“病毒.jpg”格式不支持"):
        assert message in html, message
    assert "共 5 处需要修改，已在下方逐项标出" in html and cases_of(rmyy) == []


def test_the_officers_form_keeps_its_files_too(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    response = officer_post(client, rmyy, description="", attachments=[(io.BytesIO(PDF), "来信.pdf")])
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "已附上：来信.pdf" in html
    again = {**hidden_fields(html), "channel": "walk_in", "received_at": "2026-10-08T09:30",
             "category": category_id(rmyy, "attitude"), "description": "来信反映门诊护士态度差。", "relation": "self",
             "subject": "门诊护士态度差"}
    response = client.post(f"/i/{rmyy.id}/complaints/new", data=again, content_type="multipart/form-data")
    assert response.status_code == 200
    (case,) = cases_of(rmyy)
    assert [a.filename for a in stored(case)] == ["来信.pdf"]


# Single-use form tokens, caps per network ---------------------------------------------------------

def test_a_form_token_is_used_up_by_the_complaint_it_sent(client, rmyy, categories):
    first, data = post_complaint(client, rmyy)
    assert first.status_code == 200
    replay = {**data, "submission_id": secrets.token_hex(16)}
    response = client.post(f"/c/{rmyy.id}/new", data=replay, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "这张表单已经提交过一次了" in html and "在收费窗口排队一小时" in html
    assert len(cases_of(rmyy)) == 1
    fresh = hidden_fields(html)  # the page it came back as carries a new token: an honest second complaint
    assert fresh["form_token"] != data["form_token"]
    response = client.post(f"/c/{rmyy.id}/new", data={**replay, **fresh}, content_type="multipart/form-data")
    assert response.status_code == 200 and len(cases_of(rmyy)) == 2


def test_a_refused_submission_leaves_its_token_usable(client, rmyy, categories):
    response, data = post_complaint(client, rmyy, fields={"description": ""})
    assert response.status_code == 400
    response = client.post(f"/c/{rmyy.id}/new", data={**data, "description": "窗口多收费。"},
                           content_type="multipart/form-data")
    assert response.status_code == 200 and len(cases_of(rmyy)) == 1


def test_complaints_from_one_network_are_capped_per_hour_and_others_are_not(app, new_client, rmyy, categories,
                                                                           monkeypatch):
    monkeypatch.setitem(app.config, "COMPLAINT_INTAKE_NETWORK_LIMIT", "2 per hour;5 per day")
    answers = [post_complaint(new_client(f"10.200.7.{n}"), rmyy)[0] for n in (11, 12, 13)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    html = answers[2].get_data(as_text=True)
    assert "您所在的网络提交的网上投诉太多了" in html and "在收费窗口排队一小时" in html
    assert 0 < int(answers[2].headers["Retry-After"]) <= 3600
    assert post_complaint(new_client("10.201.7.11"), rmyy)[0].status_code == 200  # another network
    assert len(cases_of(rmyy)) == 3


def test_the_network_caps_default_to_what_a_hospital_wifi_never_reaches(app):
    from core.ratelimit import _parse

    assert _parse(app.config["COMPLAINT_INTAKE_NETWORK_LIMIT"]) == ((20, 3600), (60, 86400))


def flood(new_client, institution, network: str, posts: int, category: str):
    """The flood of issue 10: one address, one form token reused, a new device cookie and submission id per post."""
    fields = open_form(new_client(network), f"/c/{institution.id}/new")
    answers = []
    for _ in range(posts):
        data = {**fields, "submission_id": secrets.token_hex(16), "category": category, "relation": "self",
                "description": "医生开错了药，吃了以后头晕。", "complainant_phone": "13912345678"}
        phone = new_client(network)
        phone.set_cookie("tj_d", secrets.token_hex(16), domain="tingjian.test")
        answers.append(phone.post(f"/c/{institution.id}/new", data=data, content_type="multipart/form-data"))
    return answers


def test_the_flood_is_stopped_and_an_honest_complainant_on_the_same_wifi_gets_through(new_client, rmyy,
                                                                                   categories, outbox):
    safety = category_id(rmyy, "quality_safety")
    answers = flood(new_client, rmyy, "10.66.1.20", 15, safety)
    assert [a.status_code for a in answers] == [200] + [409] * 14
    assert len(cases_of(rmyy)) == 1
    # Nobody in leadership was paged: the officers on duty got one notice to check the report.
    assert [m.kind for m in outbox] == ["complaint_safety_report"]
    assert set(outbox[0].recipients) == {"rmyy-officer"}

    honest = new_client("10.66.1.21")  # the same Wi-Fi, another phone, a fresh form
    response, _ = post_complaint(honest, rmyy, fields={"category": safety})
    assert response.status_code == 200 and "投诉已提交" in response.get_data(as_text=True)
    assert len(cases_of(rmyy)) == 2 and len(outbox) == 1  # its notice waits for the window, then is grouped
    later = datetime.now(UTC) + emergency.SAFETY_REPORT_WINDOW + timedelta(minutes=1)
    assert tasks.sweep_safety_reports(later.isoformat()) == 1
    assert [m.kind for m in outbox] == ["complaint_safety_report"] * 2


# Public safety reports ----------------------------------------------------------------------------

def test_a_public_safety_complaint_tells_the_officers_and_does_not_page_leadership(client, rmyy, categories,
                                                                                  outbox):
    response, _ = post_complaint(client, rmyy, fields={"category": category_id(rmyy, "quality_safety")})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "已通知投诉管理部门优先核实" in html and "已立即通知相关负责人" not in html
    (case,) = cases_of(rmyy)
    assert not case.safety_emergency and case.safety_reported_at is not None
    (message,) = outbox
    assert message.kind == "complaint_safety_report" and message.recipients == ["rmyy-officer"]
    assert case.case_number in message.body and "13912345678" not in message.subject + message.body
    assert case.safety_report_notified_at is not None
    assert [e.action for e in case.events] == ["registered", "deadline_set", "safety_reported",
                                                 "safety_report_notified"]
    assert tasks.sweep_emergency_notices() == 0 and tasks.sweep_safety_reports() == 0 and len(outbox) == 1


def public_case(make_case, **values):
    """A complainant's own complaint in 医疗质量安全, committed as the form commits it."""
    case = make_case(category="quality_safety", channel="self_service", first_contact=None, actor="self-service",
                     complainant_name=None, **values)
    db.session.commit()
    return case


def test_a_burst_of_reports_becomes_one_grouped_notice_and_at_most_one_per_window(rmyy, make_case, outbox):
    now = datetime.now(UTC)
    burst = [public_case(make_case) for _ in range(5)]
    assert tasks.notify_safety_reports(rmyy.id, now.isoformat()) == 5
    (message,) = outbox
    assert all(c.case_number in message.body for c in burst) and "5 件" in message.subject
    later = [public_case(make_case) for _ in range(3)]
    assert tasks.notify_safety_reports(rmyy.id, (now + timedelta(minutes=1)).isoformat()) == 0
    assert tasks.sweep_safety_reports((now + timedelta(minutes=5)).isoformat()) == 0 and len(outbox) == 1
    assert tasks.sweep_safety_reports((now + timedelta(minutes=11)).isoformat()) == 3
    assert all(c.case_number in outbox[1].body for c in later)
    assert tasks.sweep_safety_reports((now + timedelta(minutes=30)).isoformat()) == 0 and len(outbox) == 2


def test_a_report_flagged_before_its_notice_is_not_listed_and_the_flag_pages_leadership(client, rmyy, make_case,
                                                                                       outbox):
    flagged, waiting = public_case(make_case), public_case(make_case)
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/{flagged.id}").get_data(as_text=True)
    assert "尚未标记为紧急：请尽快核实" in page
    assert client.post(f"/i/{rmyy.id}/complaints/{flagged.id}/emergency").status_code == 302
    assert [m.kind for m in outbox] == ["complaint_emergency"]
    assert {"rmyy-leader", "rmyy-admin"} <= set(outbox[0].recipients)
    assert tasks.sweep_safety_reports() == 1
    assert waiting.case_number in outbox[1].body and flagged.case_number not in outbox[1].body


def test_a_failed_notice_leaves_the_reports_to_the_sweep(app, rmyy, make_case, monkeypatch, outbox):
    from core import notify

    def broken(message):
        raise ConnectionError("gateway down")

    case = public_case(make_case)
    monkeypatch.setitem(notify.BACKENDS, "broken", broken)
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "broken")
    with pytest.raises(ConnectionError):
        tasks.notify_safety_reports(rmyy.id)
    assert tasks.sweep_safety_reports() == 0  # still down; logged, owed
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "memory")
    assert tasks.sweep_safety_reports() == 1 and [m.meta["complaint_ids"] for m in outbox] == [[case.id]]


def test_the_timeline_says_what_happened_to_a_report(rmyy, make_case, outbox):
    case = public_case(make_case)
    tasks.notify_safety_reports(rmyy.id)
    labels = {e.action for e in db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == case.id))}
    assert {"safety_reported", "safety_report_notified"} <= labels


# On a phone (390 px) and on the officer's PC ------------------------------------------------------------

@pytest.mark.browser
def test_on_a_phone_limits_are_counted_files_kept_and_refusals_explained(app, live_server, shots, tmp_path,
                                                                        monkeypatch):
    from complaints import uploads
    from complaints.categories import default_categories
    from tests.complaints.conftest import in_browser
    from tests.factories import demo_institution

    with app.app_context():
        default_categories(actor="test")
        institution_id = demo_institution("rmyy").id
        db.session.commit()
    receipt = tmp_path / "收费票据.jpg"
    receipt.write_bytes(photo("jpg", (3000, 4000), noise=True))
    form_url = f"{live_server}/c/{institution_id}/new"
    seen: dict[str, str] = {}

    def no_sideways_scroll(page) -> None:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

    def fill_form(page, description: str) -> None:
        page.get_by_text("收费价格", exact=True).tap()
        page.get_by_label("请说说发生了什么").fill(description)
        page.get_by_label("您希望我们怎么处理？").fill("退还多收的费用。")
        page.get_by_label("联系电话（建议填写，便于答复您）").fill("139 1234 5678")

    def phone_visit(page):
        page.goto(form_url)
        counter = page.locator("#description-count")
        assert counter.inner_text() == "已写 0 字，最多 4000 字"
        fill_form(page, "多收费。" * 1030)  # 4,120 characters
        assert counter.inner_text() == "已写 4120 字，超出 120 字：请删减后再提交"
        page.set_input_files("input[type=file]", str(receipt))
        counter.scroll_into_view_if_needed()
        no_sideways_scroll(page)
        page.screenshot(path=str(shots / "intake-counter-390.png"))
        page.get_by_role("button", name="提交投诉").tap()
        page.wait_for_selector("text=已附上：收费票据.jpg")
        assert "现在 4120 字，请删减 120 字" in page.content()
        assert page.input_value("textarea[name=description]") == "多收费。" * 1030  # kept whole, not cut
        page.locator(".kept").scroll_into_view_if_needed()
        no_sideways_scroll(page)
        page.screenshot(path=str(shots / "intake-kept-attachment-390.png"))
        page.get_by_label("请说说发生了什么").fill("10月8日在门诊 2 号收费窗口被多收了 20 元。")
        page.get_by_role("button", name="提交投诉").tap()
        page.wait_for_selector("text=投诉已提交")
        seen["number"] = page.inner_text("dd.code:not(.pin)").strip()

        monkeypatch.setattr(uploads, "BODY_LIMIT", 200_000)  # this photo is a "too large" body now
        page.goto(form_url)
        fill_form(page, "挂号窗口的工作人员态度很差。")
        page.set_input_files("input[type=file]", str(receipt))
        page.get_by_role("button", name="提交投诉").tap()
        page.wait_for_selector("text=这次没有收到：收费票据.jpg")
        assert page.input_value("textarea[name=description]") == "挂号窗口的工作人员态度很差。"
        no_sideways_scroll(page)
        page.locator(".bad").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "intake-413-form-390.png"))
        monkeypatch.setattr(uploads, "READ_LIMIT", 200_000)  # and one too large to read at all
        page.set_input_files("input[type=file]", str(receipt))
        page.get_by_role("button", name="提交投诉").tap()
        page.wait_for_selector("text=文件太大，没有收到")
        no_sideways_scroll(page)
        page.screenshot(path=str(shots / "intake-413-notice-390.png"), full_page=True)
        page.get_by_role("link", name="返回").tap()
        page.wait_for_selector("text=我要投诉")

        monkeypatch.setitem(app.config, "COMPLAINT_INTAKE_NETWORK_LIMIT", "1 per hour")
        page.goto(form_url)
        fill_form(page, "门诊楼的电梯总是坏。")
        page.get_by_role("button", name="提交投诉").tap()
        page.wait_for_selector("text=投诉已提交")  # the network's one complaint this hour
        page.goto(form_url)
        fill_form(page, "住院部的热水一直不热。")
        page.get_by_role("button", name="提交投诉").tap()
        page.wait_for_selector("text=您所在的网络提交的网上投诉太多了")
        assert page.input_value("textarea[name=description]") == "住院部的热水一直不热。"
        no_sideways_scroll(page)
        assert "请按下方红字提示" not in page.inner_text(".errs")  # nothing below is wrong
        page.screenshot(path=str(shots / "intake-flood-refusal-390.png"))

    in_browser(phone_visit, width=390)
    with app.app_context():
        case = db.session.scalar(select(Complaint).where(Complaint.case_number == seen["number"],
                                                         Complaint.institution_id == institution_id))
        (row,) = stored(case)
        assert row.filename == "收费票据.jpg" and image_of(row.data).size == (1536, 2048)


@pytest.mark.browser
def test_the_officers_form_shows_every_mistake_and_the_kept_file(app, live_server, shots, tmp_path):
    from complaints.categories import default_categories
    from tests.complaints.conftest import in_browser
    from tests.factories import demo_institution, demo_user

    with app.app_context():
        default_categories(actor="test")
        institution_id = demo_institution("rmyy").id
        officer_id = demo_user("rmyy-officer").id
        db.session.commit()
    letter = tmp_path / "来信.pdf"
    letter.write_bytes(PDF)

    def officer_visit(page):
        page.goto(f"{live_server}/login")
        page.fill("input[name=username]", "rmyy-officer")
        page.fill("input[name=password]", "Demo2026tingjian")
        page.click("button[type=submit]")
        page.goto(f"{live_server}/i/{institution_id}/complaints/new")
        page.select_option("select[name=channel]", "hotline_12345")
        page.fill("input[name=complainant_phone]", "12345")
        page.set_input_files("input[type=file]", str(letter))
        page.get_by_role("button", name="登记").click()
        page.wait_for_selector("text=已附上：来信.pdf")
        text = page.inner_text("main")
        for message in ("请选择投诉类别", "请填写投诉内容", "12345 热线转办须填写工单编号", "电话号码格式不正确"):
            assert message in text, message
        page.screenshot(path=str(shots / "intake-officer-every-mistake-1366.png"), full_page=True)

    in_browser(officer_visit, phone=False, width=1366)
    assert officer_id
