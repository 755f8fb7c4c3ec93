"""Staff notifications: each user's in-app list, and each institution's outbound channels.

Every staff notice goes through ``core.notify.send``, which hands it to ``record`` here (registered as
core.notify's recorder by organisation.tasks) inside the transaction of the job that raised it:

* one ``Notification`` row per recipient, unique per (user, key), so a job that runs again — a sweep, a
  retry — tells nobody twice, and a job that rolls back tells nobody at all. It stores the subject and body
  in Chinese and, when they are ``core.notify.Text``s, what they were made of: the list shows them in the
  reader's language (``shown``);
* for each institution of the new recipients whose admin configured channels (``NotifierSettings``:
  WeCom and DingTalk group robots, an SMTP relay), one ``NotifierDelivery`` per channel: the outbox.
  The delivery job (organisation.tasks.deliver), queued once the transaction commits, sends it; its
  sweep retries failures with growing pauses. Nothing is sent from a request or inside a transaction.

The channels' secrets (the webhook addresses carry the robots' keys, the DingTalk signing secret, the
SMTP password) are stored for sending and never shown back in full, logged or audited.
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core import channels
from core.audit import record as audit
from core.db import insert_unless_present, utcnow
from core.extensions import db
from core.notify import Message, Text, local_path, only_to, render_text
from core.services import ServiceError
from organisation.models import (
    DeliveryChannel,
    Institution,
    Notification,
    NotifierDelivery,
    NotifierSettings,
    SmtpSecurity,
    StaffUser,
)

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

MAX_SUBJECT = 200
MAX_BODY = 500
MAX_RECIPIENTS = 10
# A delivery is tried again after 1, 2, 4 … minutes (at most an hour apart), then given up on.
MAX_ATTEMPTS = 8
MAX_PAUSE_MINUTES = 60
# While one worker sends, the row is leased: another worker's sweep leaves it alone for this long.
LEASE = timedelta(minutes=5)
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")

log = logging.getLogger(__name__)


# Recording (core.notify's recorder) ------------------------------------------------------------------

def _clip(text: str, limit: int) -> str:
    text = str(text)  # the words of a Text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _texts(message: Message) -> dict[str, Any] | None:
    """What the message's subject and body were made of, for the list to show them in the reader's language."""
    texts = {name: value.to_json() for name, value in (("subject", message.subject), ("body", message.body))
             if isinstance(value, Text)}
    return texts or None


def record(message: Message) -> tuple[Message, list[int]]:
    """Keep a staff notice in each recipient's list (once per key) and put it in the outbox of their
    institutions' channels; returns the message for the recipients who had not had it, and the outbox rows."""
    usernames = list(dict.fromkeys(message.recipients))
    users = {u.username: u for u in db.session.execute(  # plain rows: a notice may go to many people
        select(StaffUser.id, StaffUser.username, StaffUser.institution_id, StaffUser.display_name)
        .where(StaffUser.username.in_(usernames)))}
    now = utcnow()
    path = local_path(message.link)
    texts = _texts(message)
    told: list[str] = []
    new_users: list[Any] = []
    for username in usernames:
        user = users.get(username)
        if user is None:  # not a staff account: left to the backend as it was
            told.append(username)
            continue
        inserted = insert_unless_present(db.session(), Notification, ["user_id", "key"], {
            "user_id": user.id, "institution_id": user.institution_id, "kind": message.kind[:40],
            "key": message.key[:120] if message.key else None, "subject": _clip(message.subject, MAX_SUBJECT),
            "body": _clip(message.body, MAX_BODY), "link": path if path and len(path) <= 300 else None,
            "created_at": now, **({"texts": texts} if texts else {})})  # none: SQL NULL, not JSON null
        if inserted:
            told.append(username)
            new_users.append(user)
    by_institution: dict[int, list[Any]] = defaultdict(list)
    for user in new_users:
        if user.institution_id is not None:
            by_institution[user.institution_id].append(user)
    deliveries = [row.id for institution_id, people in by_institution.items()
                  for row in _queue_deliveries(institution_id, message, people, now)]
    return only_to(message, told), deliveries


def _queue_deliveries(institution_id: int, message: Message, people: list[Any],
                      now: datetime) -> list[NotifierDelivery]:
    settings = db.session.get(NotifierSettings, institution_id)
    wanted = configured_channels(settings) if settings is not None else []
    if not wanted:
        return []
    with force_locale("zh_Hans"):  # a group chat's notice names whom it is for
        names = gettext("、").join(p.display_name for p in people)
        body = message.body + "\n" + gettext("致：%(names)s", names=names)
    rows = [NotifierDelivery(institution_id=institution_id, channel=channel, kind=message.kind[:40],
                             subject=_clip(message.subject, MAX_SUBJECT), body=_clip(body, 2000),
                             link=message.link if message.link and len(message.link) <= 500 else None,
                             created_at=now, next_attempt_at=now, attempts=0, last_error="")
            for channel in wanted]
    db.session.add_all(rows)
    db.session.flush()
    return rows


# The in-app list --------------------------------------------------------------------------------------

def unread_count(user: StaffUser) -> int:
    """The header's badge: one indexed count (ix_notification_unread)."""
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def notifications_for(user: StaffUser, *, unread_only: bool = False):
    """A user's notifications, newest first."""
    stmt = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return stmt.order_by(Notification.created_at.desc(), Notification.id.desc())


def latest_notifications(user: StaffUser, limit: int = 5) -> list[Notification]:
    return list(db.session.scalars(notifications_for(user).limit(limit)))


@dataclass(frozen=True)
class Shown:
    subject: str
    body: str


def shown(notification: Notification) -> Shown:
    """A notification's subject and body in the current locale (every page that lists notices shows them so).

    Rendered again from what they were made of (``texts``); a notice without (recorded before, or of plain
    words), or whose message ids and parameters no longer fit, is shown as stored, in Chinese.
    """
    texts = notification.texts if isinstance(notification.texts, dict) else {}
    return Shown(subject=_shown(notification, texts, "subject", notification.subject, MAX_SUBJECT),
                 body=_shown(notification, texts, "body", notification.body, MAX_BODY))


def _shown(notification: Notification, texts: dict[str, Any], name: str, stored: str, limit: int) -> str:
    if texts.get(name) is None:
        return stored
    try:
        return _clip(render_text(texts[name]), limit)
    except (LookupError, TypeError, ValueError) as exc:
        log.warning("notification %s: its %s is shown as stored (%s: %s)", notification.id, name,
                    type(exc).__name__, exc)
        return stored


def own_notification(user: StaffUser, notification_id: int) -> Notification | None:
    """One of the user's own notifications; someone else's is None (a 404, like any invisible row)."""
    notification = db.session.get(Notification, notification_id)
    return notification if notification is not None and notification.user_id == user.id else None


def mark_read(notification: Notification) -> bool:
    """Mark one notification read; False when it was already. (Reading is the user's own view of their list,
    not a change to a record, so it is not audited.)"""
    if notification.read_at is not None:
        return False
    notification.read_at = utcnow()
    return True


def mark_all_read(user: StaffUser) -> int:
    """Mark every unread notification of the user read; returns how many."""
    result = cast("CursorResult[Any]", db.session.execute(
        update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False)))
    return result.rowcount


# The institution's channels ---------------------------------------------------------------------------

def settings_for(institution: Institution) -> NotifierSettings:
    """The institution's channel settings (an unsaved empty row when none were saved)."""
    return db.session.get(NotifierSettings, institution.id) or NotifierSettings(
        institution_id=institution.id, wecom_webhook="", dingtalk_webhook="", dingtalk_secret="", smtp_host="",
        smtp_port=587, smtp_security=SmtpSecurity.STARTTLS, smtp_username="", smtp_password="", smtp_sender="",
        smtp_recipients="")


def email_recipients(settings: NotifierSettings) -> list[str]:
    return [r for r in re.split(r"[,;，；\s]+", settings.smtp_recipients or "") if r]


def configured_channels(settings: NotifierSettings) -> list[DeliveryChannel]:
    found = []
    if settings.wecom_webhook:
        found.append(DeliveryChannel.WECOM)
    if settings.dingtalk_webhook:
        found.append(DeliveryChannel.DINGTALK)
    if settings.smtp_host and settings.smtp_sender and email_recipients(settings):
        found.append(DeliveryChannel.EMAIL)
    return found


def masked(secret: str) -> str:
    """A stored secret as the settings page shows it: where it points and its last four characters."""
    if not secret:
        return ""
    parts = urlsplit(secret)
    head = f"{parts.scheme}://{parts.hostname}/" if parts.scheme and parts.hostname else ""
    return f"{head}…{secret[-4:]}" if len(secret) > 8 else "…"


def webhook_hosts() -> tuple[str, ...]:
    """The hosts a webhook may point at (the WEBHOOK_HOSTS setting)."""
    hosts = current_app.config.get("WEBHOOK_HOSTS") or ()
    return (hosts,) if isinstance(hosts, str) else tuple(hosts)


def _webhook(value: str, field: str) -> str:
    value = value.strip()
    if len(value) > 500 or not channels.check_webhook_url(value):
        raise ServiceError(gettext("请填写完整的机器人 Webhook 地址（以 https:// 开头）。"), field)
    host = urlsplit(value).hostname or ""
    if host not in webhook_hosts():
        raise ServiceError(gettext("只接受企业微信或钉钉的机器人地址（%(hosts)s）。私有化部署的地址请由运维人员加入"
                                   "设置 WEBHOOK_HOSTS。", hosts="、".join(webhook_hosts())), field)
    return value


def _email(value: str, field: str) -> str:
    value = value.strip()
    if len(value) > 254 or not EMAIL_RE.match(value):
        raise ServiceError(gettext("“%(value)s”不是有效的电子邮件地址。", value=value[:60]), field)
    return value


@dataclass
class ChannelValues:
    """What the settings form says; None for a secret left blank (keep the stored one)."""

    wecom_webhook: str | None = None
    clear_wecom: bool = False
    dingtalk_webhook: str | None = None
    dingtalk_secret: str | None = None
    clear_dingtalk: bool = False
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = SmtpSecurity.STARTTLS.value
    smtp_username: str = ""
    smtp_password: str | None = None
    smtp_sender: str = ""
    smtp_recipients: str = ""
    clear_email: bool = False


def update_notifier_settings(institution: Institution, values: ChannelValues, *, actor: Any) -> NotifierSettings:
    """An institution admin sets the outbound channels; a blank secret keeps the stored one, "clear" removes a
    channel. The audit entry names the fields that changed, never their values."""
    settings = settings_for(institution)
    before = {name: getattr(settings, name) for name in _SETTINGS_FIELDS}
    if values.clear_wecom:
        settings.wecom_webhook = ""
    elif values.wecom_webhook:
        settings.wecom_webhook = _webhook(values.wecom_webhook, "wecom_webhook")
    if values.clear_dingtalk:
        settings.dingtalk_webhook = settings.dingtalk_secret = ""
    else:
        if values.dingtalk_webhook:
            settings.dingtalk_webhook = _webhook(values.dingtalk_webhook, "dingtalk_webhook")
        if values.dingtalk_secret:
            secret = values.dingtalk_secret.strip()
            if len(secret) > 200 or not secret.isascii() or any(ch.isspace() for ch in secret):
                raise ServiceError(gettext("加签密钥是钉钉机器人安全设置中以 SEC 开头的一串字符。"), "dingtalk_secret")
            settings.dingtalk_secret = secret
    if values.clear_email:
        settings.smtp_host = settings.smtp_username = settings.smtp_password = ""
        settings.smtp_sender = settings.smtp_recipients = ""
    else:
        _set_email(settings, values)
    changed = sorted(name for name in _SETTINGS_FIELDS if getattr(settings, name) != before[name])
    if changed:
        if settings not in db.session:
            db.session.add(settings)
        db.session.flush()
        audit(actor, "notifier.update", institution, {"changed": changed})
    return settings


def _set_email(settings: NotifierSettings, values: ChannelValues) -> None:
    host = values.smtp_host.strip()
    if not host:
        if values.smtp_sender.strip() or values.smtp_recipients.strip():
            raise ServiceError(gettext("请填写邮件服务器地址。"), "smtp_host")
        settings.smtp_host = ""
        return
    if len(host) > 200 or not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        raise ServiceError(gettext("邮件服务器地址只能包含字母、数字、点和短横线，如 smtp.example-hospital.cn。"),
                           "smtp_host")
    if not 1 <= (values.smtp_port or 0) <= 65535:
        raise ServiceError(gettext("端口须在 1 到 65535 之间。"), "smtp_port")
    recipients = [_email(r, "smtp_recipients") for r in re.split(r"[,;，；\s]+", values.smtp_recipients) if r]
    if not recipients:
        raise ServiceError(gettext("请至少填写一个收件邮箱。"), "smtp_recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise ServiceError(gettext("收件邮箱最多 %(n)d 个。", n=MAX_RECIPIENTS), "smtp_recipients")
    settings.smtp_host = host
    settings.smtp_port = values.smtp_port
    settings.smtp_security = SmtpSecurity(values.smtp_security)
    settings.smtp_username = values.smtp_username.strip()[:200]
    if values.smtp_password:
        settings.smtp_password = values.smtp_password[:200]
    settings.smtp_sender = _email(values.smtp_sender, "smtp_sender")
    settings.smtp_recipients = ", ".join(recipients)


_SETTINGS_FIELDS = ("wecom_webhook", "dingtalk_webhook", "dingtalk_secret", "smtp_host", "smtp_port",
                    "smtp_security", "smtp_username", "smtp_password", "smtp_sender", "smtp_recipients")


def queue_test(institution: Institution, channel: DeliveryChannel, *, actor: Any) -> NotifierDelivery:
    """Put a test notice in the outbox of one configured channel (the caller commits, then queues the job)."""
    settings = db.session.get(NotifierSettings, institution.id)
    if settings is None or channel not in configured_channels(settings):
        raise ServiceError(gettext("请先填写并保存该渠道的设置。"))
    now = utcnow()
    with force_locale("zh_Hans"):
        subject = gettext("听见：测试消息")
        body = gettext("这是一条测试消息：%(institution)s 的%(channel)s已接通，投诉、提醒与服务补救通知会发到这里。",
                       institution=institution.name, channel=channel.label)
    delivery = NotifierDelivery(institution_id=institution.id, channel=channel, kind="test", subject=subject,
                                body=body, link=None, created_at=now, next_attempt_at=now, attempts=0, last_error="")
    db.session.add(delivery)
    db.session.flush()
    audit(actor, "notifier.test", institution, {"channel": channel.value})
    return delivery


def recent_deliveries(institution: Institution, limit: int = 10) -> list[NotifierDelivery]:
    return list(db.session.scalars(select(NotifierDelivery).where(NotifierDelivery.institution_id == institution.id)
                                   .order_by(NotifierDelivery.created_at.desc(), NotifierDelivery.id.desc())
                                   .limit(limit)))


# Delivering -------------------------------------------------------------------------------------------

def waiting_deliveries(now: datetime, limit: int = 200) -> list[int]:
    """Outbox rows due for a (first or further) attempt, oldest first (ix_notifier_delivery_waiting)."""
    return list(db.session.scalars(select(NotifierDelivery.id).where(
        NotifierDelivery.sent_at.is_(None), NotifierDelivery.gave_up_at.is_(None),
        NotifierDelivery.next_attempt_at <= now).order_by(NotifierDelivery.next_attempt_at, NotifierDelivery.id)
        .limit(limit)))


def claim(delivery_id: int, now: datetime) -> NotifierDelivery | None:
    """Take a due delivery for one attempt (a conditional UPDATE: of two workers, one wins), leasing it while
    it is sent; None when it is not due, done, or another worker has it. The caller commits the claim."""
    result = cast("CursorResult[Any]", db.session.execute(
        update(NotifierDelivery).where(NotifierDelivery.id == delivery_id, NotifierDelivery.sent_at.is_(None),
                                       NotifierDelivery.gave_up_at.is_(None),
                                       NotifierDelivery.next_attempt_at <= now)
        .values(attempts=NotifierDelivery.attempts + 1, next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        return None
    delivery = db.session.get_one(NotifierDelivery, delivery_id)
    db.session.refresh(delivery)
    return delivery


def transmit(delivery: NotifierDelivery) -> None:
    """Send one delivery through its channel as the institution configures it now; raises ChannelError."""
    settings = db.session.get(NotifierSettings, delivery.institution_id)
    if settings is None or delivery.channel not in configured_channels(settings):
        raise channels.ChannelError("channel no longer configured")
    timeout = float(current_app.config.get("NOTIFY_CHANNEL_TIMEOUT", 10))
    link = delivery.link if delivery.link and urlsplit(delivery.link).scheme in ("http", "https") else None
    notice = channels.Notice(title=delivery.subject, text=delivery.body, link=link)
    if delivery.channel == DeliveryChannel.WECOM:
        _check_host(settings.wecom_webhook)
        channels.send_wecom(settings.wecom_webhook, notice, timeout=timeout)
    elif delivery.channel == DeliveryChannel.DINGTALK:
        _check_host(settings.dingtalk_webhook)
        channels.send_dingtalk(settings.dingtalk_webhook, notice, secret=settings.dingtalk_secret or None,
                               timeout=timeout)
    else:
        server = channels.SmtpServer(host=settings.smtp_host, port=settings.smtp_port,
                                     security=SmtpSecurity(settings.smtp_security).value,
                                     username=settings.smtp_username, password=settings.smtp_password,
                                     sender=settings.smtp_sender, sender_name=gettext("听见"))
        channels.send_email(server, email_recipients(settings), notice, timeout=timeout)


def _check_host(url: str) -> None:
    if (urlsplit(url).hostname or "") not in webhook_hosts():
        raise channels.ChannelError("webhook host not allowed (WEBHOOK_HOSTS)")


# What a delivery's technical error means, for the admin reading the delivery list (the error itself is
# kept and shown beside it for whoever has to fix the server).
_ERROR_MEANINGS = (
    (("gaierror", "Name or service not known", "nodename nor servname"),
     _l("找不到该服务器：请核对网址，或检查本系统服务器能否解析域名")),
    (("WEBHOOK_HOSTS",), _l("该网址的主机不在本系统允许的推送地址中，请联系系统管理员")),
    (("timed out", "Timeout", "timeout"), _l("连接超时：服务器无响应或网络不通")),
    (("Connection refused", "ConnectionRefused"), _l("连接被拒绝：地址或端口不对，或服务器未开启")),
    (("SSL", "CERTIFICATE"), _l("安全连接失败：请检查证书或加密方式")),
    (("HTTP 4", "errcode"), _l("推送地址拒绝了消息：请核对机器人地址、密钥或关键词设置")),
    (("HTTP 5",), _l("推送服务暂时出错，将自动重试")),
    (("SMTP 535", "SMTPAuthentication"), _l("邮件服务器拒绝登录：请核对用户名和密码（授权码）")),
    (("SMTP",), _l("邮件服务器拒绝了这封邮件")),
    (("no recipients",), _l("没有可接收邮件的人员：请为人员填写电子邮箱")),
)


def error_meaning(error: str) -> str:
    """A delivery error in words an admin can act on ("" for none)."""
    if not error:
        return ""
    for needles, meaning in _ERROR_MEANINGS:
        if any(needle in error for needle in needles):
            return str(meaning)
    return gettext("发送失败")


def finish(delivery: NotifierDelivery, error: str | None, now: datetime) -> None:
    """Record an attempt: sent, or failed and due again after a pause that doubles, or given up on."""
    if error is None:
        delivery.sent_at = now
        delivery.last_error = ""
        return
    delivery.last_error = error[:200]
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.gave_up_at = now
    else:
        delivery.next_attempt_at = now + timedelta(minutes=min(2 ** (delivery.attempts - 1), MAX_PAUSE_MINUTES))
