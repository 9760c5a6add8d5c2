"""The update benchmark across a database outage: phones back off, retry with the same key, and nothing is lost or
applied twice. The outage is cut on a database of this module's own (a copy of the seeded district): refusing its
connections disturbs no other test."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from app import create_app
from benchmarks.outage import Outage, outage_figures
from benchmarks.updates import BACKOFF_CAP, Failure, Misbehaviour, backoff, updates_benchmark
from gis.errors import ConfigurationError
from tests.browser import LiveServer

BENCH_EVENTS = ("SELECT count(*) FROM task_events e JOIN users u ON u.id = e.actor_id "
                "WHERE u.username LIKE 'bench\\_phone\\_%'")
REPEATED = ("SELECT count(*) FROM (SELECT e.task_id, e.action FROM task_events e JOIN users u ON u.id = e.actor_id "
            "WHERE u.username LIKE 'bench\\_phone\\_%' GROUP BY e.task_id, e.action HAVING count(*) > 1) AS twice")


@pytest.fixture(scope="module")
def own_engine(database_factory, seeded_engine):
    return database_factory("nanhai_bench_outage", copy_of=seeded_engine)


def _count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_phones_ride_out_a_database_outage_losing_nothing_and_applying_nothing_twice(own_engine):
    before = _count(own_engine, BENCH_EVENTS)
    outage = Outage.of_database(own_engine, at=2, lasts=2)
    lines: list[str] = []
    with LiveServer(create_app(own_engine).server) as live:
        # a fifth of the answers dropped on purpose: lost answers of applied updates, whatever the outage's timing
        result = updates_benchmark(own_engine, live.url, phones=4, seconds=10, echo=lines.append,
                                   misbehaviour=Misbehaviour(drop=0.2), outage=outage, pool_rate=100)

    assert result["errors"] == 0 and result["unresolved"] == 0, result["error_samples"]
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["mismatched_tasks"] == 0
    assert result["retried"] > 0 and result["retried_by"]["503"] > 0 and result["answers_5xx"]["503"] > 0
    assert result["recovered"] > 0 and result["recovered_by_replay"] > 0  # applied, answer lost, replayed on retry
    assert result["server_faults"] == 0, result["server_fault_samples"]  # 503 with Retry-After, nothing else
    figures = result["outage"]
    assert figures["happened"] and figures["mode"] == "database" and figures["down_s"] >= 2
    assert figures["rate_before"] > 0 and figures["rate_after"] > 0 and figures["recovery_s"] is not None
    assert figures["failed_after_restore"] == 0, figures["failed_after_restore_samples"]
    assert sum(figures["per_second"]) == result["updates"]
    assert any("the database is back" in line for line in lines)
    # checked apart from the benchmark's own count: one event per acknowledged update, none twice
    assert _count(own_engine, BENCH_EVENTS) - before == result["updates"]
    assert _count(own_engine, REPEATED) == 0
    with own_engine.connect() as conn:  # given back
        assert conn.execute(text("SELECT datallowconn FROM pg_database WHERE datname = current_database()")).scalar()


def test_an_outage_outside_the_run_is_refused_before_anything_is_done(own_engine):
    for at, lasts in ((0, 2), (2, 0), (8, 2)):
        with pytest.raises(ConfigurationError, match="within the run"):
            updates_benchmark(own_engine, "http://127.0.0.1:9", phones=1, seconds=10, echo=lambda _: None,
                              outage=Outage.of_database(own_engine, at, lasts))


def test_the_backoff_grows_jittered_up_to_its_cap_and_honours_retry_after():
    rng = random.Random(1)
    waits = [[backoff(n, None, rng) for _ in range(200)] for n in (1, 2, 3, 10)]
    assert all(0.05 <= w <= 0.1 for w in waits[0]) and all(0.1 <= w <= 0.2 for w in waits[1])
    assert all(0.2 <= w <= 0.4 for w in waits[2]) and all(BACKOFF_CAP / 2 <= w <= BACKOFF_CAP for w in waits[3])
    assert len({round(w, 6) for w in waits[0]}) > 100  # jittered: phones that failed together spread out
    told = [backoff(1, 5.0, rng) for _ in range(200)]
    assert all(5.0 <= w <= 6.0 for w in told) and max(told) - min(told) > 0.5


def test_outage_figures_split_the_run_before_during_and_after():
    outage = Outage("database", 2, 2, lambda: None, lambda: None)
    outage.cut_at, outage.down_at, outage.restored_at = 102.0, 102.1, 104.0
    acked = [100.5, 101.0, 101.5, 102.05, 104.4, 104.5, 105.0, 105.5]
    late = [Failure(103.0, 103.01, "503", "before"), Failure(104.1, 104.2, "503", "HTTP 503 after")]

    figures = outage_figures(outage, acked, late, started=100.0, ended=106.0)

    assert figures["rate_before"] == 1.5 and figures["acknowledged_during"] == 1 and figures["rate_during"] == 0.5
    assert figures["rate_after"] == 2.0 and figures["recovery_s"] == 0.4 and figures["down_s"] == 2.0
    assert figures["failed_after_restore"] == 1 and "HTTP 503 after" in figures["failed_after_restore_samples"][0]
    assert figures["per_second"] == [1, 2, 1, 0, 2, 2]
