"""Forms for replies, closing, feedback, rectification and refunds."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Email, InputRequired, Length, Optional, ValidationError

from complaints.feedback import MAX_COMMENT
from complaints.models import Satisfaction
from complaints.rectification import RemedyError, parse_amount
from complaints.replies import MAX_BODY, MAX_NOTE
from core.forms import FlaskForm
from organisation.forms import int_or_none, valid_date

ANSWERS = [a.value for a in Satisfaction]


def _version_number(value):
    """The hidden case version as an int (None when absent); anything else makes the form invalid (400)."""
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return value
    if not str(value).isdigit() or not 0 < int(value) < 2**31:
        raise ValueError(str(_l("页面已过期，请刷新后重新提交。")))
    return int(value)


class CaseVersionForm(FlaskForm):
    """A POST-only action on a case; ``version`` is the case version the page showed (optimistic lock)."""

    version = HiddenField(filters=[_version_number])
    submit = SubmitField(_l("确认"))


class ReplyDraftForm(CaseVersionForm):
    body = TextAreaField(_l("答复内容"), validators=[DataRequired(message=_l("请填写答复内容。")),
                                                 Length(max=MAX_BODY)],
                         render_kw={"rows": 14},
                         description=_l("这是投诉人将看到的文字。提交后须由他人审核通过才会发出。"))
    submit = SubmitField(_l("提交审核"))


class ReplyReturnForm(CaseVersionForm):
    note = TextAreaField(_l("退回意见"),
                         validators=[DataRequired(message=_l("请填写退回意见。")), Length(max=MAX_NOTE)],
                         render_kw={"rows": 4}, description=_l("写明需要修改的地方，起草人会看到。"))
    submit = SubmitField(_l("退回修改"))


class SendReplyForm(CaseVersionForm):
    # The service checks the way against the complainant's contact details, with a message for the form.
    via = RadioField(_l("答复方式"), validators=[InputRequired(message=_l("请选择答复方式。"))], validate_choice=False)
    email = StringField(_l("电子邮件地址"), validators=[Optional(), Email(message=_l("请填写有效的电子邮件地址。")),
                                                   Length(max=254)],
                        description=_l("仅用于本次发送，不保存。"))
    submit = SubmitField(_l("发送答复"))


class CloseForm(CaseVersionForm):
    resolved = RadioField(_l("处理结果"), choices=[("yes", _l("已解决")), ("no", _l("未解决"))], validate_choice=False,
                          validators=[InputRequired(message=_l("请选择问题是否已解决。")),
                                      AnyOf(["yes", "no"], message=_l("请选择问题是否已解决。"))])
    note = TextAreaField(_l("办结说明"), validators=[Optional(), Length(max=MAX_NOTE)], render_kw={"rows": 4},
                         description=_l("未解决时必填。办结后系统会向留有手机号的投诉人发送满意度回访链接。"))
    submit = SubmitField(_l("办结"))


class FeedbackForm(FlaskForm):
    """The complainant's one question (public page: the signed link is the credential, no CSRF cookie)."""

    class Meta:
        csrf = False

    answer = RadioField(_l("您对本次投诉的处理结果是否满意？"), choices=Satisfaction.choices(), validate_choice=False,
                        validators=[InputRequired(message=_l("请选择您对处理结果的满意程度。")),
                                    AnyOf(ANSWERS, message=_l("请选择您对处理结果的满意程度。"))])
    comment = TextAreaField(_l("您的意见（选填）"), validators=[Optional(), Length(max=MAX_COMMENT)])
    new_facts = BooleanField(_l("我有新的情况或证据"))


class PhoneFeedbackForm(CaseVersionForm):
    answer = RadioField(_l("投诉人对处理结果是否满意？"), choices=Satisfaction.choices(), validate_choice=False,
                        validators=[InputRequired(message=_l("请选择投诉人的回答。")),
                                    AnyOf(ANSWERS, message=_l("请选择投诉人的回答。"))])
    comment = TextAreaField(_l("投诉人的意见"), validators=[Optional(), Length(max=MAX_COMMENT)], render_kw={"rows": 3})
    new_facts = BooleanField(_l("投诉人表示有新的情况或证据"))
    submit = SubmitField(_l("记录回访结果"))


class RefuseReopenForm(CaseVersionForm):
    reason = TextAreaField(_l("不予重办的理由"), validators=[DataRequired(message=_l("请填写不予重办的理由。")),
                                                      Length(max=2000)],
                           render_kw={"rows": 4},
                           description=_l("理由会以短信告知投诉人（如留有手机号），例如：未提供新的情况和证据材料。"))
    submit = SubmitField(_l("不予重办"))


class RectificationForm(FlaskForm):
    action = TextAreaField(_l("整改措施"), validators=[DataRequired(message=_l("请填写整改措施。")), Length(max=2000)],
                           render_kw={"rows": 4})
    department_id = SelectField(_l("整改科室"), coerce=int_or_none, validators=[Optional()])
    owner_id = SelectField(_l("责任人"), coerce=int_or_none,
                           validators=[InputRequired(message=_l("请选择整改责任人。"))])
    due_date = StringField(_l("整改期限"), validators=[DataRequired(message=_l("请填写整改期限。")), valid_date],
                           render_kw={"type": "date"})
    submit = SubmitField(_l("登记整改"))


class RectificationCompleteForm(FlaskForm):
    evidence = TextAreaField(_l("完成情况及佐证"),
                             validators=[DataRequired(message=_l("请填写整改完成情况和佐证材料说明。")),
                                         Length(max=2000)],
                             render_kw={"rows": 5},
                             description=_l("写明做了什么、何时完成，以及培训记录、制度文件、照片等佐证材料的存放位置。"))
    submit = SubmitField(_l("提交验证"))


class RectificationReturnForm(FlaskForm):
    note = TextAreaField(_l("退回原因"), validators=[DataRequired(message=_l("请填写退回原因。")), Length(max=2000)],
                         render_kw={"rows": 3})
    submit = SubmitField(_l("退回整改"))


class RectificationFilterForm(FlaskForm):
    class Meta:
        csrf = False

    status = SelectField(_l("状态"), choices=[("open", _l("未销号")), ("done", _l("待验证")),
                                             ("verified", _l("已销号")), ("all", _l("全部"))],
                         default="open", validators=[Optional()])


def _amount(form, field):
    try:
        field.data = parse_amount(field.raw_data[0] if field.raw_data else "")
    except RemedyError as exc:
        raise ValidationError(str(exc)) from None


class RefundForm(FlaskForm):
    amount = StringField(_l("退费金额（元）"), validators=[DataRequired(message=_l("请填写退费金额。")), _amount],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})
    reason = TextAreaField(_l("退费原因"), validators=[DataRequired(message=_l("请填写退费原因。")), Length(max=2000)],
                           render_kw={"rows": 3}, description=_l("例如：重复收费、多收检查费，写明收费项目和日期。"))
    submit = SubmitField(_l("提交退费申请"))


class RefundDecisionForm(FlaskForm):
    decision = RadioField(_l("审批意见"), choices=[("approve", _l("批准退费")), ("reject", _l("不批准"))],
                          validate_choice=False,
                          validators=[InputRequired(message=_l("请选择是否批准。")),
                                      AnyOf(["approve", "reject"], message=_l("请选择是否批准。"))])
    note = TextAreaField(_l("说明"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 3},
                         description=_l("不批准时必填。"))
    submit = SubmitField(_l("提交审批"))


class RefundCompleteForm(FlaskForm):
    payment_ref = StringField(_l("退费凭证号 / 交易流水号"),
                              validators=[DataRequired(message=_l("请填写退费凭证号或交易流水号。")), Length(max=60)])
    submit = SubmitField(_l("确认已退费"))

