"""Forms of the case page, the queues and the routing rules.

Every form that changes a case carries the version of the case the page showed (``version``); the
service refuses a stale page. Each case-page form has its own prefix, so that several forms share
one page without their fields colliding.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from complaints.models import DeclineReason, PauseReason
from complaints.pauses import MAX_EXTENSION_DAYS
from core.forms import FlaskForm
from organisation.forms import MultiCheckboxField, int_or_none


class CaseActionForm(FlaskForm):
    # The case's version when the page was rendered (a HiddenField, so the form macro renders it hidden).
    version = HiddenField(validators=[InputRequired(), Regexp(r"^\d{1,9}$")])

    @property
    def expected_version(self) -> int:
        return int(self.version.data)


class AcceptForm(CaseActionForm):
    submit = SubmitField(_l("受理"))


class SettleForm(CaseActionForm):
    note = TextAreaField(_l("当场处理经过和结果"), validators=[DataRequired(), Length(max=4000)],
                         render_kw={"rows": 3})
    submit = SubmitField(_l("登记为当场办结"))


class DeclineChoiceForm(FlaskForm):
    """Step one of declining (a GET form): the reason picks the default notice to edit."""

    class Meta:
        csrf = False

    reason = SelectField(_l("不予受理的理由"), choices=DeclineReason.choices())
    submit = SubmitField(_l("下一步：填写告知内容"))


class DeclineForm(CaseActionForm):
    reason = SelectField(_l("不予受理的理由"), choices=DeclineReason.choices())
    notice = TextAreaField(_l("告知投诉人的说明"), validators=[DataRequired(), Length(max=4000)],
                           description=_l("将通过短信发送给投诉人（如留有电话），并存入案件档案。"),
                           render_kw={"rows": 7})
    submit = SubmitField(_l("确认不予受理"))


class AssignForm(CaseActionForm):
    lead = SelectField(_l("主办科室"), coerce=int_or_none, validators=[DataRequired(message=_l("请选择主办科室。"))])
    co = MultiCheckboxField(_l("协办科室"), coerce=int, validators=[Optional()],
                            description=_l("选择协办科室后，办理期限按多科室协调的时限（默认 10 个工作日）重新计算。"))
    submit = SubmitField(_l("分派"))


class AddCoForm(CaseActionForm):
    department = SelectField(_l("增加协办科室"), coerce=int_or_none,
                             validators=[DataRequired(message=_l("请选择科室。"))])
    submit = SubmitField(_l("增加协办"))


class TransferForm(CaseActionForm):
    lead = SelectField(_l("转至科室"), coerce=int_or_none, validators=[DataRequired(message=_l("请选择科室。"))])
    reason = TextAreaField(_l("转办理由"), validators=[DataRequired(message=_l("请写明转办理由。")), Length(max=2000)],
                           render_kw={"rows": 2})
    submit = SubmitField(_l("转办"))


class ReceiveForm(CaseActionForm):
    submit = SubmitField(_l("接收转办"))


class PauseForm(CaseActionForm):
    reason = SelectField(_l("暂停原因"), choices=PauseReason.choices())
    note = StringField(_l("说明"), validators=[Optional(), Length(max=200)])
    submit = SubmitField(_l("暂停计时"))


class ResumeForm(CaseActionForm):
    submit = SubmitField(_l("恢复计时"))


class ExtensionForm(CaseActionForm):
    extra_days = IntegerField(_l("延长工作日数"), validators=[InputRequired(message=_l("请填写天数。")),
                                                       NumberRange(min=1, max=MAX_EXTENSION_DAYS)])
    reason = TextAreaField(_l("延期理由"), validators=[DataRequired(message=_l("请写明延期理由。")), Length(max=2000)],
                           render_kw={"rows": 2})
    submit = SubmitField(_l("申请延期"))


class ExtensionDecisionForm(CaseActionForm):
    note = TextAreaField(_l("审批意见"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})
    approve = SubmitField(_l("批准延期"))
    reject = SubmitField(_l("不批准"))


class CoAnswerForm(CaseActionForm):
    answer = TextAreaField(_l("协办意见"), validators=[DataRequired(message=_l("请填写协办意见。")), Length(max=8000)],
                           render_kw={"rows": 4})
    submit = SubmitField(_l("提交协办意见"))


class WaiveForm(CaseActionForm):
    reason = TextAreaField(_l("不等待协办意见的理由"),
                           validators=[DataRequired(message=_l("请写明理由。")), Length(max=2000)],
                           render_kw={"rows": 2})
    submit = SubmitField(_l("放行，主办科室可先行答复"))


class EditCaseForm(CaseActionForm):
    """Correcting the registration (complaints.corrections.correct_case); ``lead`` only on a case that can be
    transferred (the case page removes it otherwise)."""

    subject = StringField(_l("事由"), validators=[DataRequired(message=_l("请填写事由。")), Length(max=120)],
                          description=_l("一句话概括，答复函和统计中会引用。"))
    category = SelectField(_l("投诉类别"), coerce=int_or_none,
                           validators=[InputRequired(message=_l("请选择投诉类别。"))])
    channel = SelectField(_l("来源渠道"), validators=[DataRequired()])
    channel_ref = StringField(_l("来源编号"), validators=[Optional(), Length(max=60)],
                              description=_l("12345 热线转办必填工单编号。"))
    departments = MultiCheckboxField(_l("涉及科室"), coerce=int, validators=[Optional()])
    lead = SelectField(_l("主办科室"), coerce=int_or_none, validators=[Optional()],
                       description=_l("更换主办科室即转办：须写明原因，由新科室接收后办理。"))
    reason = TextAreaField(_l("更正原因"), validators=[Optional(), Length(max=500)], render_kw={"rows": 2},
                           description=_l("记入办理经过；更换主办科室时必填。"))
    submit = SubmitField(_l("保存更正"))


class MergeForm(CaseActionForm):
    primary = StringField(_l("并入案件编号"), validators=[DataRequired(message=_l("请填写要并入的案件编号。")),
                                                     Length(max=40)],
                          description=_l("本案将并入该案件，由该案件统一办理和答复；本案只保留查看。"),
                          render_kw={"autocomplete": "off", "list": "merge-candidates", "spellcheck": "false"})
    reason = TextAreaField(_l("合并理由"), validators=[DataRequired(message=_l("请写明合并理由。")), Length(max=500)],
                           render_kw={"rows": 2})
    submit = SubmitField(_l("并入该案件"))


class QueueFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("案件编号或主题"), validators=[Optional(), Length(max=60)])
    status = SelectField(_l("状态"), validators=[Optional()])
    category_id = SelectField(_l("类别"), coerce=int_or_none, validators=[Optional()])
    department_id = SelectField(_l("科室（主办或协办）"), coerce=int_or_none, validators=[Optional()])
    channel = SelectField(_l("渠道"), validators=[Optional()])
    due_within = IntegerField(_l("几个工作日内到期"), validators=[Optional(), NumberRange(min=0, max=60)])
    overdue = BooleanField(_l("只看已超期"))
    emergency = BooleanField(_l("只看紧急（医疗质量安全）"))
    paused = BooleanField(_l("只看暂停计时"))
    triage_late = BooleanField(_l("只看超过受理时限的待受理投诉"))


class RoutingRuleForm(FlaskForm):
    priority = IntegerField(_l("优先级"), default=100, validators=[InputRequired(), NumberRange(min=0, max=9999)],
                            description=_l("数字越小越先匹配；第一条条件全部满足的规则给出建议科室。"))
    category_id = SelectField(_l("投诉类别"), coerce=int_or_none, validators=[Optional()])
    touchpoint_id = SelectField(_l("服务点"), coerce=int_or_none, validators=[Optional()])
    department_id = SelectField(_l("涉及科室"), coerce=int_or_none, validators=[Optional()])
    keywords = StringField(_l("关键词"), validators=[Optional(), Length(max=200)],
                           description=_l("主题或内容包含任意一个即匹配，用分号或逗号分隔，例如：收费；退费；多收"))
    target_department_id = SelectField(_l("建议分派至"), coerce=int_or_none,
                                       validators=[DataRequired(message=_l("请选择科室。"))])
    submit = SubmitField(_l("保存"))
