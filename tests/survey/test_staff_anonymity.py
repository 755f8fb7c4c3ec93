"""Staff answers are anonymous: never listed one by one, never in a row-level export."""
from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from organisation.models import Department
from survey.models import Channel
from tests.survey.conftest import record_response, staff_login


def _staff_response(rmyy, builtin_templates):
    department = db.session.scalar(select(Department).where(Department.institution_id == rmyy.id,
                                                            Department.code == "XNK"))
    return record_response(version=builtin_templates["STF"].published, institution_id=rmyy.id,
                           channel=Channel.STAFF_TOKEN, department_id=department.id,
                           fields={"STF_OVERALL": "1", "STF_COMMENT": "科室排班很不合理"})


def test_staff_answers_are_not_in_the_response_list_detail_or_export(client, rmyy, builtin_templates):
    response = _staff_response(rmyy, builtin_templates)
    staff_login(client, "rmyy-admin")

    listing = client.get(f"/i/{rmyy.id}/survey/responses?flagged=all")
    assert listing.status_code == 200
    assert "科室排班很不合理" not in listing.get_data(as_text=True)
    assert client.get(f"/i/{rmyy.id}/survey/responses/{response.id}").status_code == 404
    export = client.get(f"/i/{rmyy.id}/survey/responses/export.csv?flagged=all")
    assert export.status_code == 200
    assert "科室排班很不合理" not in export.get_data(as_text=True)


def test_staff_channel_is_not_offered_as_a_response_filter(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    page = client.get(f"/i/{rmyy.id}/survey/responses").get_data(as_text=True)
    assert 'value="staff_token"' not in page
