"""Outbound messages: the one way to write to a member of the public keeps their address out of the logs."""
from __future__ import annotations

import copy
import logging
import pickle
from datetime import date

import pytest
from flask_babel import force_locale

from core import notify


def test_a_message_to_a_person_reaches_the_backend_with_the_address_as_given(app, ctx, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "memory")
    notify.outbox().clear()
    notify.send_to_person("13912345678", "主题", notify.sms_signature("市一院") + "正文", kind="test",
                          channel="sms", meta={"case": 1})
    (message,) = notify.outbox()
    assert message.recipients == ["13912345678"] and message.body == "【市一院】正文"
    assert message.meta == {"case": 1, "channel": "sms"}


def test_the_log_backend_writes_the_address_masked_and_never_the_body(app, ctx, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "log")
    with caplog.at_level(logging.INFO):
        notify.send_to_person("13912345678", "答复", "您的病历号 123456", kind="test", channel="sms")
        notify.send_to_person("zhang.san@example.cn", "答复", "正文", kind="test", channel="email")
    text = caplog.text
    assert "139****5678" in text and "z***@example.cn" in text
    assert "13912345678" not in text and "zhang.san" not in text and "病历号" not in text


def test_no_address_is_an_error_not_a_silent_drop(ctx):
    with pytest.raises(ValueError):
        notify.send_to_person("", "主题", "正文", kind="test", channel="sms")


# Staff notices: the recorder, item keys, links ------------------------------------------------------

def test_a_staff_notice_is_recorded_first_and_only_new_recipients_reach_the_backend(app, ctx, outbox):
    seen = []

    def recorder(message):
        seen.append(list(message.recipients))
        return notify.only_to(message, [r for r in message.recipients if r != "told-before"])

    previous = app.extensions.get("notify_recorder")
    notify.register_recorder(app, recorder)
    try:
        notify.send(notify.Message(recipients=["told-before", "new-one"], subject="s", body="b", key="item:1"))
        notify.send(notify.Message(recipients=["told-before"], subject="s", body="b", key="item:1"))
    finally:
        app.extensions["notify_recorder"] = previous
    assert seen == [["told-before", "new-one"], ["told-before"]]
    assert [m.recipients for m in outbox] == [["new-one"]]  # a message nobody new is to get is not sent


def test_a_text_to_a_person_never_passes_the_staff_recorder(app, ctx, outbox):
    previous = app.extensions.get("notify_recorder")
    notify.register_recorder(app, lambda message: pytest.fail("the recorder saw a complainant's number"))
    try:
        notify.send_to_person("13912345678", "主题", "正文", kind="test", channel="sms")
    finally:
        app.extensions["notify_recorder"] = previous
    assert [m.recipients for m in outbox] == [["13912345678"]]


@pytest.mark.parametrize("backend, sms_setting, delivers", [
    ("log", None, False), ("memory", None, True), ("hospital_gateway.send", None, True),
    ("log", True, True), ("hospital_gateway.send", False, False),
])
def test_whether_texts_reach_complainants_follows_the_backend_unless_set(app, monkeypatch, backend, sms_setting,
                                                                         delivers):
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", backend)
    monkeypatch.setitem(app.config, "SMS_GATEWAY", sms_setting)
    with app.app_context():
        assert notify.delivers("sms") is delivers


def test_a_link_built_in_a_job_without_an_address_is_the_path(app, monkeypatch):
    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    with app.app_context():  # a worker: no request, no SERVER_NAME
        assert notify.link("org.notifications_list") == "/notifications"
        assert notify.link("org.institution_overview", institution_id=3, _anchor="x") == "/i/3/#x"
        monkeypatch.setitem(app.config, "STAFF_BASE_URL", "https://tingjian.example.cn/")
        assert notify.link("org.notifications_list") == "https://tingjian.example.cn/notifications"


@pytest.mark.parametrize("address, path", [
    ("http://tingjian.test/i/1/complaints/5#feedback", "/i/1/complaints/5#feedback"),
    ("/i/1/survey/alerts/3", "/i/1/survey/alerts/3"),
    ("https://elsewhere.example/x?y=1", "/x?y=1"),
    ("//evil.example/x", "/x"),  # only ever the path: a link never leads off the site
    (None, None),
])
def test_the_in_app_list_keeps_a_link_as_a_path_on_this_site(address, path):
    assert notify.local_path(address) == path


# Texts: a notice's words, in Chinese for the channels and again in each reader's language ----------------

def test_a_text_is_its_chinese_words_and_keeps_what_it_was_made_of(ctx):
    subject = notify.notice_text("督办：投诉 %(number)s 已超期 %(n)d 个工作日", number="TS2026-00007", n=2)
    body = notify.notice_text("办理期限为 %(date)s，主办科室：%(dept)s。请督促尽快答复投诉人。", date="2026-10-13",
                              dept=notify.notice_text("未分派")) + "\n" + "TS2026-00008"
    assert isinstance(body, notify.Text) and isinstance("〔" + body, notify.Text)
    assert subject == "督办：投诉 TS2026-00007 已超期 2 个工作日"
    assert body == "办理期限为 2026-10-13，主办科室：未分派。请督促尽快答复投诉人。\nTS2026-00008"
    stored = body.to_json()
    assert stored == [["办理期限为 %(date)s，主办科室：%(dept)s。请督促尽快答复投诉人。",
                       {"date": "2026-10-13", "dept": {"text": [["未分派", {}]]}}], "\nTS2026-00008"]
    with force_locale("en"):
        english = "Escalation: complaint TS2026-00007 is overdue (working days: 2)"
        assert notify.render_text(subject.to_json()) == english
        assert notify.render_text(stored).startswith("The deadline was 2026-10-13; lead department: Not assigned.")
        assert notify.render_text(stored).endswith("\nTS2026-00008")
        assert str(subject) == "督办：投诉 TS2026-00007 已超期 2 个工作日"  # made once, in Chinese
    with force_locale("zh_Hans"):
        assert notify.render_text(stored) == body


def test_a_text_takes_json_values_only(ctx):
    with pytest.raises(TypeError):
        notify.notice_text("办理期限：%(date)s。", date=date(2026, 10, 13))
    assert notify.notice_text("办理期限：%(date)s。", date="2026-10-13") == "办理期限：2026-10-13。"


@pytest.mark.parametrize("stored", [
    "parts", [["办理期限：%(date)s。", {}, "extra"]], [["办理期限：%(date)s。", {"day": "x"}]], [[5, {}]],
    [["%(n)d", {"n": "x"}]], [["%(dept)s", {"dept": {"text": "x"}}]], [["%(dept)s", {"dept": [1]}]],
])
def test_stored_parts_that_do_not_fit_raise_for_the_caller_to_fall_back(ctx, stored):
    with pytest.raises((LookupError, TypeError, ValueError)):
        notify.render_text(stored)


def test_a_message_with_texts_survives_a_copy(ctx):
    text = notify.notice_text("投诉 %(number)s 将于 %(date)s 到期", number="TS2026-00007", date="2026-10-13")
    for clone in (copy.copy(text), copy.deepcopy(text), pickle.loads(pickle.dumps(text))):
        assert clone == text and clone.to_json() == text.to_json()
