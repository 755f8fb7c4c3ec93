"""One reader for every uploaded table: CSV, XLSX and XLS, their headers, and the dates Excel writes.

The importers (departments, touchpoints and staff in organisation/importer.py, discharge
lists in survey/discharges.py) read files through this module, so that a file a hospital
system exported is read the same way wherever it is uploaded:

- **The kind of file** is told by its content, not only by its name: an OLE2 container is
  an Excel 97–2003 ``.xls`` (read with xlrd), a ZIP package an ``.xlsx`` (openpyxl), and
  anything else text. Many hospital systems write a CSV or tab-separated text and call it
  ``.xls``; that is read as text. A web page (HTML) or an XML spreadsheet saved as ``.xls``
  is refused with a message saying how to save it properly.
- **Text** is UTF-8 with or without a byte-order mark, else GB18030 (a superset of GBK, which
  Excel in China uses for "CSV (逗号分隔)"). Tab-separated when the first line has tabs and
  no commas.
- **Cells** come back as stripped strings. A whole number typed as a number (a code, a
  phone number, an admission number) loses its ``.0``; a date cell is ``YYYY-MM-DD`` (with
  ``HH:MM:SS`` when it has a time).
- **Headers** are compared by ``header_key``: NFKC (full-width letters, digits, brackets and
  spaces become half-width), no spaces at all, case folded — so ``" 出院 日期　"`` is
  ``出院日期``.
- **Dates** (``parse_date``) as Excel and hospital systems write them: ``2026-12-05``,
  ``2026/12/05``, ``2026.12.5``, ``2026年12月5日``, ``20261205``, any of them followed by a
  time, an Excel serial number (a number or numeric text: 46361 is 2026-12-05), or a date cell.
"""
from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import IO, Any

from flask_babel import gettext

MAX_BYTES = 5 * 1024 * 1024
EXTENSIONS = ("csv", "xlsx", "xls")

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # the compound-file header of .xls (and of encrypted .xlsx)
_ZIP = b"PK\x03\x04"
_MARKUP = re.compile(rb"^\s*<(?:!doctype\s+html|html|\?xml|table|meta|head|body)\b", re.IGNORECASE)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (wrong type, encoding, headers, size); the message is for the user."""


# Reading -------------------------------------------------------------------------------

def read_table(filename: str, stream: IO[bytes], *, max_bytes: int = MAX_BYTES) -> Iterator[list[str]]:
    """Yield the cells of each row of the first sheet (or of the text) as stripped strings."""
    extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if extension not in EXTENSIONS:
        raise ImportFileError(gettext("只支持 CSV、XLSX 或 XLS 文件。"))
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImportFileError(gettext("文件超过 5 MB，请拆分后再导入。"))
    if data.startswith(_OLE2):
        rows = _read_xls(data)
    elif data.startswith(_ZIP):
        rows = _read_xlsx(data)
    elif _MARKUP.match(data.lstrip(b"\xef\xbb\xbf")):
        raise ImportFileError(gettext("该文件是网页（HTML）或 XML 格式，并不是真正的 Excel 文件。"
                                      "请用 Excel 打开它，另存为“Excel 工作簿（*.xlsx）”后再导入。"))
    else:
        rows = _read_text(data)
    for row in rows:
        # PostgreSQL refuses NUL in text; they come from UTF-16 saves or damaged files, never from people.
        if any("\x00" in cell for cell in row):
            raise ImportFileError(gettext("文件含有无效字符，请另存为 UTF-8 编码的 CSV 或 XLSX 后重试。"))
        yield row


def _read_text(data: bytes) -> Iterator[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError(gettext("无法识别文件编码，请另存为 UTF-8 编码的 CSV。"))
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            yield [cell.strip() for cell in row]
    except csv.Error as exc:
        raise ImportFileError(gettext("CSV 格式错误：%(error)s", error=str(exc))) from None


def _read_xlsx(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook  # here, not at the top: it adds 0.2 s to every process start

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged or mislabelled file
        raise ImportFileError(gettext("无法读取该 XLSX 文件，请确认文件未损坏。")) from None
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [cell_text(cell) for cell in row]
    finally:
        workbook.close()


def _read_xls(data: bytes) -> Iterator[list[str]]:
    import xlrd  # here, not at the top, like openpyxl

    unreadable = gettext("无法读取该 XLS 文件，请确认文件未损坏，或另存为 XLSX 后再导入。")
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except xlrd.XLRDError as exc:
        if "encrypted" in str(exc).lower():
            raise ImportFileError(gettext("文件设有打开密码，请在 Excel 中取消密码后再导入。")) from None
        raise ImportFileError(unreadable) from None
    except Exception:  # xlrd raises struct, index and assertion errors on damaged files
        raise ImportFileError(unreadable) from None

    def text(cell: Any) -> str:
        if cell.ctype == xlrd.XL_CELL_DATE:  # a number formatted as a date: the workbook's epoch (1900 or 1904)
            try:
                return cell_text(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            except (xlrd.xldate.XLDateError, ValueError, OverflowError):
                return cell_text(cell.value)
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return "TRUE" if cell.value else "FALSE"
        if cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
            return ""
        return cell_text(cell.value)

    try:
        if book.nsheets == 0:
            return
        sheet = book.sheet_by_index(0)
        for index in range(sheet.nrows):
            yield [text(cell) for cell in sheet.row(index)]
    except Exception:  # a sheet is read lazily (on_demand): its damage shows only now
        raise ImportFileError(unreadable) from None
    finally:
        book.release_resources()


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the importers read it: whole numbers without ``.0``, dates as ISO text, stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer():
            return str(int(value))  # codes and phone numbers typed as numbers come back as 101.0
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# Headers -------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))


def normalise_header(text: str) -> str:
    """A header cell as shown in messages: NFKC (full-width to half-width), no byte-order mark, spaces collapsed."""
    text = unicodedata.normalize("NFKC", str(text or "")).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


def header_key(text: str) -> str:
    """What two header cells are compared by: normalised, without any space, case folded."""
    return normalise_header(text).replace(" ", "").casefold()


def header_positions(header: Sequence[str], names: Mapping[str, Iterable[Any]]) -> dict[str, int]:
    """For each column key, the index of the first header cell matching one of its names (by ``header_key``).

    ``names`` maps a column key to every header it may have (the template's, in any
    language, and aliases); keys found in no cell are left out.
    """
    wanted = {key: {header_key(str(name)) for name in options} for key, options in names.items()}
    positions: dict[str, int] = {}
    for index, title in enumerate(header):
        found = header_key(title)
        if not found:
            continue
        for key, options in wanted.items():
            if found in options:
                positions.setdefault(key, index)
    return positions


# Dates ---------------------------------------------------------------------------------

_EXCEL_EPOCH = date(1899, 12, 30)   # serial 61 is 1900-03-01; Excel's fictitious 1900-02-29 is serial 60
_FIRST_SERIAL, _LAST_SERIAL = 61, 2_958_465  # 1900-03-01 … 9999-12-31
_DATE = re.compile(
    r"(\d{4})\s*([-/.年])\s*(\d{1,2})\s*([-/.月])\s*(\d{1,2})\s*日?"
    r"(?:(?:\s+|T)\d{1,2}[:：]\d{1,2}(?:[:：]\d{1,2}(?:\.\d+)?)?)?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SERIAL = re.compile(r"\d{1,7}(?:\.\d+)?")
_SEPARATORS = {("-", "-"), ("/", "/"), (".", "."), ("年", "月")}


def parse_date(value: Any) -> date | None:
    """The calendar day a cell means, or None: ISO, slashes, dots, 年月日, YYYYMMDD, Excel serials, date cells."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_serial(float(value))
    text = unicodedata.normalize("NFKC", str(value)).strip()
    match = _DATE.fullmatch(text)
    if match:
        if (match[2], match[4]) not in _SEPARATORS:
            return None
        return _day(match[1], match[3], match[5])
    match = _COMPACT.fullmatch(text)
    if match:
        return _day(match[1], match[2], match[3])
    if _SERIAL.fullmatch(text):
        return _from_serial(float(text))
    return None


def _day(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _from_serial(serial: float) -> date | None:
    if not math.isfinite(serial) or not _FIRST_SERIAL <= serial < _LAST_SERIAL + 1:
        return None
    return _EXCEL_EPOCH + timedelta(days=int(serial))
