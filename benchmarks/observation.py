"""`gridctl bench observation`: the day's checks and the missed-check sweep for 100,000 persons in observation.

The benchmark's own database (migrated, the reference district, the demo accounts) gets PERSONS yellow persons
(``yellow-key-area``, spread over every grid), and their plans made by :func:`observation.plans.sync_plans` as the
matcher makes them (timed: a figure of its own). Each plan then has three days of checks behind it (the 08:00 and
20:00 Beijing checks of days D-3 to D-1, all reported but for one plan in 500 that missed D-1's 20:00), and day
D's: 08:00 reported by nine persons in ten, 20:00 still to come. Not timed. Then, each timed in a transaction
that is rolled back (so every repeat does the same work):

- **day's checks**: :func:`observation.schedule.make_checks` of day D+1 (2 × PERSONS rows, into a table of
  1.6 million with its indexes). Target ≤ 2 s. Peers measured in the same run: a plain COUNT of the same rows
  (the plans × their times in the period), and the same rows inserted into a bare temporary table (no index,
  no constraint): what the statement costs beyond reading and writing them.
- **sweep**: :func:`observation.schedule.sweep_missed` at D 10:01 Beijing: the one person in ten who did not
  report at 08:00 is marked missed (an event each), and the one in 500 who had missed the evening before too
  gets a home visit through the task workflow. Target ≤ 1 s. Peer: a plain COUNT of the checks it marks (the
  due checks past the grace period, through the same index). Its marking step is also timed alone; the rest is
  the home visits (one ``create_task`` each, with its dispatch: ``pick_worker`` reads the neighbouring grids only
  when the person's own grid has nobody on duty).
- and, once, :func:`observation.plans.sync_plans` with nothing to change (what every match adds).

Printed: each repeat, the median, the peers; the last line is JSON. The machine is shared (two cores): figures
are of this machine at that moment.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from observation.plans import sync_plans
from observation.policy import observation_policy
from observation.schedule import _MARK_MISSED, BEIJING, beijing_midnight, make_checks, sweep_missed

PREFIX = "bench-obs-"
DAY_TARGET_S = 2.0
SWEEP_TARGET_S = 1.0


def _seconds(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def _rolled_back(engine: Engine, work: Callable[[Connection], Any]) -> tuple[float, Any]:
    """``work`` timed in a transaction that is then rolled back."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            return _seconds(lambda: work(conn))
        finally:
            transaction.rollback()


def prepare(engine: Engine, persons: int, day: date, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """The benchmark's persons, plans and checks (see the module); returns what making the plans took."""
    from demo.accounts import create_demo_accounts

    policy = observation_policy()
    arrived = beijing_midnight(day - timedelta(days=3))
    with engine.begin() as conn:
        if not conn.execute(text("SELECT EXISTS (SELECT FROM users WHERE username = 'demo_worker')")).scalar():
            create_demo_accounts(conn, "bench-password-1")
        conn.execute(text("DELETE FROM observation_plans WHERE person_key LIKE :p"), {"p": PREFIX + "%"})
        conn.execute(text("DELETE FROM persons WHERE person_key LIKE :p"), {"p": PREFIX + "%"})
        echo(f"{persons:,} 名黄码人员 / yellow persons")
        conn.execute(text(
            "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, sources, set_at, "
            "expires_at, method, confidence, grid_id) "
            "SELECT :p || i, '440605********' || lpad(CAST(i % 10000 AS text), 4, '0'), '测*', 'yellow', "
            "'14 天内自重点地区抵达 / arrived from a key area', 'yellow-key-area', '公安', :s, :e, 'point', 1.0, "
            "g.ids[1 + i % cardinality(g.ids)] "
            "FROM generate_series(1, :n) i, (SELECT array_agg(id ORDER BY id) AS ids FROM grids) g"),
            {"p": PREFIX, "s": arrived, "e": arrived + timedelta(days=14), "n": persons})
    with engine.begin() as conn:
        made_s, counts = _seconds(lambda: sync_plans(conn, arrived + timedelta(minutes=1), policy))
    echo(f"sync_plans 新建 / created {counts['created']:,} plans in {made_s:.2f} s")
    with engine.begin() as conn:
        for back in (2, 1, 0):
            make_checks(conn, day - timedelta(days=back))
        conn.execute(text(
            "UPDATE observation_checks c SET status = CASE WHEN c.due_at = :evening AND p.id % 500 = 0 "
            "THEN 'missed' ELSE 'done' END, "
            "reported_at = CASE WHEN c.due_at = :evening AND p.id % 500 = 0 THEN NULL "
            "ELSE c.due_at + interval '10 minutes' END, "
            "missed_at = CASE WHEN c.due_at = :evening AND p.id % 500 = 0 THEN c.due_at + :grace END, "
            "temperature = CASE WHEN c.due_at = :evening AND p.id % 500 = 0 THEN NULL ELSE 36.5 END, "
            "channel = CASE WHEN c.due_at = :evening AND p.id % 500 = 0 THEN NULL ELSE 'self' END "
            "FROM observation_plans p WHERE p.id = c.plan_id AND p.person_key LIKE :p "
            "AND (c.due_at < :today OR (c.due_at = :morning AND p.id % 10 <> 0))"),
            {"p": PREFIX + "%", "today": beijing_midnight(day),
             "morning": beijing_midnight(day) + timedelta(hours=8),
             "evening": beijing_midnight(day) - timedelta(hours=4), "grace": policy.grace})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE observation_plans"))
        conn.execute(text("VACUUM ANALYZE observation_checks"))
        rows = conn.execute(text("SELECT count(*) FROM observation_checks")).scalar_one()
    echo(f"检查记录 / check rows: {rows:,}")
    return {"plans_created_s": round(made_s, 3), "plans_created": counts["created"], "check_rows": rows}


def observation_benchmark(engine: Engine, persons: int = 100_000, repeat: int = 3,
                          echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Prepare and measure (see the module); returns the figures (seconds)."""
    day = datetime.now(UTC).astimezone(BEIJING).date()
    setup = prepare(engine, persons, day, echo)
    policy = observation_policy()
    tomorrow = day + timedelta(days=1)
    midnight = beijing_midnight(tomorrow)
    same_rows = ("FROM observation_plans pl CROSS JOIN LATERAL (SELECT CAST(:m AS timestamptz) + m * interval "
                 "'1 minute' AS due_at FROM unnest(pl.check_minutes) m) d WHERE pl.status = 'active' "
                 "AND d.due_at >= pl.starts_at AND d.due_at < pl.ends_at AND pl.starts_at < :next "
                 "AND pl.ends_at > :m")
    params = {"m": midnight, "next": midnight + timedelta(days=1)}
    day_runs, count_runs, bare_runs, made = [], [], [], 0
    for _ in range(repeat):
        seconds, made = _rolled_back(engine, lambda conn: make_checks(conn, tomorrow))
        day_runs.append(seconds)
        counted, _ = _rolled_back(engine, lambda conn: conn.execute(text("SELECT count(*) " + same_rows),
                                                                      params).scalar_one())
        count_runs.append(counted)

        def bare(conn: Connection) -> int:
            conn.execute(text("CREATE TEMPORARY TABLE bench_bare (plan_id bigint, due_at timestamptz) "
                              "ON COMMIT DROP"))
            return conn.execute(text("INSERT INTO bench_bare SELECT pl.id, d.due_at " + same_rows), params).rowcount

        bare_runs.append(_rolled_back(engine, bare)[0])
        echo(f"当日检查 / day's checks: {made:,} rows in {day_runs[-1]:.3f} s (COUNT {count_runs[-1]:.3f} s, "
             f"bare insert {bare_runs[-1]:.3f} s)")
    again_s, again = _again(engine, tomorrow)

    now = beijing_midnight(day) + timedelta(hours=10, minutes=1)
    sweep_runs, mark_runs, peer_runs = [], [], []
    swept: dict[str, int] = {}
    for _ in range(repeat):
        seconds, swept = _rolled_back(engine, lambda conn: sweep_missed(conn, now, policy))
        sweep_runs.append(seconds)
        mark_runs.append(_rolled_back(engine, lambda conn: conn.execute(
            text(_MARK_MISSED), {"grace": policy.grace, "cutoff": now - policy.grace}).scalars().all())[0])
        peer_runs.append(_rolled_back(engine, lambda conn: conn.execute(text(
            "SELECT count(*) FROM observation_checks WHERE status = 'due' AND due_at < :c"),
            {"c": now - policy.grace}).scalar_one())[0])
        echo(f"漏报扫描 / sweep: {swept} in {sweep_runs[-1]:.3f} s (marking alone {mark_runs[-1]:.3f} s, "
             f"COUNT of the same checks {peer_runs[-1]:.3f} s)")
    sync_s, _ = _rolled_back(engine, lambda conn: sync_plans(conn, now, policy))
    echo(f"sync_plans（无变化 / nothing to change）{sync_s:.3f} s")
    median = statistics.median
    result = {
        "persons": persons, "day": day.isoformat(), **setup,
        "day_checks_rows": made, "day_checks_s": round(median(day_runs), 3),
        "day_checks_runs_s": [round(s, 3) for s in day_runs], "day_checks_target_s": DAY_TARGET_S,
        "peer_count_same_rows_s": round(median(count_runs), 3), "peer_bare_insert_s": round(median(bare_runs), 3),
        "day_checks_again_rows": again, "day_checks_again_s": round(again_s, 3),
        "sweep": swept, "sweep_s": round(median(sweep_runs), 3), "sweep_runs_s": [round(s, 3) for s in sweep_runs],
        "sweep_target_s": SWEEP_TARGET_S, "sweep_marking_s": round(median(mark_runs), 3),
        "peer_count_swept_checks_s": round(median(peer_runs), 3), "sync_plans_unchanged_s": round(sync_s, 3)}
    echo(f"当日检查 / day's checks {result['day_checks_s']} s (target ≤ {DAY_TARGET_S} s; COUNT of the same rows "
         f"{result['peer_count_same_rows_s']} s, bare insert {result['peer_bare_insert_s']} s) · 漏报扫描 / sweep "
         f"{result['sweep_s']} s (target ≤ {SWEEP_TARGET_S} s; COUNT {result['peer_count_swept_checks_s']} s)")
    return result


def _again(engine: Engine, day: date) -> tuple[float, int]:
    """make_checks run a second time over a day already made (all rolled back after): seconds, rows made."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            make_checks(conn, day)
            return _seconds(lambda: make_checks(conn, day))
        finally:
            transaction.rollback()
