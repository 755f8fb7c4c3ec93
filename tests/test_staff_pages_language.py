"""Every staff page, in both languages, as each staff role sees it: no raw identifier shown to a user.

One walk over the app's URL map: every GET rule a staff member can open (files, the patient and
complainant pages, the API and the shell's plumbing left out), its ``<int:...>`` parameters filled
with the ids of rows made for the purpose — the rmyy hospital of the demo with ratings and a
service-recovery alert, a discharge called back, a staff survey batch, an API token, its
complaint office in every status (replies, rectifications, refunds, feedback), routing rules,
categories, the working-day calendar, and audit entries of every kind — fetched by one client per
role, in Simplified Chinese and in English.

The visible text (tags, scripts and styles stripped; placeholders, titles and button values kept)
fails on what is an identifier rather than words: snake_case (``walk_in``), dotted action names
(``staff.login``), CamelCase enum names (``TertiaryGrade``), Python reprs (``None``, ``True``,
``<… object at 0x…>``, ``Status.CLOSED``) and, on Chinese pages, hyphenated or lower-case ASCII
codes (``seed-demo``, ``complaint``). What people typed or were given is data and allowed: user
names, codes an admin chose (``W-GH-02``), case numbers, token prefixes, e-mail addresses, URLs.
In English, Chinese text fails when it is one of the catalogue's message ids left untranslated, not
when it is data entered in Chinese (names of departments and categories, complaint texts, notes),
and so does full-width punctuation left in an English sentence.

English is read from the compiled catalogue.
"""
from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from core.extensions import db
from organisation.models import Department, Institution, Region, StaffUser, Touchpoint
from tests.conftest import make_client
from tests.factories import demo_institution, demo_user, login

ROOT = Path(__file__).resolve().parent.parent
PO_FILE = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"
LOCALES = ("zh_Hans", "en")
# The staff roles of the demo: platform admin, regional admin, and rmyy's institution admin, complaint
# officer, department handler (科室负责人, bound to 心血管内科 and 财务科), follow-up nurse and leadership.
ROLES = ("platform", "region", "rmyy-admin", "rmyy-officer", "rmyy-handler", "rmyy-nurse", "rmyy-leader")
# Blueprints that are not staff pages: the patient's and complainant's, the API, the shell's plumbing.
NOT_STAFF = {"patient", "complaints", "api", "static", "health", "i18n", "auth.login"}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


# What a raw identifier looks like --------------------------------------------------------------

IDENTIFIERS = {
    "snake_case": re.compile(r"(?<![\w.-])[A-Za-z][a-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w-])"),
    "dotted name": re.compile(r"(?<![\w.-])[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+(?![\w-])"),
    "CamelCase": re.compile(r"(?<![\w.-])[A-Z][a-z]+(?:[A-Z][a-z]+)+(?![\w-])"),
    "Python repr": re.compile(r"\b(?:None|True|False)\b|<[^<>]*\bobject at 0x[0-9a-f]+>|"
                              r"\b[A-Z][A-Za-z]+\.[A-Z][A-Z_]+\b|\b(?:Decimal|datetime|date)\(|\{'|\['"),
}
# On Chinese pages, ASCII words are codes unless they are data, a product name or an abbreviation.
CHINESE_PAGE_IDENTIFIERS = {
    "hyphenated code": re.compile(r"(?<![\w.-])[a-z][a-z0-9]*(?:-[a-z0-9]+)+(?![\w-])"),
    "lower-case word": re.compile(r"(?<![\w.@/-])[a-z]{3,}(?![\w@/-])"),
}
# Looks like an identifier, is English: "e.g." in a hint; product names as their makers write them.
ALLOWED_WORDS = {"e.g", "i.e", "WeCom", "DingTalk"}
# Full-width punctuation belongs to Chinese sentences: in English, a label's "：" or "（…）" is untranslated.
CHINESE_PUNCTUATION = re.compile(r"[（），：；、。！？【】「」《》]")
# Addresses are data: e-mail, URLs, paths, and host names such as an example SMTP server's.
EMAIL_OR_URL = re.compile(r"\S+@\S+\.\w+|https?://\S+|(?<![\w-])/[\w/.?=&%-]*"
                          r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+\.(?:cn|com|net|org)\b")


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f, locale="en")


def _catalogue_ids() -> set[str]:
    """The Chinese message ids of the English catalogue."""
    ids: set[str] = set()
    for path in [PO_FILE]:
        for message in _read(path):
            for msgid in (message.id if isinstance(message.id, list | tuple) else [message.id]):
                if msgid and CJK.search(msgid):
                    ids.add(msgid)
    return ids


class _Text(HTMLParser):
    """The text a user reads: text nodes (not scripts, styles or templates) and visible attributes."""

    SKIP = {"script", "style", "template", "noscript"}
    VISIBLE_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skipping = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.SKIP:
            self.skipping += 1
        for name in self.VISIBLE_ATTRIBUTES:
            if attrs.get(name):
                self.parts.append(attrs[name])
        if tag == "input" and attrs.get("type") in {"submit", "button"} and attrs.get("value"):
            self.parts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.parts.append(" ".join(data.split()))


def visible_text(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.parts


@dataclass
class Findings:
    """Raw identifiers and untranslated messages found, by what was shown, with where it was seen."""

    seen: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, kind: str, text: str, where: str, context: str = "") -> None:
        self.seen[(kind, text)].add(f"{where} [{context[:80]}]" if context else where)

    def report(self) -> str:
        lines = []
        for (kind, text), where in sorted(self.seen.items()):
            pages = sorted(where)
            lines.append(f"{kind}: {text!r} on {len(pages)} page(s), e.g. {', '.join(pages[:3])}")
        return "\n".join(lines)


def _without(text: str, data: list[str]) -> str:
    for value in data:
        if value in text:
            text = text.replace(value, " ")
    return text


class Checker:
    """What is wrong with a piece of visible text, in one language (remembered: pages share most of their text)."""

    def __init__(self, data: list[str], msgids: set[str]):
        self.data = data
        self.plain_ids = sorted((m for m in msgids if "%(" not in m and len(m) >= 2), key=len, reverse=True)
        self.id_patterns = _msgid_patterns(msgids)
        self.seen: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def problems(self, part: str, locale: str) -> list[tuple[str, str]]:
        if (locale, part) not in self.seen:
            self.seen[locale, part] = self._problems(part, locale)
        return self.seen[locale, part]

    def _problems(self, part: str, locale: str) -> list[tuple[str, str]]:
        patterns = dict(IDENTIFIERS, **(CHINESE_PAGE_IDENTIFIERS if locale == "zh_Hans" else {}))
        text = EMAIL_OR_URL.sub(" ", part)
        if not (any(p.search(text) for p in patterns.values()) or (locale == "en" and CJK.search(text))):
            return []
        rest = _without(text, self.data)
        found = [(kind, match.group(0)) for kind, pattern in patterns.items() for match in pattern.finditer(rest)
                 if match.group(0) not in ALLOWED_WORDS]
        if locale == "en":
            found += [("Chinese punctuation", match.group(0)) for match in CHINESE_PUNCTUATION.finditer(rest)]
            for segment in re.findall(r"[^\sA-Za-z0-9.,:;!?()\[\]/'\"%#·→—-]+(?:\s+[^\sA-Za-z0-9]+)*", rest):
                if CJK.search(segment) and (any(p.fullmatch(segment) for p in self.id_patterns)
                                            or any(m in segment for m in self.plain_ids)):
                    found.append(("untranslated", segment))
        return found


def check_page(html: str, locale: str, where: str, checker: Checker, findings: Findings) -> None:
    for part in visible_text(html):
        for kind, text in checker.problems(part, locale):
            findings.add(kind, text, where, part)


def _msgid_patterns(msgids: set[str]) -> list[re.Pattern]:
    """Message ids with placeholders as patterns: 「共 %(n)d 条」 matches 「共 12 条」."""
    patterns = []
    for msgid in msgids:
        if "%(" in msgid:
            pieces = re.split(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]", msgid)
            patterns.append(re.compile(".+?".join(re.escape(p) for p in pieces), re.S))
    return patterns


# The rows the pages are opened on ----------------------------------------------------------------

@pytest.fixture
def world(ctx):
    """rmyy with something on every page, and audit entries of every kind; returns the ids by URL parameter."""
    from complaints import categories as category_service
    from complaints import demo as complaints_demo
    from complaints import replies, routing, triage
    from complaints.calendar_data import seed_from_chinesecalendar
    from complaints.intake import register_complaint
    from complaints.models import Channel, Complaint, Feedback, Rectification, Refund, Reply, ReplyStatus, Status
    from complaints.settings import update_complaint_settings
    from complaints.workdays import invalidate_calendar_cache
    from organisation import services
    from survey import api as api_service
    from survey import demo as survey_demo
    from survey import discharges, followup, qr, staff_survey, versioning
    from survey.alerts import close_alert
    from survey.models import FollowupOutcome, RecoveryAlert, SurveyResponse, SurveyTemplate, TemplateVersion

    rmyy = demo_institution("rmyy")
    officer, admin, platform = demo_user("rmyy-officer"), demo_user("rmyy-admin"), demo_user("platform")
    handler = demo_user("rmyy-handler")
    # Surveys: the shipped questionnaires, QR codes, two days of ratings (some low: alerts).
    templates = versioning.install_builtin_templates(actor="cli")
    for tp in db.session.scalars(select(Touchpoint).where(Touchpoint.institution_id == rmyy.id)):
        qr.ensure_code(tp, actor=officer)
    survey_demo.seed_responses(days=2, per_touchpoint_per_day=(2, 3))
    db.session.flush()
    # A discharge, called back; a staff survey batch; an API token.
    settings = followup.followup_settings(rmyy.id)
    raw = {"unit": "B-XNK", "discharge_date": date.today().isoformat(), "patient_name": "王五",
           "phone": "13800001111", "ref": f"ZY{uuid.uuid4().hex[:8]}"}
    data, errors = discharges.check_discharge(raw, discharges.Units.load(rmyy), settings, today=date.today())
    assert not errors
    discharge, _ = discharges.create_discharge(rmyy, data, source="upload", actor=demo_user("rmyy-nurse"))
    followup.record_call(discharge, FollowupOutcome.NO_ANSWER, nurse=demo_user("rmyy-nurse"))
    followup.record_call(discharge, FollowupOutcome.REACHED, nurse=demo_user("rmyy-nurse"))  # answers to enter
    stf = templates["STF"] if isinstance(templates, dict) else None
    stf = stf or db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.code == "STF"))
    xnk = db.session.scalar(select(Department).where(Department.institution_id == rmyy.id, Department.code == "XNK"))
    batch = staff_survey.create_batch(rmyy, xnk, stf, 5, actor=admin)
    api_service.create_api_token(rmyy, name="HIS 出院接口", actor=admin)
    # Data entered in Chinese: a department and a category of the hospital's own.
    pain = services.create_department(rmyy, code="TTK", name="疼痛科（新设）", kind="clinical", actor=admin)
    services.create_touchpoint(rmyy, code="W-TT-01", name="疼痛科门诊", kind="clinic", department=pain, actor=admin)
    # The complaint office: the calendar, the categories, a simulated office in every status.
    seed_from_chinesecalendar([2025, 2026], actor="cli")
    invalidate_calendar_cache()
    defaults = {c.code: c for c in category_service.default_categories(actor="cli")}
    own = category_service.create_category(rmyy, name="停车收费纠纷", charges=True, actor=officer)
    complaints_demo.seed_cases(60, institutions=[rmyy], now=datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    rule = routing.create_routing_rule(rmyy, priority=10, category_id=defaults["charges"].id, touchpoint_id=None,
                                       department_id=None, keywords="收费；退费", target_department_id=xnk.id,
                                       actor=officer)
    # Audit entries of every kind a user would see: registration, triage, settings, edits, sign-ins.
    def walk_in(subject: str):
        case, _code = register_complaint(rmyy, channel=Channel.WALK_IN, received_at=datetime.now(UTC), subject=subject,
                                         description="工作人员态度生硬，不愿解释。", wish="希望改进服务态度。",
                                         complainant_name="张三", complainant_phone="13912345678",
                                         first_contact=officer, submission_id=uuid.uuid4().hex,
                                         category=defaults["attitude"], touchpoint=None, departments_concerned=[xnk],
                                         actor=officer)
        triage.accept_complaint(case, actor=officer)
        routing.assign_department(case, xnk, actor=officer)
        return case

    walk_in("挂号窗口态度生硬")
    approved, replied = walk_in("候诊时间过长"), walk_in("收费窗口解释不清")
    for case in (approved, replied):
        replies.approve_reply(replies.draft_reply(case, "您好！您反映的问题已收悉，科室已整改。", actor=handler),
                              actor=officer)
    replies.send_reply(replied, actor=officer)
    update_complaint_settings(rmyy.id, {"standard_days": 5, "complex_days": 10, "reminder_days_before": 2,
                                        "escalate_after_days": 1, "case_prefix": "RM", "feedback_valid_days": 14,
                                        "triage_days": 2, "complainant_retention_days": 400,
                                        "dispute_retention_days": 1200},
                              actor=officer)
    services.update_institution(rmyy, actor=platform, grade="b", level="secondary")
    services.update_institution(rmyy, actor=platform, grade="a", level="tertiary")
    services.update_staff(demo_user("rmyy-nurse"), display_name=demo_user("rmyy-nurse").display_name,
                          roles=["followup_nurse", "leadership"], departments=[], actor=admin)
    services.update_staff(demo_user("rmyy-nurse"), display_name=demo_user("rmyy-nurse").display_name,
                          roles=["followup_nurse"], departments=[], actor=admin)
    services.authenticate("rmyy-officer", "wrong password", address="127.0.0.1")
    db.session.flush()

    def first(stmt):
        return db.session.scalars(stmt.limit(1)).first()

    # A case page in every status (and one with a returned reply); the pages of one case's steps on two.
    cases = {}
    for status in Status:
        found = first(select(Complaint).where(Complaint.institution_id == rmyy.id, Complaint.status == status)
                      .order_by(Complaint.id.desc()))
        if found is not None:
            cases[status.value] = found.id
    returned = first(select(Reply).join(Complaint).where(Complaint.institution_id == rmyy.id,
                                                         Reply.status == ReplyStatus.RETURNED))
    if returned is not None:
        cases["returned reply"] = returned.complaint_id
    with_reply = first(select(Reply).join(Complaint).where(Complaint.institution_id == rmyy.id,
                                                           Reply.status == ReplyStatus.SENT).order_by(Reply.id.desc()))
    with_feedback = first(select(Feedback).join(Complaint).where(Complaint.institution_id == rmyy.id)
                          .order_by(Feedback.id.desc()))
    rectification = first(select(Rectification).join(Complaint).where(Complaint.institution_id == rmyy.id))
    refund = first(select(Refund).join(Complaint).where(Complaint.institution_id == rmyy.id))
    # Service recovery: one alert closed with a note, one left open.
    alerts = db.session.scalars(select(RecoveryAlert).where(RecoveryAlert.institution_id == rmyy.id)
                                .order_by(RecoveryAlert.id).limit(2)).all()
    close_alert(alerts[0], "已电话联系患者并致歉。", actor=admin)
    window, inpatient = (db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.code == code))
                         for code in ("WIN", "IPD"))
    own_survey = versioning.copy_template(window, rmyy, code="WIN_RMYY", name="窗口服务评价（本院）", actor=admin)
    version = first(select(TemplateVersion).where(TemplateVersion.template_id == window.id))
    db.session.flush()
    return {
        "rmyy": rmyy.id,
        "cases": cases,
        "case_steps": [cases["in_handling"], cases["closed"]],
        **{f"case_{status}": cases[status] for status in set(STEP_NEEDS.values())},
        "reply": (with_reply.complaint_id, with_reply.id),
        "feedback": (with_feedback.complaint_id, with_feedback.id),
        "rectification_id": rectification.id,
        "refund_id": refund.id,
        "region_id": rmyy.region_id,
        "staff_id": [demo_user("rmyy-handler").id, demo_user("region").id],
        "department_id": pain.id,
        "touchpoint_id": db.session.scalar(select(Touchpoint.id).where(Touchpoint.institution_id == rmyy.id,
                                                                       Touchpoint.code == "W-GH-01")),
        "template_id": [window.id, inpatient.id, own_survey.id],
        "template": (window.id, version.id),
        "alert_id": [alert.id for alert in alerts],
        "response_id": first(select(SurveyResponse.id).where(SurveyResponse.institution_id == rmyy.id)),
        "discharge_id": discharge.id,
        "batch_id": batch.id,
        "category_id": own.id,
        "rule_id": rule.id,
        "year": 2026,
    }


def data_strings() -> list[str]:
    """What people typed or were given, shown as it is in both languages (longest first)."""
    from complaints.models import (
        Attachment,
        CalendarDay,
        CalendarYear,
        CaseDepartment,
        CaseEvent,
        Category,
        Complaint,
        ComplaintSettings,
        Extension,
        Feedback,
        Rectification,
        Refund,
        Reply,
        RoutingRule,
    )
    from complaints.routing import split_keywords
    from survey.models import (
        ApiToken,
        RecoveryAlert,
        StaffSurveyBatch,
        SurveyResponse,
        SurveyTemplate,
        TemplateVersion,
        TouchpointCode,
    )

    texts: set[str] = set()
    for column in (Institution.name, Institution.short_name, Institution.registration_code, Region.name,
                   Region.code, Department.name, Department.code, Touchpoint.name, Touchpoint.code,
                   Touchpoint.location, StaffUser.username, StaffUser.display_name, SurveyTemplate.name,
                   SurveyTemplate.code, SurveyResponse.comment, RecoveryAlert.note, ApiToken.name, ApiToken.prefix,
                   StaffSurveyBatch.label, Category.name, Complaint.case_number, Complaint.subject,
                   Complaint.description, Complaint.wish, Complaint.channel_ref, Complaint.staff_involved,
                   Complaint.complainant_name, Complaint.decline_notice, Complaint.settlement_note,
                   CaseDepartment.answer, CaseDepartment.waive_reason, CaseEvent.note,
                   Extension.reason, Extension.decision_note, Attachment.filename, RoutingRule.keywords,
                   ComplaintSettings.case_prefix, Reply.body, Reply.review_note, Feedback.comment,
                   Feedback.reopen_note, Rectification.action, Rectification.evidence, Refund.reason,
                   Refund.decision_note, Refund.payment_ref, CalendarDay.name, CalendarYear.source,
                   TouchpointCode.code):
        texts.update(str(v) for v in db.session.scalars(select(column).distinct()) if v)
    for keywords in db.session.scalars(select(RoutingRule.keywords)):
        texts.update(split_keywords(keywords))
    for definition in db.session.scalars(select(TemplateVersion.definition)):
        texts.update(filter(None, (definition.get("title"), definition.get("intro"))))
        for dimension in definition.get("dimensions", []):
            texts.update(filter(None, (dimension.get("name"), dimension.get("code"))))
        for item in definition.get("items", []):
            texts.update(filter(None, (item.get("text"), item.get("code"))))
            for option in item.get("options") or []:  # codes the questionnaire's author chose, and their labels
                texts.update(filter(None, (option.get("label"), str(option.get("value") or ""))))
    return sorted((t for t in texts if len(t) > 1), key=len, reverse=True)


# The walk ------------------------------------------------------------------------------------------

# A case's step pages that open only on a case in one status (elsewhere they redirect to the case).
STEP_NEEDS = {"complaints_staff.decline": "registered", "complaints_staff.send_reply": "reply_approved",
              "complaints_staff.close_case": "replied"}
FILE_RULE = re.compile(r"\.[<\w>]+$|/qr\.|<any\(")


def staff_rules(app) -> list:
    rules = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or FILE_RULE.search(rule.rule) or "attachments" in rule.rule:
            continue
        if rule.endpoint in NOT_STAFF or rule.endpoint.split(".")[0] in NOT_STAFF:
            continue
        rules.append(rule)
    return sorted(rules, key=lambda r: r.rule)


def urls_for(rule, ids: dict) -> list[str]:
    """The rule's URLs on the world's rows, or none if it cannot be filled. A case page is opened in every
    status, the pages of a case's steps on two cases, a questionnaire's page on two questionnaires."""
    arguments = set(rule.arguments)
    pairs = {("case_id", "reply_id"): "reply", ("case_id", "feedback_id"): "feedback",
             ("template_id", "version_id"): "template"}
    choices: list[dict] = [{}]
    for names, key in pairs.items():
        if set(names) <= arguments:
            choices = [dict(zip(names, ids[key], strict=True))]
            break
    else:
        if "case_id" in arguments:
            if rule.endpoint == "complaints_staff.case":
                cases = list(ids["cases"].values())
            elif rule.endpoint in STEP_NEEDS:
                cases = [ids[f"case_{STEP_NEEDS[rule.endpoint]}"]]
            else:
                cases = ids["case_steps"]
            choices = [{"case_id": case_id} for case_id in dict.fromkeys(cases)]
    urls = []
    for choice in choices:
        values: dict = {"institution_id": ids["rmyy"], **choice}
        for name in sorted(arguments - set(values)):
            if name not in ids:
                return []
            values[name] = ids[name]
        expanded = [values]
        for name, value in values.items():
            if isinstance(value, list):
                expanded = [dict(v, **{name: one}) for v in expanded for one in value]
        for one in expanded:
            path = rule.rule
            for name, value in one.items():
                path = re.sub(rf"<(?:\w+:)?{name}>", str(value), path)
            urls.append(path)
    return urls


def test_no_staff_page_shows_a_raw_identifier_in_either_language(app, world):
    ids = world
    checker = Checker(data_strings(), _catalogue_ids())
    findings = Findings()
    opened: dict[str, set[str]] = defaultdict(set)
    seconds: dict[str, float] = {}
    rules = staff_rules(app)
    for username in ROLES:
        started = time.monotonic()
        client = make_client(app)
        login(client, demo_user(username))
        closed: set[str] = set()  # refused or redirected in the first language: not opened again in the second
        for locale in LOCALES:
            client.get(f"/lang/{locale}")
            for rule in rules:
                for url in urls_for(rule, ids):
                    if url in closed:
                        continue
                    response = client.get(url)
                    assert response.status_code < 500, (username, url, response.status_code)
                    if response.status_code != 200 or response.mimetype != "text/html":
                        closed.add(url)
                        continue
                    opened[username].add(url)
                    check_page(response.get_data(as_text=True), locale, f"{username} {locale} {url}", checker,
                               findings)
        seconds[username] = round(time.monotonic() - started, 1)
    print("\npages opened (each in both languages) and seconds, by role:",
          {username: (len(opened[username]), seconds[username]) for username in ROLES})
    assert not findings.seen, "\n" + findings.report()
    # The walk reached what each role works with (a check that it walked at all).
    assert {f"/i/{ids['rmyy']}/audit", "/admin/audit", "/admin/institutions"} <= opened["platform"]
    assert f"/i/{ids['rmyy']}/complaints/{ids['cases']['closed']}" in opened["rmyy-officer"]
    assert f"/i/{ids['rmyy']}/survey/followup" in opened["rmyy-nurse"]
    assert all(opened[username] for username in ROLES)


@pytest.mark.parametrize(("grade", "chinese", "english"), [("a", "三级甲等", "Tertiary Grade A"),
                                                           ("ungraded", "三级", "Tertiary")])
def test_an_institution_reads_as_its_level_and_grade(ctx, grade, chinese, english):
    from flask_babel import force_locale

    institution = demo_institution("rmyy")
    institution.grade = grade
    with force_locale("zh_Hans"):
        assert institution.level_and_grade == chinese
    with force_locale("en"):
        assert institution.level_and_grade == english


def test_statuses_read_as_statuses_in_english(ctx):
    """A status is not the button that led to it: an extension is Rejected, a reopening request Reopening refused."""
    from flask_babel import force_locale

    from complaints.models import ExtensionStatus, ReopenStatus

    with force_locale("en"):
        assert str(ExtensionStatus.REJECTED.label) == "Rejected"
        assert str(ReopenStatus.REFUSED.label) == "Reopening refused"
    with force_locale("zh_Hans"):
        assert (str(ExtensionStatus.REJECTED.label), str(ReopenStatus.REFUSED.label)) == ("未批准", "重办申请未获同意")
