"""`gridctl rules list|show|save|rollback`, run in-process against a district with 13 matched persons: the files
shown while nothing is saved, a preview before saving, the match after it, rollbacks, one-line refusals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gridctl import main
from matching import rule_versions as versions
from matching.rules import DEFAULT_RULES
from tests.matching.test_rule_versions import PROPOSED, colours, district_with_persons, vault_keys


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        vault_keys(patch)
        engine = district_with_persons(database_factory, seeded_engine, "nanhai_rules_cli",
                                       tmp_path_factory.mktemp("cli"))
        yield engine
    versions.follow_versions(None)  # the match followed this database's task kinds: back to the files


@pytest.fixture
def run(monkeypatch, engine):
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_the_files_are_listed_and_shown_while_no_version_is_saved(run):
    listed = run("rules", "list")
    assert listed.exit_code == 0, listed.output
    assert "colour_rules: 未保存过版本" in listed.output and "task_kinds: 未保存过版本" in listed.output
    shown = run("rules", "show")
    assert shown.exit_code == 0 and shown.stdout == DEFAULT_RULES.read_text(encoding="utf-8")
    assert "the file is in force" in shown.stderr
    kinds = run("rules", "show", "--what", "task_kinds")
    assert "[lead_verification]" in kinds.stdout and "sla_minutes = 120" in kinds.stdout


def test_a_wrong_file_is_refused_with_every_problem_on_its_line(run, engine, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(PROPOSED.replace('colour = "red"', 'colour = "crimson"', 1).replace("days = 28", "days = -1"),
                    encoding="utf-8")
    result = run("rules", "save", "--what", "colour_rules", str(path), "--note", "typo")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.splitlines()
    assert "2 problems: nothing was saved" in lines[0]
    text_lines = PROPOSED.splitlines()
    colour, days = (text_lines.index(line) + 1 for line in ('colour = "red"', "days = 28"))
    rule = "规则 red-confirmed / rule red-confirmed"
    assert lines[1].startswith(f"  [error] 第 {colour} 行 / line {colour} · {rule} · colour: ")
    assert lines[2].startswith(f"  [error] 第 {days} 行 / line {days} · {rule} · days: ")
    missing = run("rules", "rollback", "424242")
    assert missing.exit_code == 1 and "no version #424242" in missing.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rule_versions")).scalar_one() == 0


def test_save_previews_then_saves_and_matches_and_rollback_brings_a_version_back(run, engine, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(PROPOSED, encoding="utf-8")
    dry = run("rules", "save", "--what", "colour_rules", str(path), "--note", "返岗居家", "--dry-run")
    assert dry.exit_code == 0, dry.output
    table = {line.split()[0]: line.split()[1:] for line in dry.output.splitlines()
             if line.split() and line.split()[0] in ("red", "yellow", "blue", "green")}
    assert table == {"red": ["5", "3", "-2"], "yellow": ["3", "6", "+3"], "blue": ["3", "0", "-3"],
                     "green": ["2", "4", "+2"]}
    assert "3 new task requests" in dry.output and "dry run: nothing was saved" in dry.output
    assert colours(engine) == {"red": 5, "yellow": 3, "blue": 3, "green": 2}

    saved = run("rules", "save", "--what", "colour_rules", str(path), "--note", "返岗居家")
    assert saved.exit_code == 0, saved.output
    assert "in force now" in saved.output and "red 3, yellow 6, blue 0, green 4" in saved.output
    assert colours(engine) == {"red": 3, "yellow": 6, "blue": 0, "green": 4}
    again = run("rules", "save", "--what", "colour_rules", str(path), "--note", "twice")
    assert again.exit_code == 1 and "nothing to save" in again.output

    default = tmp_path / "default.toml"
    default.write_text(DEFAULT_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    assert run("rules", "save", "--what", "colour_rules", str(default), "--note", "默认", "--no-match").exit_code == 0
    assert colours(engine)["yellow"] == 6, "--no-match leaves the codes as they were"
    with engine.connect() as conn:
        first, second = conn.execute(text("SELECT id FROM rule_versions ORDER BY id")).scalars().all()
    listed = run("rules", "list", "--what", "colour_rules")
    assert f"* #{second:<5} colour_rules" in listed.output and f"  #{first:<5} colour_rules" in listed.output
    assert "返岗居家" in listed.output and "task_kinds" not in listed.output
    shown = run("rules", "show", str(first))
    assert shown.stdout == PROPOSED and "返岗居家" in shown.stderr

    back = run("rules", "rollback", str(first), "--note", "仍需居家观察")
    assert back.exit_code == 0, back.output
    assert colours(engine) == {"red": 3, "yellow": 6, "blue": 0, "green": 4}
    listed = run("rules", "list")
    assert f"(← #{first})" in listed.output and "仍需居家观察" in listed.output
    with engine.connect() as conn:
        actions = conn.execute(text("SELECT action, username FROM audit_log WHERE action LIKE 'rules.%' "
                                    "ORDER BY id")).all()
    assert [a.action for a in actions] == ["rules.save", "rules.save", "rules.rollback"]
    assert all(a.username.startswith("gridctl:") for a in actions)

    unnamed = run("rules", "rollback", "file")
    assert unnamed.exit_code == 1 and "--what" in unnamed.output
    assert run("rules", "rollback", "latest").exit_code == 1
    to_file = run("rules", "rollback", "file", "--what", "colour_rules")
    assert to_file.exit_code == 0, to_file.output
    assert colours(engine) == {"red": 5, "yellow": 3, "blue": 3, "green": 2}
    assert "rolled back to the shipped file" in run("rules", "list").output
