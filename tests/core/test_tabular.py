"""The tabular writer (core/tabular.py): one cell rule for the CSV and the XLSX, streamed with flat memory."""
from __future__ import annotations

import ast
import csv
import io
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from core import tabular, views
from core.tabular import Sheet, safe_text, write_csv, write_xlsx

DANGEROUS = ["=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"]


def csv_rows(header: list[Any], rows: list[list[Any]]) -> list[list[str]]:
    body = b"".join(write_csv(header, rows)).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body, newline="")))


def xlsx_rows(*sheets: Sheet) -> list[list[list[Any]]]:
    written = write_xlsx(list(sheets))
    workbook = load_workbook(written.file)
    return [[list(r) for r in ws.iter_rows(values_only=True)] for ws in workbook.worksheets]


def workbook_of(*sheets: Sheet, **kwargs: Any):
    return load_workbook(write_xlsx(list(sheets), **kwargs).file)


# The formula guard ----------------------------------------------------------------------

@pytest.mark.parametrize("prefix", DANGEROUS)
def test_text_starting_with_a_formula_prefix_gets_an_apostrophe_in_csv_and_xlsx(prefix):
    text = prefix + "HYPERLINK(\"http://evil.example\",\"点我\")"

    assert csv_rows(["意见"], [[text]])[1] == ["'" + text]
    assert xlsx_rows(Sheet("s", ["意见"], [[text]]))[0][1] == ["'" + text]


def test_numbers_stay_numbers_and_are_not_guarded():
    cells = [-5, -2.5, Decimal("-1.25"), 0, "a-b", "正常 =1"]

    assert csv_rows(list("abcdef"), [cells])[1] == ["-5", "-2.5", "-1.25", "0", "a-b", "正常 =1"]
    assert xlsx_rows(Sheet("s", list("abcdef"), [cells]))[0][1] == [-5, -2.5, -1.25, 0, "a-b", "正常 =1"]


def test_a_formula_hidden_behind_a_control_character_is_still_guarded():
    assert safe_text("\x00=1+1") == "'=1+1"
    assert safe_text("\x0b-2") == "'-2"


def test_the_header_is_guarded_too():
    assert csv_rows(["=cmd"], [])[0] == ["'=cmd"]
    assert xlsx_rows(Sheet("s", ["=cmd"], []))[0][0] == ["'=cmd"]


def test_safe_row_guards_text_and_leaves_other_values():
    assert tabular.safe_row(["-1+1", -1, None, date(2026, 1, 1)]) == ["'-1+1", -1, None, date(2026, 1, 1)]


# CSV ---------------------------------------------------------------------------------------

def test_csv_starts_with_one_bom_however_many_chunks():
    rows = [[i, "中文" * 30] for i in range(5000)]

    chunks = list(write_csv(["编号", "内容"], rows))

    assert len(chunks) > 3  # streamed, not one block
    body = b"".join(chunks)
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.count(b"\xef\xbb\xbf") == 1


def test_csv_without_bom_when_asked():
    assert not b"".join(write_csv(["a"], [[1]], bom=False)).startswith(b"\xef\xbb\xbf")


def test_csv_header_goes_out_before_any_row_is_read():
    def rows() -> Iterator[list[Any]]:
        raise AssertionError("rows read before the header was sent")
        yield []

    first = next(write_csv(["案件编号"], rows()))

    assert first.decode("utf-8-sig").strip() == "案件编号"


def test_csv_formats_dates_none_bool_and_decimal_one_way():
    row = [datetime(2026, 10, 8, 10, 0, 30, 123456), date(2026, 10, 8), time(8, 5), None, True, False,
           Decimal("1.10"), 2.5, float("nan"), 10**16]

    assert csv_rows(list("abcdefghij"), [row])[1] == [
        "2026-10-08 10:00:30", "2026-10-08", "08:05:00", "", "TRUE", "FALSE", "1.10", "2.5", "", "10000000000000000"]


def test_chinese_survives_a_csv_round_trip():
    text = "患者反映挂号窗口排队时间过长，态度生硬；“请改进”，谢谢！"

    rows = csv_rows(["科室", "意见"], [["门诊收费处", text], ["药剂科", "多行\n文本, 含逗号"]])

    assert rows == [["科室", "意见"], ["门诊收费处", text], ["药剂科", "多行\n文本, 含逗号"]]


def test_csv_drops_characters_xml_cannot_hold_so_both_formats_carry_the_same_text():
    assert csv_rows(["a"], [["前\x00中\x0b后\ud800"]])[1] == ["前中后"]


# XLSX --------------------------------------------------------------------------------------

def test_chinese_survives_an_xlsx_round_trip_and_the_sheet_has_its_title():
    text = "患者反映挂号窗口排队时间过长，态度生硬；“请改进” <b>&amp;</b>"

    workbook = workbook_of(Sheet("评价明细", ["科室", "意见"], [["门诊收费处", text], ["药剂科", "  前后空格  "]]))

    assert workbook.sheetnames == ["评价明细"]
    rows = [list(r) for r in workbook.active.iter_rows(values_only=True)]
    assert rows == [["科室", "意见"], ["门诊收费处", text], ["药剂科", "  前后空格  "]]


def test_dates_and_times_read_back_as_dates_in_openpyxl():
    aware = datetime(2026, 10, 8, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    row = [date(2026, 10, 8), datetime(2026, 10, 8, 10, 0, 30, 999999), aware, time(8, 30), date(1899, 1, 1)]

    sheet = workbook_of(Sheet("s", list("abcde"), [row])).active

    cells = list(sheet.iter_rows(min_row=2))[0]
    assert [c.is_date for c in cells[:4]] == [True, True, True, True]
    assert cells[0].value == datetime(2026, 10, 8) and cells[0].number_format == "yyyy-mm-dd"
    assert cells[1].value == datetime(2026, 10, 8, 10, 0, 30)  # to the second
    assert cells[1].number_format == "yyyy-mm-dd hh:mm:ss"
    assert cells[2].value == datetime(2026, 10, 8, 10, 0)  # the wall-clock time it carried
    assert cells[3].value == time(8, 30)
    assert cells[4].value == "1899-01-01"  # before Excel's calendar: text, not a wrong number


def test_numbers_read_back_as_numbers_and_booleans_as_booleans():
    row = [42, -7.25, Decimal("87.5"), True, False, 10**16, float("inf"), None]

    values = xlsx_rows(Sheet("s", list("abcdefgh"), [row]))[0][1]

    assert values == [42, -7.25, 87.5, True, False, "10000000000000000", None, None]
    assert type(values[0]) is int and type(values[3]) is bool


def test_the_header_row_is_bold_and_frozen_with_column_widths():
    sheet = workbook_of(Sheet("投诉台账", ["案件编号", "意见"], [["TS2026-00001", "很长的中文意见" * 3]])).active

    assert sheet.freeze_panes == "A2"
    assert all(cell.font.b for cell in sheet[1])
    assert not sheet["A2"].font.b
    narrow, wide = sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width
    assert 12 <= narrow < wide <= 60  # Chinese text counts double, long text is capped


def test_explicit_widths_are_kept():
    sheet = workbook_of(Sheet("s", ["a", "b"], [[1, 2]], widths=[30, 8])).active

    assert (sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width) == (30, 8)


def test_two_sheets_from_two_iterables_in_order():
    read: list[str] = []

    def data() -> Iterator[list[Any]]:
        for i in range(3):
            read.append("data")
            yield [i, f"回答{i}"]

    def dictionary() -> Iterator[list[Any]]:
        assert read == ["data"] * 3, "the second sheet was read before the first was written"
        yield ["WIN_OVERALL", "总体满意度"]

    written = write_xlsx([Sheet("数据", ["编号", "回答"], data()), Sheet("数据字典", ["代码", "含义"], dictionary())])

    assert written.rows == (3, 1)
    workbook = load_workbook(written.file)
    assert workbook.sheetnames == ["数据", "数据字典"]
    assert [list(r) for r in workbook["数据字典"].iter_rows(values_only=True)] == [["代码", "含义"],
                                                                                ["WIN_OVERALL", "总体满意度"]]
    assert workbook["数据字典"].freeze_panes == "A2"
    assert workbook["数据"].max_row == 4


def test_sheet_titles_are_made_acceptable_to_excel_and_unique():
    titles = tabular.sheet_titles(["a/b:c*?[d]", "明细" * 20, "Sheet", "sheet", "", "'引号'"])

    assert titles == ["a_b_c___d_", ("明细" * 20)[:31], "Sheet", "sheet (2)", "Sheet5", "引号"]
    assert workbook_of(*(Sheet(t, ["a"], []) for t in ["同名", "同名"])).sheetnames == ["同名", "同名 (2)"]


def test_zero_rows_give_a_header_only_file_and_csv():
    written = write_xlsx(Sheet("空", ["案件编号", "状态"], iter(())))

    assert written.rows == (0,)
    assert [list(r) for r in load_workbook(written.file).active.iter_rows(values_only=True)] == [["案件编号", "状态"]]
    assert csv_rows(["案件编号", "状态"], []) == [["案件编号", "状态"]]


def test_a_very_long_text_cell_is_cut_to_excels_limit_in_the_xlsx_only():
    long_text = "长" * 40_000
    astral = "😀" * 20_000  # two UTF-16 units each, as Excel counts

    values = xlsx_rows(Sheet("s", ["a", "b"], [[long_text, astral]]))[0][1]

    assert values[0] == "长" * 32_767
    assert len(values[1].encode("utf-16-le")) // 2 <= 32_767 and values[1] == "😀" * 16_383
    assert csv_rows(["a"], [[long_text]])[1] == [long_text]


def test_characters_illegal_in_xml_do_not_break_the_file():
    row = ["前\x00中\x0b后", "\x1f\ufffe\uffff尾", "孤\ud800立", "制表\t换行\n保留"]

    written = write_xlsx(Sheet("标题\x00", ["列\x0b", "b", "c", "d"], [row]))

    with zipfile.ZipFile(written.file) as archive:
        assert archive.testzip() is None
    written.file.seek(0)
    rows = [list(r) for r in load_workbook(written.file).active.iter_rows(values_only=True)]
    assert rows == [["列", "b", "c", "d"], ["前中后", "尾", "孤立", "制表\t换行\n保留"]]


def test_rows_past_the_limit_are_left_out_and_flagged():
    written = write_xlsx(Sheet("s", ["n"], ([i] for i in range(5))), max_rows=3)

    assert written.rows == (3,) and written.truncated
    assert [r[0] for r in load_workbook(written.file).active.iter_rows(min_row=2, values_only=True)] == [0, 1, 2]


def test_a_row_wider_than_its_header_keeps_its_cells():
    assert xlsx_rows(Sheet("s", ["a"], [[1, "二", 3]]))[0][1] == [1, "二", 3]


def test_str_and_int_subclasses_are_written_by_value():
    from enum import Enum, IntEnum

    class Kind(str, Enum):  # noqa: UP042 - the str-and-Enum mix that str() prints as "Kind.FORMULA"
        FORMULA = "=1+1"

    class Level(IntEnum):
        THREE = 3

    assert xlsx_rows(Sheet("s", ["a", "b"], [[Kind.FORMULA, Level.THREE]]))[0][1] == ["'=1+1", 3]
    assert csv_rows(["a", "b"], [[Kind.FORMULA, Level.THREE]])[1] == ["'=1+1", "3"]


# Memory -----------------------------------------------------------------------------------

def many_rows(count: int) -> Iterator[list[Any]]:
    """Ledger-like rows of 12 cells, varied enough that the file does not compress to nothing."""
    start = datetime(2026, 1, 1, 8)
    for i in range(count):
        received = start + timedelta(minutes=i * 13)
        yield [f"TS2026-{i:06d}", "心血管内科", i, i / 7, received, (received + timedelta(days=7)).date(),
               received + timedelta(hours=i % 97) if i % 3 else None, f"{i * 2654435761 % 2**32:08x}",
               i * 7919 % 1000, f"患者意见第{i}条：排队{i * 7919 % 1000}分钟，挂号{i * 104729 % 97}号", -i, "是"]


HEADER = ["案件编号", "科室", "序号", "得分", "接收时间", "办理时限", "答复时间", "编码", "分钟", "意见", "差额",
          "按时"]


def traced_peak(work) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = work()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_xlsx_memory_stays_flat_for_a_large_stream():
    small_peak, _ = traced_peak(lambda: write_xlsx(Sheet("s", HEADER, many_rows(5_000))))
    peak, written = traced_peak(lambda: write_xlsx(Sheet("s", HEADER, many_rows(50_000))))

    assert written.rows == (50_000,)
    assert peak < small_peak * 1.2, (small_peak, peak)  # ten times the rows, the same memory
    assert peak < written.size / 5, (peak, written.size)  # the file is never held in memory


def test_csv_memory_stays_flat_for_a_large_stream():
    def consume(count: int) -> int:
        return sum(len(chunk) for chunk in write_csv(HEADER, many_rows(count)))

    small_peak, _ = traced_peak(lambda: consume(5_000))
    peak, size = traced_peak(lambda: consume(50_000))

    assert peak < small_peak * 1.2, (small_peak, peak)
    assert peak < size / 10, (peak, size)


# Downloads --------------------------------------------------------------------------------

def test_disposition_carries_the_chinese_name_and_an_ascii_fallback():
    value = views.content_disposition("投诉台账-示范一院-2026-10-01至2026-10-31.xlsx", "complaint-ledger-1.xlsx")

    assert value.startswith('attachment; filename="complaint-ledger-1.xlsx"; ')
    assert unquote(value.split("filename*=UTF-8''")[1]) == "投诉台账-示范一院-2026-10-01至2026-10-31.xlsx"


def test_disposition_derives_an_ascii_fallback_and_drops_unsafe_characters():
    value = views.content_disposition('评价/明细"\r\n-2026.csv')

    assert value.startswith('attachment; filename="2026.csv"; ')
    assert "\r" not in value and "\n" not in value and "/" not in unquote(value.split("''")[1])
    assert views.content_disposition("survey-1.csv") == 'attachment; filename="survey-1.csv"'


def test_send_table_streams_a_csv_of_the_first_sheet(app):
    sheets = [Sheet("数据", ["编号"], [[1], [2]]), Sheet("数据字典", ["代码"], [["x"]])]
    with app.test_request_context():
        response = views.send_table("csv", sheets, filename="数据.csv", fallback="data.csv")

        assert response.is_streamed
        assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
        assert response.get_data().decode("utf-8-sig").split() == ["编号", "1", "2"]


def test_send_table_streams_an_xlsx_of_every_sheet_with_its_length(app):
    sheets = [Sheet("数据", ["编号"], [[1], [2]]), Sheet("数据字典", ["代码"], [["x"]])]
    with app.test_request_context():
        response = views.send_table("xlsx", sheets, filename="数据.xlsx")

        body = b"".join(response.response)
        response.close()
    assert response.mimetype == tabular.XLSX_MIME
    assert int(response.headers["Content-Length"]) == len(body)
    assert load_workbook(io.BytesIO(body)).sheetnames == ["数据", "数据字典"]


def test_send_table_refuses_an_unknown_format(app):
    with app.test_request_context(), pytest.raises(ValueError):
        views.send_table("pdf", Sheet("s", ["a"], []), filename="x.pdf")


def test_core_tabular_imports_no_feature_package():
    tree = ast.parse(Path(tabular.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    features = ("organisation", "survey", "complaints", "analytics", "exports")
    assert not {name for name in imported if name.split(".")[0] in features}


def test_datetimes_in_utc_are_written_as_given_wall_clock_time():
    value = datetime(2026, 10, 8, 2, 0, tzinfo=UTC)

    assert xlsx_rows(Sheet("s", ["t"], [[value]]))[0][1] == [datetime(2026, 10, 8, 2, 0)]
    assert csv_rows(["t"], [[value]])[1] == ["2026-10-08 02:00:00"]
