"""One copy of the seeded district with the demo accounts for the observation tests that work in a transaction
rolled back after each test (check-ins, self-report links, a worker's follow-ups): copied once, not per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def engine(database_factory, seeded_engine):
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory("nanhai_observation", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    return engine


@pytest.fixture()
def conn(engine):
    """A connection whose transaction is rolled back after the test: nothing it writes is seen by the next."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()
