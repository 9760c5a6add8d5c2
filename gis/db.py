"""Database engine and sessions (SQLAlchemy 2 + psycopg 3).

:func:`database_url` is the one place that decides which server is used:
``DATABASE_URL`` when set, else the embedded PostGIS (started on demand).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine, TextClause, create_engine, event, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gis.config import external_database_url
from gis.errors import DatabaseUnavailable, GridError


def database_url(start: bool = True) -> str:
    """Return the SQLAlchemy URL of the platform's database.

    With ``DATABASE_URL`` set that server is used and nothing local starts;
    otherwise the embedded server is started first when ``start`` is true.
    """
    url = external_database_url()
    if url:
        return url
    from gis.embedded import EmbeddedServer

    server = EmbeddedServer()
    if start:
        server.start()
    return server.url()


# Every connection's settings (the app's, the tools', the tests'): short OLTP statements get generic plans for
# prepared statements (planning cost more than running), and no JIT (its compile time, once a cost estimate
# crosses the threshold, is longer than any of our queries). psycopg keeps its default of preparing a statement on
# its sixth run; the hot ones, through :func:`run`, are prepared on their first.
CONNECT_ARGS = {"options": "-c plan_cache_mode=force_generic_plan -c jit=off"}


# A pooled connection idle longer than this is pinged before use; busier ones are not (see :func:`engine_for`).
IDLE_PING_SECONDS = 1.0


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """Return the (cached) engine for ``url``.

    A pooled connection that sat idle for over :data:`IDLE_PING_SECONDS` is pinged as it is checked out, and
    replaced when dead: after the database restarts (or drops connections), the pool reconnects instead of
    failing the first request of every process. Connections in steady use are not pinged — a ping on every
    checkout costs the update rate about a sixth (benchmarks/RESULTS.md) — and one that dies under a request
    fails it with DatabaseUnavailable, the pool replacing it. Recycling after 30 minutes keeps idle ones fresh.
    """
    engine = create_engine(url, pool_pre_ping=False, pool_recycle=1800, pool_size=10, max_overflow=20,
                           connect_args=CONNECT_ARGS)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """SQLAlchemy's pessimistic disconnect recipe, for idle connections only: a DisconnectionError makes the
    pool drop this connection and check out (or open) another."""
    if time.monotonic() - record.info.get("checked_in", math.inf) <= IDLE_PING_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except psycopg.Error as exc:
        raise DisconnectionError(f"stale pooled connection: {type(exc).__name__}") from exc


@lru_cache(maxsize=1024)
def sql(statement: str) -> TextClause:
    """``text(statement)``, built once: the hot paths run the same few statements thousands of times."""
    return text(statement)


@contextmanager
def custom_plans(conn: Connection) -> Iterator[Connection]:
    """Plan the statements run inside for their actual parameter values, then go back to generic plans.

    For the few analytical statements (statistics over a date range): a generic plan guesses that any range
    holds 0.5 % of the rows and picks index scans and sorts made for a handful of rows. Planning each time
    costs little against such a statement.
    """
    conn.execute(sql("SET LOCAL plan_cache_mode = force_custom_plan"))
    yield conn
    conn.execute(sql("SET LOCAL plan_cache_mode = force_generic_plan"))


_NAMED = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")  # a ``:name`` parameter, as SQLAlchemy's text() finds them


@lru_cache(maxsize=256)
def _driver_form(statement: str) -> str:
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))


def driver_connection(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under ``conn`` (for COPY and :func:`run`)."""
    driver = conn.connection.driver_connection
    if driver is None:  # SQLAlchemy types it Any | None: only an invalidated pooled connection has none
        raise RuntimeError("the connection has no psycopg connection (invalidated)")
    return driver


# A row that :func:`run` returns: a psycopg named tuple, its fields (the statement's columns) made at run time, so
# no static type can name them.
NamedRow = Any


def run(conn: Connection, statement: str, params: Mapping[str, object]) -> Cursor[NamedRow]:
    """Run ``statement`` (``:name`` parameters, as for :func:`sql`) on the connection's psycopg connection.

    For the few statements of every field update (session, idempotency key, task, event): SQLAlchemy's
    per-statement work (compiled cache, execution context, result metadata) cost more client CPU than
    psycopg's whole round trip. Same transaction as ``conn``, begun on SQLAlchemy's side too (as its own
    statements would), so that ``conn.commit()`` commits what ran here; rows are named tuples. Prepared on
    its first run (psycopg's default is the sixth): after a rollback has made psycopg forget them, the next
    request plans each of them once, instead of five requests planning each afresh.
    """
    if not conn.in_transaction():
        conn.begin()
    cursor = driver_connection(conn).cursor(row_factory=namedtuple_row)
    return cursor.execute(_driver_form(statement), params, prepare=True)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for work that only reads (a page, a refresh, an API read), in a read-only transaction that
    ends with COMMIT, also when the block raises (Dash's PreventUpdate, a 404).

    SQLAlchemy ends an unfinished transaction with ROLLBACK, and psycopg then forgets every statement it prepared
    on that connection. A read-only transaction has nothing to undo, so committing it keeps them. A failed
    statement still rolls back.
    """
    with engine.connect().execution_options(postgresql_readonly=True) as conn:
        try:
            yield conn
        finally:
            if conn.in_transaction() and \
                    driver_connection(conn).info.transaction_status == TransactionStatus.INTRANS:
                conn.commit()


def roll_back(conn: Connection) -> None:
    """Roll back ``conn``'s transaction, keeping the statements prepared on its connection.

    psycopg's own rollback forgets every prepared statement and deallocates them on the server, in case the
    transaction created something they refer to, and the connection's next request plans each statement again.
    A request transaction creates nothing of the kind (no DDL). SQLAlchemy's rollback, when the block then ends,
    finds nothing to end.
    """
    driver = driver_connection(conn)
    if driver.info.transaction_status != TransactionStatus.IDLE:
        driver.pgconn.exec_(b"ROLLBACK")  # should it fail, the transaction is still open: SQLAlchemy's rollback retries


@contextmanager
def changing(engine: Engine) -> Iterator[Connection]:
    """A request's transaction that writes: committed at the end of the block. A refusal (a GridError: a stale
    version, a 404, a bad field) undoes everything through :func:`roll_back`, so the connection keeps its
    prepared statements; any other error rolls back the usual way."""
    with engine.begin() as conn:
        try:
            yield conn
        except GridError:
            roll_back(conn)
            raise


def get_engine(url: str | None = None) -> Engine:
    """Return the engine of ``url`` or of the platform's database, checking it answers."""
    engine = engine_for(url or database_url())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"无法连接数据库 / cannot connect to the database {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. Start it with `gridctl db start` or check DATABASE_URL."
        ) from exc
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session in one transaction: committed on success, rolled back on error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
