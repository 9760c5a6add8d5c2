"""`gridctl bench wall` runs end to end and reports its figures (answers only: speed is not asserted here)."""

import pytest

from benchmarks.wall import wall_benchmark

pytestmark = pytest.mark.browser  # the first paint is timed in headless Chromium


def test_the_wall_benchmark_reports_an_idle_refresh_that_resends_nothing(work_engine):
    lines: list[str] = []
    result = wall_benchmark(work_engine, repeat=5, echo=lines.append)
    assert result["idle_refresh_ms"] > 0 and len(result["first_paint_runs_ms"]) == 3
    assert 0 < result["grid_layer_gzip_bytes"] < result["grid_layer_target_bytes"]
    assert lines and "idle refresh" in lines[0]
