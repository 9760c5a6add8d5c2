"""The roster reader, fed arbitrary bytes: a refusal naming the file or its rows, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roster import read_roster
from gis.errors import GridError


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.binary(max_size=4096), st.sampled_from([".csv", ".xlsx"]))
def test_arbitrary_bytes_as_a_roster(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"roster{suffix}"
        path.write_bytes(data)
        try:
            rows = read_roster(path)
        except GridError:
            return
        assert all(row.row >= 1 for row in rows)
