"""Staff pages: the complaint ledger (投诉台账) with its exports, statistics, and the regional comparison."""
from __future__ import annotations

from datetime import date

from flask import Flask, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectField, StringField
from wtforms.validators import Optional, ValidationError

from complaints import ledger, stats
from complaints.blueprints import admin_bp, case_url_by_id, staff_bp
from complaints.models import Category, Channel, Satisfaction, Status
from core import tabular
from core.clock import local_today
from core.errors import render_error
from core.extensions import db
from core.forms import FlaskForm
from core.views import send_table
from organisation.forms import int_or_none, valid_date
from organisation.models import Institution, Region, Role
from organisation.nav import register_nav
from organisation.scope import Permission, can, department_scope, get_institution_or_404, region_subtree_ids
from organisation.services import departments_for

PER_PAGE = 50
MAX_PAGE = 100_000


def actor():
    return current_user._get_current_object()


def today() -> date:
    return local_today()


# Forms -------------------------------------------------------------------------

class LedgerFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter: nothing changes

    date_from = StringField(_l("接收日期自"), validators=[Optional(), valid_date], render_kw={"type": "date"})
    date_to = StringField(_l("接收日期至"), validators=[Optional(), valid_date], render_kw={"type": "date"})
    status = SelectField(_l("状态"), validators=[Optional()])
    category_id = SelectField(_l("类别"), coerce=int_or_none, validators=[Optional()])
    department_id = SelectField(_l("科室"), coerce=int_or_none, validators=[Optional()])
    channel = SelectField(_l("渠道"), validators=[Optional()])
    timeliness = SelectField(_l("是否按时"), validators=[Optional()],
                             choices=[("", _l("全部")), ("on_time", _l("按时答复")), ("overdue", _l("超时"))])
    satisfaction = SelectField(_l("满意度"), validators=[Optional()],
                               choices=[("", _l("全部")), *Satisfaction.choices(), ("none", _l("未评价"))])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and not self.date_from.errors and field.data < self.date_from.data:
            raise ValidationError(_l("结束日期不能早于开始日期。"))


def _period_check(form, field):
    try:
        stats.parse_period(field.data)
    except stats.PeriodError as exc:
        raise ValidationError(str(exc)) from None


class PeriodForm(FlaskForm):
    class Meta:
        csrf = False

    period = StringField(_l("统计期间"), validators=[Optional(), _period_check],
                         description=_l("月份如 2026-10，季度如 2026Q4"))


def _filter_form(institution: Institution, scope: set[int] | None) -> LedgerFilterForm:
    form = LedgerFilterForm(request.args)
    form.status.choices = [("", gettext("全部")), ("open", gettext("未办结（含待受理）")),
                           ("done", gettext("已办结（含当场办结）"))] + Status.choices()
    categories = db.session.scalars(
        select(Category).where(Category.institution_id.in_([institution.id]) | Category.institution_id.is_(None))
        .order_by(Category.sort, Category.id)).all()
    form.category_id.choices = [("", gettext("全部"))] + [(c.id, c.name) for c in categories]
    form.department_id.choices = [("", gettext("全部"))] + [
        (d.id, d.name) for d in departments_for(institution) if scope is None or d.id in scope]
    form.channel.choices = [("", gettext("全部"))] + Channel.choices()
    return form


def _ledger_filter(form: LedgerFilterForm, scope: set[int] | None) -> ledger.LedgerFilter:
    return ledger.LedgerFilter(
        date_from=date.fromisoformat(form.date_from.data) if form.date_from.data else None,
        date_to=date.fromisoformat(form.date_to.data) if form.date_to.data else None,
        status=form.status.data or None, category_id=form.category_id.data,
        department_id=form.department_id.data, channel=form.channel.data or None,
        timeliness=form.timeliness.data or None, satisfaction=form.satisfaction.data or None, departments=scope)


# The ledger --------------------------------------------------------------------

@staff_bp.get("/ledger")
def ledger_list(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_COMPLAINT_STATS)
    scope = department_scope(actor(), institution)
    form = _filter_form(institution, scope)
    valid = form.validate() if request.args else True
    f = _ledger_filter(form, scope) if valid else ledger.LedgerFilter(departments=scope)
    page_number = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    page = ledger.page_of(institution, f, page=page_number, per_page=PER_PAGE)
    export_args = {k: v for k, v in request.args.items() if k != "page"} if valid else {}
    return render_template("complaints/ledger/list.html", institution=institution, form=form, page=page,
                           columns=ledger.columns(), export_args=export_args,
                           satisfaction_labels=Satisfaction.labels(),
                           case_url=case_url_by_id), 200 if valid else 400


@staff_bp.get("/ledger/export.<fmt>")
def ledger_export(institution_id: int, fmt: str):
    institution = get_institution_or_404(institution_id, Permission.VIEW_COMPLAINT_STATS)
    if fmt not in tabular.FORMATS:
        abort(404)
    scope = department_scope(actor(), institution)
    form = _filter_form(institution, scope)
    if request.args and not form.validate():
        return render_error(400, gettext("筛选条件有误，请返回台账页面修改后再导出。"))
    f = _ledger_filter(form, scope)
    return send_table(fmt, ledger.sheet(ledger.iter_rows(institution, f)),
                              filename=ledger.export_filename(institution, f, fmt),
                              fallback=ledger.ascii_filename(institution, fmt))


# Statistics --------------------------------------------------------------------

@staff_bp.get("/stats")
def stats_page(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_COMPLAINT_STATS)
    form = PeriodForm(request.args)
    if not form.validate():
        return render_template("complaints/ledger/stats.html", institution=institution, form=form, report=None,
                               recent=_recent_periods(), small_sample=stats.SMALL_SAMPLE), 400
    period = stats.parse_period(form.period.data, today=today())
    report = stats.report(institution, period)
    return render_template("complaints/ledger/stats.html", institution=institution, form=form, report=report,
                           period=period, recent=_recent_periods(), ledger_args=_ledger_args(period),
                           case_url=case_url_by_id, small_sample=stats.SMALL_SAMPLE)


def _recent_periods() -> list[stats.Period]:
    current = stats.parse_period(None, today=today())
    months = [current.shifted(-i) for i in range(6)]
    quarter = current.other_kind()
    return months + [quarter.shifted(-i) for i in range(4)]


def _ledger_args(period: stats.Period) -> dict[str, str]:
    return {"date_from": period.start.isoformat(), "date_to": period.last_day.isoformat()}


# The regional comparison -----------------------------------------------------------

def _sees_regions(user) -> bool:
    return user.has_role(Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN) and can(user, Permission.VIEW_COMPLAINT_STATS)


def _region_or_404(region_id: int) -> Region:
    user = actor()
    region = db.session.get(Region, region_id)
    if region is None or not _sees_regions(user):
        abort(404)
    if not user.has_role(Role.PLATFORM_ADMIN):
        if user.region is None or not region.path.startswith(user.region.path):
            abort(404)
    return region


@admin_bp.get("/stats")
def region_stats_home():
    user = actor()
    if not _sees_regions(user):
        abort(404)
    if user.region is not None and not user.has_role(Role.PLATFORM_ADMIN):
        return redirect(url_for("complaints_admin.region_stats", region_id=user.region.id, **request.args))
    regions = db.session.scalars(select(Region).where(Region.active.is_(True)).order_by(Region.path)).all()
    return render_template("complaints/ledger/regions.html", regions=regions)


@admin_bp.get("/regions/<int:region_id>/stats")
def region_stats(region_id: int):
    region = _region_or_404(region_id)
    user = actor()
    form = PeriodForm(request.args)
    children = db.session.scalars(select(Region).where(Region.parent_id == region.id, Region.active.is_(True))
                                  .order_by(Region.code)).all()
    if not form.validate():
        return render_template("complaints/ledger/compare.html", region=region, form=form, groups=None,
                               children=children, recent=_recent_periods(), small_sample=stats.SMALL_SAMPLE), 400
    period = stats.parse_period(form.period.data, today=today())
    institutions = [i for i in db.session.scalars(
        select(Institution).where(Institution.region_id.in_(region_subtree_ids(region)),
                                  Institution.active.is_(True)))
        if can(user, Permission.VIEW_COMPLAINT_STATS, i)]
    groups = stats.compare(institutions, period)
    return render_template("complaints/ledger/compare.html", region=region, form=form, groups=groups,
                           period=period, children=children, recent=_recent_periods(),
                           small_sample=stats.SMALL_SAMPLE)


# Wiring ------------------------------------------------------------------------

def init_app(app: Flask) -> None:

    def sees_stats(user, institution):
        return can(user, Permission.VIEW_COMPLAINT_STATS, institution)

    register_nav(app, _l("投诉台账"), "complaints_staff.ledger_list", sees_stats, order=36)
    register_nav(app, _l("投诉统计"), "complaints_staff.stats_page", sees_stats, order=37)
    register_nav(app, _l("区域投诉统计"), "complaints_admin.region_stats_home", lambda u, i: _sees_regions(u),
                 per_institution=False, order=6)


