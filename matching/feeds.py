"""Read a department's feed (CSV or Excel) as it really arrives, and check every row.

What departments send: UTF-8, UTF-8 with BOM or GB18030 CSV, or .xlsx; Chinese
or English headers (see ``FIELD_ALIASES``); a title row or two above the
header; full-width digits and letters; stray spaces; empty rows at the end.
Every non-empty row after the header is *read*, and is then either *accepted*
or *rejected* with its row number (as the department sees it in Excel) and
every reason: read = accepted + rejected, always.

A person is known by any of: his ID number, a phone, his name with a date of
birth, his name with an address (issue 21). Only a row that carries none of
these, or a byte no field may hold (NUL), is rejected. A malformed ID number,
phone, point (longitude, latitude, coordinate system), date of birth or
registration time does not cost the person his place in the net: the row is
accepted without that field (no ID number: the row is linked by what remains,
:mod:`matching.linkage`; no phone, no point, no reported time: the import time
counts) and a *field warning* names the row, the field and the reason, in the
words a rejection would have used. So do the optional travel columns (issue 22):
where the person came from (``origin``) and the day he arrived (``arrival_date``,
stored as ``arrived_on``), which the rules read.

Checks run on whole columns at once (pyarrow / numpy), so a million-row feed
takes seconds; :mod:`matching.identity` holds the same rules for one value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis.crs import NAMED, OFFSET_SYSTEMS, SourceCRS, parse_crs, points_to_wgs84
from gis.errors import ImportRejected
from matching.identity import CHECK_CHARS, WEIGHTS

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "证件号码", "身份证",
                  "id_number", "idnumber", "id_no", "idno"),
    "name": ("姓名", "name", "full_name"),
    "birth_date": ("出生日期", "出生年月日", "出生年月", "生日", "birth_date", "date_of_birth", "dob", "birthday"),
    "phone": ("手机号", "手机号码", "联系电话", "电话", "手机", "phone", "mobile", "tel"),
    "address": ("现住址", "住址", "居住地址", "现居住地址", "地址", "address", "home_address"),
    "lon": ("经度", "lon", "lng", "longitude", "x"),
    "lat": ("纬度", "lat", "latitude", "y"),
    "crs": ("坐标系", "crs", "coordinate_system"),
    "category": ("类别", "人员类别", "类型", "category", "type"),
    "reported_at": ("登记时间", "报告时间", "上报时间", "reported_at", "report_time", "date"),
    # travel (issue 22): where the person came from and the day he arrived, read by the rules
    "origin": ("出发地", "来自", "来源地", "途经地", "出发地点", "旅居地", "origin", "from", "travel_from"),
    "arrival_date": ("抵达日期", "返回日期", "到达日期", "抵达时间", "返回时间", "到达时间", "来南海日期", "返南日期",
                     "arrival_date", "arrived_on", "return_date"),
}
TRAVEL_FIELDS = ("origin", "arrival_date")  # optional columns: a feed without them is checked as before
MAX_ORIGIN_CHARS = 100
EARLIEST_ARRIVAL = date(2000, 1, 1)
IDENTITY_COLUMNS = ("id_number", "phone", "name")  # a header names at least one of them
NO_IDENTITY = ("无可用身份：须有身份证号，或手机号，或姓名加出生日期或住址 / no usable identity: an ID number, "
               "a phone, or a name with a date of birth or an address is needed")
HEADER_SCAN_ROWS = 20
READ_PROGRESS_ROWS = 10_000  # an Excel sheet's reading is reported every so many rows
# Limits on what a file may make of itself once opened (NANHAI_FEED_MAX_UNZIPPED_MB, NANHAI_FEED_MAX_ROWS): an
# .xlsx is a zip, and a sheet of empty rows compresses a thousandfold (a 2 MB file can unzip to 1.5 GB).
MAX_UNZIPPED_MB = 1024.0
MAX_ROWS = 2_000_000
BOMB_RATIO = 100  # no real sheet compresses this well; checked for parts over BOMB_MIN_BYTES
BOMB_MIN_BYTES = 10 * 1024 * 1024
ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
PLAUSIBLE_LON = (73.0, 136.0)  # mainland China and its islands
PLAUSIBLE_LAT = (3.0, 54.0)
CRS_WORDS = {**{k: k for k in OFFSET_SYSTEMS}, **{k: k for k in NAMED}, "火星坐标": "gcj02", "高德": "gcj02",
             "腾讯": "gcj02", "百度": "bd09", "百度坐标": "bd09", "国家2000": "cgcs2000", "4326": "wgs84",
             "4490": "cgcs2000", "epsg:4326": "wgs84", "epsg:4490": "cgcs2000"}


@dataclass
class Rejection:
    row: int
    reasons: list[str]

    @property
    def reason(self) -> str:
        return "；".join(self.reasons)


class FieldWarning(NamedTuple):
    """A field of an accepted row that was ignored (stored as missing), and why: ``field`` as the rejection
    report names fields (``phone``, ``lon, lat``, ``crs``, ``reported_at``), ``reason`` as a rejection words it."""

    row: int
    field: str
    reason: str


Check = tuple[str, np.ndarray, str | None]  # (reason, rows that fail, the field ignored: None rejects the row)


@dataclass
class FeedBatch:
    """A checked feed: the accepted rows (normalised, WGS84), the rejected ones, and the accepted rows' ignored
    fields (``field_warnings``)."""

    path: Path
    sha256: str
    rows_read: int
    accepted: pd.DataFrame
    rejections: list[Rejection] = field(default_factory=list)
    field_warnings: list[FieldWarning] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.rows_read == len(self.accepted) + len(self.rejections)

    @property
    def rows_warned(self) -> int:
        """How many accepted rows had at least one field ignored."""
        return len({warning.row for warning in self.field_warnings})


def _header_key(text: object) -> str:
    key = re.sub(r"[（(].*?[)）]", "", str(text or ""))
    return re.sub(r"[\s*＊:：]", "", key).lower()


ALIAS_INDEX = {_header_key(alias): name for name, aliases in FIELD_ALIASES.items() for alias in aliases}


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRejected("无法识别文件编码（应为 UTF-8 或 GB18030）/ cannot decode the file: use UTF-8 or GB18030")


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImportRejected(f"{name} 须为数字 / {name} must be a number, not {raw!r}") from None


def _check_unzipped(raw: bytes, name: str) -> None:
    """Refuse an .xlsx that would unzip to more than the limit, or whose parts compress like a zip bomb,
    before anything is parsed (the archive's directory says both)."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            parts = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ImportRejected(f"无法读取 Excel 文件 / cannot read {name}: {exc}") from exc
    limit_mb = _setting("NANHAI_FEED_MAX_UNZIPPED_MB", MAX_UNZIPPED_MB)
    total = sum(part.file_size for part in parts)
    if total > limit_mb * 1024 * 1024:
        raise ImportRejected(f"{name}: 解压后 {total / 1048576:.1f} MB，超过上限 {limit_mb:g} MB / unzips to "
                             f"{total / 1048576:.1f} MB, over the {limit_mb:g} MB limit (NANHAI_FEED_MAX_UNZIPPED_MB)")
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > BOMB_MIN_BYTES and ratio > BOMB_RATIO:
            raise ImportRejected(f"{name}: {part.filename} 解压后 {part.file_size / 1048576:.0f} MB，是压缩大小的 "
                                 f"{ratio:.0f} 倍，疑为压缩炸弹 / {part.filename} unzips to "
                                 f"{part.file_size / 1048576:.0f} MB, {ratio:.0f} times its compressed size: refused "
                                 f"as a zip bomb")


def _read_rows(path: Path, raw: bytes, text: str | None = None, limit: int | None = None,
               progress: Callable[[float], None] | None = None) -> list[tuple[int, list[str]]]:
    """The rows (all, or the first ``limit``) with their 1-based row numbers, as text cells. An Excel
    sheet reports how far it is read to ``progress`` (openpyxl reads a large sheet slowly, cell by cell)."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        _check_unzipped(raw, path.name)
        max_rows = int(_setting("NANHAI_FEED_MAX_ROWS", MAX_ROWS))
        try:
            book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        except Exception as exc:
            raise ImportRejected(f"无法读取 Excel 文件 / cannot read {path.name}: {exc}") from exc
        sheet = book.worksheets[0]
        expected = (sheet.max_row or _rows_in_sheet(raw, sheet)) if progress is not None else 0
        rows = []
        for i, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if i > max_rows:
                book.close()
                raise ImportRejected(f"{path.name}: 超过 {max_rows} 行 / more than {max_rows} rows "
                                     f"(NANHAI_FEED_MAX_ROWS)")
            if any(v is not None for v in row):  # empty rows are counted, not kept
                rows.append((i, ["" if v is None else _cell_text(v) for v in row]))
            if progress is not None and expected and i % READ_PROGRESS_ROWS == 0:
                progress(min(i / expected, 1.0))
        book.close()
        return rows
    if path.suffix.lower() not in (".csv", ".txt"):
        raise ImportRejected(f"不支持的格式 {path.suffix} / unsupported format: use .csv or .xlsx")
    reader = csv.reader(io.StringIO(_decode(raw) if text is None else text, newline=""))
    rows = []
    try:
        for cells in reader:
            rows.append((reader.line_num, cells))
            if limit is not None and len(rows) >= limit:
                break
    except csv.Error as exc:
        raise ImportRejected(f"CSV 第 {reader.line_num} 行无法解析 / CSV line {reader.line_num}: {exc}") from exc
    return rows


def _rows_in_sheet(raw: bytes, sheet: object) -> int:
    """How many rows an Excel sheet without a <dimension> holds (for progress only): its ``<row`` tags,
    counted in the unzipped XML (a small fraction of openpyxl's reading). 0 when the sheet's part cannot
    be found."""
    import zipfile

    part = getattr(sheet, "_worksheet_path", None)  # openpyxl's read-only sheets know it
    if not isinstance(part, str):
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive, archive.open(part) as xml:
            count, tail = 0, b""
            while chunk := xml.read(1 << 22):
                count += (tail + chunk[:3]).count(b"<row") + chunk.count(b"<row")  # tags across two reads too
                tail = chunk[-3:]
            return count
    except (KeyError, TypeError, zipfile.BadZipFile):
        return 0


def _lines(text: str, count: int) -> str:
    """The first ``count`` lines of ``text`` (all of it if it has fewer): where the header is looked for,
    without handing the csv module a copy of a hundred megabytes."""
    end = -1
    for _ in range(count):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[:end + 1]


def _cell_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _find_header(rows: list[tuple[int, list[str]]], name: str) -> tuple[int, dict[str, int]]:
    for position, (_, cells) in enumerate(rows[:HEADER_SCAN_ROWS]):
        columns: dict[str, int] = {}
        for index, cell in enumerate(cells):
            known = ALIAS_INDEX.get(_header_key(cell))
            if known and known not in columns:
                columns[known] = index
        if any(f in columns for f in IDENTITY_COLUMNS):
            return position, columns
    raise ImportRejected(f"{name}: 前 {HEADER_SCAN_ROWS} 行中找不到表头（需含 身份证号、手机号 或 姓名 列）/ no header "
                         f"row with an ID-number, phone or name column in the first {HEADER_SCAN_ROWS} rows")


def _clean(values: pa.Array, keep_inner_spaces: bool = False) -> pa.Array:
    array = pc.utf8_normalize(values, "NFKC")
    if keep_inner_spaces:
        return pc.utf8_trim_whitespace(array)
    if not _has_ascii_space(array):  # most columns: the regex pass over a million values is skipped
        return array
    return pc.replace_substring_regex(array, r"\s+", "")


def _has_nul(array: pa.Array) -> bool:
    """Whether any value holds a NUL (PostgreSQL text cannot; no real field has one): the raw buffer tells."""
    return bool((_text_bytes(array) == 0).any())


def _has_ascii_space(array: pa.Array) -> bool:
    """Whether any value holds a byte that RE2's ``\\s`` matches (tab, newline, form feed, return, space);
    in UTF-8 no other character contains those bytes, so the raw buffer tells."""
    return bool(np.isin(_text_bytes(array), np.frombuffer(b"\t\n\x0c\r ", dtype=np.uint8)).any())


def _plain_body(text: str, header_line: int, width: int) -> tuple[np.ndarray, list[pa.Array]] | None:
    """The body of a plain CSV (no quotes, no blank lines, every row ``width`` fields) parsed by
    pyarrow's C++ reader, with each row's line number; None when the file is not that plain."""
    import pyarrow.csv as pacsv

    text = text.replace("\r\n", "\n")
    start = 0
    for _ in range(header_line):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    body = text[start:].rstrip("\n")
    if not body or '"' in body or "\r" in body or "\n\n" in body:
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(body.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(width)], block_size=1 << 24),
            parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={f"c{i}": pa.string() for i in range(width)},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != body.count("\n") + 1:
        return None
    columns = [table.column(i).combine_chunks() for i in range(width)]
    numbers = np.arange(header_line + 1, header_line + 1 + table.num_rows, dtype=np.int64)
    return numbers, columns


def _check_quotes(rows: list[tuple[int, list[str]]], header_at: int, width: int, name: str) -> None:
    """Refuse a CSV where a quote that never closes swallowed the rows after it into one cell (the csv module
    reads on to the next quote or the end): a cell holding a line break followed by what looks like a whole
    row. A quoted address over two lines is no such thing and passes."""
    previous = rows[header_at][0]
    for number, cells in rows[header_at + 1:]:
        for cell in cells:
            if "\n" in cell and any(line.count(",") >= width - 1 for line in cell.split("\n")[1:]):
                opened = previous + 1
                raise ImportRejected(f"{name}: 第 {opened} 行的引号未闭合，其后 {number - opened} 行被并入一格 / the "
                                     f"quote opened on line {opened} never closes: the {number - opened} lines "
                                     f"after it were read into one cell")
        previous = number


def header_warnings(header: list[str]) -> list[str]:
    """A warning for each field that more than one column of ``header`` could be (the first is used): named,
    with the columns' letters and headings, so nobody finds out later which one was read."""
    from openpyxl.utils import get_column_letter

    seen: dict[str, list[int]] = {}
    for index, cell in enumerate(header):
        known = ALIAS_INDEX.get(_header_key(cell))
        if known:
            seen.setdefault(known, []).append(index)
    warnings = []
    for name, indexes in seen.items():
        if len(indexes) > 1:
            listed = "、".join(f"{get_column_letter(i + 1)} 列“{header[i]}”" for i in indexes)
            listed_en = ", ".join(f"{get_column_letter(i + 1)} ({header[i]})" for i in indexes)
            first = get_column_letter(indexes[0] + 1)
            warnings.append(f"{listed} 都可作为 {name}，已取 {first} 列 / {len(indexes)} columns could be {name}: "
                            f"{listed_en}; column {first} was read")
    return warnings


def _body_columns(path: Path, raw: bytes, progress: Callable[[float], None] | None = None
                  ) -> tuple[np.ndarray, dict[str, int], list, list[str]]:
    """Line numbers of the non-empty rows after the header, where each field's column is, the cells by column
    (pyarrow arrays on the fast path, else lists of text), and the header's cells."""
    if path.suffix.lower() in (".csv", ".txt"):
        text = _decode(raw)
        head = _read_rows(path, raw, text=_lines(text, HEADER_SCAN_ROWS + 1), limit=HEADER_SCAN_ROWS)
        header_at, columns = _find_header(head, path.name)
        header_line, header_cells = head[header_at]
        fast = _plain_body(text, header_line, len(header_cells))
        if fast is not None:
            numbers, cells = fast
            filled = np.zeros(len(numbers), dtype=bool)
            for column in cells:
                filled |= pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0).to_numpy(
                    zero_copy_only=False)
            mask = pa.array(filled)
            return numbers[filled], columns, [c.filter(mask) for c in cells], header_cells
        rows = _read_rows(path, raw, text=text)
        _check_quotes(rows, header_at, len(header_cells), path.name)
    else:
        rows = _read_rows(path, raw, progress=progress)
        header_at, columns = _find_header(rows, path.name)
        header_cells = rows[header_at][1]
    body = [(n, cells) for n, cells in rows[header_at + 1:] if any(str(c).strip() for c in cells)]
    width = max([len(cells) for _, cells in body] + [max(columns.values()) + 1])
    by_column = [[cells[i] if i < len(cells) else "" for _, cells in body] for i in range(width)]
    return np.array([n for n, _ in body], dtype=np.int64), columns, by_column, header_cells


@dataclass
class FeedBody:
    """A feed's rows as read, before any check: each non-empty row's number and its cells by field."""

    path: Path
    sha256: str
    numbers: np.ndarray
    cells: dict[str, pa.Array]
    warnings: list[str] = field(default_factory=list)  # about the file as a whole (two columns for one field)

    def __len__(self) -> int:
        return len(self.numbers)

    def rows(self, start: int, stop: int) -> FeedBody:
        """Rows ``start`` to ``stop`` (positions), in buffers of their own (a slice would carry, and pickle,
        the whole file's): the checks need nothing from other rows."""
        return FeedBody(self.path, self.sha256, self.numbers[start:stop].copy(),
                        {name: pa.concat_arrays([cells.slice(start, stop - start)])
                         for name, cells in self.cells.items()})


def read_body(path: str | Path, progress: Callable[[float], None] | None = None) -> FeedBody:
    """Read a feed file's rows; raise :class:`ImportRejected` when the file as a whole is unusable.
    ``progress`` hears the fraction read of a large Excel sheet (a CSV is read by pyarrow's C++ reader, too
    quickly to need it)."""
    path = Path(path)
    if not path.exists():
        raise ImportRejected(f"文件不存在 / no such file: {path}")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    numbers, columns, cells, header = _body_columns(path, raw, progress)
    by_field = {name: cells[index] if isinstance(cells[index], pa.Array) else pa.array(cells[index], type=pa.string())
                for name, index in columns.items()}
    return FeedBody(path, digest, numbers, by_field, header_warnings(header))


# A date as officials write it: 2020-01-19, 2020/1/19, 2020.1.19, 2020年1月19日 or 20200119, maybe with a time
# (2020-01-19 08:30, an Excel date cell's 2020-01-19 00:00:00, 8时30分), which is dropped. Whitespace is optional
# between the parts: most fields lose theirs when cleaned.
DATE_SPELLING = (r"^(?P<y>[0-9]{4})(?:\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*[-/.月]\s*(?P<d>[0-9]{1,2})\s*日?"
                 r"|(?P<mm>[0-9]{2})(?P<dd>[0-9]{2}))"
                 r"(?:\s*[T ]?\s*[0-9]{1,2}[:时][0-9]{1,2}(?:[:分][0-9]{1,2}(?:\.[0-9]+)?秒?)?分?"
                 r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?$")
EXCEL_EPOCH = np.datetime64("1899-12-30", "D")


def _dates(values: pa.Array, earliest: date, latest: date, serials: tuple[int, int] = (1, 80000),
           guess: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Days (``datetime64[D]``, NaT where none) of a column of dates as officials write them, and which given ones
    are unparseable or outside ``earliest`` … ``latest``.

    2020-01-19 and 20200119, what most systems write, are read by C++ ``strptime``; the other spellings of
    :data:`DATE_SPELLING` by one regular expression, then whole-array arithmetic (30 February is no date); the
    few values left are tried as Excel day numbers within ``serials`` and, with ``guess``, by pandas' guessing
    parser (which also reads "1990-01" or "Jan 2 1990", and "today": fine for a date of birth, too loose for a
    day that rules count from)."""
    text = pc.utf8_trim_whitespace(values)
    given = pc.fill_null(pc.greater(pc.binary_length(text), 0), False).to_numpy(zero_copy_only=False)
    days = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[D]")
    if not given.any():
        return days, np.zeros(len(text), dtype=bool)
    read = _written_days(text, days)
    rest = np.flatnonzero(given & ~read)
    if len(rest):  # 20200119, the other common spelling, read the same way
        written = text if len(rest) == len(text) else text.take(pa.array(rest))
        found = np.full(len(rest), np.datetime64("NaT"), dtype="datetime64[D]")
        compact = _written_days(written, found, compact=True)
        days[rest[compact]] = found[compact]
        rest = rest[~compact]
    if len(rest):
        written = text if len(rest) == len(text) else text.take(pa.array(rest))
        found, spelled = _spelled_days(written)
        days[rest] = found
        other = rest[~spelled]  # 30 February stays unparseable: no guess reads it otherwise
        if len(other):
            unspelled = text.take(pa.array(other)).to_pandas()
            if guess:
                loose = unspelled.str.replace(r"[年月.]", "-", regex=True).str.replace("日", "", regex=False)
                days[other] = _guessed_days(loose)
            serial = pd.to_numeric(unspelled, errors="coerce").to_numpy(dtype=float)
            excel = (serial >= serials[0]) & (serial <= serials[1])
            days[other[excel]] = EXCEL_EPOCH + np.floor(serial[excel]).astype(np.int64)
    days[(days < np.datetime64(earliest, "D")) | (days > np.datetime64(latest, "D"))] = np.datetime64("NaT")
    return days, given & np.isnat(days)


def _written_days(text: pa.Array, days: np.ndarray, compact: bool = False) -> np.ndarray:
    """Read the values written 2020-01-19 (or 2020-1-19), or with ``compact`` 20200119, into ``days`` with C++
    ``strptime``; returns which were. A year of other than four digits is left to the careful reading, and so
    is 30 February, which ``strptime`` rolls over to 1 March: found by the day it wrote."""
    stamps = pc.strptime(text, "%Y%m%d" if compact else "%Y-%m-%d", "s", error_is_null=True)
    read = stamps.is_valid().to_numpy(zero_copy_only=False)
    if not read.any():
        return read
    found = pc.cast(stamps, pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")[read]
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    first, last = offsets[:-1][read], offsets[1:][read]  # at least 5 bytes each ("Y-M-D")
    shaped = (last - first == 8) if compact else (data[first + 4] == ord("-"))
    written = (data[last - 2].astype(np.int64) - 48) * 10 + data[last - 1].astype(np.int64) - 48
    good = shaped & (written == (found - found.astype("datetime64[M]")).astype(np.int64) + 1)
    read[read] = good
    days[read] = found[good]
    return read


def _spelled_days(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The days of the values spelled as :data:`DATE_SPELLING` describes (NaT where none, or where no such day
    exists), and which values are so spelled."""
    parts = pc.extract_regex(text, DATE_SPELLING)
    spelled = parts.is_valid().to_numpy(zero_copy_only=False)
    days = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[D]")
    if not spelled.any():
        return days, spelled

    def number(*names: str) -> np.ndarray:
        joined = pc.binary_join_element_wise(*(pc.struct_field(parts, name) for name in names), "")
        return pc.cast(pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined),
                       pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)

    year, month, day = number("y"), number("m", "mm"), number("d", "dd")
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    found = months.astype("datetime64[D]") + (day - 1)
    real = spelled & (month >= 1) & (month <= 12) & (day >= 1) & (found.astype("datetime64[M]") == months)
    days[real] = found[real]
    return days, spelled


def _guessed_days(text: pd.Series) -> np.ndarray:
    """The days pandas' guessing parser reads in ``text`` (the wall date where a zone is given), NaT where none:
    all at once, or, when the values mix zones (which pandas refuses together), one by one."""
    def day(stamp: pd.Timestamp) -> np.datetime64:
        return np.datetime64("NaT") if pd.isna(stamp) else np.datetime64(stamp.tz_localize(None).date(), "D")

    try:
        guessed = pd.to_datetime(text, format="mixed", errors="coerce")
    except (ValueError, OverflowError):
        return np.array([day(pd.to_datetime(value, errors="coerce")) for value in text], dtype="datetime64[D]")
    if guessed.dt.tz is not None:
        guessed = guessed.dt.tz_localize(None)
    return guessed.to_numpy(dtype="datetime64[D]")


def _birth_dates(values: pa.Array, today: date) -> tuple[np.ndarray, np.ndarray]:
    """Dates of birth as 'YYYY-MM-DD' ("" where none), and which given ones are malformed or impossible
    (:func:`_dates`, Excel's day numbers from 1, a guess at other spellings; born from 1880 to today)."""
    days, bad = _dates(values, date(1880, 1, 1), today, serials=(1, 60000), guess=True)
    known = ~np.isnat(days)
    text = np.full(len(days), "", dtype=object)
    if known.any():
        text[known] = np.datetime_as_string(days[known], unit="D").astype(object)
    return text, bad


def _arrival_dates(values: pa.Array, today: date) -> tuple[np.ndarray, np.ndarray]:
    """Arrival days (``datetime64[ns]`` at midnight, NaT where none), and which given ones are unparseable or
    impossible: before 2000, or more than a day after ``today`` (a list written abroad may be a day ahead)."""
    days, bad = _dates(values, EARLIEST_ARRIVAL, today + timedelta(days=1))
    return days.astype("datetime64[ns]"), bad


def _origins(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Where each person came from, as written (NFKC, trimmed, runs of spaces made one: "湖北 武汉" and "New York"
    keep theirs), null where none; and which are longer than :data:`MAX_ORIGIN_CHARS` (ignored: no place is)."""
    if _needs_collapsing(values):  # most columns: the regex pass over a million values is skipped
        values = pc.replace_substring_regex(values, r"\s+", " ")
    length = pc.utf8_length(values)
    long = pc.greater(length, MAX_ORIGIN_CHARS)
    kept = pc.and_not(pc.greater(length, 0), long)
    return pc.if_else(kept, values, pa.scalar(None, pa.string())), long.to_numpy(zero_copy_only=False)


def _needs_collapsing(array: pa.Array) -> bool:
    """Whether any value holds whitespace other than single spaces (a tab, a line break, two spaces running)."""
    data = _text_bytes(array)
    return bool(np.isin(data, np.frombuffer(b"\t\n\x0c\r", dtype=np.uint8)).any() or
                ((data[:-1] == 32) & (data[1:] == 32)).any())


def check_body(body: FeedBody, default_crs: str = "wgs84",
               today: date | None = None) -> tuple[pd.DataFrame, list[Rejection], list[FieldWarning]]:
    """Check every row: the accepted ones (normalised, WGS84, with their row number), the rejected ones (every
    reason of the row, its field problems included, so the department fixes it all at once), and the fields of
    the accepted rows that were ignored, one warning each."""
    def column(name: str) -> pa.Array:
        if name not in body.cells:
            return pa.array([""] * len(body), type=pa.string())
        return _clean(body.cells[name], keep_inner_spaces=name in ("reported_at", *TRAVEL_FIELDS))

    # a travel field the feed lacks is neither made nor checked: a feed without them costs what it did
    data = {name: column(name) for name in FIELD_ALIASES if name not in TRAVEL_FIELDS or name in body.cells}
    checks, accepted = _check(data, default_crs, today or date.today())
    rejected = np.zeros(len(body), dtype=bool)
    for _message, mask, ignored in checks:
        if ignored is None:
            rejected |= mask
    problems: dict[int, list[str]] = {}
    warned: list[tuple[np.ndarray, int]] = []  # (positions, which check), gathered column by column
    for order, (message, mask, ignored) in enumerate(checks):
        if ignored is not None and mask.any():
            warned.append((np.flatnonzero(mask & ~rejected), order))
        for position in np.flatnonzero(mask & rejected):  # only the rejected rows, a few: one by one
            problems.setdefault(int(position), []).append(message)
    rejections = [Rejection(int(body.numbers[p]), reasons) for p, reasons in sorted(problems.items())]
    frame = accepted[~rejected].reset_index(drop=True)
    frame.insert(0, "row", body.numbers[~rejected])
    return frame, rejections, _field_warnings(body.numbers, checks, warned)


def _field_warnings(numbers: np.ndarray, checks: list[Check], warned: list[tuple[np.ndarray, int]]
                    ) -> list[FieldWarning]:
    """The warnings in row order (then the checks' order), each field of a row once (two reasons about one
    field are joined by "；", as a rejection's are)."""
    if not warned or not sum(len(positions) for positions, _ in warned):
        return []
    positions = np.concatenate([p for p, _ in warned])
    which = np.concatenate([np.full(len(p), order) for p, order in warned])
    order = np.lexsort((which, positions))
    found: dict[tuple[int, str], list[str]] = {}
    for position, check in zip(positions[order].tolist(), which[order].tolist(), strict=True):
        message, _mask, ignored = checks[check]
        found.setdefault((int(numbers[position]), str(ignored)), []).append(message)
    return [FieldWarning(row, name, "；".join(reasons)) for (row, name), reasons in found.items()]


def read_feed(path: str | Path, default_crs: str = "wgs84", today: date | None = None) -> FeedBatch:
    """Read and check a feed file; raise :class:`ImportRejected` when the file as a whole is unusable."""
    body = read_body(path)
    accepted, rejections, warnings = check_body(body, default_crs, today)
    return FeedBatch(path=body.path, sha256=body.sha256, rows_read=len(body), accepted=accepted,
                     rejections=rejections, field_warnings=warnings)


def _text_bytes(values: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of all the values of a string array, end to end (no copy)."""
    if len(values) == 0 or values.buffers()[2] is None:
        return np.zeros(0, dtype=np.uint8)
    kind = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=kind)[values.offset:values.offset + len(values) + 1]
    return np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]


def _fixed_width_bytes(values: pa.Array, width: int) -> np.ndarray:
    """The bytes of a string array whose values all have ``width`` bytes, one row per value (no copy)."""
    return _text_bytes(values).reshape(-1, width)


def _id_checks(ids: pa.Array, today: date) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """Vectorised GB 11643 checks; returns (checks, normalised ids)."""
    upper = pc.utf8_upper(ids)
    fifteen = pc.match_substring_regex(upper, r"^[0-9]{15}$").to_numpy(zero_copy_only=False)
    text = np.array(upper.to_pylist(), dtype=object)
    if fifteen.any():
        for i in np.flatnonzero(fifteen):
            first17 = text[i][:6] + "19" + text[i][6:]
            first_digits = np.frombuffer(first17.encode(), dtype=np.uint8) - 48
            text[i] = first17 + CHECK_CHARS[int(first_digits @ np.array(WEIGHTS)) % 11]
        upper = pa.array(text, type=pa.string())
    empty = pc.equal(pc.utf8_length(upper), 0).to_numpy(zero_copy_only=False)
    shaped = pc.match_substring_regex(upper, f"^{ID_SHAPE.pattern}$").to_numpy(zero_copy_only=False)
    wrong_shape = ~empty & ~shaped
    ok = np.flatnonzero(shaped)
    born_bad = np.zeros(len(text), dtype=bool)
    check_bad = np.zeros(len(text), dtype=bool)
    if len(ok):
        valid = upper.take(pa.array(ok))
        block = _fixed_width_bytes(valid, 18)
        digits = block[:, :17].astype(np.int64) - 48
        expected = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)[(digits @ np.array(WEIGHTS)) % 11]
        check_bad[ok] = block[:, 17] != expected
        births = pd.to_datetime(pc.utf8_slice_codeunits(valid, 6, 14).to_pandas(), format="%Y%m%d", errors="coerce")
        impossible = births.isna().to_numpy() | (births > pd.Timestamp(today)).to_numpy() | \
            (births.dt.year < 1880).to_numpy()
        born_bad[ok] = impossible
        check_bad &= ~born_bad
    checks = [("身份证号为空 / ID number is empty", empty),
              ("身份证号须为 18 位 / ID number must have 18 characters", wrong_shape),
              ("出生日期不存在 / date of birth impossible", born_bad),
              ("身份证校验位错误 / ID-card check digit wrong", check_bad)]
    return checks, text


def _phone(phones: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    stripped = pc.replace_substring_regex(phones, r"^(\+86|0086)", "")
    stripped = pc.replace_substring_regex(stripped, r"^86(1[3-9][0-9]{9})$", r"\1")
    mobile_dashed = pc.replace_substring_regex(stripped, r"^(1[3-9][0-9])-?([0-9]{4})-?([0-9]{4})$", r"\1\2\3")
    good = pc.or_(pc.match_substring_regex(mobile_dashed, r"^1[3-9][0-9]{9}$"),
                  pc.match_substring_regex(mobile_dashed, r"^0[1-9][0-9]{1,2}-?[0-9]{7,8}$"))
    empty = pc.equal(pc.utf8_length(phones), 0)
    bad = pc.invert(pc.or_(good, empty)).to_numpy(zero_copy_only=False)
    return bad, np.array(mobile_dashed.to_pylist(), dtype=object)


def _numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, NaN where empty or unparseable; whether a value was given)."""
    given = pc.greater(pc.utf8_length(values), 0)
    try:  # a clean column, in C++
        numbers = pc.cast(pc.if_else(given, values, pa.scalar(None, values.type)), pa.float64())
        return numbers.to_numpy(zero_copy_only=False), given.to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # some value is not a number: find which, one by one
        text = values.to_pandas()
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float), (text != "").to_numpy()


def _coordinates(data: dict[str, pa.Array], default_crs: str) -> tuple[list[Check], pd.DataFrame]:
    """The point of each row in WGS84 (NaN where there is none, or where it is malformed: each such point is
    a warning, named after the field it is about, and the row is located by its address instead)."""
    lon, has_lon = _numbers(data["lon"])
    lat, has_lat = _numbers(data["lat"])
    unparseable = (has_lon & np.isnan(lon)) | (has_lat & np.isnan(lat))
    incomplete = (has_lon != has_lat) & ~unparseable
    codes, words = pd.factorize(pc.utf8_lower(data["crs"]).to_pandas())  # a handful of distinct spellings
    named = np.array([CRS_WORDS.get(w, "?") if w else default_crs for w in words] + [default_crs], dtype=object)
    crs_name = named[codes]
    crs_unknown = (crs_name == "?") & has_lon & has_lat
    present = has_lon & has_lat & ~unparseable & ~crs_unknown
    wlon, wlat = np.full(len(lon), np.nan), np.full(len(lat), np.nan)
    for name in set(crs_name[present]):
        rows = present & (crs_name == name)
        with np.errstate(invalid="ignore"):  # "inf" parses; it ends up implausible, below, without a warning
            wlon[rows], wlat[rows] = points_to_wgs84(lon[rows], lat[rows], parse_crs(name) or SourceCRS())
    implausible = present & ~((wlon >= PLAUSIBLE_LON[0]) & (wlon <= PLAUSIBLE_LON[1]) &
                              (wlat >= PLAUSIBLE_LAT[0]) & (wlat <= PLAUSIBLE_LAT[1]))
    checks: list[Check] = [
        ("坐标无法解析 / coordinates unparseable", unparseable, "lon, lat"),
        ("经纬度只有一个 / only one of longitude and latitude", incomplete, "lon, lat"),
        ("坐标系无法识别 / coordinate system unknown (WGS84, GCJ02, BD09, CGCS2000)", crs_unknown, "crs"),
        ("坐标超出合理范围 / coordinates outside any plausible range", implausible, "lon, lat")]
    kept = present & ~implausible
    frame = pd.DataFrame({"lon": np.where(kept, wlon, np.nan), "lat": np.where(kept, wlat, np.nan),
                          "crs": np.where(kept, crs_name, None)})
    return checks, frame


def _reported_at(values: pa.Array) -> tuple[np.ndarray, pd.Series]:
    for word, mark in (("年", "-"), ("月", "-"), ("日", " ")):
        values = pc.replace_substring(values, word, mark)
    text = pc.utf8_trim_whitespace(values).to_pandas()
    present = text.where(text != "")
    parsed = pd.to_datetime(present, format="ISO8601", errors="coerce")  # fast path: what most systems write
    retry = parsed.isna() & present.notna()
    if retry.any():  # other spellings, and Excel's day numbers (no ISO 8601 date is also such a number)
        parsed[retry] = pd.to_datetime(present[retry], format="mixed", errors="coerce")
        serial = pd.to_numeric(present[retry], errors="coerce")
        excel = serial[serial.between(20000, 80000)]
        if len(excel):
            parsed[excel.index] = pd.Timestamp("1899-12-30") + pd.to_timedelta(excel, unit="D")
    bad = ((text != "") & parsed.isna()).to_numpy()
    localised = parsed.dt.tz_localize("Asia/Shanghai", ambiguous="NaT", nonexistent="NaT") \
        if parsed.dt.tz is None else parsed
    return bad, localised.dt.tz_convert(UTC)


def _check(data: dict[str, pa.Array], default_crs: str, today: date) -> tuple[list[Check], pd.DataFrame]:
    """Every check of every row, in the order a row's reasons are listed, and the rows normalised: a field that
    fails a check that ignores it (ID number, phone, date of birth, point, reported time, origin, arrival) is
    already missing there. The travel fields are checked only when the feed has them (``data`` then holds them).

    A row is identified by a valid ID number (``identified``); without one it must carry a valid phone, or a name
    with a valid date of birth or an address, and is linked later. A malformed ID number on a row that has such
    other identity is a field warning; on a row that has none, a rejection (with the ID number's reasons).
    """
    id_checks, ids = _id_checks(data["id_number"], today)
    names = np.array(data["name"].to_pylist(), dtype=object)
    phone_bad, phones = _phone(data["phone"])
    phones[phone_bad] = ""  # as if no phone were given: none is keyed, sealed or masked
    birth, birth_bad = _birth_dates(data["birth_date"], today)
    addresses = np.array(data["address"].to_pylist(), dtype=object)
    id_empty = id_checks[0][1]
    id_bad = np.logical_or.reduce([mask for _message, mask in id_checks[1:]])
    identified = ~id_empty & ~id_bad
    has_name = names != ""
    other_identity = (phones != "") | (has_name & ((birth != "") | (addresses != "")))
    ids[~identified] = ""  # a malformed ID number keys nothing: the row is linked by what else it carries
    birth[identified] = ""  # an identified row's date of birth is its ID number's (linkage reads it there)
    coordinate_checks, coordinates = _coordinates(data, default_crs)
    time_bad, reported = _reported_at(data["reported_at"])  # NaT where unparseable: the import time counts
    rows = len(names)
    origins, origin_long = _origins(data["origin"]) if "origin" in data else \
        (pa.nulls(rows, pa.string()), np.zeros(rows, dtype=bool))
    arrived, arrival_bad = _arrival_dates(data["arrival_date"], today) if "arrival_date" in data else \
        (np.full(rows, np.datetime64("NaT"), dtype="datetime64[ns]"), np.zeros(rows, dtype=bool))
    nul_checks: list[Check] = [(f"{name} 含空字符（NUL）/ {name} contains a NUL byte",
                                pc.match_substring(values, "\x00").to_numpy(zero_copy_only=False), None)
                               for name, values in data.items() if _has_nul(values)]
    checks: list[Check] = [
        *nul_checks,
        *((message, mask & ~other_identity, None) for message, mask in id_checks[1:]),
        *((message, mask & other_identity, "id_number") for message, mask in id_checks[1:]),
        (NO_IDENTITY, id_empty & ~other_identity, None),
        ("手机号格式错误 / phone malformed", phone_bad, "phone"),
        ("出生日期无法解析或不合理 / date of birth unparseable or impossible", birth_bad & ~identified, "birth_date"),
        *coordinate_checks,
        ("登记时间无法解析 / reported_at unparseable", time_bad, "reported_at"),
        (f"出发地超过 {MAX_ORIGIN_CHARS} 字 / origin longer than {MAX_ORIGIN_CHARS} characters", origin_long, "origin"),
        ("抵达日期无法解析或不合理 / arrival date unparseable or impossible", arrival_bad, "arrival_date")]
    frame = pd.DataFrame({
        "id_number": ids, "name": names, "phone": phones, "birth": birth, "identified": identified,
        "address": addresses, "category": data["category"].to_pylist(),
        "reported_at": reported, "origin": origins.to_pandas(), "arrived_on": arrived,
    })
    return checks, pd.concat([frame, coordinates], axis=1)
