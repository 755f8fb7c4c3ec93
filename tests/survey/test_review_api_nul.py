"""Review: a NUL byte in a JSON discharge is a 400 naming the field, never a 500."""
from __future__ import annotations

from sqlalchemy import func, select

from core.extensions import db
from survey.models import Discharge

from .test_followup import api_item, api_token, hospital, post_api, today  # noqa: F401 - fixtures


def test_a_nul_byte_in_a_discharge_field_is_a_400_naming_the_field(client, hospital, api_token, today):
    before = db.session.scalar(select(func.count()).select_from(Discharge))

    response = post_api(client, api_item(today, patient_name="王\x00秀兰"), api_token)

    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(0, "patient_name")]
    assert "无效字符" in errors[0]["message"]
    assert db.session.scalar(select(func.count()).select_from(Discharge)) == before
