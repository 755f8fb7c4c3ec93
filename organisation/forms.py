"""Staff-side forms for the organisation admin."""
from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from core.forms import FlaskForm
from core.table_reader import EXTENSIONS
from organisation.models import (
    DepartmentKind,
    InstitutionCategory,
    InstitutionGrade,
    InstitutionLevel,
    RegionLevel,
    TouchpointKind,
)
from organisation.passwords import MIN_LENGTH

CODE = Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", message=_l("编码只能包含字母、数字、下划线、点和短横线。"))
USERNAME = Regexp(r"^[a-z0-9][a-z0-9_.-]{2,63}$",
                  message=_l("用户名为 3–64 位小写字母、数字、下划线、点或短横线。"))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def valid_date(form, field):
    """A YYYY-MM-DD date that exists in the calendar, within years a query can use."""
    try:
        value = date.fromisoformat(field.data)
    except (TypeError, ValueError):
        raise ValidationError(_l("日期格式为 YYYY-MM-DD。")) from None
    # 0001-01-01 or 9999-12-31 overflow once turned into Beijing midnights in UTC.
    if not 1900 <= value.year <= 2999:
        raise ValidationError(_l("日期须在 1900 年至 2999 年之间。"))


def int_or_none(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField(_l("登录"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("当前密码"), validators=[DataRequired()],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("新密码"), validators=[DataRequired(), Length(max=200)],
                                 description=_l("至少 %(n)d 个字符；不要用常见密码，不要包含用户名或姓名。",
                                                n=MIN_LENGTH),
                                 render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("确认新密码"),
                            validators=[DataRequired(), EqualTo("new_password", message=_l("两次输入的密码不一致。"))],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("修改密码"))


class TotpCodeForm(FlaskForm):
    code = StringField(_l("验证码"), validators=[DataRequired(), Length(max=12)],
                       description=_l("身份验证器应用上显示的 6 位数字"),
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True})
    submit = SubmitField(_l("确认"))


class RegionForm(FlaskForm):
    code = StringField(_l("行政区划代码"), validators=[DataRequired(), Length(max=12),
                                                   Regexp(r"^\d{2,12}$", message=_l("请输入数字代码。"))])
    name = StringField(_l("名称"), validators=[DataRequired(), Length(max=80)])
    level = SelectField(_l("层级"), choices=RegionLevel.choices())
    parent_id = SelectField(_l("上级区域"), coerce=int_or_none, validators=[Optional()])
    submit = SubmitField(_l("保存"))


class InstitutionForm(FlaskForm):
    name = StringField(_l("机构名称"), validators=[DataRequired(), Length(max=120)])
    short_name = StringField(_l("简称"), validators=[Optional(), Length(max=40)])
    registration_code = StringField(_l("登记号"), validators=[DataRequired(), Length(max=40), CODE],
                                    description=_l("医疗机构执业许可证登记号或统一社会信用代码"))
    level = SelectField(_l("等级"), choices=InstitutionLevel.choices())
    grade = SelectField(_l("等次"), choices=InstitutionGrade.choices())
    category = SelectField(_l("类别"), choices=InstitutionCategory.choices())
    region_id = SelectField(_l("所属区域"), coerce=int)
    submit = SubmitField(_l("保存"))


class ComplaintContactForm(FlaskForm):
    """Where patients turn with a complaint: shown on the public pages that would otherwise be a dead end."""

    complaint_phone = StringField(_l("投诉电话"), validators=[Optional(), Length(max=40)],
                                  description=_l("例如：028-12345678 转 8001。患者扫到已更换或停用的二维码时会看到。"),
                                  render_kw={"inputmode": "tel"})
    complaint_address = StringField(_l("投诉接待地点"), validators=[Optional(), Length(max=200)],
                                    description=_l("例如：门诊楼一层患者服务中心（周一至周五 8:00–17:30）"))
    submit = SubmitField(_l("保存"))


class DepartmentForm(FlaskForm):
    code = StringField(_l("科室编码"), validators=[DataRequired(), Length(max=32), CODE])
    name = StringField(_l("科室名称"), validators=[DataRequired(), Length(max=80)])
    kind = SelectField(_l("科室类型"), choices=DepartmentKind.choices())
    parent_id = SelectField(_l("上级科室"), coerce=int_or_none, validators=[Optional()])
    submit = SubmitField(_l("保存"))


class TouchpointForm(FlaskForm):
    code = StringField(_l("服务点编码"), validators=[DataRequired(), Length(max=32), CODE])
    name = StringField(_l("服务点名称"), validators=[DataRequired(), Length(max=80)])
    kind = SelectField(_l("类型"), choices=TouchpointKind.choices())
    # No department is preselected: the first of the list would be taken by whoever does not look.
    department_id = SelectField(_l("所属科室"), coerce=int_or_none,
                                validators=[DataRequired(message=_l("请选择所属科室。"))])
    location = StringField(_l("位置"), validators=[Optional(), Length(max=120)],
                           description=_l("例如：门诊楼一层东侧"))
    submit = SubmitField(_l("保存"))


class StaffForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(), USERNAME])
    display_name = StringField(_l("姓名"), validators=[DataRequired(), Length(max=64)])
    roles = MultiCheckboxField(_l("角色"), validators=[DataRequired(message=_l("请至少选择一个角色。"))])
    departments = MultiCheckboxField(_l("负责科室"), coerce=int,
                                     description=_l("科室处理人只能看到所绑定科室的案件。"))
    region_id = SelectField(_l("所辖区域"), coerce=int_or_none, validators=[Optional()])
    submit = SubmitField(_l("保存"))


class ImportForm(FlaskForm):
    kind = SelectField(_l("导入内容"), choices=[("departments", _l("科室")), ("touchpoints", _l("服务点")),
                                                ("staff", _l("人员"))])
    file = FileField(_l("文件（CSV、XLSX 或 XLS）"), validators=[
        FileRequired(message=_l("请选择要上传的文件。")),
        FileAllowed(list(EXTENSIONS), message=_l("只支持 CSV、XLSX 或 XLS 文件。")),
    ])
    dry_run = BooleanField(_l("仅检查，不写入"), default=False)
    submit = SubmitField(_l("上传并导入"))


class ConfirmForm(FlaskForm):
    """An empty form that only carries the CSRF token for POST-only actions."""

    submit = SubmitField(_l("确认"))


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    actor = StringField(_l("操作人"), validators=[Optional(), Length(max=64)])
    action = StringField(_l("操作"), validators=[Optional(), Length(max=80)])
    target_type = StringField(_l("对象类型"), validators=[Optional(), Length(max=60)])
    target_id = StringField(_l("对象编号"), validators=[Optional(), Length(max=60)])
    date_from = StringField(_l("开始日期"), validators=[Optional(), valid_date], render_kw={"type": "date"})
    date_to = StringField(_l("结束日期"), validators=[Optional(), valid_date], render_kw={"type": "date"})
