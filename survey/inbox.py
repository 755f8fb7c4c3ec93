"""Accept QR ratings fast, process them after: the high-volume path of the product.

accept_rating() is all the patient's POST does: check the answers against the
(cached, immutable) definition and write one inbox row in a one-statement
transaction. process_inbox() turns rows into responses with their flags,
scores and alerts, a batch at a time and set-based: a few statements per
batch, not a few per row. It is idempotent (the submission id is unique in
both tables) and safe to run in several workers at once (rows are claimed
with SKIP LOCKED where the database has it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.tasks import job_logger
from survey import alerts as alert_rules
from survey import versioning
from survey.models import (
    Channel,
    ContactRequest,
    InboxContext,
    RecoveryAlert,
    SurveyAnswer,
    SurveyInbox,
    SurveyResponse,
    SurveySettings,
)
from survey.qr import CodeInfo
from survey.submission import (
    Context,
    EffectiveSettings,
    FlagInput,
    Prepared,
    SubmissionError,
    check_submission,
    history_flags,
    prepare,
    submit_response,
)

log = job_logger(__name__)
BATCH = 500
MAX_ATTEMPTS = 5  # a row that fails this often waits for an operator (see last_error)


def accept_rating(info: CodeInfo, definition: dict[str, Any], submission_id: str, form: MultiDict, *,
                  form_problem: str | None, fill_seconds: float | None, device_hash: str, ip_hash: str) -> bool:
    """Validate a QR rating and write it to the inbox; False when this submission was already received."""
    check_submission(definition, submission_id, form.get, form.getlist)
    assert info.version_id is not None, "the caller found the definition by the code's published version"
    meta = InboxContext(institution_id=info.institution_id, code_id=info.code_id, touchpoint_id=info.touchpoint_id,
                        department_id=info.department_id, version_id=info.version_id, fill_seconds=fill_seconds,
                        form_problem=form_problem, device_hash=device_hash, ip_hash=ip_hash)
    payload = {
        "meta": meta.to_json(),
        "form": {key: form.getlist(key) for key in form if key.startswith("q_") or key == "contact_phone"},
    }
    return _store({"submission_id": submission_id, "payload": payload})


_INSERT = insert(SurveyInbox.__table__).values(
    submission_id=bindparam("submission_id"), payload=bindparam("payload", type_=SurveyInbox.__table__.c.payload.type))


def _store(row: dict[str, Any]) -> bool:
    """Insert one inbox row; False when its submission id is there already (a double tap, a retry)."""
    bind = db.session.get_bind()
    if not isinstance(bind, Engine):
        # The session works inside a transaction its caller holds (a test's, for one): join
        # it; the request has no other work in it, so a duplicate rolls it all back and no
        # savepoint is paid for. The caller's commit makes the row durable.
        try:
            db.session.connection().execute(_INSERT, row)
        except IntegrityError:
            db.session.rollback()
            return False
        return True
    # One statement in a transaction of its own: one round trip to the database instead of
    # BEGIN, INSERT and COMMIT, and the row is durable when execute() returns.
    try:
        with bind.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(_INSERT, row)
    except IntegrityError:
        return False
    return True


def pending(submission_id: str) -> SurveyInbox | None:
    return db.session.scalar(select(SurveyInbox).where(SurveyInbox.submission_id == submission_id))


class _Form:
    """The stored form fields ({name: [values]}) read as a MultiDict would be, without its cost per missing field."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))


@dataclass
class _Rating:
    """One claimed inbox row, read and scored, on its way to becoming a response."""

    row_id: int
    submission_id: str
    received_at: datetime
    meta: InboxContext            # as the POST saw it (its touchpoint_id is never None, unlike the context's)
    settings: EffectiveSettings   # the institution's, as in context.settings (never None here)
    context: Context
    form: _Form
    prepared: Prepared


@dataclass(frozen=True)
class Processed:
    """What one batch did: the inbox rows it took, and the alerts it raised (to notify, now committed)."""

    taken: int
    alert_ids: list[int]


def process_inbox(limit: int = BATCH, *, submission_id: str | None = None) -> Processed:
    """Turn inbox rows into responses (oldest first), one batch in one transaction, and commit.

    The caller queues the notices of the alerts raised (survey.tasks.process_ratings). A row that
    cannot be processed stays with ``attempts`` and ``last_error`` and does not hold up the others.
    """
    stmt = (select(SurveyInbox.id, SurveyInbox.submission_id, SurveyInbox.received_at, SurveyInbox.payload)
            .where(SurveyInbox.attempts < MAX_ATTEMPTS).order_by(SurveyInbox.id).limit(limit))
    if submission_id is not None:
        stmt = stmt.where(SurveyInbox.submission_id == submission_id)
    rows = db.session.execute(stmt.with_for_update(skip_locked=True)).all()
    if not rows:
        db.session.commit()
        return Processed(0, [])
    failed: dict[int, str] = {}
    ratings = _read(rows, failed)
    ratings = _drop_stored(ratings)
    stored = {r.row_id for r in ratings}
    alert_ids: list[int] = []
    try:
        if ratings:
            with db.session.begin_nested():
                alert_ids = _store_batch(ratings)
    except Exception:
        # Some row breaks the set-based insert (a bug, a row another process stored
        # meanwhile): store this batch one row at a time so that only that row waits.
        log.exception("inbox: batch of %d could not be stored at once; storing row by row", len(ratings))
        alert_ids, stored = _store_one_by_one(ratings, failed)
    done = [row.id for row in rows if row.id not in failed]
    if done:
        # One DELETE for the batch, without matching it against the session's objects:
        # per row, that matching made a batch quadratic in its size.
        db.session.execute(delete(SurveyInbox).where(SurveyInbox.id.in_(done))
                           .execution_options(synchronize_session=False))
    for row_id, error in failed.items():
        db.session.execute(update(SurveyInbox).where(SurveyInbox.id == row_id)
                           .values(attempts=SurveyInbox.attempts + 1, last_error=error[:500])
                           .execution_options(synchronize_session=False))
    db.session.commit()
    if submission_id is None:
        log.info("inbox: %d rows, %d responses created, %d failed", len(rows), len(stored), len(failed))
    return Processed(len(rows), alert_ids)


def _read(rows, failed: dict[int, str]) -> list[_Rating]:
    """Parse, check and score the rows in Python; a row that cannot be read goes to ``failed``."""
    metas: dict[int, InboxContext] = {}
    for row in rows:
        try:
            metas[row.id] = InboxContext.from_json(row.payload["meta"])
        except (KeyError, TypeError) as exc:
            _fail(row.id, f"unreadable payload: {exc!r}", failed)
    settings = _settings({meta.institution_id for meta in metas.values()})
    ratings = []
    for row in rows:
        meta = metas.get(row.id)
        if meta is None:
            continue
        try:
            definition = versioning.published_definition(meta.version_id)
            if definition is None:
                raise SubmissionError(f"template version {meta.version_id} is not published")
            effective = settings[meta.institution_id]
            context = Context(institution_id=meta.institution_id, channel=Channel.TOUCHPOINT_QR,
                              version_id=meta.version_id, definition=definition, touchpoint_id=meta.touchpoint_id,
                              department_id=meta.department_id, code_id=meta.code_id, form_problem=meta.form_problem,
                              fill_seconds=meta.fill_seconds, device_hash=meta.device_hash, ip_hash=meta.ip_hash,
                              settings=effective)
            form = _Form(row.payload["form"])
            prepared = prepare(context, effective, row.submission_id, form.get, form.getlist)
        except Exception as exc:  # answers were checked on receipt: only a bug or a corrupt row gets here
            _fail(row.id, str(exc) or repr(exc), failed)
            continue
        ratings.append(_Rating(row.id, row.submission_id, row.received_at, meta, effective, context, form, prepared))
    return ratings


def _fail(row_id: int, error: str, failed: dict[int, str]) -> None:
    failed[row_id] = error
    log.error("inbox row %s could not be processed: %s", row_id, error)


def _settings(institution_ids: set[int]) -> dict[int, EffectiveSettings]:
    """Each institution's survey settings, in one query for the batch."""
    rows = {s.institution_id: s for s in db.session.scalars(
        select(SurveySettings).where(SurveySettings.institution_id.in_(institution_ids)))} if institution_ids else {}
    return {i: EffectiveSettings.of(rows.get(i)) for i in institution_ids}


def _drop_stored(ratings: list[_Rating]) -> list[_Rating]:
    """Leave out submissions stored already (a retry that reached the inbox again) and repeats within the batch."""
    if not ratings:
        return ratings
    known = set(db.session.scalars(select(SurveyResponse.submission_id).where(
        SurveyResponse.submission_id.in_([r.submission_id for r in ratings]))))
    kept = []
    for rating in ratings:
        if rating.submission_id not in known:
            known.add(rating.submission_id)
            kept.append(rating)
    return kept


def _store_batch(ratings: list[_Rating]) -> list[int]:
    """Insert the batch's responses, answers, contact requests and alerts in a few statements; the alert ids."""
    flags = history_flags([FlagInput(r.meta.touchpoint_id, r.context.device_hash, r.context.ip_hash,
                                     r.received_at, r.settings.repeat_window_minutes) for r in ratings])
    rows = []
    for rating, history in zip(ratings, flags, strict=True):
        c, p = rating.context, rating.prepared
        row_flags = sorted(set(p.flags) | set(history))
        rows.append({
            "institution_id": c.institution_id, "submission_id": rating.submission_id,
            "template_version_id": c.version_id, "channel": c.channel.value, "department_id": c.department_id,
            "touchpoint_id": c.touchpoint_id, "code_id": c.code_id, "interviewer_id": None,
            "submitted_at": rating.received_at, "fill_seconds": c.fill_seconds, "overall_score": p.overall_score,
            "comment": p.comment, "device_hash": c.device_hash, "ip_hash": c.ip_hash, "flags": row_flags,
            "excluded": bool(row_flags), "sentiment": None,
        })
    responses = SurveyResponse.__table__
    # One multi-row INSERT … RETURNING (SQLAlchemy's insertmanyvalues); ids matched by submission id.
    ids: dict[str, int] = dict(db.session.execute(
        insert(responses).returning(responses.c.submission_id, responses.c.id), rows).all())
    answers = [{"response_id": ids[r.submission_id], "item_code": a.code, "value": a.value, "score": a.score,
                "not_applicable": a.not_applicable} for r in ratings for a in r.prepared.answers]
    if answers:
        db.session.execute(insert(SurveyAnswer.__table__), answers)
    raising = _raising(ratings, [bool(row["excluded"]) for row in rows])
    # A callback request goes with the alert that asks someone to call: none without one.
    contacts = [{"institution_id": r.context.institution_id, "response_id": ids[r.submission_id],
                 "phone": r.prepared.contact_phone or None}
                for r in raising if r.prepared.contact_phone is not None]
    if contacts:
        db.session.execute(insert(ContactRequest.__table__), contacts)
    alerts = [RecoveryAlert(institution_id=r.context.institution_id, response_id=ids[r.submission_id],
                            department_id=r.context.department_id, touchpoint_id=r.context.touchpoint_id,
                            reasons=r.prepared.alert_reasons)
              for r in raising]
    if alerts:
        db.session.add_all(alerts)
        db.session.flush()  # one batched INSERT for the alerts, then their audit entries
        for alert in alerts:
            record("survey", "survey_alert.raise", alert, {"reasons": alert.reasons, "response_id": alert.response_id})
        db.session.flush()
    return [alert.id for alert in alerts]


def _raising(ratings: list[_Rating], excluded: list[bool]) -> list[_Rating]:
    """The ratings of the batch that raise an alert: not excluded, and not a repeat of an open one (one query)."""
    candidates = [r for r, out in zip(ratings, excluded, strict=True)
                  if alert_rules.raises_alert(r.prepared.alert_reasons, excluded=out)]
    if not candidates:
        return []
    repeated = alert_rules.repeats([alert_rules.AlertCandidate(r.meta.touchpoint_id, r.context.device_hash,
                                                               r.received_at) for r in candidates])
    return [r for r, repeat in zip(candidates, repeated, strict=True) if not repeat]


def _store_one_by_one(ratings: list[_Rating], failed: dict[int, str]) -> tuple[list[int], set[int]]:
    """The slow path: each row through submit_response in a savepoint of its own; (alert ids, rows stored)."""
    alert_ids, stored = [], set()
    for rating in ratings:
        try:
            with db.session.begin_nested():
                result = submit_response(rating.context, rating.submission_id, rating.form.get, rating.form.getlist,
                                         received_at=rating.received_at)
        except Exception as exc:
            _fail(rating.row_id, str(exc) or repr(exc), failed)
            continue
        if result.created:
            stored.add(rating.row_id)
        if result.alert_id is not None:
            alert_ids.append(result.alert_id)
    return alert_ids, stored


def processes_inline() -> bool:
    """Whether ratings are processed within the request (no Redis, or JOBS_INLINE)."""
    return current_app.extensions.get("redis") is None or bool(current_app.config.get("JOBS_INLINE"))


# When nothing drains the inbox ------------------------------------------------------------------
# The scheduler queues the inbox job and a worker runs it, both through Redis. So that no single one of
# them is needed for a rating ever to be processed, the web process that accepts a rating looks (one
# indexed query, at most every STALL_CHECK_SECONDS per process) whether the oldest rating not yet tried
# has waited longer than SURVEY_INBOX_STALL_SECONDS; while it has, that process turns the rating it
# accepted into a response itself, with a batch of the backlog. It needs only the database, which the
# rating needed anyway; the usual path, and its throughput, are unchanged.

STALL_STATE = "survey_inbox_stall"
STALL_CHECK_SECONDS = 5.0
STALL_BATCH = 100


def stalled() -> bool:
    """Whether nothing drains the inbox: its oldest untried rating waited longer than SURVEY_INBOX_STALL_SECONDS."""
    state = current_app.extensions.setdefault(STALL_STATE, {"checked": None, "stalled": False})
    now = time.monotonic()
    if state["checked"] is not None and now - state["checked"] < STALL_CHECK_SECONDS:
        return state["stalled"]
    oldest = db.session.scalar(select(SurveyInbox.received_at).where(SurveyInbox.attempts == 0)
                               .order_by(SurveyInbox.id).limit(1))
    waited = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    was, state["stalled"], state["checked"] = state["stalled"], waited > current_app.config[
        "SURVEY_INBOX_STALL_SECONDS"], now
    if state["stalled"] and not was:
        log.warning("inbox stalled: the oldest rating waited %.0f s; this process now processes the ratings it "
                    "accepts (is the scheduler, a worker or Redis down?)", waited)
    elif was and not state["stalled"]:
        log.warning("inbox drained again: ratings are left to the inbox job")
    return state["stalled"]
