"""What one match run changes, worked out against what the previous run stored.

The run computes every person's code and place; most are what the last run stored.
Comparing here, on whole columns, means the database only receives what is new or
different: a first run copies its persons straight into the table, a second run
with nothing new writes nothing (the set-based SQL this replaces copied every
person into a temporary table and joined a million rows three times, each run).

Equality is SQL's ``IS NOT DISTINCT FROM``: two missing values are equal, and an
empty text is missing (it is stored as NULL). Times are compared, and stored, to
the microsecond, as PostgreSQL keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

COMPARED = ("colour", "reason", "rule_id", "sources", "expires_at", "method", "confidence", "grid_id",
            "unplaced_reason", "id_masked", "name_masked", "phone_masked", "record_feed_file_id",
            "record_row_number", "lon", "lat")
CODE = ("colour", "rule_id", "expires_at")  # a change in any of these is a change of code, kept as history
FLAGGED = ("colour", "grid_id", "unplaced_reason")
RANK = {"red": 0, "yellow": 1, "blue": 2, "green": 3}


@dataclass
class MatchChanges:
    """The writes of one run. ``new``, ``changed`` and ``flags_new`` / ``flags_changed`` are rows of the
    run; ``removed`` and ``unflagged`` are person keys."""

    new: pd.DataFrame
    changed: pd.DataFrame
    removed: np.ndarray
    history: pd.DataFrame
    requests: pd.DataFrame
    flags_new: pd.DataFrame
    flags_changed: pd.DataFrame
    unflagged: np.ndarray


def _positions(keys: pd.Series, among: pd.Series) -> np.ndarray:
    """Where each of ``keys`` is in ``among`` (-1 where it is not)."""
    if len(among) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    found = pc.index_in(pa.array(keys, type=pa.string()), value_set=pa.array(among, type=pa.string()))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _comparable(values: pd.Series, like: pd.Series) -> np.ndarray | pa.Array:
    """``values`` in a form that compares with ``==``, missing ones all alike, chosen by the run's column
    ``like``: times in microseconds, numbers as floats with NaN, texts with missing as empty (as stored)."""
    if isinstance(like.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(like.dtype):
        stamps = pd.to_datetime(values, utc=True)
        return np.where(stamps.isna(), np.iinfo(np.int64).min, stamps.array.as_unit("ns").asi8 // 1000)
    if pd.api.types.is_numeric_dtype(like.dtype):
        return pd.to_numeric(values).to_numpy(dtype=float, na_value=np.nan)
    return pc.fill_null(pa.array(values, from_pandas=True, type=pa.string()), "")


def _differ(run: pd.DataFrame, stored: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """Row by row, whether any of ``columns`` is distinct between two aligned frames."""
    differ = np.zeros(len(run), dtype=bool)
    for column in columns:
        a, b = _comparable(run[column], run[column]), _comparable(stored[column], run[column])
        if isinstance(a, pa.Array):
            differ |= pc.not_equal(a, b).to_numpy(zero_copy_only=False)
        elif a.dtype.kind == "f":
            differ |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
        else:
            differ |= a != b
    return differ


def compare(run: pd.DataFrame, stored: pd.DataFrame, flags: pd.DataFrame, now: pd.Timestamp) -> MatchChanges:
    """The writes that turn ``stored`` (the persons table) and ``flags`` into this ``run``.

    ``run`` has one row per person (see :func:`matching.repository.store_match`); ``stored`` has
    ``person_key`` and :data:`COMPARED`; ``flags`` has ``person_key`` and :data:`FLAGGED`. History
    records every new risk code and every change of colour, rule or expiry; a task is requested for
    every person who becomes red or yellow, or redder than he was.
    """
    at = _positions(run["person_key"], stored["person_key"])
    known = at >= 0
    before = stored.iloc[at[known]].reset_index(drop=True)
    matched = run[known].reset_index(drop=True)
    differ = _differ(matched, before, COMPARED)
    recoded = _differ(matched, before, CODE)

    previous = np.full(len(run), None, dtype=object)
    previous[known] = before["colour"].to_numpy(dtype=object)
    colour = run["colour"].to_numpy(dtype=object)
    coded = np.zeros(len(run), dtype=bool)
    coded[known] = recoded
    coded[~known] = colour[~known] != "green"
    history = run.loc[coded, ["person_key", "colour", "reason", "rule_id", "sources", "set_at", "expires_at"]].assign(
        previous_colour=previous[coded], changed_at=now)

    rank_now = pd.Series(colour, dtype=object).map(RANK).to_numpy()
    rank_before = pd.Series(previous, dtype=object).fillna("green").map(RANK).to_numpy()
    raised = (rank_now <= RANK["yellow"]) & (rank_now < rank_before)
    requests = run.loc[raised, ["person_key", "grid_id", "colour", "reason"]].assign(
        previous_colour=previous[raised], requested_at=now)

    removed = stored.loc[_positions(stored["person_key"], run["person_key"]) < 0, "person_key"].to_numpy(dtype=object)

    flag_at = _positions(run["person_key"], flags["person_key"])
    risky = colour != "green"
    unflagged = run.loc[(flag_at >= 0) & ~risky, "person_key"].to_numpy(dtype=object)
    flagged_before = (flag_at >= 0) & risky
    flag_differs = np.zeros(len(run), dtype=bool)
    flag_differs[flagged_before] = _differ(run[flagged_before].reset_index(drop=True),
                                           flags.iloc[flag_at[flagged_before]].reset_index(drop=True), FLAGGED)
    flag_columns = ["person_key", *FLAGGED]
    return MatchChanges(
        new=run[~known], changed=run[known][differ], removed=removed, history=history, requests=requests,
        flags_new=run.loc[risky & (flag_at < 0), flag_columns], flags_changed=run.loc[flag_differs, flag_columns],
        unflagged=unflagged)
