"""A staff roster as a district office keeps it, drawn from the seeded grid workers (synthetic, never real people).

The seeded district has thousands of grid workers and supervisors who have accounts but no password: an office
onboards them by importing its roster (``/admin/users/`` or ``gridctl users import``). This writes such a
roster for the demo and the walkthrough: the first ``rows`` seeded workers with their names, usernames and
grids, and a made-up mobile number each (``199`` numbers, deterministic per seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Connection, text

HEADER = ("姓名", "手机号", "角色", "网格编码", "用户名")


def roster_rows(conn: Connection, rows: int = 300, seed: int = 20201202) -> list[tuple[str, str, str, str, str]]:
    """``rows`` roster lines (name, phone, role, grid codes, username) for seeded workers with no password."""
    found = conn.execute(text(
        "SELECT u.username, u.display_name, string_agg(g.code, '；' ORDER BY g.code) AS grids "
        "FROM users u JOIN user_grids ug ON ug.user_id = u.id JOIN grids g ON g.id = ug.grid_id "
        "WHERE u.role = 'worker' AND u.synthetic AND u.password_hash IS NULL AND NOT u.must_set_password "
        "AND u.active GROUP BY u.id ORDER BY u.username LIMIT :n"), {"n": rows}).all()
    rng = np.random.default_rng(seed)
    phones = rng.choice(10 ** 8, size=len(found), replace=False)
    return [(row.display_name or row.username, f"199{phone:08d}", "网格员", row.grids, row.username)
            for row, phone in zip(found, phones, strict=True)]


def write_roster(conn: Connection, path: str | Path, rows: int = 300, seed: int = 20201202) -> int:
    """Write the roster (.xlsx or .csv by the name's suffix); returns the number of people in it."""
    lines = roster_rows(conn, rows, seed)
    target = Path(path)
    if target.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "网格员花名册"
        sheet.append(list(HEADER))
        for line in lines:
            sheet.append(list(line))
        for cell in sheet["B"]:  # phones as text, as offices keep them (no 1.99E+10)
            cell.number_format = "@"
        book.save(target)
    else:
        import csv

        with target.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            writer.writerows(lines)
    return len(lines)
