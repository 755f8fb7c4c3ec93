"""One tabular writer for every download: streamed CSV and streamed XLSX.

The ledger, the survey result downloads and the exports all write tables through this
module, so that one rule decides how a cell looks in a file:

- **Text** loses the control characters XML cannot hold (and lone surrogates), then a
  leading ``=``, ``+``, ``-``, ``@``, tab or carriage return (or a full-width ``＝``,
  ``＋``, ``－``, ``＠``) gets an apostrophe in front, so that a spreadsheet shows it as
  text instead of running it as a formula (CSV injection). The same text goes into the
  CSV and the XLSX.
- **Numbers** stay numbers (a negative number is not text to escape); NaN and infinities
  become empty cells. Booleans are TRUE / FALSE.
- **Dates and times** are real dates in the XLSX (``yyyy-mm-dd``, ``yyyy-mm-dd hh:mm:ss``,
  ``hh:mm:ss``) and the same text in the CSV, to the second. A time-zone-aware value is
  written as the wall-clock time it carries: callers convert to the hospital's zone first.
- **None** is an empty cell.

The CSV is UTF-8 with a byte-order mark (Excel reads Chinese only with it) and is a
generator of chunks. The XLSX is SpreadsheetML written row by row into a temporary file
(inline strings, no shared-string table), so memory stays flat however many rows come;
several sheets may follow one another (the exports add a data dictionary). It is written
directly rather than through openpyxl or XlsxWriter because that was measured several
times faster (docs/benchmarks.md, "Tabular writer"), the difference between a 100,000-row
download finishing and gunicorn killing the worker.
"""
from __future__ import annotations

import csv
import io
import math
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import chain, islice
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")

MAX_ROWS = 1_048_575        # Excel's 1,048,576 rows per sheet, less the header
MAX_COLUMNS = 16_384        # Excel's columns per sheet (XFD)
MAX_CELL_TEXT = 32_767      # Excel's characters per cell (UTF-16 code units); longer cells break the file
MAX_TITLE = 31              # Excel's characters per sheet name

# The full-width forms are a precaution: Chinese and Japanese input methods type them, and
# Excel in those locales may take a full-width ＝ at the start of a cell for a formula. The
# cost is an apostrophe on rare text.
_FORMULA_PREFIXES = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
# What XML 1.0 cannot carry (C0 controls but tab, LF, CR; U+FFFE/U+FFFF) and lone surrogates,
# which cannot be encoded as UTF-8 at all.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# Cells -------------------------------------------------------------------------------

def safe_text(text: str) -> str:
    """Text as every download writes it: XML-illegal characters removed, a formula prefix behind an apostrophe."""
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    if text[:1] in _FORMULA_PREFIXES:
        return "'" + text
    return text


def safe_row(cells: Iterable[Any]) -> list[Any]:
    """The row with every text cell passed through safe_text; other values untouched (for callers using csv itself)."""
    return [safe_text(v) if isinstance(v, str) else v for v in cells]


def _plain(value: str) -> str:
    return str.__str__(value)  # a str subclass (a str-valued Enum) as its value, not its repr-like __str__


def _csv_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _csv_float(value: float) -> str:
    return repr(value) if math.isfinite(value) else ""


def _csv_decimal(value: Decimal) -> str:
    return format(value, "f") if value.is_finite() else ""


_CSV: dict[type, Callable[[Any], str]] = {
    str: safe_text,
    int: str,
    float: _csv_float,
    bool: lambda v: "TRUE" if v else "FALSE",
    type(None): lambda v: "",
    datetime: _csv_datetime,
    date: date.isoformat,
    time: lambda v: v.strftime("%H:%M:%S"),
    Decimal: _csv_decimal,
}


def csv_text(value: Any) -> str:
    """One cell as CSV text, by the module's rules (dates to the second, None empty, TRUE/FALSE, text guarded)."""
    convert = _CSV.get(type(value))
    if convert is not None:
        return convert(value)
    for kind in (bool, int, float, datetime, date, time, Decimal):  # subclasses, e.g. an IntEnum
        if isinstance(value, kind):
            return _CSV[kind](value)
    return safe_text(_plain(value) if isinstance(value, str) else str(value))


# CSV ---------------------------------------------------------------------------------

_CSV_CHUNK = 32 * 1024  # characters: a StringIO of Chinese text holds four bytes each


def write_csv(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, bom: bool = True) -> Iterator[bytes]:
    """The table as UTF-8 CSV (a BOM, so Excel reads Chinese), yielded in chunks of 32,000 characters as rows come."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_text(v) for v in header])
    # The header goes out at once, so the browser starts the download before the first rows are read.
    yield (("\ufeff" if bom else "") + buffer.getvalue()).encode()
    buffer.seek(0)
    buffer.truncate()
    convert = _CSV.get
    for row in rows:
        writer.writerow([convert(type(v), csv_text)(v) for v in row])
        if buffer.tell() >= _CSV_CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# XLSX --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sheet:
    """One table: a title (the XLSX sheet name; a CSV has none), a header row and an iterable of rows."""

    title: str
    header: Sequence[Any]
    rows: Iterable[Sequence[Any]]
    widths: Sequence[float] | None = field(default=None)  # None: estimated from the header and the first rows


@dataclass
class XlsxFile:
    """A written workbook: an unlinked temporary file at position 0, its size, and the data rows of each sheet."""

    file: IO[bytes]
    size: int
    rows: tuple[int, ...]
    truncated: bool = False  # a sheet reached max_rows and its remaining rows were left out

    def close(self) -> None:
        self.file.close()


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"

# Cell styles (the s attribute): 0 default, 1 date and time, 2 date, 3 bold (the header), 4 time of day.
_STYLES = (
    f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
    '<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/><numFmt numFmtId="166" formatCode="hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')

_EXCEL_EPOCH = datetime(1899, 12, 30)
_EPOCH_DAY = _EXCEL_EPOCH.date()
# Excel's serial dates count 1900 as a leap year; from March 1900 on, the 1899-12-30 epoch is exact.
# Earlier dates are written as text rather than as a wrong number.
_FIRST_SERIAL_DAY = date(1900, 3, 1)
_FIRST_SERIAL = datetime(1900, 3, 1)
# Excel keeps 15 significant digits: a longer integer (an order number, say) is written as text.
_MAX_EXACT_INT = 10**15


def _fit(text: str) -> str:
    """Text cut to Excel's cell limit, counted in UTF-16 code units as Excel counts."""
    if len(text) <= MAX_CELL_TEXT // 2 or len(text.encode("utf-16-le")) <= 2 * MAX_CELL_TEXT:
        return text
    units = 0
    for end, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > MAX_CELL_TEXT:
            return text[:end]
    return text


def _x_text(ref: str, text: str, style: str = "") -> str:
    if len(text) > MAX_CELL_TEXT // 2:
        text = _fit(text)
    if "&" in text or "<" in text or ">" in text:
        text = escape(text)
    if "\r" in text:  # XML readers turn a literal CR into LF; a character reference survives
        text = text.replace("\r", "&#13;")
    # Readers drop leading and trailing blanks unless told to keep them.
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _x_str(ref: str, value: str) -> str:
    # safe_text and _x_text inlined for the common case: this runs for most cells of every export.
    if not value:
        return ""
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("", value)
    if value[:1] in _FORMULA_PREFIXES:
        value = "'" + value
    elif len(value) <= MAX_CELL_TEXT // 2 and "&" not in value and "<" not in value and ">" not in value \
            and "\r" not in value and not value[:1].isspace() and not value[-1:].isspace():
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
    return _x_text(ref, value)


def _x_int(ref: str, value: int) -> str:
    if -_MAX_EXACT_INT < value < _MAX_EXACT_INT:
        return f'<c r="{ref}"><v>{value}</v></c>'
    return _x_text(ref, str(value))  # digits (and a sign) only: nothing to guard


def _x_float(ref: str, value: float) -> str:
    return f'<c r="{ref}"><v>{value!r}</v></c>' if math.isfinite(value) else ""


def _x_decimal(ref: str, value: Decimal) -> str:
    return f'<c r="{ref}"><v>{float(value)!r}</v></c>' if value.is_finite() else ""


def _x_bool(ref: str, value: bool) -> str:
    return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'


def _x_datetime(ref: str, value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    if value < _FIRST_SERIAL:
        return _x_text(ref, _csv_datetime(value))
    delta = value - _EXCEL_EPOCH  # to the second: delta.seconds leaves the microseconds out
    return f'<c r="{ref}" s="1"><v>{delta.days + delta.seconds / 86400!r}</v></c>'


def _x_date(ref: str, value: date) -> str:
    if value < _FIRST_SERIAL_DAY:
        return _x_text(ref, value.isoformat())
    return f'<c r="{ref}" s="2"><v>{(value - _EPOCH_DAY).days}</v></c>'


def _x_time(ref: str, value: time) -> str:
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return f'<c r="{ref}" s="4"><v>{seconds / 86400!r}</v></c>'


_XLSX: dict[type, Callable[[str, Any], str]] = {
    str: _x_str,
    int: _x_int,
    float: _x_float,
    type(None): lambda ref, value: "",
    datetime: _x_datetime,
    date: _x_date,
    bool: _x_bool,
    Decimal: _x_decimal,
    time: _x_time,
}


def _x_cell(ref: str, value: Any) -> str:
    write = _XLSX.get(type(value))
    if write is not None:
        return write(ref, value)
    for kind in (bool, int, float, datetime, date, time, Decimal):  # subclasses, e.g. an IntEnum
        if isinstance(value, kind):
            return _XLSX[kind](ref, value)
    return _x_str(ref, _plain(value) if isinstance(value, str) else str(value))


def _x_header(ref: str, value: Any) -> str:
    text = csv_text(value)
    return _x_text(ref, text, ' s="3"') if text else ""


def column_letter(index: int) -> str:
    """The spreadsheet name of the column at zero-based ``index``: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def sheet_titles(titles: Iterable[str]) -> list[str]:
    """Titles Excel accepts: no []:*?/\\, no quote at either end, at most 31 characters, unique ignoring case."""
    result: list[str] = []
    seen: set[str] = set()
    for n, title in enumerate(titles, 1):
        clean = re.sub(r"[\[\]:*?/\\]", "_", _ILLEGAL.sub("", title)).strip().strip("'")[:MAX_TITLE] or f"Sheet{n}"
        candidate, copy = clean, 1
        while candidate.casefold() in seen:
            copy += 1
            suffix = f" ({copy})"
            candidate = clean[:MAX_TITLE - len(suffix)] + suffix
        seen.add(candidate.casefold())
        result.append(candidate)
    return result


_WIDTH_SAMPLE = 100
_MIN_WIDTH, _MAX_WIDTH = 6.0, 60.0


def _display_width(text: str) -> int:
    # A Chinese character takes about two Latin ones in a spreadsheet column.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _estimate_widths(header: Sequence[Any], sample: list[Sequence[Any]]) -> list[float]:
    widths = [_display_width(csv_text(h)) + 2.0 for h in header]  # bold header text is wider
    for row in sample:
        for i, value in enumerate(row[:len(widths)]):
            if value is not None:
                widths[i] = max(widths[i], float(_display_width(csv_text(value)[:200])))
    return [min(max(w + 2, _MIN_WIDTH), _MAX_WIDTH) for w in widths]


def _worksheet_head(widths: Sequence[float], selected: bool) -> str:
    cols = "".join(f'<col min="{i}" max="{i}" width="{w:g}" customWidth="1"/>' for i, w in enumerate(widths, 1))
    tab = ' tabSelected="1"' if selected else ""
    return (f'{_XML_DECL}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><sheetViews>'
            f'<sheetView{tab} workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>' + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>")


def _package_parts(titles: list[str]) -> dict[str, str]:
    numbers = range(1, len(titles) + 1)
    overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{_SHEET_TYPE}"/>'
                        for n in numbers)
    sheets = "".join(f'<sheet name={quoteattr(title)} sheetId="{n}" r:id="rId{n}"/>'
                     for n, title in zip(numbers, titles, strict=True))
    sheet_rels = "".join(f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                         for n in numbers)
    return {
        # The content types first: some readers sniff the package by its first entry.
        "[Content_Types].xml": (
            f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            f'{overrides}</Types>'),
        "_rels/.rels": (
            f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'{_XML_DECL}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><bookViews><workbookView/></bookViews>'
            f'<sheets>{sheets}</sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{sheet_rels}'
            f'<Relationship Id="rId{len(titles) + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>'),
        "xl/styles.xml": _STYLES,
    }


_XLSX_CHUNK = 32 * 1024  # characters of sheet XML gathered before a write


def _write_sheet(archive: zipfile.ZipFile, number: int, sheet: Sheet, *, selected: bool,
                 max_rows: int) -> tuple[int, bool]:
    header = list(sheet.header)
    if len(header) > MAX_COLUMNS:
        raise ValueError(f"{len(header)} columns: a worksheet holds at most {MAX_COLUMNS}")
    rows: Iterator[Sequence[Any]] = iter(sheet.rows)
    if sheet.widths is not None:
        widths = list(sheet.widths)[:len(header)]
    else:
        sample = list(islice(rows, _WIDTH_SAMPLE))
        widths = _estimate_widths(header, sample)
        rows = chain(sample, rows)
    letters = [column_letter(i) for i in range(len(header))]
    count, truncated = 0, False
    with archive.open(f"xl/worksheets/sheet{number}.xml", "w") as part:
        head = "".join([_x_header(f"{letter}1", value) for letter, value in zip(letters, header, strict=True)])
        part.write((_worksheet_head(widths, selected) + (f'<row r="1">{head}</row>' if head else "")).encode())
        chunk: list[str] = []
        size = 0
        for row in rows:
            if count >= max_rows:
                truncated = True
                break
            count += 1
            n = str(count + 1)
            if len(row) > len(letters):  # a row wider than its header keeps its cells
                letters += [column_letter(i) for i in range(len(letters), min(len(row), MAX_COLUMNS))]
            xml = "".join([_XLSX.get(type(value), _x_cell)(letter + n, value)
                           for letter, value in zip(letters, row, strict=False)])
            chunk.append(f'<row r="{n}">{xml}</row>')
            size += len(xml)
            if size >= _XLSX_CHUNK:
                part.write("".join(chunk).encode())
                chunk.clear()
                size = 0
        part.write(("".join(chunk) + "</sheetData></worksheet>").encode())
    return count, truncated


def write_xlsx(sheets: Sheet | Iterable[Sheet], *, max_rows: int = MAX_ROWS) -> XlsxFile:
    """The sheets, in order, as an XLSX in a temporary file written row by row (flat memory), positioned at 0.

    Each sheet's header row is bold and frozen; rows past ``max_rows`` are left out and
    flagged. The file is already unlinked: it disappears when closed.
    """
    sheets = [sheets] if isinstance(sheets, Sheet) else list(sheets)
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    titles = sheet_titles(s.title for s in sheets)
    handle = tempfile.TemporaryFile(suffix=".xlsx")
    counts: list[int] = []
    truncated = False
    try:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, body in _package_parts(titles).items():
                archive.writestr(name, body)
            for number, sheet in enumerate(sheets, 1):
                count, cut = _write_sheet(archive, number, sheet, selected=number == 1, max_rows=max_rows)
                counts.append(count)
                truncated = truncated or cut
        size = handle.tell()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return XlsxFile(handle, size, tuple(counts), truncated)
