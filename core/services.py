"""What a refused business rule looks like to the views: one exception family, one HTTP status each.

Services raise these with a message for the user (already translated) and, where one form
field is at fault, that field's name; core.views.handle_form puts the message on the field
and answers with the exception's status.
"""
from __future__ import annotations


class ServiceError(ValueError):
    """A rule refused the input (400); the message is for the user, ``field`` names the form field."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Refused(ServiceError):
    """The user may not take this action on this row, as it stands (403)."""

    status = 403


class Conflict(ServiceError):
    """The page the user acted on is older than the row: someone else changed it meanwhile (409)."""

    status = 409
