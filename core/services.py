"""What a refused business rule looks like to the views: one exception family, one HTTP status each.

Services raise these with a message for the user (already translated) and, where one form
field is at fault, that field's name; core.views.handle_form puts the message on the field
and answers with the exception's status.
"""
from __future__ import annotations

from flask_babel import gettext


class ServiceError(ValueError):
    """A rule refused the input (400); the message is for the user, ``field`` names the form field."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Refused(ServiceError):
    """The user may not take this action on this row, as it stands (403)."""

    status = 403


class TooManyTries(ServiceError):
    """Too many wrong passwords or codes in a row: try again after the wait the message names (429)."""

    status = 429


class Conflict(ServiceError):
    """The page the user acted on is older than the row: someone else changed it meanwhile (409)."""

    status = 409


def clean_text(value: str | None, *, field: str, label: str = "", limit: int | None = None,
               required: str | None = None, error: type[ServiceError] = ServiceError) -> str:
    """What a person typed in a text box: line endings unified, outer blanks gone, at most ``limit`` characters.

    ``required`` is the message when nothing was typed (None: it may stay empty); the length message names
    the box by its ``label``. Raises ``error`` (a ServiceError) with ``field``.
    """
    text = (value or "").replace("\r\n", "\n").strip()
    if required is not None and not text:
        raise error(required, field)
    if limit is not None and len(text) > limit:
        raise error(gettext("%(what)s不能超过 %(n)d 字。", what=label, n=limit), field)
    return text
