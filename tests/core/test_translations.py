"""The English catalogue: complete, safe to format, and English pages free of Chinese chrome.

Message ids are Simplified Chinese; ``translations/en`` is the only real
catalogue. Every message, the complaints feature's included, must have an
English translation, and every translation must keep its placeholders, because
a missing ``%(name)s`` raises at runtime in English and nowhere else.

The page checks look at the chrome — title, header and navigation, headings,
table headers, labels, buttons, help texts, placeholders — after taking out
what is data and stays Chinese in English mode: names of institutions,
departments, touchpoints, regions and people, questionnaire content, and
complaint cases (subjects, categories, channel references).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from core.extensions import db
from organisation.models import Department, Institution, Notification, Region, StaffUser, Touchpoint
from tests.factories import demo_institution, demo_user, login

ROOT = Path(__file__).resolve().parents[2]
PO_FILE = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"

# %(name)s with its conversion: a name the translation lacks raises KeyError, %(n)d fed a str raises TypeError.
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[hlL]?([diouxXeEfFgGcrsa])")
# Han ideographs, CJK punctuation (、。「」) and fullwidth forms (，：（）).
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


class _AnyValue(dict):
    def __missing__(self, key):
        return 1


def _catalogue():
    with PO_FILE.open("rb") as f:
        return read_po(f, locale="en")


def _ids(message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def _placeholders(text: str) -> set[tuple[str, str]]:
    return set(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def catalogue():
    return _catalogue()


def test_every_message_is_translated(catalogue):
    missing = [message.id for message in catalogue
               if message.id and not all(s.strip() for s in _strings(message))]
    assert not missing, f"{len(missing)} untranslated: " + " | ".join(map(str, missing[:20]))


def test_no_fuzzy_translation(catalogue):
    # `make translations` compiles with -f: a fuzzy entry ships as it is, so it must have been reviewed.
    fuzzy = [message.id for message in catalogue if message.id and message.fuzzy]
    assert not fuzzy, fuzzy


def test_translations_keep_the_placeholders_of_their_ids(catalogue):
    wrong = []
    for message in catalogue:
        if not message.id:
            continue
        wanted = set().union(*(_placeholders(i) for i in _ids(message)))
        for string in _strings(message):
            if string and _placeholders(string) != wanted:
                wrong.append((message.id, string))
    assert not wrong, wrong


def test_translations_format_wherever_their_ids_do(catalogue):
    # Templates %-format every string, even one without variables: a stray % in English breaks the page.
    broken = []
    for message in catalogue:
        if not message.id:
            continue
        try:
            for i in _ids(message):
                i % _AnyValue()
        except (ValueError, TypeError, KeyError):
            continue
        for string in _strings(message):
            try:
                string % _AnyValue()
            except (ValueError, TypeError, KeyError) as exc:
                broken.append((message.id, string, str(exc)))
    assert not broken, broken


def test_babel_finds_no_format_errors(catalogue):
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalogue.check() if errors]
    assert not problems, problems


def test_translations_are_english(catalogue):
    chinese = [(message.id, s) for message in catalogue for s in _strings(message) if s and CJK.search(s)]
    assert not chinese, chinese


# Pages in English ------------------------------------------------------------

CHROME_TAGS = {"title", "header", "nav", "h1", "h2", "h3", "th", "label", "legend", "button", "dt", "summary"}
CHROME_CLASSES = {"btn", "muted", "hint", "empty", "flash", "tag", "tile"}
CHROME_ATTRIBUTES = ("placeholder", "aria-label", "title")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Chrome(HTMLParser):
    """Collects the text of chrome elements and chrome attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        for name in CHROME_ATTRIBUTES:
            if attrs.get(name):
                self.parts.append(attrs[name])
        if tag == "input" and attrs.get("type") in {"submit", "button"} and attrs.get("value"):
            self.parts.append(attrs["value"])
        if tag not in VOID:
            if attrs.get("aria-hidden") == "true" or (attrs.get("lang") or "").startswith("zh"):
                self.stack.append(False)  # the 听 logo mark, the 中文 language switch: Chinese on purpose
                return
            inside = bool(self.stack and self.stack[-1])
            self.stack.append(inside or tag in CHROME_TAGS or bool(classes & CHROME_CLASSES))

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] and data.strip():
            self.parts.append(data.strip())


def _data_strings() -> list[str]:
    """Text that is data, not chrome: it stays Chinese whatever the language (longest first)."""
    from complaints.models import Category, Complaint
    from survey.models import RecoveryAlert, SurveyResponse, SurveyTemplate, TemplateVersion

    texts: set[str] = set()
    for column in (Institution.name, Institution.short_name, Region.name, Department.name, Touchpoint.name,
                   Touchpoint.location, StaffUser.display_name, SurveyTemplate.name, SurveyResponse.comment,
                   RecoveryAlert.note, Category.name, Complaint.subject, Complaint.channel_ref,
                   Notification.subject):  # a notice's subject is its opening button's text
        texts.update(v for v in db.session.scalars(select(column)) if v)
    for definition in db.session.scalars(select(TemplateVersion.definition)):
        texts.update(filter(None, (definition.get("title"), definition.get("intro"))))
        texts.update(d.get("name") or "" for d in definition.get("dimensions", []))
        for item in definition.get("items", []):
            texts.add(item.get("text") or "")
            texts.update(o.get("label") or "" for o in item.get("options") or [])
    return sorted((t for t in texts if t and CJK.search(t)), key=len, reverse=True)


def chinese_chrome(html: str) -> list[str]:
    parser = _Chrome()
    parser.feed(html)
    data = _data_strings()
    leftovers = []
    for part in parser.parts:
        for text in data:
            if text in part:
                part = part.replace(text, " ")
        if CJK.search(part):
            leftovers.append(part)
    return leftovers


@pytest.fixture
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    return client


@pytest.fixture
def surveys(ctx):
    """The shipped templates and a live QR code at rmyy's registration window."""
    from survey import qr, versioning

    versioning.install_builtin_templates(actor="test")
    window = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == demo_institution("rmyy").id,
                                                        Touchpoint.code == "W-GH-01"))
    code = qr.ensure_code(window, actor="test")
    db.session.flush()
    return code


@pytest.fixture
def ratings(surveys):
    """A few days of demo ratings at that window, some low enough to raise a service recovery alert."""
    from survey import demo
    from survey.models import RecoveryAlert, SurveyResponse

    demo.seed_responses(days=3, per_touchpoint_per_day=(6, 8))
    db.session.flush()
    response = db.session.scalars(select(SurveyResponse).order_by(SurveyResponse.overall_score)).first()
    alert = db.session.scalars(select(RecoveryAlert)).first()
    assert response is not None and alert is not None
    return response, alert


def _get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["Content-Type"].startswith("text/html")
    return response.get_data(as_text=True)


def test_the_language_is_english(ctx, english):
    html = _get(english, "/login")
    assert '<html lang="en">' in html
    assert "Staff sign-in" in html and "Sign in" in html


def test_login_page_has_no_chinese_chrome(ctx, english):
    html = _get(english, "/login")
    assert chinese_chrome(html) == []
    assert 'lang="zh-CN">中文</a>' in html  # the switch back to Chinese is labelled in Chinese, on purpose


INSTITUTION_PAGES = [
    "/i/{i}/", "/i/{i}/departments", "/i/{i}/departments/new", "/i/{i}/touchpoints", "/i/{i}/staff",
    "/i/{i}/staff/new", "/i/{i}/import", "/i/{i}/audit",
    "/i/{i}/survey/", "/i/{i}/survey/responses", "/i/{i}/survey/alerts", "/i/{i}/survey/templates",
    "/i/{i}/survey/settings", "/i/{i}/survey/codes", "/i/{i}/survey/followup", "/i/{i}/survey/followup/discharges",
    "/i/{i}/survey/followup/upload", "/i/{i}/survey/followup-rates", "/i/{i}/survey/api-tokens",
    "/i/{i}/survey/staff-survey", "/i/{i}/survey/staff-survey/batches", "/i/{i}/survey/staff-survey/batches/new",
    "/account/password", "/account/two-factor",
]


@pytest.mark.parametrize("page", INSTITUTION_PAGES)
def test_institution_admin_pages_have_no_chinese_chrome(ctx, english, surveys, page):
    login(english, demo_user("rmyy-admin"))
    html = _get(english, page.format(i=demo_institution("rmyy").id))
    assert chinese_chrome(html) == [], page


@pytest.mark.parametrize("page", ["/i/{i}/survey/", "/i/{i}/survey/responses", "/i/{i}/survey/responses/{r}",
                                  "/i/{i}/survey/alerts?status=all", "/i/{i}/survey/alerts/{a}"])
def test_survey_pages_with_ratings_have_no_chinese_chrome(ctx, english, ratings, page):
    response, alert = ratings
    login(english, demo_user("rmyy-admin"))
    html = _get(english, page.format(i=demo_institution("rmyy").id, r=response.id, a=alert.id))
    assert chinese_chrome(html) == [], page


def test_survey_template_page_has_no_chinese_chrome(ctx, english, surveys):
    from survey.models import SurveyTemplate

    login(english, demo_user("rmyy-admin"))
    template = db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.code == "WIN"))
    html = _get(english, f"/i/{demo_institution('rmyy').id}/survey/templates/{template.id}")
    assert chinese_chrome(html) == []
    assert "Built-in survey" in html


@pytest.mark.parametrize("page", ["/admin/institutions", "/admin/institutions/new", "/admin/regions",
                                  "/admin/regions/new", "/admin/staff", "/admin/staff/new", "/admin/audit",
                                  "/i/{i}/edit"])
def test_platform_admin_pages_have_no_chinese_chrome(ctx, english, page):
    login(english, demo_user("platform"))
    html = _get(english, page.format(i=demo_institution("rmyy").id))
    assert chinese_chrome(html) == [], page


def test_navigation_and_roles_read_in_english(ctx, english, surveys):
    login(english, demo_user("rmyy-admin"))
    html = _get(english, f"/i/{demo_institution('rmyy').id}/")
    for label in ("Overview", "Satisfaction", "Service recovery", "Follow-up calls", "QR codes", "Audit log",
                  "Change password", "Sign out"):
        assert f">{label}<" in html, label
    assert "Your roles: Institution admin." in html
    # The header's "name (username)": ASCII brackets in English, not the fullwidth （） of Chinese.
    assert f'<span class="who">{demo_user("rmyy-admin").display_name} (rmyy-admin)</span>' in html


def test_patient_survey_page_has_no_chinese_chrome(ctx, english, surveys):
    from survey import qr

    html = _get(english, f"/q/{qr.path_token(surveys)}")
    assert chinese_chrome(html) == []
    assert "Submit" in html and "Ratings are anonymous" in html


def test_patient_notice_page_is_english(ctx, english):
    response = english.get("/q/not-a-real-code")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "QR code not recognised" in html
    assert chinese_chrome(html) == []


def test_error_page_is_english(ctx, english):
    response = english.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Page not found" in html
    assert chinese_chrome(html) == []


# Complaints in English -------------------------------------------------------

@pytest.fixture
def complaint_office(ctx):
    """rmyy's demo complaint office: simulated cases in every status, with their timelines, replies and outcomes.

    The simulation is cut at a fixed moment, so that the same statuses are on show whatever the day.
    """
    from complaints import demo

    rmyy = demo_institution("rmyy")
    demo.seed_cases(150, institutions=[rmyy], now=datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    db.session.flush()
    return rmyy


def _case_in(institution, status: str):
    from complaints.models import Complaint

    case = db.session.scalars(select(Complaint).where(Complaint.institution_id == institution.id,
                                                      Complaint.status == status,
                                                      Complaint.merged_into_id.is_(None))
                              .order_by(Complaint.id.desc())).first()
    assert case is not None, status
    return case


@pytest.mark.parametrize("page", ["/i/{i}/complaints/", "/i/{i}/complaints/ledger"])
def test_complaint_officer_pages_have_no_chinese_chrome(ctx, english, complaint_office, page):
    login(english, demo_user("rmyy-officer"))
    html = _get(english, page.format(i=complaint_office.id))
    assert chinese_chrome(html) == [], page


def test_complaint_queue_reads_in_english(ctx, english, complaint_office):
    login(english, demo_user("rmyy-officer"))
    html = _get(english, f"/i/{complaint_office.id}/complaints/")
    for label in ("Complaints desk", "Complaint ledger", "Register complaint", "Routing rules", "Overdue",
                  "Lead department", "Filter"):
        assert f">{label}<" in html, label


CASE_STATUSES = ["registered", "accepted", "in_handling", "reply_drafted", "replied", "closed", "declined", "settled",
                 "reopened"]


@pytest.mark.parametrize("status", CASE_STATUSES)
def test_complaint_case_pages_have_no_chinese_chrome(ctx, english, complaint_office, status):
    login(english, demo_user("rmyy-officer"))
    case = _case_in(complaint_office, status)
    html = _get(english, f"/i/{complaint_office.id}/complaints/{case.id}")
    assert chinese_chrome(html) == [], (status, case.case_number)
    assert "Timeline" in html


def test_public_complaint_form_has_no_chinese_chrome(ctx, english):
    from complaints.categories import default_categories

    default_categories(actor="test")
    db.session.flush()
    html = _get(english, f"/c/{demo_institution('rmyy').id}/new")
    assert chinese_chrome(html) == []
    assert "Make a complaint" in html and "Submit complaint" in html
    assert "Staff attitude" in html  # the national default categories are offered in English
