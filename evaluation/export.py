"""The statistics as files: CSV (UTF-8 with a BOM) and Excel (.xlsx), each stamped with its data time and query.

One writer for every export — the JSON API's ``Accept: text/csv`` and the reports page's download links — so
the figures in a file are exactly those of :func:`evaluation.indicators.evaluate`, to the last digit:

- CSV: a first line ``# 数据时间 <as_of>; 查询 <query>``, then a header of the column keys and one line per
  unit; a missing rate (no denominator) and a suppressed count (a reporter's persons 1–4) are empty cells;
- Excel: one sheet 统计 with the stamp on top (数据时间, 查询, 生成时间), Chinese column headers, counts as
  integers, rates as the same numbers shown with a percent format (never rounded text), hours as numbers;
  a missing rate is an empty cell and a suppressed count reads ``*`` (1 to 4 persons, or a count from which one
  could be computed: :mod:`evaluation.disclosure`; so not "<5", which a complementary cell may well not be).

>>> stamp = Stamp(datetime(2025, 3, 3, tzinfo=UTC), "/api/v1/stats?level=town")
>>> stats_csv([{"level": "town", "code": "1", "name": "x"}], stamp, ("level", "code", "name")).splitlines()[0]
'\\ufeff# 数据时间 2025-03-03T08:00:00+08:00; 查询 /api/v1/stats?level=town'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from evaluation.indicators import BEIJING, COLOURS, COLUMNS
from gis.spreadsheets import neutralised
from tasks.lifecycle import STATUS_NAMES

HEADERS = {
    "level": "层级", "code": "代码", "name": "名称", "tasks": "任务数", "cancelled": "已撤销",
    "closed": "已结案", "closed_on_time": "按期结案", "open_overdue": "在办超时", "handled": "已反馈",
    "reworked": "返工", "extended": "延期", "closure_rate": "结案率", "on_time_rate": "按期结案率",
    "rework_rate": "返工率", "extension_rate": "延期率", "median_handling_hours": "处置时长中位数（小时）",
    "p90_handling_hours": "处置时长90分位（小时）",
    **{f"persons_{c}": f"{n}码人数" for c, n in zip(COLOURS, ("红", "黄", "蓝", "绿"), strict=True)},
    **{f"status_{s}": f"状态：{n}" for s, n in STATUS_NAMES.items()},
}
LEVEL_NAMES = {"district": "区", "town": "镇街", "community": "村（社区）", "grid": "网格"}
RATES = ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")
HOURS = ("median_handling_hours", "p90_handling_hours")
SUPPRESSED = tuple(f"persons_{c}" for c in COLOURS)  # the only columns a reporter sees suppressed
PERCENT = "0.00%"
SUPPRESSED_TEXT = "*"
CSV_MEDIA = "text/csv"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Stamp:
    """What an export says about itself: the time its data stands at and the query that made it."""

    as_of: datetime
    query: str
    generated_at: datetime | None = None

    def line(self) -> str:
        """The stamp as one line of text (the CSV's first line, without the comment mark)."""
        return f"数据时间 {beijing_time(self.as_of)}; 查询 {self.query}"


def beijing_time(moment: datetime) -> str:
    """``moment`` as its readers count time: Beijing, to the second, with the offset (2025-03-03T08:00:00+08:00)."""
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def stats_csv(rows: Sequence[dict[str, Any]], stamp: Stamp, columns: Sequence[str] = COLUMNS) -> str:
    """The rows as CSV text: a BOM (Excel reads Chinese names right only with it), the stamp line, header, rows."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    buffer.write(f"# {stamp.line()}\n")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: neutralised(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def stats_xlsx(rows: Sequence[dict[str, Any]], stamp: Stamp, columns: Sequence[str] = COLUMNS) -> bytes:
    """The rows as an Excel workbook: sheet 统计, stamp rows 1–3, the header on row 5, one row per unit below."""
    book = Workbook()
    sheet = book.worksheets[0]  # a new workbook's one sheet
    sheet.title = "统计"
    generated = beijing_time(stamp.generated_at or datetime.now(UTC))
    for number, (label, shown) in enumerate((("数据时间", beijing_time(stamp.as_of)), ("查询", stamp.query),
                                             ("生成时间", generated)), start=1):
        sheet.cell(number, 1, label).font = Font(bold=True)
        sheet.cell(number, 2, shown)
    header_row = 5
    for index, column in enumerate(columns, start=1):
        sheet.cell(header_row, index, HEADERS.get(column, column)).font = Font(bold=True)
        sheet.column_dimensions[get_column_letter(index)].width = max(10, 2 * len(HEADERS.get(column, column)) + 2)
    for offset, row in enumerate(rows, start=1):
        for index, column in enumerate(columns, start=1):
            value: Any = row.get(column)
            if column == "level":
                value = LEVEL_NAMES.get(value, value)
            elif value is None and column in SUPPRESSED:
                value = SUPPRESSED_TEXT
            cell = sheet.cell(header_row + offset, index, neutralised(value))
            if column in RATES and value is not None:
                cell.number_format = PERCENT
            elif column in HOURS and value is not None:
                cell.number_format = "0.00"
            elif column == "code":
                cell.number_format = "@"  # a 15-digit code stays text, not a rounded number
    sheet.freeze_panes = f"{get_column_letter(4)}{header_row + 1}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
