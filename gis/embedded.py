"""The embedded PostGIS server: a project-local PostgreSQL cluster.

With no ``DATABASE_URL`` the platform runs its own PostgreSQL in the project's
data folder (``.data/pg``), using the system's PostgreSQL binaries and the
system's PostGIS. PostgreSQL refuses to run as root, so when we are root the
cluster belongs to the ``postgres`` system user and every server command runs
as that user. The server listens on 127.0.0.1 and a unix socket only, on a
free port chosen once and remembered in ``.data/pg.json`` with a generated
password.

If the ``postgres`` user cannot enter the project folder (a clone under a
private home folder), the cluster lives in ``/var/lib/nanhai-grid/<hash>``
instead and ``.data/pg.json`` points there.

Examples
--------
>>> server = EmbeddedServer()          # doctest: +SKIP
>>> server.start(); server.url()       # doctest: +SKIP
'postgresql+psycopg://nanhai:...@127.0.0.1:54873/nanhai'
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gis.config import DATABASE_NAME, data_dir
from gis.errors import DatabaseUnavailable

SUPERUSER = "nanhai"
INSTALL_HINT = (
    "请安装 PostgreSQL 与 PostGIS / install PostgreSQL with PostGIS: "
    "`sudo apt-get install postgresql-15-postgis-3` on Debian 12 "
    "(or run `make setup`, which installs what is missing)."
)


def find_postgres_bindir(lib_root: Path = Path("/usr/lib/postgresql"),
                         share_root: Path = Path("/usr/share/postgresql"), use_path: bool = True) -> Path:
    """Return the newest system PostgreSQL ``bin`` folder that has PostGIS installed.

    Raises :class:`DatabaseUnavailable` naming the package to install when none does.
    """
    candidates: list[tuple[int, Path]] = []
    for bindir in lib_root.glob("*/bin"):
        if (bindir / "initdb").exists() and bindir.parent.name.isdigit():
            candidates.append((int(bindir.parent.name), bindir))
    pg_config = shutil.which("pg_config") if use_path else None
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            candidates.append((0, bindir))
    if not candidates:
        raise DatabaseUnavailable("没有找到 PostgreSQL 服务器程序 / PostgreSQL server not found. " + INSTALL_HINT)
    for version, bindir in sorted(candidates, reverse=True):
        share = share_root / str(version) / "extension" if version else None
        if share is None or (share / "postgis.control").exists():
            return bindir
    raise DatabaseUnavailable(
        f"PostgreSQL {candidates[0][0]} 已安装但缺少 PostGIS / is installed without PostGIS. " + INSTALL_HINT
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ServerState:
    """What is remembered about the cluster between runs (``.data/pg.json``)."""

    cluster: str
    port: int
    password: str

    @classmethod
    def load(cls, path: Path) -> ServerState | None:
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(cluster=raw["cluster"], port=int(raw["port"]), password=raw["password"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2))
        path.chmod(0o600)


class EmbeddedServer:
    """A project-local PostgreSQL + PostGIS cluster (create, start, stop, status, url)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or data_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file = self.root / "pg.json"
        self.as_root = os.geteuid() == 0
        self._remembered: ServerState | None = None
        self._bindir: Path | None = None

    # -- locations -----------------------------------------------------
    def _state(self) -> ServerState:
        """Port, password and cluster folder: read once (created the first time), then kept."""
        if self._remembered is None:
            state = ServerState.load(self.state_file)
            if state is None:
                state = ServerState(cluster=str(self._choose_cluster_dir()), port=_free_port(),
                                    password=secrets.token_urlsafe(24))
                state.save(self.state_file)
            self._remembered = state
        return self._remembered

    def _binaries(self) -> Path:
        if self._bindir is None:
            self._bindir = find_postgres_bindir()
        return self._bindir

    def _choose_cluster_dir(self) -> Path:
        local = self.root / "pg"
        if not self.as_root or self._postgres_can_enter(self.root):
            return local
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        return Path("/var/lib/nanhai-grid") / digest / "pg"

    def _postgres_can_enter(self, folder: Path) -> bool:
        result = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder)],
                                capture_output=True)
        return result.returncode == 0

    @property
    def cluster(self) -> Path:
        return Path(self._state().cluster)

    @property
    def log_file(self) -> Path:
        return self.cluster.parent / "pg.log"

    def _socket_dir(self) -> Path:
        # A unix socket path may not exceed ~107 bytes; fall back to /tmp for deep clones.
        if len(str(self.cluster)) < 80:
            return self.cluster
        return Path("/tmp") / ("nanhai-pg-" + hashlib.sha1(str(self.cluster).encode()).hexdigest()[:10])

    # -- running server commands ----------------------------------------
    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self._binaries() / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise DatabaseUnavailable(
                f"`{' '.join(args[:2])}` 失败 / failed: {(result.stderr or result.stdout).strip()}\n"
                f"日志 / log: {self.log_file}"
            )
        return result

    def _chown(self, path: Path) -> None:
        if self.as_root:
            shutil.chown(path, "postgres", "postgres")

    # -- lifecycle -------------------------------------------------------
    def initialised(self) -> bool:
        return (self.cluster / "PG_VERSION").exists()

    def create(self) -> None:
        """Create the cluster (first time only) with a generated superuser password."""
        if self.initialised():
            return
        self._binaries()
        state = self._state()
        self.cluster.mkdir(parents=True, exist_ok=True)
        self.cluster.chmod(0o700)
        self._chown(self.cluster)
        self._chown(self.cluster.parent)
        pwfile = self.cluster.parent / ".pwfile"
        pwfile.write_text(state.password + "\n")
        self._chown(pwfile)
        try:
            self._run(["initdb", "-D", str(self.cluster), "-U", SUPERUSER, "--pwfile", str(pwfile),
                       "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                       "--encoding=UTF8", "--locale=C.UTF-8"])
        finally:
            pwfile.unlink(missing_ok=True)

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._run(["pg_ctl", "status", "-D", str(self.cluster)], check=False).returncode == 0

    def start(self) -> bool:
        """Create if needed and start the server; return False when it was already running."""
        self.create()
        if self.running():
            self._ensure_database()
            return False
        state = self._state()
        if _port_in_use(state.port):
            raise DatabaseUnavailable(
                f"端口 {state.port} 已被其他程序占用 / port {state.port} is taken by another program. "
                f"Stop it, or delete {self.state_file} and the cluster to pick a new port."
            )
        sockets = self._socket_dir()
        sockets.mkdir(parents=True, exist_ok=True)
        self._chown(sockets)
        self.log_file.touch()
        self._chown(self.log_file)
        options = (f"-c listen_addresses=127.0.0.1 -p {state.port} "
                   f"-c unix_socket_directories={sockets} -c max_connections=200 "
                   # bulk loads of a million rows: fewer forced checkpoints, room to sort and hash
                   f"-c shared_buffers=512MB -c max_wal_size=4GB -c wal_buffers=64MB "
                   f"-c work_mem=64MB -c maintenance_work_mem=512MB")
        result = self._run(["pg_ctl", "start", "-D", str(self.cluster), "-l", str(self.log_file),
                            "-w", "-t", "60", "-o", options], check=False)
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-8:]
            raise DatabaseUnavailable(
                "嵌入式 PostGIS 无法启动 / the embedded PostGIS could not start:\n  "
                + "\n  ".join(tail or [result.stderr.strip()])
                + f"\n日志 / log: {self.log_file}"
            )
        self._wait_ready()
        self._ensure_database()
        return True

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=3).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(
                        f"嵌入式 PostGIS 未就绪 / not ready after {timeout:.0f} s; see {self.log_file}") from exc
                time.sleep(0.2)

    def stop(self) -> bool:
        """Stop the server; return False when it was not running."""
        if not self.running():
            return False
        self._run(["pg_ctl", "stop", "-D", str(self.cluster), "-m", "fast", "-w", "-t", "60"])
        return True

    def status(self) -> dict:
        """Describe the cluster: where it lives, its port and whether it runs."""
        state = self._state()
        return {"cluster": state.cluster, "port": state.port, "running": self.running(),
                "initialised": self.initialised(), "log": str(self.log_file)}

    # -- connections -----------------------------------------------------
    def dsn(self, database: str = DATABASE_NAME) -> str:
        state = self._state()
        return f"postgresql://{SUPERUSER}:{state.password}@127.0.0.1:{state.port}/{database}"

    def url(self, database: str = DATABASE_NAME) -> str:
        """Return the SQLAlchemy URL (psycopg 3 driver) of ``database`` on this server."""
        return "postgresql+psycopg://" + self.dsn(database)[len("postgresql://"):]

    def _ensure_database(self, database: str = DATABASE_NAME) -> None:
        create_database(self.dsn("postgres"), database)


def create_database(admin_dsn: str, database: str, template: str = "template0") -> bool:
    """Create ``database`` (a copy of ``template``) through the connection ``admin_dsn``; False if it existed."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists:
            return False
        if template != "template0":  # a template must have no other session while it is copied
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (template,))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} ENCODING 'UTF8'").format(
            sql.Identifier(database), sql.Identifier(template)))
        return True


def drop_database(admin_dsn: str, database: str) -> None:
    """Drop ``database`` (closing its connections first); used by the test suite."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
