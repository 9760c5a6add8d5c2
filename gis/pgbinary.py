"""PostgreSQL's binary COPY format, built from whole columns at once.

Why binary: the server then parses no text, and parsing timestamps, floats and
geometries from CSV was most of its work in a bulk COPY (figures in
benchmarks/RESULTS.md). The rows are assembled by pyarrow's C++
kernels: each field becomes a binary column of ``length + bytes`` and the fields of
a row are joined element-wise, so no Python runs per row.

Values follow the format's send/receive forms: integers and floats big-endian,
timestamps as microseconds since 2000-01-01 UTC, dates as days since 2000-01-01,
text as UTF-8, ``geometry`` as EWKB. Missing values (None, NaN, NaT) and empty
strings are sent as NULL, as the CSV path did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
EPOCH_2000_US = 946_684_800_000_000
EPOCH_2000_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
TEXT_TYPES = {"text", "character varying", "character", "name"}
FIXED_TYPES = {"smallint": ">i2", "integer": ">i4", "bigint": ">i8", "real": ">f4", "double precision": ">f8",
               "boolean": "?"}
TIME_TYPES = {"timestamp with time zone", "timestamp without time zone"}


def point_ewkb(lon: np.ndarray, lat: np.ndarray, srid: int = 4326) -> pa.Array:
    """EWKB points (little-endian, with SRID) of coordinate arrays; null where either is NaN."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    record = np.empty(len(lon), dtype=[("order", "u1"), ("kind", "<u4"), ("srid", "<u4"), ("x", "<f8"),
                                       ("y", "<f8")])
    record["order"], record["kind"], record["srid"] = 1, 0x20000001, srid
    record["x"], record["y"] = lon, lat
    points = pa.FixedSizeBinaryArray.from_buffers(pa.binary(25), len(lon), [None, pa.py_buffer(record.tobytes())])
    return pc.if_else(pa.array(np.isnan(lon) | np.isnan(lat)), pa.scalar(None, pa.binary()),
                      points.cast(pa.binary()))


def _fixed(values: np.ndarray, missing: np.ndarray, dtype: str) -> tuple[np.ndarray, pa.Array]:
    """Length words and payloads of a fixed-width column."""
    width = np.dtype(dtype).itemsize
    lengths = np.where(missing, -1, width).astype(">i4")
    kept = values[~missing].astype(dtype)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(np.where(missing, 0, width), out=offsets[1:])
    payload = pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets),
                                                                pa.py_buffer(kept.tobytes())])
    return lengths, payload


def _binary(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Length words and payloads of a text or bytes column (null for missing)."""
    array = pc.cast(array, pa.binary())
    lengths = pc.fill_null(pc.binary_length(array), -1).to_numpy(zero_copy_only=False).astype(">i4")
    return lengths, pc.fill_null(array, b"")


def _field(column: pd.Series | pa.Array, pg_type: str) -> tuple[np.ndarray, pa.Array]:
    """One column in binary form, for a target column of type ``pg_type`` (as ``format_type`` names it)."""
    base = pg_type.split("(")[0]
    if base in TEXT_TYPES:
        array = column if isinstance(column, pa.Array) else pa.array(column, from_pandas=True, type=pa.string())
        return _binary(pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array))
    if base == "geometry" or base == "bytea":
        return _binary(column if isinstance(column, pa.Array) else pa.array(column, from_pandas=True,
                                                                           type=pa.binary()))
    series = column.to_pandas() if isinstance(column, pa.Array) else column
    if base in FIXED_TYPES:
        kind = np.dtype(FIXED_TYPES[base]).kind  # i, f or b: read as int64, float64 or bool, missing ones as 0
        values = series.to_numpy(dtype={"i": np.int64, "f": np.float64, "b": np.bool_}[kind], na_value=0)
        return _fixed(values, series.isna().to_numpy(), FIXED_TYPES[base])
    if base in TIME_TYPES:
        stamps = pd.to_datetime(series, utc=base == "timestamp with time zone")
        if base == "timestamp with time zone":
            stamps = stamps.dt.tz_convert("UTC")
        missing = stamps.isna().to_numpy()
        naive = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
        micros = naive.array.as_unit("ns").asi8 // 1000  # below a microsecond: floored
        return _fixed(np.where(missing, 0, micros - EPOCH_2000_US), missing, ">i8")
    if base == "date":  # a time's wall date (a zone's time is not moved to UTC first): its day as written
        stamps = pd.to_datetime(series)
        naive = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps
        days = naive.to_numpy(dtype="datetime64[D]")
        missing = np.isnat(days)
        return _fixed(np.where(missing, 0, days.astype(np.int64) - EPOCH_2000_DAYS), missing, ">i4")
    raise TypeError(f"binary COPY cannot send a {pg_type} column")


def encode_rows(columns: dict[str, pd.Series | pa.Array], types: dict[str, str]) -> bytes:
    """The binary COPY rows (without :data:`HEADER` and :data:`TRAILER`) of equally long columns.

    ``types`` maps each column to its PostgreSQL type as ``format_type`` names it (``integer``,
    ``character varying(64)``, ``geometry(Point,4326)``, …).
    """
    names = list(columns)
    rows = len(columns[names[0]]) if names else 0
    if rows == 0:
        return b""
    parts: list[pa.Array] = [_words(np.full(rows, len(names), dtype=">i2"))]
    for name in names:
        lengths, payload = _field(columns[name], types[name])
        parts += [_words(lengths), payload]
    joined = pc.binary_join_element_wise(*parts, b"")
    if isinstance(joined, pa.ChunkedArray):  # a column of several chunks (a concatenated frame's) makes one
        joined = joined.combine_chunks()
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset:joined.offset + rows + 1]
    return memoryview(joined.buffers()[2])[offsets[0]:offsets[-1]].tobytes()


def _words(values: np.ndarray) -> pa.Array:
    """Fixed-width big-endian words as a binary column (one per row)."""
    width = values.dtype.itemsize
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(values.tobytes())])
    return fixed.cast(pa.binary())
