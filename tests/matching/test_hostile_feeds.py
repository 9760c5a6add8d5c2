"""Hostile or broken feed files (issue 20): each is refused, or its bad rows are, with a message that names the
line or row — never a crash, a database traceback, or a person silently lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from gis.errors import ImportRejected
from matching.feeds import read_feed
from tests.matching.feedfiles import HEADER, valid_id

ROW = ["", "梁志伟", "", "13800000001", "桂城街道南海大道1号", "113.15", "23.03", "WGS84", "返岗人员", "2026-12-01"]


def _row(serial: int, **changes: str) -> list[str]:
    row = list(ROW)
    row[0], row[2] = str(serial), valid_id(serial % 1000, born=f"1985{1 + serial // 1000:02d}03")
    for name, value in changes.items():
        row[HEADER.index(name)] = value
    return row


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([",".join(HEADER), *lines]) + "\n", encoding="utf-8")
    return path


def test_a_quote_that_never_closes_is_refused_naming_the_line_it_opened_on(tmp_path):
    lines = [",".join(_row(1)), ",".join(_row(2, **{HEADER[4]: '"桂城街道南海大道2号'})), ",".join(_row(3)),
             ",".join(_row(4))]
    with pytest.raises(ImportRejected, match="第 3 行") as refused:
        read_feed(_csv(tmp_path / "quote.csv", lines))
    assert "line 3" in str(refused.value)


def test_a_quoted_address_over_two_lines_is_still_one_row(tmp_path):
    lines = [",".join(_row(1)), ",".join(_row(2, **{HEADER[4]: '"桂城街道\n南海大道2号"'})), ",".join(_row(3))]
    batch = read_feed(_csv(tmp_path / "multiline.csv", lines))
    assert batch.rows_read == 3 and len(batch.accepted) == 3 and batch.balanced


def test_a_nul_byte_anywhere_rejects_its_row_with_the_field_named(tmp_path):
    lines = [",".join(_row(1)), ",".join(_row(2, **{HEADER[4]: "桂城\x00街道"})),
             ",".join(_row(3, **{HEADER[8]: "返岗\x00"})), ",".join(_row(4, **{HEADER[1]: "何\x00丽华"}))]
    batch = read_feed(_csv(tmp_path / "nul.csv", lines))
    assert batch.rows_read == 4 and len(batch.accepted) == 1 and batch.balanced
    reasons = {r.row: r.reason for r in batch.rejections}
    assert set(reasons) == {3, 4, 5}
    assert "address" in reasons[3] and "category" in reasons[4] and "name" in reasons[5]
    assert all("NUL" in reason for reason in reasons.values())


def test_an_excel_sheet_too_large_unzipped_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for serial in range(1, 3001):
        sheet.append(_row(serial))
    book.save(tmp_path / "big.xlsx")
    monkeypatch.setenv("NANHAI_FEED_MAX_UNZIPPED_MB", "0.2")
    with pytest.raises(ImportRejected, match="0.2 MB"):
        read_feed(tmp_path / "big.xlsx")
    monkeypatch.setenv("NANHAI_FEED_MAX_UNZIPPED_MB", "50")
    monkeypatch.setenv("NANHAI_FEED_MAX_ROWS", "1000")
    with pytest.raises(ImportRejected, match="1000"):
        read_feed(tmp_path / "big.xlsx")
    monkeypatch.delenv("NANHAI_FEED_MAX_ROWS")
    assert read_feed(tmp_path / "big.xlsx").rows_read == 3000


def test_a_zip_bomb_shaped_sheet_is_refused_with_the_default_limits(tmp_path):
    """Empty rows compress a thousandfold: a sheet that unzips to far more than its file is refused unread."""
    import zipfile

    book = Workbook()
    book.active.append(HEADER)
    book.save(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(tmp_path / "bomb.xlsx") as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    rows = b"<row/>" * 3_000_000
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(b"</row>", b"</row>" + rows, 1)
    with zipfile.ZipFile(tmp_path / "bomb.xlsx", "w", zipfile.ZIP_DEFLATED) as bomb:
        for name, data in parts.items():
            bomb.writestr(name, data)
    assert (tmp_path / "bomb.xlsx").stat().st_size < 2_000_000
    with pytest.raises(ImportRejected, match="times its compressed size"):
        read_feed(tmp_path / "bomb.xlsx")


def test_two_columns_for_one_field_are_named_in_a_warning_not_picked_silently(tmp_path):
    header = [*HEADER, "证件号码"]  # a second ID-number column
    path = tmp_path / "twice.csv"
    path.write_text("\n".join([",".join(header), ",".join([*_row(1), valid_id(2)])]) + "\n", encoding="utf-8")
    from matching.feeds import read_body

    body = read_body(path)
    assert len(body.warnings) == 1
    warning = body.warnings[0]
    assert "身份证号码" in warning and "证件号码" in warning and "id_number" in warning
    assert "C" in warning and "K" in warning, "the columns are named as a spreadsheet names them"


def test_the_import_passes_the_warning_on(database_factory, tmp_path):
    from matching.pipeline import import_feed

    engine = database_factory("nanhai_twice")
    header = [*HEADER, "身份证号"]
    path = tmp_path / "twice.csv"
    path.write_text("\n".join([",".join(header), ",".join([*_row(1), valid_id(2)])]) + "\n", encoding="utf-8")
    result = import_feed(engine, path, "公安")
    assert result.rows_read == 1 and len(result.warnings) == 1 and "身份证号" in result.warnings[0]
