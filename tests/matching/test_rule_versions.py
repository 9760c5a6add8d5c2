"""Rule and time-limit versions on the real database: every problem of a text named by its line, versions saved,
listed and rolled back (administrators only, audited, append-only), the files as defaults, and previews whose
numbers a re-match then makes true."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from accounts.actor import ADMIN, SUPERVISOR, Actor
from demo.accounts import create_demo_accounts
from gis.errors import ImportRejected, InvalidRequest, NotFound, PermissionDenied
from jobs.progress import read_progress
from jobs.queue import enqueue_rematch
from jobs.worker import run_worker
from matching import rule_versions as versions
from matching.pipeline import import_feed, run_match
from matching.rules import DEFAULT_RULES, load_rules
from tasks.kinds import DEFAULT_FILE, file_kinds, load_kinds
from tasks.repository import NewTask, create_task
from tests.conftest import DEMO_PASSWORD
from tests.matching.feedfiles import valid_id, write_csv

ADMIN_ACTOR = Actor(None, "rules.admin", ADMIN)
TODAY = datetime.now().strftime("%Y-%m-%d 09:00")  # the rules' codes run from the report time: keep them current
GRID = "440605011001002"
# 5 red (3 close contacts, 2 suspected), 3 yellow, 3 blue, 2 green
CATEGORIES = ["密切接触者"] * 3 + ["疑似病例"] * 2 + ["湖北返回"] * 3 + ["返岗人员"] * 3 + ["普通居民"] * 2
# the proposal: returning workers become yellow, and a suspected case alone no longer makes anyone red
PROPOSED = (DEFAULT_RULES.read_text(encoding="utf-8")
            .replace('colour = "blue"', 'colour = "yellow"')
            .replace('keywords = ["疑似", "suspected"]', 'keywords = ["疑似确诊", "suspected"]'))


def district_with_persons(database_factory, seeded_engine, name: str, tmp_path) -> Engine:
    """A copy of the district with the demo accounts and 13 persons matched by the rules file (5 red, 3 yellow,
    3 blue, 2 green); the vault's keys must be set (see :func:`vault_keys`)."""
    engine = database_factory(name, copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # a district just copied has no statistics: auto-dispatch would crawl
    rows = [[str(i), "张小明", valid_id(i), "13812345678", "", "113.15", "23.03", "WGS84", category, TODAY]
            for i, category in enumerate(CATEGORIES, start=1)]
    import_feed(engine, write_csv(tmp_path / "health.csv", rows), "卫健")
    stats = run_match(engine)
    assert (stats["red"], stats["yellow"], stats["blue"], stats["green"]) == (5, 3, 3, 2)
    return engine


def vault_keys(patch: pytest.MonkeyPatch) -> None:
    patch.setenv("NANHAI_PERSON_KEY_SECRET", "rules-test-secret")
    patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        vault_keys(patch)
        engine = district_with_persons(database_factory, seeded_engine, "nanhai_rules", tmp_path_factory.mktemp("r"))
        yield engine
    versions.follow_versions(None)  # this process's task workflow goes back to the files


def colours(engine) -> dict[str, int]:
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT colour, count(*) FROM persons GROUP BY colour")).all())
    return {c: found.get(c, 0) for c in ("red", "yellow", "blue", "green")}


# -- checking ------------------------------------------------------------------------------------------------
def test_the_shipped_files_are_valid_texts():
    assert versions.check("colour_rules", DEFAULT_RULES.read_text(encoding="utf-8")) == []
    assert versions.check("task_kinds", DEFAULT_FILE.read_text(encoding="utf-8")) == []
    assert versions.check("colour_rules", PROPOSED) == []


def test_every_problem_of_a_rules_text_names_its_line_rule_field_and_reason():
    body = ('default_reason = "无"\n'          # 1
            'colour_bias = 2\n'               # 2
            '\n'                              # 3
            '[[rule]]\n'                      # 4
            'id = "red-a"\n'                  # 5
            'colour = "purple"\n'             # 6
            'keywords = ["确诊"]\n'           # 7
            'days = 14\n'                     # 8
            '\n'                              # 9
            '[[rule]]\n'                      # 10
            'id = "red-a"\n'                  # 11
            'colour = "red"\n'                # 12
            'keywords = []\n'                 # 13
            'days = 0\n'                      # 14
            'weight = 3\n')                   # 15
    found = [(p.line, p.item, p.field) for p in versions.check("colour_rules", body)]
    assert found == [(2, None, "colour_bias"), (6, "规则 red-a / rule red-a", "colour"),
                     (11, "规则 red-a / rule red-a", "id"), (13, "规则 red-a / rule red-a", "keywords"),
                     (14, "规则 red-a / rule red-a", "days"), (15, "规则 red-a / rule red-a", "weight")]
    problems = versions.check("colour_rules", body)
    assert "colour must be red, yellow or blue" in problems[1].reason and "repeated" in problems[2].reason
    assert str(problems[4]).startswith("第 14 行 / line 14 · 规则 red-a / rule red-a · days: ")
    syntax = versions.check("colour_rules", '[[rule]]\nid = "x"\ncolour = red\n')
    assert len(syntax) == 1 and syntax[0].line == 3 and "TOML syntax error" in syntax[0].reason
    assert "at least one [[rule]]" in versions.check("colour_rules", 'default_reason = "x"\n')[0].reason
    assert versions.check("colour_rules", "  \n")[0].reason == "内容为空 / the text is empty"


def test_every_problem_of_a_kinds_text_names_its_line_kind_and_field():
    body = DEFAULT_FILE.read_text(encoding="utf-8")
    lines = body.splitlines()
    escort_sla = next(i for i, line in enumerate(lines, start=1) if line.startswith("sla_minutes = 240"))
    broken = (body.replace("sla_minutes = 240", "sla_minutes = 0")
              .replace("[area_sweep]", "[tea_break]")
              .replace("priority = 3", "priority = 9", 1))  # area_sweep's (verification, after it, has 3 too)
    found = versions.check("task_kinds", broken)
    assert [(p.line, p.item, p.field) for p in found] == [
        (None, "任务类型 / kind area_sweep", None),  # missing: no line of its own (sorted first)
        (escort_sla, "任务类型 / kind escort", "sla_minutes"),
        (lines.index("[area_sweep]") + 1, "任务类型 / kind tea_break", None)]
    assert "sla_minutes must be 1 to 43200 minutes" in found[1].reason and "unknown task kind" in found[2].reason
    only_priority = versions.check("task_kinds", body.replace("priority = 3", "priority = 9", 1))
    assert [p.field for p in only_priority] == ["priority"] and "1 = most urgent" in only_priority[0].reason
    wrong_type = versions.check("task_kinds", body.replace("needs_temperature = false", 'needs_temperature = "no"', 1))
    assert [(p.item, p.field) for p in wrong_type] == [("任务类型 / kind lead_verification", "needs_temperature")]


# -- versions ------------------------------------------------------------------------------------------------
def test_the_files_are_in_force_until_a_version_is_saved(engine):
    with engine.connect() as conn:
        assert versions.current_body(conn, "colour_rules") == (DEFAULT_RULES.read_text(encoding="utf-8"), None)
        assert versions.current_body(conn, "task_kinds") == (DEFAULT_FILE.read_text(encoding="utf-8"), None)
        assert versions.current_rules(conn) == load_rules()
        assert versions.current_kinds(conn) == file_kinds()
        assert versions.list_versions(conn, ADMIN_ACTOR) == []


def test_saving_listing_and_rolling_back_are_for_administrators_audited_and_kept(engine):
    supervisor = Actor(None, "rules.supervisor", SUPERVISOR)
    kinds = DEFAULT_FILE.read_text(encoding="utf-8")
    faster = kinds.replace("sla_minutes = 120", "sla_minutes = 90")
    with engine.begin() as conn:
        with pytest.raises(PermissionDenied):
            versions.save_version(conn, supervisor, "task_kinds", faster, "quicker")
        with pytest.raises(PermissionDenied):
            versions.list_versions(conn, supervisor)
        with pytest.raises(InvalidRequest, match="say why"):
            versions.save_version(conn, ADMIN_ACTOR, "task_kinds", faster, "  ")
        with pytest.raises(InvalidRequest, match="nothing to save"):
            versions.save_version(conn, ADMIN_ACTOR, "task_kinds", kinds, "the same")
        with pytest.raises(ImportRejected) as refused:
            versions.save_version(conn, ADMIN_ACTOR, "task_kinds", kinds.replace("priority = 1", "priority = 0", 1),
                                  "broken")
        assert [p.field for p in refused.value.problems] == ["priority"]
        with pytest.raises(InvalidRequest, match="unknown kind of version"):
            versions.save_version(conn, ADMIN_ACTOR, "sla", faster, "x")
        first = versions.save_version(conn, ADMIN_ACTOR, "task_kinds", faster, "线索核查提速 / quicker leads",
                                      client="c:test")
        second = versions.save_version(conn, ADMIN_ACTOR, "task_kinds", faster.replace("priority = 3", "priority = 2"),
                                       "片区排查优先 / sweeps sooner")
        back = versions.rollback(conn, ADMIN_ACTOR, first.id, "排查改回 / sweeps as before")
        with pytest.raises(InvalidRequest, match="nothing to save"):
            versions.rollback(conn, ADMIN_ACTOR, first.id)
        with pytest.raises(NotFound):
            versions.rollback(conn, ADMIN_ACTOR, 999_999)
        listed = versions.list_versions(conn, ADMIN_ACTOR, "task_kinds")
        assert [(v.id, v.in_force, v.rolled_back_from) for v in listed] == [
            (back.id, True, first.id), (second.id, False, None), (first.id, False, None)]
        assert back.body == first.body and back.saved_by == "rules.admin"
        assert back.note == f"回滚到 #{first.id} / rolled back to #{first.id}: 排查改回 / sweeps as before"
        assert versions.current_kinds(conn)["lead_verification"].sla_minutes == 90
        assert versions.current_kinds(conn)["area_sweep"].priority == 3
        audit = conn.execute(text("SELECT action, subject, reason, client FROM audit_log "
                                  "WHERE action LIKE 'rules.%' ORDER BY id")).all()
        assert [tuple(a) for a in audit] == [
            ("rules.save", f"task_kinds #{first.id}", "线索核查提速 / quicker leads", "c:test"),
            ("rules.save", f"task_kinds #{second.id}", "片区排查优先 / sweeps sooner", None),
            ("rules.rollback", f"task_kinds #{back.id}", back.note, None)]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE rule_versions SET note = 'rewritten' WHERE id = :id"), {"id": first.id})
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM rule_versions"))
    with engine.begin() as conn:  # back to the file's limits (for the tests that follow too)
        restored = versions.rollback_to_file(conn, ADMIN_ACTOR, "task_kinds", "试行结束 / trial over")
        with pytest.raises(InvalidRequest, match="nothing to save"):
            versions.rollback_to_file(conn, ADMIN_ACTOR, "task_kinds")
        last = conn.execute(text("SELECT action, subject FROM audit_log ORDER BY id DESC LIMIT 1")).one()
    assert (restored.body, restored.rolled_back_from) == (kinds, None)
    assert restored.note == "回滚到默认文件 / rolled back to the shipped file: 试行结束 / trial over"
    assert tuple(last) == ("rules.rollback", f"task_kinds #{restored.id}")


def test_the_task_workflow_takes_the_kinds_in_force_at_once(engine):
    versions.follow_versions(engine)
    now = datetime.now(UTC)
    kinds = DEFAULT_FILE.read_text(encoding="utf-8")
    slower = kinds.replace("sla_minutes = 240", "sla_minutes = 300").replace("priority = 1\nneeds_temperature = true",
                                                                             "priority = 2\nneeds_temperature = true")
    system = Actor.system()
    with engine.begin() as conn:
        before = create_task(conn, system, NewTask("escort", GRID, "转运（旧时限）", dispatch=False), now)
        found = versions.preview(conn, ADMIN_ACTOR, "task_kinds", slower, now)
    assert before["sla_minutes"] == 240 and before["priority"] == 1
    assert [(c.code, c.field, c.before, c.after) for c in found.changes] == [
        ("escort", "sla_minutes", 240, 300), ("escort", "priority", 1, 2)]
    assert found.changes[0].open_tasks == found.open_tasks >= 1
    with engine.begin() as conn:
        saved = versions.save_version(conn, ADMIN_ACTOR, "task_kinds", slower, "转运放宽 / escorts get 5 hours")
    assert load_kinds()["escort"].sla_minutes == 300  # this process looks again at once after a save
    with engine.begin() as conn:
        after = create_task(conn, system, NewTask("escort", GRID, "转运（新时限）", dispatch=False), now)
        kept = conn.execute(text("SELECT sla_minutes FROM tasks WHERE id = :id"), {"id": before["id"]}).scalar_one()
    assert (after["sla_minutes"], after["priority"], kept) == (300, 2, 240)
    with engine.begin() as conn:
        versions.save_version(conn, ADMIN_ACTOR, "task_kinds", kinds, "默认 / the defaults")
    assert load_kinds()["escort"].sla_minutes == 240
    with engine.begin() as conn:
        assert versions.rollback(conn, ADMIN_ACTOR, saved.id).rolled_back_from == saved.id
    assert load_kinds()["escort"].sla_minutes == 300
    with engine.begin() as conn:
        versions.save_version(conn, ADMIN_ACTOR, "task_kinds", kinds, "默认 / the defaults")
    versions.follow_versions(None)
    assert load_kinds() == file_kinds()


def test_the_preview_of_colour_rules_comes_true_after_saving_and_a_rematch(engine):
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        found = versions.preview(conn, ADMIN_ACTOR, "colour_rules", PROPOSED, datetime.now(UTC))
        requests_before = conn.execute(text("SELECT count(*) FROM task_requests")).scalar_one()
    assert found.before == colours(engine) == {"red": 5, "yellow": 3, "blue": 3, "green": 2}
    assert found.after == {"red": 3, "yellow": 6, "blue": 0, "green": 4}
    assert [r["change"] for r in found.rows()] == ["-2", "+3", "-3", "+2"]
    assert (found.recoloured, found.code_changes, found.task_requests) == (5, 5, 3)
    assert (found.new_persons, found.removed) == (0, 0)
    with engine.connect() as conn:
        unchanged = versions.preview(conn, ADMIN_ACTOR, "colour_rules", DEFAULT_RULES.read_text(encoding="utf-8"),
                                     datetime.now(UTC))
    assert (unchanged.recoloured, unchanged.code_changes, unchanged.task_requests) == (0, 0, 0)

    with engine.begin() as conn:
        saved = versions.save_version(conn, ADMIN_ACTOR, "colour_rules", PROPOSED, "返岗人员一律居家观察")
    job = enqueue_rematch(engine, requested_by="rules.admin")
    run_worker(url, once=True, niceness=0, install_signal_handlers=False)
    done = read_progress(engine, job)
    assert done.state == "succeeded", done.error
    assert colours(engine) == found.after
    assert done.result["match"]["code_changes"] == found.code_changes
    assert done.result["match"]["task_requests"] == found.task_requests
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM task_requests")).scalar_one() == \
            requests_before + found.task_requests
        assert conn.execute(text("SELECT count(*) FROM persons WHERE rule_id = 'blue-returning-worker' "
                                 "AND colour = 'yellow'")).scalar_one() == 3

    with engine.begin() as conn:  # the defaults again, then the proposal brought back by a rollback
        versions.save_version(conn, ADMIN_ACTOR, "colour_rules", DEFAULT_RULES.read_text(encoding="utf-8"),
                              "恢复默认 / the defaults again")
        assert versions.current_rules(conn).rules == load_rules().rules
        assert versions.rollback(conn, ADMIN_ACTOR, saved.id).rolled_back_from == saved.id
        rules = {rule.id: rule for rule in versions.current_rules(conn).rules}
        assert rules["blue-returning-worker"].colour == "yellow"


def test_a_preview_before_any_match_counts_the_persons_a_match_would_add(database_factory, seeded_engine, tmp_path):
    engine = database_factory("nanhai_rules_unmatched", copy_of=seeded_engine)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        empty = versions.preview(conn, ADMIN_ACTOR, "colour_rules", PROPOSED, now)
    assert empty.before == empty.after == {"red": 0, "yellow": 0, "blue": 0, "green": 0}
    assert (empty.recoloured, empty.new_persons, empty.code_changes, empty.task_requests) == (0, 0, 0, 0)
    rows = [[str(i), "张小明", valid_id(i), "13812345678", "", "113.15", "23.03", "WGS84", category, TODAY]
            for i, category in enumerate(CATEGORIES, start=1)]
    with pytest.MonkeyPatch.context() as patch:
        vault_keys(patch)
        import_feed(engine, write_csv(tmp_path / "health.csv", rows), "卫健")
    with engine.connect() as conn:
        found = versions.preview(conn, ADMIN_ACTOR, "colour_rules", PROPOSED, now)
    assert found.before == {"red": 0, "yellow": 0, "blue": 0, "green": 0}
    assert found.after == {"red": 3, "yellow": 6, "blue": 0, "green": 4}
    assert (found.recoloured, found.new_persons, found.removed) == (0, 13, 0)
    assert (found.code_changes, found.task_requests) == (9, 9), "every new red or yellow person"
    with engine.begin() as conn:
        versions.save_version(conn, ADMIN_ACTOR, "colour_rules", PROPOSED, "first rules")
    stats = run_match(engine, pd.Timestamp(now))
    assert (stats["red"], stats["yellow"], stats["blue"], stats["green"]) == (3, 6, 0, 4)
    assert (stats["code_changes"], stats["task_requests"]) == (found.code_changes, found.task_requests)
    versions.follow_versions(None)


def test_the_preview_counts_the_tasks_a_new_rule_would_ask_for(engine):
    """A rule on the persons' age (their dates of birth are sealed: the preview opens them in memory) asks for a
    verification of each of the 13 persons, aged 41 (born 1985-03-03); no colour changes for it."""
    elderly = ('\n[[rule]]\nid = "verify-over-40"\ntask = "verification"\ndays = 14\n'
               'all = [{ age_at_least = 40 }, { source = ["卫健"] }]\n')
    with engine.connect() as conn:
        base = versions.preview(conn, ADMIN_ACTOR, "colour_rules", versions.current_body(conn, "colour_rules")[0]
                                + "\n", datetime.now(UTC))
        found = versions.preview(conn, ADMIN_ACTOR, "colour_rules", versions.current_body(conn, "colour_rules")[0]
                                 + elderly, datetime.now(UTC))
    assert found.task_requests - base.task_requests == 13
    assert (found.recoloured, found.code_changes) == (base.recoloured, base.code_changes)
    too_old = elderly.replace("age_at_least = 40", "age_at_least = 42")
    with engine.connect() as conn:
        none = versions.preview(conn, ADMIN_ACTOR, "colour_rules", versions.current_body(conn, "colour_rules")[0]
                                + too_old, datetime.now(UTC))
    assert none.task_requests == base.task_requests
