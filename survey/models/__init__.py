"""Survey models, one module per concept."""
from survey.models.alerts import AlertStatus, RecoveryAlert
from survey.models.followup import ApiToken, Discharge, FollowupCall, FollowupOutcome
from survey.models.inbox import InboxContext, SurveyInbox
from survey.models.responses import Channel, ContactRequest, SurveyAnswer, SurveyResponse
from survey.models.settings import EffectiveSettings, SurveySettings
from survey.models.staff import StaffSurveyBatch, StaffSurveyToken
from survey.models.templates import Audience, SurveyTemplate, TemplateVersion, VersionStatus
from survey.models.touchpoint_codes import TouchpointCode

__all__ = [
    "AlertStatus", "ApiToken", "Audience", "Channel", "ContactRequest", "Discharge", "EffectiveSettings",
    "FollowupCall", "FollowupOutcome", "InboxContext", "RecoveryAlert", "StaffSurveyBatch", "StaffSurveyToken",
    "SurveyAnswer", "SurveyInbox", "SurveyResponse", "SurveySettings", "SurveyTemplate", "TemplateVersion",
    "TouchpointCode", "VersionStatus",
]
