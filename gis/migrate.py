"""Schema migrations (Alembic) run programmatically: no alembic.ini to find."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of ``engine`` up to ``revision``; then rewrite the tables a migration asked to
    (:func:`rewrite_after`), once its transaction has committed."""
    with engine.begin() as conn:
        config = _config(conn)
        command.upgrade(config, revision)
    _rewrite(engine, config)


def rewrite_after(config: Config, table: str) -> None:
    """For a migration that overwrote personal data in ``table``: the old row versions still hold it on disk
    until the table is rewritten (``VACUUM FULL``), which cannot run in the migration's transaction."""
    config.attributes.setdefault(REWRITE, []).append(table)


REWRITE = "nanhai_rewrite_after"


def _rewrite(engine: Engine, config: Config) -> None:
    tables = config.attributes.get(REWRITE, [])
    if tables:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in dict.fromkeys(tables):
                conn.exec_driver_sql(f'VACUUM FULL "{table}"')


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the database of ``engine`` down to ``revision``."""
    with engine.begin() as conn:
        config = _config(conn)
        command.downgrade(config, revision)
    _rewrite(engine, config)


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the code knows (None only if it knew none)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def require_current(engine: Engine) -> None:
    """Refuse to serve a database whose schema is older (or newer) than the code: say what to run."""
    from gis.errors import ConfigurationError

    current, head = current_revision(engine), head_revision()
    if current != head:
        raise ConfigurationError(f"数据库结构版本为 {current}，程序需要 {head}：请先运行 gridctl db upgrade / the "
                                 f"database schema is at {current}, the code needs {head}: run `gridctl db upgrade`")
