"""Plans from codes: made for a code whose rule asks for observation, with an end and check times computed by
hand here, extended by a longer code, closed (with the reason) by a code that no longer asks for it, by the end
of the period, by the person's removal; and through the matcher itself, an override closing a plan."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from matching.repository import add_override
from observation.plans import sync_plans
from observation.policy import observation_policy

GRID = "440605011001001"  # demo_worker's grid
OTHER_GRID = "440605011004001"
NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 11:00 Beijing
ARRIVED = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # 2026-11-30 00:00 Beijing
POLICY = observation_policy()


@pytest.fixture(scope="module")
def engine(database_factory, pristine_district):
    return database_factory("nanhai_obs_plans", copy_of=pristine_district)


def person(conn, colour: str = "yellow", rule: str | None = "yellow-key-area", set_at: datetime = ARRIVED,
           days: int = 14, grid: str = GRID, reason: str = "14 天内自重点地区抵达 / arrived from a key area") -> str:
    """A person coded ``colour`` by ``rule`` from ``set_at`` for ``days`` days, placed in ``grid``; his key."""
    key = "obs-" + secrets.token_hex(8)
    conn.execute(text(
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, set_at, expires_at, "
        "confidence, grid_id) SELECT :k, '440605********0011', '王*', :c, :r, :rule, :s, :e, 1.0, id "
        "FROM grids WHERE code = :g"),
        {"k": key, "c": colour, "r": reason, "rule": rule, "s": set_at,
         "e": set_at + timedelta(days=days) if colour != "green" else None, "g": grid})
    return key


def plan_of(conn, key: str):
    return conn.execute(text(
        "SELECT p.*, g.code AS grid_code FROM observation_plans p LEFT JOIN grids g ON g.id = p.grid_id "
        "WHERE person_key = :k ORDER BY id DESC LIMIT 1"), {"k": key}).one_or_none()


def events(conn, key: str) -> list:
    return conn.execute(text("SELECT kind, at, detail, task_id FROM observation_events WHERE person_key = :k "
                             "ORDER BY id"), {"k": key}).all()


def checks(conn, plan_id: int) -> list[datetime]:
    return list(conn.execute(text("SELECT due_at FROM observation_checks WHERE plan_id = :p ORDER BY due_at"),
                             {"p": plan_id}).scalars())


def test_a_yellow_code_makes_a_plan_to_the_end_of_its_days_with_the_rest_of_todays_checks(engine):
    with engine.begin() as conn:
        yellow = person(conn)
        blue = person(conn, "blue", "blue-returning-worker")
        red = person(conn, "red", "red-confirmed", days=28)
        counts = sync_plans(conn, NOW, POLICY)
        plan = plan_of(conn, yellow)
        assert counts["created"] >= 1
        assert plan.status == "active" and plan.grid_code == GRID and plan.rule_id == "yellow-key-area"
        # arrived 2026-11-30 00:00 Beijing, 14 days: until 2026-12-14 00:00 Beijing = 12-13 16:00 UTC
        assert plan.starts_at == NOW and plan.ends_at == datetime(2026, 12, 13, 16, 0, tzinfo=UTC)
        assert plan.check_minutes == [480, 1200] and len(plan.token_nonce) == 32
        # 11:00 Beijing: today's 08:00 is past, 20:00 Beijing (12:00 UTC) is made at once
        assert checks(conn, plan.id) == [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
        assert plan_of(conn, blue) is None and plan_of(conn, red) is None
        [made] = events(conn, yellow)
        assert made.kind == "created" and made.at == NOW and "2026-12-14 00:00" in made.detail
        again = sync_plans(conn, NOW + timedelta(minutes=5), POLICY)
        assert (again["created"], again["extended"], again["closed"]) == (0, 0, 0)
        assert len(events(conn, yellow)) == 1


def test_a_longer_code_extends_the_plan_and_a_shorter_one_leaves_it(engine):
    with engine.begin() as conn:
        key = person(conn)
        sync_plans(conn, NOW, POLICY)
        first = plan_of(conn, key)
        # a later arrival: the code now runs to 2026-12-17 00:00 Beijing
        conn.execute(text("UPDATE persons SET expires_at = expires_at + interval '3 days' WHERE person_key = :k"),
                     {"k": key})
        assert sync_plans(conn, NOW + timedelta(hours=1), POLICY)["extended"] >= 1
        plan = plan_of(conn, key)
        assert plan.id == first.id and plan.ends_at == datetime(2026, 12, 16, 16, 0, tzinfo=UTC)
        assert events(conn, key)[-1].kind == "extended"
        assert "2026-12-17 00:00" in events(conn, key)[-1].detail and "2026-12-14 00:00" in events(conn, key)[-1].detail
        conn.execute(text("UPDATE persons SET expires_at = expires_at - interval '5 days' WHERE person_key = :k"),
                     {"k": key})
        sync_plans(conn, NOW + timedelta(hours=2), POLICY)
        assert plan_of(conn, key).ends_at == plan.ends_at and len(events(conn, key)) == 2


def test_observation_days_count_from_the_codes_own_start(engine):
    """observation_days 10 against the rule's 14 days: the plan ends 10 days after arrival, not 14."""
    policy = replace(POLICY, rules_days={"yellow-key-area": (10, 1)})
    with engine.begin() as conn:
        key = person(conn)
        sync_plans(conn, NOW, policy)
        plan = plan_of(conn, key)
        assert plan.ends_at == ARRIVED + timedelta(days=10) and plan.check_minutes == [480]
        assert checks(conn, plan.id) == []  # 08:00 is past; tomorrow's come with the day's job


def test_an_override_to_green_closes_the_plan_with_its_reason_and_drops_the_checks_to_come(engine):
    with engine.begin() as conn:
        key = person(conn)
        sync_plans(conn, NOW, POLICY)
        plan = plan_of(conn, key)
        assert checks(conn, plan.id)
        conn.execute(text("UPDATE persons SET colour = 'green', rule_id = 'override', expires_at = :e, "
                          "reason = '人工调整 / manual override: 核酸阴性，解除观察（demo_commander）' "
                          "WHERE person_key = :k"), {"k": key, "e": NOW + timedelta(days=7)})
        later = NOW + timedelta(hours=2)
        assert sync_plans(conn, later, POLICY)["closed"] >= 1
        plan = plan_of(conn, key)
        assert plan.status == "closed" and plan.closed_at == later
        assert "核酸阴性" in plan.close_reason and "green" in plan.close_reason
        assert checks(conn, plan.id) == []  # the 20:00 check is no longer asked for
        assert [e.kind for e in events(conn, key)] == ["created", "closed"]


def test_a_manual_yellow_follows_the_first_observed_rule_of_its_colour(engine):
    with engine.begin() as conn:
        short = person(conn, rule="override", set_at=NOW - timedelta(days=1), days=5)
        long = person(conn, rule="override", set_at=NOW - timedelta(days=1), days=30)
        sync_plans(conn, NOW, POLICY)
        assert plan_of(conn, short).ends_at == NOW + timedelta(days=4)  # the override's own end comes first
        assert plan_of(conn, long).ends_at == NOW + timedelta(days=13)  # 14 days from when it was set


def test_the_end_of_the_period_and_a_person_gone_close_plans(engine):
    with engine.begin() as conn:
        ending = person(conn, set_at=NOW - timedelta(days=13, hours=23))  # the code ends in an hour
        gone = person(conn)
        sync_plans(conn, NOW, POLICY)
        conn.execute(text("DELETE FROM persons WHERE person_key = :k"), {"k": gone})
        sync_plans(conn, NOW + timedelta(hours=2), POLICY)
        assert plan_of(conn, ending).status == "closed"
        assert "observation period completed" in plan_of(conn, ending).close_reason
        assert "no longer on record" in plan_of(conn, gone).close_reason


def test_a_raise_to_red_closes_and_a_new_yellow_code_opens_a_new_plan(engine):
    with engine.begin() as conn:
        key = person(conn)
        sync_plans(conn, NOW, POLICY)
        first = plan_of(conn, key)
        conn.execute(text("UPDATE persons SET colour = 'red', rule_id = 'red-follow-up-fever', "
                          "reason = '居家观察期间发热 / fever' WHERE person_key = :k"), {"k": key})
        sync_plans(conn, NOW + timedelta(hours=1), POLICY)
        assert plan_of(conn, key).status == "closed" and "red-follow-up-fever" in plan_of(conn, key).close_reason
        conn.execute(text("UPDATE persons SET colour = 'yellow', rule_id = 'yellow-key-area' WHERE person_key = :k"),
                     {"k": key})
        sync_plans(conn, NOW + timedelta(hours=2), POLICY)
        second = plan_of(conn, key)
        assert second.id != first.id and second.status == "active"
        assert second.starts_at == NOW + timedelta(hours=2) and second.token_nonce != first.token_nonce


def test_a_person_moved_to_another_grid_takes_his_plan_along(engine):
    with engine.begin() as conn:
        key = person(conn)
        sync_plans(conn, NOW, POLICY)
        conn.execute(text("UPDATE persons SET grid_id = (SELECT id FROM grids WHERE code = :g) WHERE person_key = :k"),
                     {"k": key, "g": OTHER_GRID})
        assert sync_plans(conn, NOW + timedelta(hours=1), POLICY)["moved"] >= 1
        assert plan_of(conn, key).grid_code == OTHER_GRID


@pytest.fixture(scope="module")
def match_engine(database_factory, pristine_district):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        yield database_factory("nanhai_obs_match", copy_of=pristine_district)


def test_the_matcher_makes_plans_and_an_override_closes_one_at_the_next_match(match_engine, tmp_path):
    from matching.pipeline import import_feed, run_match
    from tests.matching.feedfiles import valid_id, write_csv

    now = pd.Timestamp("2026-12-03 03:00", tz="UTC")
    rows = [[str(n), "张小明", valid_id(n), "13812345678", "", "113.15", "23.03", "WGS84", category,
             "2026-12-01 09:00"] for n, category in ((21, "重点地区返回"), (22, "返岗人员"))]
    import_feed(match_engine, write_csv(tmp_path / "police.csv", rows), "公安")
    run_match(match_engine, now=now)
    with match_engine.connect() as conn:
        plans = conn.execute(text("SELECT p.person_key, p.status, p.ends_at, s.colour FROM observation_plans p "
                                  "JOIN persons s USING (person_key)")).all()
    assert [(p.status, p.colour) for p in plans] == [("active", "yellow")]  # the blue returning worker has none
    # registered 2026-12-01 09:00 Beijing (no arrival date given), 14 days
    assert plans[0].ends_at == datetime(2026, 12, 15, 1, 0, tzinfo=UTC)
    with match_engine.begin() as conn:
        add_override(conn, plans[0].person_key, "green", "核酸阴性，解除观察", "demo_commander",
                     now.to_pydatetime() + timedelta(days=7))
    run_match(match_engine, now=now + pd.Timedelta(hours=1))
    with match_engine.connect() as conn:
        plan = plan_of(conn, plans[0].person_key)
    assert plan.status == "closed" and "核酸阴性，解除观察" in plan.close_reason


def test_rules_that_no_longer_ask_for_observation_close_every_plan(engine):
    """A rules version without observation_days anywhere: the plans close, each saying what its code is now."""
    quiet = replace(POLICY, rules_days={}, rule_colours={}, code_days={})
    with engine.begin() as conn:
        key = person(conn)
        sync_plans(conn, NOW, POLICY)
        assert sync_plans(conn, NOW + timedelta(hours=1), quiet)["closed"] >= 1
        assert conn.execute(text("SELECT count(*) FROM observation_plans WHERE status = 'active'")).scalar_one() == 0
        assert "yellow (yellow-key-area)" in plan_of(conn, key).close_reason
