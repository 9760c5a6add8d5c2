"""Binary COPY: every type the project sends arrives as it was, missing values and empty texts as NULL."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text

from gis import pgbinary
from grids.repository import copy_frame


def test_every_sent_type_round_trips_through_postgis(seeded_engine):
    frame = pd.DataFrame({
        "small": pd.array([1, -32768, None], dtype="Int64"),
        "whole": pd.array([2_147_483_647, None, -5], dtype="Int64"),
        "big": np.array([2**62, -(2**62), 0], dtype=np.int64),
        "ratio": [0.1, np.nan, -1e300],
        "single": [1.5, None, -0.25],
        "flag": [True, False, None],
        "label": ["南海区", "", None],
        "code": ["a" * 64, "x", None],
        "at": pd.to_datetime(["2026-11-26 08:00:00.1234567", None, "1969-07-20 20:17:40"],
                             format="ISO8601").tz_localize("Asia/Shanghai"),
        "naive": pd.to_datetime(["1999-12-31 23:59:59.999999", "2000-01-01", None], format="ISO8601"),
    })
    frame["flag"] = frame["flag"].astype("boolean")
    frame["geom"] = pd.Series(pd.arrays.ArrowExtensionArray(pgbinary.point_ewkb(
        np.array([113.15, np.nan, -0.5]), np.array([23.03, 1.0, 51.5]))))
    with seeded_engine.begin() as conn:
        conn.execute(text(
            "CREATE TEMP TABLE sent (small smallint, whole integer, big bigint, ratio float8, single real, "
            "flag boolean, label text, code varchar(64), at timestamptz, naive timestamp, "
            "geom geometry(Point, 4326)) ON COMMIT DROP"))
        assert copy_frame(conn, "sent", frame, chunk_rows=2) == 3
        rows = conn.execute(text("SELECT small, whole, big, ratio, single, flag, label, code, at, naive, "
                                 "ST_AsText(geom) AS point, ST_SRID(geom) AS srid FROM sent ORDER BY big DESC")).all()
    first, third, second = rows  # big: 2**62, 0, -2**62
    assert (first.small, first.whole, first.big, first.ratio, first.single, first.flag, first.label, first.code) == \
        (1, 2_147_483_647, 2**62, 0.1, 1.5, True, "南海区", "a" * 64)
    assert first.at == pd.Timestamp("2026-11-26 00:00:00.123456", tz="UTC")  # below a microsecond: floored
    assert first.naive == pd.Timestamp("1999-12-31 23:59:59.999999")
    assert (first.point, first.srid) == ("POINT(113.15 23.03)", 4326)
    assert (third.small, third.whole, third.ratio, third.single, third.flag, third.label, third.code) == \
        (None, -5, -1e300, -0.25, None, None, None)  # "" arrives as NULL, like a missing value
    assert third.at == pd.Timestamp("1969-07-20 12:17:40", tz="UTC")  # before 2000: negative microseconds
    assert (third.point, third.naive) == ("POINT(-0.5 51.5)", None)
    assert (second.small, second.ratio, second.at, second.point, second.naive) == \
        (-32768, None, None, None, pd.Timestamp("2000-01-01"))


def test_an_unsupported_type_is_named():
    with pytest.raises(TypeError, match="jsonb"):
        pgbinary.encode_rows({"doc": pa.array(["{}"])}, {"doc": "jsonb"})


def test_no_rows_encode_to_nothing():
    assert pgbinary.encode_rows({"n": pd.Series([], dtype="Int64")}, {"n": "integer"}) == b""


def test_a_column_in_several_chunks_encodes_as_one():
    whole = pd.Series(["甲", "乙", "丙"], dtype="string[pyarrow]")
    chunked = pd.concat([whole.iloc[:1], whole.iloc[1:]], ignore_index=True)
    assert pgbinary.encode_rows({"t": chunked}, {"t": "text"}) == pgbinary.encode_rows({"t": whole}, {"t": "text"})
