"""Forms for intake: the complainant's own form, the officer's registration form, categories, the lookup."""
from __future__ import annotations

import unicodedata
from datetime import datetime

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from complaints.attachments import MAX_ATTACHMENTS
from complaints.intake import LIMITS, STAFF_CHANNELS
from complaints.models import Relation
from core.forms import FlaskForm
from organisation.forms import MultiCheckboxField, int_or_none

PHONE_HINT = _l("手机 11 位，或带区号的座机号码")
RECEIVED_FORMAT = "%Y-%m-%dT%H:%M"
MAX_FILE_MB = 20  # complaints.attachments.MAX_UPLOAD_BYTES, as the labels say it


class TextLimit:
    """At most intake.LIMITS[name] characters, counted as the service counts them (a line break is one, outer
    blanks none); the message says how far over the text is.

    Unlike WTForms' Length it puts no ``maxlength`` on the box (a browser cuts a pasted text there without a
    word); instead ``data-limit`` lets the page's counter show the count as people type.
    """

    def __init__(self, name: str):
        self.limit = LIMITS[name]

    def __call__(self, form, field) -> None:
        count = len((field.data or "").replace("\r\n", "\n").strip())
        if count > self.limit:
            raise ValidationError(gettext("最多 %(limit)d 字，现在 %(n)d 字，请删减 %(over)d 字后再提交。",
                                          limit=self.limit, n=count, over=count - self.limit))


def limited_text(name: str, **render_kw) -> dict:
    """The box's attributes for the counter: the limit, and nothing that cuts text."""
    return {"data-limit": LIMITS[name], **render_kw}


def nfkc(value):
    """Full-width digits and letters (typed with a Chinese keyboard) as ASCII, trimmed."""

    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


class PublicComplaintForm(FlaskForm):
    """The complainant's own form (QR code, web, survey thank-you page). Signed form token instead of CSRF."""

    class Meta:
        csrf = False

    submission_id = HiddenField()
    form_token = HiddenField()
    response = HiddenField()
    category = RadioField(_l("您要反映哪一类问题？"), coerce=int_or_none,
                          validators=[InputRequired(message=_l("请选择问题类别。"))])
    department = SelectField(_l("涉及的科室（不清楚可不选）"), coerce=int_or_none, validators=[Optional()])
    description = TextAreaField(_l("请说说发生了什么（最多 %(n)d 字）", n=LIMITS["description"]),
                                validators=[DataRequired(message=_l("请写下发生了什么。")), TextLimit("description")],
                                description=_l("时间、地点、经过，越具体越便于我们核实。"),
                                render_kw=limited_text("description"))
    wish = TextAreaField(_l("您希望我们怎么处理？（可不填，最多 %(n)d 字）", n=LIMITS["wish"]),
                         validators=[Optional(), TextLimit("wish")], render_kw=limited_text("wish"))
    complainant_name = StringField(_l("您的称呼（可不填，最多 %(n)d 字）", n=LIMITS["complainant_name"]),
                                   validators=[Optional(), TextLimit("complainant_name")],
                                   render_kw=limited_text("complainant_name"))
    # The number's one rule (core.phone, through the service) says what is wrong with it.
    complainant_phone = StringField(_l("联系电话（建议填写，便于答复您）"), filters=[nfkc], validators=[Optional()],
                                    description=PHONE_HINT, render_kw={"inputmode": "tel", "autocomplete": "tel"})
    relation = RadioField(_l("您是患者的"), choices=Relation.choices(),
                          default=Relation.SELF,
                          validators=[InputRequired(message=_l("请选择您与患者的关系。"))])
    attachments = MultipleFileField(_l("照片或材料（可不传，最多 %(n)d 个，每个不超过 %(mb)d MB）", n=MAX_ATTACHMENTS,
                                       mb=MAX_FILE_MB))


def parse_local_datetime(value: str) -> datetime:
    return datetime.strptime(value, RECEIVED_FORMAT)


def valid_local_datetime(form, field):
    try:
        parse_local_datetime(field.data or "")
    except ValueError:
        raise ValidationError(_l("请填写日期和时间，例如 2026-10-08 09:30。")) from None


class OfficerComplaintForm(FlaskForm):
    """One form for walk-in, phone, letter, e-mail and 12345 hotline transfers; the officer is first contact."""

    submission_id = HiddenField()
    channel = SelectField(_l("来源渠道"), choices=[(c.value, c.label) for c in STAFF_CHANNELS],
                          validators=[DataRequired()])
    channel_ref = StringField(_l("来源编号（最多 %(n)d 字）", n=LIMITS["channel_ref"]),
                              validators=[Optional(), TextLimit("channel_ref")], render_kw=limited_text("channel_ref"),
                              description=_l("12345 热线转办必填工单编号；来信、邮件可填收文号。"))
    received_at = StringField(_l("接到投诉时间"),
                              validators=[DataRequired(message=_l("请填写接到投诉的时间。")), valid_local_datetime],
                              render_kw={"type": "datetime-local"},
                              description=_l("北京时间；办理时限从接到投诉的次日起算。"))
    category = SelectField(_l("投诉类别"), coerce=int_or_none,
                           validators=[InputRequired(message=_l("请选择投诉类别。"))])
    emergency = BooleanField(_l("涉及医疗质量安全、可能危及患者健康：立即预警"),
                             description=_l("选中后立即通知投诉管理部门、机构管理员和院领导。只选“医疗质量安全”类别不会通知院领导。"))
    touchpoint = SelectField(_l("服务点"), coerce=int_or_none, validators=[Optional()])
    departments = MultiCheckboxField(_l("涉及科室"), coerce=int, validators=[Optional()])
    staff_involved = StringField(_l("涉及人员（最多 %(n)d 字）", n=LIMITS["staff_involved"]),
                                 validators=[Optional(), TextLimit("staff_involved")],
                                 render_kw=limited_text("staff_involved"),
                                 description=_l("姓名或工号，多人用顿号分隔。"))
    subject = StringField(_l("事由（最多 %(n)d 字）", n=LIMITS["subject"]),
                          validators=[Optional(), TextLimit("subject")],
                          render_kw=limited_text("subject", placeholder=_l("例如：挂号窗口只开一个，排队一个多小时")),
                          description=_l("一句话概括，答复函和统计中会引用。不填时系统根据投诉内容拟一句，登记前请您确认或改写。"))
    # The subject the page proposed as the field's placeholder: left empty, the subject field then means "use it".
    subject_proposed = HiddenField()
    description = TextAreaField(_l("投诉内容（最多 %(n)d 字）", n=LIMITS["description"]),
                                validators=[DataRequired(message=_l("请填写投诉内容。")), TextLimit("description")],
                                render_kw=limited_text("description", rows=6))
    wish = TextAreaField(_l("投诉人诉求（最多 %(n)d 字）", n=LIMITS["wish"]),
                         validators=[Optional(), TextLimit("wish")], render_kw=limited_text("wish", rows=3))
    complainant_name = StringField(_l("投诉人姓名（最多 %(n)d 字）", n=LIMITS["complainant_name"]),
                                   validators=[Optional(), TextLimit("complainant_name")],
                                   render_kw=limited_text("complainant_name"))
    complainant_phone = StringField(_l("联系电话"), filters=[nfkc], description=PHONE_HINT, validators=[Optional()])
    relation = SelectField(_l("与患者关系"), choices=Relation.choices(), default=Relation.SELF)
    attachments = MultipleFileField(_l("材料（JPG、PNG、HEIC、PDF，最多 %(n)d 个，每个不超过 %(mb)d MB）",
                                       n=MAX_ATTACHMENTS, mb=MAX_FILE_MB),
                                    description=_l("照片会自动缩小后保存。"))
    submit = SubmitField(_l("登记"))


class CategoryForm(FlaskForm):
    name = StringField(_l("类别名称"), validators=[DataRequired(message=_l("请填写类别名称。")), Length(max=40)])
    safety = BooleanField(_l("属于医疗质量安全（网上投诉选此类别时先通知投诉管理员核实）"))
    charges = BooleanField(_l("属于收费价格（可能需要退费）"))
    sort = IntegerField(_l("排序"), default=100, validators=[InputRequired(), NumberRange(min=0, max=9999)])
    submit = SubmitField(_l("保存"))


class FromAlertForm(FlaskForm):
    """The "转为投诉" button on a survey alert; the category is optional (default 其他)."""

    category = SelectField(_l("投诉类别"), coerce=int_or_none, validators=[Optional()])


class LookupForm(FlaskForm):
    class Meta:
        csrf = False

    # DataRequired, not InputRequired: "请选择" is sent as an empty value, which is an input.
    institution = SelectField(_l("医院"), coerce=int_or_none,
                              validators=[DataRequired(message=_l("请选择医院。"))])
    case_number = StringField(_l("案件编号"), filters=[nfkc],
                              validators=[DataRequired(message=_l("请填写案件编号。")), Length(max=40)],
                              render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})
    code = StringField(_l("查询码"), filters=[nfkc],
                       validators=[DataRequired(message=_l("请填写 6 位查询码。")),
                                   Regexp(r"^\d{6}$", message=_l("查询码是 6 位数字。"))],
                       render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": "6",
                                  "pattern": "[0-9]*"})
