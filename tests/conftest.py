"""Test fixtures: a real PostGIS (the embedded server, or DATABASE_URL's), never a mock.

Each test database is created fresh on that server, migrated with the real
Alembic migrations, and dropped at the end. A server that cannot start fails
the run loudly: nothing is skipped for want of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from gis import migrate
from gis.config import external_database_url
from gis.db import CONNECT_ARGS
from gis.embedded import EmbeddedServer, create_database, drop_database


def _admin_and_template() -> tuple[str, str]:
    """(maintenance DSN, SQLAlchemy URL with a placeholder database) of the test server."""
    external = external_database_url()
    if external:
        url = make_url(external)
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        return admin, url.render_as_string(hide_password=False)
    server = EmbeddedServer()
    server.start()  # raises DatabaseUnavailable with what to install: the run fails, loudly
    return server.dsn("postgres"), server.url()


@pytest.fixture(scope="session")
def database_factory() -> Iterator:
    """Create fresh, migrated databases on the test server; all are dropped at the end."""
    admin, template = _admin_and_template()
    created: list[tuple[str, Engine]] = []

    def make(name: str, upgrade: bool = True, copy_of: Engine | None = None) -> Engine:
        """A new database: empty and migrated, or a copy of ``copy_of``'s (seconds instead of a re-seed)."""
        database = f"{name}_{os.getpid()}"
        drop_database(admin, database)
        if copy_of is not None:
            copy_of.dispose()
            create_database(admin, database, template=copy_of.url.database)
        else:
            create_database(admin, database)
        engine = create_engine(make_url(template).set(database=database), pool_pre_ping=True, pool_size=20,
                               max_overflow=20, connect_args=CONNECT_ARGS)
        if upgrade and copy_of is None:
            migrate.upgrade(engine)
        created.append((database, engine))
        return engine

    yield make
    for database, engine in created:
        engine.dispose()
        drop_database(admin, database)


@pytest.fixture(scope="session")
def seeded_engine(database_factory) -> Engine:
    """A database holding the Nanhai reference district (seeded once per run). Some tests write into it; a copy
    taken at once, before any of them, is kept untouched for tests that need the district alone
    (:func:`pristine_district`)."""
    from grids.seeding import seed_nanhai

    engine = database_factory("nanhai_test")
    seed_nanhai(engine)
    global _PRISTINE
    _PRISTINE = database_factory("nanhai_pristine", copy_of=engine)
    return engine


_PRISTINE: Engine | None = None


@pytest.fixture(scope="session")
def pristine_district(seeded_engine) -> Engine:
    """The seeded district as it was seeded, with no test's records: a template to copy (a copy takes seconds,
    a seed about 20). Never write into it."""
    assert _PRISTINE is not None
    return _PRISTINE


@pytest.fixture(scope="session")
def seeded_url(seeded_engine: Engine) -> str:
    return seeded_engine.url.render_as_string(hide_password=False)


class Clock:
    """A controllable clock for the app and the domain: SLA and escalation tests move time by hand."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.moment = datetime.now(UTC).replace(microsecond=0)

    def __call__(self):
        return self.moment

    def advance(self, **delta) -> None:
        from datetime import timedelta

        self.moment += timedelta(**delta)


DEMO_PASSWORD = "demo-password-1"


def signed_in(client, username: str):
    """``client`` (a Flask test client) logged in through the API as the demo user ``username``."""
    answer = client.post("/api/v1/session", json={"username": username, "password": DEMO_PASSWORD})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return client


@pytest.fixture(scope="session")
def work_engine(database_factory, seeded_engine) -> Engine:
    """A copy of the seeded district with the demo accounts (password DEMO_PASSWORD), for task-workflow tests."""
    from demo.accounts import create_demo_accounts

    engine = database_factory("nanhai_work", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    return engine
