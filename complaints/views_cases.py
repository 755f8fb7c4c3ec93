"""Staff pages for working a case: the case page and its actions (the queues and routing rules: views_queues).

Thin views: form → service → commit → redirect. Every action form carries the case version it was
rendered with; a stale page gets "该案件刚被其他人更新…" (409) and changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from complaints import access, case_page, cohandling, corrections, pauses, routing, tasks, triage
from complaints.blueprints import case_url
from complaints.blueprints import staff_bp as bp
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
from complaints.models import (
    CaseDepartment,
    CaseRole,
    Category,
    Complaint,
    DeclineReason,
    Extension,
    PauseReason,
)
from core.extensions import db
from core.tasks import QUEUE_HIGH, enqueue
from core.views import handle_form
from organisation.models import Department, Institution, StaffUser


def actor() -> StaffUser:
    return current_user._get_current_object()


# Loading a case --------------------------------------------------------------------

def load_case(institution_id: int, case_id: int) -> tuple[Institution, Complaint]:
    """The case, if the user may see it (complaints.access): a handler only the cases of their departments."""
    return access.load_case_or_404(institution_id, case_id)


# The case page ----------------------------------------------------------------------

def render_case(institution: Institution, complaint: Complaint, *, bound: dict[str, Any] | None = None,
                status: int = 200):
    page = case_page.build(actor(), institution, complaint, bound=bound)
    return render_template("complaints/case.html", **page.context()), status


@bp.get("/<int:case_id>")
def case(institution_id: int, case_id: int):
    institution, complaint = load_case(institution_id, case_id)
    return render_case(institution, complaint)


# Acting on a case ---------------------------------------------------------------------

def act(institution_id: int, case_id: int, name: str, form_class, run: Callable[[Any, Complaint], Any],
        success: str, *, who: Callable[[StaffUser, Complaint], bool],
        after: Callable[[Complaint, Any], None] | None = None, prefix: str | None = None):
    """An action form on the case page: core.views.handle_form, then follow-up jobs and back to the case.

    ``who`` (a complaints.access rule) says who may take the step: anyone else is refused (403) before the
    form is read, so that a refused user never learns from its validation. A stale page is 409 with the case
    as it is now; a refusal of the service (a second person, the case's status) 403; bad input 400 with the
    form kept.
    """
    institution, complaint = load_case(institution_id, case_id)
    user = actor()
    prefix = prefix or name
    if not who(user, complaint):
        return refuse(institution, complaint)
    if complaint.merged_into_id is not None:
        flash(gettext("该案件已合并，只能查看。"), "error")
        return render_case(institution, complaint, status=409)
    form = form_class(prefix=prefix)
    case_page.prepare_form(form, institution, complaint)

    def rerender(form, status: int):
        fresh_institution, fresh = load_case(institution_id, case_id)  # as it is now, after the rollback
        if status == 400:
            return render_case(fresh_institution, fresh, bound={prefix: form}, status=status)
        for message in form.form_errors:  # a stale page or a refusal: the message, above the case as it is now
            flash(message, "warning" if status == 409 else "error")
        return render_case(fresh_institution, fresh, status=status)

    def next_url(_result) -> str:
        if not access.may_see_case(user, complaint):  # e.g. a handler who transferred the case away
            return url_for("complaints_staff.department_queue", institution_id=institution.id)
        return case_url(complaint)

    return handle_form(form, lambda: run(form, complaint), success=success, next_url=next_url, render=rerender,
                       after=(lambda result: after(complaint, result)) if after is not None else None)


def refuse(institution: Institution, complaint: Complaint):
    """A step the user may not take: the case as it is, with why (403)."""
    flash(gettext("您不能对该案件执行此操作，或案件状态已变化。"), "error")
    return render_case(institution, complaint, status=403)


def _department(form_field) -> Department | None:
    return db.session.get(Department, form_field.data) if form_field.data else None


@bp.post("/<int:case_id>/accept")
def accept(institution_id: int, case_id: int):
    return act(institution_id, case_id, "accept", AcceptForm,
               lambda form, c: triage.accept_complaint(c, actor=actor(), expected_version=form.expected_version),
               gettext("已受理。办理期限自接到投诉次日起计算，不因受理而改变。"), who=access.is_officer)


@bp.post("/<int:case_id>/settle")
def settle(institution_id: int, case_id: int):
    return act(institution_id, case_id, "settle", SettleForm,
               lambda form, c: triage.settle_on_the_spot(c, form.note.data, actor=actor(),
                                                          expected_version=form.expected_version),
               gettext("已登记为当场办结。"), who=access.is_officer)


@bp.route("/<int:case_id>/decline", methods=["GET", "POST"])
def decline(institution_id: int, case_id: int):
    """Step two of declining: the notice for the chosen reason, editable, then confirm."""
    institution, complaint = load_case(institution_id, case_id)
    if request.method == "GET":
        if not access.is_officer(actor(), complaint):
            return refuse(institution, complaint)
        if "decline" not in case_page.available_forms(actor(), complaint):
            flash(gettext("该案件当前不能执行“不予受理”。"), "error")
            return redirect(case_url(complaint))
        choice = DeclineChoiceForm(request.args)
        reason = choice.reason.data if choice.validate() else DeclineReason.IN_COURT.value
        form = DeclineForm(formdata=None, prefix="decline", data={
            "version": complaint.version, "reason": reason, "notice": triage.default_decline_notice(reason)})
        return render_template("complaints/cases/decline.html", institution=institution, complaint=complaint,
                               form=form, has_phone=bool(complaint.complainant_phone))

    def run(form, c):
        return triage.decline_complaint(c, DeclineReason(form.reason.data), form.notice.data, actor=actor(),
                                          expected_version=form.expected_version)

    def after(c, _result):
        if c.complainant_phone:
            enqueue(tasks.send_decline_notice, c.id, queue=QUEUE_HIGH)

    return act(institution_id, case_id, "decline", DeclineForm, run, gettext("已登记为不予受理。"), after=after,
               who=access.is_officer)


@bp.post("/<int:case_id>/assign")
def assign(institution_id: int, case_id: int):
    def run(form, c):
        co = [d for d in (db.session.get(Department, i) for i in form.co.data or []) if d is not None]
        return routing.assign_department(c, _department(form.lead), co=co, actor=actor(),
                                         expected_version=form.expected_version)

    def after(c, _result):
        active = [cd for cd in c.departments if cd.active]
        for cd in active:
            enqueue(tasks.notify_department, c.id, cd.department_id,
                    tasks.ASSIGNED if cd.role == CaseRole.LEAD else tasks.CO_HANDLING)
        warn_unheard(c, {cd.department_id for cd in active})

    return act(institution_id, case_id, "assign", AssignForm, run, gettext("已分派。"), after=after,
               who=access.is_officer)


def warn_unheard(complaint: Complaint, department_ids: set[int]) -> None:
    """Say so when a case was routed to a department with no handler account: no notice reaches it."""
    heard = {d for u in tasks.department_handlers(complaint.institution_id, department_ids) for d in u.department_ids}
    names = sorted(d.name for d in (db.session.get(Department, i) for i in department_ids - heard) if d is not None)
    if names:
        message = gettext("注意：%(names)s 没有绑定科室处理人账号，系统无法通知该科室。"
                          "请另行通知，或在“人员”中为其绑定处理人。", names="、".join(names))
        flash(message, "warning")


@bp.post("/<int:case_id>/co")
def add_co(institution_id: int, case_id: int):
    def run(form, c):
        return routing.add_co_department(c, _department(form.department), actor=actor(),
                                         expected_version=form.expected_version)

    def after(c, row):
        enqueue(tasks.notify_department, c.id, row.department_id, tasks.CO_HANDLING)
        warn_unheard(c, {row.department_id})

    return act(institution_id, case_id, "add_co", AddCoForm, run, gettext("已增加协办科室。"), after=after,
               who=access.is_officer)


@bp.post("/<int:case_id>/transfer")
def transfer(institution_id: int, case_id: int):
    def run(form, c):
        return routing.transfer_complaint(c, _department(form.lead), form.reason.data, actor=actor(),
                                          expected_version=form.expected_version)

    def after(c, _result):
        enqueue(tasks.notify_department, c.id, c.lead_department_id, tasks.TRANSFERRED)
        warn_unheard(c, {c.lead_department_id})

    return act(institution_id, case_id, "transfer", TransferForm, run, gettext("已转办。"), after=after,
               who=access.may_draft)


@bp.post("/<int:case_id>/receive")
def receive(institution_id: int, case_id: int):
    return act(institution_id, case_id, "receive", ReceiveForm,
               lambda form, c: routing.receive_transfer(c, actor=actor(), expected_version=form.expected_version),
               gettext("已接收转办。"), who=access.may_draft)


@bp.post("/<int:case_id>/pause")
def pause(institution_id: int, case_id: int):
    return act(institution_id, case_id, "pause", PauseForm,
               lambda form, c: pauses.pause_clock(c, PauseReason(form.reason.data), actor=actor(),
                                                    expected_version=form.expected_version, note=form.note.data or ""),
               gettext("已暂停计时。"), who=access.is_officer)


@bp.post("/<int:case_id>/resume")
def resume(institution_id: int, case_id: int):
    return act(institution_id, case_id, "resume", ResumeForm,
               lambda form, c: pauses.resume_clock(c, actor=actor(), expected_version=form.expected_version),
               gettext("已恢复计时，办理期限已重新计算。"), who=access.is_officer)


@bp.post("/<int:case_id>/extensions")
def request_extension(institution_id: int, case_id: int):
    return act(institution_id, case_id, "extension", ExtensionForm,
               lambda form, c: pauses.request_extension(c, form.extra_days.data, form.reason.data, actor=actor(),
                                                          expected_version=form.expected_version),
               gettext("延期申请已提交，待其他投诉管理人员审批。"), who=access.may_draft)


@bp.post("/<int:case_id>/extensions/<int:extension_id>")
def decide_extension(institution_id: int, case_id: int, extension_id: int):
    institution, complaint = load_case(institution_id, case_id)
    ext = db.session.get(Extension, extension_id)
    if ext is None or ext.complaint_id != complaint.id:
        abort(404)

    def run(form, c):
        return pauses.decide_extension(ext, bool(form.approve.data), form.note.data or "", actor=actor(),
                                         expected_version=form.expected_version)

    return act(institution_id, case_id, "decide", ExtensionDecisionForm, run, gettext("已审批延期申请。"),
               prefix=f"decide{extension_id}", who=access.is_officer)


def _co_row(complaint: Complaint, row_id: int) -> CaseDepartment:
    row = next((cd for cd in complaint.departments if cd.id == row_id and cd.role == CaseRole.CO and cd.active), None)
    if row is None:
        abort(404)
    return row


@bp.post("/<int:case_id>/co/<int:row_id>/answer")
def co_answer(institution_id: int, case_id: int, row_id: int):
    _institution, complaint = load_case(institution_id, case_id)
    row = _co_row(complaint, row_id)
    return act(institution_id, case_id, "co_answer", CoAnswerForm,
               lambda form, c: cohandling.record_co_answer(c, row, form.answer.data, actor=actor(),
                                                         expected_version=form.expected_version),
               gettext("协办意见已提交。"), prefix=f"co{row_id}",
               who=lambda user, c: access.is_officer(user, c) or access.handles_department(user, c, row.department_id))


@bp.post("/<int:case_id>/co/<int:row_id>/waive")
def co_waive(institution_id: int, case_id: int, row_id: int):
    _institution, complaint = load_case(institution_id, case_id)
    row = _co_row(complaint, row_id)
    return act(institution_id, case_id, "co_waive", WaiveForm,
               lambda form, c: cohandling.waive_co_answer(c, row, form.reason.data, actor=actor(),
                                                        expected_version=form.expected_version),
               gettext("已放行，主办科室可先行起草答复。"), prefix=f"waive{row_id}", who=access.is_officer)


# Corrections: the registration's facts, and merging a duplicate (complaints.corrections) --------------

@bp.post("/<int:case_id>/edit")
def edit_case(institution_id: int, case_id: int):
    def run(form, c):
        departments = [d for d in (db.session.get(Department, i) for i in form.departments.data or []) if d]
        return corrections.correct_case(
            c, subject=form.subject.data, channel=form.channel.data, channel_ref=form.channel_ref.data or "",
            category=db.session.get(Category, form.category.data) if form.category.data else None,
            departments=departments, lead=_department(form.lead) if "lead" in form else None,
            reason=form.reason.data or "", actor=actor(), expected_version=form.expected_version)

    def after(c, result):
        if result.transferred_to is not None:
            enqueue(tasks.notify_department, c.id, result.transferred_to.id, tasks.TRANSFERRED)
            warn_unheard(c, {result.transferred_to.id})

    return act(institution_id, case_id, "edit", EditCaseForm, run, gettext("已保存更正。"), after=after,
               who=access.is_officer)


@bp.post("/<int:case_id>/merge")
def merge_case(institution_id: int, case_id: int):
    return act(institution_id, case_id, "merge", MergeForm,
               lambda form, c: corrections.merge_case(c, form.primary.data, form.reason.data, actor=actor(),
                                                      expected_version=form.expected_version),
               gettext("已合并：本案已并入另一案件，由该案件统一办理和答复。"), who=access.is_officer)


# Wiring ---------------------------------------------------------------------------------
