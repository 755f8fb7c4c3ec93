"""Staff pages under /i/<id>/survey/: results, responses and exports, templates, alerts, settings.

Department handlers (rmyy-handler: XNK and CWK) see their departments only;
staff of another hospital get 404 on every survey URL of this one.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import openpyxl
import pytest
from sqlalchemy import select

from core.audit import AuditEntry, record
from core.clock import local_timezone
from core.db import utcnow
from core.extensions import db
from survey import versioning
from survey.models import AlertStatus, Channel, RecoveryAlert, SurveyTemplate, TemplateVersion, VersionStatus
from tests.factories import demo_user

from .conftest import staff_login, submit, touchpoint

PHONE = "13912345678"


def base(institution) -> str:
    return f"/i/{institution.id}/survey"


def text(response) -> str:
    return response.get_data(as_text=True)


def listed(response) -> set[int]:
    """Response ids linked from a responses page."""
    return {int(n) for n in re.findall(r'/survey/responses/(\d+)"', text(response))}


def local_today() -> date:
    return datetime.now(local_timezone()).date()


@pytest.fixture
def pharmacy_code(builtin_templates, rmyy):
    """A window of the pharmacy (YJK): not one of rmyy-handler's departments."""
    from survey import qr

    return qr.ensure_code(touchpoint(rmyy, "W-YF-01"), actor="test")


@pytest.fixture
def seeded(window_code, ward_code, pharmacy_code, respond):
    """Responses across touchpoints, departments, templates, channels, scores, days and flags."""
    nurse_id = demo_user("rmyy-nurse").id
    rows = {
        "window_high": respond(window_code, WIN_OVERALL="5"),
        "window_low": respond(window_code, WIN_OVERALL="2", WIN_COMMENT="=HYPERLINK(\"x\")排队太久"),
        "window_flagged": respond(window_code, WIN_OVERALL="1", context={"fill_seconds": 0.5}),
        "window_old": respond(window_code, WIN_OVERALL="4"),
        "ward": respond(ward_code, IPD_OVERALL="4", IPD_NURSE_LISTEN="4", IPD_CALL_HELP="NA"),
        "ward_phone": respond(ward_code, channel=Channel.PHONE_FOLLOWUP, IPD_OVERALL="3",
                              context={"interviewer_id": nurse_id}),
        "pharmacy": respond(pharmacy_code, WIN_OVERALL="1", WIN_CONTACT="yes", contact_phone=PHONE),
    }
    rows["window_old"].submitted_at = utcnow() - timedelta(days=3)
    db.session.flush()
    return {name: r.id for name, r in rows.items()}


# Overview --------------------------------------------------------------------------

def test_overview_shows_todays_count_and_average_per_touchpoint(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")
    page = client.get(f"{base(rmyy)}/")
    assert page.status_code == 200
    row = re.search(r"<tr>\s*<td><a [^>]*>门诊挂号收费 1 号窗口</a></td>(.*?)</tr>", text(page), re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    # today: 100 and 25 counted (the flagged 0 is not, the 75 was three days ago); 7 days: also the 75
    assert cells == ["2", "62.5", "3", "66.7", "1"]


def test_overview_for_a_handler_lists_only_their_touchpoints(client, rmyy, seeded):
    staff_login(client, "rmyy-handler")
    html = text(client.get(f"{base(rmyy)}/"))
    assert "门诊挂号收费 1 号窗口" in html and "心血管内科病区" in html
    assert "门诊西药房窗口" not in html


# Responses list -----------------------------------------------------------------------

def test_responses_list_excludes_flagged_rows_by_default(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")
    page = client.get(f"{base(rmyy)}/responses")
    assert page.status_code == 200
    assert listed(page) == set(seeded.values()) - {seeded["window_flagged"]}


@pytest.mark.parametrize("flagged, expected", [
    ("only", {"window_flagged"}),
    ("exclude", {"window_high", "window_low", "window_old", "ward", "ward_phone", "pharmacy"}),
    ("all", {"window_high", "window_low", "window_flagged", "window_old", "ward", "ward_phone", "pharmacy"}),
])
def test_responses_flagged_filter(client, rmyy, seeded, flagged, expected):
    staff_login(client, "rmyy-admin")
    assert listed(client.get(f"{base(rmyy)}/responses?flagged={flagged}")) == {seeded[n] for n in expected}


def test_responses_filters_by_department_touchpoint_template_channel_and_score(
        client, rmyy, seeded, window_code, ward_code, builtin_templates):
    staff_login(client, "rmyy-admin")
    url = f"{base(rmyy)}/responses"

    def ids(**args):
        page = client.get(url, query_string=args)
        assert page.status_code == 200, args
        return {name for name, rid in seeded.items() if rid in listed(page)}

    department = window_code.touchpoint.department_id
    assert ids(department_id=department) == {"window_high", "window_low", "window_old"}
    assert ids(touchpoint_id=ward_code.touchpoint_id) == {"ward", "ward_phone"}
    assert ids(template_id=builtin_templates["IPD"].id) == {"ward", "ward_phone"}
    assert ids(template_id=builtin_templates["WIN"].id) == {"window_high", "window_low", "window_old", "pharmacy"}
    assert ids(channel="phone_followup") == {"ward_phone"}
    assert ids(score="low") == {"window_low", "ward_phone", "pharmacy"}
    assert ids(score="high") == {"window_high", "window_old", "ward"}
    assert ids(score="low", flagged="all", touchpoint_id=window_code.touchpoint_id) == {
        "window_low", "window_flagged"}


def test_responses_filter_by_dates(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")
    today = local_today()
    url = f"{base(rmyy)}/responses"
    recent = listed(client.get(url, query_string={"date_from": (today - timedelta(days=1)).isoformat()}))
    assert seeded["window_old"] not in recent and seeded["window_high"] in recent
    old = listed(client.get(url, query_string={"date_from": (today - timedelta(days=3)).isoformat(),
                                               "date_to": (today - timedelta(days=2)).isoformat()}))
    assert old == {seeded["window_old"]}
    assert listed(client.get(url, query_string={"date_to": today.isoformat()})) >= {seeded["window_high"]}


@pytest.mark.parametrize("args", [{"date_from": "2026-13-45"}, {"date_to": "yesterday"},
                                  {"date_from": "0001-01-01"}, {"department_id": "abc"}])
def test_bad_filter_is_400_not_500(client, rmyy, seeded, args):
    staff_login(client, "rmyy-admin")
    page = client.get(f"{base(rmyy)}/responses", query_string=args)
    assert page.status_code == 400
    assert client.get(f"{base(rmyy)}/responses/export.csv", query_string=args).status_code == 400


def test_response_detail_shows_answers(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")
    page = client.get(f"{base(rmyy)}/responses/{seeded['ward']}")
    assert page.status_code == 200
    rows = {code: cells for code, cells in re.findall(r"<tr><td><code>(\w+)</code>(.*?)</tr>", text(page), re.S)}
    assert "总是如此" in rows["IPD_NURSE_LISTEN"] and ">100</td>" in rows["IPD_NURSE_LISTEN"]
    assert "我没按过呼叫铃" in rows["IPD_CALL_HELP"] and ">NA</td>" in rows["IPD_CALL_HELP"]
    assert "未作答" in rows["IPD_CLEAN"]


# Exports ----------------------------------------------------------------------------

@pytest.fixture
def two_versions(builtin_templates, rmyy, window_code, respond):
    """rmyy's own window template with responses to v1 and to v2 (which adds WIN_AGAIN)."""
    from survey import qr

    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_OWN", name="本院窗口",
                                        actor="test")
    v1 = versioning.publish_version(template.draft, actor="test")
    qr.set_template(window_code, template, actor="test")
    first = respond(window_code, version=v1, WIN_OVERALL="5", WIN_CONTACT="yes", contact_phone=PHONE)
    definition = dict(v1.definition, items=v1.definition["items"] + [
        {"code": "WIN_AGAIN", "type": "yesno", "text": "您还会来本窗口办理吗？"}])
    v2 = versioning.publish_version(versioning.save_draft(template, definition, actor="test"), actor="test")
    second = respond(window_code, version=v2, WIN_OVERALL="2", WIN_AGAIN="no", WIN_COMMENT="-1+1 等太久")
    return template, first, second


def test_csv_export_has_a_bom_a_version_column_and_one_column_per_code(client, rmyy, two_versions):
    template, first, second = two_versions
    staff_login(client, "rmyy-admin")
    export = client.get(f"{base(rmyy)}/responses/export.csv", query_string={"template_id": template.id})
    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    raw = export.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header = [h.split(" ", 1)[0] for h in rows[0]]  # an item's column is "<code> <wording>"
    codes = ["WIN_OVERALL", "WIN_REASON", "WIN_COMMENT", "WIN_CONTACT", "WIN_AGAIN"]
    assert [h for h in header if h.startswith("WIN_")] == codes
    assert "版本" in header and "渠道" in header
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {str(first.id), str(second.id)}
    assert by_id[str(first.id)]["版本"] == "1" and by_id[str(second.id)]["版本"] == "2"
    assert by_id[str(first.id)]["WIN_AGAIN"] == "" and by_id[str(second.id)]["WIN_AGAIN"] == "no"
    assert by_id[str(first.id)]["问卷"] == "WIN_OWN" and by_id[str(first.id)]["渠道"] == "扫码评价"
    assert by_id[str(second.id)]["意见"] == "'-1+1 等太久"  # no spreadsheet formula
    assert PHONE not in raw.decode("utf-8-sig")


def test_xlsx_export_opens_with_openpyxl_and_has_no_phone(client, rmyy, two_versions):
    template, first, second = two_versions
    staff_login(client, "rmyy-admin")
    export = client.get(f"{base(rmyy)}/responses/export.xlsx", query_string={"template_id": template.id})
    assert export.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(export.get_data()), read_only=True)
    rows = [list(r) for r in workbook.active.iter_rows(values_only=True)]
    header = rows[0]
    assert "版本" in header and "WIN_AGAIN 您还会来本窗口办理吗？" in header
    assert sorted(r[0] for r in rows[1:]) == sorted([first.id, second.id])
    assert all(PHONE not in str(cell) for row in rows for cell in row)


def test_each_item_column_has_its_wording_beside_its_code_in_one_header_row(client, rmyy, two_versions):
    template, first, second = two_versions
    staff_login(client, "rmyy-admin")

    export = client.get(f"{base(rmyy)}/responses/export.csv", query_string={"template_id": template.id})

    rows = list(csv.reader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    header = rows[0]
    assert [h for h in header if h.startswith("WIN_")] == [
        "WIN_OVERALL 您对本次窗口服务满意吗？", "WIN_REASON 哪里需要改进？（可多选）",
        "WIN_COMMENT 您还想告诉我们什么？（选填）", "WIN_CONTACT 需要我们联系您吗？",
        "WIN_AGAIN 您还会来本窗口办理吗？"]
    assert len(set(header)) == len(header)
    assert rows[1][0].isdigit() and rows[2][0].isdigit()  # the second row is already a response, not more header
    by_code = {row[0]: {h.split(" ", 1)[0]: v for h, v in zip(header, row, strict=True)} for row in rows[1:]}
    assert by_code[str(second.id)]["WIN_OVERALL"] == "2" and by_code[str(second.id)]["WIN_AGAIN"] == "no"


def test_the_latest_wording_heads_the_column_and_long_wording_is_cut_in_the_header(client, rmyy, two_versions,
                                                                                 window_code, respond):
    template, first, second = two_versions
    long_text = "总的来说，" + "您对窗口工作人员的服务态度、办事效率、解释是否清楚以及等候时间" * 2 + "满意吗？"
    definition = dict(second.version.definition)
    definition["items"] = [dict(i, text=long_text) if i["code"] == "WIN_OVERALL" else i for i in definition["items"]]
    v3 = versioning.publish_version(versioning.save_draft(template, definition, actor="test"), actor="test")
    respond(window_code, version=v3, WIN_OVERALL="4")
    staff_login(client, "rmyy-admin")

    export = client.get(f"{base(rmyy)}/responses/export.xlsx", query_string={"template_id": template.id})

    workbook = openpyxl.load_workbook(io.BytesIO(export.get_data()), read_only=True)
    header = next(workbook.worksheets[0].iter_rows(values_only=True))
    overall = next(h for h in header if h.startswith("WIN_OVERALL "))
    assert overall == "WIN_OVERALL " + long_text[:39] + "…"
    dictionary = {row[1]: row for row in workbook.worksheets[1].iter_rows(min_row=2, max_col=7, values_only=True)
                  if row[1]}
    assert dictionary["WIN_OVERALL"][0] == overall and dictionary["WIN_OVERALL"][2] == long_text


def test_xlsx_has_a_data_dictionary_sheet_for_every_column(client, rmyy, two_versions):
    template, first, second = two_versions
    staff_login(client, "rmyy-admin")

    export = client.get(f"{base(rmyy)}/responses/export.xlsx", query_string={"template_id": template.id})

    workbook = openpyxl.load_workbook(io.BytesIO(export.get_data()), read_only=True)
    assert workbook.sheetnames == ["评价明细", "题目说明"]
    header = list(next(workbook.worksheets[0].iter_rows(values_only=True)))
    rows = [list(r) for r in workbook.worksheets[1].iter_rows(max_col=7, values_only=True)]
    assert rows[0] == ["列名", "题目编码", "题目 / 说明", "题型", "维度", "导出值的含义", "所在问卷版本"]
    assert [r[0] for r in rows[1:]] == header  # one line per column, in the same order
    items = {r[1]: r for r in rows[1:] if r[1]}
    assert items["WIN_OVERALL"][3] == "5 级满意度（表情）"
    assert items["WIN_OVERALL"][5].startswith("1=非常不满意；2=不满意；3=一般")
    assert items["WIN_REASON"][5].startswith("多个答案以 ; 分隔。R_WAIT=等候时间长；")
    assert items["WIN_COMMENT"][5] == "文字答案见“意见”列"
    assert items["WIN_OVERALL"][6] == "WIN_OWN v1、WIN_OWN v2" and items["WIN_AGAIN"][6] == "WIN_OWN v2"


def test_export_respects_the_filters(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")
    export = client.get(f"{base(rmyy)}/responses/export.csv", query_string={"channel": "phone_followup"})
    rows = list(csv.reader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == [str(seeded["ward_phone"])]
    assert "电话回访" in rows[1]


def test_unknown_export_format_is_404(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")
    assert client.get(f"{base(rmyy)}/responses/export.pdf").status_code == 404


# Who sees what ----------------------------------------------------------------------

def test_handler_sees_only_their_departments(client, rmyy, seeded):
    staff_login(client, "rmyy-handler")  # XNK (ward) and CWK (registration windows)
    ids = listed(client.get(f"{base(rmyy)}/responses?flagged=all"))
    assert ids == set(seeded.values()) - {seeded["pharmacy"]}
    assert client.get(f"{base(rmyy)}/responses/{seeded['pharmacy']}").status_code == 404
    assert client.get(f"{base(rmyy)}/responses/{seeded['window_low']}").status_code == 200
    export = client.get(f"{base(rmyy)}/responses/export.csv?flagged=all").get_data().decode("utf-8-sig")
    exported = {int(r[0]) for r in list(csv.reader(io.StringIO(export)))[1:]}
    assert exported == ids


def test_handler_sees_only_their_departments_alerts(client, rmyy, seeded):
    own = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded["window_low"]))
    other = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded["pharmacy"]))
    staff_login(client, "rmyy-handler")
    page = text(client.get(f"{base(rmyy)}/alerts?status=all"))
    assert f"/alerts/{own.id}\"" in page and f"/alerts/{other.id}\"" not in page
    assert client.get(f"{base(rmyy)}/alerts/{own.id}").status_code == 200
    assert client.get(f"{base(rmyy)}/alerts/{other.id}").status_code == 404
    assert client.post(f"{base(rmyy)}/alerts/{other.id}", data={"note": "越权"}).status_code == 404
    assert client.post(f"{base(rmyy)}/alerts/{other.id}/acknowledge").status_code == 404


def test_contact_phone_is_shown_only_on_the_alert(client, rmyy, seeded):
    alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded["pharmacy"]))
    staff_login(client, "rmyy-officer")
    assert PHONE in text(client.get(f"{base(rmyy)}/alerts/{alert.id}"))
    assert PHONE not in text(client.get(f"{base(rmyy)}/responses/{seeded['pharmacy']}"))
    assert PHONE not in text(client.get(f"{base(rmyy)}/responses"))


@pytest.mark.parametrize("path", ["/", "/responses", "/responses/{response}", "/responses/export.csv",
                                  "/responses/export.xlsx", "/alerts", "/alerts/{alert}", "/templates",
                                  "/templates/{template}", "/settings"])
def test_staff_of_another_hospital_get_404(client, rmyy, seeded, builtin_templates, path):
    alert = db.session.scalar(select(RecoveryAlert.id).where(RecoveryAlert.response_id == seeded["window_low"]))
    staff_login(client, "zyy-officer")
    url = base(rmyy) + path.format(response=seeded["window_low"], alert=alert, template=builtin_templates["WIN"].id)
    assert client.get(url).status_code == 404


def test_staff_of_another_hospital_cannot_post_either(client, rmyy, seeded):
    alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded["window_low"]))
    staff_login(client, "zyy-admin")
    assert client.post(f"{base(rmyy)}/alerts/{alert.id}", data={"note": "越权关闭"}).status_code == 404
    assert client.post(f"{base(rmyy)}/settings", data={"alert_threshold": "100"}).status_code == 404
    db.session.refresh(alert)
    assert alert.status == AlertStatus.OPEN


def test_survey_pages_need_a_login(client, rmyy):
    page = client.get(f"{base(rmyy)}/responses")
    assert page.status_code in (302, 401)


def test_handlers_cannot_manage_templates_or_settings(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-handler")
    assert client.get(f"{base(rmyy)}/templates").status_code == 403
    assert client.get(f"{base(rmyy)}/settings").status_code == 403


# Alerts ------------------------------------------------------------------------------

def test_alert_is_acknowledged_then_closed_with_a_required_note(client, rmyy, seeded):
    alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded["window_low"]))
    handler = staff_login(client, "rmyy-handler")
    url = f"{base(rmyy)}/alerts/{alert.id}"
    assert client.post(f"{url}/acknowledge").status_code == 302
    db.session.refresh(alert)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by_id == handler.id
    empty = client.post(url, data={"note": "  "})
    assert empty.status_code == 400 and "请填写处理说明" in text(empty)
    db.session.refresh(alert)
    assert alert.status == AlertStatus.ACKNOWLEDGED
    closed = client.post(url, data={"note": "已致电患者并致歉。"})
    assert closed.status_code == 302
    db.session.refresh(alert)
    assert alert.status == AlertStatus.CLOSED and alert.note == "已致电患者并致歉。"
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "survey_recovery_alert", AuditEntry.target_id == str(alert.id),
        AuditEntry.actor_id == handler.id).order_by(AuditEntry.id)))
    assert actions == ["survey_alert.acknowledge", "survey_alert.close"]


# Odd query strings ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/responses", "/alerts"])
def test_an_absurd_page_number_is_an_empty_page_not_a_500(client, rmyy, seeded, path):
    staff_login(client, "rmyy-admin")

    response = client.get(f"{base(rmyy)}{path}?page=99999999999999999999")

    assert response.status_code == 200


@pytest.mark.parametrize("query", ["fmt=x", "institution_id=2", "_external=0&_scheme=x"])
def test_unknown_query_arguments_on_the_responses_page_are_ignored_not_a_500(client, rmyy, seeded, query):
    staff_login(client, "rmyy-admin")

    response = client.get(f"{base(rmyy)}/responses?{query}")

    assert response.status_code == 200


def test_export_links_carry_the_filters_and_nothing_else(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")

    page = text(client.get(f"{base(rmyy)}/responses?flagged=all&_anchor=%0Aalert(1)&_external=1"))

    links = re.findall(r'href="([^"]*/responses/export\.(?:csv|xlsx)[^"]*)"', page)
    assert len(links) == 2
    for link in links:
        assert "flagged=all" in link
        assert "#" not in link and "alert" not in link and link.startswith("/")


def test_the_pager_ignores_url_building_arguments_in_the_query_string(client, rmyy):
    for n in range(55):  # more than one page of audit entries
        record("test", "test.pager", ("thing", n))
    admin = staff_login(client, "rmyy-admin")
    for n in range(55):
        record(admin, "test.pager", ("thing", n))

    response = client.get(f"/i/{rmyy.id}/audit?action=test.pager&_external=0&_scheme=javascript&_anchor=x")

    assert response.status_code == 200
    pager_links = re.findall(r'<nav class="pager".*?</nav>', text(response), re.S)
    assert pager_links and "javascript" not in pager_links[0] and "#x" not in pager_links[0]
    assert "page=2" in pager_links[0]


# Service-recovery alerts: who may act on them --------------------------------------

def _alert(seeded_ids, name="pharmacy") -> RecoveryAlert:
    return db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded_ids[name]))


@pytest.mark.parametrize("username", ["rmyy-leader", "region"])
def test_read_only_roles_cannot_acknowledge_or_close_alerts(client, rmyy, seeded, username):
    alert = _alert(seeded)
    staff_login(client, username)
    url = f"{base(rmyy)}/alerts/{alert.id}"

    page = client.get(url)
    acknowledged = client.post(f"{url}/acknowledge")
    closed = client.post(url, data={"note": "领导已阅"})

    assert page.status_code == 200
    assert (acknowledged.status_code, closed.status_code) == (403, 403)
    db.session.refresh(alert)
    assert alert.status == AlertStatus.OPEN


@pytest.mark.parametrize("username", ["rmyy-leader", "region"])
def test_read_only_roles_do_not_see_the_patients_phone_number(client, rmyy, seeded, username):
    alert = _alert(seeded)
    staff_login(client, username)

    page = text(client.get(f"{base(rmyy)}/alerts/{alert.id}"))

    assert PHONE not in page
    assert "关闭提醒" not in page


def test_the_complaint_officer_still_sees_the_phone_and_closes_the_alert(client, rmyy, seeded):
    alert = _alert(seeded)
    staff_login(client, "rmyy-officer")
    url = f"{base(rmyy)}/alerts/{alert.id}"

    assert PHONE in text(client.get(url))
    assert client.post(url, data={"note": "已回电。"}).status_code == 302
    db.session.refresh(alert)
    assert alert.status == AlertStatus.CLOSED


# Templates ---------------------------------------------------------------------------

class _FormParser(HTMLParser):
    """The name/value pairs a browser would submit for each POST form of a page (buttons left out, and the
    inert content of <template> elements too)."""

    def __init__(self):
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._in_template = 0
        self._textarea: str | None = None
        self._text = ""
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen: str | None = None
        self._option: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "template":
            self._in_template += 1
        if self._in_template:
            return
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._in_form = True
            self.fields = []
            self.forms.append(self.fields)
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value") or "on"))
                return
            self.fields.append((name, a.get("value") or ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, None
        elif tag == "option" and self._select:
            value = a.get("value")
            self._option = {"value": value, "text": "", "selected": "selected" in a}

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data
        if self._option is not None:
            self._option["text"] += data

    def handle_endtag(self, tag):
        if tag == "template":
            self._in_template -= 1
        if self._in_template:
            return
        if tag == "form" and self._in_form:
            self._in_form = False
        elif tag == "textarea" and self._textarea is not None:
            text = self._text[1:] if self._text.startswith("\n") else self._text
            self.fields.append((self._textarea, text))
            self._textarea = None
        elif tag == "option" and self._option is not None:
            value = self._option["value"] if self._option["value"] is not None else self._option["text"]
            if self._select_first is None:
                self._select_first = value
            if self._option["selected"]:
                self._select_chosen = value
            self._option = None
        elif tag == "select" and self._select:
            chosen = self._select_chosen if self._select_chosen is not None else self._select_first
            if chosen is not None:
                self.fields.append((self._select, chosen))
            self._select = None


def editor_fields(page, **changes) -> dict[str, str]:
    """What a browser posts back from the draft editor ``page``, with ``changes`` applied by field name.

    A checkbox whose change is False is left out, as an unticked box is.
    """
    parser = _FormParser()
    parser.feed(text(page))
    form = next(f for f in parser.forms if any(name == "title" for name, _ in f))
    data = dict(form)
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def item_index(page, code: str) -> int:
    data = editor_fields(page)
    return next(int(name.split("-")[1]) for name, value in data.items()
                if name.endswith("-code") and value == code)


def test_builtin_templates_are_listed_and_not_editable(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    listing = text(client.get(f"{base(rmyy)}/templates"))
    assert "窗口即时评价" in listing and "医务人员满意度" in listing
    win = builtin_templates["WIN"]
    edit = client.get(f"{base(rmyy)}/templates/{win.id}/edit")
    assert edit.status_code == 302 and edit.headers["Location"].endswith(f"/templates/{win.id}")
    assert client.post(f"{base(rmyy)}/templates/{win.id}/publish").status_code == 400
    assert win.draft is None


def test_copy_edit_publish_and_preview_a_template(client, rmyy, builtin_templates, window_code):
    admin = staff_login(client, "rmyy-admin")
    source = builtin_templates["WIN"]
    copied = client.post(f"{base(rmyy)}/templates/{source.id}/copy", data={"code": "WIN_MY", "name": "本院窗口评价"})
    assert copied.status_code == 302
    template = db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.institution_id == rmyy.id,
                                                              SurveyTemplate.code == "WIN_MY"))
    edit_url = f"{base(rmyy)}/templates/{template.id}/edit"
    assert copied.headers["Location"].endswith(edit_url)
    editor = client.get(edit_url)
    assert editor.status_code == 200
    fields = editor_fields(editor)
    assert fields["items-0-code"] == "WIN_OVERALL" and fields["items-0-type"] == "scale5"

    # Change a label and ask for one blank item; then fill it in and save.
    with_blank = client.post(edit_url, data=editor_fields(editor, **{"items-0-text": "您对今天的窗口服务满意吗？",
                                                                    "add_items": "1"}))
    assert with_blank.status_code == 200
    n = len(source.published.definition["items"])
    assert editor_fields(with_blank)[f"items-{n}-code"] == ""
    saved = client.post(edit_url, data=editor_fields(with_blank, **{
        f"items-{n}-code": "WIN_AGAIN", f"items-{n}-type": "yesno", f"items-{n}-text": "您还会来本窗口办理吗？",
        "add_items": "0"}))
    assert saved.status_code == 302
    db.session.expire_all()
    draft = template.draft
    assert draft.definition["items"][0]["text"] == "您对今天的窗口服务满意吗？"
    assert draft.definition["items"][-1]["code"] == "WIN_AGAIN"
    published = source.published.definition["items"]
    assert [i["code"] for i in draft.definition["items"][:-1]] == [i["code"] for i in published]
    assert [v.number for v in template.versions] == [1]

    published = client.post(f"{base(rmyy)}/templates/{template.id}/publish")
    assert published.status_code == 302
    db.session.expire_all()
    version = template.published
    assert version is not None and version.id == draft.id and template.draft is None
    assert db.session.scalar(select(AuditEntry.actor_id).where(
        AuditEntry.action == "survey_version.publish", AuditEntry.target_id == str(version.id))) == admin.id

    preview = client.get(f"{base(rmyy)}/templates/{template.id}/versions/{version.id}/preview")
    assert preview.status_code == 200
    assert "您对今天的窗口服务满意吗？" in text(preview) and "您还会来本窗口办理吗？" in text(preview)
    assert "<script" not in text(preview).lower()


@pytest.mark.parametrize("code", ["WIN", "OPD", "IPD", "STF"])
def test_saving_the_editor_unchanged_keeps_the_definition(client, rmyy, builtin_templates, code):
    staff_login(client, "rmyy-admin")
    template = versioning.copy_template(builtin_templates[code], rmyy, code=f"{code}_SAME", name="本院", actor="test")
    before, before_hash = template.draft.definition, template.draft.content_hash
    edit_url = f"{base(rmyy)}/templates/{template.id}/edit"
    assert client.post(edit_url, data=editor_fields(client.get(edit_url))).status_code == 302
    db.session.expire_all()
    assert template.draft.definition == before
    assert template.draft.content_hash == before_hash


def test_changing_a_codes_scale_in_the_editor_is_400_naming_the_code(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_SCALE", name="窗口", actor="test")
    draft_hash = template.draft.content_hash
    edit_url = f"{base(rmyy)}/templates/{template.id}/edit"
    editor = client.get(edit_url)
    page = client.post(edit_url, data=editor_fields(editor, **{"items-0-type": "freq4"}))
    assert page.status_code == 400
    assert "WIN_OVERALL" in text(page) and "不能更改" in text(page)
    db.session.expire_all()
    assert template.draft.content_hash == draft_hash


def test_changing_option_scores_in_the_editor_is_400_naming_the_code(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    template = versioning.copy_template(builtin_templates["OPD"], rmyy, code="OPD_SCALE", name="门诊", actor="test")
    edit_url = f"{base(rmyy)}/templates/{template.id}/edit"
    editor = client.get(edit_url)
    row = f"items-{item_index(editor, 'OPD_REG_EASE')}-options-1"
    fields = editor_fields(editor)
    assert (fields[f"{row}-value"], fields[f"{row}-label"], fields[f"{row}-score"]) == ("2", "比较不方便", "33.33")
    page = client.post(edit_url, data=editor_fields(editor, **{f"{row}-score": "25"}))
    assert page.status_code == 400
    assert "OPD_REG_EASE" in text(page)


def test_editing_a_published_template_opens_a_new_draft_and_keeps_the_old(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_V2", name="窗口", actor="test")
    v1 = versioning.publish_version(template.draft, actor="test")
    v1_hash, v1_definition = v1.content_hash, v1.definition
    edit_url = f"{base(rmyy)}/templates/{template.id}/edit"
    assert client.post(f"{base(rmyy)}/templates/{template.id}/draft").headers["Location"].endswith(edit_url)
    editor = client.get(edit_url)
    assert editor.status_code == 200
    saved = client.post(edit_url, data=editor_fields(editor, **{"items-0-text": "第二版题干"}))
    assert saved.status_code == 302
    db.session.expire_all()
    assert [(v.number, v.status) for v in template.versions] == [(1, VersionStatus.PUBLISHED),
                                                                 (2, VersionStatus.DRAFT)]
    assert template.draft.definition["items"][0]["text"] == "第二版题干"
    v1 = db.session.get(TemplateVersion, v1.id)
    assert v1.content_hash == v1_hash and v1.definition == v1_definition


# Settings ---------------------------------------------------------------------------

SETTINGS = {"alert_threshold": "25", "followup_days": "7", "contact_retention_days": "14", "link_valid_days": "30",
            "min_fill_seconds": "2", "repeat_window_minutes": "30", "staff_min_group": "5"}


def test_settings_update_the_alert_threshold_audited_and_used(client, new_client, rmyy, window_code):
    admin = staff_login(client, "rmyy-admin")
    page = client.post(f"{base(rmyy)}/settings", data={**SETTINGS, "alert_threshold": "50"})
    assert page.status_code == 302
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "survey_settings.update"))
    assert entry.actor_id == admin.id and entry.institution_id == rmyy.id
    assert entry.data == {"alert_threshold": [25.0, 50.0]}
    phone = new_client()
    posted = submit(phone, window_code, WIN_OVERALL="3")  # 一般 = 50: now at the threshold
    assert posted.status_code == 303
    db.session.expire_all()
    alert = db.session.scalar(select(RecoveryAlert).join(RecoveryAlert.response)
                              .where(RecoveryAlert.touchpoint_id == window_code.touchpoint_id))
    assert alert is not None and alert.reasons == ["low_score"]


def test_settings_out_of_range_is_400_and_unchanged(client, rmyy, survey_settings):
    staff_login(client, "rmyy-admin")
    page = client.post(f"{base(rmyy)}/settings", data={**SETTINGS, "alert_threshold": "150"})
    assert page.status_code == 400
    db.session.refresh(survey_settings)
    assert survey_settings.alert_threshold == 25.0


# Template editor numbers -------------------------------------------------------------

@pytest.fixture
def own_template(client, rmyy, builtin_templates) -> SurveyTemplate:
    staff_login(client, "rmyy-admin")
    copied = client.post(f"{base(rmyy)}/templates/{builtin_templates['WIN'].id}/copy",
                         data={"code": "WIN_REVIEW", "name": "评审问卷"})
    assert copied.status_code == 302
    return db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.institution_id == rmyy.id,
                                                          SurveyTemplate.code == "WIN_REVIEW"))


ONE_ITEM = {"title": "测试", "items-0-code": "Q1", "items-0-type": "scale5", "items-0-text": "满意吗？"}


@pytest.mark.parametrize("fields", [
    {"dimensions-0-code": "D", "dimensions-0-name": "维度", "dimensions-0-weight": "nan", "items-0-dimension": "D"},
    {"dimensions-0-code": "D", "dimensions-0-name": "维度", "dimensions-0-weight": "1e999",
     "items-0-dimension": "D"},
    {"items-0-type": "single", "items-0-options-0-value": "a", "items-0-options-0-label": "好",
     "items-0-options-0-score": "nan", "items-0-options-1-value": "b", "items-0-options-1-label": "差",
     "items-0-options-1-score": "0"},
    {"items-0-type": "single", "items-0-options-0-value": "a", "items-0-options-0-label": "好",
     "items-0-options-0-score": "inf", "items-0-options-1-value": "b", "items-0-options-1-label": "差",
     "items-0-options-1-score": "0"},
    {"items-1-code": "Q2", "items-1-type": "text", "items-1-text": "原因", "items-1-show_if": "Q1<=abc"},
    {"items-1-code": "Q2", "items-1-type": "text", "items-1-text": "原因", "items-1-show_if": "Q1<=nan"},
])
def test_editor_numbers_that_are_not_finite_are_a_400_with_a_message(client, rmyy, own_template, fields):
    response = client.post(f"{base(rmyy)}/templates/{own_template.id}/edit", data={**ONE_ITEM, **fields})

    assert response.status_code == 400
    assert 'class="flash flash-error"' in text(response)
