"""Shared fixtures for the complaint tests (intake, cases, deadlines, outcomes, ledger).

Import the helpers where a test needs them::

    from tests.complaints.conftest import staff_login

Fixtures:

- ``client`` / ``new_client``: browsers on their own networks whose requests
  start and end like real ones (setup rows committed to the per-test
  savepoint first, anything a view left uncommitted rolled back afterwards);
- ``rmyy`` / ``zyy``: the demo hospitals (rmyy-handler is bound to XNK 心血管内科
  and CWK 财务科; zyy-handler to ZYNK);
- ``categories``: the national default categories, by code
  (ethics, quality_safety, attitude, charges, environment, security, other);
- ``calendar_2026``: the working-day calendar for 2025 and 2026 from chinesecalendar;
- ``make_case(**overrides)``: a case registered through complaints.intake.register_complaint
  (default: rmyy, walk-in, 服务态度, registered by rmyy-officer, received now);
  the one-time lookup code is on ``case.plain_lookup_code``;
- ``outbox``: messages sent through core.notify while the test runs;
- ``post_complaint(client, institution, ...)``: the public complaint form, opened and posted as a phone
  would (``open_form`` and ``hidden_fields`` read a page's hidden inputs); ``photo(kind, size, ...)``
  makes a real JPG, PNG or HEIC image to attach;
- ``october_ledger``: the C15 fixture, 20 cases of rmyy received in October 2026 (Beijing time) in
  every state that matters for the ledger and the statistics, plus two cases just outside the month
  and one of another hospital; its hand counts are in ``HAND``, and ``add_case``, ``at`` and
  ``end_of`` write more cases and Beijing-time moments;
- ``live_server`` and ``shots`` from tests/browser, and ``in_browser(fn, phone=True)``, which runs
  ``fn(page)`` in a fresh chromium on its own thread. (Importing tests/browser's session-wide
  ``browser`` into a module here starts a second Playwright next to the one tests/browser keeps
  open, and the sync API refuses that on the main thread.)
"""
from __future__ import annotations

import itertools
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from complaints import categories as category_service
from complaints import lookup
from complaints.models import CaseDepartment, Complaint, Feedback, Rectification
from core.extensions import db
from organisation.models import Department, Institution, StaffUser, Touchpoint
from tests.conftest import CHROMIUM  # live_server and shots are fixtures of tests/conftest.py
from tests.factories import demo_institution, demo_user, login

# Tenants and users ---------------------------------------------------------------

@pytest.fixture
def fresh_lockouts(app):
    """The progress lookup's lockout counters cleared (they live in Redis or the process and outlive the
    rolled-back rows, while case numbers repeat between tests)."""
    conn = app.extensions.get("redis")
    if conn is not None:
        for key in conn.scan_iter("tj:lookup:*"):
            conn.delete(key)
    lookup._local.clear()


@pytest.fixture
def officer(ctx) -> StaffUser:
    """rmyy's complaint officer."""
    return demo_user("rmyy-officer")


@pytest.fixture
def admin(ctx) -> StaffUser:
    """rmyy's institution admin (an officer-capable second person for approvals)."""
    return demo_user("rmyy-admin")


@pytest.fixture
def handler(ctx) -> StaffUser:
    """rmyy's department handler, bound to XNK (心血管内科) and CWK (财务科)."""
    return demo_user("rmyy-handler")


def staff_login(client, username: str) -> StaffUser:
    """Log ``client`` in as a demo user ('rmyy-officer', 'rmyy-admin', 'rmyy-handler', 'rmyy-leader', 'zyy-…')."""
    user = demo_user(username)
    assert user is not None, username
    login(client, user)
    return user


def department(institution: Institution, code: str) -> Department:
    """A demo department by code, e.g. department(rmyy, "XNK")."""
    found = db.session.scalar(select(Department).where(Department.institution_id == institution.id,
                                                       Department.code == code))
    assert found is not None, code
    return found


def touchpoint(institution: Institution, code: str) -> Touchpoint:
    """A demo touchpoint by code, e.g. touchpoint(rmyy, "W-GH-01") (department CWK)."""
    found = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                       Touchpoint.code == code))
    assert found is not None, code
    return found


# Complaint data ------------------------------------------------------------------

@pytest.fixture
def categories(ctx) -> dict[str, Any]:
    """The national default categories by code (idempotent seeding)."""
    from complaints.categories import default_categories

    return {c.code: c for c in default_categories(actor="test")}


@pytest.fixture
def calendar_2026(ctx) -> None:
    """The official working-day calendar for 2025 and 2026 (from chinesecalendar); 2027 stays unannounced."""
    from complaints.calendar_data import seed_from_chinesecalendar

    seed_from_chinesecalendar([2025, 2026], actor="test")
    db.session.flush()
    try:  # the deadline engine may cache the calendar between requests
        from complaints.workdays import invalidate_calendar_cache
    except ImportError:  # pragma: no cover - older deadline module
        return
    invalidate_calendar_cache()


@pytest.fixture
def make_case(ctx, categories):
    """``make_case(**overrides)`` registers a case through the intake service and returns it.

    Overrides are register_complaint's keyword arguments plus ``institution``
    (default rmyy) and ``actor`` (default that institution's officer). A
    ``category`` may be given by code ("charges") or as a Category row;
    ``departments_concerned`` by department code or row; ``touchpoint`` by code
    or row. The lookup code is on ``case.plain_lookup_code``.
    """
    from complaints.intake import register_complaint
    from complaints.models import Category, Channel

    def make(**overrides):
        institution = overrides.pop("institution", None) or demo_institution("rmyy")
        key = "zyy" if institution.registration_code.endswith("002") else "rmyy"
        actor = overrides.pop("actor", None) or demo_user(f"{key}-officer")
        category = overrides.pop("category", "attitude")
        if not isinstance(category, Category):
            category = categories[category]
        tp = overrides.pop("touchpoint", None)
        if isinstance(tp, str):
            tp = touchpoint(institution, tp)
        departments = [department(institution, d) if isinstance(d, str) else d
                       for d in overrides.pop("departments_concerned", [])]
        values: dict[str, Any] = {
            "channel": Channel.WALK_IN,
            "received_at": datetime.now(UTC),
            "subject": "挂号窗口态度生硬",
            "description": "上午在挂号窗口询问医保报销流程，工作人员态度生硬，不愿解释。",
            "wish": "希望改进服务态度并给予解释。",
            "complainant_name": "张三",
            "complainant_phone": "13912345678",
            "first_contact": actor if isinstance(actor, StaffUser) else None,
            "submission_id": uuid.uuid4().hex,
        }
        values.update(overrides)
        case, code = register_complaint(institution, category=category, touchpoint=tp,
                                        departments_concerned=departments, actor=actor, **values)
        case.plain_lookup_code = code
        return case

    return make


# The complainant's public form ---------------------------------------------------------

def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page, whatever the order of their attributes."""
    from html import unescape

    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        if 'type="hidden"' in tag:
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def open_form(client, path: str) -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return hidden_fields(page.get_data(as_text=True))


def photo(kind: str = "jpg", size: tuple[int, int] = (64, 48), *, exif: dict | None = None, noise: bool = False,
          mode: str = "RGB") -> bytes:
    """A real image file made with Pillow ("jpg", "png" or "heic", through pillow-heif), for attachment tests.

    ``exif`` maps EXIF tags to values (0x0112 orientation, 0x8825 a GPS IFD …); ``noise`` makes it as
    hard to compress as a photo.
    """
    import io

    from PIL import Image
    from pillow_heif import register_heif_opener

    register_heif_opener()
    if noise:
        image = Image.merge("RGB", [Image.effect_noise(size, 80).convert("L") for _ in range(3)])
    else:
        image = Image.new("RGB", size, (200, 120, 40))
        image.paste((20, 60, 160), (0, 0, size[0] // 2, size[1] // 2))  # a mark to tell which way is up
    if mode != "RGB":
        image = image.convert(mode)
    options = {}
    if exif:
        tags = Image.Exif()
        for tag, value in exif.items():
            tags[tag] = value
        options["exif"] = tags.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, {"jpg": "JPEG", "png": "PNG", "heic": "HEIF"}[kind], **options)
    return buffer.getvalue()


def post_complaint(client, institution, *, fields: dict | None = None, files=(), query: str = ""):
    path = f"/c/{institution.id}/new{query}"
    hidden = open_form(client, path)

    data = {**hidden, "category": str(category_service.categories_for(institution)[2].id), "relation": "self",
            "description": "在收费窗口排队一小时，工作人员中途离开没有说明。",
            "wish": "希望增加窗口", "complainant_phone": "13912345678", **(fields or {})}
    if files:
        data["attachments"] = list(files)
    return client.post(path, data=data, content_type="multipart/form-data"), data


# The October ledger (C15): hand-counted cases for the ledger and the statistics ------------

BEIJING = ZoneInfo("Asia/Shanghai")
_numbers = itertools.count(1)

PHONE = "13912345678"

# What a person counts by hand on the October ledger (see october_ledger below).
HAND = {
    "rows": 20,              # every case received in October, the merged-away duplicate included
    "received": 19,          # the statistics leave the merged-away duplicate out
    "declined": 2, "registered": 1, "accepted": 16, "closed": 9,
    "response": (9, 16), "resolution": (8, 9), "satisfaction": (4, 6), "on_time": (6, 12),
    "median_days": 4,
}


def at(day: int, hour: float = 10.0, month: int = 10) -> datetime:
    """A Beijing-time moment in 2026, as the aware UTC datetime the database stores."""
    local = datetime(2026, month, day, tzinfo=BEIJING) + timedelta(hours=hour)
    return local.astimezone(UTC)


def end_of(day: int, month: int = 10) -> datetime:
    """24:00 Beijing time of a due day (how deadlines are stored)."""
    return at(day, 24, month)


def add_case(institution: Institution, *, received: datetime, status: str = "closed", **values: Any) -> Complaint:
    """A case written directly (the services are tested elsewhere): only what the ledger reads."""
    number = values.pop("case_number", None) or f"TT2026-{next(_numbers):05d}"
    values.setdefault("channel", "walk_in")
    values.setdefault("subject", "挂号窗口态度生硬")
    values.setdefault("description", "工作人员态度生硬。")
    values.setdefault("complainant_name", "欧阳测试")
    values.setdefault("complainant_phone", "13800000000")
    complaint = Complaint(institution_id=institution.id, case_number=number, received_at=received, status=status,
                          **values)
    db.session.add(complaint)
    db.session.flush()
    return complaint


@dataclass
class Ledger:
    rmyy: Institution
    zyy: Institution
    cases: dict[str, Complaint]


@pytest.fixture
def october_ledger(rmyy, zyy, categories, calendar_2026) -> Ledger:
    """The C15 fixture: 20 October cases of rmyy with known answers (HAND), and three outside it."""
    officer = demo_user("rmyy-officer")
    xnk, cwk, ywk = department(rmyy, "XNK"), department(rmyy, "CWK"), department(rmyy, "YWK")
    attitude, charges, safety = categories["attitude"], categories["charges"], categories["quality_safety"]
    common = {"first_contact_id": officer.id, "category_id": attitude.id, "lead_department_id": xnk.id}
    cases: dict[str, Complaint] = {}

    def case(key: str, **values: Any) -> Complaint:
        merged = {**common, **values}
        cases[key] = add_case(rmyy, case_number=f"TS2026-1{len(cases):04d}", **merged)
        return cases[key]

    # Closed: replied on time / late; resolved or not; satisfaction answered on the case, or only on its feedback.
    case("A1", received=at(12), due_at=end_of(19), replied_at=at(15), first_response_at=at(15), closed_at=at(16),
         resolved=True, satisfaction="satisfied", complainant_phone=PHONE, complainant_name="张三丰")
    case("A2", received=at(13), due_at=end_of(20), replied_at=at(19), first_response_at=at(19), closed_at=at(20),
         resolved=True, satisfaction="basically", channel="phone")
    case("A3", received=at(14), due_at=end_of(21), replied_at=at(27), first_response_at=at(27), closed_at=at(28),
         resolved=False, satisfaction="unsatisfied", category_id=safety.id, lead_department_id=ywk.id)
    case("A4", received=at(15), due_at=end_of(22), replied_at=at(20), first_response_at=at(20), closed_at=at(21),
         resolved=True)
    case("A5", received=at(16), due_at=end_of(23), replied_at=at(29), first_response_at=at(29), closed_at=at(30),
         resolved=True, satisfaction="satisfied", complainant_phone="139-1234-5678", channel="hotline_12345",
         category_id=charges.id, lead_department_id=cwk.id)
    # Replied, not closed yet.
    case("A6", status="replied", received=at(19), due_at=end_of(26), replied_at=at(23), first_response_at=at(23))
    case("A7", status="replied", received=at(20), due_at=end_of(27), replied_at=at(28, 9), first_response_at=at(28, 9))
    # Open: overdue (contacted in time, never answered); paused; still within a deadline that lies ahead.
    case("A8", status="in_handling", received=at(21), due_at=end_of(28), first_response_at=at(22))
    case("A9", status="in_handling", received=at(22), due_at=end_of(29), paused_since=at(26),
         pause_reason="awaiting_material")
    case("A10", status="in_handling", received=at(23),
         due_at=datetime.now(UTC) + timedelta(days=5))  # an approved extension
    # Settled on the spot: no deadline; resolved recorded by the service, or left empty.
    case("A11", status="settled", received=at(20, 9), first_response_at=at(20, 9.5), replied_at=at(20, 9.5),
         closed_at=at(20, 9.5), resolved=True, channel="self_service", first_contact_id=None)
    case("A12", status="settled", received=at(21, 15), closed_at=at(21, 15.5), lead_department_id=None)
    # Declined (C11): listed, out of every denominator — even with a passed deadline and an answer.
    case("D1", status="declined", received=at(22, 11), decline_reason="in_court", decline_notice="已向法院起诉。",
         first_response_at=at(23), closed_at=at(23), due_at=end_of(23), satisfaction="unsatisfied",
         lead_department_id=None)
    case("D2", status="declined", received=at(26), decline_reason="repeated", decline_notice="重复投诉。",
         first_response_at=at(26, 12), closed_at=at(26, 12), complainant_phone=PHONE, lead_department_id=None,
         channel="letter")
    case("R1", status="registered", received=at(30, 16), lead_department_id=None, channel="email")
    # More open cases past their deadline.
    case("A13", status="reply_drafted", received=at(26, 9), due_at=end_of(30))
    case("A16", status="transferred", received=at(27), due_at=end_of(30))
    # Closed on co-handling: the lead is XNK, CWK co-handles it.
    case("A14", received=at(19, 14), due_at=end_of(30), replied_at=at(22), first_response_at=at(22), closed_at=at(23),
         resolved=True, satisfaction="satisfied", channel="self_service")
    # Replied exactly at 24:00 of the due day: still on time; received across the make-up Saturday.
    case("A15", received=at(8), due_at=end_of(12), replied_at=end_of(12), first_response_at=end_of(12),
         closed_at=at(12, 16), resolved=True)
    # A duplicate merged into A1 (C12): listed in the ledger, not counted twice.
    case("M1", received=at(12, 11), merged_into_id=cases["A1"].id, due_at=end_of(19), replied_at=at(15),
         closed_at=at(16), resolved=True, satisfaction="satisfied")

    db.session.add(CaseDepartment(complaint_id=cases["A14"].id, department_id=xnk.id, role="lead"))
    db.session.add(CaseDepartment(complaint_id=cases["A14"].id, department_id=cwk.id, role="co"))
    # A4's answer was recorded on its feedback only: the ledger and the statistics still see it.
    db.session.add(Feedback(complaint_id=cases["A4"].id, expires_at=at(28), answered_at=at(22), answer="unsatisfied"))
    for key, action, due, status in (("A1", "培训", date(2026, 11, 15), "verified"),
                                     ("A3", "复盘", date(2026, 11, 15), "verified"),
                                     ("A3", "质控", date(2026, 11, 30), "open")):
        db.session.add(Rectification(complaint_id=cases[key].id, institution_id=rmyy.id, action=action,
                                     owner_id=officer.id, due_date=due, status=status))
    # Just outside October in Beijing time (though inside it, or not, in UTC); and another hospital's case.
    add_case(rmyy, case_number="TS2026-20001", received=at(30, 23.5, month=9), status="registered")
    add_case(rmyy, case_number="TS2026-20002", received=at(1, 0.2, month=11), status="registered")
    add_case(zyy, case_number="TS2026-30001", received=at(15), status="registered")
    db.session.flush()
    return Ledger(rmyy, zyy, cases)


def in_browser(fn, *, phone: bool = True, timeout: float = 180, width: int | None = None):
    """Run ``fn(page)`` in chromium on a thread of its own: a 375 px touch phone in WeChat, or a 1280 px desktop
    (``width`` another width)."""
    outcome: dict[str, BaseException] = {}

    def run():
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
                if phone:
                    context = browser.new_context(
                        viewport={"width": width or 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                        has_touch=True, locale="zh-CN",
                        user_agent="Mozilla/5.0 (Linux; Android 12) AppleWebKit/537.36 (KHTML, like Gecko) "
                                   "Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.40")
                else:
                    context = browser.new_context(viewport={"width": width or 1280, "height": 800}, locale="zh-CN")
                try:
                    fn(context.new_page())
                finally:
                    context.close()
                    browser.close()
        except BaseException as exc:  # re-raised on the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "the browser did not finish in time"
    if "error" in outcome:
        raise outcome["error"]


