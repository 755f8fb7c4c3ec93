"""Complaint categories: the national list every hospital has, and each hospital's own.

> 「建立投诉一口受理制度，明确一个科室受理医德医风、医疗质量安全、安全保卫和其他投诉」 — seed 003, item 33

The national defaults (no institution) cannot be edited or retired; a hospital adds its own.
A category flagged *safety* raises the quality-and-safety emergency on registration; one
flagged *charges* allows refunds.
"""
from __future__ import annotations

import secrets
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from complaints.models import Category
from core import notify
from core.audit import record
from core.extensions import db
from core.services import ServiceError, clean_text
from organisation.models import Institution


class CategoryError(ServiceError):
    """A category cannot be saved as given; the message (and field) go back to the form."""


# The national list (003 item 33 names 医德医风、医疗质量安全、安全保卫和其他; the
# product adds the three most frequent kinds of hospital complaints).
# code, name, safety, charges, sort
DEFAULT_CATEGORIES: list[tuple[str, str, bool, bool, int]] = [
    ("ethics", "医德医风", False, False, 10),
    ("quality_safety", "医疗质量安全", True, False, 20),
    ("attitude", "服务态度", False, False, 30),
    ("charges", "收费价格", False, True, 40),
    ("environment", "环境后勤", False, False, 50),
    ("security", "安全保卫", False, False, 60),
    ("other", "其他", False, False, 90),
]
# The stored names are Chinese; these translate them for other locales.
DEFAULT_LABELS = {"ethics": _l("医德医风"), "quality_safety": _l("医疗质量安全"), "attitude": _l("服务态度"),
                  "charges": _l("收费价格"), "environment": _l("环境后勤"), "security": _l("安全保卫"),
                  "other": _l("其他")}


def default_categories(*, actor: Any = "system") -> list[Category]:
    """Make sure the national default categories exist (institution NULL); idempotent, returns them."""
    existing = {c.code: c for c in db.session.scalars(select(Category).where(Category.institution_id.is_(None))
                                                       .order_by(Category.id))}
    created = []
    for code, name, safety, charges, sort in DEFAULT_CATEGORIES:
        if code not in existing:
            category = Category(institution_id=None, code=code, name=name, safety=safety, charges=charges,
                                sort=sort, active=True)
            db.session.add(category)
            existing[code] = category
            created.append(code)
    if created:
        db.session.flush()
        record(actor, "complaint_category.seed_defaults", ("complaint_category", None), {"codes": created})
    return sorted(existing.values(), key=lambda c: (c.sort, c.id))


def defaults_missing() -> bool:
    """Whether the national default categories have not been seeded yet (a fresh install)."""
    return db.session.scalar(select(Category.id).where(Category.institution_id.is_(None)).limit(1)) is None


def categories_for(institution: Institution, *, include_inactive: bool = False) -> list[Category]:
    """The categories an institution files under: the national defaults plus its own (active ones by default)."""
    stmt = select(Category).where(or_(Category.institution_id.is_(None), Category.institution_id == institution.id))
    if not include_inactive:
        stmt = stmt.where(Category.active.is_(True))
    rows = list(db.session.scalars(stmt.order_by(Category.sort, Category.id)))
    if not any(c.institution_id is None for c in rows) and not include_inactive:
        default_categories()  # a fresh install: the national list appears on first use
        return categories_for(institution)
    seen: set[tuple[int | None, str]] = set()
    unique = []
    for c in rows:  # two first uses at once could seed the defaults twice; show each code once
        if (c.institution_id, c.code) not in seen:
            seen.add((c.institution_id, c.code))
            unique.append(c)
    return unique


def category_label(category: Category | None) -> str:
    """A category's name in the user's language (defaults are translated, an institution's own are as typed)."""
    if category is None:
        return ""
    if category.institution_id is None and category.code in DEFAULT_LABELS:
        return str(DEFAULT_LABELS[category.code])
    return category.name


def category_notice_text(category: Category | None) -> str:
    """A category's name in a staff notice (core.notify.Text): a default's is shown in each reader's language,
    an institution's own as typed."""
    if category is not None and category.institution_id is None and category.code in DEFAULT_LABELS:
        return notify.Text.message(_DEFAULT_NAMES[category.code])  # the msgid of its DEFAULT_LABELS entry
    return category_label(category)


_DEFAULT_NAMES = {code: name for code, name, *_rest in DEFAULT_CATEGORIES}


def _clean_name(name: str) -> str:
    return clean_text(name, field="name", label=gettext("类别名称"), limit=40,
                      required=gettext("请填写类别名称。"), error=CategoryError)


def _check_name_free(institution: Institution, name: str, exclude_id: int | None = None) -> None:
    for c in categories_for(institution, include_inactive=True):
        if c.id != exclude_id and c.name == name and (c.institution_id is None or c.institution_id == institution.id):
            raise CategoryError(gettext("已有同名类别“%(name)s”。", name=name), "name")


def create_category(institution: Institution, *, name: str, safety: bool = False, charges: bool = False,
                    sort: int = 100, actor: Any) -> Category:
    """Add an institution's own category next to the national list; names are unique within what it sees."""
    name = _clean_name(name)
    _check_name_free(institution, name)
    category = Category(institution_id=institution.id, code=f"c{secrets.token_hex(4)}", name=name,
                        safety=bool(safety), charges=bool(charges), sort=int(sort), active=True)
    db.session.add(category)
    db.session.flush()
    record(actor, "complaint_category.create", category,
           {"name": name, "safety": category.safety, "charges": category.charges})
    return category


def update_category(category: Category, *, name: str, safety: bool, charges: bool, sort: int, actor: Any
                    ) -> Category:
    """Rename or re-flag an institution's own category; the national defaults are not editable."""
    if category.institution_id is None:
        raise CategoryError(gettext("全国默认类别不能修改。"))
    institution = db.session.get_one(Institution, category.institution_id)
    name = _clean_name(name)
    _check_name_free(institution, name, exclude_id=category.id)
    changes = {}
    for key, value in (("name", name), ("safety", bool(safety)), ("charges", bool(charges)), ("sort", int(sort))):
        if getattr(category, key) != value:
            changes[key] = [getattr(category, key), value]
            setattr(category, key, value)
    if changes:
        db.session.flush()
        record(actor, "complaint_category.update", category, changes)
    return category


def set_category_active(category: Category, active: bool, *, actor: Any) -> Category:
    """Deactivate (or reactivate) an institution's own category; existing cases keep it."""
    if category.institution_id is None:
        raise CategoryError(gettext("全国默认类别不能停用。"))
    if category.active != active:
        category.active = active
        db.session.flush()
        record(actor, "complaint_category.activate" if active else "complaint_category.deactivate", category)
    return category
