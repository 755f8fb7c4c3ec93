"""The staff navigation, built from what the current user may do.

Features add entries with register_nav(); each entry decides for itself
whether the user sees it, so the base template holds no permission logic.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.extensions import db
from organisation.models import Institution, Role
from organisation.notifications import unread_count
from organisation.scope import Permission, can, can_see_institution


@dataclass
class NavEntry:
    label: Any
    endpoint: str
    visible: Callable[[Any, Institution | None], bool]
    per_institution: bool = True
    order: int = 100


def register_nav(app: Flask, label: Any, endpoint: str, visible: Callable[[Any, Institution | None], bool], *,
                 per_institution: bool = True, order: int = 100) -> None:
    entries = app.extensions.setdefault("nav_entries", [])
    entries.append(NavEntry(label, endpoint, visible, per_institution, order))
    entries.sort(key=lambda e: e.order)


def current_institution() -> Institution | None:
    """The institution the page is about: from the URL, else the user's own."""
    institution_id = (request.view_args or {}).get("institution_id") if request else None
    if institution_id is None and current_user.is_authenticated:
        institution_id = current_user.institution_id
    if institution_id is None:
        return None
    institution = db.session.get(Institution, institution_id)

    if institution is None or not current_user.is_authenticated or not can_see_institution(current_user, institution):
        return None
    return institution


def nav_context() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {"nav": [], "current_institution": None, "can": can, "Permission": Permission, "unread_notifications": 0}
    institution = current_institution()
    items = []
    for entry in current_app.extensions.get("nav_entries", []):
        if entry.per_institution and institution is None:
            continue
        if not entry.visible(current_user, institution):
            continue
        kwargs = {"institution_id": institution.id} if entry.per_institution else {}
        url = url_for(entry.endpoint, **kwargs)
        # A section is active on its own page and the pages below it; a URL
        # ending in "/" (an overview) is active only on itself.
        active = request.path == url or (not url.endswith("/") and request.path.startswith(url + "/"))
        items.append({"label": entry.label, "url": url, "active": active})
    return {"nav": items, "current_institution": institution, "can": can, "Permission": Permission,
            "unread_notifications": unread_count(current_user)}


def register_core_nav(app: Flask) -> None:
    def sees(permission):
        return lambda user, inst: can(user, permission, inst)

    register_nav(app, _l("概览"), "org.institution_overview",
                 lambda u, i: u.institution_id == i.id or can(u, Permission.VIEW_ORG, i), order=10)
    register_nav(app, _l("科室"), "org.departments", sees(Permission.VIEW_ORG), order=60)
    register_nav(app, _l("服务点"), "org.touchpoints", sees(Permission.VIEW_ORG), order=61)
    register_nav(app, _l("人员"), "org.staff", sees(Permission.VIEW_ORG), order=62)
    register_nav(app, _l("批量导入"), "org.import_rows", sees(Permission.MANAGE_ORG), order=63)
    register_nav(app, _l("机构设置"), "org.institution_settings", sees(Permission.MANAGE_ORG), order=64)
    register_nav(app, _l("消息推送"), "org.notifier_settings", sees(Permission.MANAGE_ORG), order=65)
    register_nav(app, _l("审计日志"), "org.audit", sees(Permission.VIEW_AUDIT), order=90)
    register_nav(app, _l("机构"), "org.institutions",
                 lambda u, i: u.has_role(Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN), per_institution=False, order=1)
    register_nav(app, _l("区域"), "org.regions", lambda u, i: can(u, Permission.MANAGE_REGIONS),
                 per_institution=False, order=2)
    register_nav(app, _l("管理员账号"), "org.platform_staff", lambda u, i: can(u, Permission.MANAGE_REGIONS),
                 per_institution=False, order=3)
    register_nav(app, _l("全部审计"), "org.audit_all",
                 lambda u, i: u.has_role(Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN), per_institution=False, order=4)
