"""``gridctl bench pipeline --travel``: a small run through the real database says what the big one reports.

Speed is measured by ``gridctl bench pipeline --rows 1000000 --travel 0.3`` (benchmarks/RESULTS.md), not here.
"""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from benchmarks.matcher import NATIVE_SHARE, RULES_BEFORE_ISSUE22, pipeline_benchmark
from matching.rules import load_rules

ROWS = 2000


@pytest.fixture(scope="module")
def travel_run(pristine_district, tmp_path_factory) -> dict:
    """BEFORE and AFTER on 2,000 rows, 30 % of them with travel fields, each in a copy of the district as seeded (the
    shared seeded database may hold other tests' records) named for this run (not the command's nanhai_bench)."""
    pristine_district.dispose()
    url = pristine_district.url
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    return pipeline_benchmark(admin, lambda db: url.set(database=db).render_as_string(hide_password=False), ROWS,
                              tmp_path_factory.mktemp("bench"), echo=lambda _: None, travel=0.3,
                              database=f"nanhai_bench_test_{os.getpid()}", template=url.database)


def test_the_rules_before_issue22_are_the_keyword_rules():
    rules = load_rules(RULES_BEFORE_ISSUE22)
    assert [r.id for r in rules.rules] == ["red-confirmed", "red-suspected", "red-close-contact", "yellow-key-area",
                                           "blue-returning-worker"]
    assert not any(rules.reads(fact) for fact in ("origin", "arrived", "id_region", "age", "travel", "rule"))
    assert all(r.task is None and r.clock != "arrival" for r in rules.rules)


def test_both_runs_are_reported_with_their_ratio(travel_run):
    assert {"rows", "travel_share", "native_share", "before_total_s", "after_total_s", "ratio", "before",
            "after"} <= travel_run.keys()
    assert travel_run["travel_share"] == 0.3 and travel_run["native_share"] == NATIVE_SHARE
    for run in (travel_run["before"], travel_run["after"]):
        assert {"import_s", "match_s", "total_s", "steps_s", "persons", "red", "yellow", "blue", "green",
                "yellow_by_arrival", "verification_requests", "persons_by_rule"} <= run.keys()
        assert run["rows_stored"] == ROWS and run["persons"] == ROWS
        assert run["steps_s"] and all(seconds >= 0 for seconds in run["steps_s"].values())
    before, after = travel_run["before"], travel_run["after"]
    assert travel_run["ratio"] == round(after["total_s"] / before["total_s"], 2)


def test_after_codes_arrivals_and_asks_for_verifications(travel_run):
    before, after = travel_run["before"], travel_run["after"]
    # the old rules read no travel field and request no task; the new ones code arrivals from Hubei yellow from
    # their arrival date and ask to verify Hubei natives who did not travel
    assert before["yellow_by_arrival"] == 0 and before["verification_requests"] == 0
    assert after["yellow_by_arrival"] > 0 and after["verification_requests"] > 0
    assert after["yellow"] > before["yellow"]
    # the same residents: the category rules code the same reds
    assert after["red"] == before["red"]


def test_the_command_refuses_two_comparisons_at_once():
    from gridctl import main

    result = CliRunner().invoke(main, ["bench", "pipeline", "--rows", "10", "--id-less", "0.2", "--travel", "0.3"])
    assert result.exit_code == 2 and "--travel" in result.output


def test_both_engines_are_timed_on_copies_of_one_import_with_their_memory(pristine_district, tmp_path):
    """``gridctl bench pipeline --engine both``: the in-process match and the Spark match of the same import,
    with the same counts; Spark's peak memory counts its JVMs (the driver's, the workers', the executors')."""
    from matching.spark import SparkSettings

    pristine_district.dispose()
    url = pristine_district.url
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    run = pipeline_benchmark(admin, lambda db: url.set(database=db).render_as_string(hide_password=False), ROWS,
                             tmp_path, echo=lambda _: None, database=f"nanhai_bench_spark_{os.getpid()}",
                             template=url.database, spark=SparkSettings("local-cluster[2,1,1024]", partitions=3),
                             both=True)
    assert run["engine"] == "spark local-cluster[2,1,1024]" and run["persons"] == ROWS
    assert run["same_counts"] is True
    assert run["match_s"] > 0 and run["peer_match_s"] > 0 and run["shuffle_bytes"] > 0
    assert run["match_peak_gib"] > run["peer_match_peak_gib"] > 0
