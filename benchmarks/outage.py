"""The database taken away during ``gridctl bench updates`` (``--outage-at S --outage-for S``), and the figures of
how the server rode it out (:mod:`benchmarks.updates` has the whole account).

By default this one database refuses connections and its open ones are ended (``ALTER DATABASE …
ALLOW_CONNECTIONS false`` and ``pg_terminate_backend``: what a restart does to the app, without stopping the
other databases of the server); with ``mode="server"`` the embedded PostgreSQL itself is stopped and started.
If the bench is killed during a database outage, give the database back by hand: ``ALTER DATABASE <name>
ALLOW_CONNECTIONS true`` (from the ``postgres`` database).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from gis.errors import ConfigurationError

if TYPE_CHECKING:
    from gis.embedded import EmbeddedServer

OUTAGE_MODES = ("database", "server")
MAINTENANCE_DATABASE = "postgres"
SAMPLES = 5


class FailedTry(Protocol):
    """A try that got no definitive answer: when it was sent and what it was."""

    @property
    def sent_at(self) -> float: ...

    @property
    def what(self) -> str: ...


class Outage:
    """The server's database taken away ``at`` seconds into the timed phase for ``lasts`` seconds, then given back.

    Build it with :meth:`of_database` (this database only: new connections refused, open ones ended) or
    :meth:`of_server` (the embedded PostgreSQL stopped and started: every database on it). The bench's main
    thread calls :meth:`tick` as time passes and :meth:`end` in any case, so an interrupted run (Ctrl-C, an
    error) still gives the database back. Times are ``time.perf_counter()`` values.
    """

    def __init__(self, mode: str, at: float, lasts: float, cut: Callable[[], None],
                 restore: Callable[[], None]) -> None:
        self.mode, self.at, self.lasts = mode, at, lasts
        self._cut, self._restore = cut, restore
        self.cut_at: float | None = None  # the cut began
        self.down_at: float | None = None  # the cut was done: nothing reaches the database
        self.restored_at: float | None = None  # the database accepts connections again

    @classmethod
    def of_database(cls, engine: Engine, at: float, lasts: float) -> Outage:
        """Refuse connections to ``engine``'s database and end its open ones (as a restart does to the app)."""
        name = engine.url.database
        if not name:
            raise ConfigurationError("数据库地址未指明数据库 / the database URL names no database")
        admin = create_engine(engine.url.set(database=MAINTENANCE_DATABASE), poolclass=NullPool,
                              isolation_level="AUTOCOMMIT")
        quoted = admin.dialect.identifier_preparer.quote(name)
        try:
            with admin.connect() as conn:
                allowed = conn.execute(text(
                    "SELECT r.rolsuper OR d.datdba = r.oid FROM pg_database d JOIN pg_roles r "
                    "ON r.rolname = current_user WHERE d.datname = :db"), {"db": name}).scalar()
        except OperationalError as exc:
            raise ConfigurationError(f"无法连接维护库 {MAINTENANCE_DATABASE}，不能制造断库 / cannot reach the "
                                     f"{MAINTENANCE_DATABASE} database to cause the outage: "
                                     f"{type(exc.orig).__name__}") from exc
        if not allowed:
            raise ConfigurationError(f"数据库用户不是 {name} 的所有者或超级用户，不能制造断库 / the database user "
                                     f"neither owns {name} nor is a superuser: it cannot cause the outage")

        def cut() -> None:
            with admin.connect() as conn:
                conn.execute(text(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false"))
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db "
                                  "AND pid <> pg_backend_pid()"), {"db": name})

        def restore() -> None:
            with admin.connect() as conn:
                conn.execute(text(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true"))

        return cls("database", at, lasts, cut, restore)

    @classmethod
    def of_server(cls, engine: Engine, at: float, lasts: float, server: EmbeddedServer) -> Outage:
        """Stop the embedded PostgreSQL ``server`` (which must hold ``engine``'s database) and start it again."""
        if not server.running() or engine.url.host not in ("127.0.0.1", "localhost") \
                or engine.url.port != server.status()["port"]:
            raise ConfigurationError("--outage-mode server 只能用于正在运行的内置数据库 / --outage-mode server stops "
                                     "the embedded PostgreSQL: the server's database must be on it, and it running")

        def stop() -> None:
            server.stop()

        def start() -> None:
            server.start()  # returns once PostgreSQL accepts connections

        return cls("server", at, lasts, stop, start)

    def next_at(self, started: float) -> float:
        """When the next change is due (``math.inf`` once the database is back)."""
        if self.cut_at is None:
            return started + self.at
        if self.restored_at is None:
            return started + self.at + self.lasts
        return math.inf

    def tick(self, started: float, echo: Callable[[str], None]) -> None:
        """Take the database away, or give it back, when due."""
        now = time.perf_counter()
        if self.cut_at is None and now >= started + self.at:
            self.cut_at = now
            self._cut()
            self.down_at = time.perf_counter()
            echo(f"  {self.down_at - started:5.1f} s  断库（{self.mode}）/ the database is away ({self.mode} outage, "
                 f"{self.down_at - self.cut_at:.2f} s to cut)")
        elif self.cut_at is not None and self.restored_at is None and now >= started + self.at + self.lasts:
            self.end()
            echo(f"  {(self.restored_at or now) - started:5.1f} s  数据库恢复 / the database is back")

    def end(self) -> None:
        """Give the database back if it is away (always called, even when the run fails)."""
        if self.cut_at is not None and self.restored_at is None:
            self._restore()
            self.restored_at = time.perf_counter()


def outage_figures(outage: Outage, acked_at: list[float], failures: Sequence[FailedTry], started: float,
                   ended: float) -> dict:
    """The acknowledged rate before, during and after ``outage``, and how the server came back.

    ``recovery_s``: from the database's return to the first acknowledged update; ``failed_after_restore``:
    tries sent after the return that still got no definitive answer (the server should answer them all).
    """
    if outage.cut_at is None or outage.restored_at is None:
        return {"mode": outage.mode, "happened": False}
    cut, back = outage.cut_at, outage.restored_at
    before = sum(t < cut for t in acked_at)
    during = sum(cut <= t < back for t in acked_at)
    after = [t for t in acked_at if t >= back]
    late = sorted((f for f in failures if f.sent_at >= back), key=lambda f: f.sent_at)
    per_second = Counter(int(t - started) for t in acked_at)
    return {
        "mode": outage.mode, "happened": True, "at_s": round(cut - started, 2), "down_s": round(back - cut, 2),
        "cut_s": round((outage.down_at or cut) - cut, 2),
        "rate_before": round(before / (cut - started), 1) if cut > started else 0.0,
        "rate_during": round(during / (back - cut), 1),
        "rate_after": round(len(after) / (ended - back), 1) if ended > back else 0.0,
        "acknowledged_during": during,
        "recovery_s": round(min(after) - back, 3) if after else None,
        "failed_after_restore": len(late),
        "failed_after_restore_samples": [f"+{f.sent_at - back:.3f} s: {f.what}" for f in late[:SAMPLES]],
        "per_second": [per_second.get(second, 0) for second in range(math.ceil(ended - started))],
    }
