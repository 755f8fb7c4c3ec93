"""The case page's view-model: everything complaints/case.html shows, read once and typed.

The view builds a CasePage for the user and the case (``build``), then renders the template with
its ``context()``. Which action forms appear is decided here from complaints.access and the
state machine, so the template holds no permission logic.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from flask import current_app, url_for
from flask_babel import format_date, gettext
from sqlalchemy import select

from complaints import access, cohandling, corrections, deadlines, pauses, routing, triage
from complaints.categories import categories_for, category_label
from complaints.forms_cases import (
    AcceptForm,
    AddCoForm,
    AssignForm,
    CoAnswerForm,
    DeclineChoiceForm,
    DeclineForm,
    EditCaseForm,
    ExtensionDecisionForm,
    ExtensionForm,
    MergeForm,
    PauseForm,
    ReceiveForm,
    ResumeForm,
    SettleForm,
    TransferForm,
    WaiveForm,
)
from complaints.intake import STAFF_CHANNELS
from complaints.models import (
    Attachment,
    CaseDepartment,
    CaseEvent,
    CasePause,
    CaseRole,
    Category,
    Channel,
    Complaint,
    DeadlineRule,
    DeclineReason,
    Extension,
    PauseReason,
    Status,
)
from complaints.settings import complaint_settings
from complaints.workflow import TRANSITIONS, Action, WorkflowError, allowed_actions, event_label
from core.clock import local_today
from core.db import utcnow
from core.enums import LabelledEnum
from core.extensions import db
from core.privacy import mask_name, mask_phone
from organisation.models import Institution, StaffUser, Touchpoint
from organisation.scope import Permission, can
from organisation.services import departments_for

# The action forms of the case page, by prefix (the transitions' and the clock's).
FORM_CLASSES = {
    "accept": AcceptForm, "settle": SettleForm, "decline": DeclineForm, "assign": AssignForm, "transfer": TransferForm,
    "receive": ReceiveForm, "pause": PauseForm, "resume": ResumeForm, "extension": ExtensionForm,
    "add_co": AddCoForm, "edit": EditCaseForm, "merge": MergeForm,
}
# Forms of the correction section (complaints/cases/_corrections.html), not of the 办理 card.
CORRECTION_FORMS = frozenset({"edit", "merge"})
TRANSITION_FORMS = (("accept", Action.ACCEPT), ("settle", Action.SETTLE), ("decline", Action.DECLINE),
                    ("assign", Action.ASSIGN), ("transfer", Action.TRANSFER), ("receive", Action.RECEIVE))


@dataclass
class CaseForms:
    """The action forms the user may use on this case, keyed by prefix (missing ones are None)."""

    forms: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.forms.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.forms

    def has_actions(self) -> bool:
        """Whether the 办理 card has a form to show (the corrections have their own section)."""
        return any(name not in CORRECTION_FORMS for name in self.forms)


def department_choices(institution: Institution, *, blank: str | None = None,
                       exclude: set[int] | frozenset[int] = frozenset()) -> list[tuple[Any, str]]:
    choices = [(d.id, d.name) for d in departments_for(institution, active_only=True) if d.id not in exclude]
    return ([("", blank)] if blank is not None else []) + choices


def prepare_form(form: Any, institution: Institution, complaint: Complaint) -> None:
    """Fill the department choices an action form needs."""
    if isinstance(form, AssignForm):
        form.lead.choices = department_choices(institution, blank=gettext("请选择"))
        form.co.choices = department_choices(institution)
    elif isinstance(form, TransferForm):
        lead_id = complaint.lead_department_id
        form.lead.choices = department_choices(institution, blank=gettext("请选择"),
                                               exclude=set() if lead_id is None else {lead_id})
    elif isinstance(form, AddCoForm):
        form.department.choices = department_choices(institution, blank=gettext("请选择"),
                                                     exclude=access.case_department_ids(complaint))
    elif isinstance(form, EditCaseForm):
        _prepare_edit(form, institution, complaint)


def _prepare_edit(form: EditCaseForm, institution: Institution, complaint: Complaint) -> None:
    """The correction form's choices: what may be chosen now, and whatever the case has already (even if retired)."""
    categories = categories_for(institution)
    if complaint.category_id is not None and complaint.category_id not in {c.id for c in categories}:
        current = db.session.get(Category, complaint.category_id)
        categories = [*categories, *([current] if current is not None else [])]
    form.category.choices = [(c.id, category_label(c)) for c in categories]
    channels = list(STAFF_CHANNELS)
    if Channel(complaint.channel) not in channels:
        channels.insert(0, Channel(complaint.channel))
    form.channel.choices = [(c.value, c.label) for c in channels]
    departments = department_choices(institution)
    known = {value for value, _label in departments}
    form.departments.choices = departments + [(d.id, d.name) for d in complaint.concerned_departments
                                              if d.id not in known]
    # Another lead department is a transfer (complaints.routing): offered where a transfer is possible.
    if complaint.lead_department_id is None or Status(complaint.status) not in TRANSITIONS[Action.TRANSFER].sources:
        del form.lead
    else:
        lead = complaint.lead_department
        form.lead.choices = departments + ([(lead.id, lead.name)] if lead is not None and lead.id not in known else [])


def available_forms(user: StaffUser, complaint: Complaint) -> set[str]:
    """The action forms this user may use on this case now (none on a case merged into another)."""
    if complaint.merged_into_id is not None:
        return set()
    actions = set(allowed_actions(user, complaint))
    names = {name for name, action in TRANSITION_FORMS if action in actions}
    officer = access.is_officer(user, complaint)
    if officer:
        names.add("edit")
    if Action.MERGE in actions and not corrections.merged_cases(complaint):  # a primary is not merged away
        names.add("merge")
    if complaint.is_open:
        if officer:
            names.add("resume" if complaint.paused_since is not None else "pause")
            if complaint.lead_department_id is not None:
                names.add("add_co")
        if (officer or access.leads(user, complaint)) and pauses.pending_extension(complaint) is None:
            names.add("extension")
    return names


def new_form(name: str, institution: Institution, complaint: Complaint) -> Any:
    """An unbound action form, pre-filled (the proposed department, the default decline notice)."""
    data: dict[str, Any] = {"version": complaint.version}
    if name == "assign":
        proposal = routing.propose(complaint)
        data["lead"] = proposal.department.id if proposal.department else None
    if name == "decline":
        reason = DeclineReason.IN_COURT
        data.update(reason=reason.value, notice=triage.default_decline_notice(reason))
    if name == "edit":
        data.update(subject=complaint.subject, category=complaint.category_id, channel=Channel(complaint.channel).value,
                    channel_ref=complaint.channel_ref, departments=[d.id for d in complaint.concerned_departments],
                    lead=complaint.lead_department_id)
    form = FORM_CLASSES[name](formdata=None, prefix=name, data=data)
    prepare_form(form, institution, complaint)
    return form


def _label_or_value(enum: type[LabelledEnum], value: str | None) -> Any:
    return enum(value).label if value is not None and enum.is_value(value) else value


@dataclass
class CasePage:
    """What the case page shows one user about one case."""

    institution: Institution
    complaint: Complaint
    forms: CaseForms
    can_manage: bool
    category: Category | None
    touchpoint: Touchpoint | None
    overdue: bool
    days_left: int | None
    rule_label: str
    trace: dict[str, Any]
    standard_days: int
    clock_running: bool                  # a case still to do: its answer deadline runs (from receipt)
    triage_days: int                     # the institution's triage target (受理时限), in working days
    triage_due: date | None              # the last day to triage a case awaiting triage
    triage_late: bool                    # awaiting triage beyond that day
    pauses: list[CasePause]
    extensions: list[Extension]
    decide_forms: dict[int, ExtensionDecisionForm]
    co_rows: list[CaseDepartment]
    co_forms: dict[int, CoAnswerForm]
    waive_forms: dict[int, WaiveForm]
    ready_problem: str | None
    former_leads: list[CaseDepartment]
    events: list[CaseEvent]
    people: dict[int, StaffUser]
    attachments: list[Any]
    proposal: routing.Proposal | None
    decline_choice: DeclineChoiceForm | None
    may_reissue_code: bool = False       # intake's section: a new lookup code for the complainant
    may_flag_emergency: bool = False     # intake's section: flag a quality-and-safety emergency now
    merged_into: Complaint | None = None                   # the case this duplicate was merged into
    merged_cases: list[Complaint] = field(default_factory=list)       # the duplicates merged into this case
    merge_candidates: list[Complaint] = field(default_factory=list)   # possible duplicates, offered to merge into
    merged_attachments: list[tuple[Complaint, Any]] = field(default_factory=list)  # the duplicates' evidence
    config_sections: list[tuple[int, str]] = field(default_factory=list)

    @property
    def show_contact(self) -> bool:
        """The complainant's name and number are for the officers, not the departments."""
        return self.can_manage

    def attachment_url(self, complaint: Complaint, attachment_id: int) -> str:
        return url_for("complaints_staff.attachment", institution_id=complaint.institution_id,
                       attachment_id=attachment_id)

    def context(self) -> dict[str, Any]:
        """The template's variables: the fields, and the small helpers it formats with."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        complaint = self.complaint
        values.update(
            case=complaint, version=complaint.version, show_contact=self.show_contact,
            status_label=complaint.status.label, channel_label=str(complaint.channel.label),
            attachment_url=self.attachment_url, event_label=event_label, mask_name=mask_name, mask_phone=mask_phone,
            weekday=weekday, pause_label=lambda v: _label_or_value(PauseReason, v),
            decline_label=lambda v: _label_or_value(DeclineReason, v))
        return values


def weekday(day: date) -> str:
    return format_date(day, "EEE")


def build(user: StaffUser, institution: Institution, complaint: Complaint, *,
          bound: dict[str, Any] | None = None) -> CasePage:
    """Read everything the case page needs for ``user``; ``bound`` forms (a refused post) replace fresh ones."""
    bound = bound or {}
    available = available_forms(user, complaint)
    forms = {name: new_form(name, institution, complaint) for name in available if name != "decline"}
    forms.update(bound)
    officer = access.is_officer(user, complaint)
    now = utcnow()
    settings = complaint_settings(complaint.institution_id)
    awaiting_triage = Status(complaint.status) == Status.REGISTERED

    co_rows = cohandling.co_departments(complaint)
    co_forms, waive_forms = {}, {}
    if complaint.is_open and complaint.merged_into_id is None:
        for cd in co_rows:
            if officer or cd.department_id in user.department_ids:
                co_forms[cd.id] = bound.get(f"co{cd.id}") or CoAnswerForm(
                    formdata=None, prefix=f"co{cd.id}", data={"version": complaint.version, "answer": cd.answer})
            if officer and cd.answered_at is None and cd.waived_at is None:
                waive_forms[cd.id] = bound.get(f"waive{cd.id}") or WaiveForm(
                    formdata=None, prefix=f"waive{cd.id}", data={"version": complaint.version})

    extensions = list(db.session.scalars(select(Extension).where(Extension.complaint_id == complaint.id)
                                         .order_by(Extension.id)))
    decide_forms = {e.id: bound.get(f"decide{e.id}") or ExtensionDecisionForm(
        formdata=None, prefix=f"decide{e.id}", data={"version": complaint.version})
        for e in extensions if complaint.merged_into_id is None and pauses.may_decide_extension(user, e, complaint)}
    merged = corrections.merged_cases(complaint)
    merged_attachments = [(case, row) for case in merged for row in _attachments(case)]
    events = list(db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == complaint.id)
                                     .order_by(CaseEvent.at, CaseEvent.id)))
    people_ids = ({e.requested_by_id for e in extensions} | {e.decided_by_id for e in extensions}
                  | {cd.answered_by_id for cd in co_rows} | {cd.waived_by_id for cd in co_rows}
                  | {e.actor_id for e in events}) - {None}
    # The intake section's buttons: what its endpoints allow (MANAGE_COMPLAINTS; not on a merged case, and
    # no emergency on a case already flagged or finished, as emergency.flag_emergency refuses).
    may_reissue = can(user, Permission.MANAGE_COMPLAINTS, institution) and complaint.merged_into_id is None
    ready_problem = None
    if co_rows and complaint.is_open:
        try:
            cohandling.check_ready_to_reply(complaint)
        except WorkflowError as exc:
            ready_problem = str(exc)
    return CasePage(
        institution=institution, complaint=complaint, forms=CaseForms(forms), can_manage=officer,
        category=db.session.get(Category, complaint.category_id) if complaint.category_id else None,
        touchpoint=db.session.get(Touchpoint, complaint.touchpoint_id) if complaint.touchpoint_id else None,
        overdue=deadlines.is_overdue(complaint, now),
        days_left=deadlines.working_days_left(complaint, local_today(now)),
        rule_label=str(_label_or_value(DeadlineRule, complaint.deadline_rule) or ""),
        trace=complaint.deadline_trace or {},
        standard_days=settings.standard_days,
        clock_running=Status(complaint.status) in Status.to_do(),
        triage_days=settings.triage_days,
        triage_due=deadlines.triage_due_date(complaint.received_at, settings.triage_days) if awaiting_triage else None,
        triage_late=deadlines.triage_late(complaint.status, complaint.received_at, settings.triage_days, now),
        pauses=list(db.session.scalars(select(CasePause).where(CasePause.complaint_id == complaint.id)
                                       .order_by(CasePause.started_at))),
        extensions=extensions, decide_forms=decide_forms, co_rows=co_rows, co_forms=co_forms,
        waive_forms=waive_forms, ready_problem=ready_problem,
        former_leads=[cd for cd in complaint.departments if cd.role == CaseRole.LEAD and not cd.active],
        events=events,
        people={u.id: u for u in db.session.scalars(select(StaffUser).where(StaffUser.id.in_(people_ids)))},
        attachments=_attachments(complaint),
        proposal=routing.propose(complaint) if "assign" in forms else None,
        decline_choice=DeclineChoiceForm(formdata=None) if "decline" in available else None,
        may_reissue_code=may_reissue,
        may_flag_emergency=(may_reissue and not complaint.safety_emergency
                            and Status(complaint.status) not in Status.finished()),
        config_sections=list(current_app.extensions.get("complaint_case_sections", [])),
        merged_into=access.merged_into(complaint), merged_cases=merged,
        merge_candidates=corrections.merge_candidates(complaint) if "merge" in forms else [],
        merged_attachments=merged_attachments,
    )


def _attachments(complaint: Complaint) -> list[Any]:
    """A case's attachments without their bytes."""
    return list(db.session.execute(
        select(Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size,
               Attachment.uploaded_at).where(Attachment.complaint_id == complaint.id).order_by(Attachment.id)))
