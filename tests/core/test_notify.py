"""Outbound messages: the one way to write to a member of the public keeps their address out of the logs."""
from __future__ import annotations

import logging

import pytest

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
