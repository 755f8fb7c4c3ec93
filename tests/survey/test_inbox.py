"""The QR rating inbox: durable on receipt, processed once, never lost."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from core.extensions import db
from survey import inbox, qr, versioning
from survey.models import SurveyInbox, SurveyResponse
from tests.survey.conftest import submission_id_of, submit


def _accept(code, answers, submission_id=None, **meta):
    """Accept a rating and commit, as the patient's POST does."""
    db.session.commit()
    info, problem = qr.lookup(qr.path_token(code))
    assert problem is None
    submission_id = submission_id or uuid.uuid4().hex
    form = MultiDict([("submission_id", submission_id)] + [(f"q_{k}", v) for k, v in answers.items()])
    created = inbox.accept_rating(info, versioning.published_definition(info.version_id), submission_id, form,
                                  form_problem=meta.get("form_problem"), fill_seconds=meta.get("fill_seconds", 20.0),
                                  device_hash=meta.get("device_hash", ""), ip_hash=meta.get("ip_hash", ""))
    db.session.commit()
    return submission_id, created


def _responses(submission_id):
    return db.session.scalar(select(func.count()).select_from(SurveyResponse)
                             .where(SurveyResponse.submission_id == submission_id))


def test_an_accepted_rating_waits_in_the_inbox_until_the_job_turns_it_into_a_response(window_code):
    submission_id, created = _accept(window_code, {"WIN_OVERALL": "4"})
    assert created
    assert inbox.pending(submission_id) is not None
    assert _responses(submission_id) == 0
    assert inbox.drain_inbox() == 1
    assert inbox.pending(submission_id) is None
    response = db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id))
    assert response.overall_score == 75.0
    assert response.code_id == window_code.id and response.touchpoint_id == window_code.touchpoint_id


def test_the_same_submission_twice_is_one_inbox_row_and_one_response(window_code):
    submission_id, first = _accept(window_code, {"WIN_OVERALL": "5"})
    _same, second = _accept(window_code, {"WIN_OVERALL": "5"}, submission_id=submission_id)
    assert (first, second) == (True, False)
    inbox.drain_inbox()
    # A late retry after processing lands in the inbox again and is dropped as a duplicate.
    _accept(window_code, {"WIN_OVERALL": "5"}, submission_id=submission_id)
    inbox.drain_inbox()
    assert _responses(submission_id) == 1
    assert db.session.scalar(select(func.count()).select_from(SurveyInbox)) == 0


def test_processing_keeps_the_time_of_receipt_and_the_flags_seen_on_receipt(window_code):
    submission_id, _ = _accept(window_code, {"WIN_OVERALL": "1"}, form_problem="token_invalid", fill_seconds=0.5)
    received_at = inbox.pending(submission_id).received_at
    inbox.drain_inbox()
    response = db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id))
    assert response.submitted_at == received_at
    assert set(response.flags) == {"token_invalid", "too_fast"} and response.excluded


def test_a_row_that_cannot_be_processed_is_kept_with_its_error_and_retried_a_bounded_number_of_times(window_code):
    submission_id, _ = _accept(window_code, {"WIN_OVERALL": "3"})
    row = inbox.pending(submission_id)
    row.payload = {**row.payload, "form": {"q_WIN_OVERALL": ["9"]}}  # corrupt it as a bug might
    db.session.flush()
    taken = inbox.drain_inbox()
    assert taken == inbox.MAX_ATTEMPTS
    row = inbox.pending(submission_id)
    assert row.attempts == inbox.MAX_ATTEMPTS and row.last_error
    assert inbox.drain_inbox() == 0  # left for an operator, not retried forever
    assert _responses(submission_id) == 0


def test_the_thank_you_page_answers_for_a_rating_still_in_the_inbox(app, client, window_code, monkeypatch):
    # With a worker (not inline), the page must still say "received" before the job has run.
    monkeypatch.setattr(inbox, "processes_inline", lambda: False)
    posted = submit(client, window_code, WIN_OVERALL="5")
    assert posted.status_code == 303
    submission_id = submission_id_of(posted)
    assert inbox.pending(submission_id) is not None
    thanks = client.get(f"/thanks/{submission_id}")
    assert thanks.status_code == 200
    assert "评价已收到" in thanks.get_data(as_text=True)
    inbox.drain_inbox()
    assert _responses(submission_id) == 1


def test_a_low_rating_still_in_the_inbox_gets_the_apology(client, window_code):
    # With a worker (production), the patient reaches the thank-you page before the inbox is processed.
    submission_id, created = _accept(window_code, {"WIN_OVERALL": "2"})
    assert created

    page = client.get(f"/thanks/{submission_id}")

    assert page.status_code == 200
    assert "很抱歉这次没有让您满意" in page.get_data(as_text=True)


def test_a_good_rating_still_in_the_inbox_gets_no_apology(client, window_code):
    submission_id, _created = _accept(window_code, {"WIN_OVERALL": "5"})

    page = client.get(f"/thanks/{submission_id}")

    assert page.status_code == 200 and "评价已收到" in page.get_data(as_text=True)
    assert "很抱歉" not in page.get_data(as_text=True)


@pytest.mark.real_engine
def test_on_the_real_engine_the_row_is_committed_by_its_own_insert_and_a_retry_is_refused(app, database_url):
    """Production path: one autocommitted INSERT, durable before accept_rating returns (no session commit)."""
    from sqlalchemy import create_engine, delete, text

    from organisation.models import Touchpoint
    from survey import builtin, definitions
    from survey.models import EffectiveSettings
    from survey.qr import CodeInfo

    submission_id = uuid.uuid4().hex
    observer = create_engine(database_url)
    try:
        with app.app_context():
            touchpoint = db.session.scalars(select(Touchpoint)).first()
            info = CodeInfo(code_id=1, institution_id=touchpoint.institution_id, touchpoint_id=touchpoint.id,
                            department_id=touchpoint.department_id, touchpoint_name=touchpoint.name,
                            touchpoint_active=True, retired=False, version_id=1, settings=EffectiveSettings())
            definition = definitions.normalise(builtin.WINDOW)
            form = MultiDict({"submission_id": submission_id, "q_WIN_OVERALL": "4"})
            accept = lambda: inbox.accept_rating(  # noqa: E731
                info, definition, submission_id, form, form_problem=None, fill_seconds=9.0, device_hash="",
                ip_hash="")

            db.engine.dispose()  # one pooled connection from here on: the insert's
            assert accept() is True
            db.session.rollback()  # whatever the request's session does next, the row is stored
            with db.engine.connect() as pooled:  # back in the pool, it is transactional again
                assert pooled.connection.dbapi_connection.autocommit is False
                assert pooled.get_isolation_level() == "READ COMMITTED"
            with observer.connect() as other:
                stored = other.execute(text("SELECT payload FROM survey_inbox WHERE submission_id = :s"),
                                       {"s": submission_id}).scalar_one()
            assert stored["form"] == {"q_WIN_OVERALL": ["4"]}
            assert stored["meta"]["touchpoint_id"] == touchpoint.id

            assert accept() is False  # a retry of the same submission
            with observer.connect() as other:
                assert other.execute(text("SELECT count(*) FROM survey_inbox WHERE submission_id = :s"),
                                     {"s": submission_id}).scalar_one() == 1
    finally:
        with observer.begin() as other:
            other.execute(delete(SurveyInbox.__table__).where(SurveyInbox.submission_id == submission_id))
        observer.dispose()
