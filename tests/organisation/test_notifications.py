"""Staff notifications: the in-app list (badge, mark read, open the item) and an institution's outbound channels
(WeCom, DingTalk, e-mail), delivered by a job against local fake servers and retried by the sweep."""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from core import notify
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from core.tasks import run_committed_jobs
from organisation import notifications, tasks
from organisation.models import DeliveryChannel, Notification, NotifierDelivery, NotifierSettings, Role, StaffUser
from tests.core.test_translations import chinese_chrome
from tests.factories import demo_institution, demo_user, login, make_staff
from tests.fake_servers import FakeRobot, FakeSmtp

WECOM_PATH = "/cgi-bin/webhook/send?key=wecom-secret-key-0042"


def notice(*usernames: str, key: str | None = "test:1", subject: str = "新投诉 TS2026-00001 已分派至心血管内科（主办）",
           body: str = "办理期限：2026-10-13。", link: str = "/i/1/complaints/1") -> notify.Message:
    return notify.Message(recipients=list(usernames), subject=subject, body=body, kind="complaint_assigned",
                          link=link, key=key)


def rows_of(username: str) -> list[Notification]:
    user = demo_user(username) or db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                                   .order_by(Notification.id)))


@pytest.fixture
def officer_b(ctx):
    """A complaint officer of rmyy with no notifications yet (counts do not depend on the shared data)."""
    return make_staff([Role.COMPLAINT_OFFICER], demo_institution("rmyy"))


@pytest.fixture
def local_hosts(app, monkeypatch):
    """Webhooks may point at the fake servers on this machine (production allows only WeCom and DingTalk)."""
    monkeypatch.setitem(app.config, "WEBHOOK_HOSTS", ["qyapi.weixin.qq.com", "oapi.dingtalk.com", "127.0.0.1"])


@pytest.fixture
def robot():
    with FakeRobot() as fake:
        yield fake


def configure(institution, **values) -> NotifierSettings:
    settings = notifications.settings_for(institution)
    for name, value in values.items():
        setattr(settings, name, value)
    db.session.add(settings)
    db.session.flush()
    return settings


# Recording -----------------------------------------------------------------------------------------

def test_a_notice_is_kept_once_per_recipient_and_item(ctx, outbox, officer_b):
    notify.send(notice("rmyy-handler", officer_b.username))
    notify.send(notice("rmyy-handler", officer_b.username, "rmyy-leader"))  # the job ran again, one more recipient
    assert [n.subject for n in rows_of(officer_b.username)] == ["新投诉 TS2026-00001 已分派至心血管内科（主办）"]
    assert len([n for n in rows_of("rmyy-leader") if n.key == "test:1"]) == 1
    assert [m.recipients for m in outbox] == [["rmyy-handler", officer_b.username], ["rmyy-leader"]]
    row = rows_of(officer_b.username)[0]
    assert (row.kind, row.key, row.link, row.read_at) == ("complaint_assigned", "test:1", "/i/1/complaints/1", None)
    assert row.institution_id == demo_institution("rmyy").id


def test_the_list_keeps_the_path_of_an_absolute_link(ctx, outbox):
    notify.send(notice("rmyy-handler", link="http://tingjian.test/i/1/complaints/9#replies"))
    assert rows_of("rmyy-handler")[0].link == "/i/1/complaints/9#replies"


def test_a_job_that_rolls_back_leaves_no_notification(ctx, outbox):
    notify.send(notice("rmyy-handler"))
    db.session.rollback()
    assert rows_of("rmyy-handler") == []


# The list, the badge, marking read -------------------------------------------------------------------

def test_the_header_shows_the_unread_count_and_the_list_links_to_each_item(ctx, client, outbox, officer_b):
    notify.send(notice(officer_b.username, key="a", subject="第一条通知"))
    notify.send(notice(officer_b.username, key="b", subject="第二条通知", link="/i/1/survey/alerts/7"))
    login(client, officer_b)
    html = client.get("/notifications").get_data(as_text=True)
    badge = r'class="bell"[^>]*>通知<span class="badge"><span class="visually-hidden">未读</span>2</span>'
    assert re.search(badge, html)
    assert html.index("第二条通知") < html.index("第一条通知")  # newest first
    first, second = rows_of(officer_b.username)
    assert f'action="/notifications/{first.id}"' in html and "分派" in html  # the kind's label


def test_no_badge_without_unread_notifications(ctx, client, officer_b):
    login(client, officer_b)
    html = client.get("/notifications").get_data(as_text=True)
    assert 'class="badge"' not in html and "没有未读通知" in html


def test_opening_a_notification_marks_it_read_and_goes_to_the_item(ctx, client, outbox):
    notify.send(notice("rmyy-handler", link="http://tingjian.test/i/1/complaints/9#replies"))
    (row,) = rows_of("rmyy-handler")
    login(client, demo_user("rmyy-handler"))
    assert client.get(f"/notifications/{row.id}").status_code == 405  # looking changes nothing: a GET never marks
    db.session.refresh(row)
    assert row.read_at is None
    response = client.post(f"/notifications/{row.id}")
    assert response.status_code == 302 and response.headers["Location"] == "/i/1/complaints/9#replies"
    db.session.refresh(row)
    assert row.read_at is not None
    assert 'class="badge"' not in client.get("/notifications?show=all").get_data(as_text=True)


def test_mark_one_and_mark_all_read(ctx, client, outbox, officer_b):
    for key in ("a", "b", "c"):
        notify.send(notice(officer_b.username, key=key))
    first, *_rest = rows_of(officer_b.username)
    login(client, officer_b)
    assert client.post(f"/notifications/{first.id}/read").status_code == 302
    assert notifications.unread_count(officer_b) == 2
    response = client.post("/notifications/read-all", follow_redirects=True)
    assert "已将 2 条通知标为已读" in response.get_data(as_text=True)
    assert notifications.unread_count(officer_b) == 0
    unread_tab = client.get("/notifications").get_data(as_text=True)
    assert "没有未读通知" in unread_tab
    assert client.get("/notifications?show=all").get_data(as_text=True).count('class="read"') == 3


def test_someone_elses_notification_is_not_found(ctx, client, outbox):
    notify.send(notice("rmyy-handler"))
    (row,) = rows_of("rmyy-handler")
    login(client, demo_user("zyy-handler"))
    assert client.post(f"/notifications/{row.id}").status_code == 404
    assert client.post(f"/notifications/{row.id}/read").status_code == 404
    client.post("/notifications/read-all")
    db.session.refresh(row)
    assert row.read_at is None


def test_the_notification_list_needs_a_login(client):
    assert client.get("/notifications").status_code in (302, 401)


def test_a_stored_link_off_the_site_is_never_followed(ctx, client):
    user = demo_user("rmyy-handler")
    row = Notification(user_id=user.id, kind="x", key="odd", subject="s", body="", link="//evil.example/x",
                       created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    login(client, user)
    response = client.post(f"/notifications/{row.id}")
    assert response.headers["Location"] == "/notifications?show=all"


def test_the_home_page_shows_the_latest_notifications(ctx, client, outbox):
    notify.send(notice("rmyy-nurse", subject="出院随访提醒（测试）"))
    login(client, demo_user("rmyy-nurse"))
    html = client.get(f"/i/{demo_institution('rmyy').id}/").get_data(as_text=True)
    assert "最新通知" in html and "出院随访提醒（测试）" in html and "待办事项" in html


# The reader's language ----------------------------------------------------------------------------------

def test_a_notice_made_of_texts_is_shown_in_the_readers_language(ctx, client, outbox, officer_b):
    notify.send(notice(officer_b.username, subject=notify.notice_text("投诉 %(number)s 将于 %(date)s 到期",
                                                                      number="TS2026-00007", date="2026-10-13"),
                       body=notify.notice_text("办理期限：%(date)s。", date="2026-10-13") + " 〔心内科〕"))
    (row,) = rows_of(officer_b.username)
    assert row.subject == "投诉 TS2026-00007 将于 2026-10-13 到期" and row.body == "办理期限：2026-10-13。 〔心内科〕"
    login(client, officer_b)
    assert "投诉 TS2026-00007 将于 2026-10-13 到期" in client.get("/notifications").get_data(as_text=True)
    client.get("/lang/en")
    html = client.get("/notifications").get_data(as_text=True)
    assert "Complaint TS2026-00007 is due on 2026-10-13" in html and "Deadline: 2026-10-13. 〔心内科〕" in html


def test_an_old_notice_without_texts_is_shown_as_stored(ctx, client, officer_b):
    db.session.add(Notification(user_id=officer_b.id, kind="complaint_assigned", key="old", subject="旧通知的标题",
                                body="旧通知的正文", created_at=utcnow()))
    db.session.flush()
    login(client, officer_b)
    client.get("/lang/en")
    response = client.get("/notifications")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "旧通知的标题" in html and "旧通知的正文" in html


@pytest.mark.parametrize("texts", [
    {"subject": [["投诉 %(number)s 将于 %(date)s 到期", {"number": "TS2026-00007"}]]},   # a parameter missing
    {"subject": [["未分派 %(n)d", {"n": "many"}]], "body": [["%(x)s", {"y": 1}]]},        # a wrong type, a wrong name
    {"subject": "not parts", "body": [[1, 2, 3]]},                                         # not what is stored
    {"subject": [["督办：投诉 %(number)s 已超期 %(n)d 个工作日", {"number": {"text": 5}, "n": 1}]]},
    ["neither", "subject", "nor", "body"],
])
def test_texts_that_no_longer_fit_fall_back_to_the_stored_words(ctx, client, officer_b, texts):
    db.session.add(Notification(user_id=officer_b.id, kind="complaint_reminder", key="odd", subject="存下的标题",
                                body="存下的正文", texts=texts, created_at=utcnow()))
    db.session.flush()
    login(client, officer_b)
    for language in ("en", "zh_Hans"):
        client.get(f"/lang/{language}")
        for path in ("/notifications", f"/i/{officer_b.institution_id}/"):
            response = client.get(path)
            assert response.status_code == 200, (language, path)
            html = response.get_data(as_text=True)
            assert "存下的标题" in html and "存下的正文" in html, (language, path)


# The institution's channels: the settings page ---------------------------------------------------------

def test_an_institution_admin_saves_the_channels_and_never_sees_the_secrets_again(ctx, client, local_hosts):
    rmyy = demo_institution("rmyy")
    login(client, demo_user("rmyy-admin"))
    page = client.get(f"/i/{rmyy.id}/notifier")
    assert page.status_code == 200 and "企业微信群机器人" in page.get_data(as_text=True)
    response = client.post(f"/i/{rmyy.id}/notifier", data={
        "wecom_webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-secret-key-0042",
        "dingtalk_webhook": "https://oapi.dingtalk.com/robot/send?access_token=dingtalk-token-0099",
        "dingtalk_secret": "SECdingtalk-signing-secret", "smtp_host": "smtp.hospital.example.cn", "smtp_port": "465",
        "smtp_security": "ssl", "smtp_username": "tingjian", "smtp_password": "mail-password-77",
        "smtp_sender": "tingjian@hospital.example.cn",
        "smtp_recipients": "tousu@hospital.example.cn, yw@hospital.example.cn"})
    assert response.status_code == 302
    settings = db.session.get(NotifierSettings, rmyy.id)
    assert settings.smtp_recipients == "tousu@hospital.example.cn, yw@hospital.example.cn"
    assert notifications.configured_channels(settings) == [DeliveryChannel.WECOM, DeliveryChannel.DINGTALK,
                                                           DeliveryChannel.EMAIL]
    html = client.get(f"/i/{rmyy.id}/notifier").get_data(as_text=True)
    for secret in ("wecom-secret-key-0042", "dingtalk-token-0099", "SECdingtalk-signing-secret", "mail-password-77"):
        assert secret not in html
    assert "https://qyapi.weixin.qq.com/…0042" in html and "加签密钥已保存" in html and "登录密码已保存" in html
    (entry,) = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "notifier.update"))
    assert "smtp_password" in entry.data["changed"] and "mail-password-77" not in str(entry.data)

    # A blank secret keeps the stored one; "clear" removes a channel.
    client.post(f"/i/{rmyy.id}/notifier", data={
        "dingtalk_secret": "", "clear_wecom": "y", "smtp_host": "smtp.hospital.example.cn", "smtp_port": "465",
        "smtp_security": "ssl", "smtp_username": "tingjian", "smtp_sender": "tingjian@hospital.example.cn",
        "smtp_recipients": "tousu@hospital.example.cn"})
    db.session.refresh(settings)
    assert settings.wecom_webhook == "" and settings.dingtalk_secret == "SECdingtalk-signing-secret"
    assert settings.smtp_password == "mail-password-77"


@pytest.mark.parametrize("data, message", [
    ({"wecom_webhook": "qyapi.weixin.qq.com/cgi-bin/webhook"}, "请填写完整的机器人 Webhook 地址"),
    ({"wecom_webhook": "https://10.0.0.5/cgi-bin/webhook/send?key=x"}, "只接受企业微信或钉钉的机器人地址"),
    ({"dingtalk_webhook": "https://oapi.dingtalk.com/robot/send?access_token=t", "dingtalk_secret": "有 空格"},
     "以 SEC 开头"),
    ({"smtp_host": "smtp.example.cn", "smtp_sender": "not-an-address", "smtp_recipients": "a@example.cn"},
     "不是有效的电子邮件地址"),
    ({"smtp_host": "smtp.example.cn", "smtp_sender": "a@example.cn", "smtp_recipients": ""}, "请至少填写一个收件邮箱"),
    ({"smtp_host": "smtp.example.cn", "smtp_port": "70000", "smtp_sender": "a@example.cn",
      "smtp_recipients": "b@example.cn"}, "端口须在 1 到 65535 之间"),
    ({"smtp_host": "smtp example;cn", "smtp_sender": "a@example.cn", "smtp_recipients": "b@example.cn"},
     "邮件服务器地址只能包含"),
])
def test_bad_channel_settings_are_a_400_with_the_reason(ctx, client, data, message):
    rmyy = demo_institution("rmyy")
    login(client, demo_user("rmyy-admin"))
    response = client.post(f"/i/{rmyy.id}/notifier", data={"smtp_port": "587", "smtp_security": "starttls", **data})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.session.get(NotifierSettings, rmyy.id) is None


@pytest.mark.parametrize("username, status", [("rmyy-officer", 403), ("rmyy-handler", 403), ("zyy-admin", 404)])
def test_only_the_institutions_admins_reach_its_channels(ctx, client, username, status):
    login(client, demo_user(username))
    rmyy = demo_institution("rmyy")
    assert client.get(f"/i/{rmyy.id}/notifier").status_code == status
    assert client.post(f"/i/{rmyy.id}/notifier/test/wecom").status_code == status


# Delivering --------------------------------------------------------------------------------------------

def test_a_notice_reaches_the_institutions_wecom_group_after_the_commit(ctx, outbox, robot, local_hosts):
    rmyy = demo_institution("rmyy")
    configure(rmyy, wecom_webhook=robot.url(WECOM_PATH))
    notify.send(notice("rmyy-handler", "rmyy-officer", link="https://tingjian.example.cn/i/1/complaints/1"))
    assert run_committed_jobs() == 0 and robot.requests == []  # nothing leaves inside the transaction
    db.session.commit()
    assert run_committed_jobs() == 1
    (request,) = robot.requests
    content = request.payload["markdown"]["content"]
    assert "新投诉 TS2026-00001 已分派至心血管内科（主办）" in content
    assert "致：" in content and demo_user("rmyy-handler").display_name in content
    assert "(https://tingjian.example.cn/i/1/complaints/1)" in content
    (delivery,) = db.session.scalars(select(NotifierDelivery))
    assert delivery.sent_at is not None and delivery.attempts == 1
    # The same notice again (a re-run job) is not delivered again; another hospital's channel is not used.
    notify.send(notice("rmyy-handler", "zyy-officer"))
    db.session.commit()
    run_committed_jobs()
    assert len(robot.requests) == 1


def test_a_failed_delivery_is_retried_by_the_sweep_and_the_log_holds_no_body_or_key(ctx, outbox, robot, local_hosts,
                                                                                   caplog):
    configure(demo_institution("rmyy"), wecom_webhook=robot.url(WECOM_PATH))
    robot.answers = [(200, {"errcode": 45009, "errmsg": "api freq out of limit"})]
    notify.send(notice("rmyy-handler", body="办理期限：2026-10-13（正文）"))
    db.session.commit()
    with caplog.at_level(logging.INFO):
        run_committed_jobs()
    (delivery,) = db.session.scalars(select(NotifierDelivery))
    assert delivery.sent_at is None and delivery.attempts == 1
    assert delivery.last_error == "errcode 45009: api freq out of limit"
    assert delivery.next_attempt_at > utcnow() + timedelta(seconds=50)
    assert "45009" in caplog.text and "正文" not in caplog.text and "wecom-secret-key" not in caplog.text

    assert tasks.sweep_deliveries() == 0  # not due yet
    later = (utcnow() + timedelta(minutes=2)).isoformat()
    assert tasks.sweep_deliveries(later) == 1
    db.session.refresh(delivery)
    assert delivery.sent_at is not None and delivery.attempts == 2 and len(robot.requests) == 2


def test_a_delivery_that_keeps_failing_is_given_up_after_the_last_attempt(ctx, outbox, robot, local_hosts):
    configure(demo_institution("rmyy"), wecom_webhook=robot.url(WECOM_PATH))
    robot.answers = [(500, "down")] * notifications.MAX_ATTEMPTS
    notify.send(notice("rmyy-handler"))
    db.session.commit()
    (delivery,) = db.session.scalars(select(NotifierDelivery))
    at = utcnow()
    for _attempt in range(notifications.MAX_ATTEMPTS):
        at += timedelta(hours=2)
        tasks.sweep_deliveries(at.isoformat())
    db.session.refresh(delivery)
    assert delivery.gave_up_at is not None and delivery.sent_at is None
    assert delivery.attempts == notifications.MAX_ATTEMPTS and delivery.last_error == "HTTP 500"
    assert tasks.sweep_deliveries((at + timedelta(days=1)).isoformat()) == 0


@pytest.mark.parametrize(("error", "meaning"), [
    ("gaierror: [Errno -2] Name or service not known", "找不到该服务器"),
    ("webhook host not allowed (WEBHOOK_HOSTS)", "不在本系统允许的推送地址中"),
    ("URLError: timed out", "连接超时"),
    ("errcode 310000: keywords not in content", "推送地址拒绝了消息"),
    ("HTTP 502", "将自动重试"),
    ("SMTP 535", "邮件服务器拒绝登录"),
    ("something new", "发送失败"),
])
def test_an_admin_reads_what_a_failed_delivery_means(app, error, meaning):
    """The delivery list says in words what went wrong (the technical error stays beside it)."""
    with app.test_request_context():
        assert meaning in notifications.error_meaning(error)
        assert notifications.error_meaning("") == ""


def test_two_workers_never_send_one_delivery_twice(ctx, outbox, robot, local_hosts):
    configure(demo_institution("rmyy"), wecom_webhook=robot.url(WECOM_PATH))
    notify.send(notice("rmyy-handler"))
    db.session.commit()
    (delivery,) = db.session.scalars(select(NotifierDelivery))
    now = utcnow()
    assert notifications.claim(delivery.id, now) is not None
    db.session.commit()
    assert notifications.claim(delivery.id, now) is None  # leased by the first
    assert tasks.deliver(delivery.id) is False and robot.requests == []


def test_a_channel_removed_meanwhile_is_not_used(ctx, outbox, robot, local_hosts):
    settings = configure(demo_institution("rmyy"), wecom_webhook=robot.url(WECOM_PATH))
    notify.send(notice("rmyy-handler"))
    settings.wecom_webhook = ""
    db.session.commit()
    run_committed_jobs()
    (delivery,) = db.session.scalars(select(NotifierDelivery))
    assert robot.requests == [] and delivery.last_error == "channel no longer configured"


def test_dingtalk_deliveries_are_signed_and_email_goes_to_the_mailboxes(ctx, outbox, robot, local_hosts):
    with FakeSmtp() as smtp:
        configure(demo_institution("rmyy"), dingtalk_webhook=robot.url("/robot/send?access_token=tok"),
                  dingtalk_secret="SECabc", smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                  smtp_sender="tingjian@hospital.example.cn", smtp_recipients="tousu@hospital.example.cn")
        notify.send(notice("rmyy-officer"))
        db.session.commit()
        run_committed_jobs()
    (request,) = robot.requests
    assert request.query["access_token"] == ["tok"] and "sign" in request.query and "timestamp" in request.query
    (mail,) = smtp.state.mails
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert mail.recipients == ["tousu@hospital.example.cn"] and "TS2026-00001" in parsed["Subject"]
    assert db.session.scalar(select(func.count()).select_from(NotifierDelivery)
                             .where(NotifierDelivery.sent_at.is_not(None))) == 2


def test_the_test_button_sends_through_the_job_and_the_page_shows_the_result(ctx, client, robot, local_hosts):
    rmyy = demo_institution("rmyy")
    login(client, demo_user("rmyy-admin"))
    client.post(f"/i/{rmyy.id}/notifier", data={"wecom_webhook": robot.url(WECOM_PATH), "smtp_port": "587",
                                                "smtp_security": "starttls"})
    response = client.post(f"/i/{rmyy.id}/notifier/test/wecom", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "测试消息已交给发送任务" in html and "已送达" in html
    (request,) = robot.requests
    assert "听见：测试消息" in request.payload["markdown"]["content"]
    assert client.post(f"/i/{rmyy.id}/notifier/test/dingtalk", follow_redirects=True).status_code == 200
    assert len(robot.requests) == 1  # DingTalk is not configured: nothing was queued
    assert client.post(f"/i/{rmyy.id}/notifier/test/sms").status_code == 404


# In English -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("username, path", [
    ("rmyy-handler", "/notifications"), ("rmyy-handler", "/notifications?show=all"), ("rmyy-handler", "/i/{i}/"),
    ("rmyy-officer", "/i/{i}/"), ("rmyy-nurse", "/i/{i}/"), ("rmyy-admin", "/i/{i}/notifier"),
])
def test_the_notification_pages_have_no_chinese_chrome_in_english(ctx, client, outbox, robot, local_hosts,
                                                                   username, path):
    rmyy = demo_institution("rmyy")
    configure(rmyy, wecom_webhook=robot.url(WECOM_PATH))
    notify.send(notice("rmyy-handler", "rmyy-officer", "rmyy-nurse"))
    db.session.commit()
    run_committed_jobs()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    login(client, demo_user(username))
    response = client.get(path.format(i=rmyy.id))
    assert response.status_code == 200
    assert chinese_chrome(response.get_data(as_text=True)) == [], path
