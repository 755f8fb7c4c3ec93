"""The one reader of uploaded tables (core/table_reader.py): CSV, XLSX and XLS files as hospitals have
them, their headers, and the dates Excel writes.

The .xls files are fixtures under tests/fixtures/ (tests/fixtures/make_xls.py says how they were made).
"""
from __future__ import annotations

import io
from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import Workbook

from core.table_reader import (
    MAX_BYTES,
    ImportFileError,
    cell_text,
    header_key,
    header_positions,
    normalise_header,
    parse_date,
    read_table,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
HEADER = "病区/科室编码,出院日期,患者姓名,联系电话,住院号"
ROW = "B-XNK,2026-12-05,王秀兰,13912345678,ZY1"


def read(content: bytes, filename: str = "list.csv") -> list[list[str]]:
    return list(read_table(filename, io.BytesIO(content)))


def xlsx(rows: list[list]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# Dates -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "2026-12-05", "2026/12/05", "2026.12.5", "2026.12.05", "2026/12/5", "2026-12-5", "2026年12月5日", "2026年12月05日",
    "2026 年 12 月 5 日", "20261205", "２０２６／１２／０５", " 2026-12-05 ", "2026-12-05 00:00:00", "2026/12/5 14:30",
    "2026-12-05T08:15:00", "2026年12月5日 9:05", 46361, 46361.0, 46361.6, "46361", "46361.0", "46361.75",
    date(2026, 12, 5), datetime(2026, 12, 5, 23, 59),
], ids=repr)
def test_every_way_excel_and_hospital_systems_write_a_day_means_that_day(value):
    assert parse_date(value) == date(2026, 12, 5)


@pytest.mark.parametrize("value", [
    "", "  ", None, True, "2026-02-30", "2026-13-01", "2026/12-05", "2026.12/05", "12/05/2026", "05.12.2026",
    "2026年12-5", "明天", "2026-12", "202612050", "46361天", "-46361", 0, 60, 3_000_000, float("nan"),
    float("inf"), "2026-12-05 25:00:00x",
], ids=repr)
def test_what_is_not_a_day_is_none(value):
    assert parse_date(value) is None


def test_serial_numbers_start_after_excels_fictitious_1900_02_29():
    assert parse_date(61) == date(1900, 3, 1)
    assert parse_date("45658") == date(2025, 1, 1)
    assert parse_date(2_958_465) == date(9999, 12, 31)


# Headers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [" 出院日期", "出院日期 ", "出院  日期", "出院\u3000日期", "\ufeff出院日期",
                                 "出院\t日期", "出\u200b院日期"])
def test_spaces_and_invisible_marks_do_not_change_a_header(raw):
    assert header_key(raw) == header_key("出院日期") == "出院日期"


def test_full_width_forms_and_case_do_not_change_a_header():
    assert header_key("病区／科室编码") == header_key("病区/科室编码")
    assert header_key("ＰＨＯＮＥ") == header_key("phone")
    assert header_key("住院号（病案号）") == header_key("住院号(病案号)")
    assert normalise_header("  患者  姓名\u3000") == "患者 姓名"


def test_header_positions_take_the_first_matching_cell_for_each_key():
    header = ["序号", " 出院 日期 ", "Phone", "电话"]
    names = {"date": ["出院日期", "date"], "phone": ["联系电话", "phone", "电话"], "ref": ["住院号"]}

    assert header_positions(header, names) == {"date": 1, "phone": 2}


# Files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030", "gbk"])
def test_csv_is_read_in_utf8_with_or_without_bom_and_in_gbk(ctx, encoding):
    rows = read(f"{HEADER}\n{ROW}\n".encode(encoding))

    assert rows == [HEADER.split(","), ROW.split(",")]


def test_tab_separated_text_named_xls_is_read_as_a_table(ctx):
    text = f"{HEADER}\n{ROW}\n".replace(",", "\t")

    assert read(text.encode("gbk"), "出院病人.xls") == [HEADER.split(","), ROW.split(",")]


def test_a_web_page_saved_as_xls_is_refused_with_a_way_out(ctx):
    page = "<html><body><table><tr><td>病区</td></tr></table></body></html>".encode()

    with pytest.raises(ImportFileError, match="网页（HTML）或 XML 格式.*另存为“Excel 工作簿（\\*.xlsx）”"):
        read(page, "出院病人.xls")


@pytest.mark.parametrize("filename", ["list.txt", "list", "list.xlsm", ".csv.exe"])
def test_other_kinds_of_file_are_refused_by_name(ctx, filename):
    with pytest.raises(ImportFileError, match="只支持 CSV、XLSX 或 XLS 文件"):
        read(f"{HEADER}\n".encode(), filename)


def test_a_file_over_the_limit_is_refused(ctx):
    with pytest.raises(ImportFileError, match="文件超过 5 MB"):
        read(b"x" * (MAX_BYTES + 1))


def test_a_damaged_xls_is_refused_not_a_500(ctx):
    damaged = (FIXTURES / "discharges.xls").read_bytes()[:1500]

    with pytest.raises(ImportFileError, match="无法读取该 XLS 文件"):
        read(damaged, "list.xls")


def test_xls_from_excel_97_2003_gives_dates_as_days_and_numbers_without_decimals(ctx):
    rows = read((FIXTURES / "discharges.xls").read_bytes(), "出院病人清单.xls")

    assert [header_key(h) for h in rows[0]] == ["病区/科室编码", "出院日期", "患者姓名", "联系电话", "住院号"]
    assert rows[1] == ["B-XNK", "2026-12-05", "王秀兰", "13912345678", "2026001"]  # a date cell, numbers
    assert [r[1] for r in rows[2:]] == ["2026/12/05", "2026.12.5", "2026年12月5日", "46361", "46361"]
    assert {parse_date(r[1]) for r in rows[1:]} == {date(2026, 12, 5)}


def test_only_the_first_sheet_of_an_xls_is_read(ctx):
    rows = read((FIXTURES / "departments.xls").read_bytes(), "科室.xls")

    assert rows[1:] == [["701", "眼科", "临床", ""], ["702", "眼科门诊", "临床", "701"], ["703", "病案室", "行政", ""]]


def test_an_xlsx_renamed_xls_is_read_by_its_content(ctx):
    content = xlsx([["出院日期", "联系电话"], [datetime(2026, 12, 5), 13912345678]])

    assert read(content, "list.xls") == [["出院日期", "联系电话"], ["2026-12-05", "13912345678"]]


def test_xlsx_date_cells_with_a_time_keep_it_and_midnight_is_a_day(ctx):
    content = xlsx([["a", "b", "c"], [datetime(2026, 12, 5, 14, 30), datetime(2026, 12, 5), 46361]])

    assert read(content, "list.xlsx")[1] == ["2026-12-05 14:30:00", "2026-12-05", "46361"]


@pytest.mark.parametrize("value, text", [(None, ""), (101.0, "101"), (13912345678.0, "13912345678"), (1.5, "1.5"),
                                         (True, "TRUE"), (float("nan"), ""), (time(8, 30), "08:30:00"),
                                         (date(2026, 1, 2), "2026-01-02"), ("  A1 ", "A1")])
def test_cell_text(value, text):
    assert cell_text(value) == text
