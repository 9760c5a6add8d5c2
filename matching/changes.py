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

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

COMPARED = ("colour", "reason", "rule_id", "sources", "expires_at", "method", "confidence", "grid_id",
            "unplaced_reason", "id_masked", "name_masked", "phone_masked", "record_feed_file_id",
            "record_row_number", "lon", "lat", "explanation")
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


class Comparison:
    """What the previous run stored (``stored``: ``person_key`` and :data:`COMPARED`; ``flags``:
    ``person_key`` and :data:`FLAGGED`), indexed once, so that a run can be compared chunk by chunk."""

    def __init__(self, stored: pd.DataFrame, flags: pd.DataFrame) -> None:
        self.stored, self.flags = stored, flags
        self._stored_keys = pd.Index(stored["person_key"].to_numpy(dtype=object))
        self._flag_keys = pd.Index(flags["person_key"].to_numpy(dtype=object))

    def removed(self, keys: pd.Series) -> np.ndarray:
        """The stored persons that none of ``keys`` (all of a run's) names."""
        if not len(self.stored):
            return np.array([], dtype=object)
        present = pd.Index(keys.to_numpy(dtype=object)).get_indexer(self._stored_keys) >= 0
        return self._stored_keys[~present].to_numpy(dtype=object)

    def changes(self, run: pd.DataFrame, now: pd.Timestamp) -> MatchChanges:
        """The writes for the persons of ``run`` (a whole run, or a chunk of one: ``removed`` is left
        empty, see :meth:`removed`). History records every new risk code and every change of colour,
        rule or expiry; a task is requested for every person who becomes red or yellow, or redder than
        he was."""
        keys = run["person_key"].to_numpy(dtype=object)
        at = self._stored_keys.get_indexer(keys)
        known = at >= 0
        before = self.stored.iloc[at[known]].reset_index(drop=True)
        matched = run[known].reset_index(drop=True)
        differ = _differ(matched, before, COMPARED)
        recoded = _differ(matched, before, CODE)

        previous = np.full(len(run), None, dtype=object)
        previous[known] = before["colour"].to_numpy(dtype=object)
        colour = run["colour"].to_numpy(dtype=object)
        coded = np.zeros(len(run), dtype=bool)
        coded[known] = recoded
        coded[~known] = colour[~known] != "green"
        history = run.loc[coded, ["person_key", "colour", "reason", "rule_id", "sources", "set_at",
                                  "expires_at", "explanation"]].assign(previous_colour=previous[coded], changed_at=now)

        rank_now = pd.Series(colour, dtype=object).map(RANK).to_numpy()
        rank_before = pd.Series(previous, dtype=object).fillna("green").map(RANK).to_numpy()
        raised = (rank_now <= RANK["yellow"]) & (rank_now < rank_before)
        requests = run.loc[raised, ["person_key", "grid_id", "colour", "reason", "explanation"]].assign(
            previous_colour=previous[raised], requested_at=now)

        flag_at = self._flag_keys.get_indexer(keys)
        risky = colour != "green"
        unflagged = run.loc[(flag_at >= 0) & ~risky, "person_key"].to_numpy(dtype=object)
        flagged_before = (flag_at >= 0) & risky
        flag_differs = np.zeros(len(run), dtype=bool)
        flag_differs[flagged_before] = _differ(run[flagged_before].reset_index(drop=True),
                                               self.flags.iloc[flag_at[flagged_before]].reset_index(drop=True),
                                               FLAGGED)
        flag_columns = ["person_key", *FLAGGED]
        return MatchChanges(
            new=run[~known], changed=run[known][differ], removed=np.array([], dtype=object), history=history,
            requests=requests, flags_new=run.loc[risky & (flag_at < 0), flag_columns],
            flags_changed=run.loc[flag_differs, flag_columns], unflagged=unflagged)


def compare(run: pd.DataFrame, stored: pd.DataFrame, flags: pd.DataFrame, now: pd.Timestamp) -> MatchChanges:
    """The writes that turn ``stored`` (the persons table) and ``flags`` into this whole ``run`` (one row
    per person, see :func:`matching.repository.store_match`)."""
    comparison = Comparison(stored, flags)
    return replace(comparison.changes(run, now), removed=comparison.removed(run["person_key"]))


def combined(parts: list[MatchChanges], removed: np.ndarray) -> MatchChanges:
    """The changes of a run compared chunk by chunk, as one."""
    def frames(name: str) -> pd.DataFrame:
        return pd.concat([getattr(p, name) for p in parts], ignore_index=True)

    return MatchChanges(new=frames("new"), changed=frames("changed"), removed=removed, history=frames("history"),
                        requests=frames("requests"), flags_new=frames("flags_new"),
                        flags_changed=frames("flags_changed"),
                        unflagged=np.concatenate([p.unflagged for p in parts]))
