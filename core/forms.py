"""The base of every form: Flask-WTF's FlaskForm, reading only what a browser's form would send.

Flask-WTF hands a form every uploaded file next to the typed fields, and a JSON body as if it were
form fields. A file posted under a text field's name then reaches the text's validators as a file
object, and a JSON number reaches code that expects text: both were 500s (tests/test_public_fuzz.py).
Here a form sees files only under the names of its own file fields, and never reads JSON.
"""
from __future__ import annotations

from typing import Any

import flask_wtf
from flask import request
from flask_wtf.form import _Auto  # FlaskForm's "read the request" default
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms.fields import FileField


class FlaskForm(flask_wtf.FlaskForm):
    class Meta(flask_wtf.FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            if formdata is not _Auto:
                return formdata
            if not form.is_submitted():
                return None
            file_fields = {field.name for field in form if isinstance(field, FileField)}
            files = MultiDict([(name, storage) for name, storage in request.files.items(multi=True)
                               if name in file_fields])
            if files:
                return CombinedMultiDict((files, request.form))
            return request.form or None
