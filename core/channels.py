"""Outbound channels for staff notices: WeCom (企业微信) and DingTalk (钉钉) group robots, and SMTP e-mail.

Each function delivers one notice and raises ``ChannelError`` when it did not arrive. The error's text is
written to logs and shown to administrators, so it never holds a secret (the webhook URL carries the
robot's key, the DingTalk signing secret, the SMTP password) nor the message itself: only what went
wrong (an HTTP status, the robot's error code, the SMTP reply code).

Only the standard library is used (urllib, smtplib): hospital servers install nothing more for it, and
both robot APIs are one JSON POST.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

# The robots' size limits (bytes of UTF-8): WeCom markdown 4096, DingTalk about 20000; keep well inside.
WECOM_MAX_BYTES = 4000
DINGTALK_MAX_BYTES = 4000


class ChannelError(Exception):
    """A notice did not reach its channel; the text says why and holds no secret and no message body."""


@dataclass(frozen=True)
class Notice:
    """What a channel carries: a title, a few lines of text and an optional link."""

    title: str
    text: str
    link: str | None = None


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def markdown(notice: Notice, limit: int) -> str:
    """The notice as the robots' markdown: bold title, the text, then the link."""
    lines = [f"**{notice.title}**", "", notice.text]
    if notice.link:
        lines += ["", f"[打开查看]({notice.link})"]
    lines += ["", "—— 听见 Tingjian"]  # the product's name: what a DingTalk robot's keyword check looks for
    return _clip("\n".join(lines), limit)


def _post_json(url: str, payload: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                                     headers={"Content-Type": "application/json; charset=utf-8"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:  # the reason names the network problem, never the URL
        raise ChannelError(f"{type(exc.reason).__name__}: {str(exc.reason)[:120]}") from None
    except (TimeoutError, OSError) as exc:
        raise ChannelError(type(exc).__name__) from None
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ChannelError("the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise ChannelError("the answer is not a JSON object")
    return answer


def _robot_answer(answer: dict) -> None:
    """Both robots answer {"errcode": 0, "errmsg": "ok"}; anything else is a refusal."""
    code = answer.get("errcode")
    if code != 0:
        message = str(answer.get("errmsg", ""))[:120]
        raise ChannelError(f"errcode {code}: {message}")


def check_webhook_url(url: str) -> bool:
    """An http(s) address with a host and no credentials in it."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.username is None


def send_wecom(webhook_url: str, notice: Notice, *, timeout: float = 10) -> None:
    """Post to a WeCom group robot (群机器人): https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"""
    payload = {"msgtype": "markdown", "markdown": {"content": markdown(notice, WECOM_MAX_BYTES)}}
    _robot_answer(_post_json(webhook_url, payload, timeout))


def dingtalk_signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: Base64 of HMAC-SHA256 over "<timestamp>\\n<secret>" keyed with the secret, URL-encoded."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_dingtalk_url(webhook_url: str, secret: str | None, *, now_ms: int | None = None) -> str:
    """The webhook address with &timestamp=…&sign=… when the robot uses a signing secret (SEC…)."""
    if not secret:
        return webhook_url
    timestamp = now_ms if now_ms is not None else int(time.time() * 1000)
    joiner = "&" if urllib.parse.urlsplit(webhook_url).query else "?"
    return f"{webhook_url}{joiner}timestamp={timestamp}&sign={dingtalk_signature(secret, timestamp)}"


def send_dingtalk(webhook_url: str, notice: Notice, *, secret: str | None = None, timeout: float = 10) -> None:
    """Post to a DingTalk custom robot (自定义机器人): https://oapi.dingtalk.com/robot/send?access_token=…"""
    payload = {"msgtype": "markdown",
               "markdown": {"title": notice.title[:60], "text": markdown(notice, DINGTALK_MAX_BYTES)}}
    _robot_answer(_post_json(signed_dingtalk_url(webhook_url, secret), payload, timeout))


# E-mail --------------------------------------------------------------------------------------------

SMTP_SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str = "starttls"     # starttls | ssl | none
    username: str = ""
    password: str = ""
    sender: str = ""               # the From address
    sender_name: str = ""


def send_email(server: SmtpServer, recipients: list[str], notice: Notice, *, timeout: float = 10) -> None:
    """Send the notice as a plain-text e-mail to ``recipients`` through ``server``."""
    if not recipients:
        raise ChannelError("no recipients")
    message = EmailMessage()
    message["Subject"] = notice.title
    message["From"] = formataddr((server.sender_name, server.sender)) if server.sender_name else server.sender
    message["To"] = ", ".join(str(Address(addr_spec=r)) for r in recipients)
    message["Message-ID"] = make_msgid(domain=server.sender.rpartition("@")[2] or None)
    message.set_content(notice.text + (f"\n\n{notice.link}" if notice.link else ""))
    context = ssl.create_default_context()
    try:
        if server.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            if server.security == "starttls":
                client.starttls(context=context)
            if server.username:
                client.login(server.username, server.password)
            refused = client.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"SMTP {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"SMTP refused {len(exc.recipients)} recipients") from None
    except smtplib.SMTPException as exc:
        raise ChannelError(type(exc).__name__) from None
    except (TimeoutError, OSError) as exc:
        raise ChannelError(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if refused:
        raise ChannelError(f"SMTP refused {len(refused)} of {len(recipients)} recipients")
