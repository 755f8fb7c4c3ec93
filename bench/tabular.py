"""Benchmark: the tabular writer's XLSX path against openpyxl (and XlsxWriter when installed).

Usage:  .venv/bin/python bench/tabular.py [--rows 100000] [--rounds 3] [--no-check]

Writes the same ``--rows`` rows of 14 mixed cells (text with Chinese, integers, floats,
dates, date-times, empty cells; one text in fifty starts with "-" and so goes through
the formula guard) through:

- baseline: ``csv.writer`` into /dev/null, with nothing else (the bare cost of producing
  the rows and turning them into text);
- csv: ``core.tabular.write_csv`` (guard, BOM, chunks) into /dev/null;
- direct: ``core.tabular.write_xlsx`` (SpreadsheetML written directly into a temporary file);
- openpyxl: openpyxl's write-only workbook with a bold frozen header and column widths;
- xlsxwriter: XlsxWriter with ``constant_memory``, only if it is installed.

Every writer runs in a fresh interpreter (so peak memory is its own), in alternating
order from round to round, and the rows are generated as they are consumed, as the
ledger's database batches are. Prints per writer: median seconds, rows/s, the median of
its per-round ratios to the baseline of the same round, peak RSS growth (VmHWM at the end
less VmRSS before writing), file size.
``--check`` (the default) reads the direct writer's file back with openpyxl.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the app importable

HEADER = ["案件编号", "状态", "投诉渠道", "首诉接待人", "主办科室", "投诉类别", "序号", "得分", "办理时限",
          "接收时间", "答复时间", "是否按时答复", "意见", "件数"]
STATUSES = ["已登记", "已受理", "办理中", "已答复", "已办结", "不予受理", "当场办结"]
CHANNELS = ["现场", "电话", "12345热线", "信函", "电子邮件", "患者自助", "满意度评价转投诉"]
PEOPLE = ["王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄强"]
DEPARTMENTS = ["心血管内科", "普外科", "门诊收费处", "药剂科", "检验科", "儿科", "急诊科", "放射科"]
CATEGORIES = ["服务态度", "医疗质量", "收费问题", "环境设施", "医德医风", "其他"]
WORDS = ["排队时间太长", "护士很耐心", "挂号窗口", "收费不透明", "医生解释清楚", "厕所不干净", "停车难",
         "检查结果出得慢", "态度生硬", "谢谢大夫", "药房", "夜间急诊"]


def rows(count: int) -> Iterator[list[Any]]:
    """``count`` deterministic rows of 14 cells, made as they are read."""
    rng = random.Random(42)
    start = datetime(2024, 1, 1, 8, 0)
    for i in range(count):
        received = start + timedelta(minutes=13 * i, seconds=rng.randrange(60))
        comment = "".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 5)))
        if i % 50 == 0:
            comment = "-" + comment
        yield [f"TS{received.year}-{i:06d}", rng.choice(STATUSES), rng.choice(CHANNELS), rng.choice(PEOPLE),
               rng.choice(DEPARTMENTS), rng.choice(CATEGORIES), i + 1, round(rng.random() * 100, 1),
               (received + timedelta(days=7)).date(), received,
               received + timedelta(days=3, hours=2) if i % 3 else None, rng.choice(("是", "否", "—")), comment,
               rng.randrange(1, 4) if i % 7 else None]


# The writers, each run alone in a child process ----------------------------------------

def run_baseline(n: int, out: str) -> int:
    with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(HEADER)
        writer.writerows(rows(n))
    return 0


def run_csv(n: int, out: str) -> int:
    from core.tabular import write_csv

    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in write_csv(HEADER, rows(n)):
            size += len(chunk)
            sink.write(chunk)
    return size


def run_direct(n: int, out: str) -> int:
    import shutil

    from core.tabular import Sheet, write_xlsx

    written = write_xlsx(Sheet("投诉台账", HEADER, rows(n)))
    with open(out, "wb") as target:
        shutil.copyfileobj(written.file, target, 64 * 1024)
    written.close()
    return written.size


def run_openpyxl(n: int, out: str) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from core.tabular import safe_row

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("投诉台账")
    sheet.freeze_panes = "A2"
    for i, width in enumerate((16, 10, 16, 12, 14, 12, 8, 8, 12, 20, 20, 12, 30, 6)):
        sheet.column_dimensions[chr(65 + i)].width = width
    bold = Font(bold=True)
    header = []
    for title in HEADER:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows(n):
        sheet.append(safe_row(row))
    workbook.save(out)
    return os.path.getsize(out)


def run_xlsxwriter(n: int, out: str) -> int:
    import xlsxwriter  # only when installed: the parent checks first

    from core.tabular import safe_row

    workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "default_date_format": "yyyy-mm-dd hh:mm:ss",
                                         "strings_to_formulas": False, "strings_to_numbers": False,
                                         "strings_to_urls": False})
    sheet = workbook.add_worksheet("投诉台账")
    sheet.freeze_panes(1, 0)
    sheet.write_row(0, 0, HEADER, workbook.add_format({"bold": True}))
    for r, row in enumerate(rows(n), 1):
        sheet.write_row(r, 0, safe_row(row))
    workbook.close()
    return os.path.getsize(out)


WRITERS = {"baseline": run_baseline, "csv": run_csv, "direct": run_direct, "openpyxl": run_openpyxl,
           "xlsxwriter": run_xlsxwriter}


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(name: str, n: int, out: str) -> None:
    """Run one writer and print its figures as JSON."""
    import core.tabular  # noqa: F401  imported before the measurement, as a server has it loaded
    if name == "openpyxl":
        import openpyxl  # noqa: F401
    before = _status("VmRSS")
    started = time.perf_counter()
    size = WRITERS[name](n, out)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rss_growth": max(0, _status("VmHWM") - before), "size": size}))


# The parent ------------------------------------------------------------------------------

def installed(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-check", dest="check", action="store_false")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        child(args.one, args.rows, args.out)
        return

    names = ["baseline", "csv", "direct", "openpyxl"] + (["xlsxwriter"] if installed("xlsxwriter") else [])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}; {args.rows:,} rows x {len(HEADER)} cells, {args.rounds} rounds")
    if "xlsxwriter" not in names:
        print("XlsxWriter is not installed: left out")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            order = names if round_number % 2 == 0 else names[::-1]
            for name in order:
                out = str(Path(folder) / f"{name}.xlsx")
                done = subprocess.run([sys.executable, __file__, "--one", name, "--rows", str(args.rows), "--out", out],
                                      capture_output=True, text=True, check=True)
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"  round {round_number + 1}: {name:<10} {results[name][-1]['seconds']:7.2f} s", flush=True)
        if args.check:
            check(Path(folder) / "direct.xlsx", args.rows)

    # The ratio is taken round by round (a writer against the baseline of the same round), so
    # that a change in the machine's load between rounds falls on both.
    print(f"\n{'writer':<11}{'median s':>9}{'rows/s':>10}{'x baseline':>11}{'peak RSS +MB':>13}{'size MB':>9}"
          "   x baseline per round")
    for name in names:
        seconds = statistics.median(r["seconds"] for r in results[name])
        ratios = [r["seconds"] / b["seconds"] for r, b in zip(results[name], results["baseline"], strict=True)]
        growth = max(r["rss_growth"] for r in results[name]) / 2**20
        size = results[name][-1]["size"] / 2**20 if name != "baseline" else 0.0
        print(f"{name:<11}{seconds:9.2f}{args.rows / seconds:10,.0f}{statistics.median(ratios):11.1f}{growth:13.1f}"
              f"{size:9.1f}   {' '.join(f'{r:.1f}' for r in ratios)}")


def check(path: Path, expected: int) -> None:
    """The direct writer's file read back with openpyxl: every row, real dates, the guard."""
    from openpyxl import load_workbook

    started = time.perf_counter()
    workbook = load_workbook(path, read_only=True)
    sheet = workbook.active
    count, first = 0, None
    for row in sheet.iter_rows(min_row=2, values_only=True):
        count += 1
        if first is None:
            first = row
    assert count == expected, f"{count} rows read back, {expected} written"
    assert first is not None and isinstance(first[9], datetime) and isinstance(first[8], datetime | date)
    assert first[12].startswith("'-"), first[12]
    print(f"direct file read back with openpyxl: {count:,} rows, real dates, "
          f"guarded text ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
