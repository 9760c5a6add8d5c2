"""`gridctl users add|import|list|disable|enable|reset-password`, run in-process against the account tests'
database: codes shown once (one account) or only in the Excel sheet (a roster), names and phones masked,
clean one-line refusals."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import text

from gridctl import main
from tests.accounts.conftest import new_phone
from tests.accounts.test_roster import write_csv

CODE = re.compile(r"[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}")


@pytest.fixture
def run(monkeypatch, staff_engine):
    monkeypatch.setenv("DATABASE_URL", staff_engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_users_add_prints_the_code_once_with_the_name_and_phone_masked(run, staff_engine):
    phone = new_phone()
    result = run("users", "add", "cli.worker", "--name", "欧阳锦荣", "--role", "worker", "--phone", phone,
                 "--grid", "440605011016001", "--grid", "440605011016002")
    assert result.exit_code == 0, result.output
    assert len(CODE.findall(result.output)) == 1 and "只显示这一次" in result.output
    assert "欧*荣" in result.output.replace("欧**荣", "欧*荣") and "欧阳锦荣" not in result.output
    assert phone not in result.output and f"{phone[:3]}****{phone[-4:]}" in result.output
    assert "440605011016001、440605011016002" in result.output
    with staff_engine.connect() as conn:
        line = conn.execute(text("SELECT username, action FROM audit_log WHERE subject = 'cli.worker'")).one()
    assert line.username.startswith("gridctl:") and line.action == "user.create"


def test_users_add_refuses_in_one_clear_line(run):
    result = run("users", "add", "cli.bad", "--name", "某", "--role", "worker", "--grid", "440605011016999")
    assert result.exit_code == 1 and "unknown grid 440605011016999" in result.output
    assert "Traceback" not in result.output
    taken = run("users", "add", "demo_worker", "--name", "某", "--role", "reporter")
    assert taken.exit_code == 1 and "taken" in taken.output


def test_users_import_previews_refuses_without_a_codes_sheet_then_writes_the_codes_there(run, staff_engine, tmp_path):
    rows = [["冯文强", new_phone(), "网格员", "440605011020001", "", "", "cli.roster.w"],
            ["林海燕", new_phone(), "网格长", "", "440605011020", "", "cli.roster.s"]]
    path = write_csv(tmp_path / "roster.csv", rows)
    dry = run("users", "import", str(path), "--dry-run")
    assert dry.exit_code == 0 and "dry run: nothing was stored" in dry.output
    assert "新建 create" in dry.output and "cli.roster.w" in dry.output and "冯*强" in dry.output
    assert "冯文强" not in dry.output and rows[0][1] not in dry.output
    refused = run("users", "import", str(path))
    assert refused.exit_code == 1 and "--codes-out" in refused.output
    with staff_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE username LIKE 'cli.roster.%'")).scalar() == 0
    sheet = tmp_path / "codes.xlsx"
    done = run("users", "import", str(path), "--codes-out", str(sheet))
    assert done.exit_code == 0 and "2 created" in done.output and str(sheet) in done.output
    assert not CODE.search(done.output), "a bulk import never prints codes"
    values = list(load_workbook(sheet).active.iter_rows(values_only=True))
    assert [v[1] for v in values[1:]] == ["cli.roster.w", "cli.roster.s"] and all(CODE.match(v[5]) for v in values[1:])
    again = run("users", "import", str(path), "--dry-run")
    assert "2 unchanged" in again.output


def test_users_import_with_errors_lists_them_by_row_and_stores_nothing(run, staff_engine, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [["梁丽华", new_phone(), "网格员", "440605011020999", "", "", "cli.bad1"],
                                            ["何建国", "12", "网格员", "440605011020001", "", "", "cli.bad2"]])
    result = run("users", "import", str(path), "--codes-out", str(tmp_path / "c.xlsx"))
    assert result.exit_code == 1 and "2 rows have errors: nothing was stored" in result.output
    assert "row 3" in result.output and "grid_codes" in result.output and "row 4" in result.output
    assert not (tmp_path / "c.xlsx").exists()
    missing = run("users", "import", str(tmp_path / "nothing.csv"))
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_users_list_masks_names_and_phones_and_filters(run):
    phone = new_phone()
    run("users", "add", "cli.listed", "--name", "麦秀英", "--role", "reporter", "--phone", phone, "--town", "440605122")
    found = run("users", "list", "--search", "麦秀英")
    assert found.exit_code == 0 and "cli.listed" in found.output and "麦*英" in found.output
    assert "麦秀英" not in found.output and phone not in found.output and "待激活 pending" in found.output
    assert "镇街 440605122" in found.output
    assert "cli.listed" in run("users", "list", "--search", phone).output
    reporters = run("users", "list", "--role", "reporter").output
    assert "cli.listed" in reporters and "demo_worker" not in reporters
    assert "w44060501100100101" not in run("users", "list", "--role", "worker").output, "generated staff: --all"


def test_users_disable_enable_and_reset_password(run, staff_engine):
    run("users", "add", "cli.cycle", "--name", "某", "--role", "worker", "--grid", "440605011025001")
    disabled = run("users", "disable", "cli.cycle")
    assert disabled.exit_code == 0 and "disabled cli.cycle" in disabled.output and "0 open tasks" in disabled.output
    assert "already disabled" in run("users", "disable", "cli.cycle").output
    assert "enabled cli.cycle" in run("users", "enable", "cli.cycle").output
    reset = run("users", "reset-password", "cli.cycle")
    assert reset.exit_code == 0 and len(CODE.findall(reset.output)) == 1 and "sessions ended" in reset.output
    unknown = run("users", "disable", "cli.nobody")
    assert unknown.exit_code == 1 and "no user cli.nobody" in unknown.output
    with staff_engine.connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE subject = 'cli.cycle' ORDER BY id")).scalars()
        assert list(actions) == ["user.create", "user.disable", "user.enable", "user.reset_password"]
