"""Living demo activity: a generated day in a copy of the reference district, made through the lifecycle only."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from demo.accounts import create_demo_accounts
from demo.activity import DEMO_SOURCE, generate_activity
from tasks import lifecycle

NOW = datetime(2020, 2, 2, 9, 0, tzinfo=UTC)  # far from the clock of tasks other tests left in the copy
PERSONS = 2000
DAY = timedelta(hours=24)
OPEN = list(lifecycle.OPEN)


def _day(database_factory, seeded_engine, name: str):
    """A copy of the seeded district (other tests may have left tasks in it: the day's come after them)."""
    engine = database_factory(name, copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, "demo-password-1")
    return engine, generate_activity(engine, persons=PERSONS, now=NOW)


@pytest.fixture(scope="module")
def demo_day(database_factory, seeded_engine):
    """A copy of the reference district with the demo accounts and one generated day (not the shared work_engine)."""
    return _day(database_factory, seeded_engine, "nanhai_demo_day")


def _all(engine, statement: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(statement), params).all()


def _one(engine, statement: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def test_the_day_has_every_state_colour_lead_and_scan(demo_day):
    engine, counts = demo_day
    assert counts["already_generated"] is False
    assert {s for (s,) in _all(engine, "SELECT DISTINCT status FROM tasks")} == set(lifecycle.STATUSES)
    assert all(counts[f"status_{s}"] > 0 for s in lifecycle.STATUSES)
    assert _one(engine, "SELECT count(*) FROM tasks WHERE status = ANY(:open) AND due_at < :now",
                open=OPEN, now=NOW) >= 1
    actions = dict(_all(engine, "SELECT action, count(*) FROM task_events GROUP BY 1"))
    assert actions.get("escalate", 0) >= 1 and actions.get("rework", 0) >= 1
    assert actions.get("grant_extension", 0) >= 1 and actions.get("decline", 0) >= 1
    assert _one(engine, "SELECT count(*) FROM tasks WHERE escalation_level > 0 AND status = ANY(:open)",
                open=OPEN) >= 1
    assert {c for (c,) in _all(engine, "SELECT DISTINCT colour FROM persons")} == {"red", "yellow", "blue", "green"}
    assert {"red", "yellow", "blue"} <= {c for (c,) in _all(engine, "SELECT DISTINCT colour FROM flags")}
    assert _one(engine, "SELECT count(*) FROM persons") == counts["persons"] > PERSONS * 0.95
    assert _one(engine, "SELECT count(*) FROM feed_files WHERE source = :s AND file_name LIKE '%20200202%'",
                s=DEMO_SOURCE) == 1
    assert _one(engine, "SELECT count(*) FROM leads WHERE report_count > 1") >= 1
    assert _one(engine, "SELECT count(*) FROM leads WHERE status = 'triaged'") >= 1
    assert _one(engine, "SELECT count(*) FROM tasks WHERE source = 'lead'") >= 1
    assert _one(engine, "SELECT count(*) FROM scans") == counts["scans"] > 0
    assert _one(engine, "SELECT count(*) FROM scans WHERE scanned_at > :now OR scanned_at < :since",
                now=NOW, since=NOW - DAY) == 0
    assert _one(engine, "SELECT count(*) FROM tasks t JOIN scans s ON s.task_id = t.id "
                        "WHERE t.kind = 'checkpoint_alert' AND t.source = 'checkpoint'") >= 1
    sources = {s for (s,) in _all(engine, "SELECT DISTINCT source FROM tasks")}
    assert sources == {"matcher", "lead", "checkpoint", "manual", "follow_up"}  # follow_up: home visits, escorts


def test_demo_accounts_see_work_at_once(demo_day):
    engine, counts = demo_day
    mine = dict(_all(engine, "SELECT t.status, count(*) FROM tasks t JOIN users u ON u.id = t.assignee_id "
                             "WHERE u.username = 'demo_worker' GROUP BY 1"))
    assert counts["demo_worker_tasks"] == sum(mine.values()) >= 5
    assert {"dispatched", "accepted", "in_progress", "handled", "closed"} <= set(mine)
    in_grid = {s for (s,) in _all(engine, "SELECT DISTINCT status FROM tasks WHERE grid_code = '440605011001001'")}
    assert {"created", "declined", "cancelled"} <= in_grid
    closers = {a for (a,) in _all(engine, "SELECT DISTINCT e.actor FROM task_events e JOIN tasks t ON t.id = "
                                          "e.task_id WHERE t.grid_code = '440605011001001' AND e.action = 'close'")}
    assert "demo_supervisor" in closers
    assert _one(engine, "SELECT count(*) FROM leads l JOIN grids g ON g.id = l.grid_id "
                        "WHERE g.code = '440605011001001' AND l.status = 'open'") >= 1


def test_every_timeline_is_a_legal_chain_of_the_lifecycle(demo_day):
    engine, counts = demo_day
    rows = _all(engine, "SELECT e.task_id, e.seq, e.action, e.from_status, e.to_status, e.at, e.actor_role, "
                        "e.detail, e.geom IS NOT NULL AS located, t.status, t.kind, t.created_at "
                        "FROM task_events e JOIN tasks t ON t.id = e.task_id ORDER BY e.task_id, e.seq")
    assert rows
    timelines: dict[int, list] = {}
    for row in rows:
        timelines.setdefault(row.task_id, []).append(row)
    assert len(timelines) == _one(engine, "SELECT count(*) FROM tasks")
    for events in timelines.values():
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert (events[0].action, events[0].from_status, events[0].to_status) == ("create", None, "created")
        for before, event in zip(events, events[1:], strict=False):
            assert event.from_status == before.to_status, (event.task_id, event.seq)
            assert event.at >= before.at, (event.task_id, event.seq)
            if event.action == "escalate":
                assert event.to_status == event.from_status and event.actor_role == "system"
                continue
            action = lifecycle.ACTIONS[event.action]
            assert event.from_status in action.sources and event.actor_role in action.roles
            assert event.to_status == (action.target or event.from_status)
        assert events[-1].to_status == events[0].status
        if NOW - DAY <= events[0].created_at <= NOW:  # the generated day's, not another test's
            assert events[-1].at <= NOW
    made = _all(engine, "SELECT id FROM tasks WHERE created_at BETWEEN :since AND :now", since=NOW - DAY, now=NOW)
    assert len(made) == counts["tasks"]
    handled = [e for events in timelines.values() for e in events if e.action == "handle"]
    assert handled and all(e.located and e.detail["result"] for e in handled)
    assert all(34 <= e.detail["temperature"] <= 43 for e in handled if e.kind in ("escort", "home_visit"))


def test_a_second_run_changes_nothing(demo_day):
    engine, counts = demo_day
    tables = ("tasks", "task_events", "persons", "source_records", "feed_files", "leads", "lead_reports", "scans",
              "flags", "audit_log")
    before = {t: _one(engine, f"SELECT count(*) FROM {t}") for t in tables}
    again = generate_activity(engine, persons=PERSONS, now=NOW + timedelta(hours=3))
    assert again["already_generated"] is True
    assert {k: v for k, v in again.items() if k != "already_generated"} == \
        {k: v for k, v in counts.items() if k != "already_generated"}
    assert {t: _one(engine, f"SELECT count(*) FROM {t}") for t in tables} == before


def test_the_same_seed_makes_the_same_day(demo_day, database_factory, seeded_engine):
    engine, counts = demo_day
    twin, twin_counts = _day(database_factory, seeded_engine, "nanhai_demo_twin")
    query = ("SELECT t.kind, t.status, t.grid_code, u.username, t.created_at, t.version FROM tasks t "
             "LEFT JOIN users u ON u.id = t.assignee_id WHERE t.created_at BETWEEN :since AND :now "
             "ORDER BY t.created_at, t.grid_code, t.kind, t.version")
    assert twin_counts == counts
    window = {"since": NOW - DAY, "now": NOW}
    assert _all(twin, query, **window) == _all(engine, query, **window)


def test_the_day_shows_arrivals_from_hubei_and_native_place_verifications(demo_day):
    """A tenth of the feed's rows give 出发地 / 抵达日期 and 2 % of residents hold Hubei ID numbers: the default
    rules code arrivals from Hubei yellow from their arrival date and ask to verify the natives who did not travel."""
    engine, _ = demo_day
    assert _one(engine, "SELECT count(*) FROM persons WHERE colour = 'yellow' AND rule_id = 'yellow-key-area' "
                        "AND explanation LIKE '%days from arrival on%'") >= 5
    assert _one(engine, "SELECT count(*) FROM source_records WHERE origin IS NOT NULL AND arrived_on IS NOT NULL") \
        >= PERSONS * 0.09
    assert _one(engine, "SELECT count(*) FROM tasks WHERE kind = 'verification' AND source = 'matcher'") >= 5
    assert _one(engine, "SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id "
                        "WHERE t.kind = 'verification' AND e.action = 'accept'") >= 1


def test_the_day_has_follow_ups_for_every_role(demo_day):
    """Plans for the persons coded yellow-key-area (demo_worker's grid among them), a day of check-ins (on time,
    late, missed, a few fevers), a home visit after two misses, and the desks' figures over them."""
    from accounts.actor import Actor
    from observation.overview import grid_follow_ups, lost_to_follow_up, wall_counters

    engine, counts = demo_day
    demo = "440605011001001"
    assert counts["observation_plans"] >= 5 and counts["demo_grid_plans"] >= 3
    assert counts["checks_done"] > 0 and counts["checks_missed"] > 0 and counts["checks_due"] > 0
    assert counts["late_check_ins"] > 0 and counts["fevers"] >= 1 and counts["visit_tasks"] >= 1
    plans = _one(engine, "SELECT count(*) FROM observation_plans p WHERE p.person_key IN (SELECT person_key FROM "
                         "persons WHERE rule_id = 'yellow-key-area')")
    assert plans >= 5
    late = _one(engine, "SELECT count(*) FROM observation_checks WHERE status = 'done' AND reported_at > due_at "
                        "+ interval '30 minutes' AND reported_at BETWEEN :since AND :now", since=NOW - DAY, now=NOW)
    assert late >= 1, "some reports came late, inside the grace"
    assert _one(engine, "SELECT count(*) FROM observation_checks WHERE status = 'done' AND temperature >= 37.3") >= 1
    in_grid = dict(_all(engine, "SELECT c.status, count(*) FROM observation_checks c JOIN observation_plans p "
                                "ON p.id = c.plan_id JOIN grids g ON g.id = p.grid_id WHERE g.code = :g GROUP BY 1",
                        g=demo))
    assert in_grid.get("done", 0) >= 3 and in_grid.get("missed", 0) >= 3 and in_grid.get("due", 0) >= 1
    assert _one(engine, "SELECT count(*) FROM tasks t JOIN observation_events e ON e.task_id = t.id "
                        "WHERE e.kind = 'visit_task' AND t.kind = 'home_visit' AND t.grid_code = :g", g=demo) >= 1
    assert _one(engine, "SELECT count(*) FROM observation_checks c JOIN observation_plans p ON p.id = c.plan_id "
                        "JOIN grids g ON g.id = p.grid_id JOIN users u ON u.id = c.recorded_by "
                        "WHERE g.code = :g AND u.username = 'demo_worker' AND c.temperature = 38.1", g=demo) == 1
    with engine.connect() as conn:
        grid_id, community = conn.execute(text("SELECT id, community_id FROM grids WHERE code = :g"),
                                          {"g": demo}).one()
        worker = Actor(1, "demo_worker", "worker", community_id=community, grid_ids=frozenset({grid_id}))
        rows = grid_follow_ups(conn, worker, demo, NOW)
        assert len(rows) >= 3 and any(r["missed_in_a_row"] >= 2 for r in rows)
        assert any(r["last_temperature"] is not None for r in rows)
        counters = wall_counters(conn, NOW)
        assert counters["observed"] >= 5 and counters["checks_missed_today"] + counters["fevers_today"] >= 1
        assert lost_to_follow_up(conn, Actor(2, "c", "commander"), NOW)[1] >= 1, "silent a day: lost to follow-up"
