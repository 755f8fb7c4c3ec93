"""Ratings are processed even when nothing drains the inbox: no scheduler, no worker, or Redis down.

The scheduler queues the inbox job every 10 seconds. When the oldest rating has waited longer than
SURVEY_INBOX_STALL_SECONDS, the web process that accepts a rating processes it itself, with a batch of
the backlog, and an idle worker drains the inbox itself, so no single process is needed for a rating
ever to become a response.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.db import utcnow
from core.extensions import db
from core.tasks import watchdogs
from survey import inbox
from survey import tasks as survey_tasks
from survey.models import SurveyInbox, SurveyResponse
from tests.survey.conftest import stored, submission_id_of, submit


@pytest.fixture
def with_a_worker(app, monkeypatch):
    """Production's mode: ratings wait for the inbox job (not processed inline); the stall check starts afresh."""
    monkeypatch.setattr(inbox, "processes_inline", lambda: False)
    app.extensions.pop(inbox.STALL_STATE, None)
    yield
    app.extensions.pop(inbox.STALL_STATE, None)


def waiting_since(client, window_code, seconds: float) -> str:
    """A rating accepted ``seconds`` ago and not processed since; its submission id."""
    posted = submit(client, window_code, WIN_OVERALL="4")
    submission_id = submission_id_of(posted)
    db.session.execute(update(SurveyInbox).where(SurveyInbox.submission_id == submission_id)
                       .values(received_at=utcnow() - timedelta(seconds=seconds)))
    db.session.commit()
    return submission_id


def test_when_ratings_wait_too_long_the_web_process_turns_them_into_responses_itself(
        app, client, new_client, window_code, with_a_worker, caplog):
    caplog.set_level(logging.WARNING, logger="survey.inbox")
    stuck = waiting_since(client, window_code, app.config["SURVEY_INBOX_STALL_SECONDS"] + 30)
    app.extensions.pop(inbox.STALL_STATE, None)  # the check made by that first POST found nothing old yet

    posted = submit(new_client(), window_code, WIN_OVERALL="1")

    assert posted.status_code == 303
    assert stored(submission_id_of(posted)) is not None  # processed in the request: its alert is raised now
    assert stored(stuck) is not None                      # and the backlog with it
    assert db.session.scalar(select(func.count()).select_from(SurveyInbox)) == 0
    assert sum("inbox stalled" in r.getMessage() for r in caplog.records) == 1


def test_while_the_inbox_job_keeps_up_ratings_are_left_to_it(app, client, new_client, window_code, with_a_worker):
    recent = waiting_since(client, window_code, 5)
    app.extensions.pop(inbox.STALL_STATE, None)

    posted = submit(new_client(), window_code, WIN_OVERALL="1")

    assert posted.status_code == 303
    assert stored(submission_id_of(posted)) is None and stored(recent) is None
    assert inbox.pending(recent) is not None


def test_a_rating_the_job_gave_up_on_does_not_count_as_a_stall(app, client, new_client, window_code, with_a_worker):
    broken = waiting_since(client, window_code, app.config["SURVEY_INBOX_STALL_SECONDS"] + 30)
    db.session.execute(update(SurveyInbox).where(SurveyInbox.submission_id == broken)
                       .values(attempts=inbox.MAX_ATTEMPTS))  # waits for an operator, not for a worker
    db.session.commit()
    app.extensions.pop(inbox.STALL_STATE, None)

    posted = submit(new_client(), window_code, WIN_OVERALL="5")

    assert db.session.scalar(select(SurveyResponse.id).where(
        SurveyResponse.submission_id == submission_id_of(posted))) is None


def test_an_idle_workers_watchdog_drains_a_stalled_inbox(app, client, window_code, with_a_worker):
    """Without a scheduler the job is never queued, and without new ratings no web process takes over."""
    stuck = waiting_since(client, window_code, app.config["SURVEY_INBOX_STALL_SECONDS"] + 30)
    app.extensions.pop(inbox.STALL_STATE, None)

    assert survey_tasks.drain_if_stalled() == 1
    assert stored(stuck) is not None


def test_the_watchdog_leaves_a_healthy_inbox_to_the_scheduled_job(app, client, window_code, with_a_worker):
    recent = waiting_since(client, window_code, 5)
    app.extensions.pop(inbox.STALL_STATE, None)

    assert survey_tasks.drain_if_stalled() == 0
    assert inbox.pending(recent) is not None


def test_workers_watch_the_inbox(app):
    assert ("survey-inbox", survey_tasks.drain_if_stalled) in watchdogs(app)
