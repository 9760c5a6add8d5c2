"""Fixtures of the leads tests: a copy of the seeded district of their own, and the keys that tag and seal."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from matching.privacy import Vault


@pytest.fixture(scope="module")
def lead_engine(database_factory, pristine_district) -> Engine:
    """A copy of the seeded district (seconds), so that these reports count against nobody else's."""
    return database_factory("nanhai_leads", copy_of=pristine_district)


@pytest.fixture(scope="session")
def lead_vault() -> Vault:
    return Vault(b"leads-test-key", Fernet.generate_key())
