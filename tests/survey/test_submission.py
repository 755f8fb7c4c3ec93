"""Storing responses: flagged never rejected, once per submission id, channel kept, alerts raised and told.

Flags (token_invalid, token_expired, too_fast, repeat_device, ip_burst) keep
the row and exclude it from scores. Alerts go to the department's handlers
and the institution's complaint officers, exactly once.
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import date, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import delete, func, select
from werkzeug.datastructures import MultiDict

from core.audit import AuditEntry
from core.clock import local_timezone
from core.db import utcnow
from core.extensions import db
from organisation.models import Role
from survey import alerts, builtin, definitions, results, tasks
from survey.models import (
    AlertStatus,
    Channel,
    ContactRequest,
    RecoveryAlert,
    SurveyAnswer,
    SurveyResponse,
    SurveySettings,
    SurveyTemplate,
    TemplateVersion,
    VersionStatus,
)
from survey.submission import Context, SubmissionError, settings_for, submit_response
from tests.factories import demo_institution, demo_user, make_department, make_staff, make_touchpoint

from .conftest import (
    aged_form_token,
    open_form,
    record_response,
    stored,
    submission_id_of,
    submit,
    survey_path,
)


def alert_for(response: SurveyResponse) -> RecoveryAlert | None:
    return db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == response.id))


def local_today() -> date:
    return datetime.now(local_timezone()).date()


# Flags ----------------------------------------------------------------------------

def test_clean_submission_has_no_flags(client, window_code):
    response = stored(submission_id_of(submit(client, window_code, WIN_OVERALL="5")))
    assert response.flags == [] and response.excluded is False
    assert response.fill_seconds >= 10


def test_missing_form_token_is_flagged_token_invalid_but_stored(client, window_code):
    posted = submit(client, window_code, form={"form_token": ""}, WIN_OVERALL="5")
    assert posted.status_code == 303
    response = stored(submission_id_of(posted))
    assert response.flags == ["token_invalid"] and response.excluded is True
    assert response.fill_seconds is None


def test_forged_form_token_is_flagged_token_invalid(client, window_code):
    path = survey_path(window_code)
    token = open_form(client, path)["form_token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = stored(submission_id_of(submit(client, window_code, form={"form_token": forged}, WIN_OVERALL="5")))
    assert "token_invalid" in response.flags and response.excluded


def test_form_token_from_another_touchpoint_is_flagged_token_invalid(client, window_code, ward_code):
    other_token = aged_form_token(open_form(client, survey_path(ward_code))["form_token"], 30)
    response = stored(submission_id_of(submit(client, window_code, form={"form_token": other_token},
                                              WIN_OVERALL="5")))
    assert "token_invalid" in response.flags


def test_stale_form_token_is_flagged_token_expired(client, window_code):
    response = stored(submission_id_of(submit(client, window_code, fill_seconds=7 * 3600, WIN_OVERALL="5")))
    assert response.flags == ["token_expired"] and response.excluded


def test_fill_time_under_the_minimum_is_flagged_too_fast(client, window_code, survey_settings):
    assert survey_settings.min_fill_seconds == 2.0
    quick = stored(submission_id_of(submit(client, window_code, fill_seconds=None, WIN_OVERALL="5")))
    assert quick.flags == ["too_fast"] and quick.excluded and quick.fill_seconds < 2
    unhurried = stored(submission_id_of(submit(client, window_code, fill_seconds=3, WIN_OVERALL="5",
                                               form={"submission_id": uuid.uuid4().hex})))
    assert "too_fast" not in unhurried.flags


def test_same_device_twice_within_the_window_flags_the_second(client, window_code, survey_settings):
    first = stored(submission_id_of(submit(client, window_code, WIN_OVERALL="5")))
    second = stored(submission_id_of(submit(client, window_code, WIN_OVERALL="5")))
    assert first.flags == [] and first.device_hash
    assert second.flags == ["repeat_device"] and second.excluded
    assert second.device_hash == first.device_hash


def test_same_device_after_the_window_is_not_flagged(client, window_code, survey_settings):
    first = stored(submission_id_of(submit(client, window_code, WIN_OVERALL="5")))
    first.submitted_at = utcnow() - timedelta(minutes=survey_settings.repeat_window_minutes + 1)
    db.session.flush()
    later = stored(submission_id_of(submit(client, window_code, WIN_OVERALL="5")))
    assert later.flags == []


def test_same_device_at_another_touchpoint_is_not_flagged(client, window_code, ward_code):
    submit(client, window_code, WIN_OVERALL="5")
    ward = stored(submission_id_of(submit(client, ward_code, IPD_OVERALL="5")))
    assert "repeat_device" not in ward.flags


def test_thirty_from_one_network_within_ten_minutes_flags_the_rest_as_ip_burst(new_client, window_code):
    network = "10.251.3"
    statuses, responses = [], []
    for n in range(31):
        phone = new_client(f"{network}.{n + 10}")  # different phones, one hospital Wi-Fi (/24)
        posted = submit(phone, window_code, WIN_OVERALL="4")
        statuses.append(posted.status_code)
        responses.append(stored(submission_id_of(posted)))
    assert statuses == [303] * 31
    assert len({r.ip_hash for r in responses}) == 1
    assert all(r.flags == [] for r in responses[:30])
    assert responses[30].flags == ["ip_burst"] and responses[30].excluded
    elsewhere = stored(submission_id_of(submit(new_client("10.252.3.10"), window_code, WIN_OVERALL="4")))
    assert elsewhere.flags == []


def test_ip_burst_counts_only_the_last_ten_minutes(window_code, respond):
    network = uuid.uuid4().hex
    earlier = [respond(window_code, WIN_OVERALL="4", context={"ip_hash": network}) for _ in range(30)]
    for response in earlier:
        response.submitted_at = utcnow() - timedelta(minutes=11)
    db.session.flush()
    assert respond(window_code, WIN_OVERALL="4", context={"ip_hash": network}).flags == []


def test_flagged_rows_are_kept_but_left_out_of_touchpoint_averages(window_code, respond, rmyy):
    respond(window_code, WIN_OVERALL="5")
    respond(window_code, WIN_OVERALL="3")
    flagged = respond(window_code, WIN_OVERALL="1", context={"fill_seconds": 0.4})
    assert flagged.flags == ["too_fast"] and flagged.id is not None
    summary = next(s for s in results.touchpoint_summaries(rmyy, today=local_today())
                   if s.touchpoint.id == window_code.touchpoint_id)
    assert (summary.today_count, summary.today_average, summary.flagged_today) == (2, 75.0, 1)
    assert (summary.week_count, summary.week_average) == (2, 75.0)


# Channel and interviewer -----------------------------------------------------------

@pytest.mark.parametrize("channel", list(Channel))
def test_channel_is_recorded(ward_code, respond, channel):
    nurse = demo_user("rmyy-nurse")
    context = {"interviewer_id": nurse.id} if channel == Channel.PHONE_FOLLOWUP else {}
    response = respond(ward_code, channel=channel, IPD_OVERALL="4", context=context)
    db.session.expire(response)
    assert response.channel == channel.value
    assert response.template_version_id == ward_code.template.published.id


def test_phone_answers_record_the_interviewer_and_are_audited(ward_code, respond):
    nurse = demo_user("rmyy-nurse")
    response = respond(ward_code, channel=Channel.PHONE_FOLLOWUP, IPD_OVERALL="4",
                       context={"interviewer_id": nurse.id, "fill_seconds": None})
    assert response.interviewer_id == nurse.id and response.channel == "phone_followup"
    assert response.flags == []
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "survey_response.record_phone",
                                                       AuditEntry.target_id == str(response.id)))
    assert entry is not None and entry.data == {"channel": "phone_followup"}


def test_phone_answers_without_an_interviewer_are_refused(ward_code, respond):
    with pytest.raises(SubmissionError):
        respond(ward_code, channel=Channel.PHONE_FOLLOWUP, IPD_OVERALL="4")


def test_self_completed_answers_have_no_interviewer(client, window_code):
    assert stored(submission_id_of(submit(client, window_code, WIN_OVERALL="5"))).interviewer_id is None


# Idempotence ---------------------------------------------------------------------

def test_a_repeated_submission_id_returns_the_stored_response(window_code, ctx):
    version = window_code.template.published
    context = Context(institution_id=window_code.institution_id, channel=Channel.TOUCHPOINT_QR, version=version,
                      touchpoint=window_code.touchpoint, fill_seconds=20)
    sid = uuid.uuid4().hex
    first = submit_response(context, sid, MultiDict({"q_WIN_OVERALL": "5"}).get, MultiDict().getlist)
    again = submit_response(context, sid, MultiDict({"q_WIN_OVERALL": "1"}).get, MultiDict().getlist)
    assert (first.created, again.created) == (True, False)
    assert again.response.id == first.response.id and again.response.overall_score == 100.0
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)
                             .where(SurveyResponse.submission_id == sid)) == 1


def _plain_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _wait_for_lock_wait(database_url: str, thread: threading.Thread, timeout: float = 10.0) -> bool:
    """True once some backend of the test database waits on a lock (the second insert)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(_plain_url(database_url), autocommit=True) as watcher:
        while time.monotonic() < deadline and thread.is_alive():
            waiting = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                      " AND wait_event_type = 'Lock'").fetchone()[0]
            if waiting:
                return True
            time.sleep(0.02)
    return False


def _race(app, database_url, institution_key: str, submission_ids: tuple[str, str]):
    """Session A stores and holds its transaction; session B stores meanwhile; then A commits.

    Runs on real connections (real_engine): the setup is committed and removed again.
    Returns (A's response id, B's outcome: (response id, created) or the exception, whether B had to wait,
    the submission ids stored).
    """
    with app.app_context():
        institution = demo_institution(institution_key)
        had_settings = db.session.get(SurveySettings, institution.id) is not None
        template = SurveyTemplate(institution_id=institution.id, code=f"RACE_{uuid.uuid4().hex[:8].upper()}",
                                  name="并发测试", audience="window")
        definition = definitions.normalise(builtin.WINDOW)
        version = TemplateVersion(template=template, number=1, status=VersionStatus.PUBLISHED,
                                  definition=definition, content_hash=definitions.content_hash(definition),
                                  created_at=utcnow(), published_at=utcnow())
        db.session.add_all([template, version])
        db.session.commit()
        ids = {"institution": institution.id, "version": version.id, "template": template.id}

    def store(submission_id):
        version = db.session.get(TemplateVersion, ids["version"])
        context = Context(institution_id=ids["institution"], channel=Channel.DISCHARGE_LINK, version=version,
                          fill_seconds=20)
        form = MultiDict({"q_WIN_OVERALL": "5"})
        stored = submit_response(context, submission_id, form.get, form.getlist)
        return stored.response, stored.created

    outcome = {}

    def session_b():
        with app.app_context():
            try:
                response, created = store(submission_ids[1])
                db.session.commit()
                outcome["b"] = (response.id, created)
            except Exception as exc:  # reported to the test, not swallowed
                db.session.rollback()
                outcome["b"] = exc

    try:
        with app.app_context():
            response_a, created_a = store(submission_ids[0])
            assert created_a
            b = threading.Thread(target=session_b)
            b.start()
            blocked = _wait_for_lock_wait(database_url, b)
            db.session.commit()
            a_id = response_a.id
        b.join(20)
        assert not b.is_alive()
        with app.app_context():
            stored_ids = sorted(db.session.scalars(select(SurveyResponse.submission_id).where(
                SurveyResponse.template_version_id == ids["version"])))
        return a_id, outcome["b"], blocked, stored_ids
    finally:
        with app.app_context():
            response_ids = select(SurveyResponse.id).where(SurveyResponse.template_version_id == ids["version"])
            db.session.execute(delete(SurveyAnswer).where(SurveyAnswer.response_id.in_(response_ids)))
            db.session.execute(delete(SurveyResponse).where(SurveyResponse.template_version_id == ids["version"]))
            db.session.execute(delete(TemplateVersion).where(TemplateVersion.id == ids["version"]))
            db.session.execute(delete(SurveyTemplate).where(SurveyTemplate.id == ids["template"]))
            if not had_settings:
                db.session.execute(delete(SurveySettings).where(SurveySettings.institution_id == ids["institution"]))
            db.session.commit()


@pytest.mark.real_engine
def test_two_sessions_racing_with_one_submission_id_store_one_row(app, database_url):
    sid = uuid.uuid4().hex
    with app.app_context():  # the institution's settings exist already: only the response races
        institution_id = demo_institution("rmyy").id
        had_settings = db.session.get(SurveySettings, institution_id) is not None
        settings_for(institution_id)
        db.session.commit()
    try:
        a_id, b, blocked, stored_ids = _race(app, database_url, "rmyy", (sid, sid))
        assert blocked, "session B should have waited on session A's uncommitted row"
        assert b == (a_id, False)
        assert stored_ids == [sid]
    finally:
        with app.app_context():
            if not had_settings:
                db.session.execute(delete(SurveySettings).where(SurveySettings.institution_id == institution_id))
                db.session.commit()


@pytest.mark.real_engine
def test_the_first_two_responses_of_a_hospital_racing_are_both_stored(app, database_url):
    """Neither may trip over the other creating per-hospital rows (such as settings) on first use."""
    with app.app_context():
        institution = demo_institution("sq")
        assert db.session.get(SurveySettings, institution.id) is None
    sids = (uuid.uuid4().hex, uuid.uuid4().hex)
    a_id, b, _blocked, stored_ids = _race(app, database_url, "sq", sids)
    assert not isinstance(b, Exception), repr(b)
    assert b[1] is True and b[0] != a_id
    assert stored_ids == sorted(sids)


# Alerts ---------------------------------------------------------------------------

def test_rating_at_the_threshold_raises_an_alert_for_the_touchpoints_department(window_code, respond):
    low = respond(window_code, WIN_OVERALL="2")  # 25 = 不满意, the default threshold
    alert = alert_for(low)
    assert alert is not None and alert.reasons == ["low_score"]
    assert alert.department_id == window_code.touchpoint.department_id
    assert alert.touchpoint_id == window_code.touchpoint_id and alert.status == AlertStatus.OPEN
    assert alert_for(respond(window_code, WIN_OVERALL="3")) is None  # 50: above the threshold


def test_the_institutions_threshold_is_used(window_code, respond, survey_settings):
    survey_settings.alert_threshold = 50
    assert alert_for(respond(window_code, WIN_OVERALL="3")).reasons == ["low_score"]
    survey_settings.alert_threshold = 0
    assert alert_for(respond(window_code, WIN_OVERALL="2")) is None


@pytest.mark.parametrize("template_code, answers, reason", [
    ("OPD", {"OPD_OVERALL": "5", "OPD_INTEGRITY": "yes"}, "flagged_answer:OPD_INTEGRITY"),
    ("IPD", {"IPD_OVERALL": "5", "IPD_INTEGRITY": "yes"}, "flagged_answer:IPD_INTEGRITY"),
])
def test_integrity_yes_raises_an_alert(ward_code, builtin_templates, template_code, answers, reason):
    version = builtin_templates[template_code].published
    response = record_response(version=version, institution_id=ward_code.institution_id,
                               touchpoint=ward_code.touchpoint, fields=answers)
    assert alert_for(response).reasons == [reason]
    no = {**answers, template_code + "_INTEGRITY": "no"}
    assert alert_for(record_response(version=version, institution_id=ward_code.institution_id,
                                     touchpoint=ward_code.touchpoint, fields=no)) is None


def test_contact_request_stores_the_phone_apart_and_raises_an_alert(window_code, respond):
    response = respond(window_code, WIN_OVERALL="4", WIN_CONTACT="yes", contact_phone="138 0013-8000")
    contact = db.session.scalar(select(ContactRequest).where(ContactRequest.response_id == response.id))
    assert contact.phone == "13800138000" and contact.institution_id == window_code.institution_id
    assert alert_for(response).reasons == ["contact_requested"]
    assert "13800138000" not in response.comment
    assert all("13800138000" not in str(a.value) for a in response.answers)


def test_contact_request_without_a_phone_still_raises_an_alert(window_code, respond):
    response = respond(window_code, WIN_OVERALL="1", WIN_CONTACT="yes")
    contact = db.session.scalar(select(ContactRequest).where(ContactRequest.response_id == response.id))
    assert contact is not None and contact.phone is None
    assert alert_for(response).reasons == ["low_score", "contact_requested"]


def test_no_contact_means_no_phone_is_kept(window_code, respond):
    response = respond(window_code, WIN_OVERALL="4", WIN_CONTACT="no", contact_phone="13800138000")
    assert db.session.scalar(select(ContactRequest).where(ContactRequest.response_id == response.id)) is None
    assert alert_for(response) is None


@pytest.mark.parametrize("phone", ["12345", "2380013800", "1380013800a", "138001380001"])
def test_bad_contact_phone_is_refused(window_code, respond, phone):
    with pytest.raises(SubmissionError) as raised:
        respond(window_code, WIN_OVERALL="4", WIN_CONTACT="yes", contact_phone=phone)
    assert raised.value.item_code == "contact_phone"


def test_survey_refusals_are_service_errors_naming_their_form_field():
    """core.views.handle_form answers them: the message at the field, the status of the class."""
    from core.services import ServiceError
    from survey.followup import FollowupError
    from survey.staff_survey import StaffSurveyError
    from survey.versioning import VersionError

    for error in (VersionError, FollowupError, alerts.AlertError, SubmissionError, StaffSurveyError):
        assert issubclass(error, ServiceError) and error.status == 400, error
    assert (SubmissionError("x", "WIN_OVERALL").field, SubmissionError("x", "WIN_OVERALL").item_code) == (
        "q_WIN_OVERALL", "WIN_OVERALL")
    assert SubmissionError("x", "contact_phone").field == "contact_phone" and SubmissionError("x").field is None


@pytest.mark.parametrize("phone, stored_as", [("13800138000", "13800138000"), ("028-85551234", "02885551234"),
                                              ("0755 8555 1234", "075585551234"), ("139-0000-1234", "13900001234"),
                                              ("+86 139 0000 1234", "13900001234")])
def test_mobile_and_landline_numbers_are_accepted(window_code, respond, phone, stored_as):
    response = respond(window_code, WIN_OVERALL="4", WIN_CONTACT="yes", contact_phone=phone)
    assert db.session.scalar(select(ContactRequest.phone).where(ContactRequest.response_id == response.id)) \
        == stored_as


def test_low_rating_from_the_page_notifies_handlers_and_officers_once(client, window_code, outbox):
    posted = submit(client, window_code, WIN_OVERALL="1")
    alert = alert_for(stored(submission_id_of(posted)))
    assert alert.notified_at is not None
    assert len(outbox) == 1
    message = outbox[0]
    assert sorted(message.recipients) == ["rmyy-handler", "rmyy-officer"]
    assert message.kind == "survey_alert" and message.meta == {"alert_id": alert.id}
    assert "门诊挂号收费 1 号窗口" in message.subject
    assert message.link.endswith(f"/i/{alert.institution_id}/survey/alerts/{alert.id}")
    assert tasks.notify_alert(alert.id) is False  # a second run (retry, sweep) sends nothing
    assert len(outbox) == 1


def test_alert_in_a_department_without_handlers_goes_to_the_officers(rmyy, builtin_templates, outbox):
    from survey import qr

    department = make_department(rmyy, name="测试科室")
    make_staff([Role.DEPARTMENT_HANDLER], rmyy)  # a handler bound to another (new) department
    code = qr.ensure_code(make_touchpoint(rmyy, department), actor="test")
    response = record_response(version=code.template.published, institution_id=rmyy.id,
                               touchpoint=code.touchpoint, fields={"WIN_OVERALL": "1"})
    assert tasks.notify_alert(alert_for(response).id) is True
    assert [m.recipients for m in outbox] == [["rmyy-officer"]]


def test_sweep_re_drives_unnotified_alerts_older_than_a_minute(window_code, respond, outbox):
    stale = alert_for(respond(window_code, WIN_OVERALL="1"))
    fresh = alert_for(respond(window_code, WIN_OVERALL="2"))
    assert stale.notified_at is None and fresh.notified_at is None  # stored without the page: nothing queued
    stale.created_at = utcnow() - timedelta(minutes=2)
    db.session.flush()
    assert tasks.sweep_unnotified_alerts() == 1
    assert stale.notified_at is not None and fresh.notified_at is None
    assert [m.meta["alert_id"] for m in outbox] == [stale.id]
    assert tasks.sweep_unnotified_alerts() == 0
    assert len(outbox) == 1


def test_a_closing_note_is_typed_text_of_at_most_2000_characters(window_code, respond):
    alert = alert_for(respond(window_code, WIN_OVERALL="1"))
    handler = demo_user("rmyy-handler")
    with pytest.raises(alerts.AlertError, match="不能超过 2000 字") as refused:
        alerts.close_alert(alert, "长" * 2001, actor=handler)
    assert refused.value.field == "note" and alert.status == AlertStatus.OPEN
    alerts.close_alert(alert, " 已回电。\r\n已致歉。 ", actor=handler)
    assert alert.note == "已回电。\n已致歉。"


def test_acknowledge_then_close_with_a_note_is_audited(window_code, respond):
    alert = alert_for(respond(window_code, WIN_OVERALL="1"))
    handler = demo_user("rmyy-handler")
    alerts.acknowledge_alert(alert, actor=handler)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by_id == handler.id
    with pytest.raises(alerts.AlertError):
        alerts.acknowledge_alert(alert, actor=handler)
    with pytest.raises(alerts.AlertError, match="请填写处理说明"):
        alerts.close_alert(alert, "   ", actor=handler)
    assert alert.status == AlertStatus.ACKNOWLEDGED
    alerts.close_alert(alert, "已电话联系患者致歉，并调整窗口排班。", actor=handler)
    assert alert.status == AlertStatus.CLOSED and alert.closed_by_id == handler.id
    assert alert.note == "已电话联系患者致歉，并调整窗口排班。"
    with pytest.raises(alerts.AlertError):
        alerts.close_alert(alert, "再次关闭", actor=handler)
    db.session.flush()
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "survey_recovery_alert", AuditEntry.target_id == str(alert.id))
        .order_by(AuditEntry.id)))
    assert actions == ["survey_alert.raise", "survey_alert.acknowledge", "survey_alert.close"]


def test_an_open_alert_can_be_closed_directly(window_code, respond):
    alert = alert_for(respond(window_code, WIN_OVERALL="1"))
    officer = demo_user("rmyy-officer")
    alerts.close_alert(alert, "已处理", actor=officer)
    assert alert.status == AlertStatus.CLOSED and alert.acknowledged_by_id == officer.id
