"""Bulk import of departments, touchpoints and staff from CSV, XLSX or XLS (read by core.table_reader).

A file is checked whole before anything is written: every bad row is reported
with its row number, column and reason, and a file with any error writes
nothing. Rows are matched on their code (username for staff), so importing the
same file twice updates instead of duplicating.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import IO, Any

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.extensions import db
from core.table_reader import ImportFileError, header_positions, read_table
from organisation import services
from organisation.models import Department, DepartmentKind, Institution, Role, StaffUser, Touchpoint, TouchpointKind

MAX_ROWS = 5000

# kind -> [(column key, header shown in templates, accepted header aliases, required)]
COLUMNS: dict[str, list[tuple[str, Any, set[str], bool]]] = {
    "departments": [
        ("code", _l("科室编码"), {"code", "编码"}, True),
        ("name", _l("科室名称"), {"name", "名称"}, True),
        ("kind", _l("科室类型"), {"kind", "type", "类型"}, True),
        ("parent_code", _l("上级科室编码"), {"parent_code", "parent"}, False),
    ],
    "touchpoints": [
        ("code", _l("服务点编码"), {"code", "编码"}, True),
        ("name", _l("服务点名称"), {"name", "名称"}, True),
        ("kind", _l("类型"), {"kind", "type"}, True),
        ("department_code", _l("所属科室编码"), {"department_code", "department", "科室编码"}, True),
        ("location", _l("位置"), {"location"}, False),
    ],
    "staff": [
        ("username", _l("用户名"), {"username", "账号"}, True),
        ("display_name", _l("姓名"), {"display_name", "name"}, True),
        ("roles", _l("角色"), {"roles", "role"}, True),
        ("department_codes", _l("负责科室编码"), {"department_codes", "departments", "科室编码"}, False),
    ],
}
LIST_SPLIT = re.compile(r"[;；,，、|\s]+")


@dataclass
class RowError:
    row: int
    column: str
    message: str


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    passwords: list[tuple[str, str]] = field(default_factory=list)  # new staff: shown once

    @property
    def ok(self) -> bool:
        return not self.errors


def template_csv(kind: str) -> str:
    """A header-only CSV (with BOM for Excel) that the importer accepts."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    csv.writer(buffer).writerow([str(header) for _key, header, _aliases, _req in COLUMNS[kind]])
    return buffer.getvalue()


def _map_header(kind: str, header: list[str]) -> dict[str, int]:
    with force_locale("zh_Hans"):  # templates are downloaded in Chinese whatever the page language
        chinese = {key: str(shown) for key, shown, _a, _r in COLUMNS[kind]}
    positions = header_positions(header, {key: {str(shown), chinese[key], *aliases}
                                          for key, shown, aliases, _required in COLUMNS[kind]})
    missing = [str(shown) for key, shown, _a, required in COLUMNS[kind] if required and key not in positions]
    if missing:
        raise ImportFileError(gettext("缺少必填列：%(columns)s。请使用导入模板。", columns=gettext("、").join(missing)))
    return positions


def import_file(institution: Institution, kind: str, filename: str, stream: IO[bytes], *,
                dry_run: bool, actor: Any) -> ImportReport:
    """Check every row, then write them all or none; the caller commits or rolls back."""
    if kind not in COLUMNS:
        raise ImportFileError(gettext("未知的导入类型。"))
    rows = read_table(filename, stream)
    header = next(rows, None)
    if header is None:
        raise ImportFileError(gettext("文件是空的。"))
    positions = _map_header(kind, header)
    report = ImportReport(kind=kind)
    records = []
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise ImportFileError(gettext("一次最多导入 %(n)d 行。", n=MAX_ROWS))
        records.append((number, {key: (cells[i] if i < len(cells) else "") for key, i in positions.items()}))
    if not records:
        raise ImportFileError(gettext("文件中没有数据行。"))
    handler = {"departments": _departments, "touchpoints": _touchpoints, "staff": _staff}[kind]
    handler(institution, records, report, actor)
    if report.errors or dry_run:
        return report
    db.session.flush()
    return report


def _required(report: ImportReport, number: int, kind: str, values: dict[str, str]) -> bool:
    ok = True
    for key, shown, _aliases, required in COLUMNS[kind]:
        if required and not values.get(key):
            report.errors.append(RowError(number, str(shown), gettext("不能为空。")))
            ok = False
    return ok


def _length(report: ImportReport, number: int, column: Any, value: str, limit: int) -> bool:
    if len(value) > limit:
        report.errors.append(RowError(number, str(column), gettext("超过 %(n)d 个字符。", n=limit)))
        return False
    return True


def _duplicate(report: ImportReport, seen: dict[str, int], number: int, column: Any, value: str) -> bool:
    key = value.lower()  # codes are unique regardless of case (usernames are lower-case already)
    if key in seen:
        report.errors.append(RowError(number, str(column), gettext("与第 %(row)d 行重复。", row=seen[key])))
        return True
    seen[key] = number
    return False


class _Codes(dict):
    """Rows by code, regardless of case, as services._check_unique_code compares them: "cwk" finds "CWK"."""

    def __getitem__(self, code: str) -> Any:
        return super().__getitem__(code.lower())

    def __setitem__(self, code: str, row: Any) -> None:
        super().__setitem__(code.lower(), row)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and super().__contains__(code.lower())

    def get(self, code: str, default: Any = None) -> Any:
        return super().get(code.lower(), default)


def _by_code(model: type, institution: Institution) -> dict[str, Any]:
    codes = _Codes()
    for row in db.session.scalars(select(model).where(model.institution_id == institution.id)):
        codes[row.code] = row
    return codes


def _count(report: ImportReport, existed: bool, changed: bool) -> None:
    if not existed:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _departments(institution: Institution, records, report: ImportReport, actor: Any) -> None:
    existing = _by_code(Department, institution)
    file_codes = {values["code"].lower() for _n, values in records}
    seen: dict[str, int] = {}
    valid = []
    cols = {key: shown for key, shown, _a, _r in COLUMNS["departments"]}
    for number, values in records:
        if not _required(report, number, "departments", values):
            continue
        if _duplicate(report, seen, number, cols["code"], values["code"]):
            continue
        kind = DepartmentKind.from_label(values["kind"])
        ok = _length(report, number, cols["code"], values["code"], 32) & \
            _length(report, number, cols["name"], values["name"], 80)
        if kind is None:
            report.errors.append(RowError(number, str(cols["kind"]), gettext(
                "“%(value)s”不是有效的科室类型（临床、医技、行政）。", value=values["kind"])))
            ok = False
        parent = values.get("parent_code", "")
        if parent and parent not in existing and parent.lower() not in file_codes:
            report.errors.append(RowError(number, str(cols["parent_code"]),
                                          gettext("上级科室编码 %(code)s 不存在。", code=parent)))
            ok = False
        if parent and parent.lower() == values["code"].lower():
            report.errors.append(RowError(number, str(cols["parent_code"]), gettext("上级科室不能是自己。")))
            ok = False
        if ok:
            valid.append((number, values, kind))
    if report.errors:
        return
    # Two passes so that a parent may appear below its children in the file.
    for _number, values, kind in valid:
        row = existing.get(values["code"])
        if row is None:
            row = services.create_department(institution, code=values["code"], name=values["name"],
                                             kind=kind.value, actor=actor)
            existing[row.code] = row
            _count(report, False, True)
        else:
            before = (row.name, row.kind)
            services.update_department(row, institution, actor=actor, parent=row.parent, name=values["name"],
                                       kind=kind.value)
            _count(report, True, before != (row.name, row.kind))
    for number, values, _kind in valid:
        row = existing[values["code"]]
        parent = existing.get(values.get("parent_code", "")) if values.get("parent_code") else None
        if row.parent_id != (parent.id if parent else None):
            try:
                services.update_department(row, institution, actor=actor, parent=parent)
            except services.ServiceError as exc:
                report.errors.append(RowError(number, str(cols["parent_code"]), str(exc)))


def _touchpoints(institution: Institution, records, report: ImportReport, actor: Any) -> None:
    departments = _by_code(Department, institution)
    existing = _by_code(Touchpoint, institution)
    seen: dict[str, int] = {}
    cols = {key: shown for key, shown, _a, _r in COLUMNS["touchpoints"]}
    valid = []
    for number, values in records:
        if not _required(report, number, "touchpoints", values):
            continue
        if _duplicate(report, seen, number, cols["code"], values["code"]):
            continue
        ok = _length(report, number, cols["code"], values["code"], 32) & \
            _length(report, number, cols["name"], values["name"], 80) & \
            _length(report, number, cols["location"], values.get("location", ""), 120)
        kind = TouchpointKind.from_label(values["kind"])
        if kind is None:
            report.errors.append(RowError(number, str(cols["kind"]), gettext(
                "“%(value)s”不是有效的服务点类型（窗口、诊室、病区、出院结算处、其他）。", value=values["kind"])))
            ok = False
        department = departments.get(values["department_code"])
        if department is None:
            report.errors.append(RowError(number, str(cols["department_code"]), gettext(
                "科室编码 %(code)s 不存在，请先导入科室。", code=values["department_code"])))
            ok = False
        if ok:
            valid.append((values, kind, department))
    if report.errors:
        return
    for values, kind, department in valid:
        row = existing.get(values["code"])
        location = values.get("location", "")
        if row is None:
            services.create_touchpoint(institution, code=values["code"], name=values["name"], kind=kind.value,
                                       department=department, location=location, actor=actor)
            _count(report, False, True)
        else:
            before = (row.name, row.kind, row.department_id, row.location)
            services.update_touchpoint(row, institution, actor=actor, name=values["name"], kind=kind.value,
                                       department_id=department.id, location=location)
            _count(report, True, before != (row.name, row.kind, row.department_id, row.location))


def _staff(institution: Institution, records, report: ImportReport, actor: Any) -> None:
    departments = _by_code(Department, institution)
    existing = {u.username: u for u in db.session.scalars(
        select(StaffUser).where(StaffUser.institution_id == institution.id))}
    seen: dict[str, int] = {}
    cols = {key: shown for key, shown, _a, _r in COLUMNS["staff"]}
    allowed = set(Role.institution_roles())
    valid = []
    for number, values in records:
        if not _required(report, number, "staff", values):
            continue
        username = values["username"].strip().lower()
        if _duplicate(report, seen, number, cols["username"], username):
            continue
        ok = True
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{2,63}", username):
            report.errors.append(RowError(number, str(cols["username"]), gettext(
                "用户名为 3–64 位小写字母、数字、下划线、点或短横线。")))
            ok = False
        elif username not in existing and db.session.scalar(
                select(StaffUser.id).where(StaffUser.username == username)) is not None:
            report.errors.append(RowError(number, str(cols["username"]), gettext("用户名 %(name)s 已被占用。",
                                                                                   name=username)))
            ok = False
        ok &= _length(report, number, cols["display_name"], values["display_name"], 64)
        roles = set()
        for text in filter(None, LIST_SPLIT.split(values["roles"])):
            role = Role.from_label(text)
            if role is None or role not in allowed:
                report.errors.append(RowError(number, str(cols["roles"]), gettext("“%(value)s”不是有效的机构角色。",
                                                                                value=text)))
                ok = False
            else:
                roles.add(role)
        chosen = []
        for code in filter(None, LIST_SPLIT.split(values.get("department_codes", ""))):
            if code not in departments:
                report.errors.append(RowError(number, str(cols["department_codes"]),
                                              gettext("科室编码 %(code)s 不存在。", code=code)))
                ok = False
            else:
                chosen.append(departments[code])
        if ok and Role.DEPARTMENT_HANDLER in roles and not chosen:
            report.errors.append(RowError(number, str(cols["department_codes"]),
                                          gettext("科室处理人至少需要绑定一个科室。")))
            ok = False
        if ok:
            valid.append((username, values, roles, chosen))
    if report.errors:
        return
    for username, values, roles, chosen in valid:
        user = existing.get(username)
        if user is None:
            user, password = services.create_staff(username=username, display_name=values["display_name"],
                                                   roles=roles, institution=institution, departments=chosen,
                                                   actor=actor)
            report.passwords.append((username, password))
            _count(report, False, True)
        else:
            before = (user.display_name, user.roles, user.department_ids)
            services.update_staff(user, display_name=values["display_name"], roles=roles, departments=chosen,
                                  actor=actor)
            _count(report, True, before != (user.display_name, user.roles, user.department_ids))
