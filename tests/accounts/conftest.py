"""Staff-account tests run on a copy of the seeded district of their own: disabling workers and taking grids
recalls tasks, which must not disturb the shared work database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from accounts.actor import ADMIN, Actor
from matching.privacy import Vault, load_vault

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ADMIN_ACTOR = Actor(None, "test_admin", ADMIN)
_phones = itertools.count(1)


def new_phone() -> str:
    """A mobile number no other test uses."""
    return f"1390{next(_phones):07d}"


@pytest.fixture(scope="session")
def staff_engine(database_factory, seeded_engine) -> Engine:
    """A copy of the seeded district with the demo accounts, for the account tests."""
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory("nanhai_staff", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    return engine


@pytest.fixture(scope="session")
def vault() -> Vault:
    return load_vault()
