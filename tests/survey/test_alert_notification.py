"""An alert notification is sent once even when the sweep and the post-submit job race; it reaches the in-app
lists, and open alerts and due follow-up calls stand on the to-do lists of those who work them."""
from __future__ import annotations

import re

from sqlalchemy import select, update

from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from organisation.models import Notification
from survey import followup, tasks
from survey.models import RecoveryAlert
from tests.factories import demo_user, login
from tests.survey.test_followup import NAME, make_discharge


def test_an_alert_another_worker_has_just_notified_is_not_sent_again(window_code, respond, outbox):
    response = respond(window_code, WIN_OVERALL="1")
    alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == response.id))
    assert alert.notified_at is None  # this worker has read the alert ...
    # ... and meanwhile the other worker (the sweep, or the job queued at submit time) sent and committed.
    db.session.execute(update(RecoveryAlert).where(RecoveryAlert.id == alert.id).values(notified_at=utcnow())
                       .execution_options(synchronize_session=False))

    assert tasks.notify_alert(alert.id) is False
    assert outbox == []


# In the app: the notification list and the to-do list ------------------------------------------------

def test_an_alert_reaches_the_handlers_and_officers_lists_once(window_code, respond, outbox):
    response = respond(window_code, WIN_OVERALL="1")
    alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == response.id))
    assert tasks.notify_alert(alert.id) is True
    for username in ("rmyy-handler", "rmyy-officer"):
        (row,) = db.session.scalars(select(Notification).where(Notification.user_id == demo_user(username).id,
                                                                Notification.key == f"alert:{alert.id}"))
        assert row.kind == "survey_alert" and row.link == f"/i/{alert.institution_id}/survey/alerts/{alert.id}"
        assert row.subject.startswith("服务补救提醒")


def test_open_alerts_are_on_the_to_do_list_of_those_who_work_them(window_code, respond, client):
    respond(window_code, WIN_OVERALL="1")
    institution_id = window_code.institution_id
    login(client, demo_user("rmyy-handler"))
    alerts_page = client.get(f"/i/{institution_id}/survey/alerts?status=open").get_data(as_text=True)
    home = client.get(f"/i/{institution_id}/").get_data(as_text=True)
    shown = re.search(r'"todo-count">(\d+)</span><span class="todo-label">待处理的服务补救提醒</span>', home)
    listed = re.search(r"共 (\d+) 条", alerts_page)
    assert shown and listed and shown.group(1) == listed.group(1) and int(shown.group(1)) >= 1
    assert f'href="/i/{institution_id}/survey/alerts?status=open"' in home
    login(client, demo_user("rmyy-leader"))  # leadership watches alerts, it does not work them
    assert "待处理的服务补救提醒" not in client.get(f"/i/{institution_id}/").get_data(as_text=True)


def test_the_nurses_to_do_list_counts_the_calls_due(rmyy, client):
    make_discharge(rmyy)
    login(client, demo_user("rmyy-nurse"))
    home = client.get(f"/i/{rmyy.id}/").get_data(as_text=True)
    calls = client.get(f"/i/{rmyy.id}/survey/followup").get_data(as_text=True)
    shown = re.search(r'"todo-count">(\d+)</span><span class="todo-label">待回访的出院患者</span>', home)
    assert shown and int(shown.group(1)) == followup.due_count(rmyy, today=local_today()) >= 1
    assert f'href="/i/{rmyy.id}/survey/followup"' in home and calls.count(NAME) >= 1
