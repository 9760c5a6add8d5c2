"""Check-ins against hand-computed windows (issue 25): which check a report counts for, on time or late, the
grace boundary, the extra reading outside any window, the refusals, and the data scope.

The policy is the shipped one: checks at 08:00 and 20:00 Beijing, a report counts from 240 minutes before a
check to 120 minutes after it (both ends included). The day is 2026-12-10 (Beijing, UTC+8): the 08:00 check is
due at 00:00 UTC, the 20:00 one at 12:00 UTC. Each test works in a transaction rolled back at its end.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import load_actor
from gis.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from observation.checks import CheckReport, parse_check, record_check
from observation.policy import observation_policy

BEIJING = timedelta(hours=8)
MORNING = datetime(2026, 12, 10, 8, tzinfo=UTC) - BEIJING  # 08:00 Beijing
EVENING = datetime(2026, 12, 10, 20, tzinfo=UTC) - BEIJING  # 20:00 Beijing
NORMAL = CheckReport(36.6, ("none",), None)


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A moment of 2026-12-10, Beijing time, as UTC."""
    return datetime(2026, 12, 10, hour, minute, second, micro, tzinfo=UTC) - BEIJING


def demo(conn, username: str) -> Actor:
    return load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = :u"),
                                         {"u": username}).scalar_one())


@pytest.fixture()
def plan(conn) -> int:
    """A plan in demo_worker's grid from 2026-12-03 to 2026-12-17 with the two checks of 2026-12-10."""
    grid_id = min(demo(conn, "demo_worker").grid_ids)
    plan_id = conn.execute(text(
        "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, token_nonce) "
        "VALUES ('obs-checks-1', :g, 'yellow-key-area', :s, :e, '{480,1200}', 'n1') RETURNING id"),
        {"g": grid_id, "s": at(0) - timedelta(days=7), "e": at(0) + timedelta(days=7)}).scalar_one()
    conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :m), (:p, :e)"),
                 {"p": plan_id, "m": MORNING, "e": EVENING})
    return plan_id


def checks(conn, plan_id: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT due_at, status, reported_at, temperature, channel FROM observation_checks WHERE plan_id = :p "
        "ORDER BY due_at"), {"p": plan_id})]


def record(conn, plan_id: int, now: datetime, report: CheckReport = NORMAL, actor: Actor | None = None) -> dict:
    worker = actor or demo(conn, "demo_worker")
    return record_check(conn, plan_id, report, "worker", now, worker, observation_policy())


def test_the_shipped_policy_is_the_one_these_windows_are_computed_for():
    policy = observation_policy()
    assert (policy.opens, policy.grace, policy.fever_at) == (timedelta(minutes=240), timedelta(minutes=120), 37.3)


def test_on_time_before_the_check_time_counts_for_it(conn, plan):
    answer = record(conn, plan, at(7, 30))
    assert (answer["due_at"], answer["late"], answer["status"], answer["fever"]) == (
        MORNING.isoformat(), False, "done", False)
    rows = checks(conn, plan)
    assert rows[0][1:] == ("done", at(7, 30), Decimal("36.6"), "worker") and rows[1][1] == "due"
    assert conn.execute(text("SELECT kind, actor_id FROM observation_events WHERE plan_id = :p"),
                        {"p": plan}).one() == ("check", demo(conn, "demo_worker").user_id)


def test_the_window_opens_exactly_opens_minutes_before(conn, plan):
    assert record(conn, plan, at(4, 0))["due_at"] == MORNING.isoformat()  # 08:00 - 240 min, included


def test_just_before_the_window_opens_is_an_extra_reading(conn, plan):
    now = at(3, 59, 59)
    answer = record(conn, plan, now)
    assert (answer["due_at"], answer["late"]) == (now.isoformat(), False)
    assert [r[1] for r in checks(conn, plan)] == ["done", "due", "due"]  # the extra row first (03:59:59)


def test_late_within_grace_counts_for_the_check_and_says_late(conn, plan):
    answer = record(conn, plan, at(9, 30))
    assert (answer["due_at"], answer["late"]) == (MORNING.isoformat(), True)
    assert checks(conn, plan)[0][1:3] == ("done", at(9, 30))


def test_exactly_at_the_grace_boundary_still_counts_late(conn, plan):
    answer = record(conn, plan, at(10, 0))  # 08:00 + 120 min
    assert (answer["due_at"], answer["late"]) == (MORNING.isoformat(), True)


def test_a_microsecond_past_the_grace_boundary_is_an_extra_reading(conn, plan):
    now = at(10, 0, 0, 1)
    answer = record(conn, plan, now)
    assert (answer["due_at"], answer["late"]) == (now.isoformat(), False)
    statuses = {r[0]: r[1] for r in checks(conn, plan)}
    assert statuses == {MORNING: "due", now: "done", EVENING: "due"}


def test_a_check_already_swept_missed_still_takes_a_report_at_the_boundary(conn, plan):
    conn.execute(text("UPDATE observation_checks SET status = 'missed', missed_at = :m WHERE plan_id = :p "
                      "AND due_at = :d"), {"m": at(10, 0), "p": plan, "d": MORNING})
    answer = record(conn, plan, at(10, 0))
    assert (answer["due_at"], answer["late"]) == (MORNING.isoformat(), True)
    assert checks(conn, plan)[0][1] == "done"


def test_outside_any_window_is_an_extra_done_row_and_leaves_the_checks_due(conn, plan):
    now = at(13, 0)  # the morning's grace ended at 10:00, the evening's window opens at 16:00
    answer = record(conn, plan, now)
    assert (answer["due_at"], answer["status"], answer["late"]) == (now.isoformat(), "done", False)
    assert [(r[0], r[1]) for r in checks(conn, plan)] == [(MORNING, "due"), (now, "done"), (EVENING, "due")]


def test_the_evening_window_and_a_second_report_after_a_done_check(conn, plan):
    assert record(conn, plan, at(16, 0))["due_at"] == EVENING.isoformat()
    again = record(conn, plan, at(17, 0), CheckReport(36.8, (), None))  # the evening check is done: extra
    assert again["due_at"] == at(17, 0).isoformat()
    assert len(checks(conn, plan)) == 3


def test_two_different_extra_readings_at_the_same_moment_are_both_kept(conn, plan):
    now = at(13, 0)
    first = record(conn, plan, now)
    second = record(conn, plan, now, CheckReport(36.9, (), None))
    assert second["check_id"] != first["check_id"] and second["due_at"] > first["due_at"]
    assert [r[1] for r in checks(conn, plan)] == ["due", "done", "done", "due"]


def test_the_same_report_at_the_same_moment_is_stored_once(conn, plan):
    first = record(conn, plan, at(7, 45))
    second = record(conn, plan, at(7, 45))
    assert second["check_id"] == first["check_id"] and len(checks(conn, plan)) == 2


def test_a_self_report_is_stored_as_such(conn, plan):
    answer = record_check(conn, plan, NORMAL, "self", at(19, 0), None, observation_policy())
    assert answer["due_at"] == EVENING.isoformat()
    assert checks(conn, plan)[1][4] == "self"
    assert conn.execute(text("SELECT recorded_by FROM observation_checks WHERE id = :c"),
                        {"c": answer["check_id"]}).scalar_one() is None


def test_a_closed_or_not_yet_begun_plan_refuses(conn, plan):
    with pytest.raises(Conflict):
        record(conn, plan, at(0) - timedelta(days=8))
    conn.execute(text("UPDATE observation_plans SET status = 'closed', closed_at = :c, close_reason = 'test' "
                      "WHERE id = :p"), {"c": at(6), "p": plan})
    with pytest.raises(Conflict):
        record(conn, plan, at(7, 30))
    assert all(r[1] == "due" for r in checks(conn, plan))


def test_the_channel_must_match_who_reports(conn, plan):
    with pytest.raises(InvalidRequest) as refused:
        record_check(conn, plan, NORMAL, "self", at(7), demo(conn, "demo_worker"), observation_policy())
    assert refused.value.field == "channel"
    with pytest.raises(InvalidRequest) as refused:
        record_check(conn, plan, NORMAL, "sms", at(7), demo(conn, "demo_worker"), observation_policy())
    assert refused.value.field == "channel"


def test_scope_a_worker_of_another_grid_gets_not_found(conn, plan):
    grid_id = min(demo(conn, "demo_worker").grid_ids)
    other = conn.execute(text("SELECT id FROM grids WHERE id <> :g ORDER BY id LIMIT 1"), {"g": grid_id}).scalar_one()
    stranger = Actor(None, "w-other", "worker", grid_ids=frozenset({other}))
    with pytest.raises(NotFound):
        record(conn, plan, at(7, 30), actor=stranger)
    with pytest.raises(NotFound):  # a fever too: refused before anything is raised
        record(conn, plan, at(7, 30), CheckReport(38.5, (), None), actor=stranger)
    with pytest.raises(NotFound):
        record(conn, 10**9, at(7, 30))  # no such plan: the same answer
    with pytest.raises(PermissionDenied):
        record(conn, plan, at(7, 30), actor=demo(conn, "demo_reporter"))
    assert all(r[1] == "due" for r in checks(conn, plan))
    # his supervisor and the commander may record it
    assert record(conn, plan, at(7, 30), actor=demo(conn, "demo_supervisor"))["due_at"] == MORNING.isoformat()
    assert record(conn, plan, at(19, 0), actor=demo(conn, "demo_commander"))["due_at"] == EVENING.isoformat()


@pytest.mark.parametrize(("payload", "expected"), [
    ({"temperature": 36.5}, CheckReport(36.5, (), None)),
    ({"temperature": "37.25", "symptoms": ["cough", "cough"]}, CheckReport(37.3, ("cough",), None)),
    ({"temperature": 34.0, "symptoms": ["none"], "note": "  "}, CheckReport(34.0, ("none",), None)),
    ({"temperature": 43, "note": " 在家 "}, CheckReport(43.0, (), "在家")),
    ({"symptoms": ["fever", "other"]}, CheckReport(None, ("fever", "other"), None)),
    ({"temperature": 36.5, "note": "电话13812345678，身份证44060519850303001X"},  # never stored in clear
     CheckReport(36.5, (), "电话***，身份证***")),
])
def test_parse_check_accepts(payload, expected):
    assert parse_check(payload) == expected


@pytest.mark.parametrize(("payload", "field"), [
    ({"temperature": 33.9}, "temperature"),
    ({"temperature": 43.1}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({}, "temperature"),
    ({"temperature": 36.5, "symptoms": ["sneeze"]}, "symptoms"),
    ({"temperature": 36.5, "symptoms": ["none", "cough"]}, "symptoms"),
    ({"temperature": 36.5, "symptoms": [1]}, "symptoms"),
    ({"temperature": 36.5, "note": "x" * 201}, "note"),
    ({"temperature": 36.5, "note": 5}, "note"),
    ({"temperature": 36.5, "colour": "red"}, "colour"),
])
def test_parse_check_refuses_naming_the_field(payload, field):
    with pytest.raises(InvalidRequest) as refused:
        parse_check(payload)
    assert refused.value.field == field


def test_fever_and_symptoms_are_abnormal_at_the_threshold():
    assert CheckReport(37.3, (), None).abnormal(37.3) and not CheckReport(37.2, ("none",), None).abnormal(37.3)
    assert CheckReport(None, ("cough",), None).abnormal(37.3) and CheckReport(36.5, ("other",), None).abnormal(37.3)
