"""The outbound channels for staff notices, against local fake servers: WeCom and DingTalk group robots, SMTP."""
from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from email import message_from_bytes, policy
from urllib.parse import unquote_plus

import pytest

from core import channels
from tests.fake_servers import FakeRobot, FakeSmtp

NOTICE = channels.Notice(title="新投诉 TS2026-00001 已分派至心血管内科（主办）",
                         text="办理期限：2026-10-13。\n致：李主任", link="https://tingjian.example.cn/i/1/complaints/1")


def test_wecom_gets_one_markdown_message_with_the_title_text_and_link():
    with FakeRobot() as robot:
        channels.send_wecom(robot.url("/cgi-bin/webhook/send?key=abc-123"), NOTICE)
    (request,) = robot.requests
    assert request.path == "/cgi-bin/webhook/send" and request.query == {"key": ["abc-123"]}
    assert request.payload["msgtype"] == "markdown"
    content = request.payload["markdown"]["content"]
    assert content.startswith("**新投诉 TS2026-00001 已分派至心血管内科（主办）**")
    assert "致：李主任" in content and "(https://tingjian.example.cn/i/1/complaints/1)" in content
    assert "听见" in content  # the keyword a DingTalk robot may check for


def test_a_robot_refusal_or_an_http_error_raises_without_the_key_in_the_message():
    with FakeRobot() as robot:
        robot.answers = [(200, {"errcode": 93000, "errmsg": "invalid webhook url"}), (500, "oops")]
        url = robot.url("/cgi-bin/webhook/send?key=very-secret-key")
        with pytest.raises(channels.ChannelError) as refused:
            channels.send_wecom(url, NOTICE)
        with pytest.raises(channels.ChannelError) as broken:
            channels.send_wecom(url, NOTICE)
    assert str(refused.value) == "errcode 93000: invalid webhook url"
    assert str(broken.value) == "HTTP 500"
    assert "very-secret-key" not in str(refused.value) + str(broken.value)


def test_an_unreachable_robot_is_a_channel_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(channels.ChannelError) as failed:
        channels.send_wecom(f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=secret-k", NOTICE, timeout=2)
    assert str(failed.value).startswith("ConnectionRefusedError") and "secret-k" not in str(failed.value)


def test_a_long_notice_is_cut_to_the_robots_size_limit():
    long = channels.Notice(title="标题", text="很长的内容" * 2000)
    with FakeRobot() as robot:
        channels.send_wecom(robot.url("/send?key=k"), long)
    assert len(robot.requests[0].payload["markdown"]["content"].encode()) <= channels.WECOM_MAX_BYTES


def test_dingtalk_signs_with_hmac_sha256_of_timestamp_and_secret():
    secret = "SEC0123456789abcdef"
    with FakeRobot() as robot:
        channels.send_dingtalk(robot.url("/robot/send?access_token=tok"), NOTICE, secret=secret)
    (request,) = robot.requests
    assert request.query["access_token"] == ["tok"]
    timestamp = request.query["timestamp"][0]
    # What DingTalk checks: Base64(HMAC-SHA256(key=secret, "<timestamp>\n<secret>")), URL-encoded in the query.
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert request.query["sign"] == [expected]  # parse_qs decoded it once, as DingTalk does
    assert request.payload["msgtype"] == "markdown" and request.payload["markdown"]["title"].startswith("新投诉")


def test_dingtalk_signature_matches_the_documented_example():
    # The computation of DingTalk's documentation (Python sample), done by hand for a fixed timestamp.
    sign = channels.dingtalk_signature("this is secret", 1577262236757)
    raw = hmac.new(b"this is secret", b"1577262236757\nthis is secret", hashlib.sha256).digest()
    assert unquote_plus(sign) == base64.b64encode(raw).decode() and "+" not in sign and "/" not in sign


def test_dingtalk_without_a_secret_sends_no_signature():
    with FakeRobot() as robot:
        channels.send_dingtalk(robot.url("/robot/send?access_token=tok"), NOTICE)
    assert set(robot.requests[0].query) == {"access_token"}


def test_an_email_goes_to_every_mailbox_with_the_title_text_and_link():
    with FakeSmtp() as smtp:
        server = channels.SmtpServer(host="127.0.0.1", port=smtp.port, security="none", username="tingjian",
                                     password="pw-123", sender="tingjian@hospital.example.cn", sender_name="听见")
        channels.send_email(server, ["tousu@hospital.example.cn", "yiwu@hospital.example.cn"], NOTICE, timeout=5)
    (mail,) = smtp.state.mails
    assert smtp.state.logins == [("tingjian", "pw-123")]
    assert mail.sender == "tingjian@hospital.example.cn"
    assert mail.recipients == ["tousu@hospital.example.cn", "yiwu@hospital.example.cn"]
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert parsed["Subject"] == NOTICE.title
    body = parsed.get_content()
    assert "致：李主任" in body and NOTICE.link in body


def test_smtp_refusals_are_channel_errors_without_the_password():
    with FakeSmtp() as smtp:
        smtp.state.refuse = {"nobody@hospital.example.cn"}
        server = channels.SmtpServer(host="127.0.0.1", port=smtp.port, security="none",
                                     sender="tingjian@hospital.example.cn")
        with pytest.raises(channels.ChannelError) as refused:
            channels.send_email(server, ["nobody@hospital.example.cn"], NOTICE, timeout=5)
        smtp.state.reject_auth = True
        with_login = channels.SmtpServer(host="127.0.0.1", port=smtp.port, security="none", username="u",
                                         password="pw-secret", sender="tingjian@hospital.example.cn")
        with pytest.raises(channels.ChannelError) as denied:
            channels.send_email(with_login, ["tousu@hospital.example.cn"], NOTICE, timeout=5)
    assert "refused" in str(refused.value) and str(denied.value) == "SMTP 535"
    assert "pw-secret" not in str(denied.value)


@pytest.mark.parametrize("url, ok", [
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x", True),
    ("http://127.0.0.1:8080/send", True),
    ("ftp://qyapi.weixin.qq.com/x", False),
    ("https://user:pw@qyapi.weixin.qq.com/x", False),
    ("qyapi.weixin.qq.com/cgi-bin/webhook/send", False),
    ("file:///etc/passwd", False),
])
def test_only_plain_http_addresses_count_as_webhooks(url, ok):
    assert channels.check_webhook_url(url) is ok
