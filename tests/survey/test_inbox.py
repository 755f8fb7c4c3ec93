"""The QR rating inbox: durable on receipt, processed once, never lost."""
from __future__ import annotations

import random
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from werkzeug.datastructures import MultiDict

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from organisation.models import Notification
from survey import inbox, qr, submission, versioning
from survey import tasks as survey_tasks
from survey.models import (
    Channel,
    ContactRequest,
    InboxContext,
    RecoveryAlert,
    SurveyAnswer,
    SurveyInbox,
    SurveyResponse,
)
from tests.factories import make_touchpoint
from tests.survey.conftest import record_response, submission_id_of, submit


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
    assert survey_tasks.drain_inbox() == 1
    assert inbox.pending(submission_id) is None
    response = db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id))
    assert response.overall_score == 75.0
    assert response.code_id == window_code.id and response.touchpoint_id == window_code.touchpoint_id


def test_the_same_submission_twice_is_one_inbox_row_and_one_response(window_code):
    submission_id, first = _accept(window_code, {"WIN_OVERALL": "5"})
    _same, second = _accept(window_code, {"WIN_OVERALL": "5"}, submission_id=submission_id)
    assert (first, second) == (True, False)
    survey_tasks.drain_inbox()
    # A late retry after processing lands in the inbox again and is dropped as a duplicate.
    _accept(window_code, {"WIN_OVERALL": "5"}, submission_id=submission_id)
    survey_tasks.drain_inbox()
    assert _responses(submission_id) == 1
    assert db.session.scalar(select(func.count()).select_from(SurveyInbox)) == 0


def test_processing_keeps_the_time_of_receipt_and_the_flags_seen_on_receipt(window_code):
    submission_id, _ = _accept(window_code, {"WIN_OVERALL": "1"}, form_problem="token_invalid", fill_seconds=0.5)
    received_at = inbox.pending(submission_id).received_at
    survey_tasks.drain_inbox()
    response = db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id))
    assert response.submitted_at == received_at
    assert set(response.flags) == {"token_invalid", "too_fast"} and response.excluded


def test_a_row_that_cannot_be_processed_is_kept_with_its_error_and_retried_a_bounded_number_of_times(window_code):
    submission_id, _ = _accept(window_code, {"WIN_OVERALL": "3"})
    row = inbox.pending(submission_id)
    row.payload = {**row.payload, "form": {"q_WIN_OVERALL": ["9"]}}  # corrupt it as a bug might
    db.session.flush()
    taken = survey_tasks.drain_inbox()
    assert taken == inbox.MAX_ATTEMPTS
    row = inbox.pending(submission_id)
    assert row.attempts == inbox.MAX_ATTEMPTS and row.last_error
    assert survey_tasks.drain_inbox() == 0  # left for an operator, not retried forever
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
    survey_tasks.drain_inbox()
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


@pytest.fixture
def own_code(rmyy, window_code):
    """The window's code answering a hospital's own questionnaire: no overall item (the overall score is the
    dimension mean) and a contact item whose code does not end in _CONTACT."""
    template = versioning.copy_template(window_code.template, rmyy, code="OWN_FORM", name="本院问卷", actor="test")
    raw = {"title": "本院问卷", "dimensions": [{"code": "SERVICE", "name": "服务", "weight": 1}],
           "items": [{"code": "MOOD", "type": "scale5", "text": "满意吗？", "required": True, "dimension": "SERVICE"},
                     {"code": "CALL_ME", "type": "yesno", "text": "需要回电吗？", "contact": True}]}
    versioning.publish_version(versioning.save_draft(template, raw, actor="test"), actor="test")
    qr.set_template(window_code, template, actor="test")
    db.session.flush()
    return window_code


@pytest.mark.parametrize("answers, contact, low", [
    ({"MOOD": "1"}, False, True),
    ({"MOOD": "5", "CALL_ME": "yes"}, True, False),
    ({"MOOD": "5", "CALL_ME": "no"}, False, False),
])
def test_the_thank_you_page_reads_the_questionnaires_own_overall_score_and_contact_item(
        client, own_code, answers, contact, low):
    """Still in the inbox or stored, the page applies the questionnaire's rules: the dimension mean when there is
    no overall item, and the item flagged as the contact question, whatever its code."""
    submission_id, _created = _accept(own_code, answers)
    assert inbox.pending(submission_id) is not None
    for _state in ("pending", "stored"):
        page = client.get(f"/thanks/{submission_id}").get_data(as_text=True)
        assert ("工作人员会尽快与您联系" in page) is contact
        assert ("很抱歉这次没有让您满意" in page) is low
        survey_tasks.drain_inbox()
    assert _responses(submission_id) == 1


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


# Batches -------------------------------------------------------------------------------

def _waiting(code, *, at=None, device="", ip="", fill_seconds=20.0, submission_id=None, **answers):
    """An inbox row as accept_rating writes it, received ``at`` a given time (added, not committed)."""
    meta = InboxContext(institution_id=code.institution_id, code_id=code.id, touchpoint_id=code.touchpoint_id,
                        department_id=code.touchpoint.department_id, version_id=code.template.published.id,
                        fill_seconds=fill_seconds, form_problem=None, device_hash=device, ip_hash=ip)
    row = SurveyInbox(submission_id=submission_id or uuid.uuid4().hex, received_at=at or utcnow(),
                      payload={"meta": meta.to_json(),
                               "form": {f"q_{k}": [v] for k, v in (answers or {"WIN_OVERALL": "4"}).items()}})
    db.session.add(row)
    return row


def _stored_flags(submission_ids):
    db.session.expire_all()
    flags = dict(db.session.execute(select(SurveyResponse.submission_id, SurveyResponse.flags)
                                    .where(SurveyResponse.submission_id.in_(submission_ids))).all())
    return [flags.get(sid) for sid in submission_ids]


@pytest.mark.parametrize("few_keys", [100, 0], ids=["a search per key", "one scan for all keys"])
def test_batch_flags_equal_the_flags_of_storing_the_same_ratings_one_by_one(rmyy, builtin_templates, few_keys,
                                                                           monkeypatch):
    """A mixed batch — repeats and bursts within a batch, across batches and against stored ratings, times out of
    order — gets exactly the flags that storing each rating on its own, in the same order, gives."""
    monkeypatch.setattr(submission, "_FEW_KEYS", few_keys)
    rng = random.Random(20261127)
    window = builtin_templates["WIN"].published
    # Two touchpoints for the batches and two twins for the one-by-one reference.
    batch_codes = [qr.ensure_code(make_touchpoint(rmyy), actor="test") for _ in range(2)]
    twin_codes = [qr.ensure_code(make_touchpoint(rmyy), actor="test") for _ in range(2)]
    devices = [uuid.uuid4().hex for _ in range(4)] + [""]
    networks = [uuid.uuid4().hex for _ in range(2)] + [""]
    base = utcnow() - timedelta(hours=1)
    history = [(k, rng.choice(devices[:2]), networks[0], base - timedelta(minutes=rng.uniform(0, 15)))
               for k in range(2) for _ in range(27)]
    ratings = [(rng.randrange(2), rng.choice(devices), rng.choices(networks, (6, 2, 1))[0],
                base + timedelta(minutes=rng.uniform(-12, 12), seconds=rng.randrange(60))) for _ in range(110)]
    ratings[5] = ratings[4]  # the very same device, network and time: a double submission with a new id

    for codes in (batch_codes, twin_codes):
        for k, device, network, at in history:
            record_response(version=window, institution_id=rmyy.id, touchpoint=codes[k].touchpoint, code=codes[k],
                            fields={"WIN_OVERALL": "4"}, device_hash=device, ip_hash=network).submitted_at = at
    db.session.flush()

    batched = [_waiting(batch_codes[k], at=at, device=device, ip=network).submission_id
               for k, device, network, at in ratings]
    db.session.flush()
    taken = []
    while n := inbox.process_inbox(limit=40).taken:
        taken.append(n)
    assert taken == [40, 40, 30]

    one_by_one = []
    for k, device, network, at in ratings:
        code = twin_codes[k]
        context = submission.Context(institution_id=rmyy.id, channel=Channel.TOUCHPOINT_QR, version=window,
                                     touchpoint=code.touchpoint, code_id=code.id, fill_seconds=20.0,
                                     device_hash=device, ip_hash=network)
        form = MultiDict({"q_WIN_OVERALL": "4"})
        one_by_one.append(submission.submit_response(context, uuid.uuid4().hex, form.get, form.getlist,
                                                     received_at=at).response.submission_id)

    expected = _stored_flags(one_by_one)
    assert _stored_flags(batched) == expected
    # The mix is worth comparing: every combination of flags occurs.
    assert {tuple(f) for f in expected} == {(), ("repeat_device",), ("ip_burst",), ("ip_burst", "repeat_device")}


def test_a_submission_already_stored_is_dropped_from_the_batch_and_the_rest_stored_once(window_code):
    retried = record_response(version=window_code.template.published, institution_id=window_code.institution_id,
                              touchpoint=window_code.touchpoint, code=window_code, fields={"WIN_OVERALL": "5"})
    _waiting(window_code, submission_id=retried.submission_id, WIN_OVERALL="1")  # a late retry
    fresh = [_waiting(window_code).submission_id for _ in range(3)]
    db.session.flush()

    assert inbox.process_inbox().taken == 4

    assert db.session.scalar(select(func.count()).select_from(SurveyInbox)) == 0
    counts = dict(db.session.execute(select(SurveyResponse.submission_id, func.count())
                                     .where(SurveyResponse.submission_id.in_([*fresh, retried.submission_id]))
                                     .group_by(SurveyResponse.submission_id)).all())
    assert counts == {sid: 1 for sid in [*fresh, retried.submission_id]}
    assert db.session.get(SurveyResponse, retried.id).overall_score == 100.0  # the first copy stands


def test_a_submission_stored_by_another_process_while_the_batch_runs_is_stored_once(window_code, monkeypatch):
    sids = [_waiting(window_code).submission_id for _ in range(4)]
    db.session.flush()
    racer = sids[2]
    real_flags = inbox.history_flags

    def meanwhile_stored_elsewhere(ratings):
        # Between the batch's look-up of stored ids and its insert, the same submission is stored.
        record_response(version=window_code.template.published, institution_id=window_code.institution_id,
                        touchpoint=window_code.touchpoint, code=window_code, submission_id=racer,
                        fields={"WIN_OVERALL": "5"})
        return real_flags(ratings)

    monkeypatch.setattr(inbox, "history_flags", meanwhile_stored_elsewhere)

    assert inbox.process_inbox().taken == 4

    assert db.session.scalar(select(func.count()).select_from(SurveyInbox)) == 0
    assert [_responses(sid) for sid in sids] == [1, 1, 1, 1]


def test_a_failing_row_does_not_hold_up_the_rest_of_its_batch(window_code):
    before = [_waiting(window_code).submission_id for _ in range(2)]
    unreadable = _waiting(window_code, WIN_OVERALL="9")             # fails its check in Python
    orphan = _waiting(window_code)                                   # fails in the database (no such touchpoint)
    orphan.payload = {**orphan.payload, "meta": {**orphan.payload["meta"], "touchpoint_id": 2_000_000_000}}
    after = [_waiting(window_code, WIN_OVERALL="1").submission_id for _ in range(2)]
    bad = [unreadable.submission_id, orphan.submission_id]
    db.session.flush()

    assert inbox.process_inbox().taken == 6

    good = before + after
    assert [_responses(sid) for sid in good] == [1, 1, 1, 1]
    assert [inbox.pending(sid) for sid in good] == [None] * 4
    for sid in bad:
        row = inbox.pending(sid)
        assert row.attempts == 1 and row.last_error
        assert _responses(sid) == 0
    alerts = db.session.scalars(select(RecoveryAlert).join(
        SurveyResponse, RecoveryAlert.response_id == SurveyResponse.id).where(
        SurveyResponse.submission_id.in_(good))).all()
    assert len(alerts) == 2  # the low ratings after the bad rows raised theirs

    assert survey_tasks.drain_inbox() == 2 * (inbox.MAX_ATTEMPTS - 1)  # retried, then left for an operator
    assert {inbox.pending(sid).attempts for sid in bad} == {inbox.MAX_ATTEMPTS}


def test_a_clean_batch_is_stored_without_the_row_by_row_fallback(window_code, monkeypatch):
    def no_fallback(*args):
        raise AssertionError("the batch fell back to storing row by row")

    monkeypatch.setattr(inbox, "_store_one_by_one", no_fallback)
    sids = [_waiting(window_code, WIN_OVERALL=str(1 + n % 5), WIN_CONTACT="yes" if n % 7 == 0 else "no").submission_id
            for n in range(30)]
    db.session.flush()

    assert inbox.process_inbox().taken == 30

    assert all(_responses(sid) == 1 for sid in sids)
    contacts = db.session.scalar(select(func.count()).select_from(ContactRequest).join(
        SurveyResponse, ContactRequest.response_id == SurveyResponse.id).where(SurveyResponse.submission_id.in_(sids)))
    assert contacts == 5
    answers = db.session.scalar(select(func.count()).select_from(SurveyAnswer).join(SurveyResponse).where(
        SurveyResponse.submission_id.in_(sids)))
    assert answers == 60  # the overall score and the contact question of each


@pytest.fixture
def committed_code(app):
    """For real-engine tests: a committed touchpoint of rmyy with a code answering a window questionnaire of its own,
    removed afterwards with every response stored for it."""
    from organisation.models import Department, Touchpoint
    from survey import builtin, definitions
    from survey.models import SurveyTemplate, TemplateVersion, TouchpointCode, VersionStatus
    from tests.factories import demo_institution, unique

    with app.test_request_context():
        institution = demo_institution("rmyy")
        department = db.session.scalars(select(Department).where(Department.institution_id == institution.id)).first()
        template = SurveyTemplate(institution_id=institution.id, code=unique("RE").upper(), name="并发测试",
                                  audience="window")
        definition = definitions.normalise(builtin.WINDOW)
        version = TemplateVersion(template=template, number=1, status=VersionStatus.PUBLISHED, definition=definition,
                                  content_hash=definitions.content_hash(definition), created_at=utcnow(),
                                  published_at=utcnow())
        touchpoint = Touchpoint(institution_id=institution.id, code=unique("RE"), name=unique("窗口"), kind="window",
                                department_id=department.id)
        db.session.add_all([template, version, touchpoint])
        db.session.flush()
        code = TouchpointCode(institution_id=institution.id, touchpoint_id=touchpoint.id, template_id=template.id,
                              code=uuid.uuid4().hex[:12])
        db.session.add(code)
        db.session.commit()
        ids = (code.id, touchpoint.id, version.id, template.id)
    yield ids[0]
    with app.app_context():
        responses = select(SurveyResponse.submission_id).where(SurveyResponse.touchpoint_id == ids[1])
        _remove(list(db.session.scalars(responses)))
        left = [row.id for row in db.session.execute(select(SurveyInbox.id, SurveyInbox.payload))
                if row.payload["meta"].get("touchpoint_id") == ids[1]]
        db.session.execute(delete(SurveyInbox).where(SurveyInbox.id.in_(left)))
        for model, key in ((TouchpointCode, ids[0]), (Touchpoint, ids[1]), (TemplateVersion, ids[2]),
                           (SurveyTemplate, ids[3])):
            db.session.execute(delete(model).where(model.id == key))
        db.session.commit()


def _remove(submission_ids):
    """Delete what a real-engine test stored for these submissions."""
    response_ids = select(SurveyResponse.id).where(SurveyResponse.submission_id.in_(submission_ids))
    alert_ids = [str(a) for a in db.session.scalars(select(RecoveryAlert.id).where(
        RecoveryAlert.response_id.in_(response_ids)))]
    db.session.execute(delete(AuditEntry).where(AuditEntry.target_type == "survey_recovery_alert",
                                                AuditEntry.target_id.in_(alert_ids)))
    db.session.execute(delete(Notification).where(Notification.key.in_([f"alert:{a}" for a in alert_ids])))
    for model in (RecoveryAlert, ContactRequest, SurveyAnswer):
        db.session.execute(delete(model).where(model.response_id.in_(response_ids)))
    db.session.execute(delete(SurveyResponse).where(SurveyResponse.submission_id.in_(submission_ids)))
    db.session.commit()


@pytest.mark.real_engine
def test_alerts_raised_in_a_batch_are_notified_after_the_commit_once_each(app, database_url, committed_code, outbox,
                                                                          monkeypatch):
    from sqlalchemy import create_engine

    from survey.models import TouchpointCode

    observer = create_engine(database_url)
    committed_when_queued = []
    real_enqueue = survey_tasks.try_enqueue

    def enqueue(job, alert_id, **kwargs):
        with observer.connect() as other:  # another connection sees only what was committed
            committed_when_queued.append(
                other.execute(select(RecoveryAlert.id).where(RecoveryAlert.id == alert_id)).first() is not None)
        return real_enqueue(job, alert_id, **kwargs)

    monkeypatch.setattr(survey_tasks, "try_enqueue", enqueue)
    try:
        with app.test_request_context():
            code = db.session.get(TouchpointCode, committed_code)
            sids = [_waiting(code, WIN_OVERALL=value).submission_id for value in ("1", "5", "2", "4", "1")]
            db.session.commit()

            assert survey_tasks.drain_inbox() == 5

            alert_ids = sorted(db.session.scalars(select(RecoveryAlert.id).join(
                SurveyResponse, RecoveryAlert.response_id == SurveyResponse.id).where(
                SurveyResponse.submission_id.in_(sids))))
            assert len(alert_ids) == 3
            assert committed_when_queued == [True, True, True]
            assert sorted(m.meta["alert_id"] for m in outbox) == alert_ids
            raised = db.session.scalars(select(AuditEntry.target_id).where(
                AuditEntry.action == "survey_alert.raise", AuditEntry.target_id.in_([str(a) for a in alert_ids])))
            assert sorted(int(a) for a in raised) == alert_ids
            assert survey_tasks.sweep_unnotified_alerts() == 0 and len(outbox) == 3
    finally:
        observer.dispose()


@pytest.mark.real_engine
def test_two_workers_processing_the_inbox_at_once_never_store_a_row_twice(app, committed_code, monkeypatch):
    """Both hold a claimed batch at the same moment (SKIP LOCKED lets the second pass the first's rows)."""
    from survey.models import TouchpointCode

    both_claimed = threading.Barrier(2, timeout=20)
    real_flags = inbox.history_flags
    first_batch = threading.local()

    def wait_for_the_other_worker(ratings):
        if not getattr(first_batch, "done", False):
            first_batch.done = True
            both_claimed.wait()  # broken (and the test failed) if one worker waits on the other's rows
        return real_flags(ratings)

    def no_fallback(*args):
        raise AssertionError("a batch fell back to storing row by row")

    monkeypatch.setattr(inbox, "history_flags", wait_for_the_other_worker)
    monkeypatch.setattr(inbox, "_store_one_by_one", no_fallback)
    with app.test_request_context():
        code = db.session.get(TouchpointCode, committed_code)
        sids = [_waiting(code, device=uuid.uuid4().hex).submission_id for _ in range(120)]
        db.session.commit()

    taken: dict[str, list[int]] = {}
    errors = []

    def worker(name):
        with app.app_context():
            try:
                taken[name] = []
                while n := inbox.process_inbox(limit=25).taken:
                    taken[name].append(n)
            except Exception as exc:  # reported below
                errors.append(exc)
                db.session.rollback()

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert not both_claimed.broken
    assert taken["a"] and taken["b"], taken
    assert sum(taken["a"]) + sum(taken["b"]) == 120  # no row taken by both
    with app.app_context():
        counts = dict(db.session.execute(select(SurveyResponse.submission_id, func.count())
                                         .where(SurveyResponse.submission_id.in_(sids))
                                         .group_by(SurveyResponse.submission_id)).all())
        assert counts == {sid: 1 for sid in sids}
        assert db.session.scalar(select(func.count()).select_from(SurveyInbox)
                                 .where(SurveyInbox.submission_id.in_(sids))) == 0
