"""Staff rosters: reading (CSV in any encoding an office uses, Excel), row-numbered and field-named errors,
dry runs that store nothing, all-or-nothing imports, and a 300-row roster of the reference district."""

from __future__ import annotations

import time

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from accounts.activation import activate
from accounts.actor import Actor
from accounts.roster import import_roster, preview_roster, read_roster, write_codes
from gis.errors import ImportRejected, PermissionDenied
from tests.accounts.conftest import ADMIN_ACTOR, NOW, new_phone

HEADER = ["姓名", "手机号", "角色", "网格编码", "村居编码", "镇街编码", "用户名"]


def write_csv(path, rows, encoding="utf-8-sig", header=HEADER, title=True):
    lines = (["南海区网格人员花名册（2026 年 12 月）"] if title else []) + [",".join(header)]
    lines += [",".join(f'"{cell}"' if "," in cell else cell for cell in row) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_xlsx(path, rows, header=HEADER):
    book = Workbook()
    sheet = book.active
    sheet.append(["南海区网格人员花名册"])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def problems_of(row):
    return {p.field: p.message for p in row.problems}


def test_rows_are_read_with_their_numbers_and_each_problem_names_its_field(tmp_path):
    phone = new_phone()
    rows = read_roster(write_csv(tmp_path / "roster.csv", [
        ["陈志伟", phone, "网格员", "440605011001001；440605011001002", "", "", ""],  # row 3: fine
        ["", "13800000000", "网格员", "440605011001001", "", "", ""],  # 4: no name
        ["李嘉欣", "1380000", "网格员", "440605011001001", "", "", ""],  # 5: bad phone
        ["黄俊杰", new_phone(), "队长", "440605011001001", "", "", ""],  # 6: unknown role
        ["梁丽华", new_phone(), "", "", "", "", ""],  # 7: no role
        ["何建国", phone, "网格员", "440605011001003", "", "", ""],  # 8: phone repeats row 3
        ["罗敏婷", new_phone(), "网格员", "44060501100100", "", "", ""],  # 9: grid code of 14 digits
        ["冯文强", "", "网格员", "440605011001004", "", "", ""],  # 10: neither phone nor username
        ["林海燕", "", "supervisor", "", "4406050110", "", "lin.haiyan"],  # 11: community code of 10 digits
        ["张家明", "", "网格长", "", "440605011001", "", "lin.haiyan"],  # 12: username repeats row 11
        ["王淑芬", new_phone(), "commander", "", "", "4406050", ""],  # 13: town code of 7 digits
        ["吴振宇", new_phone(), "统计员", "", "", "", "x"],  # 14: username too short
        ["", "", "", "", "", "", ""],  # 15: blank, left out
    ]))
    assert [r.row for r in rows] == list(range(3, 15))
    by_row = {r.row: problems_of(r) for r in rows}
    assert by_row[3] == {} and rows[0].grid_codes == ("440605011001001", "440605011001002")
    assert rows[0].role == "worker" and rows[0].phone == phone
    assert "name" in by_row[4] and "phone" in by_row[5] and "队长" in by_row[6]["role"]
    assert "required" in by_row[7]["role"]
    assert "row 3" in by_row[8]["phone"] and "第 3 行" in by_row[8]["phone"]
    assert "15 digits" in by_row[9]["grid_codes"]
    assert "phone" in by_row[10] and "username" in by_row[10]["phone"]
    assert "12 digits" in by_row[11]["community_code"]
    assert "row 11" in by_row[12]["username"]
    assert "9 digits" in by_row[13]["town_code"]
    assert "username" in by_row[14]
    assert str(rows[1].problems[0]).startswith("姓名 / name: ")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_every_encoding_an_office_uses_and_excel_read_the_same(tmp_path, encoding):
    rows = [["陈志伟", "+86 139 1234 5678", "网格员", "440605011001001、440605011001002", "440605011001", "", ""],
            ["李嘉欣", "13912345679", "网格长", "", "440605011001", "440605011", "li.jiaxin"]]
    from_csv = read_roster(write_csv(tmp_path / "r.csv", rows, encoding))
    from_xlsx = read_roster(write_xlsx(tmp_path / "r.xlsx", rows))
    assert [(r.name, r.phone, r.role, r.grid_codes, r.community_code, r.town_code, r.username) for r in from_csv] == \
        [(r.name, r.phone, r.role, r.grid_codes, r.community_code, r.town_code, r.username) for r in from_xlsx] == [
        ("陈志伟", "13912345678", "worker", ("440605011001001", "440605011001002"), "440605011001", None, None),
        ("李嘉欣", "13912345679", "supervisor", (), "440605011001", "440605011", "li.jiaxin")]
    assert [r.row for r in from_xlsx] == [3, 4] and [r.row for r in from_csv] == [3, 4]


def test_english_headers_and_a_file_without_a_header_or_in_another_format(tmp_path):
    rows = read_roster(write_csv(tmp_path / "en.csv", [["Chen", new_phone(), "worker", "440605011001001"]],
                                 header=["name", "phone", "role", "grid_codes"], title=False))
    assert rows[0].row == 2 and rows[0].role == "worker"
    with pytest.raises(ImportRejected, match="no header row"):
        read_roster(write_csv(tmp_path / "x.csv", [["a", "b"]], header=["foo", "bar"]))
    (tmp_path / "r.pdf").write_bytes(b"%PDF")
    with pytest.raises(ImportRejected, match="unsupported format"):
        read_roster(tmp_path / "r.pdf")


def _users(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM users")).scalar_one()


def test_the_database_checks_name_the_row_and_field_and_a_dry_run_stores_nothing(staff_engine, vault, tmp_path):
    with staff_engine.connect() as conn:
        other_town_grid = conn.execute(text("SELECT code FROM grids WHERE code NOT LIKE '440605011%' "
                                            "ORDER BY code LIMIT 1")).scalar_one()
    rows = read_roster(write_csv(tmp_path / "db.csv", [
        ["陈志伟", new_phone(), "网格员", "440605011001001", "", "", ""],  # 3: fine
        ["李嘉欣", new_phone(), "网格员", "440605011001999", "", "", ""],  # 4: unknown grid
        ["黄俊杰", new_phone(), "网格员", "440605011001001", "440605011004", "", ""],  # 5: grid of another community
        ["梁丽华", new_phone(), "网格员", f"440605011001001；{other_town_grid}", "", "", ""],  # 6: two communities
        ["何建国", new_phone(), "网格长", "", "", "", ""],  # 7: supervisor without community
        ["罗敏婷", new_phone(), "指挥中心", "440605011001001", "", "", ""],  # 8: commander with grids
        ["冯文强", new_phone(), "网格长", "", "440605011001", "440605121", ""],  # 9: community of another town
        ["林海燕", new_phone(), "统计员", "", "", "440605999", ""],  # 10: unknown town
        ["张家明", new_phone(), "网格员", "440605011001002", "", "", "demo_worker"],  # 11: an existing account
    ]))
    with staff_engine.connect() as conn:
        before = _users(conn)
        outcomes = preview_roster(conn, ADMIN_ACTOR, rows, vault)
        assert _users(conn) == before
    by_row = {o.row: o for o in outcomes}
    assert by_row[3].action == "create" and by_row[3].username.startswith("w1390")
    assert "unknown grid 440605011001999" in problems_of(by_row[4])["grid_codes"]
    assert "not in community 440605011004" in problems_of(by_row[5])["grid_codes"]
    assert "different communities" in problems_of(by_row[6])["grid_codes"]
    assert "community" in problems_of(by_row[7])["community_code"]
    assert "no grids" in problems_of(by_row[8])["grid_codes"]
    assert "not in town 440605121" in problems_of(by_row[9])["town_code"]
    assert "unknown town" in problems_of(by_row[10])["town_code"]
    assert by_row[11].action == "update" and by_row[11].username == "demo_worker"
    assert {o.row for o in outcomes if o.action == "error"} == {4, 5, 6, 7, 8, 9, 10}

    with pytest.raises(ImportRejected) as refused, staff_engine.begin() as conn:
        import_roster(conn, ADMIN_ACTOR, rows, vault, NOW, "db.csv")
    assert "7 rows have errors: nothing was stored" in str(refused.value)
    assert {p.feature for p in refused.value.problems} == {f"第 {n} 行 / row {n}" for n in (4, 5, 6, 7, 8, 9, 10)}
    with staff_engine.connect() as conn:
        assert _users(conn) == before
    with staff_engine.connect() as conn, pytest.raises(PermissionDenied):
        preview_roster(conn, Actor(1, "c", "commander"), rows, vault)


def test_an_import_creates_accounts_grids_and_codes_then_a_second_one_changes_only_what_changed(
        staff_engine, vault, tmp_path):
    worker_phone, supervisor_phone, reporter_phone = new_phone(), new_phone(), new_phone()
    first = [["陈志伟", worker_phone, "网格员", "440605011010001；440605011010002", "", "", ""],
             ["李嘉欣", supervisor_phone, "网格长", "", "440605011010", "", "li.jiaxin.r"],
             ["黄俊杰", reporter_phone, "统计员", "", "", "440605011", ""]]
    rows = read_roster(write_csv(tmp_path / "first.csv", first))
    with staff_engine.begin() as conn:
        result = import_roster(conn, ADMIN_ACTOR, rows, vault, NOW, "first.csv")
    assert result.counts() == {"create": 3, "update": 0, "unchanged": 0, "error": 0}
    worker = result.outcomes[0].username
    assert worker == f"w{worker_phone[:3]}{worker_phone[-4:]}" and result.outcomes[1].username == "li.jiaxin.r"
    assert [c.activation.username for c in result.codes] == [worker, "li.jiaxin.r", result.outcomes[2].username]
    with staff_engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT u.username, u.role, u.must_set_password, u.password_hash, u.activation_hash, u.phone_masked, "
            "u.phone_sealed, u.synthetic, t.code AS town, array_agg(g.code ORDER BY g.code) AS grids FROM users u "
            "LEFT JOIN towns t ON t.id = u.town_id LEFT JOIN user_grids ug ON ug.user_id = u.id "
            "LEFT JOIN grids g ON g.id = ug.grid_id WHERE u.username = ANY(:names) GROUP BY u.id, t.code "
            "ORDER BY u.id"), {"names": [o.username for o in result.outcomes]}).all()
        audit = conn.execute(text("SELECT action, subject, reason FROM audit_log WHERE subject = ANY(:s) "
                                  "ORDER BY id"), {"s": [worker, "first.csv"]}).all()
    assert [s.grids for s in stored] == [["440605011010001", "440605011010002"], [None], [None]]
    assert all(s.must_set_password and s.password_hash is None and len(s.activation_hash) == 32 for s in stored)
    assert stored[2].town == "440605011" and stored[0].phone_masked == f"139****{worker_phone[-4:]}"
    assert vault.unseal(stored[0].phone_sealed) == worker_phone and not stored[0].synthetic
    assert all(result.codes[0].activation.code not in str(s) for s in stored), "no code is stored in clear"
    assert [a.action for a in audit] == ["user.create", "roster.import"] and worker_phone not in str(audit)

    # the codes sheet: one row per new account, and its codes work
    sheet = load_workbook(tmp_path / "codes.xlsx") if write_codes(tmp_path / "codes.xlsx", result.codes) else None
    values = list(sheet.active.iter_rows(values_only=True))
    assert len(values) == 4 and values[1][1] == worker and values[1][5] == result.codes[0].activation.code
    with staff_engine.begin() as conn:
        assert activate(conn, worker, values[1][5], "桂城巡查-二零二六-冬", "roster-test", vault, NOW) is not None

    # the same roster again: nothing changes; then one grid less and a new name: an update
    with staff_engine.begin() as conn:
        again = import_roster(conn, ADMIN_ACTOR, rows, vault, NOW, "first.csv")
    assert again.counts() == {"create": 0, "update": 0, "unchanged": 3, "error": 0} and again.codes == []
    first[0][0], first[0][3] = "陈志强", "440605011010001"
    with staff_engine.begin() as conn:
        changed = import_roster(conn, ADMIN_ACTOR, read_roster(write_csv(tmp_path / "second.csv", first)), vault,
                                NOW, "second.csv")
        grids = conn.execute(text("SELECT g.code FROM user_grids ug JOIN grids g ON g.id = ug.grid_id "
                                  "JOIN users u ON u.id = ug.user_id WHERE u.username = :u"), {"u": worker}).scalars()
        name = conn.execute(text("SELECT display_name FROM users WHERE username = :u"), {"u": worker}).scalar_one()
        active = conn.execute(text("SELECT must_set_password FROM users WHERE username = :u"), {"u": worker}).scalar()
    assert changed.counts()["update"] == 1 and changed.outcomes[0].changes == ["姓名 / name", "网格 / grids"]
    assert list(grids) == ["440605011010001"] and name == "陈志强" and active is False, "his password is kept"


def test_a_300_row_roster_of_the_reference_district_imports_in_one_go(staff_engine, vault, tmp_path):
    with staff_engine.connect() as conn:
        grids = conn.execute(text("SELECT g.code, c.code AS community FROM grids g JOIN communities c "
                                  "ON c.id = g.community_id ORDER BY g.code OFFSET 100 LIMIT 270")).all()
        communities = sorted({g.community for g in grids})[:20]
        towns = conn.execute(text("SELECT code FROM towns ORDER BY code")).scalars().all()
    rows = [[f"网格员{i:03d}", new_phone(), "网格员", grid.code, grid.community, "", ""]
            for i, grid in enumerate(grids)]
    rows += [[f"网格长{i:02d}", new_phone(), "网格长", "", code, code[:9], ""] for i, code in enumerate(communities)]
    rows += [[f"指挥员{i}", new_phone(), "指挥中心", "", "", code, ""] for i, code in enumerate(towns)]
    rows += [["区统计员", new_phone(), "统计员", "", "", "", ""], ["区管理员", new_phone(), "管理员", "", "", "", ""],
             ["区指挥员", new_phone(), "commander", "", "", "", ""]]
    assert len(rows) == 300
    path = write_xlsx(tmp_path / "roster-300.xlsx", rows)
    started = time.monotonic()
    parsed = read_roster(path)
    with staff_engine.begin() as conn:
        result = import_roster(conn, ADMIN_ACTOR, parsed, vault, NOW, path.name)
    elapsed = time.monotonic() - started
    assert result.counts() == {"create": 300, "update": 0, "unchanged": 0, "error": 0}
    assert len(result.codes) == 300 and len({c.activation.code for c in result.codes}) == 300
    assert write_codes(tmp_path / "codes.xlsx", result.codes) == 300
    assert elapsed < 60, f"300 rows took {elapsed:.1f} s"
    with staff_engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FILTER (WHERE role = 'worker'), count(*) FILTER (WHERE "
                                   "role = 'commander' AND town_id IS NOT NULL) FROM users WHERE NOT synthetic "
                                   "AND must_set_password AND username ~ '^[wscra]1390'")).one()
    assert stored[0] >= 270 and stored[1] >= len(towns)
