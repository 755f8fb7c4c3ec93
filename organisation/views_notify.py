"""Staff pages for notifications: each user's list (mark read, open the item) and an institution's outbound
channels (WeCom and DingTalk group robots, e-mail), with a test message per channel."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import Length, NumberRange, Optional

from core.extensions import db
from core.forms import FlaskForm
from core.notify import kind_label
from core.security import safe_redirect_target
from core.services import ServiceError
from core.tasks import QUEUE_HIGH, try_enqueue
from core.views import handle_form, paginate
from organisation import notifications, tasks
from organisation.forms import ConfirmForm
from organisation.models import DeliveryChannel, SmtpSecurity
from organisation.scope import Permission, get_institution_or_404
from organisation.views import actor, bp

# The user's list -----------------------------------------------------------------------------------


@bp.get("/notifications")
def notifications_list():
    user = actor()
    unread_only = request.args.get("show") != "all"
    page = paginate(notifications.notifications_for(user, unread_only=unread_only))
    return render_template("organisation/notifications.html", page=page, unread_only=unread_only,
                           unread=notifications.unread_count(user), kind_label=kind_label, form=ConfirmForm())


def _own_or_404(notification_id: int):
    notification = notifications.own_notification(actor(), notification_id)
    if notification is None:
        abort(404)
    return notification


@bp.post("/notifications/<int:notification_id>")
def notification_open(notification_id: int):
    """Follow a notification to its item, marking it read on the way (a POST: a GET never changes data)."""
    notification = _own_or_404(notification_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if notifications.mark_read(notification):
        db.session.commit()
    target = safe_redirect_target(notification.link) if notification.link else None
    return redirect(target or url_for("org.notifications_list", show="all"))


def _back() -> str:
    return safe_redirect_target(request.args.get("next")) or url_for("org.notifications_list")


@bp.post("/notifications/<int:notification_id>/read")
def notification_read(notification_id: int):
    notification = _own_or_404(notification_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if notifications.mark_read(notification):
        db.session.commit()
    return redirect(_back())


@bp.post("/notifications/read-all")
def notifications_read_all():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    count = notifications.mark_all_read(actor())
    db.session.commit()
    flash(gettext("已将 %(n)d 条通知标为已读。", n=count) if count else gettext("没有未读通知。"), "success")
    return redirect(_back())


# The institution's channels --------------------------------------------------------------------------

class NotifierSettingsForm(FlaskForm):
    wecom_webhook = StringField(_l("企业微信群机器人 Webhook 地址"), validators=[Optional(), Length(max=500)],
                                render_kw={"autocomplete": "off", "spellcheck": "false",
                                           "placeholder": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"})
    clear_wecom = BooleanField(_l("停用企业微信推送（删除已保存的地址）"))
    dingtalk_webhook = StringField(_l("钉钉群机器人 Webhook 地址"), validators=[Optional(), Length(max=500)],
                                   render_kw={"autocomplete": "off", "spellcheck": "false",
                                              "placeholder": "https://oapi.dingtalk.com/robot/send?access_token=…"})
    dingtalk_secret = PasswordField(_l("加签密钥（SEC 开头；机器人未开启加签时留空）"),
                                    validators=[Optional(), Length(max=200)], render_kw={"autocomplete": "off"})
    clear_dingtalk = BooleanField(_l("停用钉钉推送（删除已保存的地址和密钥）"))
    smtp_host = StringField(_l("邮件服务器（SMTP）"), validators=[Optional(), Length(max=200)],
                            render_kw={"placeholder": "smtp.example-hospital.cn", "spellcheck": "false"})
    smtp_port = IntegerField(_l("端口"), default=587, validators=[
        Optional(), NumberRange(min=1, max=65535, message=_l("端口须在 1 到 65535 之间。"))])
    smtp_security = SelectField(_l("加密方式"), choices=SmtpSecurity.choices(), default=SmtpSecurity.STARTTLS.value)
    smtp_username = StringField(_l("登录用户名"), validators=[Optional(), Length(max=200)],
                                render_kw={"autocomplete": "off"})
    smtp_password = PasswordField(_l("登录密码"), validators=[Optional(), Length(max=200)],
                                  render_kw={"autocomplete": "new-password"})
    smtp_sender = StringField(_l("发件地址"), validators=[Optional(), Length(max=254)],
                              render_kw={"placeholder": "tingjian@example-hospital.cn"})
    smtp_recipients = StringField(_l("收件邮箱"), validators=[Optional(), Length(max=1000)],
                                  description=_l("如投诉管理办公室的公共邮箱；多个地址用逗号分隔，最多 10 个。"))
    clear_email = BooleanField(_l("停用邮件推送（删除邮件设置）"))
    submit = SubmitField(_l("保存设置"))


def _values(form: NotifierSettingsForm) -> notifications.ChannelValues:
    return notifications.ChannelValues(
        wecom_webhook=form.wecom_webhook.data or None, clear_wecom=bool(form.clear_wecom.data),
        dingtalk_webhook=form.dingtalk_webhook.data or None, dingtalk_secret=form.dingtalk_secret.data or None,
        clear_dingtalk=bool(form.clear_dingtalk.data), smtp_host=form.smtp_host.data or "",
        smtp_port=form.smtp_port.data or 587, smtp_security=form.smtp_security.data or SmtpSecurity.STARTTLS.value,
        smtp_username=form.smtp_username.data or "", smtp_password=form.smtp_password.data or None,
        smtp_sender=form.smtp_sender.data or "", smtp_recipients=form.smtp_recipients.data or "",
        clear_email=bool(form.clear_email.data))


@bp.route("/i/<int:institution_id>/notifier", methods=["GET", "POST"])
def notifier_settings(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    settings = notifications.settings_for(institution)
    form = NotifierSettingsForm()
    if request.method == "GET":  # the secrets are never put back into the page
        form.smtp_host.data = settings.smtp_host
        form.smtp_port.data = settings.smtp_port
        form.smtp_security.data = SmtpSecurity(settings.smtp_security).value
        form.smtp_username.data = settings.smtp_username
        form.smtp_sender.data = settings.smtp_sender
        form.smtp_recipients.data = settings.smtp_recipients
    return handle_form(
        form, lambda: notifications.update_notifier_settings(institution, _values(form), actor=actor()),
        success=gettext("消息推送设置已保存。"),
        next_url=lambda _s: url_for("org.notifier_settings", institution_id=institution.id),
        template="organisation/notifier_settings.html", institution=institution, settings=settings,
        configured=notifications.configured_channels(settings), masked=notifications.masked,
        deliveries=notifications.recent_deliveries(institution), channels=DeliveryChannel, kind_label=kind_label,
        error_meaning=notifications.error_meaning, test_form=ConfirmForm())


@bp.post("/i/<int:institution_id>/notifier/test/<channel>")
def notifier_test(institution_id: int, channel: str):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    try:
        chosen = DeliveryChannel(channel)
    except ValueError:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    back = url_for("org.notifier_settings", institution_id=institution.id)
    try:
        delivery = notifications.queue_test(institution, chosen, actor=actor())
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    db.session.commit()
    try_enqueue(tasks.deliver, delivery.id, queue=QUEUE_HIGH)  # the sweep sends it if the queue is away
    flash(gettext("测试消息已交给发送任务，发送结果见下方列表（稍后刷新页面查看）。"), "success")
    return redirect(back)
