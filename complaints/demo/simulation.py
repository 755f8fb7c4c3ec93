"""Demo complaints: one case simulated from receipt to feedback, cut at ``now``."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from complaints import deadlines, workdays
from complaints.categories import default_categories
from complaints.demo.texts import (
    CATEGORY_WEIGHTS,
    CHANNEL_WEIGHTS,
    DECLINE_WEIGHTS,
    GIVEN,
    SATISFACTION_WEIGHTS,
    SURNAMES,
    TEMPLATES,
    Template,
)
from complaints.models import (
    ComplaintSettings,
    DeadlineRule,
    ReplyVia,
    Status,
)
from complaints.triage import default_decline_notice
from core.clock import local_date, local_day_bounds, local_midnight, local_timezone, local_today
from core.extensions import db
from organisation.models import Department, Institution, Role, Touchpoint
from organisation.services import staff_with_roles

ACTOR = "seed-demo"  # how the timeline and the audit trail name the demo


# The institution's people and places ---------------------------------------------------

@dataclass
class Office:
    """Who works the complaints of one institution, and where cases can go."""

    institution: Institution
    prefix: str
    departments: dict[str, int]           # code -> id
    clinical: list[int]
    touchpoints: dict[str, int]
    categories: dict[str, int]            # category code -> id
    officer: tuple[int | None, str]
    reviewer: tuple[int | None, str]      # approves what the officer drafted (someone else)
    handler: tuple[int | None, str]
    handler_departments: set[int]

    def department_for(self, template: Template, rng: random.Random) -> int:
        present = [self.departments[c] for c in template.departments if c in self.departments]
        if present and rng.random() < 0.85:
            return present[0] if rng.random() < 0.7 else rng.choice(present)
        return rng.choice(self.clinical or list(self.departments.values()))

    def drafter(self, department_id: int) -> tuple[int | None, str]:
        return self.handler if department_id in self.handler_departments and self.handler[0] else self.officer


def office_for(institution: Institution) -> Office:
    categories = {c.code: c.id for c in default_categories(actor=ACTOR)}
    departments = {d.code: d.id for d in db.session.scalars(
        select(Department).where(Department.institution_id == institution.id, Department.active.is_(True)))}
    clinical = [d.id for d in db.session.scalars(
        select(Department).where(Department.institution_id == institution.id, Department.active.is_(True),
                                 Department.kind == "clinical"))]
    touchpoints = {t.code: t.id for t in db.session.scalars(
        select(Touchpoint).where(Touchpoint.institution_id == institution.id, Touchpoint.active.is_(True)))}
    officers = (staff_with_roles(institution.id, Role.COMPLAINT_OFFICER)
                + staff_with_roles(institution.id, Role.INSTITUTION_ADMIN))
    handlers = staff_with_roles(institution.id, Role.DEPARTMENT_HANDLER)
    officer = (officers[0].id, officers[0].username) if officers else (None, ACTOR)
    reviewer = next(((u.id, u.username) for u in officers if u.id != officer[0]), officer)
    handler = (handlers[0].id, handlers[0].username) if handlers else (None, ACTOR)
    settings = db.session.get(ComplaintSettings, institution.id)
    return Office(institution, (settings.case_prefix if settings else "") or "TS", departments, clinical,
                  touchpoints, categories, officer, reviewer, handler,
                  set(handlers[0].department_ids) if handlers else set())


# One simulated case ----------------------------------------------------------------------

@dataclass
class Case:
    values: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    departments: list[dict[str, Any]] = field(default_factory=list)
    concerned: list[int] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    rectifications: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[dict[str, Any]] = field(default_factory=list)
    merged_into: Case | None = None       # a duplicate: the case it was merged into (linked by write_cases)


class _Later(Exception):
    """The next step of a case would happen after ``now``: the simulation stops there."""


def _weighted(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _phone(rng: random.Random) -> str:
    return rng.choice(("139", "138", "137", "136", "135", "158", "159", "188", "187", "186", "177", "199")) + \
        f"{rng.randrange(10**8):08d}"


def _local(day: date, hour: float) -> datetime:
    return (local_midnight(day) + timedelta(hours=hour)).astimezone(UTC)


def _working_day(day: date, n: int) -> date:
    return workdays.add_working_days(day, n)[0]


def _due(received_at: datetime, days: int, rule: str, *, trace: bool,
         pauses: list[tuple[datetime, datetime | None]] = (), now: datetime | None = None) -> dict[str, Any]:
    """The deadline columns: with the full trace for the demo, just the dates for the benchmark's bulk."""
    if trace:
        d = deadlines.compute_deadline(received_at, days, rule=rule, pauses=pauses, now=now)
        return {"due_date": d.due_date, "due_at": d.due_at, "deadline_provisional": d.provisional,
                "deadline_trace": d.to_json(), "deadline_rule": rule, "working_days": days}
    due_date, provisional = workdays.add_working_days(local_date(received_at), days)
    due_at = local_day_bounds(due_date)[1].astimezone(UTC)
    return {"due_date": due_date, "due_at": due_at, "deadline_provisional": provisional, "deadline_trace": {},
            "deadline_rule": rule, "working_days": days}


def reply_body(template: Template, institution: Institution) -> str:
    return (f"您好！关于您反映的“{template.subject}”一事，{institution.name}高度重视，"
            "投诉管理部门已会同相关科室调查核实。经核实，您反映的情况基本属实，我们向您致以诚挚的歉意。"
            f"针对该问题，医院已{template.measure or '进行整改'}。"
            "感谢您对我院工作的监督和支持，如有其他意见和建议，欢迎随时联系患者服务中心。")


HOLD_RECENT = (Status.REGISTERED.value, Status.ACCEPTED.value, Status.IN_HANDLING.value, Status.TRANSFERRED.value,
               Status.REPLY_DRAFTED.value, Status.REPLY_APPROVED.value, Status.REPLIED.value)


def pick_hold(rng: random.Random, received_at: datetime, now: datetime) -> str | None:
    """Some cases stop at a given status (the desk's work in hand): mostly the last few days' cases, a few older
    ones (the overdue cases a real office has), and now and then a reopened case from a few weeks ago.
    A case waits to be accepted (待受理) only for a day or two, as in an office that triages daily."""
    age = (now - received_at).days
    if (age <= 5 and rng.random() < 0.45) or (6 <= age <= 12 and rng.random() < 0.06):
        status = rng.choice(HOLD_RECENT)
        if status == Status.REGISTERED.value and age > 2:
            status = rng.choice(HOLD_RECENT[1:])
        return status
    if 14 <= age <= 24 and rng.random() < 0.04:
        return Status.REOPENED.value
    return None


def simulate(rng: random.Random, office: Office, received_at: datetime, now: datetime, *,
             trace: bool = True, phones: list[str] | None = None, hold: str | None = None) -> Case:
    """One case from receipt to wherever it has got by ``now`` (or to the status ``hold``, if it gets there)."""
    category = _weighted(rng, CATEGORY_WEIGHTS)
    template = rng.choice(TEMPLATES[category])
    channel = _weighted(rng, CHANNEL_WEIGHTS)
    lead = office.department_for(template, rng)
    if phones and rng.random() < 0.08:
        phone = rng.choice(phones[-40:])  # a repeat complainant: the same number again, soon after
    else:
        phone = _phone(rng) if rng.random() < 0.92 else None
        if phone and phones is not None:
            phones.append(phone)
    officer_id, officer_label = office.officer
    values: dict[str, Any] = {
        "institution_id": office.institution.id, "channel": channel,
        "channel_ref": f"12345-{received_at:%Y%m%d}{rng.randrange(10**5):05d}" if channel == "hotline_12345" else "",
        "received_at": received_at,
        "first_contact_id": None if channel in ("self_service", "survey_alert") else officer_id,
        "category_id": office.categories.get(category),
        "touchpoint_id": office.touchpoints.get(template.touchpoint) if template.touchpoint else None,
        "subject": template.subject, "description": template.description, "wish": template.wish,
        "staff_involved": "", "complainant_name": _person(rng), "complainant_phone": phone,
        "complainant_relation": "self" if rng.random() < 0.7 else "family", "status": Status.REGISTERED.value,
        "lead_department_id": None, "safety_emergency": category == "quality_safety" and rng.random() < 0.3,
        "decline_reason": None, "decline_notice": "", "settlement_note": "", "deadline_rule": None,
        "working_days": None, "due_at": None, "due_date": None, "deadline_provisional": False, "deadline_trace": {},
        "paused_since": None, "pause_reason": None, "first_response_at": None, "replied_at": None,
        "closed_at": None, "resolved": None, "satisfaction": None, "reopened_count": 0, "lookup_code_hash": "",
        "version": 1, "created_at": received_at, "updated_at": received_at,
    }
    # A simulated emergency was notified when it happened: the notice sweep owes it nothing.
    values["emergency_notified_at"] = received_at if values["safety_emergency"] else None
    case = Case(values)
    case.concerned.append(lead)
    tz = local_timezone()
    state: dict[str, Any] = {"status": Status.REGISTERED.value, "at": received_at,
                             "held": hold == Status.REGISTERED.value}

    def step(at: datetime, action: str, to: str | None = None, *, actor=office.officer, note: str = "",
             data: dict[str, Any] | None = None) -> datetime:
        if at > now or (to and state["held"]):
            raise _Later
        before = state["status"]
        if to:
            state["status"] = to
            state["held"] = to == hold
        state["at"] = at
        case.events.append({"at": at, "actor_id": actor[0], "actor_label": actor[1], "action": action,
                            "from_status": before if to else None, "to_status": to, "note": note,
                            "data": data or {}})
        return at

    def later(at: datetime, low_hours: float, high_hours: float) -> datetime:
        """Some hours after ``at``, moved into office hours (staff act by day; complainants at any time)."""
        moved = (at + timedelta(hours=rng.uniform(low_hours, high_hours))).astimezone(tz)
        if moved.hour < 8:
            moved = moved.replace(hour=8, minute=rng.randrange(60))
        elif moved.hour >= 18:
            moved = (moved + timedelta(days=1)).replace(hour=8, minute=rng.randrange(60))
        return moved.astimezone(UTC)

    def on_working_day(day: date, low: float = 8.5, high: float = 17.0) -> datetime:
        return _local(day, rng.uniform(low, high))

    try:
        step(received_at, "registered", data={"channel": channel, "category": category})
        # The clock starts at receipt (intake.register_complaint): the standard rule, whatever happens next.
        values.update(_due(received_at, 5, DeadlineRule.STANDARD.value, trace=trace, now=now))
        step(received_at, "deadline_set",
             note=f"办理期限：{values['due_date'].isoformat()}（5 个工作日，自接到投诉次日起计算）",
             data={"due_date": values["due_date"].isoformat(), "rule": DeadlineRule.STANDARD.value})
        kind = rng.random() if hold is None else 1.0
        if kind < 0.05:  # declined (不予受理): a legal reason and the notice
            reason = _weighted(rng, DECLINE_WEIGHTS)
            at = step(later(received_at, 0.5, 20), "decline", Status.DECLINED.value, note=str(reason.label),
                      data={"reason": reason.value})
            values.update(decline_reason=reason.value, decline_notice=default_decline_notice(reason),
                          first_response_at=at, closed_at=at)
            return _finish(case, state)
        if kind < 0.17:  # settled on the spot (当场办结)
            at = step(received_at + timedelta(minutes=rng.uniform(10, 50)), "settle", Status.SETTLED.value,
                      note="当场向投诉人解释并致歉，投诉人表示理解。")
            values.update(settlement_note="当场核实情况，向投诉人解释并致歉，投诉人表示理解，不再追究。",
                          first_response_at=at, replied_at=at, closed_at=at, resolved=True)
            return _finish(case, state)

        complex_case = rng.random() < 0.15
        co = None
        if complex_case:
            others = [d for d in office.departments.values() if d != lead]
            co = rng.choice(others) if others else None
            complex_case = co is not None
        days = 10 if complex_case else 5
        rule = (DeadlineRule.COMPLEX if complex_case else DeadlineRule.STANDARD).value
        accepted = step(later(received_at, 0.3, 20), "accept", Status.ACCEPTED.value)
        assigned = later(accepted, 0.2, 12)
        wrong = None
        if rng.random() < 0.07 or hold == Status.TRANSFERRED.value:  # first routed elsewhere, then transferred
            wrong = rng.choice([d for d in office.departments.values() if d not in (lead, co)] or [None])
        first = wrong or lead
        step(assigned, "assign", Status.IN_HANDLING.value, data={"department": first})
        values["lead_department_id"] = first
        if complex_case:  # a co-handler at assignment: the 10-day rule, still counted from receipt (routing)
            before = values["due_date"]
            values.update(_due(received_at, days, rule, trace=trace, now=now))
            step(assigned, "deadline_set",
                 note=f"涉及多个科室，按 {days} 个工作日重新计算办理期限：{values['due_date'].isoformat()}。",
                 data={"rule": rule, "from": before.isoformat(), "to": values["due_date"].isoformat()})
        case.departments.append({"department_id": first, "role": "lead", "assigned_at": assigned,
                                 "due_at": values["due_at"], "active": True})
        receipt_day = local_date(received_at)
        if co is not None:
            case.concerned.append(co)
            co_due = _local(_working_day(receipt_day, 6), 24)
            co_row = {"department_id": co, "role": "co", "assigned_at": assigned, "due_at": co_due, "active": True}
            case.departments.append(co_row)
        if wrong is not None:
            transferred = step(later(assigned, 2, 24), "transfer", Status.TRANSFERRED.value,
                               actor=office.drafter(wrong), note="非本科室职责范围，申请转办。",
                               data={"from": wrong, "to": lead})
            case.departments[0]["active"] = False
            case.departments.append({"department_id": lead, "role": "lead", "assigned_at": transferred,
                                     "due_at": values["due_at"], "active": True})
            values["lead_department_id"] = lead
            step(later(transferred, 1, 30), "receive", Status.IN_HANDLING.value, actor=office.drafter(lead),
                 note="已接收转办。")
        if co is not None:
            answered = on_working_day(_working_day(receipt_day, rng.randint(2, 6)))
            if answered <= now:
                co_row.update(answer="本科室已配合调查，相关情况已书面反馈主办科室。", answered_at=answered,
                              answered_by_id=office.officer[0])
        # When the reply is drafted: mostly within the deadline, some late.
        late = rng.random() < 0.12 and hold is None
        # A case held at a later status must get there: its reply comes within three working days.
        soon = rng.randint(1, 3) if hold is not None else rng.randint(1, days - 1)
        reply_day = _working_day(receipt_day, days + rng.randint(1, 4) if late else soon)
        drafter = office.drafter(lead)
        reviewer = office.reviewer if drafter == office.officer else office.officer
        drafted = max(on_working_day(reply_day, 8.5, 14), state["at"] + timedelta(minutes=30))
        if drafted > now and state["status"] == Status.IN_HANDLING.value and rng.random() < 0.1:
            _pause(case, rng, state["at"], now, received_at, days, rule, trace)
        number = 1
        body = reply_body(template, office.institution)
        if rng.random() < 0.1 and hold != Status.REPLY_DRAFTED.value:  # the first draft goes back
            step(drafted, "draft_reply", Status.REPLY_DRAFTED.value, actor=drafter)
            case.replies.append(_reply(1, body, "submitted", drafter, drafted))
            returned = step(later(drafted, 1, 4), "return_reply", Status.IN_HANDLING.value, actor=reviewer,
                            note="请补充整改措施和完成时限。")
            case.replies[-1].update(status="returned", reviewed_by_id=reviewer[0], reviewed_at=returned,
                                    review_note="请补充整改措施和完成时限。")
            drafted = later(returned, 2, 20)
            number = 2
        step(drafted, "draft_reply", Status.REPLY_DRAFTED.value, actor=drafter)
        case.replies.append(_reply(number, body, "submitted", drafter, drafted))
        approved = step(later(drafted, 0.5, 6), "approve_reply", Status.REPLY_APPROVED.value, actor=reviewer)
        case.replies[-1].update(status="approved", reviewed_by_id=reviewer[0], reviewed_at=approved)
        sent = step(later(approved, 0.2, 3), "send_reply", Status.REPLIED.value)
        via = ReplyVia.SMS if phone else ReplyVia.LETTER
        case.replies[-1].update(status="sent", sent_at=sent, sent_via=via.value)
        values.update(first_response_at=sent, replied_at=sent)
        _outcomes(case, rng, office, template, category, lead, sent, now)
        closed_at = step(later(sent, 20, 96), "close", Status.CLOSED.value,
                         note="" if rng.random() < 0.87 else "投诉人诉求超出医院处理范围，已告知其他解决途径。")
        resolved = case.events[-1]["note"] == ""
        values.update(closed_at=closed_at, resolved=resolved)
        case.events[-1]["data"] = {"resolved": resolved}
        # The one-question satisfaction link after closing; an unhappy answer sometimes reopens the case (重办).
        link = {"created_at": closed_at, "expires_at": closed_at + timedelta(days=7), "comment": "",
                "new_facts": False, "reopened": False, "link_sent_at": closed_at + timedelta(minutes=5)}
        case.feedback.append(link)
        reopen = hold == Status.REOPENED.value
        answered = closed_at + timedelta(hours=rng.uniform(2, 120))
        if not reopen and (answered > link["expires_at"] or rng.random() > 0.68):
            raise _Later
        answer = "unsatisfied" if reopen else _weighted(rng, SATISFACTION_WEIGHTS)
        step(answered, "feedback_answered", actor=(None, "complainant"), data={"answer": answer})
        link.update(answered_at=answered, answer=answer)
        values["satisfaction"] = answer
        if answer != "unsatisfied" or (not reopen and rng.random() > 0.4):
            raise _Later
        link.update(comment="问题没有真正解决，科室只是口头道歉。", new_facts=True, reopen_status="requested")
        reopened = step(later(answered, 2, 30), "reopen", Status.REOPENED.value,
                        note="投诉人对处理结果不满意，重新办理。")
        link.update(reopen_status="accepted", reopened=True, reopen_decided_by_id=office.officer[0],
                    reopen_decided_at=reopened)
        values.update(reopened_count=1, closed_at=None, resolved=None)
        values.update(_due(reopened, days, rule, trace=trace, now=now))
        # Counted from the reopening as from a new receipt, and kept so (deadlines.reopen_deadline): a recompute
        # after a calendar edit must not count it from the first receipt again.
        values["deadline_trace"] = {**values["deadline_trace"], "reopened_at": reopened.isoformat()}
        step(later(reopened, 0.2, 30), "resume", Status.IN_HANDLING.value,
             note=f"重新办理期限：{values['due_date'].isoformat()}")
        redrafted = step(later(reopened, 20, 90), "draft_reply", Status.REPLY_DRAFTED.value, actor=drafter)
        case.replies.append(_reply(len(case.replies) + 1, body, "submitted", drafter, redrafted))
        approved = step(later(redrafted, 0.5, 5), "approve_reply", Status.REPLY_APPROVED.value, actor=reviewer)
        case.replies[-1].update(status="approved", reviewed_by_id=reviewer[0], reviewed_at=approved)
        sent = step(later(approved, 0.2, 2), "send_reply", Status.REPLIED.value)
        via = ReplyVia.SMS if phone else ReplyVia.LETTER
        case.replies[-1].update(status="sent", sent_at=sent, sent_via=via.value)
        values["replied_at"] = sent
    except _Later:
        pass
    return _finish(case, state)


def duplicate_of(rng: random.Random, office: Office, primary: Case, now: datetime) -> Case | None:
    """The same matter registered again (a call after a QR form, or the other way round), merged into ``primary``
    by the officer a few hours later; None if that would be after ``now``."""
    received = primary.values["received_at"] + timedelta(hours=rng.uniform(2, 30))
    if received > now:
        return None  # the second registration has not happened yet
    case = simulate(rng, office, received, now, hold=Status.REGISTERED.value)
    merged_at = case.events[-1]["at"] + timedelta(hours=rng.uniform(0.5, 6))
    if merged_at > now:
        return None
    channel = "phone" if primary.values["channel"] != "phone" else "self_service"
    keep = ("subject", "description", "wish", "complainant_name", "complainant_phone", "complainant_relation",
            "category_id", "touchpoint_id")
    case.values.update({k: primary.values[k] for k in keep}, channel=channel, channel_ref="",
                       first_contact_id=None if channel == "self_service" else office.officer[0],
                       status=Status.MERGED.value, updated_at=merged_at, version=2)
    case.events[0]["data"] = {"channel": channel}
    case.concerned = list(primary.concerned[:1])
    case.events.append({"at": merged_at, "actor_id": office.officer[0], "actor_label": office.officer[1],
                        "action": "merge", "from_status": Status.REGISTERED.value, "to_status": Status.MERGED.value,
                        "note": "", "data": {}})
    case.merged_into = primary
    return case


def link_duplicate(case: Case) -> None:
    """Once both have their numbers and ids: the duplicate's merged_into_id, and the two timelines naming each other."""
    primary = case.merged_into
    if primary is None:
        return
    case.values["merged_into_id"] = primary.values["id"]
    merge = case.events[-1]
    merge.update(note=f"已并入 {primary.values['case_number']}：同一事项重复登记",
                 data={"case_id": primary.values["id"], "case_number": primary.values["case_number"]})
    primary.events.append({"at": merge["at"], "actor_id": merge["actor_id"], "actor_label": merge["actor_label"],
                           "action": "merged_in", "from_status": None, "to_status": None,
                           "note": f"合并了 {case.values['case_number']}：同一事项重复登记",
                           "data": {"case_id": case.values["id"], "case_number": case.values["case_number"]}})


def _reply(number: int, body: str, status: str, drafter: tuple[int | None, str], at: datetime) -> dict[str, Any]:
    return {"number": number, "body": body, "status": status, "drafted_by_id": drafter[0], "drafted_at": at,
            "review_note": "", "sent_via": ""}


def _pause(case: Case, rng: random.Random, since: datetime, now: datetime, received_at: datetime, days: int,
           rule: str, trace: bool) -> None:
    """The case waits for the complainant's material: the clock stands still from ``started``."""
    started = max(since, now - timedelta(hours=rng.uniform(6, 72)))
    case.values.update(paused_since=started, pause_reason="awaiting_material")
    case.pauses.append({"reason": "awaiting_material", "started_at": started, "ended_at": None,
                        "started_by_id": case.events[-1]["actor_id"]})
    case.events.append({"at": started, "actor_id": case.events[-1]["actor_id"],
                        "actor_label": case.events[-1]["actor_label"],
                        "action": "paused", "from_status": None, "to_status": None,
                        "note": "待投诉人补充就诊记录和票据，暂停计时。", "data": {"reason": "awaiting_material"}})
    case.values.update(_due(received_at, days, rule, trace=trace, pauses=[(started, None)], now=now))


def _outcomes(case: Case, rng: random.Random, office: Office, template: Template, category: str, lead: int,
              sent: datetime, now: datetime) -> None:
    """Rectifications (整改, 挂账销号) and, for price complaints, refunds."""
    if category != "security" and rng.random() < 0.35:
        owner = office.drafter(lead)
        verifier = office.reviewer if owner == office.officer else office.officer
        due = local_date(sent) + timedelta(days=rng.choice((14, 21, 30)))
        row = {"institution_id": office.institution.id, "department_id": lead,
               "action": template.measure or "针对投诉反映的问题制定整改措施并落实。",
               "owner_id": owner[0] or office.officer[0],
               "due_date": due, "status": "open", "evidence": "", "created_at": sent}
        age = (now - sent).days
        if age > 7 and rng.random() < 0.8:
            done = sent + timedelta(days=rng.uniform(3, min(age, 25)))
            row.update(status="done", evidence="整改措施已落实，相关培训记录和检查记录已存档。", done_at=done,
                       done_by_id=row["owner_id"])
            if done + timedelta(days=2) < now and rng.random() < 0.75:
                row.update(status="verified", verified_by_id=verifier[0],
                           verified_at=done + timedelta(days=rng.uniform(1, 5)))
        if row["owner_id"] is not None:
            case.rectifications.append(row)
    if category == "charges" and rng.random() < 0.55:
        amount = Decimal(rng.randrange(1500, 90000)) / 100
        requester = office.drafter(lead)
        requested = sent - timedelta(hours=rng.uniform(2, 20))
        row = {"institution_id": office.institution.id, "amount": amount,
               "reason": "经核实存在重复计费，按规定退还多收费用。",
               "status": "requested", "requested_by_id": requester[0] or office.officer[0], "requested_at": requested,
               "decision_note": "", "payment_ref": ""}
        roll = rng.random()
        if roll < 0.9:
            row.update(status="approved", decided_by_id=office.reviewer[0], decided_at=requested + timedelta(hours=3))
            if roll < 0.75 and requested + timedelta(days=2) < now:
                row.update(status="completed", completed_at=requested + timedelta(days=rng.uniform(1, 3)),
                           completed_by_id=office.officer[0],
                           payment_ref=f"TF{requested:%Y%m%d}{rng.randrange(10**4):04d}")
        elif roll < 0.95:
            row.update(status="rejected", decided_by_id=office.reviewer[0], decided_at=requested + timedelta(hours=5),
                       decision_note="经核实收费符合规定，已向投诉人说明。")
        if row["requested_by_id"] is not None:
            case.refunds.append(row)


def _finish(case: Case, state: dict[str, Any]) -> Case:
    values = case.values
    values["status"] = state["status"]
    values["updated_at"] = max(e["at"] for e in case.events)
    values["version"] = 1 + sum(1 for e in case.events if e["to_status"])
    # Rows that need a member of staff are left out where the institution has none.
    case.replies = [r for r in case.replies if r["drafted_by_id"] is not None]
    case.rectifications = [r for r in case.rectifications if r["owner_id"] is not None]
    case.refunds = [r for r in case.refunds if r["requested_by_id"] is not None]
    return case


def received_times(rng: random.Random, n: int, *, days: int, now: datetime,
                    recent_share: float = 0.0) -> list[datetime]:
    """``n`` receipt times over the last ``days`` days (``recent_share`` of them in the last 30 days): working
    hours, fewer at weekends, none in the future."""
    today = local_today(now)
    times = []
    while len(times) < n:
        day = today - timedelta(days=rng.randrange(min(days, 30) if rng.random() < recent_share else days))
        if day.weekday() >= 5 and rng.random() < 0.6:
            continue
        at = _local(day, rng.triangular(7.5, 20.5, 10))
        if at < now - timedelta(minutes=20):
            times.append(at)
    return sorted(times)
