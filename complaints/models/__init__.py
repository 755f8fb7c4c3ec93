"""Complaint models, one module per concept."""
from complaints.models.calendar import CalendarDay, CalendarYear, DayKind, YearStatus
from complaints.models.cases import (
    Attachment,
    CaseCounter,
    CaseDepartment,
    CaseEvent,
    CasePause,
    Category,
    Channel,
    Complaint,
    ComplaintSettings,
    DeclineReason,
    Extension,
    PauseReason,
    RoutingRule,
    Status,
)
from complaints.models.outcomes import (
    Feedback,
    Rectification,
    RectificationStatus,
    Refund,
    RefundStatus,
    Reply,
    ReplyStatus,
)

__all__ = [
    "Attachment", "CalendarDay", "CalendarYear", "CaseCounter", "CaseDepartment", "CaseEvent", "CasePause", "Category",
    "Channel", "Complaint", "ComplaintSettings", "DayKind", "DeclineReason", "Extension", "Feedback", "PauseReason",
    "Rectification", "RectificationStatus", "Refund", "RefundStatus", "Reply", "ReplyStatus", "RoutingRule",
    "Status", "YearStatus",
]
