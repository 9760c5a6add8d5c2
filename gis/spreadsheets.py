"""Cells that a spreadsheet will not run: every export neutralises text that starts like a formula.

A feed's address, a roster's name or an audit reason is typed by somebody else; written as is into a CSV or
an .xlsx, ``=HYPERLINK(...)`` or ``@SUM(...)`` would be run by Excel or WPS when the reporter opens the file
(CSV injection). Such text gets a leading apostrophe, as the OWASP advice says: it shows as text and is never
evaluated. Numbers, dates and text that starts otherwise are left alone.

>>> neutralised("=1+1"), neutralised("-3 楼"), neutralised("桂城"), neutralised(-3)
("'=1+1", "'-3 楼", '桂城', -3)
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: Any) -> Any:
    """``value``, with an apostrophe before text that a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralised_row(values: list[Any]) -> list[Any]:
    """Each value of a row :func:`neutralised`."""
    return [neutralised(value) for value in values]


def neutralised_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text columns are :func:`neutralised`."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(neutralised)
    return out
