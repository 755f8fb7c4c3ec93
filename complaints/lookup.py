"""The complainant's progress lookup: case number + six-digit code, no account.

What the complainant sees is only what PublicStatus carries: the stage in
plain words, the date received, the due date (marked provisional when the
year's holidays are not announced yet), and the approved reply once it was
sent (or the notice telling them why the case was not accepted). Never a
staff name, never an internal note.

Guessing is limited and gives nothing away: a wrong case number and a wrong
code get the same answer, and five wrong tries from one client lock further
tries from it for 15 minutes, whether the case exists or not (acceptance
check C9).

Nothing a stranger can set off locks the complainant out. Past five failures
for one case number its tries are slowed instead (each further failure doubles
the pause: 2 s, 4 s … at most three minutes, so a guesser gets about twenty
tries an hour at one case, as under a 15-minute lock); a network (a hospital's
shared Wi-Fi) is slowed the same way past twenty failures, at most a minute
between tries. A phone that showed this case's receipt, or already looked the
case up with its code, is slowed by neither for that case (issue 11, point 7).
"""
from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from sqlalchemy import select

from complaints import feedback
from complaints.intake import check_lookup_code, hash_lookup_code
from complaints.models import Complaint, PauseReason, Reply, ReplyStatus, Satisfaction, Status
from core import backoff
from core.clock import local_date
from core.extensions import db
from core.signing import hash_value

MAX_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60


# The keys that slow instead of locking are core.backoff's growing delays (2 s, doubling), forgotten after
# 15 quiet minutes. One case number: the complainant must never be locked out by a stranger who knows the
# number; a three-minute cap keeps a guesser at about twenty tries an hour, as the old 15-minute lock did.
CASE_SLOW = backoff.Policy(free=MAX_FAILURES, first=2, cap=180, forget=LOCKOUT_SECONDS)
# Hospital Wi-Fi puts many patients behind one address: a network gets more tries than one phone.
NETWORK_SLOW = backoff.Policy(free=20, first=2, cap=60, forget=LOCKOUT_SECONDS)
Limit = int | backoff.Policy  # a lock after so many failures, or a slow-down
# How long a phone stays known for a case it showed the receipt of, or looked up with the right code.
TRUST_SECONDS = 180 * 24 * 3600

CASE_NUMBER_RE = re.compile(r"^([A-Z]{0,8})(\d{4})-?(\d{1,7})$")

# The stage a complainant sees: (step on the 4-step bar, label). Internal steps
# (reply drafted, approved, transferred) are all "处理中".
RECEIVED, HANDLING, REPLIED, CLOSED = 1, 2, 3, 4
STEPS = [(RECEIVED, _l("已收到")), (HANDLING, _l("处理中")), (REPLIED, _l("已答复")), (CLOSED, _l("已办结"))]
STAGES = {
    Status.REGISTERED: (RECEIVED, _l("已收到，等待受理"), _l("我们已收到您的投诉，将尽快受理。")),
    Status.ACCEPTED: (HANDLING, _l("已受理，正在处理"), _l("您的投诉已受理，正在安排相关科室调查核实。")),
    Status.IN_HANDLING: (HANDLING, _l("正在调查处理"), _l("相关科室正在调查核实，处理完毕后会答复您。")),
    Status.TRANSFERRED: (HANDLING, _l("正在调查处理"), _l("相关科室正在调查核实，处理完毕后会答复您。")),
    Status.REPLY_DRAFTED: (HANDLING, _l("正在准备答复"), _l("处理意见正在审核，审核通过后会答复您。")),
    Status.REPLY_APPROVED: (HANDLING, _l("正在准备答复"), _l("处理意见已审核，即将答复您。")),
    Status.REOPENED: (HANDLING, _l("正在重新处理"), _l("根据您提供的新情况，我们正在重新处理。")),
    Status.REPLIED: (REPLIED, _l("已答复"), _l("处理意见已答复您，详见下方。")),
    Status.CLOSED: (CLOSED, _l("已办结"), _l("您的投诉已办结。感谢您的监督。")),
    Status.SETTLED: (CLOSED, _l("已当场处理办结"), _l("您的投诉已在接待时当场处理办结。")),
    Status.DECLINED: (CLOSED, _l("不予受理"), _l("您的投诉不符合受理条件，原因见下方告知。")),
}
PAUSED = {
    PauseReason.AWAITING_MATERIAL: _l("等待您补充材料，期间暂停计时。请按工作人员的告知补充材料。"),
    PauseReason.MEDIATION: _l("调解进行中，期间暂停计时。"),
    PauseReason.EXPERT_ASSESSMENT: _l("鉴定进行中，期间暂停计时。"),
}


@dataclass(frozen=True)
class PublicStatus:
    """Everything the lookup page may show, and nothing more."""

    case_number: str
    step: int
    stage: str
    explanation: str
    received_on: date
    due_on: date | None
    due_provisional: bool
    paused: str | None
    reply: str | None
    replied_on: date | None
    decline_notice: str | None
    merged: bool
    feedback_url: str | None = None     # the closed case's satisfaction link, while it waits for an answer
    feedback_until: date | None = None  # the last day it can be answered
    satisfaction: str | None = None     # the complainant's answer, once given


def normalise_case_number(text: str) -> str:
    """"ts2026-42", "ＴＳ２０２６－００４２" and "TS 2026 00042" all mean TS2026-00042."""
    number = parse_case_number(text)
    if number is None:
        return re.sub(r"[\s_—–－]+", "", unicodedata.normalize("NFKC", text or "").upper())[:40]
    return number


def parse_case_number(text: str) -> str | None:
    """The case number ``text`` spells, however typed, or None when it is not one (a subject, a bare sequence)."""
    text = unicodedata.normalize("NFKC", text or "").upper()
    text = re.sub(r"[\s_—–－]+", "", text.replace("－", "-"))
    match = CASE_NUMBER_RE.match(text)
    if match is None or not match.group(1) and "-" not in text and len(text) <= 7:
        return None
    prefix, year, seq = match.groups()
    return f"{prefix}{year}-{int(seq):05d}"


def sent_reply(complaint: Complaint) -> Reply | None:
    """The latest reply that was approved and sent to the complainant."""
    return db.session.scalar(select(Reply).where(Reply.complaint_id == complaint.id,
                                                 Reply.status == ReplyStatus.SENT.value)
                             .order_by(Reply.sent_at.desc().nulls_last(), Reply.number.desc(), Reply.id.desc())
                             .limit(1))


def public_status(complaint: Complaint) -> PublicStatus:
    """What the complainant may see of a case; a merged-away case shows the case it was merged into."""
    shown = complaint
    seen = {complaint.id}
    while shown.merged_into_id is not None and shown.merged_into_id not in seen:
        target = db.session.get(Complaint, shown.merged_into_id)
        if target is None:
            break
        seen.add(target.id)
        shown = target
    status = Status(shown.status)
    step, stage, explanation = STAGES.get(status, (HANDLING, _l("正在处理"), ""))
    reply = sent_reply(shown)
    # A reply that was sent stays visible, even if the case was reopened since.
    paused = None
    if shown.paused_since is not None and shown.pause_reason:
        try:
            paused = str(PAUSED[PauseReason(shown.pause_reason)])
        except ValueError:
            paused = str(_l("暂停计时。"))
    open_case = status in Status.to_do()
    # A merged-away case's complainant gets no link: the feedback belongs to the case it was merged into.
    pending = feedback.pending_feedback(shown) if shown is complaint else None
    return PublicStatus(
        case_number=complaint.case_number, step=step, stage=str(stage), explanation=str(explanation),
        received_on=local_date(complaint.received_at),
        due_on=shown.due_date if open_case else None,
        due_provisional=bool(shown.deadline_provisional),
        paused=paused if open_case else None,
        reply=reply.body if reply is not None else None,
        replied_on=local_date(reply.sent_at) if reply is not None else None,
        decline_notice=(shown.decline_notice or None) if status == Status.DECLINED else None,
        merged=shown is not complaint,
        feedback_url=feedback.feedback_url(pending) if pending is not None else None,
        feedback_until=local_date(pending.expires_at - timedelta(microseconds=1)) if pending is not None else None,
        satisfaction=(str(Satisfaction(shown.satisfaction).label)
                      if shown is complaint and status == Status.CLOSED and shown.satisfaction else None))


def find_case(institution_id: int, case_number: str, code: str) -> Complaint | None:
    """The case with this number and code in this institution; None for a wrong number or a wrong code alike."""
    number = normalise_case_number(case_number)
    code = (code or "").strip()
    complaint = db.session.scalar(select(Complaint).where(Complaint.institution_id == institution_id,
                                                          Complaint.case_number == number))
    if complaint is None:
        hash_lookup_code(institution_id, number, code)  # same work as a real check: no timing oracle
        return None
    return complaint if check_lookup_code(complaint, code) else None


# Lockout and slow-down -----------------------------------------------------------------
#
# Each key counts failed tries. The client key, at its limit, is locked until
# 15 minutes after the last failure (counted here); the case and network keys
# slow instead (core.backoff, see slow_wait). Counters live in Redis (shared by every web
# process) or, in the embedded mode without Redis, in this process.

_local: dict[str, tuple[int, float]] = {}
_lock = threading.Lock()


def now() -> float:
    """The clock (tests move it)."""
    return time.time()


def _conn():
    return current_app.extensions.get("redis")


def lockout_keys(institution_id: int, case_number: str, client: str, network: str) -> list[tuple[str, Limit]]:
    """(key, limit): the case number, which slows; the client (device or address), which locks; the client's
    network, which slows."""

    number = normalise_case_number(case_number)
    return [
        (f"lookup:case:{hash_value('lookup-key', f'{institution_id}:{number}')[:32]}", CASE_SLOW),
        (f"tj:lookup:client:{hash_value('lookup-key', client)[:32]}", MAX_FAILURES),
        (f"lookup:net:{hash_value('lookup-key', network)[:32]}", NETWORK_SLOW),
    ]


def trust_key(institution_id: int, case_number: str, device: str) -> str | None:
    """The key that marks a device (its cookie) as known for a case; None without a device cookie."""
    if not device:
        return None
    number = normalise_case_number(case_number)
    return f"tj:lookup:ok:{hash_value('lookup-key', f'{institution_id}:{number}:{device}')[:32]}"


def _read(key: str) -> tuple[int, float]:
    conn = _conn()
    if conn is not None:
        try:
            values = conn.hmget(key, "n", "last")
            return int(values[0] or 0), float(values[1] or 0)
        except RedisError:
            pass  # Redis down: count in this process rather than fail the page
    with _lock:
        return _local.get(key, (0, 0.0))


def _recent(key: str, t: float) -> tuple[int, float]:
    """The key's failures and the time of the last one; 15 quiet minutes are a fresh start."""
    failures, last = _read(key)
    if failures and t - last >= LOCKOUT_SECONDS:
        clear(key)
        return 0, 0.0
    return failures, last


def locked(keys: list[tuple[str, Limit]]) -> bool:
    """Whether a key that locks has used up its tries within the last 15 minutes."""
    t = now()
    return any(isinstance(limit, int) and _recent(key, t)[0] >= limit for key, limit in keys)


def slow_wait(keys: list[tuple[str, Limit]]) -> int:
    """Whole seconds to wait before the next try is checked (0: go ahead): the longest of the slowing keys."""
    return backoff.wait_seconds(_slowing(keys))


def _slowing(keys: list[tuple[str, Limit]]) -> list[tuple[backoff.Policy, str]]:
    return [(limit, key) for key, limit in keys if isinstance(limit, backoff.Policy)]


def is_trusted(key: str | None) -> bool:
    """Whether the device showed this case's receipt or looked it up with its code (within TRUST_SECONDS)."""
    if key is None:
        return False
    marked, at = _read(key)
    return bool(marked) and now() - at < TRUST_SECONDS


def trust(key: str | None) -> None:
    """Remember that the device knows this case's code: a slowed network does not slow it for this case."""
    if key is None:
        return
    t = now()
    conn = _conn()
    if conn is not None:
        try:
            conn.pipeline(transaction=False).hset(key, mapping={"n": 1, "last": repr(t)}) \
                .expire(key, TRUST_SECONDS).execute()
            return
        except RedisError:
            pass  # Redis down: remember in this process
    with _lock:
        _local[key] = (1, t)


def record_failure(keys: list[tuple[str, Limit]]) -> None:
    backoff.record_failure(_slowing(keys))
    locking = [key for key, limit in keys if isinstance(limit, int)]
    t = now()
    conn = _conn()
    if conn is not None:
        try:
            pipe = conn.pipeline(transaction=False)
            for key in locking:
                pipe.hincrby(key, "n", 1)
                pipe.hset(key, "last", repr(t))
                pipe.expire(key, LOCKOUT_SECONDS + 60)
            pipe.execute()
            return
        except RedisError:
            pass  # Redis down: count in this process
    with _lock:
        for key in locking:
            failures, last = _local.get(key, (0, 0.0))
            if failures and t - last >= LOCKOUT_SECONDS:
                failures = 0
            _local[key] = (failures + 1, t)
        if len(_local) > 50000:
            for stale in [k for k, (_n, last) in _local.items()
                          if t - last >= (TRUST_SECONDS if k.startswith("tj:lookup:ok:") else LOCKOUT_SECONDS)]:
                del _local[stale]


def succeeded(keys: list[tuple[str, Limit]]) -> None:
    """A right code: the case number's count starts again (``keys`` as lockout_keys gives them)."""
    backoff.clear(keys[0][0])


def clear(key: str) -> None:
    conn = _conn()
    if conn is not None:
        try:
            conn.delete(key)
        except RedisError:
            pass
    with _lock:
        _local.pop(key, None)
