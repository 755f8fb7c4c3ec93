"""Bulk import of departments, touchpoints and staff from CSV (UTF-8 or GB18030), XLSX and XLS."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.extensions import db
from core.table_reader import MAX_BYTES
from organisation.importer import MAX_ROWS
from organisation.models import Department, Role, StaffUser, Touchpoint
from organisation.passwords import verify_password

from .conftest import audit_entries, body

FIXTURES = Path(__file__).parent.parent / "fixtures"
DEPARTMENT_HEADER = ["科室编码", "科室名称", "科室类型", "上级科室编码"]
TOUCHPOINT_HEADER = ["服务点编码", "服务点名称", "类型", "所属科室编码", "位置"]
STAFF_HEADER = ["用户名", "姓名", "角色", "负责科室编码"]


def csv_bytes(rows: list[list], encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(client, tenant, kind: str, content: bytes, filename: str, *, dry_run: bool = False):
    data = {"kind": kind, "file": (io.BytesIO(content), filename)}
    if dry_run:
        data["dry_run"] = "y"
    return client.post(f"/i/{tenant.id}/import", data=data, content_type="multipart/form-data")


def row_errors(response) -> list[tuple[int, str, str]]:
    """The (row, column, message) triples of the error report."""
    return [(int(r), c, m) for r, c, m in re.findall(
        r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', body(response))]


def shown_passwords(response) -> dict[str, str]:
    return dict(re.findall(r"<tr><td>([^<]+)</td><td><code>([^<]+)</code></td></tr>", body(response)))


def count(model, tenant) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.institution_id == tenant.id))


def departments_by_code(tenant) -> dict[str, Department]:
    return {d.code: d for d in db.session.scalars(select(Department).where(Department.institution_id == tenant.id))}


def audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


# Happy paths -----------------------------------------------------------

def test_utf8_csv_with_bom_creates_departments_even_when_a_parent_follows_its_child(admin_client, tenant_a):
    content = csv_bytes([DEPARTMENT_HEADER,
                         ["IMP-C", "儿童保健科", "临床", "IMP-P"],
                         ["IMP-P", "保健部", "行政后勤", ""],
                         ["IMP-T", "超声科", "medical_tech", "IMP-P"]])
    assert content.startswith(b"\xef\xbb\xbf")
    response = upload(admin_client, tenant_a, "departments", content, "科室.csv")
    assert response.status_code == 200
    assert "导入成功：新增 3 行，更新 0 行。" in body(response)
    found = departments_by_code(tenant_a)
    assert found["IMP-C"].name == "儿童保健科" and found["IMP-C"].kind == "clinical"
    assert found["IMP-P"].kind == "administrative" and found["IMP-T"].kind == "medical_tech"
    assert found["IMP-C"].parent_id == found["IMP-P"].id == found["IMP-T"].parent_id
    [entry] = audit_entries(action="department.create", target_id=str(found["IMP-C"].id))
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id and entry.institution_id == tenant_a.id


def test_gb18030_csv_creates_touchpoints_with_their_chinese_names(admin_client, tenant_a):
    content = csv_bytes([TOUCHPOINT_HEADER,
                         ["W-IMP-01", "门诊收费窗口", "窗口", "CWK", "门诊楼一层"],
                         ["B-IMP-01", "心内科病区", "病区", "XNK", "住院楼八层"]], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    response = upload(admin_client, tenant_a, "touchpoints", content, "windows.CSV")
    assert response.status_code == 200, row_errors(response)
    touchpoints = {t.code: t for t in db.session.scalars(select(Touchpoint).where(
        Touchpoint.institution_id == tenant_a.id, Touchpoint.code.in_(["W-IMP-01", "B-IMP-01"])))}
    assert touchpoints["W-IMP-01"].name == "门诊收费窗口" and touchpoints["W-IMP-01"].location == "门诊楼一层"
    assert touchpoints["W-IMP-01"].department_id == departments_by_code(tenant_a)["CWK"].id
    assert touchpoints["B-IMP-01"].kind == "ward"


def test_xlsx_creates_staff_and_shows_each_initial_password_once(admin_client, tenant_a):
    content = xlsx_bytes([STAFF_HEADER,
                          ["imp.officer", "导入专员", "投诉管理员", None],
                          ["IMP.Handler", "导入处理人", "科室处理人；随访护士", "XNK;CWK"]])
    response = upload(admin_client, tenant_a, "staff", content, "staff.xlsx")
    assert response.status_code == 200, row_errors(response)
    passwords = shown_passwords(response)
    assert set(passwords) == {"imp.officer", "imp.handler"}
    users = {u.username: u for u in db.session.scalars(select(StaffUser).where(
        StaffUser.username.in_(["imp.officer", "imp.handler"])))}
    handler = users["imp.handler"]
    assert handler.institution_id == tenant_a.id
    assert handler.roles == {Role.DEPARTMENT_HANDLER, Role.FOLLOWUP_NURSE}
    assert {d.code for d in handler.departments} == {"XNK", "CWK"}
    for username, user in users.items():
        assert user.must_change_password
        assert verify_password(user.password_hash, passwords[username])
        [entry] = audit_entries(action="staff.create", target_id=str(user.id))
        assert passwords[username] not in str(entry.data)

    again = upload(admin_client, tenant_a, "staff", content, "staff.xlsx")  # same file: nothing new to show
    assert again.status_code == 200
    assert shown_passwords(again) == {}
    assert "新账号的初始密码" not in body(again)
    assert verify_password(users["imp.officer"].password_hash, passwords["imp.officer"])  # not reset by re-import


def test_xlsx_codes_typed_as_numbers_keep_their_digits(admin_client, tenant_a):
    content = xlsx_bytes([DEPARTMENT_HEADER, [101, "一病区", "临床", None], [102.0, "二病区", "临床", 101]])
    response = upload(admin_client, tenant_a, "departments", content, "numbers.xlsx")
    assert response.status_code == 200, row_errors(response)
    found = departments_by_code(tenant_a)
    assert found["102"].parent_id == found["101"].id


def test_xls_from_excel_97_2003_creates_departments(admin_client, tenant_a):
    content = (FIXTURES / "departments.xls").read_bytes()  # codes typed as numbers, spaces in the header

    response = upload(admin_client, tenant_a, "departments", content, "科室.xls")

    assert response.status_code == 200, row_errors(response)
    assert "新增 3" in body(response)
    found = departments_by_code(tenant_a)
    assert (found["701"].name, found["703"].name) == ("眼科", "病案室")
    assert found["702"].parent_id == found["701"].id


def test_headers_with_extra_and_full_width_spaces_are_recognised(admin_client, tenant_a):
    header = [" 科室编码", "科室  名称 ", "科室\u3000类型", "上级科室编码\t"]
    content = csv_bytes([header, ["SP-1", "空格科室", "临床", ""]])

    response = upload(admin_client, tenant_a, "departments", content, "spaces.csv")

    assert response.status_code == 200, body(response)
    assert departments_by_code(tenant_a)["SP-1"].name == "空格科室"


def test_english_header_aliases_are_accepted(admin_client, tenant_a):
    content = csv_bytes([["code", "name", "type", "parent_code"], ["ALIAS-1", "别名科室", "clinical", "NK"]])
    response = upload(admin_client, tenant_a, "departments", content, "aliases.csv")
    assert response.status_code == 200, row_errors(response)
    assert departments_by_code(tenant_a)["ALIAS-1"].parent_id == departments_by_code(tenant_a)["NK"].id


def test_template_downloads_and_imports_back(admin_client, tenant_a):
    response = admin_client.get(f"/i/{tenant_a.id}/import/template/touchpoints.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    template = response.get_data()
    assert template.startswith(b"\xef\xbb\xbf")
    assert template.decode("utf-8-sig").strip().split(",") == TOUCHPOINT_HEADER[:4] + ["位置"]
    content = template + "W-TPL-01,模板窗口,窗口,CWK,大厅\r\n".encode()
    assert upload(admin_client, tenant_a, "touchpoints", content, "template.csv").status_code == 200
    assert admin_client.get(f"/i/{tenant_a.id}/import/template/unknown.csv").status_code == 404


# Re-import -------------------------------------------------------------

def test_reimport_updates_rows_instead_of_duplicating_them(admin_client, tenant_a):
    first = csv_bytes([DEPARTMENT_HEADER, ["RE-1", "原名称", "临床", ""], ["RE-2", "不变", "临床", ""]])
    assert upload(admin_client, tenant_a, "departments", first, "d.csv").status_code == 200
    before = count(Department, tenant_a)
    second = csv_bytes([DEPARTMENT_HEADER, ["RE-1", "新名称", "医技", "RE-2"], ["RE-2", "不变", "临床", ""]])
    response = upload(admin_client, tenant_a, "departments", second, "d.csv")
    assert response.status_code == 200
    assert "新增 0，更新 1，无变化 1" in body(response)
    assert count(Department, tenant_a) == before
    found = departments_by_code(tenant_a)
    assert (found["RE-1"].name, found["RE-1"].kind, found["RE-1"].parent_id) == ("新名称", "medical_tech",
                                                                                found["RE-2"].id)
    assert audit_entries(action="department.update", target_id=str(found["RE-1"].id))


def test_reimport_of_existing_touchpoints_moves_them_between_departments(admin_client, tenant_a):
    code = tenant_a.touchpoint.code  # W-GH-01, a window of the finance department
    content = csv_bytes([TOUCHPOINT_HEADER, [code, "挂号收费 1 号窗口", "窗口", "MZB", "门诊楼一层大厅"]])
    before = count(Touchpoint, tenant_a)
    assert upload(admin_client, tenant_a, "touchpoints", content, "t.csv").status_code == 200
    assert count(Touchpoint, tenant_a) == before
    db.session.refresh(tenant_a.touchpoint)
    assert tenant_a.touchpoint.department_id == departments_by_code(tenant_a)["MZB"].id


# Bad rows --------------------------------------------------------------

def test_bad_department_rows_are_reported_by_row_and_column_and_nothing_is_written(admin_client, tenant_a):
    before_departments, before_audit = count(Department, tenant_a), audit_count()
    content = csv_bytes([DEPARTMENT_HEADER,
                         ["OK-1", "好科室", "临床", ""],
                         ["", "缺编码", "临床", ""],
                         ["BAD-KIND", "类型错", "外星", ""],
                         ["OK-1", "重复", "临床", ""],
                         ["ORPHAN", "孤儿", "临床", "NOPE"],
                         ["SELF", "自指", "临床", "SELF"],
                         ["LONG", "长" * 81, "临床", ""]])
    response = upload(admin_client, tenant_a, "departments", content, "bad.csv")
    assert response.status_code == 400
    assert row_errors(response) == [
        (3, "科室编码", "不能为空。"),
        (4, "科室类型", "“外星”不是有效的科室类型（临床、医技、行政）。"),
        (5, "科室编码", "与第 2 行重复。"),
        (6, "上级科室编码", "上级科室编码 NOPE 不存在。"),
        (7, "上级科室编码", "上级科室不能是自己。"),
        (8, "科室名称", "超过 80 个字符。"),
    ]
    assert "发现 6 处错误，未写入任何数据" in body(response)
    assert count(Department, tenant_a) == before_departments
    assert "OK-1" not in departments_by_code(tenant_a)
    assert audit_count() == before_audit


def test_a_parent_cycle_inside_the_file_is_refused_and_nothing_is_written(admin_client, tenant_a):
    before = count(Department, tenant_a)
    content = csv_bytes([DEPARTMENT_HEADER, ["CYC-A", "甲", "临床", "CYC-B"], ["CYC-B", "乙", "临床", "CYC-A"]])
    response = upload(admin_client, tenant_a, "departments", content, "cycle.csv")
    assert response.status_code == 400
    assert [(r, c) for r, c, _m in row_errors(response)] == [(3, "上级科室编码")]
    assert count(Department, tenant_a) == before


def test_reimport_that_would_make_a_department_its_own_ancestor_is_refused(admin_client, tenant_a):
    # In the demo, 心血管内科 (XNK) sits under 内科 (NK); making NK a child of XNK closes a loop.
    content = csv_bytes([DEPARTMENT_HEADER, ["NK", "内科", "临床", "XNK"]])
    response = upload(admin_client, tenant_a, "departments", content, "loop.csv")
    assert response.status_code == 400
    assert row_errors(response) == [(2, "上级科室编码", "上级科室不能是该科室本身或其下级。")]
    assert departments_by_code(tenant_a)["NK"].parent_id is None


def test_touchpoints_may_only_use_departments_of_their_own_institution(admin_client, tenant_a, tenant_b):
    b_only = tenant_b.department.code  # ZYNK exists in the TCM hospital only
    assert b_only not in departments_by_code(tenant_a)
    content = csv_bytes([TOUCHPOINT_HEADER,
                         ["W-X-01", "窗口", "窗口", b_only, ""],
                         ["W-X-02", "窗口", "柜台", "CWK", ""]])
    before = count(Touchpoint, tenant_a)
    response = upload(admin_client, tenant_a, "touchpoints", content, "t.csv")
    assert response.status_code == 400
    assert row_errors(response) == [
        (2, "所属科室编码", f"科室编码 {b_only} 不存在，请先导入科室。"),
        (3, "类型", "“柜台”不是有效的服务点类型（窗口、诊室、病区、出院结算处、其他）。"),
    ]
    assert count(Touchpoint, tenant_a) == before


def test_bad_staff_rows_are_reported_and_another_institutions_account_is_untouched(admin_client, tenant_a, tenant_b):
    b_user = tenant_b.staff
    before_name = b_user.display_name
    content = csv_bytes([STAFF_HEADER,
                         [b_user.username, "抢占账号", "投诉管理员", ""],
                         ["ok.user", "好人", "院长", ""],
                         ["x", "太短", "投诉管理员", ""],
                         ["no.dept", "处理人", "科室处理人", ""],
                         ["b.dept", "处理人", "科室处理人", tenant_b.department.code],
                         ["sneaky", "越权", "平台管理员", ""]])
    response = upload(admin_client, tenant_a, "staff", content, "staff.csv")
    assert response.status_code == 400
    assert row_errors(response) == [
        (2, "用户名", f"用户名 {b_user.username} 已被占用。"),
        (3, "角色", "“院长”不是有效的机构角色。"),
        (4, "用户名", "用户名为 3–64 位小写字母、数字、下划线、点或短横线。"),
        (5, "负责科室编码", "科室处理人至少需要绑定一个科室。"),
        (6, "负责科室编码", f"科室编码 {tenant_b.department.code} 不存在。"),
        (7, "角色", "“平台管理员”不是有效的机构角色。"),
    ]
    assert shown_passwords(response) == {}
    db.session.refresh(b_user)
    assert (b_user.institution_id, b_user.display_name) == (tenant_b.id, before_name)
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "ok.user")) is None


# Whole-file problems ---------------------------------------------------

@pytest.mark.parametrize(("content", "filename", "message"), [
    (csv_bytes([["科室编码", "科室名称"], ["X", "缺类型"]]), "d.csv", "缺少必填列：科室类型。请使用导入模板。"),
    (b"", "d.csv", "文件是空的。"),
    (csv_bytes([DEPARTMENT_HEADER]), "d.csv", "文件中没有数据行。"),
    (csv_bytes([DEPARTMENT_HEADER, [], ["", "", "", ""]]), "d.csv", "文件中没有数据行。"),
    (csv_bytes([DEPARTMENT_HEADER, ["X", "Y", "临床", ""]]), "d.txt", "只支持 CSV、XLSX 或 XLS 文件。"),
    (csv_bytes([DEPARTMENT_HEADER, ["X", "Y", "临床", ""]]), "d", "只支持 CSV、XLSX 或 XLS 文件。"),
    (b"<html><table><tr><td>x</td></tr></table></html>", "d.xls", "该文件是网页（HTML）或 XML 格式"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 this is not really a workbook", "d.xls", "无法读取该 XLS 文件"),
    (b"PK\x03\x04 this is not really a workbook", "d.xlsx", "无法读取该 XLSX 文件，请确认文件未损坏。"),
    (xlsx_bytes([["名称"], ["X"]]), "d.xlsx", "缺少必填列：科室编码、科室类型。请使用导入模板。"),
], ids=["missing-column", "empty", "header-only", "blank-rows-only", "txt", "no-extension", "html-as-xls",
        "corrupt-xls", "corrupt-xlsx", "xlsx-missing-columns"])
def test_unusable_file_is_refused_with_a_clear_400(admin_client, tenant_a, content, filename, message):
    before = count(Department, tenant_a)
    response = upload(admin_client, tenant_a, "departments", content, filename)
    assert response.status_code == 400
    assert message in body(response)
    assert count(Department, tenant_a) == before


def test_missing_file_is_refused_with_a_clear_400(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/import", data={"kind": "departments"},
                                 content_type="multipart/form-data")
    assert response.status_code == 400
    assert "请选择要上传的文件。" in body(response)


def test_file_over_the_import_limit_is_refused_with_a_clear_400(admin_client, tenant_a):
    content = csv_bytes([DEPARTMENT_HEADER]) + b"X,Y,clinical,\n" * (MAX_BYTES // 14 + 1)
    assert len(content) > MAX_BYTES
    response = upload(admin_client, tenant_a, "departments", content, "big.csv")
    assert response.status_code == 400
    assert "文件超过 5 MB，请拆分后再导入。" in body(response)


def test_request_over_the_upload_limit_gets_413_not_500(app, admin_client, tenant_a):
    content = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = upload(admin_client, tenant_a, "departments", content, "huge.csv")
    assert response.status_code == 413
    assert "文件过大" in body(response)


def test_too_many_rows_are_refused(admin_client, tenant_a):
    rows = [DEPARTMENT_HEADER] + [[f"R{n}", f"科室{n}", "临床", ""] for n in range(MAX_ROWS + 1)]
    before = count(Department, tenant_a)
    response = upload(admin_client, tenant_a, "departments", csv_bytes(rows), "many.csv")
    assert response.status_code == 400
    assert f"一次最多导入 {MAX_ROWS} 行。" in body(response)
    assert count(Department, tenant_a) == before


def test_a_csv_with_nul_bytes_is_refused_with_a_message_and_writes_nothing(admin_client, tenant_a):
    before = count(Department, tenant_a)
    content = csv_bytes([DEPARTMENT_HEADER, ["NEW1", "新\x00科室", "临床", ""]])

    response = upload(admin_client, tenant_a, "departments", content, "departments.csv")

    assert response.status_code == 400
    assert "无效字符" in body(response)
    assert count(Department, tenant_a) == before


# Dry run ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["departments", "touchpoints", "staff"])
def test_dry_run_checks_the_file_and_writes_nothing(admin_client, tenant_a, kind):
    rows = {
        "departments": [DEPARTMENT_HEADER, ["DRY-1", "试运行科室", "临床", "NK"]],
        "touchpoints": [TOUCHPOINT_HEADER, ["DRY-1", "试运行窗口", "窗口", "CWK", ""]],
        "staff": [STAFF_HEADER, ["dry.user", "试运行", "投诉管理员", ""]],
    }[kind]
    before = (count(Department, tenant_a), count(Touchpoint, tenant_a), count(StaffUser, tenant_a), audit_count())
    response = upload(admin_client, tenant_a, kind, xlsx_bytes(rows), "dry.xlsx", dry_run=True)
    assert response.status_code == 200
    assert "检查通过" in body(response)
    assert "共 1 行：新增 1，更新 0，无变化 0。" in body(response)
    assert shown_passwords(response) == {}
    after = (count(Department, tenant_a), count(Touchpoint, tenant_a), count(StaffUser, tenant_a), audit_count())
    assert after == before


def test_dry_run_reports_row_errors_too(admin_client, tenant_a):
    content = csv_bytes([DEPARTMENT_HEADER, ["DRY-2", "试运行", "外星", ""]])
    response = upload(admin_client, tenant_a, "departments", content, "dry.csv", dry_run=True)
    assert response.status_code == 400
    assert [(r, c) for r, c, _m in row_errors(response)] == [(2, "科室类型")]


def test_a_file_in_chinese_imports_while_the_admin_reads_the_pages_in_english(admin_client, tenant_a):
    admin_client.get("/lang/en")
    content = csv_bytes([DEPARTMENT_HEADER, ["IMP-EN", "康复医学科", "临床科室", ""],
                         ["IMP-EN2", "病案室", "行政后勤", ""]])
    response = upload(admin_client, tenant_a, "departments", content, "departments.csv")
    assert response.status_code == 200, row_errors(response)
    found = departments_by_code(tenant_a)
    assert found["IMP-EN"].kind == "clinical" and found["IMP-EN2"].kind == "administrative"
