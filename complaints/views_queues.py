"""Staff pages for the queues: the officer's queue (triage first), a department's queue, and the routing rules."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from complaints import case_page, corrections, deadlines, feedback, queues, routing
from complaints.blueprints import case_url
from complaints.blueprints import staff_bp as bp
from complaints.forms_cases import (
    QueueFilterForm,
    RoutingRuleForm,
)
from complaints.lookup import parse_case_number
from complaints.models import (
    CaseDepartment,
    CaseRole,
    Category,
    Channel,
    RoutingRule,
    Status,
)
from complaints.settings import complaint_settings
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.privacy import mask_name
from core.views import handle_form, paginate
from organisation.forms import ConfirmForm
from organisation.models import Department, Institution, Role, StaffUser, Touchpoint
from organisation.nav import register_nav
from organisation.scope import (
    Permission,
    can,
    get_institution_or_404,
    get_owned_or_404,
)
from organisation.services import departments_for

QUEUE_PAGE_SIZE = 50


def actor() -> StaffUser:
    return current_user._get_current_object()


# Queues ----------------------------------------------------------------------------------

def _filter_form(institution: Institution, departments: set[int] | None = None) -> QueueFilterForm:
    form = QueueFilterForm(request.args)
    form.status.choices = [("", gettext("全部在办"))] + [(s.value, s.label) for s in Status if s in Status.to_do()] + [
        (Status.REPLIED.value, gettext("已答复（待办结）"))]
    categories = db.session.scalars(select(Category).where(
        (Category.institution_id == institution.id) | Category.institution_id.is_(None), Category.active.is_(True))
        .order_by(Category.sort, Category.id)).all()
    form.category_id.choices = [("", gettext("全部"))] + [(c.id, c.name) for c in categories]
    deps = [d for d in departments_for(institution) if departments is None or d.id in departments]
    form.department_id.choices = [("", gettext("全部"))] + [(d.id, d.name) for d in deps]
    form.channel.choices = [("", gettext("全部"))] + Channel.choices()
    return form


def _queue_filter(form: QueueFilterForm, departments: set[int] | None) -> queues.QueueFilter:
    f = queues.QueueFilter(departments=departments)
    if request.args and not form.validate():
        return f
    f.q = (form.q.data or "").strip()
    f.status = form.status.data or None
    f.category_id = form.category_id.data
    f.department_id = form.department_id.data
    f.channel = form.channel.data or None
    f.due_within = form.due_within.data
    f.overdue = bool(form.overdue.data)
    f.emergency = bool(form.emergency.data)
    f.paused = bool(form.paused.data)
    f.triage_late = bool(form.triage_late.data)
    return f


def _queue_context(institution: Institution, departments: set[int] | None, endpoint: str) -> dict[str, Any]:
    form = _filter_form(institution, departments)
    f = _queue_filter(form, departments)
    page = paginate(queues.queue_statement(institution, f), per_page=QUEUE_PAGE_SIZE)
    rows = list(page.items)
    ids = [c.id for c in rows]
    co_rows: dict[int, list[CaseDepartment]] = {i: [] for i in ids}
    if ids:
        for cd in db.session.scalars(select(CaseDepartment).where(CaseDepartment.complaint_id.in_(ids),
                                                                  CaseDepartment.active.is_(True),
                                                                  CaseDepartment.role == CaseRole.CO)):
            co_rows[cd.complaint_id].append(cd)
    now = utcnow()
    today = local_today(now)
    near = deadlines.due_threshold(1, now)
    triage_days = complaint_settings(institution.id).triage_days
    return dict(
        institution=institution, form=form, filter=f, page=page, rows=rows, co_rows=co_rows, endpoint=endpoint,
        counts=queues.queue_counts(institution, departments=departments, now=now),
        names=_names(institution), urgency=lambda c: queues.urgency(c, now=now, near=near),
        days_left=lambda c: deadlines.working_days_left(c, today), mask_name=mask_name,
        triage_days=triage_days, triage_late_label=_triage_late_label(triage_days),
        triage_target_text=_triage_target_text(triage_days),
        triage_due=lambda c: deadlines.triage_due_date(c.received_at, triage_days),
        triage_late=lambda c: deadlines.triage_late(c.status, c.received_at, triage_days, now),
        channel_label=_labels(Channel).get, status_label=_labels(Status).get,
        filtered=bool(request.args.to_dict(flat=True).keys() - {"page"}),
    )


def _triage_late_label(days: int) -> Callable[[int], str]:
    """The 待受理 tile's line for the cases awaiting triage beyond the institution's triage target."""
    if days == 0:
        return lambda n: gettext("当天未受理：%(n)d 件", n=n)
    return lambda n: ngettext("超过 %(num)d 个工作日：%(n)d 件", "超过 %(num)d 个工作日：%(n)d 件", days, n=n)


def _triage_target_text(days: int) -> str:
    """The triage target in words, and the reminder that the answer clock already runs."""
    if days == 0:
        return gettext("受理时限：接到投诉当天。办理期限自接到投诉次日起计算，待受理期间照常计时。")
    return ngettext("受理时限：接到投诉次日起 %(num)d 个工作日内。办理期限自接到投诉次日起计算，待受理期间照常计时。",
                    "受理时限：接到投诉次日起 %(num)d 个工作日内。办理期限自接到投诉次日起计算，待受理期间照常计时。",
                    days)


def _labels(enum) -> dict[str, str]:
    """An enum's labels, translated once per page rather than once per row."""
    return {member.value: str(member.label) for member in enum}


def _names(institution: Institution) -> dict[str, dict[int, str]]:
    return {
        "departments": dict(db.session.execute(select(Department.id, Department.name)
                                               .where(Department.institution_id == institution.id)).all()),
        "categories": dict(db.session.execute(select(Category.id, Category.name).where(
            (Category.institution_id == institution.id) | Category.institution_id.is_(None))).all()),
    }


@bp.get("/")
def queue(institution_id: int):
    """The officer's queue: every open case of the institution, most urgent first."""
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    number = parse_case_number(request.args.get("q", ""))
    found = corrections.find_case(institution.id, number) if number else None
    if found is not None:  # a whole case number opens its case, whatever its status (closed ones too)
        return redirect(case_url(found))
    context = _queue_context(institution, None, "complaints_staff.queue")
    triage = []
    if context["filter"].status is None and not context["filtered"]:
        triage = list(db.session.scalars(queues.queue_statement(
            institution, queues.QueueFilter(status=Status.REGISTERED.value)).limit(5)))
    status = 400 if context["form"].errors else 200
    # A 重办 request waits on a closed case, which no longer stands in the queue: listed here on its own.
    reopen = feedback.reopen_requests(institution)
    return render_template("complaints/cases/queue.html", triage=triage, officer=True, reopen=reopen,
                           **context), status


@bp.get("/department")
def department_queue(institution_id: int):
    """A department handler's queue: the open cases their departments lead or co-handle."""
    institution = get_institution_or_404(institution_id, Permission.HANDLE_COMPLAINTS)
    user = actor()
    mine = user.department_ids if user.institution_id == institution.id else set()
    context = _queue_context(institution, mine, "complaints_staff.department_queue")
    status = 400 if context["form"].errors else 200
    return render_template("complaints/cases/queue.html", triage=[], officer=False, mine=mine, **context), status


# Routing rules --------------------------------------------------------------------------

def _rule_form(institution: Institution, rule: RoutingRule | None = None) -> RoutingRuleForm:
    form = RoutingRuleForm(obj=rule)
    categories = db.session.scalars(select(Category).where(
        (Category.institution_id == institution.id) | Category.institution_id.is_(None))
        .order_by(Category.sort, Category.id)).all()
    form.category_id.choices = [("", gettext("（不限）"))] + [(c.id, c.name) for c in categories]
    touchpoints = db.session.scalars(select(Touchpoint).where(Touchpoint.institution_id == institution.id)
                                     .order_by(Touchpoint.code)).all()
    form.touchpoint_id.choices = [("", gettext("（不限）"))] + [(t.id, t.name) for t in touchpoints]
    form.department_id.choices = [("", gettext("（不限）"))] + [(d.id, d.name) for d in departments_for(institution)]
    form.target_department_id.choices = case_page.department_choices(institution, blank=gettext("请选择"))
    return form


def _rule_values(form: RoutingRuleForm) -> dict[str, Any]:
    return dict(priority=form.priority.data, category_id=form.category_id.data,
                touchpoint_id=form.touchpoint_id.data, department_id=form.department_id.data,
                keywords=form.keywords.data or "", target_department_id=form.target_department_id.data)


@bp.get("/routing")
def routing_rules(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    rules = db.session.scalars(select(RoutingRule).where(RoutingRule.institution_id == institution.id)
                               .order_by(RoutingRule.active.desc(), RoutingRule.priority, RoutingRule.id)).all()
    touchpoints = dict(db.session.execute(select(Touchpoint.id, Touchpoint.name)
                                          .where(Touchpoint.institution_id == institution.id)).all())
    return render_template("complaints/cases/routing_rules.html", institution=institution, rules=rules,
                           names=_names(institution), touchpoints=touchpoints, toggle=ConfirmForm(),
                           split_keywords=routing.split_keywords)


def _save_rule(institution: Institution, rule: RoutingRule | None):
    form = _rule_form(institution, rule)

    def save():
        if rule is None:
            return routing.create_routing_rule(institution, actor=actor(), **_rule_values(form))
        return routing.update_routing_rule(rule, actor=actor(), **_rule_values(form))

    return handle_form(form, save, success=gettext("分派规则已保存。"),
                       next_url=lambda _r: url_for("complaints_staff.routing_rules", institution_id=institution.id),
                       template="complaints/cases/routing_rule_form.html", institution=institution, rule=rule)


@bp.route("/routing/new", methods=["GET", "POST"])
def routing_rule_new(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    return _save_rule(institution, None)


@bp.route("/routing/<int:rule_id>", methods=["GET", "POST"])
def routing_rule_edit(institution_id: int, rule_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    return _save_rule(institution, get_owned_or_404(RoutingRule, rule_id, institution))


@bp.post("/routing/<int:rule_id>/toggle")
def routing_rule_toggle(institution_id: int, rule_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    rule = get_owned_or_404(RoutingRule, rule_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    routing.set_routing_rule_active(rule, not rule.active, actor=actor())
    db.session.commit()
    flash(gettext("已启用。") if rule.active else gettext("已停用。"), "success")
    return redirect(url_for("complaints_staff.routing_rules", institution_id=institution.id))


def init_app(app: Flask) -> None:
    """Nav entries."""

    register_nav(app, _l("投诉工作台"), "complaints_staff.queue",
                 lambda user, inst: can(user, Permission.MANAGE_COMPLAINTS, inst), order=15)
    register_nav(app, _l("本科室投诉"), "complaints_staff.department_queue",
                 lambda user, inst: (can(user, Permission.HANDLE_COMPLAINTS, inst)
                                     and user.has_role(Role.DEPARTMENT_HANDLER)
                                     and user.institution_id == inst.id), order=16)
