"""Pages for putting right what a case revealed: rectification (整改, 挂账销号) and refunds."""
from __future__ import annotations

from datetime import date

from flask import Flask, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from complaints import access, case_section
from complaints import rectification as remedies
from complaints.blueprints import case_url, staff_bp
from complaints.forms_outcomes import (
    RectificationCompleteForm,
    RectificationFilterForm,
    RectificationForm,
    RectificationReturnForm,
    RefundCompleteForm,
    RefundDecisionForm,
    RefundForm,
)
from complaints.models import (
    Complaint,
    Rectification,
    Refund,
)
from complaints.views_outcomes import actor, post_action, scoped_row, working_case
from core.clock import local_today
from core.extensions import db
from core.views import handle_form, paginate
from organisation.models import Department, Institution, StaffUser
from organisation.nav import register_nav
from organisation.scope import Permission, can, get_institution_or_404

# Rectification ---------------------------------------------------------------------------------

def _rectification_form(institution: Institution, complaint: Complaint) -> RectificationForm:
    form = RectificationForm()
    departments = db.session.scalars(select(Department).where(Department.institution_id == institution.id,
                                                              Department.active.is_(True))
                                     .order_by(Department.code)).all()
    form.department_id.choices = [("", gettext("（不指定）"))] + [(d.id, d.name) for d in departments]
    form.owner_id.choices = [("", gettext("请选择"))] + [
        (u.id, gettext("%(name)s（%(username)s）", name=u.display_name, username=u.username))
        for u in remedies.possible_owners(institution.id)]
    if request.method == "GET" and form.department_id.data is None:
        form.department_id.data = complaint.lead_department_id
    return form


@staff_bp.route("/<int:case_id>/rectifications/new", methods=["GET", "POST"])
def add_rectification(institution_id: int, case_id: int):
    institution, complaint = working_case(institution_id, case_id)
    form = _rectification_form(institution, complaint)

    def add():
        owner = db.session.get(StaffUser, form.owner_id.data) if form.owner_id.data else None
        department = db.session.get(Department, form.department_id.data) if form.department_id.data else None
        return remedies.add_rectification(complaint, form.action.data, owner, date.fromisoformat(form.due_date.data),
                                          department, actor=actor())

    return handle_form(form, add, success=gettext("整改措施已登记。"),
                    next_url=lambda r: case_url(complaint, "rectifications"),
                    template="complaints/outcomes/rectification_form.html", institution=institution,
                    complaint=complaint)


@staff_bp.route("/rectifications/<int:rectification_id>/complete", methods=["GET", "POST"])
def complete_rectification(institution_id: int, rectification_id: int):
    institution, complaint, r = scoped_row(Rectification, institution_id, rectification_id)
    form = RectificationCompleteForm()
    return handle_form(form, lambda: remedies.complete_rectification(r, form.evidence.data, actor=actor()),
                    success=gettext("整改完成情况已提交，等待验证。"),
                    next_url=lambda x: _back(complaint, "rectifications"),
                    template="complaints/outcomes/rectification_action.html", institution=institution,
                    complaint=complaint, r=r, heading=gettext("填报整改完成情况"),
                    owner_name=_display_name(r.owner_id))


@staff_bp.route("/rectifications/<int:rectification_id>/verify", methods=["POST"])
def verify_rectification(institution_id: int, rectification_id: int):
    _institution, complaint, r = scoped_row(Rectification, institution_id, rectification_id)
    access.require_officer(complaint, gettext("只有投诉管理人员可以验证整改。"))
    return post_action(complaint, lambda v: remedies.verify_rectification(r, actor=actor()),
                        gettext("整改已验证销号。"), "rectifications")


@staff_bp.route("/rectifications/<int:rectification_id>/return", methods=["GET", "POST"])
def return_rectification(institution_id: int, rectification_id: int):
    institution, complaint, r = scoped_row(Rectification, institution_id, rectification_id)
    access.require_officer(complaint, gettext("只有投诉管理人员可以验证整改。"))
    form = RectificationReturnForm()
    return handle_form(form, lambda: remedies.return_rectification(r, form.note.data, actor=actor()),
                    success=gettext("已退回责任人继续整改。"), next_url=lambda x: _back(complaint, "rectifications"),
                    template="complaints/outcomes/rectification_action.html", institution=institution,
                    complaint=complaint, r=r, heading=gettext("退回整改"), owner_name=_display_name(r.owner_id))


def _back(complaint: Complaint, anchor: str) -> str:
    """Back to where the user came from when that was the rectification list, else to the case."""
    target = request.args.get("next", "")
    if target == "list":
        return url_for("complaints_staff.rectifications", institution_id=complaint.institution_id)
    return case_url(complaint, anchor)


def _display_name(user_id: int | None) -> str:
    user = db.session.get(StaffUser, user_id) if user_id else None
    return user.display_name if user is not None else "—"


@staff_bp.get("/rectifications")
def rectifications(institution_id: int):
    """Every rectification not yet verified (挂账), overdue ones first in view; handlers see their own."""
    permission = (Permission.VIEW_COMPLAINT_STATS if can(current_user, Permission.VIEW_COMPLAINT_STATS)
                  else Permission.HANDLE_COMPLAINTS)
    institution = get_institution_or_404(institution_id, permission)
    form = RectificationFilterForm(request.args)
    status = (form.status.data if form.validate() else None) or "open"
    page = paginate(remedies.open_rectifications(institution, user=actor(), status=status), per_page=50)
    rows = list(page.items)
    owners = dict(db.session.execute(select(StaffUser.id, StaffUser.display_name)
                                     .where(StaffUser.id.in_({r.owner_id for r in rows} or {-1}))).all())
    departments = dict(db.session.execute(select(Department.id, Department.name).where(
        Department.id.in_(({r.department_id for r in rows} - {None}) or {-1}))).all())
    case_numbers = dict(db.session.execute(select(Complaint.id, Complaint.case_number).where(
        Complaint.id.in_({r.complaint_id for r in rows} or {-1}))).all())
    return render_template("complaints/outcomes/rectifications.html", institution=institution, form=form,
                           page=page, rows=rows, owners=owners, departments=departments, case_numbers=case_numbers,
                           today=local_today(), status=status, is_overdue=remedies.is_overdue)


# Refunds ------------------------------------------------------------------------------------------

@staff_bp.route("/<int:case_id>/refunds/new", methods=["GET", "POST"])
def request_refund(institution_id: int, case_id: int):
    institution, complaint = working_case(institution_id, case_id)
    form = RefundForm()
    return handle_form(form, lambda: remedies.request_refund(complaint, form.amount.data, form.reason.data,
                                                          actor=actor()),
                    success=gettext("退费申请已提交，等待审批。"), next_url=lambda r: case_url(complaint, "refunds"),
                    template="complaints/outcomes/refund_form.html", institution=institution, complaint=complaint)


@staff_bp.route("/refunds/<int:refund_id>/decide", methods=["GET", "POST"])
def decide_refund(institution_id: int, refund_id: int):
    institution, complaint, refund = scoped_row(Refund, institution_id, refund_id)
    access.require_officer(complaint, gettext("只有投诉管理人员可以审批退费。"))
    form = RefundDecisionForm()
    return handle_form(form, lambda: remedies.decide_refund(refund, form.decision.data == "approve", form.note.data,
                                                         actor=actor()),
                    success=gettext("退费审批已记录。"), next_url=lambda r: case_url(complaint, "refunds"),
                    template="complaints/outcomes/refund_action.html", institution=institution,
                    complaint=complaint, refund=refund, heading=gettext("审批退费"),
                    requester=_display_name(refund.requested_by_id))


@staff_bp.route("/refunds/<int:refund_id>/complete", methods=["GET", "POST"])
def complete_refund(institution_id: int, refund_id: int):
    institution, complaint, refund = scoped_row(Refund, institution_id, refund_id)
    form = RefundCompleteForm()
    return handle_form(form, lambda: remedies.complete_refund(refund, form.payment_ref.data, actor=actor()),
                    success=gettext("退费已办理并记录。"), next_url=lambda r: case_url(complaint, "refunds"),
                    template="complaints/outcomes/refund_action.html", institution=institution,
                    complaint=complaint, refund=refund, heading=gettext("办理退费"),
                    requester=_display_name(refund.requested_by_id))


# Wiring ---------------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    case_section(app, "complaints/outcomes/_rectifications.html", 60)
    case_section(app, "complaints/outcomes/_refunds.html", 65)
    register_nav(app, _l("整改跟踪"), "complaints_staff.rectifications",
                 lambda u, i: can(u, Permission.VIEW_COMPLAINT_STATS, i) or can(u, Permission.HANDLE_COMPLAINTS, i),
                 order=34)
