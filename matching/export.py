"""Export flags to CSV or Excel: one row per risk-coded person, and per person a rule asks a task for, personal
data masked: why (``explanation``: the rule, the conditions that held and their values, the date the code's days
count from; ``tasks``: the tasks rules ask for him, each explained), and the field warnings of his records (a
phone, point or registration time that was ignored at import: ``warnings``). Empty when none."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from gis.errors import ConfigurationError
from gis.spreadsheets import neutralised_frame
from matching import repository

COLUMNS = ["person_key", "masked_id", "name", "grid_code", "community", "town", "colour", "reason", "explanation",
           "tasks", "method", "confidence", "unplaced_reason", "warnings"]


def export_flags(engine: Engine, path: str | Path) -> int:
    """Write every flag to ``path`` (.csv as UTF-8 with BOM so Excel reads the Chinese, or .xlsx)."""
    path = _target(path)
    with engine.connect() as conn:
        frame = neutralised_frame(repository.flags_for_export(conn)[COLUMNS])
    return _write(frame, path, "flags")


def export_replay(engine: Engine, name: str, path: str | Path) -> int:
    """Write a named replay's risk-coded persons to ``path`` (as :func:`export_flags`), with the codes' times in
    Beijing time."""
    from matching.replay_repository import replay_rows

    path = _target(path)
    with engine.connect() as conn:
        frame = replay_rows(conn, name)
    for column in ("set_at", "expires_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return _write(neutralised_frame(frame), path, "replay")


def _target(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigurationError(f"导出格式须为 .csv 或 .xlsx / export to .csv or .xlsx, not {path.suffix or path}")
    return path


def _write(frame: pd.DataFrame, path: Path, sheet: str) -> int:
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        frame.to_excel(path, index=False, sheet_name=sheet, engine="openpyxl")
    return len(frame)
