"""Personal data never reaches a log line through a database error's message."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError

from core.db import utcnow
from core.extensions import db
from survey.models import Discharge


def test_a_failed_insert_never_puts_the_patients_name_or_phone_in_the_error(rmyy):
    # The error handler logs unhandled exceptions; SQLAlchemy's message lists every bound value by default.
    discharge = Discharge(institution_id=rmyy.id, department_id=2**31 - 1, discharge_date=date.today(),
                          patient_name="王秀兰", phone="13912345678", external_ref_hash="x" * 64,
                          link_expires_at=utcnow())

    with pytest.raises(IntegrityError) as caught:
        with db.session.begin_nested():
            db.session.add(discharge)
            db.session.flush()

    message = str(caught.value)
    assert "department" in message  # the error itself is still useful
    assert "13912345678" not in message and "王秀兰" not in message
