"""`gridctl bench field` runs end to end and reports its figures (answers only: speed is not asserted here)."""

import json

import pytest

from benchmarks.field import field_benchmark

pytestmark = pytest.mark.browser  # the loads run in headless Chromium


def test_the_field_benchmark_reports_bytes_first_card_and_the_offline_reload(database_factory, pristine_district):
    engine = database_factory("nanhai_field_bench", copy_of=pristine_district)
    lines: list[str] = []
    result = field_benchmark(engine, tasks=3, loads=1, echo=lines.append)
    assert result["cold_load_kb"] > 5 and result["served_kb"] > 5, "the page, its script and its answers were counted"
    assert result["first_card_s"] > 0.4, "at 400 ms a round trip, no card can be drawn in less than one"
    assert result["offline_cards"] == 3 and result["offline_ok"], "the stopped server's phone shows its kept tasks"
    assert set(result) >= {"target_kb", "target_first_card_s", "within_targets", "content_encodings"}
    assert "cold load" in lines[-1]
    json.dumps(result)  # the command prints it as its last line
