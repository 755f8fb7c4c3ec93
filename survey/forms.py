"""Staff-side survey forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    FieldList,
    FloatField,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from core.forms import FlaskForm
from organisation.forms import int_or_none, valid_date
from survey import alerts
from survey.definitions import ITEM_TYPE_LABELS

ITEM_TYPE_CHOICES = list(ITEM_TYPE_LABELS.items())
TEMPLATE_CODE = Regexp(r"^[A-Z][A-Z0-9_]{1,39}$", message=_l("编码只能用大写字母、数字和下划线，以字母开头。"))


class ResponseFilterForm(FlaskForm):
    class Meta:
        csrf = False

    department_id = SelectField(_l("科室"), coerce=int_or_none, validators=[Optional()])
    touchpoint_id = SelectField(_l("服务点"), coerce=int_or_none, validators=[Optional()])
    template_id = SelectField(_l("问卷"), coerce=int_or_none, validators=[Optional()])
    channel = SelectField(_l("渠道"), validators=[Optional()])
    date_from = StringField(_l("开始日期"), validators=[Optional(), valid_date], render_kw={"type": "date"})
    date_to = StringField(_l("结束日期"), validators=[Optional(), valid_date], render_kw={"type": "date"})
    score = SelectField(_l("总体得分"), choices=[("", _l("全部")), ("low", _l("≤ 50（不满意）")),
                                                ("high", _l("≥ 75（满意）"))], validators=[Optional()])
    flagged = SelectField(_l("异常记录"), choices=[("exclude", _l("不含异常")), ("only", _l("仅异常")),
                                                 ("all", _l("全部"))], default="exclude")


class CopyTemplateForm(FlaskForm):
    code = StringField(_l("新问卷编码"), validators=[DataRequired(), TEMPLATE_CODE, Length(max=40)])
    name = StringField(_l("新问卷名称"), validators=[DataRequired(), Length(max=120)])
    submit = SubmitField(_l("复制为本院问卷"))


class OptionRowForm(Form):
    """One answer option of an item: its stored value, the text shown, its score (0-100), or "not applicable"."""

    value = StringField(_l("选项值"), validators=[Optional(), Length(max=40)])
    label = StringField(_l("选项文字"), validators=[Optional(), Length(max=200)])
    score = StringField(_l("分数"), validators=[Optional(), Length(max=20)], render_kw={"inputmode": "decimal"})
    na = BooleanField(_l("不适用"))


class DimensionRowForm(Form):
    """One dimension: its code, its name and its weight in the headline score."""

    code = StringField(_l("维度编码"), validators=[Optional(), Length(max=40)])
    name = StringField(_l("维度名称"), validators=[Optional(), Length(max=80)])
    weight = StringField(_l("权重"), validators=[Optional(), Length(max=20)], render_kw={"inputmode": "decimal"})


class ItemForm(Form):
    code = StringField(_l("编码"), validators=[Optional(), Length(max=40)])
    type = SelectField(_l("题型"), choices=ITEM_TYPE_CHOICES)
    text = TextAreaField(_l("题干"), validators=[Optional(), Length(max=300)], render_kw={"rows": 2})
    required = BooleanField(_l("必答"))
    dimension = StringField(_l("维度编码"), validators=[Optional(), Length(max=40)])
    role = SelectField(_l("作用"), choices=[("", _l("普通")), ("overall", _l("总体满意度")),
                                          ("recommend", _l("推荐意愿"))], validators=[Optional()])
    options = FieldList(FormField(OptionRowForm), min_entries=0, max_entries=80)
    alert_values = StringField(_l("触发提醒的选项值"), validators=[Optional(), Length(max=100)])
    contact = BooleanField(_l("联系意愿题"))
    max_length = IntegerField(_l("最多字数"), validators=[Optional(), NumberRange(min=10, max=2000)])
    show_if = HiddenField()
    remove = BooleanField(_l("删除此题"))


class DraftForm(FlaskForm):
    title = StringField(_l("问卷标题"), validators=[DataRequired(), Length(max=120)])
    intro = TextAreaField(_l("说明"), validators=[Optional(), Length(max=500)], render_kw={"rows": 2})
    dimensions = FieldList(FormField(DimensionRowForm), min_entries=0, max_entries=80)
    items = FieldList(FormField(ItemForm), min_entries=0)
    add_items = IntegerField(_l("新增空白题目数"), default=0, validators=[Optional(), NumberRange(min=0, max=10)])
    submit = SubmitField(_l("保存草稿"))


class AlertCloseForm(FlaskForm):
    note = TextAreaField(_l("处理说明"), render_kw={"rows": 3},
                         validators=[DataRequired(message=_l("请填写处理说明。")), Length(max=alerts.NOTE_LIMIT)])
    submit = SubmitField(_l("关闭提醒"))


class SettingsForm(FlaskForm):
    alert_threshold = FloatField(_l("预警分数线（0–100）"), validators=[NumberRange(min=0, max=100)],
                                 description=_l("总体评分不高于此分数即向科室发出服务补救提醒；25 = “不满意”。"))
    followup_days = IntegerField(_l("出院回访时限（天）"), validators=[NumberRange(min=1, max=60)])
    contact_retention_days = IntegerField(_l("姓名电话保留天数"), validators=[NumberRange(min=1, max=365)],
                                          description=_l("出院后超过此天数，患者姓名和电话将被自动清除。"))
    link_valid_days = IntegerField(_l("出院/职工问卷链接有效天数"), validators=[NumberRange(min=1, max=180)])
    min_fill_seconds = FloatField(_l("最短填写秒数"), validators=[NumberRange(min=0, max=60)],
                                  description=_l("短于此时间提交的评价会被标记为异常，不计入得分。"))
    repeat_window_minutes = IntegerField(_l("重复评价判定时间（分钟）"), validators=[NumberRange(min=0, max=1440)])
    staff_min_group = IntegerField(_l("职工结果最小展示人数"), validators=[NumberRange(min=5, max=100)])
    submit = SubmitField(_l("保存设置"))
