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
- ``live_server`` and ``shots`` from tests/browser, and ``in_browser(fn, phone=True)``, which runs
  ``fn(page)`` in a fresh chromium on its own thread. (Importing tests/browser's session-wide
  ``browser`` into a module here starts a second Playwright next to the one tests/browser keeps
  open, and the sync API refuses that on the main thread.)
"""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from core.extensions import db
from organisation.models import Department, Institution, StaffUser, Touchpoint
from tests.conftest import CHROMIUM  # live_server and shots are fixtures of tests/conftest.py
from tests.factories import demo_institution, demo_user, login

# Tenants and users ---------------------------------------------------------------

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
    from complaints.intake import default_categories

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


def in_browser(fn, *, phone: bool = True, timeout: float = 180):
    """Run ``fn(page)`` in chromium on a thread of its own: a 375 px touch phone in WeChat, or a 1280 px desktop."""
    outcome: dict[str, BaseException] = {}

    def run():
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
                if phone:
                    context = browser.new_context(
                        viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                        has_touch=True, locale="zh-CN",
                        user_agent="Mozilla/5.0 (Linux; Android 12) AppleWebKit/537.36 (KHTML, like Gecko) "
                                   "Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.40")
                else:
                    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
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


