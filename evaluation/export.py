"""The statistics as files: CSV (UTF-8 with a BOM) and Excel (.xlsx), each stamped with its data time and query;
and the one-click daily report (日报) as Excel and PDF.

Two families of files:

- the JSON API's ``Accept: text/csv`` (:func:`stats_csv`): a first line ``# 数据时间 <as_of>; 查询 <query>``, a
  header of the column keys, one line per unit; a missing rate and a suppressed count are empty cells;
- the reports page's downloads (:func:`report_sheet`, then :func:`sheet_csv` or :func:`sheet_xlsx`): one grid of
  cells written twice, so the CSV and the Excel file agree cell for cell — the stamp rows on top (data time,
  query, generated, scope), the header in the page's language on row 5, one row per unit below (the unplaced
  row last where there is one). Counts are integers, rates are percentages rounded to two decimals (22.22 under
  a "(%)" header: a number in both files, never text), hours numbers with two decimals, a missing rate an empty
  cell, and a suppressed person count (a reporter's 1 to 4, or a count from which one could be computed:
  :mod:`evaluation.disclosure`) reads :data:`SUPPRESSED_TEXT`, "<5", as on the page.

The texts of a page file (headers, level names, stamp labels) come from the caller (``say``: a key to its text
in the chosen language), so this module stays free of the pages' catalogs.

>>> stamp = Stamp(datetime(2025, 3, 3, tzinfo=UTC), "/api/v1/stats?level=town")
>>> stats_csv([{"level": "town", "code": "1", "name": "x"}], stamp, ("level", "code", "name")).splitlines()[0]
'\\ufeff# 数据时间 2025-03-03T08:00:00+08:00; 查询 /api/v1/stats?level=town'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from evaluation.daily import Daily
from evaluation.indicators import BEIJING, COLOURS, COLUMNS, FOLLOW_UP_COLUMNS
from gis.spreadsheets import neutralised

RATES = ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")
PERCENTS = (*RATES, "follow_up_rate")  # every rate, shown in percent (the follow-up rate is no task rate)
HOURS = ("median_handling_hours", "p90_handling_hours")
# the columns a reporter may see suppressed: persons by colour, and the follow-up figures (persons followed and
# their checks, persons lost to follow-up)
SUPPRESSED = (*(f"persons_{c}" for c in COLOURS), *(c for c in FOLLOW_UP_COLUMNS if c != "follow_up_rate"))
SUPPRESSED_TEXT = "<5"  # the page, the CSV and the Excel file say the same
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


# -- the reports page's files: one grid of cells, as CSV and as Excel ------------------------------------------
Say = Callable[[str], str]
HEADER_ROW = 5  # the stamp on rows 1-4, the header on row 5: the same in both files
SHEET_TITLE = "stats"


def percent(rate: float | None) -> float | None:
    """A rate (0.2222) as the files and the page show it: percent, rounded to two decimals (22.22)."""
    return None if rate is None else round(rate * 100, 2)


def shown(column: str, value: Any, say: Say) -> Any:
    """One figure of a report row as the page, the CSV and the Excel file show it: a suppressed person count
    :data:`SUPPRESSED_TEXT`, a rate in percent, a level by its name, anything else as it is."""
    if column == "level":
        return say(f"level.{value}")
    if value is None:
        return SUPPRESSED_TEXT if column in SUPPRESSED else None
    if column in PERCENTS:
        value = percent(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # as a workbook stores and gives back 100.0: 100, so the CSV says the same
    return value


def header(column: str, say: Say) -> str:
    """A column's header in the files: its name, "(%)" after a rate, "状态：" before a status."""
    if column.startswith("status_"):
        return say("col.status_prefix") + say(f"col.{column}")
    return say(f"col.{column}") + (say("col.percent") if column in PERCENTS else "")


def report_sheet(rows: Sequence[dict[str, Any]], columns: Sequence[str], stamp: Stamp, scope: str,
                 say: Say) -> list[list[Any]]:
    """The cells of a report file, row by row: the stamp (data time, query, generated, scope) on rows 1-4, the
    header on row :data:`HEADER_ROW`, then one row per unit. Every row as wide as the header."""
    width = len(columns)
    generated = beijing_time(stamp.generated_at or datetime.now(UTC))
    top = [[say("as_of"), beijing_time(stamp.as_of)], [say("query"), stamp.query], [say("generated"), generated],
           [say("scope"), scope]]
    cells = [row + [None] * (width - len(row)) for row in top]
    cells.append([header(c, say) for c in columns])
    cells.extend([neutralised(shown(c, row.get(c), say)) for c in columns] for row in rows)
    return cells


def sheet_csv(cells: Sequence[Sequence[Any]]) -> str:
    """The cells as CSV text with a BOM (Excel reads Chinese right only with it): an empty cell for None, a
    number as Python writes it — so each cell reads back as the Excel file's value written as text."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(["" if value is None else value for value in row] for row in cells)
    return buffer.getvalue()


def sheet_xlsx(cells: Sequence[Sequence[Any]], title: str = SHEET_TITLE, header_row: int = HEADER_ROW) -> bytes:
    """The cells as a one-sheet workbook: the labels of the stamp and the header bold, codes as text, the
    panes frozen under the header and after the name."""
    book = Workbook()
    sheet = book.worksheets[0]
    sheet.title = title
    for number, row in enumerate(cells, start=1):
        for index, value in enumerate(row, start=1):
            cell = sheet.cell(number, index, value)
            if number == header_row or (number < header_row and index == 1):
                cell.font = Font(bold=True)
            if isinstance(value, str) and value.isdigit():
                cell.number_format = "@"  # a 15-digit code stays text, not a rounded number
    for index, value in enumerate(cells[header_row - 1] if len(cells) >= header_row else [], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, 2 * len(str(value or "")) + 2)
    sheet.freeze_panes = f"{get_column_letter(4)}{header_row + 1}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# -- the daily report (日报): one fixed layout, as Excel and as PDF --------------------------------------------
DAILY_PERSONS = tuple(f"persons_{c}" for c in COLOURS)
DAILY_NEW = ("new_red", "new_yellow")
DAILY_WORK = ("opened", "closed", "closed_on_time", "open_overdue", "on_time_rate")
DAILY_FOLLOW_UPS = FOLLOW_UP_COLUMNS
PDF_MEDIA = "application/pdf"
PDF_FONT = "STSong-Light"  # a CID font every PDF reader has: no font file travels with the PDF


@dataclass(frozen=True)
class Block:
    """One section of the 日报: a heading, and a table (its header first) or a line saying why there is none."""

    heading: str
    rows: list[list[Any]]
    note: str | None = None


def _daily_row(row: dict[str, Any], name: str, columns: Sequence[str]) -> list[Any]:
    return [name, row["code"], *(shown(c, row.get(c), lambda key: key) for c in columns)]


def daily_blocks(report: Daily, stamp: Stamp, say: Say) -> tuple[str, list[list[str]], list[Block]]:
    """The 日报's title, its stamp lines (label, value) and its sections, in the order both files print them:
    persons by colour, persons turned red or yellow that day, the day's tasks, the day's follow-ups (checks done
    and missed, completion rate, persons lost to follow-up; a note instead when the report has none). Each
    table: one row per unit, then the unplaced row, then the total."""
    title = f"{report.scope['name']} {say('daily.title')} {report.day.isoformat()}"
    lines = [[say("daily.day"), report.day.isoformat()], [say("scope"), report.scope["name"]],
             [say("as_of"), beijing_time(report.as_of)], [say("query"), stamp.query],
             [say("generated"), beijing_time(stamp.generated_at or datetime.now(UTC))]]
    unit = say(f"level.{report.level}")
    blocks = []
    sections = [("daily.persons", DAILY_PERSONS), ("daily.new", DAILY_NEW), ("daily.tasks", DAILY_WORK)]
    if report.follow_ups is not None:
        sections.append(("daily.follow_ups", DAILY_FOLLOW_UPS))
    for key, columns in sections:
        table = [[unit, say("col.code"), *(header(c, say) for c in columns)]]
        table += [_daily_row(r, r["name"], columns) for r in report.units]
        if report.unplaced is not None:
            table.append(_daily_row(report.unplaced, say("unplaced"), columns))
        table.append(_daily_row(report.total, say("daily.total"), columns))
        blocks.append(Block(say(key), table))
    if report.follow_ups is None:
        blocks.append(Block(say("daily.follow_ups"), [], say("daily.follow_ups_absent")))
    return title, lines, blocks


def daily_xlsx(report: Daily, stamp: Stamp, say: Say) -> bytes:
    """The 日报 as a workbook of one sheet: the title, the stamp lines, then each section under its heading."""
    title, lines, blocks = daily_blocks(report, stamp, say)
    book = Workbook()
    sheet = book.worksheets[0]
    sheet.title = say("daily.sheet")
    sheet.cell(1, 1, neutralised(title)).font = Font(bold=True, size=14)
    number = 2
    for label, value in lines:
        sheet.cell(number, 1, label).font = Font(bold=True)
        sheet.cell(number, 2, neutralised(value))
        number += 1
    for block in blocks:
        number += 1
        sheet.cell(number, 1, block.heading).font = Font(bold=True, size=12)
        number += 1
        if block.note:
            sheet.cell(number, 1, block.note)
            number += 1
        for offset, row in enumerate(block.rows):
            for index, value in enumerate(row, start=1):
                cell = sheet.cell(number, index, neutralised(value))
                if offset == 0 or row is block.rows[-1]:
                    cell.font = Font(bold=True)
                if index == 2:
                    cell.number_format = "@"
            number += 1
    for index, width in enumerate((22, 16, 12, 12, 12, 12, 12), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def daily_pdf(report: Daily, stamp: Stamp, say: Say) -> bytes:
    """The 日报 as an A4 PDF in reportlab's built-in Chinese CID font (STSong-Light): the same title, stamp and
    sections as :func:`daily_xlsx`, each table's header repeated on a new page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    title, lines, blocks = daily_blocks(report, stamp, say)
    big = ParagraphStyle("title", fontName=PDF_FONT, fontSize=16, leading=22, spaceAfter=6)
    heading = ParagraphStyle("heading", fontName=PDF_FONT, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)
    plain = ParagraphStyle("plain", fontName=PDF_FONT, fontSize=9, leading=13)
    story: list[Any] = [Paragraph(_escaped(title), big)]
    story += [Paragraph(_escaped(f"{label}: {value}"), plain) for label, value in lines]
    for block in blocks:
        story.append(Paragraph(_escaped(block.heading), heading))
        if block.note:
            story.append(Paragraph(_escaped(block.note), plain))
        if block.rows:
            cells = [[Paragraph(_escaped("" if v is None else str(v)), plain) for v in row] for row in block.rows]
            widths = [42 * mm, 30 * mm] + [(180 - 72) / max(1, len(block.rows[0]) - 2) * mm] * (len(block.rows[0]) - 2)
            table = Table(cells, colWidths=widths, repeatRows=1)
            table.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9fb3c8")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6eef5")),
                ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f0f4f8")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
            story.append(table)
        story.append(Spacer(1, 4 * mm))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                                 bottomMargin=15 * mm, title=title, author="Nanhai grid platform")
    document.build(story)
    return buffer.getvalue()


def _escaped(value: str) -> str:
    """Text for a reportlab Paragraph (a small markup language: &, < and > are markup)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
