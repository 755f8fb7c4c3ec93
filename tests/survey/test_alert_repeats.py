"""Service-recovery alerts are raised once per patient: excluded ratings raise none, and one device at one
touchpoint raises at most one open alert a day (issue 10, point 4)."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import event, func, select

from core.clock import local_midnight, local_today
from core.extensions import db
from survey import inbox
from survey.models import AlertStatus, ContactRequest, InboxContext, RecoveryAlert, SurveyInbox, SurveyResponse
from tests.survey.conftest import staff_login, stored, submission_id_of, submit

PHONE = "13912345678"


def _alerts(touchpoint_id: int) -> list[RecoveryAlert]:
    db.session.expire_all()
    return list(db.session.scalars(select(RecoveryAlert).where(RecoveryAlert.touchpoint_id == touchpoint_id)
                                   .order_by(RecoveryAlert.id)))


def _contacts(touchpoint_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(ContactRequest).join(
        SurveyResponse, SurveyResponse.id == ContactRequest.response_id).where(
        SurveyResponse.touchpoint_id == touchpoint_id))


def _low(client, code, **extra):
    """A low rating that asks to be called, posted from ``client``'s phone (its device cookie)."""
    return stored(submission_id_of(submit(client, code, WIN_OVERALL="1", WIN_CONTACT="yes", contact_phone=PHONE,
                                          **extra)))


def test_a_low_rating_submitted_again_after_back_raises_one_alert_and_one_callback(client, new_client, rmyy,
                                                                                  window_code):
    first = _low(client, window_code)
    # Back reloads the form with a new submission id: the same phone rates the same window again.
    second = _low(client, window_code, WIN_COMMENT="再提交一次")

    assert first.id != second.id and second.device_hash == first.device_hash
    assert second.flags == ["repeat_device"] and second.excluded
    alerts = _alerts(window_code.touchpoint_id)
    assert [a.response_id for a in alerts] == [first.id]
    assert _contacts(window_code.touchpoint_id) == 1

    officer = new_client()
    staff_login(officer, "rmyy-officer")
    page = officer.get(f"/i/{rmyy.id}/survey/alerts").get_data(as_text=True)
    assert re.findall(r'/survey/alerts/(\d+)"', page) == [str(alerts[0].id)]


def test_an_excluded_rating_raises_no_alert_of_its_own(client, window_code):
    hurried = _low(client, window_code, fill_seconds=None)  # sent sooner than a person can read the page

    assert hurried.flags == ["too_fast"] and hurried.excluded
    assert _alerts(window_code.touchpoint_id) == []
    assert _contacts(window_code.touchpoint_id) == 0


def test_one_device_raises_one_open_alert_a_day_at_one_touchpoint(window_code, ward_code, respond, survey_settings):
    survey_settings.repeat_window_minutes = 0  # no repeat flag: the ratings below are all counted
    device = uuid.uuid4().hex
    first = respond(window_code, WIN_OVERALL="1", context={"device_hash": device})
    later = respond(window_code, WIN_OVERALL="2", WIN_CONTACT="yes", contact_phone=PHONE,
                    context={"device_hash": device})
    other_phone = respond(window_code, WIN_OVERALL="1")
    elsewhere = respond(ward_code, IPD_OVERALL="1", context={"device_hash": device})

    assert not later.excluded
    assert [a.response_id for a in _alerts(window_code.touchpoint_id)] == [first.id, other_phone.id]
    assert [a.response_id for a in _alerts(ward_code.touchpoint_id)] == [elsewhere.id]
    assert db.session.scalar(select(func.count()).select_from(ContactRequest)
                             .where(ContactRequest.response_id == later.id)) == 0

    # Once the first alert is dealt with, the next low rating from that phone raises a new one.
    _alerts(window_code.touchpoint_id)[0].status = AlertStatus.CLOSED
    db.session.flush()
    again = respond(window_code, WIN_OVERALL="1", context={"device_hash": device})
    assert again.id in [a.response_id for a in _alerts(window_code.touchpoint_id)]


def test_an_open_alert_of_yesterday_does_not_hold_back_todays(window_code, respond, survey_settings):
    device = uuid.uuid4().hex
    yesterday = respond(window_code, WIN_OVERALL="1", context={"device_hash": device})
    yesterday.submitted_at = local_midnight(local_today() - timedelta(days=1)) + timedelta(hours=10)
    db.session.flush()

    today = respond(window_code, WIN_OVERALL="1", context={"device_hash": device})

    assert [a.response_id for a in _alerts(window_code.touchpoint_id)] == [yesterday.id, today.id]


def _waiting(code, at, device, **answers):
    meta = InboxContext(institution_id=code.institution_id, code_id=code.id, touchpoint_id=code.touchpoint_id,
                        department_id=code.touchpoint.department_id, version_id=code.template.published.id,
                        fill_seconds=20.0, form_problem=None, device_hash=device, ip_hash=uuid.uuid4().hex)
    row = SurveyInbox(submission_id=uuid.uuid4().hex, received_at=at,
                      payload={"meta": meta.to_json(), "form": {f"q_{k}": [v] for k, v in answers.items()}})
    db.session.add(row)
    return row.submission_id


def test_the_inbox_batch_applies_the_same_rules_in_one_pass(window_code, monkeypatch):
    day = local_midnight(local_today() - timedelta(days=1))
    device, other = uuid.uuid4().hex, uuid.uuid4().hex
    sids = {
        "first": _waiting(window_code, day + timedelta(hours=9), device, WIN_OVERALL="1"),
        "hour_later": _waiting(window_code, day + timedelta(hours=10), device, WIN_OVERALL="1",
                               WIN_CONTACT="yes"),
        "other_phone": _waiting(window_code, day + timedelta(hours=10), other, WIN_OVERALL="2"),
        "next_day": _waiting(window_code, day + timedelta(days=1, minutes=1), device, WIN_OVERALL="1"),
    }
    db.session.flush()
    queries = []
    real_repeats = inbox.alert_rules.repeats
    monkeypatch.setattr(inbox.alert_rules, "repeats", lambda c: queries.append(len(c)) or real_repeats(c))

    processed = inbox.process_inbox()

    raised = {a.response_id for a in _alerts(window_code.touchpoint_id)}
    assert {name for name, sid in sids.items() if stored(sid).id in raised} == {"first", "other_phone", "next_day"}
    assert len(processed.alert_ids) == 3
    assert queries == [4]  # one look-up of open alerts for the whole batch
    assert _contacts(window_code.touchpoint_id) == 0  # the call request came with no alert of its own


def test_a_rating_after_an_alert_already_stored_is_held_back_by_it(window_code, respond, survey_settings):
    survey_settings.repeat_window_minutes = 0
    device = uuid.uuid4().hex
    first = respond(window_code, WIN_OVERALL="1", context={"device_hash": device})
    sid = _waiting(window_code, first.submitted_at + timedelta(seconds=1), device, WIN_OVERALL="1")
    db.session.flush()

    inbox.process_inbox()

    assert not stored(sid).excluded
    assert [a.response_id for a in _alerts(window_code.touchpoint_id)] == [first.id]


def test_the_alert_page_lists_the_ratings_it_stands_for(client, new_client, rmyy, window_code):
    first = _low(client, window_code)
    _low(client, window_code, WIN_COMMENT="补充：窗口无人")
    _low(new_client(), window_code, WIN_COMMENT="另一位患者")
    alert = next(a for a in _alerts(window_code.touchpoint_id) if a.response_id == first.id)

    officer = new_client()
    staff_login(officer, "rmyy-officer")
    page = officer.get(f"/i/{rmyy.id}/survey/alerts/{alert.id}").get_data(as_text=True)

    assert "同一设备当天在此服务点的其他评价" in page
    assert "补充：窗口无人" in page and "同一设备重复评价" in page
    assert "另一位患者" not in page


def test_the_batch_takes_as_many_statements_for_many_low_ratings_as_for_few(window_code, monkeypatch):
    """Set-based: the open-alert look-up is one query per batch, not one per rating (bench/submit.py's concern)."""
    day = local_midnight(local_today() - timedelta(days=1))

    def statements_for(n: int) -> int:
        for i in range(n):
            _waiting(window_code, day + timedelta(hours=9, minutes=i), uuid.uuid4().hex, WIN_OVERALL="1")
        db.session.flush()
        seen = []
        connection = db.session.connection()
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(connection, "before_cursor_execute", listener)
        try:
            assert len(inbox.process_inbox().alert_ids) == n
        finally:
            event.remove(connection, "before_cursor_execute", listener)
        return len(seen)

    assert statements_for(10) == statements_for(40)  # (up to 8 devices, history_flags searches per device)


def test_the_repeat_check_holds_a_lock_a_second_worker_waits_on(ctx, database_url, window_code):
    """Two workers storing ratings of one device at one touchpoint at once: the first holds a lock on the
    (touchpoint, device) pair until it commits, so the second cannot find "no open alert" before it does."""
    from sqlalchemy import create_engine, text

    from core.db import advisory_key
    from survey import alerts

    device = uuid.uuid4().hex
    candidate = alerts.AlertCandidate(window_code.touchpoint_id, device, local_midnight(local_today()))
    other = create_engine(database_url)
    key = advisory_key("survey-alert", f"{window_code.touchpoint_id}:{device}")
    try:
        with other.connect() as conn:
            assert conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar() is True
            conn.rollback()  # free again: the control shows the probe can take the lock
            assert alerts.repeats([candidate]) == [False]
            assert conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar() is False
            conn.rollback()
    finally:
        other.dispose()
