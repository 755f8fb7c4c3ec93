"""Pages for what a case produces: replies, closing, feedback and 重办 (rectification and refunds: views_remedies).

The case page shows each of them as a section (registered in init_app); the
actions here are forms on their own small pages that commit once and return
to the case page. The complainant's satisfaction page is public (/c/feedback/<token>).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Flask, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from complaints import access, case_section, tasks
from complaints import feedback as feedback_service
from complaints import rectification as remedies
from complaints import replies as reply_service
from complaints.blueprints import case_url, case_url_by_id, public_bp, staff_bp
from complaints.forms_outcomes import (
    CaseVersionForm,
    CloseForm,
    FeedbackForm,
    PhoneFeedbackForm,
    RefuseReopenForm,
    ReplyDraftForm,
    ReplyReturnForm,
    SendReplyForm,
)
from complaints.models import (
    Complaint,
    Feedback,
    Rectification,
    Refund,
    Reply,
    ReplyStatus,
    Satisfaction,
    Status,
)
from complaints.views_cases import render_case
from complaints.workflow import Action, may
from core import notify
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.privacy import mask_phone
from core.public import render_notice
from core.tasks import enqueue, try_enqueue
from core.views import handle_form
from organisation.models import Institution, StaffUser
from organisation.scope import Permission, get_institution_or_404, get_owned_or_404


def actor() -> StaffUser:
    return current_user._get_current_object()


# Loading, always scoped ---------------------------------------------------------------------

def working_case(institution_id: int, case_id: int) -> tuple[Institution, Complaint]:
    """A case of the institution that the current user works (handlers: their departments' cases only)."""
    return access.load_case_or_404(institution_id, case_id, work=True)


def officer_case(institution_id: int, case_id: int) -> tuple[Institution, Complaint]:
    """A case, for a step only officers take (review, send, close, 重办): anyone else who works it gets 403."""
    institution, complaint = working_case(institution_id, case_id)
    access.require_officer(complaint)
    return institution, complaint


def _child(model: type, row_id: int, complaint: Complaint):
    row = db.session.get(model, row_id)
    if row is None or row.complaint_id != complaint.id:
        abort(404)
    return row


def scoped_row(model: type, institution_id: int, row_id: int) -> tuple[Institution, Complaint, Any]:
    institution = get_institution_or_404(institution_id, Permission.HANDLE_COMPLAINTS)
    row = get_owned_or_404(model, row_id, institution)
    complaint = db.session.get(Complaint, row.complaint_id)
    if not access.may_work_case(actor(), complaint) and getattr(row, "owner_id", None) != actor().id:
        abort(404)
    return institution, complaint, row


def form_version(form) -> int | None:
    return form.version.data if getattr(form, "version", None) is not None else None


def version_form(form_class, complaint: Complaint, **kwargs):
    form = form_class(**kwargs)
    if request.method == "GET":
        form.version.data = complaint.version
    return form


def post_action(complaint: Complaint, action: Callable[[int | None], Any], success: str, anchor: str):
    """A button without fields (approve, verify, accept): core.views.handle_form, back to the case section;
    a refusal is shown above the case page as it is now, with its status (400, 403 or 409)."""
    form = CaseVersionForm()

    def rerender(form, status: int):
        if not form.form_errors:
            abort(400)  # a post without its hidden fields: not a page of ours
        for message in form.form_errors:
            flash(message, "warning" if status == 409 else "error")
        institution = db.session.get_one(Institution, complaint.institution_id)
        return render_case(institution, db.session.get_one(Complaint, complaint.id), status=status)

    return handle_form(form, lambda: action(form.version.data), success=success,
                       next_url=lambda _result: case_url(complaint, anchor), render=rerender,
                       redirect_code=303)


# What the case page sections show -----------------------------------------------------------

@dataclass
class Outcomes:
    """Everything the replies / feedback / rectification / refund sections of a case page need."""

    complaint: Complaint
    institution_id: int
    replies: list[Reply] = field(default_factory=list)
    latest: Reply | None = None
    feedback: list[Feedback] = field(default_factory=list)
    rectifications: list[Rectification] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    price_complaint: bool = False
    today: date | None = None
    can_draft: bool = False
    can_review: bool = False
    can_send: bool = False
    can_close: bool = False
    is_officer: bool = False
    can_handle: bool = False
    names: dict[int, str] = field(default_factory=dict)
    undelivered: set[int] = field(default_factory=set)  # replies recorded as texted or e-mailed with no gateway
    sms_delivers: bool = True  # an SMS gateway is configured: feedback links reach the complainant

    def name(self, user_id: int | None) -> str:
        return self.names.get(user_id, "—") if user_id else "—"

    def superseded(self, reply: Reply) -> bool:
        return reply.status == ReplyStatus.SUBMITTED and self.latest is not None and reply.id != self.latest.id

    def overdue(self, rectification: Rectification) -> bool:
        return remedies.is_overdue(rectification, self.today)

    def expired(self, feedback: Feedback) -> bool:
        return feedback.answered_at is None and utcnow() >= feedback.expires_at


def case_outcomes(complaint: Complaint) -> Outcomes:
    """Read once per case page (the four sections share it): replies, feedback, remedies, what the user may do."""
    cache = g.setdefault("complaint_outcomes", {})
    key = (complaint.id, complaint.version)
    if key not in cache:
        cache[key] = _read_outcomes(complaint)
    return cache[key]


def _read_outcomes(complaint: Complaint) -> Outcomes:
    user = actor()
    replies = reply_service.replies_for(complaint)
    o = Outcomes(complaint=complaint, institution_id=complaint.institution_id, replies=replies,
                 latest=replies[-1] if replies else None, feedback=feedback_service.feedback_for(complaint),
                 rectifications=remedies.rectifications_for(complaint), refunds=remedies.refunds_for(complaint),
                 price_complaint=remedies.is_price_complaint(complaint), today=local_today())
    o.is_officer = access.is_officer(user, complaint)
    o.can_handle = access.may_work_case(user, complaint)
    o.can_draft = reply_service.can_start_draft(user, complaint)
    o.can_review = may(user, complaint, Action.APPROVE_REPLY)
    o.can_send = may(user, complaint, Action.SEND_REPLY)
    o.can_close = may(user, complaint, Action.CLOSE)
    o.sms_delivers = notify.delivers("sms")
    o.undelivered = {e.data.get("reply") for e in complaint.events
                     if e.action == Action.SEND_REPLY.value and (e.data or {}).get("delivered") is False}
    ids = {r.drafted_by_id for r in replies} | {r.reviewed_by_id for r in replies} | \
          {r.owner_id for r in o.rectifications} | {r.verified_by_id for r in o.rectifications} | \
          {r.done_by_id for r in o.rectifications} | {r.requested_by_id for r in o.refunds} | \
          {r.decided_by_id for r in o.refunds} | {r.completed_by_id for r in o.refunds} | \
          {f.reopen_decided_by_id for f in o.feedback} | {f.answered_by_id for f in o.feedback}
    ids.discard(None)
    if ids:
        o.names = dict(db.session.execute(select(StaffUser.id, StaffUser.display_name)
                                         .where(StaffUser.id.in_(ids))).all())
    return o


# Replies ----------------------------------------------------------------------------------

@staff_bp.route("/<int:case_id>/replies", methods=["GET"])
def reply_history(institution_id: int, case_id: int):
    institution, complaint = working_case(institution_id, case_id)
    return render_template("complaints/outcomes/replies.html", institution=institution, complaint=complaint,
                           o=case_outcomes(complaint))


@staff_bp.route("/<int:case_id>/replies/new", methods=["GET", "POST"])
def draft_reply(institution_id: int, case_id: int):
    institution, complaint = working_case(institution_id, case_id)
    if not reply_service.can_start_draft(actor(), complaint):
        flash(gettext("案件当前状态为“%(status)s”，或您不是主办科室的处理人，不能起草答复。",
                      status=Status(complaint.status).label), "error")
        return redirect(case_url(complaint, "replies"))
    form = version_form(ReplyDraftForm, complaint)
    templates = reply_service.reply_templates(institution)
    if request.method == "GET":
        chosen = next((t for t in templates if t.code == request.args.get("template")), None)
        latest = reply_service.latest_reply(complaint)
        if chosen is not None:
            form.body.data = reply_service.fill_template(chosen, complaint, institution)
        elif latest is not None:
            form.body.data = latest.body  # revising: start from the last version (it is kept as it was)
    return handle_form(form, lambda: reply_service.draft_reply(complaint, form.body.data, actor=actor(),
                                                            expected_version=form_version(form)),
                    success=gettext("答复已提交审核。"), next_url=lambda r: case_url(complaint, "replies"),
                    after=lambda r: enqueue(tasks.notify_reply_review, r.id),
                    template="complaints/outcomes/reply_draft.html", institution=institution, complaint=complaint,
                    templates=templates, o=case_outcomes(complaint))


@staff_bp.route("/<int:case_id>/replies/<int:reply_id>", methods=["GET"])
def reply_detail(institution_id: int, case_id: int, reply_id: int):
    institution, complaint = working_case(institution_id, case_id)
    reply = _child(Reply, reply_id, complaint)
    form = version_form(ReplyReturnForm, complaint)
    return render_template("complaints/outcomes/reply.html", institution=institution, complaint=complaint,
                           reply=reply, form=form, approve_form=version_form(CaseVersionForm, complaint),
                           o=case_outcomes(complaint))


@staff_bp.route("/<int:case_id>/replies/<int:reply_id>/approve", methods=["POST"])
def approve_reply(institution_id: int, case_id: int, reply_id: int):
    _institution, complaint = officer_case(institution_id, case_id)
    reply = _child(Reply, reply_id, complaint)
    return post_action(complaint, lambda v: reply_service.approve_reply(reply, actor=actor(), expected_version=v),
                        gettext("答复已审核通过，可以发送给投诉人。"), "replies")


@staff_bp.route("/<int:case_id>/replies/<int:reply_id>/return", methods=["POST"])
def return_reply(institution_id: int, case_id: int, reply_id: int):
    institution, complaint = officer_case(institution_id, case_id)
    reply = _child(Reply, reply_id, complaint)
    form = ReplyReturnForm()
    return handle_form(form, lambda: reply_service.return_reply(reply, form.note.data, actor=actor(),
                                                             expected_version=form_version(form)),
                    success=gettext("答复已退回起草人修改。"), next_url=lambda r: case_url(complaint, "replies"),
                    after=lambda r: enqueue(tasks.notify_reply_returned, r.id),
                    template="complaints/outcomes/reply.html", institution=institution, complaint=complaint,
                    reply=reply, approve_form=version_form(CaseVersionForm, complaint),
                    o=case_outcomes(complaint))


@staff_bp.route("/<int:case_id>/replies/send", methods=["GET", "POST"])
def send_reply(institution_id: int, case_id: int):
    institution, complaint = officer_case(institution_id, case_id)
    reply = reply_service.latest_reply(complaint)
    if reply is None or reply.status != ReplyStatus.APPROVED:
        flash(gettext("没有已审核的答复可以发送。"), "error")
        return redirect(case_url(complaint, "replies"))
    form = version_form(SendReplyForm, complaint)
    vias = reply_service.available_vias(complaint)
    form.via.choices = [(v.value, v.label) for v in vias]
    if reply_service.ReplyVia.EMAIL not in vias:
        del form.email  # no e-mail channel: the address field would only confuse
    if request.method == "GET":
        form.via.data = reply_service.default_via(complaint).value
    gateways = {via.value: notify.delivers(via.value) for via in vias if via != reply_service.ReplyVia.LETTER}
    success, warning = gettext("答复已发送并记录。"), None
    if gateways.get(form.via.data) is False:  # the officer must not think the complainant has it
        if form.via.data == reply_service.ReplyVia.SMS.value:
            success = gettext("答复已记录，但短信没有发出。")
            warning = gettext("系统未配置短信网关：请电话告知投诉人答复内容，或打印答复函寄送。")
        else:
            success = gettext("答复已记录，但电子邮件没有发出。")
            warning = gettext("系统未配置邮件网关：请打印答复函寄送，或用医院邮箱另行发送。")
    return handle_form(form, lambda: reply_service.send_reply(complaint, actor=actor(), via=form.via.data,
                                                           email=form.email.data if "email" in form else None,
                                                           expected_version=form_version(form)),
                    success=success, next_url=lambda r: case_url(complaint, None if warning else "replies"),
                    after=(lambda _r: flash(warning, "warning")) if warning else None,  # at the top, seen
                    template="complaints/outcomes/reply_send.html", institution=institution, complaint=complaint,
                    reply=reply, phone=mask_phone(complaint.complainant_phone), gateways=gateways)


@staff_bp.route("/<int:case_id>/replies/<int:reply_id>/print", methods=["GET"])
def print_reply(institution_id: int, case_id: int, reply_id: int):
    institution, complaint = working_case(institution_id, case_id)
    reply = _child(Reply, reply_id, complaint)
    if reply.status not in (ReplyStatus.APPROVED, ReplyStatus.SENT):
        abort(404)  # only an approved text ever leaves the hospital
    response = make_response(render_template("complaints/outcomes/reply_print.html", institution=institution,
                                             complaint=complaint, reply=reply,
                                             today=local_today()))
    response.headers["Cache-Control"] = "no-store"
    return response


@staff_bp.route("/<int:case_id>/close", methods=["GET", "POST"])
def close_case(institution_id: int, case_id: int):
    institution, complaint = officer_case(institution_id, case_id)
    form = version_form(CloseForm, complaint)
    result: dict[str, Feedback] = {}

    def close():
        result["feedback"] = reply_service.close_complaint(complaint, form.resolved.data == "yes", form.note.data,
                                                           actor=actor(), expected_version=form_version(form))
        return result["feedback"]

    response = handle_form(form, close, success=gettext("案件已办结。"), next_url=lambda f: case_url(complaint),
                        template="complaints/outcomes/close.html", institution=institution, complaint=complaint,
                        o=case_outcomes(complaint), phone=mask_phone(complaint.complainant_phone))
    if "feedback" in result and getattr(response, "status_code", 0) in (302, 303):
        try_enqueue(tasks.send_feedback_link, result["feedback"].id)
    return response


# Feedback and 重办 (staff side) --------------------------------------------------------------

@staff_bp.route("/<int:case_id>/feedback/<int:feedback_id>/accept", methods=["POST"])
def accept_reopen(institution_id: int, case_id: int, feedback_id: int):
    _institution, complaint = officer_case(institution_id, case_id)
    fb = _child(Feedback, feedback_id, complaint)
    return post_action(complaint, lambda v: feedback_service.accept_reopen(fb, actor=actor(), expected_version=v),
                        gettext("已重新办理，新的办理期限已计算。"), "feedback")


@staff_bp.route("/<int:case_id>/feedback/<int:feedback_id>/refuse", methods=["GET", "POST"])
def refuse_reopen(institution_id: int, case_id: int, feedback_id: int):
    institution, complaint = officer_case(institution_id, case_id)
    fb = _child(Feedback, feedback_id, complaint)
    form = version_form(RefuseReopenForm, complaint)
    response = handle_form(form, lambda: feedback_service.refuse_reopen(fb, form.reason.data, actor=actor(),
                                                                     expected_version=form_version(form)),
                        success=gettext("已记录不予重办及理由。"), next_url=lambda r: case_url(complaint, "feedback"),
                        template="complaints/outcomes/reopen_refuse.html", institution=institution,
                        complaint=complaint, fb=fb)
    if getattr(response, "status_code", 0) in (302, 303):
        try_enqueue(tasks.notify_reopen_refused, fb.id)
    return response


@staff_bp.route("/<int:case_id>/feedback/<int:feedback_id>/record", methods=["GET", "POST"])
def record_phone_feedback(institution_id: int, case_id: int, feedback_id: int):
    institution, complaint = officer_case(institution_id, case_id)
    fb = _child(Feedback, feedback_id, complaint)
    form = version_form(PhoneFeedbackForm, complaint)
    response = handle_form(form, lambda: feedback_service.answer_feedback(fb, form.answer.data, form.comment.data,
                                                                       form.new_facts.data, actor=actor()),
                        success=gettext("回访结果已记录。"), next_url=lambda r: case_url(complaint, "feedback"),
                        template="complaints/outcomes/feedback_record.html", institution=institution,
                        complaint=complaint, fb=fb, phone=complaint.complainant_phone)  # officers only: to dial it
    return response


# The complainant's satisfaction page (public) -----------------------------------------------------

def _feedback_notice(problem: str):
    if problem == "used":
        title, message, status = (gettext("您已经评价过了"),
                                  gettext("这次回访已经提交过评价，每个链接只能提交一次。感谢您的反馈！"), 409)
    elif problem == "expired":
        title, message, status = (gettext("评价链接已过期"),
                                  gettext("这个评价链接已超过有效期。"
                                          "如对处理结果仍有意见，请联系医院患者服务中心。"), 410)
    else:
        title, message, status = (gettext("链接无法识别"),
                                  gettext("请确认打开的是医院短信中的完整链接，或联系医院患者服务中心。"), 404)
    return render_notice(title, message, status)


@public_bp.route("/feedback/<token>", methods=["GET", "POST"])
def feedback(token: str):
    fb, problem = feedback_service.resolve_token(token)
    if problem == "used" and (request.method == "GET" or request.form.get("answer") == fb.answer):
        return _feedback_thanks(fb)  # after the redirect, or a retry of the same answer on a bad network
    if problem:
        return _feedback_notice(problem)
    complaint = db.session.get(Complaint, fb.complaint_id)
    institution = db.session.get(Institution, complaint.institution_id)
    form = FeedbackForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                feedback_service.answer_feedback(fb, form.answer.data, form.comment.data, form.new_facts.data)
            except feedback_service.FeedbackError as exc:
                db.session.rollback()
                if exc.problem:
                    return _feedback_notice(exc.problem)
                form.form_errors.append(str(exc))
            else:
                db.session.commit()  # stored before the complainant is told it was received
                if fb.reopen_status == feedback_service.ReopenStatus.REQUESTED:
                    try_enqueue(tasks.notify_reopen_request, fb.id)
                return redirect(url_for("complaints.feedback", token=token), code=303)
        status = 400
    reply = reply_service.visible_reply(complaint)
    response = make_response(render_template("complaints/feedback/form.html", form=form, complaint=complaint,
                                             institution=institution, reply=reply,
                                             action=url_for("complaints.feedback", token=token)), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _feedback_thanks(fb: Feedback):
    response = make_response(render_template("complaints/feedback/thanks.html", fb=fb,
                                             unhappy=fb.answer == Satisfaction.UNSATISFIED))
    response.headers["Cache-Control"] = "no-store"
    return response


# Wiring ---------------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:

    app.jinja_env.globals.update(complaint_outcomes=case_outcomes, complaint_case_url=case_url,
                                 complaint_case_url_by_id=case_url_by_id)
    case_section(app, "complaints/outcomes/_replies.html", 50)
    case_section(app, "complaints/outcomes/_feedback.html", 55)

