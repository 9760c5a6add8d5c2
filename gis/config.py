"""Where the project lives and how it is configured (environment variables).

``DATABASE_URL``     use that PostgreSQL/PostGIS server; nothing local starts.
``NANHAI_DATA_DIR``  data folder of the embedded server (default ``<project>/.data``).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DISTRICT_CODE = "440605"
DATABASE_NAME = "nanhai"


def data_dir() -> Path:
    """Return the project's data folder (git-ignored), creating it when missing."""
    path = Path(os.environ.get("NANHAI_DATA_DIR") or PROJECT_ROOT / ".data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def external_database_url() -> str | None:
    """Return ``DATABASE_URL`` normalised to the psycopg 3 driver, or None when unset."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
