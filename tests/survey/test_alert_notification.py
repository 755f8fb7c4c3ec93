"""An alert notification is sent once even when the sweep and the post-submit job race."""
from __future__ import annotations

from sqlalchemy import select, update

from core.db import utcnow
from core.extensions import db
from survey import tasks
from survey.models import RecoveryAlert


def test_an_alert_another_worker_has_just_notified_is_not_sent_again(window_code, respond, outbox):
    response = respond(window_code, WIN_OVERALL="1")
    alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == response.id))
    assert alert.notified_at is None  # this worker has read the alert ...
    # ... and meanwhile the other worker (the sweep, or the job queued at submit time) sent and committed.
    db.session.execute(update(RecoveryAlert).where(RecoveryAlert.id == alert.id).values(notified_at=utcnow())
                       .execution_options(synchronize_session=False))

    assert tasks.notify_alert(alert.id) is False
    assert outbox == []
