"""Bulk writing: copy_frame sends a frame in chunks and stores every value as it was, missing ones as NULL."""

import numpy as np
import pandas as pd
from sqlalchemy import text

from grids.repository import copy_frame


def test_copy_frame_in_chunks_keeps_every_value(seeded_engine):
    frame = pd.DataFrame({
        "n": pd.array([1, 2, None, 4, 5, 6, 7], dtype="Int64"),
        "label": ["甲", "", None, 'say "hi", then\nleave', "a,b", "  spaced ", "乙"],
        "x": [1.5, np.nan, 3.25, -0.0, 1e-9, 2.0, 113.123456789],
        "at": pd.to_datetime(["2026-11-26 08:00"] * 7).tz_localize("Asia/Shanghai"),
    })
    with seeded_engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE copied (n int, label text, x float8, at timestamptz) ON COMMIT DROP"))
        assert copy_frame(conn, "copied", frame, chunk_rows=3) == 7
        rows = conn.execute(text("SELECT n, label, x, at FROM copied")).all()
        assert copy_frame(conn, "copied", frame.iloc[:0]) == 0
        assert conn.execute(text("SELECT count(*) FROM copied")).scalar_one() == 7
    assert {(r.n, r.label, r.x) for r in rows} == {
        (1, "甲", 1.5), (2, None, None), (None, None, 3.25), (4, 'say "hi", then\nleave', -0.0), (5, "a,b", 1e-9),
        (6, "  spaced ", 2.0), (7, "乙", 113.123456789)}  # "" and NaN arrive as NULL, the rest exactly
    assert {r.at for r in rows} == {pd.Timestamp("2026-11-26 00:00", tz="UTC").to_pydatetime()}
