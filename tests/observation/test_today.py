"""The worker's "today's follow-ups" (issue 25) against hand-computed times: who is listed (scope, closed and ended
plans left out), the day of the plan, the next check (due, late within its grace, tomorrow's when today's are
done), today's checks, the last report, and the first miss listed first.

The day is 2026-12-10 (Beijing, UTC+8): the 08:00 check is due at 00:00 UTC, the 20:00 one at 12:00 UTC. Each test
works in a transaction rolled back at its end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, text

from accounts.actor import Actor
from accounts.repository import load_actor
from gis.errors import PermissionDenied
from observation.checks import CheckReport, record_check
from observation.policy import observation_policy
from observation.today import follow_ups, next_scheduled

BEIJING = timedelta(hours=8)


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    """A moment of 2026-12-<day>, Beijing time, as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - BEIJING


MORNING, EVENING = at(8), at(20)


def when(iso: str) -> datetime:
    """An answer's ISO time as the instant it names."""
    return datetime.fromisoformat(iso)


def demo(conn: Connection, username: str) -> Actor:
    return load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = :u"),
                                         {"u": username}).scalar_one())


def add_plan(conn: Connection, key: str, grid_id: int, starts: datetime, ends: datetime,
             checks: tuple[datetime, ...] = (MORNING, EVENING), name: str = "王*明", nonce: str = "n" * 22) -> int:
    """A person (masked, yellow) in ``grid_id`` with an active plan and the given checks, due."""
    conn.execute(text(
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, confidence, grid_id) "
        "VALUES (:k, '4406**********0010', :n, 'yellow', '重点地区 / key area', 'yellow-key-area', 1.0, :g)"),
        {"k": key, "n": name, "g": grid_id})
    plan_id = conn.execute(text(
        "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, token_nonce) "
        "VALUES (:k, :g, 'yellow-key-area', :s, :e, '{480,1200}', :n) RETURNING id"),
        {"k": key, "g": grid_id, "s": starts, "e": ends, "n": nonce}).scalar_one()
    for due in checks:
        conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :d)"), {"p": plan_id, "d": due})
    return int(plan_id)


@pytest.fixture()
def worker(conn) -> Actor:
    return demo(conn, "demo_worker")


@pytest.fixture()
def plan(conn, worker) -> int:
    """A plan in demo_worker's grid from 2026-12-03 08:00 to 2026-12-17 08:00 Beijing: 14 days, today is day 8."""
    return add_plan(conn, "obs-today-1", min(worker.grid_ids), at(8, day=3), at(8, day=17))


def mine(conn, actor: Actor, now: datetime) -> dict[int, dict]:
    return {item["plan_id"]: item for item in follow_ups(conn, actor, now)}


def report(conn, plan_id: int, now: datetime, actor: Actor, temperature: float = 36.6) -> dict:
    return record_check(conn, plan_id, CheckReport(temperature, ("none",), None), "worker", now, actor,
                        observation_policy())


def test_before_the_morning_check_it_is_next_and_the_day_is_counted(conn, worker, plan):
    item = mine(conn, worker, at(7))[plan]
    assert (item["name_masked"], item["id_masked"], item["day"], item["days"]) == ("王*明", "4406**********0010", 8, 14)
    assert (when(item["next_check_at"]), item["next_state"], item["last_missed"], item["last_report"]) == (
        MORNING, "due", False, None)
    assert [(when(c["due_at"]), c["status"]) for c in item["checks_today"]] == [(MORNING, "due"), (EVENING, "due")]
    assert "obs-today-1" == item["person_key"] and item["grid_code"] in worker.grid_codes


def test_past_its_time_unreported_the_check_is_late_then_the_evening_is_next(conn, worker, plan):
    assert mine(conn, worker, at(9))[plan]["next_state"] == "late"
    report(conn, plan, at(9, 30), worker, 36.8)
    item = mine(conn, worker, at(9, 31))[plan]
    assert (when(item["next_check_at"]), item["next_state"], item["done_today"]) == (EVENING, "due", 1)
    assert item["last_report"]["temperature"] == 36.8 and item["last_report"]["channel"] == "worker"
    assert item["last_report"]["abnormal"] is False
    report(conn, plan, at(20, 1), worker, 37.3)  # exactly fever_at: a fever
    item = mine(conn, worker, at(20, 2))[plan]
    assert [c["abnormal"] for c in item["checks_today"]] == [False, True] and item["last_report"]["abnormal"]
    assert item["checks_today"][0]["status"] == "done" and item["checks_today"][0]["temperature"] == 36.8


def test_when_todays_checks_are_done_the_next_is_tomorrow_morning(conn, worker, plan):
    report(conn, plan, at(8), worker)
    report(conn, plan, at(20), worker)
    item = mine(conn, worker, at(20, 5))[plan]
    assert (when(item["next_check_at"]), item["next_state"], item["done_today"]) == (at(8, day=11), "scheduled", 2)


def test_a_missed_check_puts_the_person_first(conn, worker, plan):
    other = add_plan(conn, "obs-today-2", min(worker.grid_ids), at(8, day=3), at(8, day=17), name="李*")
    conn.execute(text("UPDATE observation_checks SET status = 'missed', missed_at = :m WHERE plan_id = :p "
                      "AND due_at = :d"), {"p": plan, "d": MORNING, "m": at(10)})
    listed = follow_ups(conn, worker, at(11))
    assert [i["plan_id"] for i in listed[:2]] == [plan, other]
    assert (listed[0]["last_missed"], listed[0]["missed_today"], listed[1]["last_missed"]) == (True, 1, False)


def test_scope_closed_and_ended_plans(conn, worker, plan):
    supervisor, reporter = demo(conn, "demo_supervisor"), demo(conn, "demo_reporter")
    elsewhere = conn.execute(text("SELECT id FROM grids WHERE id <> ALL(:mine) ORDER BY id LIMIT 1"),
                             {"mine": sorted(worker.grid_ids)}).scalar_one()
    foreign = add_plan(conn, "obs-today-3", elsewhere, at(8, day=3), at(8, day=17))
    ended = add_plan(conn, "obs-today-4", min(worker.grid_ids), at(8, day=1), at(6, day=10))
    closed = add_plan(conn, "obs-today-5", min(worker.grid_ids), at(8, day=3), at(8, day=17))
    conn.execute(text("UPDATE observation_plans SET status = 'closed', closed_at = :t, close_reason = 'x' "
                      "WHERE id = :p"), {"p": closed, "t": at(7)})
    listed = mine(conn, worker, at(9))
    assert plan in listed and not {foreign, ended, closed} & set(listed)
    assert plan in mine(conn, supervisor, at(9))
    assert {plan, foreign} <= set(mine(conn, demo(conn, "demo_commander"), at(9)))
    with pytest.raises(PermissionDenied):
        follow_ups(conn, reporter, at(9))


def test_the_schedule_after_the_last_check_of_the_plan_is_empty():
    ends = at(8, day=17)
    assert next_scheduled([480, 1200], at(21, day=16), ends) is None
    assert next_scheduled([480, 1200], at(21, day=15), ends) == at(8, day=16)
    assert next_scheduled([480], at(7, day=15), ends) == at(8, day=15)
