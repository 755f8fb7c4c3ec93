"""How the audit log names what survey records: questionnaires, QR codes, ratings and alerts, discharge
follow-up, the staff survey and API tokens (core.audit.register_audit_labels)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from survey.alerts import reason_label
from survey.api import SCOPE_LABELS
from survey.models import Channel, FollowupOutcome

ACTIONS = {
    "survey_template.install": _l("安装内置问卷"), "survey_template.copy": _l("复制问卷"),
    "survey_version.start_draft": _l("新建问卷草稿"), "survey_version.save_draft": _l("保存问卷草稿"),
    "survey_version.publish": _l("发布问卷版本"),
    "survey_code.issue": _l("生成二维码"), "survey_code.rotate": _l("更换二维码"),
    "survey_code.retire": _l("作废二维码"), "survey_code.set_template": _l("更换二维码的问卷"),
    "survey_settings.update": _l("修改评价设置"),
    "survey_response.record_phone": _l("录入电话回访评价"),
    "survey_alert.raise": _l("生成服务补救提醒"), "survey_alert.acknowledge": _l("确认服务补救提醒"),
    "survey_alert.close": _l("关闭服务补救提醒"),
    "discharge.create": _l("登记出院患者"), "discharge.update": _l("更新出院记录"),
    "discharge.import": _l("导入出院名单"), "discharge.link_used": _l("患者通过出院链接完成评价"),
    "survey.purge_contact_data": _l("清除到期的患者姓名电话"),
    "followup.call": _l("记录回访电话"), "followup.answers": _l("录入回访答卷"),
    "staff_survey.create_batch": _l("生成职工调查批次"),
    "api_token.create": _l("新建接口令牌"), "api_token.revoke": _l("吊销接口令牌"),
}

TARGETS = {
    "survey_template": _l("问卷"), "survey_template_version": _l("问卷版本"),
    "survey_touchpoint_code": _l("评价二维码"), "survey_settings": _l("评价设置"), "survey_response": _l("评价"),
    "survey_recovery_alert": _l("补救提醒"),
    "survey_discharge": _l("出院记录"), "survey_staff_batch": _l("职工调查批次"), "api_token": _l("接口调用令牌"),
}

KEYS = {
    "template_id": _l("问卷"), "touchpoint_id": _l("服务点"), "response_id": _l("评价"), "call_id": _l("回访电话"),
    ("survey_template", "code"): _l("问卷编码"), ("survey_template", "from"): _l("复制自问卷"),
    ("survey_touchpoint_code", "from"): _l("原问卷"), ("survey_touchpoint_code", "to"): _l("新问卷"),
    "number": _l("版本号"), "hash": _l("内容校验值"),
    "channel": _l("渠道"), "reasons": _l("原因"), "note_length": _l("处理说明字数"),
    "discharge_date": _l("出院日期"), "source": _l("来源"), "rows": _l("行数"), "created": _l("新增"),
    "updated": _l("更新"), "outcome": _l("回访结果"), "attempt": _l("第几次拨打"),
    "discharges": _l("出院记录数"), "contact_requests": _l("联系请求数"), "retention_days": _l("保留天数"),
    "size": _l("份数"), "scopes": _l("权限"), ("api_token", "expires_at"): _l("有效期至"),
    "alert_threshold": _l("预警分数线（0–100）"), "followup_days": _l("出院回访时限（天）"),
    "contact_retention_days": _l("姓名电话保留天数"), "link_valid_days": _l("出院/职工问卷链接有效天数"),
    "min_fill_seconds": _l("最短填写秒数"), "repeat_window_minutes": _l("重复评价判定时间（分钟）"),
    "staff_min_group": _l("职工结果最小展示人数"),
}

VALUES = {
    ("survey_response", "channel"): Channel, ("survey_discharge", "outcome"): FollowupOutcome,
    "reasons": reason_label, ("survey_discharge", "source"): {"upload": _l("上传"), "api": _l("接口")},
    "scopes": SCOPE_LABELS,
}

# Actors that are not staff members: the rating pipeline, the nightly purge, a patient's link, the staff
# survey's anonymous respondents, and API clients (``api:<token prefix>``).
ACTORS = {"survey": _l("评价系统"), "purge-job": _l("定时清理任务"), "patient": _l("患者"),
          "staff-survey": _l("职工匿名问卷"), "api": _l("接口")}
