"""Backups: the database and the keys that unseal its personal data, together in one archive.

An archive is a tar file (mode 600) of three members:

- ``manifest.json``: the format, when, from which database and PostgreSQL server, the schema revision, where the
  keys came from, and the row count of every table — counted in the very snapshot that was dumped, so a
  restore can check it got everything;
- ``database.dump``: ``pg_dump --format=custom`` of the platform's database (compressed; the system's
  PostgreSQL client programs, ``/usr/lib/postgresql/<version>/bin``, of a version at least the server's);
- ``secrets.json``: the person-key secret and the Fernet key (:func:`matching.privacy.load_secrets`). Without
  them the sealed ID numbers, names and phones cannot be read and person keys match nobody; with them, anyone
  holding the archive can read everything: keep archives encrypted, apart from the server, readable by few.

:func:`restore` loads an archive into an empty database (anything else is refused unless forced, which first
removes everything in it), all or nothing (``pg_restore --single-transaction``), then checks every table's row
count against the manifest. The keys are returned to the caller, who puts them where the platform reads them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from gis.errors import ConfigurationError, DatabaseUnavailable

FORMAT = "nanhai-grid-backup"
FORMAT_VERSION = 1
MEMBERS = ("manifest.json", "secrets.json", "database.dump")
ARCHIVE_NAME = re.compile(r"^nanhai-grid-\d{8}T\d{6}Z\.tar$")
CLIENT_HINT = "请安装 PostgreSQL 客户端 / install the PostgreSQL client programs: `sudo apt-get install {package}`"

# every table of the database's own (not an extension's, like PostGIS's spatial_ref_sys), in every schema of ours
TABLES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1
"""
# anything of ours in the database: tables, views, sequences (what makes a database "not empty")
OBJECTS = TABLES.replace("c.relkind IN ('r', 'p') AND NOT c.relispartition",
                         "c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    tables: dict[str, int]


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict
    tables: dict[str, int]
    replaced: bool  # the database held something, removed first (--force)


# -- the PostgreSQL client programs ------------------------------------------------------------------------------
def client_bindir(server_major: int, lib_root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The newest system PostgreSQL ``bin`` folder with pg_dump and pg_restore, as embedded.py finds the server's.

    Refuses one older than the server (pg_dump cannot read a newer server), naming the package to install.
    """
    found = sorted(((int(d.parent.name), d) for d in lib_root.glob("*/bin")
                    if d.parent.name.isdigit() and (d / "pg_dump").exists() and (d / "pg_restore").exists()),
                   reverse=True)
    package = f"postgresql-client-{server_major}"
    if not found:
        raise DatabaseUnavailable("没有找到 pg_dump / pg_dump not found. " + CLIENT_HINT.format(package=package))
    version, bindir = found[0]
    if version < server_major:
        raise DatabaseUnavailable(f"pg_dump {version} 早于服务器 {server_major} / pg_dump {version} is older than the "
                                  f"server ({server_major}). " + CLIENT_HINT.format(package=package))
    return bindir


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """(connection URI without the password, environment with ``PGPASSWORD``) for the client programs: the
    password never shows in the process list."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-6:]
        raise DatabaseUnavailable(f"{what} 失败 / {what} failed:\n  " + "\n  ".join(detail))


def _server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def table_counts(conn: Connection) -> dict[str, int]:
    """Every table of ours and its row count."""
    names = conn.execute(text(TABLES)).scalars().all()
    return {name: int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()) for name in names}


# -- backup ------------------------------------------------------------------------------------------------------
def backup_name(moment: datetime | None = None) -> str:
    """``nanhai-grid-<UTC time>.tar``: sorts by time, and only such names are ever pruned."""
    return f"nanhai-grid-{(moment or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}.tar"


def backup(engine: Engine, target: Path, keys: dict[str, str], keys_from: str) -> BackupResult:
    """Write the archive of ``engine``'s database and ``keys`` to ``target`` (written beside it under another
    name, then renamed: a failed backup leaves no half archive). ``keys_from`` says where the keys came from."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    url = engine.url.render_as_string(hide_password=False)
    uri, env = _libpq(url)
    with tempfile.TemporaryDirectory(prefix=".nanhai-backup-", dir=target.parent) as work:
        dump = Path(work) / "database.dump"
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            # one snapshot for pg_dump and the counts: the manifest describes exactly what was dumped
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            bindir = client_bindir(_server_major(conn))
            tables = table_counts(conn)
            revision = MigrationContext.configure(conn).get_current_revision()
            server_version = conn.execute(text("SHOW server_version")).scalar_one()
            _run([str(bindir / "pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={dump}",
                  f"--dbname={uri}"], env, "pg_dump")
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "created_at": datetime.now(UTC).isoformat(),
                    "database": engine.url.database, "server_version": server_version, "schema_revision": revision,
                    "pg_dump": bindir.parent.name, "keys_from": keys_from, "tables": tables}
        partial = target.with_name(f".{target.name}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out, tarfile.open(fileobj=out, mode="w") as archive:
            for name, body in (("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2).encode()),
                               ("secrets.json", json.dumps(keys, indent=2).encode())):
                archive.addfile(_member(name, len(body)), io.BytesIO(body))
            with dump.open("rb") as data:
                archive.addfile(_member("database.dump", dump.stat().st_size), data)
        os.replace(partial, target)
    return BackupResult(target, target.stat().st_size, tables)


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` archives in ``folder`` (by their names; other files are left alone);
    returns those removed."""
    archives = sorted(p for p in folder.iterdir() if p.is_file() and ARCHIVE_NAME.match(p.name))
    removed = archives[:-keep] if keep > 0 else archives
    for path in removed:
        path.unlink()
    return removed


# -- restore -----------------------------------------------------------------------------------------------------
@contextmanager
def _opened(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(path, mode="r") as archive:
            names = archive.getnames()
            if sorted(names) != sorted(MEMBERS):
                raise ConfigurationError(f"{path} 不是南海网格平台的备份 / is not a backup of this platform "
                                         f"(members: {', '.join(names) or 'none'})")
            yield archive
    except tarfile.TarError as exc:
        raise ConfigurationError(f"{path} 无法读取 / cannot be read as a backup: {exc}") from exc


def _json_member(archive: tarfile.TarFile, name: str) -> dict:
    member = archive.extractfile(name)
    if member is None:
        raise ConfigurationError(f"备份缺少 {name} / the backup lacks {name}")
    loaded: dict = json.loads(member.read().decode("utf-8"))
    return loaded


def read_archive(path: Path) -> tuple[dict, dict[str, str]]:
    """(manifest, keys) of an archive, checked to be one of ours, before anything is restored."""
    with _opened(path) as archive:
        manifest, keys = _json_member(archive, "manifest.json"), _json_member(archive, "secrets.json")
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ConfigurationError(f"{path}: 不支持的备份格式 / unsupported backup format "
                                 f"{manifest.get('format')} {manifest.get('version')}")
    if not (isinstance(keys.get("person_key_secret"), str) and isinstance(keys.get("fernet_key"), str)):
        raise ConfigurationError(f"{path}: 备份中的密钥不完整 / the backup's keys are incomplete")
    return manifest, {"person_key_secret": keys["person_key_secret"], "fernet_key": keys["fernet_key"]}


def objects_in(conn: Connection) -> list[str]:
    """The tables, views and sequences of ours in the database (empty: a database to restore into)."""
    return list(conn.execute(text(OBJECTS)).scalars())


def _empty_out(conn: Connection) -> None:
    """Remove every schema of ours with all it holds (and the extensions in them), and give back an empty
    ``public`` as PostgreSQL 15 makes it."""
    schemas = conn.execute(text(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND nspname NOT LIKE 'pg\\_%'")).scalars().all()
    for schema in schemas:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    conn.execute(text("CREATE SCHEMA public AUTHORIZATION pg_database_owner"))
    conn.execute(text("GRANT USAGE ON SCHEMA public TO PUBLIC"))


def restore(engine: Engine, path: Path, force: bool = False) -> RestoreResult:
    """Load the archive at ``path`` into ``engine``'s database: empty, or emptied first when ``force``."""
    manifest, _ = read_archive(path)
    with engine.begin() as conn:
        present = objects_in(conn)
        if present and not force:
            raise ConfigurationError(
                f"数据库 {engine.url.database} 不是空的（{len(present)} 个表、视图或序列，如 {present[0]}），"
                f"加 --force 先清空再恢复 / the database {engine.url.database} is not empty ({len(present)} tables, "
                f"views or sequences, {present[0]} among them): --force removes everything in it first")
        bindir = client_bindir(_server_major(conn))
        if present:
            _empty_out(conn)
    engine.dispose()  # no connection of ours holds a lock on what pg_restore creates
    uri, env = _libpq(engine.url.render_as_string(hide_password=False))
    with tempfile.TemporaryDirectory(prefix="nanhai-restore-") as work, _opened(path) as archive:
        dump = Path(work) / "database.dump"
        source = archive.extractfile("database.dump")
        if source is None:
            raise ConfigurationError(f"{path}: 备份缺少数据库 / the backup lacks the database dump")
        with dump.open("wb") as out:
            shutil.copyfileobj(source, out)
        _run([str(bindir / "pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner",
              "--no-privileges", f"--dbname={uri}", str(dump)], env, "pg_restore")
    with engine.connect() as conn:
        tables = table_counts(conn)
    expected = {name: int(count) for name, count in manifest["tables"].items()}
    if tables != expected:
        wrong = sorted(set(tables) ^ set(expected) | {n for n in tables if expected.get(n) != tables[n]})
        raise DatabaseUnavailable(f"恢复后的表与备份清单不符 / the restored tables differ from the backup's manifest: "
                                  f"{', '.join(wrong[:10])}")
    return RestoreResult(manifest, tables, bool(present))
