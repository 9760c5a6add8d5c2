"""The day's checks and the missed-check sweep against times computed by hand (Beijing = UTC+8, no summer time):
a day's checks made once, a plan that crosses midnight, a check at due + grace exactly (not yet missed: the
convention of :mod:`observation.schedule`) and a microsecond later (missed), two misses in a row raising one home
visit through the task workflow, a report between them breaking the run."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from observation.policy import observation_policy
from observation.schedule import BEIJING as BEIJING_ZONE
from observation.schedule import VISIT_SOURCE, beijing_midnight, make_checks, sweep_missed

GRID = "440605011001001"  # demo_worker's grid
POLICY = observation_policy()  # 08:00 and 20:00, grace 120 minutes, a visit after 2 misses in a row


@pytest.fixture(scope="module")
def engine(database_factory, pristine_district):
    from demo.accounts import create_demo_accounts

    engine = database_factory("nanhai_obs_schedule", copy_of=pristine_district)
    with engine.begin() as conn:
        create_demo_accounts(conn, "demo-password-1")
    return engine


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def plan(conn, starts: datetime, ends: datetime, minutes: tuple[int, ...] = (480, 1200), grid: str | None = GRID,
         status: str = "active") -> tuple[int, str]:
    """A person (yellow, in ``grid``) and his plan; (plan id, person key)."""
    key = "obs-" + secrets.token_hex(8)
    conn.execute(text(
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, confidence, grid_id, "
        "unplaced_reason, set_at, expires_at) SELECT :k, '440605********0012', '赵*', 'yellow', 'r', "
        "'yellow-key-area', 1.0, (SELECT id FROM grids WHERE code = :g), :why, :e - interval '14 days', :e"),
        {"k": key, "g": grid, "why": None if grid else "no location", "e": ends})
    plan_id = conn.execute(text(
        "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, status, "
        "closed_at, token_nonce) VALUES (:k, (SELECT id FROM grids WHERE code = :g), 'yellow-key-area', :s, :e, "
        ":m, :status, :closed, 'n') RETURNING id"),
        {"k": key, "g": grid, "s": starts, "e": ends, "m": list(minutes), "status": status,
         "closed": starts if status == "closed" else None}).scalar_one()
    return plan_id, key


def due_times(conn, plan_id: int) -> list[datetime]:
    return list(conn.execute(text("SELECT due_at FROM observation_checks WHERE plan_id = :p ORDER BY due_at"),
                             {"p": plan_id}).scalars())


def check_rows(conn, plan_id: int) -> list:
    return conn.execute(text("SELECT due_at, status, missed_at FROM observation_checks WHERE plan_id = :p "
                             "ORDER BY due_at"), {"p": plan_id}).all()


def visits(conn, key: str) -> list:
    return conn.execute(text(
        "SELECT t.id, t.kind, t.source, t.status, t.title, g.code AS grid, e.detail FROM observation_events e "
        "JOIN tasks t ON t.id = e.task_id JOIN grids g ON g.id = t.grid_id "
        "WHERE e.person_key = :k AND e.kind = 'visit_task' ORDER BY t.id"), {"k": key}).all()


def report(conn, plan_id: int, due: datetime, at: datetime) -> None:
    """The check of ``due`` reported at ``at`` (as helper V's record_check marks it)."""
    conn.execute(text("UPDATE observation_checks SET status = 'done', reported_at = :at, temperature = 36.5, "
                      "channel = 'worker' WHERE plan_id = :p AND due_at = :d"), {"p": plan_id, "d": due, "at": at})


def test_beijing_midnight_is_16_utc_the_day_before():
    assert beijing_midnight(date(2026, 12, 4)) == utc(2026, 12, 3, 16)


def test_a_days_checks_are_the_plans_times_in_beijing_and_made_once(engine):
    with engine.begin() as conn:
        plan_id, _ = plan(conn, utc(2026, 12, 1), utc(2026, 12, 20))
        made = make_checks(conn, date(2026, 12, 4))
        assert made >= 2
        # 08:00 and 20:00 Beijing on 12-04 = 00:00 and 12:00 UTC
        assert due_times(conn, plan_id) == [utc(2026, 12, 4, 0), utc(2026, 12, 4, 12)]
        assert make_checks(conn, date(2026, 12, 4)) == 0  # run twice: nothing more


def test_a_plan_crossing_midnight_gets_only_the_checks_inside_its_period(engine):
    """Starts 2026-12-05 21:30 Beijing, ends 2026-12-07 09:00 Beijing; checks at 00:30 (on the UTC day before),
    08:00 and 23:30 Beijing."""
    with engine.begin() as conn:
        plan_id, _ = plan(conn, utc(2026, 12, 5, 13, 30), utc(2026, 12, 7, 1, 0), minutes=(30, 480, 1410))
        for day in (date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 7), date(2026, 12, 8)):
            make_checks(conn, day)
        assert due_times(conn, plan_id) == [
            utc(2026, 12, 5, 15, 30),  # 12-05 23:30 Beijing (after the start; 00:30 and 08:00 were before it)
            utc(2026, 12, 5, 16, 30),  # 12-06 00:30 Beijing: on the UTC day before
            utc(2026, 12, 6, 0, 0),  # 12-06 08:00
            utc(2026, 12, 6, 15, 30),  # 12-06 23:30
            utc(2026, 12, 6, 16, 30),  # 12-07 00:30
            utc(2026, 12, 7, 0, 0),  # 12-07 08:00, before the end at 09:00; 23:30 is after it
        ]


def test_a_check_at_due_plus_grace_exactly_is_not_yet_missed(engine):
    """Due 12-10 23:30 Beijing (15:30 UTC), grace 120 minutes: missed only after 12-11 01:30 Beijing, past
    midnight."""
    with engine.begin() as conn:
        plan_id, key = plan(conn, utc(2026, 12, 10), utc(2026, 12, 20), minutes=(1410,))
        make_checks(conn, date(2026, 12, 10))
        edge = utc(2026, 12, 10, 17, 30)  # due + grace, 12-11 01:30 Beijing
        sweep_missed(conn, edge - timedelta(minutes=1), POLICY)
        sweep_missed(conn, edge, POLICY)
        assert [c.status for c in check_rows(conn, plan_id)] == ["due"]
        counts = sweep_missed(conn, edge + timedelta(microseconds=1), POLICY)
        assert counts["missed"] >= 1
        [missed] = check_rows(conn, plan_id)
        assert missed.status == "missed" and missed.missed_at == edge  # when it became missed, not the sweep's time
        [event] = conn.execute(text("SELECT kind, at, detail FROM observation_events WHERE person_key = :k"),
                               {"k": key}).all()
        assert event.kind == "missed" and event.at == edge and "12-10 23:30" in event.detail
        sweep_missed(conn, edge + timedelta(hours=1), POLICY)  # swept again: marked once, one event
        assert conn.execute(text("SELECT count(*) FROM observation_events WHERE person_key = :k"),
                            {"k": key}).scalar_one() == 1


def test_two_misses_in_a_row_raise_one_home_visit_in_the_persons_grid(engine):
    with engine.begin() as conn:
        plan_id, key = plan(conn, utc(2026, 12, 11), utc(2026, 12, 25))
        make_checks(conn, date(2026, 12, 12))  # 12-12 00:00 and 12:00 UTC
        morning_missed = utc(2026, 12, 12, 2, 0, 1)
        assert sweep_missed(conn, morning_missed, POLICY)["missed"] >= 1
        assert visits(conn, key) == []  # one miss: the worker's list shows it, no task yet
        evening_missed = utc(2026, 12, 12, 14, 0, 1)
        counts = sweep_missed(conn, evening_missed, POLICY)
        assert counts["visits"] >= 1
        [visit] = visits(conn, key)
        assert (visit.kind, visit.source, visit.grid) == ("home_visit", VISIT_SOURCE, GRID)
        assert visit.status in ("created", "dispatched") and visit.title.endswith("：赵*")
        assert "12-12 20:00" in visit.detail and "2 checks missed in a row" in visit.detail
        task = conn.execute(text("SELECT person_key, sla_minutes, due_at, created_at FROM tasks WHERE id = :t"),
                            {"t": visit.id}).one()
        assert task.person_key == key and task.created_at == evening_missed
        assert task.due_at == evening_missed + timedelta(minutes=task.sla_minutes)  # the kind's time limit
        # sweeping again, or a third miss while the visit is open, raises no second one
        sweep_missed(conn, evening_missed + timedelta(minutes=5), POLICY)
        make_checks(conn, date(2026, 12, 13))
        sweep_missed(conn, utc(2026, 12, 13, 2, 0, 1), POLICY)
        assert len(visits(conn, key)) == 1


def test_a_closed_visit_then_a_new_miss_raises_another(engine):
    with engine.begin() as conn:
        plan_id, key = plan(conn, utc(2026, 12, 14), utc(2026, 12, 25))
        make_checks(conn, date(2026, 12, 14))
        sweep_missed(conn, utc(2026, 12, 14, 14, 0, 1), POLICY)
        [visit] = visits(conn, key)
        conn.execute(text("UPDATE tasks SET status = 'closed', closed_at = :t WHERE id = :id"),
                     {"t": utc(2026, 12, 14, 15), "id": visit.id})
        sweep_missed(conn, utc(2026, 12, 14, 16), POLICY)
        assert len(visits(conn, key)) == 1  # no new miss since the visit
        make_checks(conn, date(2026, 12, 15))
        sweep_missed(conn, utc(2026, 12, 15, 2, 0, 1), POLICY)
        assert len(visits(conn, key)) == 2  # still silent after the visit: the last two are missed again


def test_a_report_between_two_misses_breaks_the_run(engine):
    with engine.begin() as conn:
        plan_id, key = plan(conn, utc(2026, 12, 16), utc(2026, 12, 25))
        make_checks(conn, date(2026, 12, 17))
        make_checks(conn, date(2026, 12, 18))
        sweep_missed(conn, utc(2026, 12, 17, 2, 0, 1), POLICY)  # 12-17 08:00 missed
        report(conn, plan_id, utc(2026, 12, 17, 12), utc(2026, 12, 17, 12, 5))  # 20:00 reported
        sweep_missed(conn, utc(2026, 12, 18, 2, 0, 1), POLICY)  # 12-18 08:00 missed
        assert [c.status for c in check_rows(conn, plan_id)] == ["missed", "done", "missed", "due"]
        assert visits(conn, key) == []


def test_three_in_a_row_when_the_rules_say_three(engine):
    policy = replace(POLICY, missed_in_a_row_for_visit=3)
    with engine.begin() as conn:
        plan_id, key = plan(conn, utc(2026, 12, 19), utc(2026, 12, 25))
        make_checks(conn, date(2026, 12, 20))
        make_checks(conn, date(2026, 12, 21))
        sweep_missed(conn, utc(2026, 12, 20, 14, 0, 1), policy)
        assert visits(conn, key) == []
        sweep_missed(conn, utc(2026, 12, 21, 2, 0, 1), policy)
        assert len(visits(conn, key)) == 1


def test_no_visit_for_a_closed_plan_or_one_without_a_grid(engine):
    with engine.begin() as conn:
        closed_id, closed_key = plan(conn, utc(2026, 12, 22), utc(2026, 12, 28))
        make_checks(conn, date(2026, 12, 22))
        conn.execute(text("UPDATE observation_plans SET status = 'closed', closed_at = :t WHERE id = :p"),
                     {"t": utc(2026, 12, 22, 1), "p": closed_id})
        nowhere_id, nowhere_key = plan(conn, utc(2026, 12, 22), utc(2026, 12, 28), grid=None)
        make_checks(conn, date(2026, 12, 22))
        counts = sweep_missed(conn, utc(2026, 12, 22, 14, 0, 1), POLICY)
        assert [c.status for c in check_rows(conn, closed_id)] == ["missed", "missed"]
        assert visits(conn, closed_key) == [] and visits(conn, nowhere_key) == []
        assert counts["unplaced"] >= 1


def test_the_jobs_make_the_days_checks_at_0005_beijing_and_sweep_every_5_minutes():
    from procrastinate import SyncPsycopgConnector

    from jobs.queue import OBSERVATION_DAY, OBSERVATION_SWEEP, make_app

    periodic = {name: task for (name, _), task in make_app(SyncPsycopgConnector()).periodic_registry
                .periodic_tasks.items()}
    start = datetime(2026, 12, 31, 12, 2, tzinfo=UTC).timestamp()
    day = periodic[OBSERVATION_DAY].croniter.get_next(ret_type=float, start_time=start)
    assert datetime.fromtimestamp(day, UTC).astimezone(BEIJING_ZONE).strftime("%m-%d %H:%M") == "01-01 00:05"
    sweep = periodic[OBSERVATION_SWEEP].croniter
    ticks = [sweep.get_next(ret_type=float, start_time=start)]
    ticks.append(sweep.get_next(ret_type=float, start_time=ticks[0]))
    assert [datetime.fromtimestamp(t, UTC).minute for t in ticks] == [5, 10]
    assert periodic[OBSERVATION_DAY].task.lock == periodic[OBSERVATION_SWEEP].task.lock == "observation"


def test_the_worker_runs_the_day_and_the_sweep(engine):
    import asyncio

    from procrastinate.periodic import PeriodicDeferrer

    from jobs.queue import OBSERVATION_DAY, OBSERVATION_SWEEP, worker_app
    from jobs.worker import run_worker

    now = datetime.now(UTC)
    with engine.begin() as conn:
        plan_id, _ = plan(conn, now - timedelta(days=2), now + timedelta(days=5))
        conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :d)"),
                     {"p": plan_id, "d": now - timedelta(hours=3)})
    url = engine.url.render_as_string(hide_password=False)
    app = worker_app(url)
    tasks = {name: task for (name, _), task in app.periodic_registry.periodic_tasks.items()}

    async def defer() -> None:
        async with app.open_async():
            for name in (OBSERVATION_DAY, OBSERVATION_SWEEP):
                await PeriodicDeferrer(app.periodic_registry).defer_jobs([(tasks[name], int(now.timestamp()))])

    asyncio.run(defer())
    run_worker(url, once=True, niceness=0, install_signal_handlers=False)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status FROM observation_checks WHERE plan_id = :p AND due_at = :d"),
                            {"p": plan_id, "d": now - timedelta(hours=3)}).scalars().all()
        today = conn.execute(text("SELECT count(*) FROM observation_checks WHERE plan_id = :p AND due_at >= :m "
                                  "AND due_at < :m + interval '1 day' AND due_at <> :own"),
                             {"p": plan_id, "m": beijing_midnight(now.astimezone(BEIJING_ZONE).date()),
                              "own": now - timedelta(hours=3)}).scalar_one()
        jobs = dict(conn.execute(text("SELECT task_name, status FROM procrastinate_jobs WHERE task_name LIKE "
                                      "'nanhai.observation%'")).all())
    assert rows == ["missed"]
    # today's 08:00 and 20:00 Beijing, but for one already more than the grace period past
    expected = sum(1 for minutes in (480, 1200)
                   if beijing_midnight(now.astimezone(BEIJING_ZONE).date()) + timedelta(minutes=minutes)
                   >= now - POLICY.grace)
    assert today == expected
    assert jobs == {OBSERVATION_DAY: "succeeded", OBSERVATION_SWEEP: "succeeded"}


def test_a_report_at_due_plus_grace_exactly_counts_for_its_check_and_the_sweep_then_leaves_it(engine):
    """The same edge seen from both sides: at 10:00 Beijing exactly the 08:00 check is not missed, so a report
    then (observation.checks.record_check, late) counts for it; a sweep at the same instant and after marks
    nothing."""
    from accounts.repository import load_actor
    from observation.checks import CheckReport, record_check

    with engine.begin() as conn:
        plan_id, key = plan(conn, utc(2026, 12, 23), utc(2027, 1, 3))
        make_checks(conn, date(2026, 12, 24))
        edge = utc(2026, 12, 24, 2, 0)  # 08:00 Beijing + 120 minutes
        sweep_missed(conn, edge, POLICY)
        assert check_rows(conn, plan_id)[0].status == "due"
        worker = load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = 'demo_worker'"))
                            .scalar_one())
        done = record_check(conn, plan_id, CheckReport(36.6, ("none",)), "worker", edge, worker, POLICY)
        assert done["due_at"] == utc(2026, 12, 24, 0, 0).isoformat() and done["late"] is True
        sweep_missed(conn, edge + timedelta(minutes=5), POLICY)
        assert [c.status for c in check_rows(conn, plan_id)] == ["done", "due"]
        assert visits(conn, key) == []
