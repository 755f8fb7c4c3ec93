"""How the audit log names what complaints records: cases and their workflow, deadlines, outcomes,
categories, routing rules, settings and the working-day calendar (core.audit.register_audit_labels).

A case's steps are named as its timeline names them (complaints.workflow): the transitions by
ACTION_LABELS, the other events by EVENT_LABELS.
"""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from complaints.categories import DEFAULT_LABELS
from complaints.models import (
    Category,
    Channel,
    DayKind,
    DeadlineRule,
    ExtensionStatus,
    PauseReason,
    ReplyVia,
    Satisfaction,
    Status,
)
from complaints.workflow import ACTION_LABELS, EVENT_LABELS
from core.extensions import db

ACTIONS: dict[str, Any] = {
    **{f"complaint.{action.value}": label for action, label in ACTION_LABELS.items()},
    "complaint.register": _l("登记投诉"), "complaint.flag_emergency": EVENT_LABELS["emergency"],
    "complaint.reissue_lookup_code": EVENT_LABELS["lookup_code_reissued"],
    "complaint.emergency_notice_sent": EVENT_LABELS["emergency_alerted"],
    "complaint.decline_notice_sent": _l("已告知投诉人不予受理"),
    "complaint.co_added": EVENT_LABELS["co_added"], "complaint.co_answer": EVENT_LABELS["co_answer"],
    "complaint.co_waived": EVENT_LABELS["co_waived"],
    "complaint.deadline_recomputed": EVENT_LABELS["deadline_recomputed"],
    "complaint.pause": EVENT_LABELS["pause"], "complaint.resume_clock": EVENT_LABELS["resume_clock"],
    "complaint.extension_requested": EVENT_LABELS["extension_requested"],
    **{f"complaint.extension_{status.value}": EVENT_LABELS[f"extension_{status.value}"]
       for status in (ExtensionStatus.APPROVED, ExtensionStatus.REJECTED)},
    "complaint.remind": EVENT_LABELS["remind"], "complaint.supervise": EVENT_LABELS["supervise"],
    "complaint.reply.draft": _l("保存答复草稿"), "complaint.reply.return": _l("退回答复"),
    "complaint.reply.approve": _l("审核通过答复"), "complaint.reply.send": _l("发送答复"),
    "complaint.close.outcome": _l("记录办结结果"),
    "complaint.feedback.open": EVENT_LABELS["feedback_opened"],
    "complaint.feedback.answer": EVENT_LABELS["feedback_answered"],
    "complaint.feedback.reopen_accept": _l("同意重办"),
    "complaint.feedback.reopen_refuse": EVENT_LABELS["reopen_refused"],
    "complaint.rectification.add": EVENT_LABELS["rectification_added"],
    "complaint.rectification.complete": EVENT_LABELS["rectification_done"],
    "complaint.rectification.verify": EVENT_LABELS["rectification_verified"],
    "complaint.rectification.return": EVENT_LABELS["rectification_returned"],
    "complaint.refund.request": EVENT_LABELS["refund_requested"], "complaint.refund.decide": _l("审批退费"),
    "complaint.refund.complete": EVENT_LABELS["refund_completed"],
    "complaint_category.seed_defaults": _l("安装全国默认投诉类别"), "complaint_category.create": _l("新建投诉类别"),
    "complaint_category.update": _l("修改投诉类别"), "complaint_category.activate": _l("启用投诉类别"),
    "complaint_category.deactivate": _l("停用投诉类别"),
    "routing_rule.create": _l("新建分派规则"), "routing_rule.update": _l("编辑分派规则"),
    "routing_rule.activate": _l("启用分派规则"), "routing_rule.deactivate": _l("停用分派规则"),
    "complaint_settings.update": _l("修改投诉设置"),
    "complaint.deadline_set": EVENT_LABELS["deadline_set"], "complaint.edit": EVENT_LABELS["edited"],
    "complaint.merged_in": EVENT_LABELS["merged_in"], "complaint.safety_report": EVENT_LABELS["safety_reported"],
    "complaint.safety_report_notice_sent": EVENT_LABELS["safety_report_notified"],
    "complaint.pending_files_purged": _l("清除未提交表单暂存的文件"),
    "complaints.purge_complainant_contacts": _l("按保留期限清除投诉人姓名电话"),
    "calendar.seed": _l("录入官方工作日历"), "calendar.sync": _l("更新官方工作日历"),
    "calendar.year_official": _l("按国务院通知确认全年安排"), "calendar.year_source": _l("更新全年安排的依据"),
    "calendar.prefill": _l("预填法定节假日"), "calendar.day_set": _l("设置节假日安排"),
    "calendar.day_removed": _l("删除节假日安排"),
}

TARGETS = {
    "complaint": _l("投诉案件"), "complaint_category": _l("投诉类别"), "complaint_routing_rule": _l("案件分派规则"),
    "complaint_settings": _l("投诉设置"), "work_calendar_year": _l("工作日历年度"),
    "work_calendar_day": _l("工作日历日期"),
}

KEYS = {
    "from": _l("原为"), "to": _l("改为"), "note": _l("备注"), "channel": _l("渠道"), "category": _l("投诉类别"),
    "attachments": _l("附件数"), ("complaint", "departments"): _l("涉及科室"), "has_contact": _l("留有联系方式"),
    "department": _l("科室"), "revised": _l("修改过"), "provisional": _l("暂定"),
    "calendar_versions": _l("所依据的日历版本"), "feedback": _l("回访"), "valid_days": _l("有效天数"),
    "answer": _l("满意度"), "new_facts": _l("有新的情况或证据"), "via": _l("方式"),
    "reopened_count": _l("重办次数"), "due_date": _l("办理期限"), "reason": _l("原因"),
    "extension": _l("延期申请单"), "extra_days": _l("延长工作日数"), "rectification": _l("整改"), "owner": _l("责任人"),
    "refund": _l("退费单"), "amount": _l("金额"), "approved": _l("批准"), "reply": _l("答复版本号"),
    "delivered": _l("已由网关发出"),
    "length": _l("字数"), "drafted_by": _l("起草人"), "resolved": _l("问题已解决"),
    "recipients": _l("通知人数"), "overdue_working_days": _l("超期工作日数"),
    ("complaint_category", "name"): _l("类别名称"), "safety": _l("涉及医疗质量安全"), "charges": _l("涉及收费"),
    "sort": _l("排序"), "codes": _l("新增类别"),
    "priority": _l("优先级"), ("complaint_routing_rule", "category_id"): _l("投诉类别"),
    ("complaint_routing_rule", "department_id"): _l("涉及科室"), "keywords": _l("关键词"),
    "target_department_id": _l("建议分派至"),
    "standard_days": _l("一般投诉办理时限（工作日）"), "complex_days": _l("多科室协调投诉办理时限（工作日）"),
    "reminder_days_before": _l("到期前提醒（工作日）"), "escalate_after_days": _l("超期后再等几个工作日督办"),
    "case_prefix": _l("案件编号前缀"), "feedback_valid_days": _l("满意度回访链接有效天数"),
    ("work_calendar_year", "source"): _l("依据"),
    "added": _l("新增天数"), "changed": _l("修改天数"), "removed": _l("删除天数"),
    "version": _l("版本"), "days": _l("天数"), "year_version": _l("年度日历版本"), "before": _l("修改前"),
    ("work_calendar_day", "kind"): _l("类型"), ("work_calendar_day", "name"): _l("名称"),
    "triage_days": _l("受理时限（工作日）"), "complainant_retention_days": _l("投诉人姓名电话保留天数"),
    "dispute_retention_days": _l("医疗纠纷类投诉的保留天数"), "cases": _l("案件数"), "disputes": _l("其中医疗纠纷类"),
    "rule": _l("期限规则"), "from_receipt": _l("自接到投诉起算"), "case_number": _l("案件编号"),
    "duplicate": _l("并入的重复投诉"), "files": _l("文件数"), "listed": _l("列出的案件数"),
    "subject": _l("事由"), "channel_ref": _l("渠道编号"),
}


def category_name(code: str) -> str | None:
    """A category code as its name (the national ones in the page's language); None when unknown."""
    if code in DEFAULT_LABELS:
        return str(DEFAULT_LABELS[code])
    return db.session.scalar(select(Category.name).where(Category.code == code))


VALUES = {
    ("complaint", "from"): Status, ("complaint", "to"): Status, ("complaint", "channel"): Channel,
    "category": category_name, "codes": category_name, ("complaint", "reason"): PauseReason,
    ("complaint", "answer"): Satisfaction,
    ("complaint", "via"): {**ReplyVia.labels(), "phone": _l("电话回访"), "link": _l("回访链接")},
    ("work_calendar_day", "kind"): DayKind, ("complaint", "rule"): DeadlineRule,
}

# Actors that are not staff members, as the timeline and the audit log name them (core.audit names
# "system" and "cli").
ACTORS = {"self-service": _l("投诉人（自助提交）"), "complainant": _l("投诉人"), "seed-demo": _l("演示数据"),
          "demo": _l("演示数据"), "complaint-deadlines": _l("办理期限提醒"), "complaint-emergency": _l("紧急预警"),
          "calendar": _l("工作日历"), "complaint-intake": _l("投诉登记（暂存清理）")}
