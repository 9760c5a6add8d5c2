"""`gridctl bench replay` runs end to end on a tiny day and reports its figures (answers only: speed is not
asserted here)."""

from benchmarks.replay import replay_benchmark

TINY = {"events": 150, "persons": 300, "code_changes": 48, "matches": 3, "cold": 1}


def test_the_replay_benchmark_makes_its_day_and_matches_the_live_wall_at_its_end(database_factory, seeded_engine):
    engine = database_factory("nanhai_replay_bench_test", copy_of=seeded_engine)
    lines: list[str] = []
    result = replay_benchmark(engine, moves=5, echo=lines.append, **TINY)
    assert result["events"] >= 150 and result["code_changes"] == 48
    assert result["identical_to_live_at_day_end"] is True
    assert result["minutes_checked_against_sql"] == 5 and result["minutes_differing_from_sql"] == []
    assert result["cold_ms"] > 0 and result["warm_median_ms"] > 0 and result["callback_median_ms"] > 0
    assert result["stretches_of_work"] > 0
    assert any("cold" in line for line in lines)
    again = replay_benchmark(engine, moves=2, echo=lines.append, **TINY)
    assert again["events"] == result["events"], "the day is made once and reused"
