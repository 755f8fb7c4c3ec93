"""Per-institution complaint targets, defaulting to the national rules.

"一般应当于接到投诉之日起5个工作日内向患者反馈…涉及多个科室…应当于接到投诉之日起10个工作日内
向患者反馈" (医疗机构投诉管理办法): 5 and 10 working days are the defaults; a hospital
may set its own, stricter targets here. Both are counted from the day of receipt, so triage
(受理) has a target of its own within them: ``triage_days`` working days after the day of
receipt (default 1), shown in the officer's queue and on the case page. The retention periods of
the complainant's name and phone number are set here too; their defaults and what they rest on
are in complaints/retention.py.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Regexp

from complaints.models import ComplaintSettings
from core.audit import record
from core.extensions import db
from core.forms import FlaskForm
from core.services import ServiceError

FIELDS = ("triage_days", "standard_days", "complex_days", "reminder_days_before", "escalate_after_days",
          "case_prefix", "feedback_valid_days", "complainant_retention_days", "dispute_retention_days")
# At most 30 years: as long as inpatient records are kept (医疗机构病历管理规定, from memory, not checked here).
MAX_RETENTION_DAYS = 30 * 365


def complaint_settings(institution_id: int) -> ComplaintSettings:
    """The institution's complaint settings, or the national defaults (not stored) when it has none."""
    row = db.session.get(ComplaintSettings, institution_id)
    if row is not None:
        return row
    defaults = {c.name: c.default.arg for c in ComplaintSettings.__table__.columns if c.default is not None}
    return ComplaintSettings(institution_id=institution_id, **defaults)


def update_complaint_settings(institution_id: int, values: dict[str, Any], *, actor: Any) -> ComplaintSettings:
    """Change an institution's targets; the complex rule may not be shorter than the standard one, nor the
    triage target longer than the standard rule (a case must be accepted before its answer is due); contact
    data may not be purged before the satisfaction link expires, nor a dispute's before others'."""
    if values["complex_days"] < values["standard_days"]:
        raise ServiceError(gettext("多科室协调的办理时限不能短于一般时限。"), "complex_days")
    if values["triage_days"] > values["standard_days"]:
        raise ServiceError(gettext("受理时限不能长于一般投诉办理时限。"), "triage_days")
    if values["complainant_retention_days"] < values["feedback_valid_days"]:
        raise ServiceError(gettext("姓名电话的保留天数不能短于满意度回访链接的有效天数。"),
                           "complainant_retention_days")
    if values["dispute_retention_days"] < values["complainant_retention_days"]:
        raise ServiceError(gettext("医疗纠纷类投诉的保留天数不能短于一般投诉。"), "dispute_retention_days")
    row = db.session.get(ComplaintSettings, institution_id)
    if row is None:
        row = complaint_settings(institution_id)
        db.session.add(row)
    changed = {}
    for name in FIELDS:
        if getattr(row, name) != values[name]:
            changed[name] = [getattr(row, name), values[name]]
            setattr(row, name, values[name])
    db.session.flush()
    if changed:
        record(actor, "complaint_settings.update", row, changed)
    return row


class ComplaintSettingsForm(FlaskForm):
    triage_days = IntegerField(_l("受理时限（工作日）"), validators=[NumberRange(min=0, max=10)],
                               description=_l("登记后几个工作日内受理（受理、当场办结或不予受理），自接到投诉次日起计算；"
                                              "0 表示当天。超过的案件在投诉工作台标出。"))
    standard_days = IntegerField(_l("一般投诉办理时限（工作日）"), validators=[NumberRange(min=1, max=30)],
                                 description=_l("情况较复杂、需调查核实的投诉，自接到投诉次日起计算；"
                                                "国家规定为 5 个工作日。"))
    complex_days = IntegerField(_l("多科室协调投诉办理时限（工作日）"), validators=[NumberRange(min=1, max=60)],
                                description=_l("涉及多个科室、需组织协调的投诉；国家规定为 10 个工作日。"))
    reminder_days_before = IntegerField(_l("到期前提醒（工作日）"), validators=[NumberRange(min=0, max=10)])
    escalate_after_days = IntegerField(_l("超期后再等几个工作日督办"), validators=[NumberRange(min=0, max=10)])
    case_prefix = StringField(_l("案件编号前缀"), validators=[DataRequired(), Length(max=8),
                                                       Regexp(r"^[A-Z]{1,8}$", message=_l("前缀为 1–8 个大写字母。"))])
    feedback_valid_days = IntegerField(_l("满意度回访链接有效天数"), validators=[NumberRange(min=1, max=60)])
    complainant_retention_days = IntegerField(
        _l("投诉人姓名电话保留天数"), validators=[NumberRange(min=1, max=MAX_RETENTION_DAYS)],
        description=_l("案件办结（含当场办结、不予受理）满此天数后，每晚自动清除投诉人姓名和电话，"
                       "案件其余内容和台账保留。默认 365 天。"))
    dispute_retention_days = IntegerField(
        _l("医疗纠纷类投诉的保留天数"), validators=[NumberRange(min=1, max=MAX_RETENTION_DAYS)],
        description=_l("涉及医疗质量安全、因已起诉或已申请调解等不予受理、或曾因调解或鉴定暂停计时的案件，"
                       "按此天数保留，不短于上一项。默认 1095 天（三年）。"))
    submit = SubmitField(_l("保存设置"))
