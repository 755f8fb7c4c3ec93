"""Guards on raw request input that no form validates: ids in URLs, NUL bytes, unnamed form parts.

The first two would otherwise reach PostgreSQL and fail there as a 500: an id beyond
its integer range ("integer out of range") and a NUL byte in any text
("PostgreSQL text fields cannot contain NUL bytes"). An out-of-range id names
nothing, so it is a 404; a NUL byte is never typed by a person, so it is a 400.
A multipart part without a name (no browser sends one) became a form field named
None, on which the NUL check and Flask-WTF's CSRF check failed as 500s: the parser
drops it.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask import Request as FlaskRequest
from flask_babel import gettext
from werkzeug.formparser import FormDataParser
from werkzeug.routing import IntegerConverter

from core.errors import render_error

DB_INT_MAX = 2**31 - 1  # ids are PostgreSQL "integer" columns


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` limited to what an integer primary key can hold; larger numbers match no route."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


class FormParser(FormDataParser):
    """Werkzeug's form parser, without the parts a browser never sends: those without a name."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        stream, form, files = super().parse(*args, **kwargs)
        return stream, _named(form), _named(files)


def _named(values: Any) -> Any:
    if None not in values:
        return values
    return type(values)([(key, value) for key, value in values.items(multi=True) if key is not None])


class Request(FlaskRequest):
    form_data_parser_class = FormParser


def _has_nul(values) -> bool:
    return any("\x00" in key or any("\x00" in v for v in vals) for key, vals in values.lists())


def reject_nul_bytes():
    """400 for a NUL byte in the query string or a submitted form.

    Paths are left to their routes: ids are integers, and the patient pages
    answer a garbled link with their own friendly notice.
    """
    if _has_nul(request.args) or (request.method in ("POST", "PUT", "PATCH") and _has_nul(request.form)):
        return render_error(400, gettext("提交的内容含有无效字符，请检查后重试。"))
    return None


def init_app(app: Flask) -> None:
    """Call before any route is registered: rules bind their converters when added."""
    app.request_class = Request
    app.url_map.converters["int"] = DatabaseIdConverter
    app.before_request(reject_nul_bytes)
