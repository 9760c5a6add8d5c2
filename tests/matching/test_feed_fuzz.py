"""Every file reader, fed arbitrary bytes (issue 20): it answers a clear refusal or a balanced batch — never an
unexpected exception, never a hang past its deadline, never a row unaccounted for. Example counts are bounded so
that `make test` stays within its time."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.errors import GridError
from grids.importing import read_grid_file
from matching.feeds import read_feed
from tests.matching.feedfiles import HEADER

FUZZ = settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
cells = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", '"', "\x00", "\r", "\n", "=1+1", "440605198503030011", "113.15", "23.03", "gcj02", "确诊", "2026-12-01"])


def _read(data: bytes, suffix: str):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"feed{suffix}"
        path.write_bytes(data)
        try:
            return read_feed(path)
        except GridError:
            return None


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_as_a_csv(data):
    batch = _read(data, ".csv")
    assert batch is None or batch.balanced


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_as_an_xlsx(data):
    batch = _read(data, ".xlsx")
    assert batch is None or batch.balanced


@FUZZ
@given(st.lists(st.lists(cells, min_size=0, max_size=12), max_size=8))
def test_arbitrary_rows_under_a_real_header_account_for_every_row(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    batch = _read(out.getvalue().encode("utf-8", "surrogatepass"), ".csv")
    if batch is not None:
        assert batch.balanced
        assert batch.rows_read <= len(rows) + out.getvalue().count("\n")


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from([".geojson", ".gpkg", ".zip", ".shp"]))
def test_arbitrary_bytes_as_a_boundary_file(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"grids{suffix}"
        path.write_bytes(data)
        try:
            read_grid_file(path)
        except GridError:
            pass
