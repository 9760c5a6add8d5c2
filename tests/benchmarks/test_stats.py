"""The statistics benchmark's answers, never its speed: the generated data has the sizes asked and sane times,
and evaluate()'s figures over all grids add up to what a direct count finds.

Runs at a tiny size on a copy of the seeded district (the benchmark replaces persons and tasks).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from accounts.actor import COMMANDER, Actor
from benchmarks.stats import fill, stats_benchmark
from evaluation.indicators import Period, evaluate
from tasks.lifecycle import STATUSES

PERSONS, TASKS = 2_000, 3_000


@pytest.fixture(scope="module")
def stats_engine(database_factory, seeded_engine):
    return database_factory("nanhai_stats", copy_of=seeded_engine)


@pytest.fixture(scope="module")
def result(stats_engine):
    lines: list[str] = []
    figures = stats_benchmark(stats_engine, PERSONS, TASKS, repeat=1, echo=lines.append)
    assert lines
    return figures


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_figures_cover_every_unit_and_add_up(result):
    assert result["persons"] == PERSONS and result["tasks"] == TASKS and result["reused"] is False
    assert result["rows"] == {"grid_7d": 1042, "grid_30d": 1042, "reporter_grid_7d": 1042,
                              "reporter_grid_30d": 1042, "community_7d": 290, "town_7d": 7, "district_7d": 1}
    assert result["totals_match"] is True
    assert result["tasks_30d"] == TASKS and 0 < result["tasks_7d"] < TASKS
    assert sum(result["persons_by_colour"].values()) == PERSONS
    for key in ("grid_7d_ms", "grid_30d_ms", "reporter_grid_7d_ms", "town_ms", "district_ms", "peer_ms",
                "ratio_vs_peer"):
        assert result[key] > 0


def test_generated_data_has_the_sizes_colours_statuses_and_sane_times(stats_engine, result):
    assert _scalar(stats_engine, "SELECT count(*) FROM persons WHERE grid_id IS NOT NULL") == PERSONS
    assert _scalar(stats_engine, "SELECT count(*) FROM tasks WHERE grid_id IS NOT NULL") == TASKS
    colours = result["persons_by_colour"]
    assert colours["green"] > 0.85 * PERSONS and min(colours.values()) > 0  # ~1.5 % red, 2 % yellow, 3.5 % blue
    with stats_engine.connect() as conn:
        statuses = set(conn.execute(text("SELECT DISTINCT status FROM tasks")).scalars())
    assert statuses == set(STATUSES)
    bad = """SELECT count(*) FROM tasks WHERE created_at < CAST(:now AS timestamptz) - interval '30 days'
             OR created_at > :now OR due_at <= created_at OR closed_at > :now OR handled_at > closed_at
             OR closed_at < created_at OR handled_at < created_at OR (status = 'closed') <> (closed_at IS NOT NULL)
             OR (status = 'cancelled') <> (cancelled_at IS NOT NULL)
             OR (status IN ('handled', 'closed')) AND handled_at IS NULL
             OR (rework_count > 0 AND handled_at IS NULL)"""
    assert _scalar(stats_engine, bad, now=result["now"]) == 0
    assert _scalar(stats_engine, "SELECT count(*) FROM tasks WHERE rework_count > 0") > 0
    assert _scalar(stats_engine, "SELECT count(*) FROM tasks WHERE extension_count > 0") > 0


def test_evaluate_totals_equal_a_direct_count(stats_engine, result):
    from datetime import datetime

    now = datetime.fromisoformat(result["now"])
    period = Period(now - timedelta(days=7), now)
    with stats_engine.connect() as conn:
        rows = evaluate(conn, Actor(None, "c", COMMANDER), "grid", period, now)
    assert len(rows) == 1042
    direct = """SELECT count(*) FROM tasks WHERE created_at >= :since AND created_at < :until
                AND status {} 'cancelled'"""
    assert sum(r["tasks"] for r in rows) == _scalar(stats_engine, direct.format("<>"), since=period.since,
                                                    until=now)
    assert sum(r["cancelled"] for r in rows) == _scalar(stats_engine, direct.format("="), since=period.since,
                                                        until=now)
    assert sum(r["closed"] for r in rows) == _scalar(
        stats_engine, "SELECT count(*) FROM tasks WHERE status = 'closed' AND created_at >= :since", since=period.since)
    for colour in ("red", "yellow", "blue", "green"):
        assert sum(r[f"persons_{colour}"] for r in rows) == result["persons_by_colour"][colour] == _scalar(
            stats_engine, "SELECT count(*) FROM persons WHERE colour = :c", c=colour)


def test_a_second_fill_of_the_same_sizes_reuses_the_data(stats_engine, result):
    now, reused = fill(stats_engine, PERSONS, TASKS, echo=lambda _: None)
    assert reused is True and now.isoformat() == result["now"]
    assert _scalar(stats_engine, "SELECT count(*) FROM persons") == PERSONS


def test_only_a_benchmark_database_is_filled(seeded_engine):
    from gis.errors import GridError

    sizes = "SELECT (SELECT count(*) FROM persons) + (SELECT count(*) FROM tasks)"
    before = _scalar(seeded_engine, sizes)
    with pytest.raises(GridError):
        fill(seeded_engine, PERSONS, TASKS, echo=lambda _: None)
    assert _scalar(seeded_engine, sizes) == before
