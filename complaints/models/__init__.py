"""Complaint models, one module per concept."""
from complaints.models.calendar import CalendarDay, CalendarYear, DayKind, YearStatus
from complaints.models.cases import (
    Attachment,
    CaseCounter,
    CaseDepartment,
    CaseEvent,
    CasePause,
    CaseRole,
    Category,
    Channel,
    Complaint,
    ComplaintSettings,
    DeadlineRule,
    DeclineReason,
    Extension,
    ExtensionStatus,
    PauseReason,
    PendingFile,
    Relation,
    RoutingRule,
    Satisfaction,
    Status,
)
from complaints.models.outcomes import (
    Feedback,
    Rectification,
    RectificationStatus,
    Refund,
    RefundStatus,
    ReopenStatus,
    Reply,
    ReplyStatus,
    ReplyVia,
)

__all__ = [
    "Attachment", "CalendarDay", "CalendarYear", "CaseCounter", "CaseDepartment", "CaseEvent", "CasePause", "CaseRole",
    "Category", "Channel", "Complaint", "ComplaintSettings", "DayKind", "DeadlineRule", "DeclineReason", "Extension",
    "ExtensionStatus", "Feedback", "PauseReason", "PendingFile", "Rectification", "RectificationStatus", "Refund",
    "RefundStatus", "Relation", "ReopenStatus", "Reply", "ReplyStatus", "ReplyVia", "RoutingRule", "Satisfaction",
    "Status", "YearStatus",
]
