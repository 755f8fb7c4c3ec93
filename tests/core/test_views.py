"""The one form -> service -> commit helper: refusals roll back and answer 400, 403 or 409."""
from __future__ import annotations

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired

from core.extensions import db
from core.services import Conflict, Refused, ServiceError
from core.views import handle_form
from organisation.models import Region


class NameForm(FlaskForm):
    name = StringField(validators=[DataRequired()])


def post(app, data, action, **kwargs):
    """Run handle_form in a POST request; returns (response or (body, status), form, regions named 测试区域)."""
    rendered = {}

    def render(form, status):
        rendered["form"] = form
        return "form page", status

    with app.test_request_context("/", method="POST", data=data):
        form = NameForm()
        result = handle_form(form, action, success="已保存。", next_url=lambda r: "/done", render=render, **kwargs)
        regions = db.session.scalars(select(Region).where(Region.code == "TEST-VIEWS")).all()
    return result, rendered.get("form"), regions


def add_region(message_type=None, field=None):
    def action():
        db.session.add(Region(code="TEST-VIEWS", name="测试区域", level="city", path="/"))
        db.session.flush()
        if message_type is not None:
            raise message_type("不行", field)
        return "ok"
    return action


def test_a_valid_form_commits_once_and_redirects(app):
    calls = []
    result, _form, regions = post(app, {"name": "甲"}, add_region(), after=lambda r: calls.append(r))
    assert result.status_code == 302 and result.location == "/done"
    assert len(regions) == 1 and calls == ["ok"]


@pytest.mark.parametrize("error, status", [(ServiceError, 400), (Refused, 403), (Conflict, 409)])
def test_a_refusal_rolls_back_and_answers_with_its_status(app, error, status):
    calls = []
    (body, answered), form, regions = post(app, {"name": "甲"}, add_region(error), after=lambda r: calls.append(r))
    assert answered == status and regions == [] and calls == []
    assert form.form_errors == ["不行"]


def test_the_message_lands_on_the_field_it_names(app):
    (_body, status), form, _regions = post(app, {"name": "甲"}, add_region(ServiceError, "name"))
    assert status == 400 and form.name.errors == ["不行"] and form.form_errors == []


def test_an_invalid_post_never_reaches_the_service(app):
    def action():
        raise AssertionError("the service ran")

    (_body, status), form, _regions = post(app, {"name": ""}, action)
    assert status == 400 and form.name.errors


def test_a_workflow_refusal_and_a_stale_page_are_403_and_409():
    from complaints.workflow import ConcurrentChange, NotAllowed, WorkflowError

    assert (WorkflowError("x").status, NotAllowed("x").status, ConcurrentChange().status) == (400, 403, 409)
