"""Shared fixtures for the survey tests.

The shipped templates are not installed in the test database: ask for
``builtin_templates`` (or a ``*_code`` fixture, which needs them). Patient
pages are driven through ``submit()``, which opens the page like a phone
would, reads its hidden fields and posts the answers back.

The ``client`` and ``new_client`` fixtures (tests/conftest.py) give every
client its own remote address, so the per-IP limit and the /24 burst flag
never leak between tests.
"""
from __future__ import annotations

import copy
import re
import time
import uuid
from html import unescape
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core import signing
from core.extensions import db
from organisation.models import Institution, StaffUser, Touchpoint
from survey import qr, versioning
from survey.models import Channel, SurveyResponse, SurveyTemplate, TemplateVersion, TouchpointCode
from survey.submission import Context, settings_for, submit_response
from tests.factories import demo_user, login

# Tenants and users --------------------------------------------------------

def touchpoint(institution: Institution, code: str) -> Touchpoint:
    return db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                      Touchpoint.code == code))


def staff_login(client, username: str) -> StaffUser:
    """Log ``client`` in as a demo user (e.g. 'rmyy-admin', 'rmyy-handler')."""
    user = demo_user(username)
    assert user is not None, username
    login(client, user)
    return user


# Templates and codes ------------------------------------------------------

@pytest.fixture
def builtin_templates(ctx) -> dict[str, SurveyTemplate]:
    """The four shipped templates, installed and published: {'WIN': ..., 'OPD': ..., 'IPD': ..., 'STF': ...}."""
    installed = versioning.install_builtin_templates(actor="test")
    db.session.flush()
    return {t.code: t for t in installed}


@pytest.fixture
def window_touchpoint(rmyy) -> Touchpoint:
    """rmyy's registration window W-GH-01 (department CWK, to which rmyy-handler is bound)."""
    return touchpoint(rmyy, "W-GH-01")


@pytest.fixture
def window_code(builtin_templates, window_touchpoint) -> TouchpointCode:
    """The window's live QR code, answering the shipped window template (WIN)."""
    return qr.ensure_code(window_touchpoint, actor="test")


@pytest.fixture
def ward_touchpoint(rmyy) -> Touchpoint:
    """rmyy's cardiology ward B-XNK (department XNK, to which rmyy-handler is bound)."""
    return touchpoint(rmyy, "B-XNK")


@pytest.fixture
def ward_code(builtin_templates, ward_touchpoint) -> TouchpointCode:
    """The ward's live QR code, answering the shipped inpatient template (IPD)."""
    return qr.ensure_code(ward_touchpoint, actor="test")


def survey_path(code: TouchpointCode) -> str:
    """The path a scanned QR code opens."""
    return f"/q/{qr.path_token(code)}"


# Driving the patient page ---------------------------------------------------

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in _HIDDEN.findall(html)}


def aged_form_token(token: str, seconds: float) -> str:
    """The same form token as if the page had been served ``seconds`` ago (a patient taking their time)."""
    serializer = copy.copy(signing.form_serializer())  # the app's own is shared: never change it
    payload = serializer.loads(token)

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - seconds)

    serializer.signer = Earlier
    return serializer.dumps(payload)


def answer_fields(answers: dict[str, Any]) -> list[tuple[str, str]]:
    """``{'WIN_OVERALL': '5', 'WIN_REASON': ['R_WAIT']}`` as form fields q_<CODE>; other keys pass through."""
    fields = []
    for key, value in answers.items():
        name = key if key.islower() else f"q_{key}"
        for v in value if isinstance(value, (list, tuple)) else [value]:
            fields.append((name, v))
    return fields


def open_form(client, path: str) -> dict[str, str]:
    """GET the patient page; returns its hidden fields (submission_id, form_token)."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return hidden_fields(page.get_data(as_text=True))


def submit(client, target, *, fill_seconds: float | None = 10, submission_id: str | None = None,
           form: dict[str, str] | None = None, **answers):
    """Open the page for ``target`` (a TouchpointCode or a path), then POST ``answers``.

    ``fill_seconds`` ages the page's form token (None: post at once);
    ``form`` overrides hidden fields (e.g. a forged form_token). Returns the
    POST response, not followed.
    """
    path = target if isinstance(target, str) else survey_path(target)
    fields = open_form(client, path)
    if fill_seconds is not None and fields.get("form_token"):
        fields["form_token"] = aged_form_token(fields["form_token"], fill_seconds)
    if submission_id is not None:
        fields["submission_id"] = submission_id
    fields.update(form or {})
    data = MultiDict(list(fields.items()) + answer_fields(answers))
    return client.post(path, data=data)


def submission_id_of(post_response) -> str:
    """The submission id a 303 to /thanks/<id> names."""
    location = post_response.headers["Location"]
    match = re.search(r"/thanks/([A-Za-z0-9_-]+)$", location)
    assert match, location
    return match.group(1)


def stored(submission_id: str) -> SurveyResponse | None:
    db.session.expire_all()
    return db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id))


# Documents -------------------------------------------------------------------------

def pdf_pages(data: bytes) -> int:
    """Page objects in a PDF written by reportlab (no object streams, so they are plain text)."""
    assert data.startswith(b"%PDF-"), data[:20]
    assert data.rstrip().endswith(b"%%EOF")
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


# Storing responses without the page -------------------------------------------

def record_response(*, version: TemplateVersion, institution_id: int, channel: Channel = Channel.TOUCHPOINT_QR,
                    touchpoint: Touchpoint | None = None, code: TouchpointCode | None = None,
                    submission_id: str | None = None, fields: dict[str, Any] | None = None,
                    **context) -> SurveyResponse:
    """Store one response through submission.submit_response; ``fields`` as for ``answer_fields``.

    Context defaults describe a clean, unflagged self-completed answer
    (``fill_seconds`` 30, a fresh device); override any Context field.
    """
    context.setdefault("fill_seconds", 30.0)
    context.setdefault("device_hash", uuid.uuid4().hex)
    context.setdefault("ip_hash", uuid.uuid4().hex)
    ctx = Context(institution_id=institution_id, channel=channel, version=version, touchpoint=touchpoint,
                  code_id=code.id if code else None, **context)
    data = MultiDict(answer_fields(fields or {}))
    return submit_response(ctx, submission_id or uuid.uuid4().hex, data.get, data.getlist).response


@pytest.fixture
def respond(ctx):
    """``respond(code, WIN_OVERALL='4', ...)``: a clean response to a touchpoint code, stored by the service."""

    def make(code: TouchpointCode, *, channel: Channel = Channel.TOUCHPOINT_QR, submission_id: str | None = None,
             version: TemplateVersion | None = None, context: dict[str, Any] | None = None, **answers):
        return record_response(version=version or code.template.published, institution_id=code.institution_id,
                               channel=channel, touchpoint=code.touchpoint, code=code, submission_id=submission_id,
                               fields=answers, **(context or {}))

    return make


@pytest.fixture
def survey_settings(rmyy):
    """rmyy's survey settings row (created with the defaults if missing)."""
    return settings_for(rmyy.id)


