"""The demo roster: seeded grid workers who cannot log in yet, written as an office's sheet; importing it
onboards them — each gets an activation code, and one activates and logs in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from accounts.activation import activate
from accounts.actor import ADMIN, Actor
from accounts.repository import check_login
from accounts.roster import import_roster, preview_roster, read_roster
from gridctl import main
from matching.privacy import load_vault

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ADMIN_ACTOR = Actor(None, "test_admin", ADMIN)


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    return database_factory("nanhai_roster_demo", copy_of=seeded_engine)


def test_the_roster_onboards_seeded_workers_with_codes(engine, tmp_path):
    path = tmp_path / "花名册.xlsx"
    result = CliRunner().invoke(main, ["demo", "roster", str(path), "--rows", "6"],
                                env={"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    assert result.exit_code == 0, result.output
    sheet = load_workbook(path).active
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0] == ("姓名", "手机号", "角色", "网格编码", "用户名") and len(lines) == 7
    assert all(isinstance(line[1], str) and len(line[1]) == 11 for line in lines[1:]), "phones kept as text"
    rows, vault = read_roster(path), load_vault()
    with engine.begin() as conn:
        outcomes = preview_roster(conn, ADMIN_ACTOR, rows, vault)
        assert [o.action for o in outcomes] == ["update"] * 6
        assert all("发放激活码 / activation code" in o.changes for o in outcomes)
        imported = import_roster(conn, ADMIN_ACTOR, rows, vault, NOW)
    assert sorted(code.activation.username for code in imported.codes) == sorted(line[4] for line in lines[1:])
    first = imported.codes[0].activation
    with engine.begin() as conn:
        assert activate(conn, first.username, first.code, "南海网格巡查员 第一天", "test", vault, NOW) is not None
        assert check_login(conn, first.username, "南海网格巡查员 第一天", "test", NOW) is not None
        again = preview_roster(conn, ADMIN_ACTOR, rows, vault)
    assert [o.action for o in again] == ["unchanged"] * 6, "a second import issues no new codes"
