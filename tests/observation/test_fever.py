"""A fever or a symptom at a check-in (issue 25), against the real database and the real matcher: an escort task
at once, the code raised to red as the shipped rules say with its reason in the code history, the fever kept as a
follow-up source record that the next full match reads (and so keeps the code), a code review filed, and two
concurrent reports of one check stored once with one task."""

import threading
from datetime import timedelta

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from accounts.actor import Actor
from matching.pipeline import import_feed, run_match
from matching.privacy import load_vault
from matching.rules import DEFAULT_RULES
from observation.checks import CheckReport, record_check
from observation.fever import FOLLOW_UP
from observation.policy import observation_policy
from tests.matching.feedfiles import valid_id, write_csv

NOW = pd.Timestamp.now(tz="UTC").floor("min")
FEVER_RULE = "red-follow-up-fever"
COMMANDER = Actor(None, "commander-test", "commander")


def row(serial: int) -> list[str]:
    return [str(serial), "张小明", valid_id(serial), "13812345678", "", "113.15", "23.03", "WGS84", "重点地区",
            (NOW - pd.Timedelta(hours=2)).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M")]


def key(serial: int) -> str:
    return load_vault().person_key(valid_id(serial))


def at(minutes: int):
    return (NOW + pd.Timedelta(minutes=minutes)).to_pydatetime()


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory):
    """Five persons yellow (arrived from a key area), each with an observation plan in his grid and a check due
    at NOW + 30 min."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        engine = database_factory("nanhai_obs_fever", copy_of=seeded_engine)
        feed = write_csv(tmp_path_factory.mktemp("fever") / "key-area.csv", [row(n) for n in range(1, 6)])
        assert import_feed(engine, feed, "交通").rows_stored == 5
        assert run_match(engine, now=NOW)["yellow"] == 5
        with engine.begin() as conn:
            for serial in range(1, 6):
                plan_id = conn.execute(text("SELECT id FROM observation_plans WHERE person_key = :k "
                                            "AND status = 'active'"), {"k": key(serial)}).scalar_one_or_none()
                if plan_id is None:  # the matcher's plan hook may have made it already
                    plan_id = conn.execute(text(
                        "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, "
                        "check_minutes, token_nonce) SELECT person_key, grid_id, rule_id, :s, :e, '{480,1200}', 'n' "
                        "FROM persons WHERE person_key = :k RETURNING id"),
                        {"k": key(serial), "s": at(-24 * 60), "e": at(13 * 24 * 60)}).scalar_one()
                conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :d) "
                                  "ON CONFLICT DO NOTHING"), {"p": plan_id, "d": at(30)})
        yield engine


def one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def plan_of(engine, serial: int) -> int:
    return one(engine, "SELECT id FROM observation_plans WHERE person_key = :k AND status = 'active'",
               k=key(serial)).id


def report(engine, serial: int, minutes: int, check: CheckReport, actor: Actor | None = COMMANDER) -> dict:
    with engine.begin() as conn:
        return record_check(conn, plan_of(engine, serial), check, "worker" if actor else "self", at(minutes), actor,
                            observation_policy())


def test_the_shipped_rules_hold_the_fever_rule():
    assert f'id = "{FEVER_RULE}"' in DEFAULT_RULES.read_text(encoding="utf-8")


def test_a_fever_raises_an_escort_codes_red_and_the_next_match_keeps_it(engine):
    person, plan = key(1), plan_of(engine, 1)
    answer = report(engine, 1, 1, CheckReport(38.1, ("none",), None))
    assert answer["fever"] is True and answer["late"] is False and len(answer["task_ids"]) == 1

    task = one(engine, "SELECT kind, source, person_key, grid_id, status FROM tasks WHERE id = :t",
               t=answer["task_ids"][0])
    grid = one(engine, "SELECT grid_id FROM observation_plans WHERE id = :p", p=plan).grid_id
    assert (task.kind, task.person_key, task.grid_id) == ("escort", person, grid)
    assert task.status in ("created", "dispatched")

    # the code, at once, with its reason in the history
    code = one(engine, "SELECT colour, rule_id, sources, expires_at, reason FROM persons WHERE person_key = :k",
               k=person)
    assert (code.colour, code.rule_id, code.sources) == ("red", FEVER_RULE, FOLLOW_UP)
    assert code.expires_at == at(1) + timedelta(days=14) and "发热" in code.reason
    history = rows(engine, "SELECT previous_colour, colour, rule_id, reason, changed_at, explanation "
                           "FROM risk_code_history WHERE person_key = :k ORDER BY id", k=person)
    assert [(h.previous_colour, h.colour, h.rule_id) for h in history] == [
        (None, "yellow", "yellow-key-area"), ("yellow", "red", FEVER_RULE)]
    assert history[-1].changed_at == at(1) and history[-1].reason == code.reason and "随访" in history[-1].explanation
    assert one(engine, "SELECT colour FROM flags WHERE person_key = :k", k=person).colour == "red"

    # the fever as a source record of its own, under the day's follow-up file, its balance kept
    record = one(engine, "SELECT r.source, r.category, r.reported_at, r.id_masked, f.rows_read, f.rows_stored, "
                         "f.source AS feed_source FROM source_records r JOIN feed_files f ON f.id = r.feed_file_id "
                         "WHERE r.person_key = :k AND r.source = :s", k=person, s=FOLLOW_UP)
    assert (record.category, record.reported_at, record.feed_source) == ("发热", at(1), FOLLOW_UP)
    assert record.rows_read == record.rows_stored >= 1
    assert record.id_masked == one(engine, "SELECT id_masked FROM persons WHERE person_key = :k", k=person).id_masked

    # the code review: a waiting appeal proposing his colour before the fever
    appeal = one(engine, "SELECT colour, requested_by, status FROM code_appeals WHERE person_key = :k", k=person)
    assert tuple(appeal) == ("yellow", "system", "pending")
    events = rows(engine, "SELECT kind, task_id FROM observation_events WHERE plan_id = :p ORDER BY id", p=plan)
    assert [e.kind for e in events][-3:] == ["check", "fever", "fever_task"]
    assert events[-1].task_id == answer["task_ids"][0]
    assert rows(engine, "SELECT 1 FROM audit_log WHERE action = 'observation.fever' AND subject = :k", k=person)

    # a second fever while the escort is open and the review decided: no second task and no second review, the
    # code's days counted from the newer one
    with engine.begin() as conn:
        conn.execute(text("UPDATE code_appeals SET status = 'rejected', decided_by = 'c', decided_at = :at "
                          "WHERE person_key = :k"), {"k": person, "at": at(100)})
    again = report(engine, 1, 240, CheckReport(38.4, (), None))
    assert again["task_ids"] == [] and again["fever"] is True
    assert one(engine, "SELECT count(*) AS n FROM tasks WHERE person_key = :k AND kind = 'escort'", k=person).n == 1
    assert one(engine, "SELECT expires_at FROM persons WHERE person_key = :k",
               k=person).expires_at == at(240) + timedelta(days=14)
    assert one(engine, "SELECT count(*) AS n FROM code_appeals WHERE person_key = :k", k=person).n == 1

    # the real matcher, over everyone: the follow-up records keep the code they justify, nothing changes
    stats = run_match(engine, now=NOW + pd.Timedelta(minutes=241))
    assert stats["code_changes"] == 0 and stats["red"] == 1
    after = one(engine, "SELECT colour, rule_id, expires_at FROM persons WHERE person_key = :k", k=person)
    assert tuple(after) == ("red", FEVER_RULE, at(240) + timedelta(days=14))
    assert len(rows(engine, "SELECT 1 FROM risk_code_history WHERE person_key = :k", k=person)) == 3


def test_a_symptom_without_fever_escalates_as_a_symptom_record(engine):
    person = key(2)
    answer = report(engine, 2, 5, CheckReport(36.8, ("cough",), None), actor=None)  # a self-report
    assert answer["fever"] is True and len(answer["task_ids"]) == 1
    assert one(engine, "SELECT category FROM source_records WHERE person_key = :k AND source = :s",
               k=person, s=FOLLOW_UP).category == "症状"
    assert one(engine, "SELECT colour FROM persons WHERE person_key = :k", k=person).colour == "red"
    assert one(engine, "SELECT actor_id FROM observation_events WHERE kind = 'fever' AND person_key = :k",
               k=person).actor_id is None


def test_a_normal_report_escalates_nothing(engine):
    person = key(3)
    answer = report(engine, 3, 5, CheckReport(37.2, ("none",), None))
    assert answer["fever"] is False and answer["task_ids"] == []
    assert one(engine, "SELECT colour FROM persons WHERE person_key = :k", k=person).colour == "yellow"
    assert not rows(engine, "SELECT 1 FROM source_records WHERE person_key = :k AND source = :s", k=person,
                    s=FOLLOW_UP)
    assert not rows(engine, "SELECT 1 FROM tasks WHERE person_key = :k", k=person)


def test_two_concurrent_reports_of_one_check_store_one_check_and_one_task(engine):
    person, plan = key(4), plan_of(engine, 4)
    barrier = threading.Barrier(2)
    answers: list[dict] = []
    failures: list[BaseException] = []

    def tap() -> None:
        try:
            with engine.begin() as conn:
                barrier.wait(timeout=30)
                answers.append(record_check(conn, plan, CheckReport(38.5, (), None), "worker", at(10), COMMANDER,
                                            observation_policy()))
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures and len(answers) == 2
    assert answers[0]["check_id"] == answers[1]["check_id"]
    done = rows(engine, "SELECT due_at FROM observation_checks WHERE plan_id = :p AND status = 'done'", p=plan)
    assert [d.due_at for d in done] == [at(30)]
    assert one(engine, "SELECT count(*) AS n FROM tasks WHERE person_key = :k", k=person).n == 1
    assert sorted(len(a["task_ids"]) for a in answers) == [0, 1]
    assert one(engine, "SELECT count(*) AS n FROM source_records WHERE person_key = :k AND source = :s",
               k=person, s=FOLLOW_UP).n == 1
    assert [h.colour for h in rows(engine, "SELECT colour FROM risk_code_history WHERE person_key = :k ORDER BY id",
                                   k=person)] == ["yellow", "red"]


def test_rules_without_a_follow_up_rule_leave_the_code_and_ask_for_a_review(engine, tmp_path, monkeypatch):
    body = DEFAULT_RULES.read_text(encoding="utf-8")
    start = body.index(f'[[rule]]\nid = "{FEVER_RULE}"')
    end = body.index("[[rule]]", start + 1)
    rules = tmp_path / "rules.toml"
    rules.write_text(body[:start] + body[end:], encoding="utf-8")
    monkeypatch.setenv("NANHAI_RULES", str(rules))
    person = key(5)
    answer = report(engine, 5, 5, CheckReport(39.0, (), None))
    assert len(answer["task_ids"]) == 1  # the escort all the same
    assert one(engine, "SELECT colour FROM persons WHERE person_key = :k", k=person).colour == "yellow"
    assert len(rows(engine, "SELECT 1 FROM risk_code_history WHERE person_key = :k", k=person)) == 1
    appeal = one(engine, "SELECT colour, status FROM code_appeals WHERE person_key = :k", k=person)
    assert tuple(appeal) == ("red", "pending")  # approve to raise him by hand
