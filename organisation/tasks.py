"""Organisation jobs: staff notices recorded in the app and delivered to the institutions' channels.

``record_notice`` is core.notify's recorder: every staff notice of every feature passes through it inside
the job that raised it. ``deliver`` sends one outbox row (WeCom, DingTalk, e-mail) once that job has
committed; ``sweep_deliveries`` (every minute) sends what Redis could not queue and retries failures.
``purge_sessions`` (daily) drops the rows of staff sessions that ended long ago.
"""
from __future__ import annotations

import traceback

from core.audit import record
from core.channels import ChannelError
from core.db import utcnow
from core.extensions import db
from core.notify import Message
from core.tasks import QUEUE_HIGH, enqueue_after_commit, job_logger, job_now
from organisation import notifications, sessions

log = job_logger(__name__)
SWEEP_BATCH = 50



def record_notice(message: Message) -> Message:
    """core.notify's recorder: keep the notice in each recipient's list and queue its outbound deliveries for
    when the caller's transaction commits; returns the message for the recipients who had not had it."""
    message, deliveries = notifications.record(message)
    for delivery_id in deliveries:
        enqueue_after_commit(deliver, delivery_id, queue=QUEUE_HIGH)
    return message


def deliver(delivery_id: int, now: str | None = None) -> bool:
    """Send one outbox row through its channel; a failure is recorded and left to the sweep (never raised).

    The row is claimed and the claim committed before the network call, so a sweep on another worker
    leaves it alone meanwhile; the log line of a failure names the row, the channel and what went wrong,
    never the message or the channel's address.
    """
    delivery = notifications.claim(delivery_id, job_now(now))
    if delivery is None:
        db.session.rollback()
        return False
    db.session.commit()
    channel, attempt = delivery.channel, delivery.attempts
    try:
        notifications.transmit(delivery)
        error = None
    except ChannelError as exc:
        error = str(exc)
    except Exception as exc:  # a bug must not leave the row leased: record it like a failed send
        error = type(exc).__name__
        # The frames, not the exception's text: that could quote the channel's address and its key.
        log.error("notice delivery %s via %s raised %s:\n%s", delivery_id, channel.value, error,
                  "".join(traceback.format_tb(exc.__traceback__)))
    notifications.finish(delivery, error, utcnow())
    db.session.commit()
    if error is not None:
        log.warning("notice delivery %s via %s failed (attempt %d): %s", delivery_id, channel.value, attempt, error)
    return error is None


def sweep_deliveries(now: str | None = None) -> int:
    """Periodic: send the outbox rows that are due (never queued, or waiting for a retry); returns how many went."""
    at = job_now(now)
    ids = notifications.waiting_deliveries(at, SWEEP_BATCH)
    db.session.commit()  # end the read: each row is claimed (and committed) on its own
    sent = sum(1 for delivery_id in ids if deliver(delivery_id, at.isoformat()))
    if ids:
        log.info("delivery sweep: %d of %d sent", sent, len(ids))
    return sent


def purge_sessions(now: str | None = None) -> int:
    """Periodic: delete staff session rows that ended, or expired, more than a month ago; returns how many."""
    count = sessions.purge_sessions(job_now(now))
    if count:
        record("session", "staff_session.purge", None, {"count": count})
    db.session.commit()
    return count
