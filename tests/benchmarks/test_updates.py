"""The update benchmark's answers, never its speed: nothing lost or duplicated, stale versions refused, replays same.

The phones run against the real app on loopback (werkzeug here; the figures in
benchmarks/RESULTS.md come from ``gridctl serve``). ``work_engine`` is shared
with other modules, so every check is relative to what this run did.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import create_app
from benchmarks.updates import Misbehaviour, count_events, pool_size, updates_benchmark
from gis.errors import GridError
from tests.browser import LiveServer

BENCH_EVENTS = ("SELECT count(*) FROM task_events e JOIN users u ON u.id = e.actor_id "
                "WHERE u.username LIKE 'bench\\_phone\\_%'")
REPEATED = ("SELECT count(*) FROM (SELECT e.task_id, e.action FROM task_events e JOIN users u ON u.id = e.actor_id "
            "WHERE u.username LIKE 'bench\\_phone\\_%' GROUP BY e.task_id, e.action HAVING count(*) > 1) AS twice")


@pytest.fixture(scope="module")
def live(work_engine):
    with LiveServer(create_app(work_engine).server) as server:
        yield server


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_phones_lose_nothing_duplicate_nothing_and_hear_conflicts_and_replays(work_engine, live):
    before = _count(work_engine, BENCH_EVENTS)
    lines: list[str] = []
    # more misbehaviour than the CLI's 10 % / 5 % / 5 % / 2 %, so that a slow machine still sends some of each
    result = updates_benchmark(work_engine, live.url, phones=4, seconds=3, echo=lines.append,
                               misbehaviour=Misbehaviour(retry=0.25, stale=0.2, race=0.2, drop=0.1))

    assert result["errors"] == 0, result["error_samples"]
    assert result["updates"] > 0
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["mismatched_tasks"] == 0
    assert result["stale_sent"] > 0 and result["races"] > 0
    assert result["conflicts"] == result["stale_sent"] + result["races"]  # every conflicting edit refused as stale
    assert result["replays_ok"] == result["retries"] > 0
    # every update whose answer the phone hung up on was sent again with its key and acknowledged once
    assert result["recovered"] == result["dropped"] == result["retried"] > 0 and result["unresolved"] == 0
    assert result["server_faults"] == 0, result["server_fault_samples"]
    assert result["phones"] == 4 and result["url"] == live.url and result["tasks_created"] > 0
    assert result["updates_per_s"] > 0 and lines
    # checked apart from the benchmark's own count: one event per acknowledged update, none twice
    assert _count(work_engine, BENCH_EVENTS) - before == result["updates"]
    assert _count(work_engine, REPEATED) == 0


def test_a_second_run_walks_the_tasks_the_first_left_open(work_engine, live):
    result = updates_benchmark(work_engine, live.url, phones=2, seconds=1, echo=lambda _: None)

    assert result["tasks_reused"] > 0 and result["tasks_created"] <= result["tasks_reused"]
    assert result["errors"] == 0, result["error_samples"]
    assert result["updates"] > 0 and result["lost"] == 0 and result["duplicated"] == 0
    assert result["mismatched_tasks"] == 0
    assert _count(work_engine, REPEATED) == 0


def test_a_server_on_another_database_is_named_as_the_likely_cause(work_engine, database_factory):
    other = database_factory("nanhai_bench_other")  # migrated, empty: the bench accounts do not exist there
    with LiveServer(create_app(other).server) as elsewhere, \
            pytest.raises(GridError, match="another database"):
        updates_benchmark(work_engine, elsewhere.url, phones=1, seconds=1, echo=lambda _: None)


def test_a_server_that_does_not_answer_is_named(work_engine):
    with pytest.raises(GridError, match="cannot reach the server"):
        updates_benchmark(work_engine, "http://127.0.0.1:9", phones=1, seconds=1, echo=lambda _: None)


def test_lost_and_duplicated_are_counted_against_the_acknowledged_events():
    heard = [(1, "accept", 10), (1, "start", 11), (2, "accept", 12)]
    stored = [(1, "accept", 10), (2, "accept", 12), (2, "accept", 13), (3, "handle", 14)]

    assert count_events(heard, stored) == (1, 2)  # 11 lost; 13 (accepted twice) and 14 (nobody heard) duplicated
    assert count_events(heard, heard) == (0, 0)


def test_the_pool_is_sized_for_the_target_rate():
    assert pool_size(16, 20) * 16 * 3 >= 20 * 300  # enough tasks for 300 updates/s at 3 updates per task
