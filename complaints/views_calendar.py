"""The working-day calendar pages (/admin/complaints/calendar) and the missing-year banner.

Platform admins enter each year's schedule from the State Council notice and
mark it official; institution admins and complaint officers may look (they
see the banner and want to know why a deadline is provisional). Every edit
recomputes the open cases' deadlines in a job.
"""
from __future__ import annotations

import calendar as pycalendar
from datetime import date, datetime, time
from typing import Any

from flask import Flask, abort, flash, has_request_context, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from wtforms import IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from complaints import calendar_data, case_section, deadlines, tasks, workdays
from complaints.blueprints import admin_bp as bp
from complaints.models import CalendarDay, CalendarYear, DayKind
from core.clock import local_timezone, local_today
from core.errors import render_error
from core.extensions import db
from core.forms import FlaskForm
from core.i18n import format_local_datetime
from core.tasks import InlineResult, enqueue
from organisation.forms import ConfirmForm, valid_date
from organisation.models import Role
from organisation.nav import register_nav

VIEW_ROLES = (Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN, Role.COMPLAINT_OFFICER)
EDIT_ROLES = (Role.PLATFORM_ADMIN,)
WEEKDAYS = (_l("一"), _l("二"), _l("三"), _l("四"), _l("五"), _l("六"), _l("日"))

KIND_LABELS = {
    workdays.WORKING: _l("工作日"), workdays.WEEKEND: _l("周末"), workdays.HOLIDAY: _l("节假日"),
    workdays.MAKEUP_WORKDAY: _l("调休上班"), deadlines.PAUSED: _l("暂停计时"),
}


class CalendarDayForm(FlaskForm):
    day = StringField(_l("日期"), validators=[DataRequired(message=_l("请填写日期。")), valid_date],
                      render_kw={"type": "date"})
    kind = SelectField(_l("类型"), choices=DayKind.choices())
    name = StringField(_l("名称"), validators=[Optional(), Length(max=40)],
                       description=_l("如：国庆节、春节、国庆节调休上班"))
    submit = SubmitField(_l("保存"))


class OfficialForm(FlaskForm):
    notice = StringField(_l("通知文号"), validators=[DataRequired(message=_l("请填写通知文号。")), Length(max=60)],
                         description=_l("国务院办公厅关于该年部分节假日安排的通知，如：国办发明电〔2026〕7号"))
    submit = SubmitField(_l("标记为正式日历"))


class DeadlineCheckForm(FlaskForm):
    class Meta:
        csrf = False

    received = StringField(_l("收到投诉日期"), validators=[DataRequired(message=_l("请填写日期。")), valid_date],
                           render_kw={"type": "date"})
    days = IntegerField(_l("工作日数"), default=5,
                        validators=[InputRequired(message=_l("请填写工作日数。")),
                                    NumberRange(min=0, max=60, message=_l("工作日数须在 0 至 60 之间。"))])


def actor():
    return current_user._get_current_object()


def _require(roles) -> None:
    if not current_user.has_role(*roles):
        abort(403)


def _can_edit() -> bool:
    return current_user.has_role(*EDIT_ROLES)


def _year_or_400(year: int):
    if not calendar_data.FIRST_YEAR <= year <= calendar_data.LAST_YEAR:
        abort(make_response(render_error(400, gettext("年份须在 %(first)d 年至 %(last)d 年之间。",
                                        first=calendar_data.FIRST_YEAR, last=calendar_data.LAST_YEAR))))
    return year


def _after_edit(message: str, year: int) -> None:
    """Commit the edit, then recompute open deadlines in a job (inline when there is no worker).

    A draft year (not official) is not used for deadlines yet, so its edits move nothing.
    """
    db.session.commit()
    if db.session.get(CalendarYear, year) is None:
        flash(message + " " + gettext("该年尚未标记为正式，暂不影响办理期限。"), "success")
        return
    job = enqueue(tasks.recompute_deadlines_job, actor().id)
    if isinstance(job, InlineResult) and job.is_finished:
        message += " " + gettext("已重新计算在办案件期限，%(n)d 件的期限发生变化。", n=job.result or 0)
    else:
        message += " " + gettext("在办案件的期限将在后台重新计算。")
    flash(message, "success")


# Years ------------------------------------------------------------------------------

def _year_rows(today: date) -> list[dict[str, Any]]:
    official = {row.year: row for row in db.session.scalars(select(CalendarYear))}
    counts: dict[int, dict[str, int]] = {}
    for day, kind in db.session.execute(select(CalendarDay.day, CalendarDay.kind)):
        counts.setdefault(day.year, {"holiday": 0, "workday": 0})[str(kind)] += 1
    years = set(official) | set(counts) | {today.year - 1, today.year, today.year + 1}
    warn = set(workdays.warning_years(today))
    rows = []
    for year in sorted(years, reverse=True):
        row = official.get(year)
        status = "official" if row else ("draft" if year in counts else "missing")
        rows.append({"year": year, "status": status, "row": row, "counts": counts.get(year, {}),
                     "warn": year in warn})
    return rows


@bp.get("/calendar")
def calendar_years():
    _require(VIEW_ROLES)
    today = local_today()
    form = DeadlineCheckForm(request.args)
    result = None
    if "received" in request.args:
        if not form.validate():
            return render_template("complaints/calendar/years.html", rows=_year_rows(today), form=form,
                                   result=None, can_edit=_can_edit(), today=today), 400
        received = date.fromisoformat(form.received.data)
        received_at = datetime.combine(received, time(12, 0), tzinfo=local_timezone())
        result = deadlines.compute_deadline(received_at, form.days.data, rule="check").to_json()
    return render_template("complaints/calendar/years.html", rows=_year_rows(today), form=form, result=result,
                           can_edit=_can_edit(), today=today)


# One year -----------------------------------------------------------------------------

def _month_grid(year: int, cell) -> list[dict[str, Any]]:
    months = []
    for month in range(1, 13):
        weeks = [[cell(d) if d.month == month else None for d in week]
                 for week in pycalendar.Calendar(firstweekday=0).monthdatescalendar(year, month)]
        months.append({"month": month, "weeks": weeks})
    return months


def _render_year(year: int, *, day_form: CalendarDayForm | None = None, official_form: OfficialForm | None = None,
                 status: int = 200):
    today = local_today()
    row = db.session.get(CalendarYear, year)
    entered = list(db.session.scalars(select(CalendarDay).where(
        CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)).order_by(CalendarDay.day)))
    if row is None and entered:  # a draft: show what the admin has entered so far
        shown = workdays.YearCalendar(year, False, 0, {d.day: (str(d.kind), d.name) for d in entered})
    else:
        shown = workdays.work_calendar().year(year)

    def cell(d: date) -> dict[str, Any]:
        info = shown.info(d)
        return {"day": d, "kind": info.kind, "name": info.name, "working": info.working, "today": d == today}

    if day_form is None:
        day_form = CalendarDayForm(formdata=None)
        edit = request.args.get("edit")
        if edit:
            try:
                chosen = date.fromisoformat(edit)
            except ValueError:
                return render_error(400, gettext("日期格式为 YYYY-MM-DD。"))
            existing = db.session.get(CalendarDay, chosen)
            day_form.day.data = chosen.isoformat()
            if existing is not None:
                day_form.kind.data, day_form.name.data = str(existing.kind), existing.name
    if official_form is None:
        official_form = OfficialForm(formdata=None)
        if row is not None and row.source.startswith(calendar_data.NOTICE_SOURCE):
            official_form.notice.data = row.source[len(calendar_data.NOTICE_SOURCE):].strip()
    status_key = "official" if row else ("draft" if entered else "missing")
    return render_template("complaints/calendar/year.html", year=year, row=row, status_key=status_key,
                           months=_month_grid(year, cell), entered=entered, day_form=day_form,
                           official_form=official_form, confirm=ConfirmForm(), can_edit=_can_edit(),
                           weekdays=WEEKDAYS, statutory=workdays.statutory_holidays(year)), status


@bp.get("/calendar/<int:year>")
def calendar_year(year: int):
    _require(VIEW_ROLES)
    return _render_year(_year_or_400(year))


@bp.post("/calendar/<int:year>/days")
def calendar_day_save(year: int):
    _require(EDIT_ROLES)
    _year_or_400(year)
    form = CalendarDayForm()
    if form.validate_on_submit():
        day = date.fromisoformat(form.day.data)
        if day.year != year:
            form.day.errors.append(gettext("日期不在 %(year)d 年内。", year=year))
        else:
            try:
                calendar_data.set_calendar_day(day, form.kind.data, form.name.data or "", actor=actor())
            except calendar_data.CalendarError as exc:
                form.day.errors.append(str(exc))
            else:
                _after_edit(gettext("已保存 %(day)s。", day=day.isoformat()), year)
                return redirect(url_for(".calendar_year", year=year))
    return _render_year(year, day_form=form, status=400)


@bp.post("/calendar/<int:year>/days/<day>/delete")
def calendar_day_delete(year: int, day: str):
    _require(EDIT_ROLES)
    _year_or_400(year)
    if not ConfirmForm().validate_on_submit():
        return render_error(400, gettext("页面已过期，请刷新后重新提交。"))
    try:
        chosen = date.fromisoformat(day)
    except ValueError:
        return render_error(400, gettext("日期格式为 YYYY-MM-DD。"))
    if chosen.year != year:
        return render_error(400, gettext("日期不在 %(year)d 年内。", year=year))
    try:
        calendar_data.remove_calendar_day(chosen, actor=actor())
    except calendar_data.CalendarError as exc:
        return render_error(400, str(exc))
    _after_edit(gettext("已删除 %(day)s。", day=chosen.isoformat()), year)
    return redirect(url_for(".calendar_year", year=year))


@bp.post("/calendar/<int:year>/official")
def calendar_mark_official(year: int):
    _require(EDIT_ROLES)
    _year_or_400(year)
    form = OfficialForm()
    if form.validate_on_submit():
        try:
            calendar_data.mark_year_official(year, form.notice.data, actor=actor())
        except calendar_data.CalendarError as exc:
            form.notice.errors.append(str(exc))
        else:
            _after_edit(gettext("%(year)d 年的工作日历已标记为正式。", year=year), year)
            return redirect(url_for(".calendar_year", year=year))
    return _render_year(year, official_form=form, status=400)


@bp.post("/calendar/<int:year>/prefill")
def calendar_prefill(year: int):
    _require(EDIT_ROLES)
    _year_or_400(year)
    if not ConfirmForm().validate_on_submit():
        return render_error(400, gettext("页面已过期，请刷新后重新提交。"))
    try:
        added = calendar_data.prefill_statutory_holidays(year, actor=actor())
    except calendar_data.CalendarError as exc:
        return render_error(400, str(exc))
    db.session.commit()
    flash(gettext("已预填 %(n)d 天法定节假日（草稿）。请按国务院通知补充放假调休和调休上班日，然后标记为正式。",
                  n=added), "success")
    return redirect(url_for(".calendar_year", year=year))


# The banner ---------------------------------------------------------------------------

def calendar_banner_context() -> dict[str, Any]:
    """Years whose schedule is missing, for the banner on every staff page (admins and officers only)."""
    if not has_request_context() or not current_user.is_authenticated or not current_user.has_role(*VIEW_ROLES):
        return {}
    try:
        years = workdays.cached_warning_years(local_today())
    except SQLAlchemyError:  # the page is likely an error page already; it must still render
        return {}
    if not years:
        return {}
    return {"calendar_warning_years": years, "calendar_can_edit": _can_edit()}


def weekday_label(value: str | date) -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return str(WEEKDAYS[day.weekday()])


def trace_datetime(value: str | None) -> str:
    """An ISO timestamp stored in a deadline trace, shown in Beijing time."""

    if not value:
        return ""
    try:
        return format_local_datetime(datetime.fromisoformat(value))
    except ValueError:
        return value


def init_app(app: Flask) -> None:

    app.context_processor(calendar_banner_context)
    app.jinja_env.filters["calendar_weekday"] = weekday_label
    app.jinja_env.filters["trace_datetime"] = trace_datetime
    app.jinja_env.globals["deadline_kind_label"] = lambda kind: KIND_LABELS.get(kind, kind)
    register_nav(app, _l("工作日历"), "complaints_admin.calendar_years",
                 lambda user, institution: user.has_role(Role.PLATFORM_ADMIN), per_institution=False, order=5)
    app.cli.add_command(calendar_data.seed_calendar_command)
    case_section(app, "complaints/calendar/_case_deadline.html", order=15)
