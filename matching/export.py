"""Export flags to CSV or Excel: one row per risk-coded person, personal data masked, with the field warnings of
his records (a phone, point or registration time that was ignored at import: ``warnings``, empty when none)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from gis.errors import ConfigurationError
from gis.spreadsheets import neutralised_frame
from matching import repository

COLUMNS = ["person_key", "masked_id", "name", "grid_code", "community", "town", "colour", "reason", "method",
           "confidence", "unplaced_reason", "warnings"]


def export_flags(engine: Engine, path: str | Path) -> int:
    """Write every flag to ``path`` (.csv as UTF-8 with BOM so Excel reads the Chinese, or .xlsx)."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigurationError(f"导出格式须为 .csv 或 .xlsx / export to .csv or .xlsx, not {path.suffix or path}")
    with engine.connect() as conn:
        frame = neutralised_frame(repository.flags_for_export(conn)[COLUMNS])
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        frame.to_excel(path, index=False, sheet_name="flags", engine="openpyxl")
    return len(frame)
