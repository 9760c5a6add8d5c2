import pytest
from sqlalchemy import text

from app import create_app
from tests.api.client import ApiClient
from tests.browser import LiveServer
from tests.conftest import Clock

DEMO_GRID = "440605011001001"


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def live(work_engine, clock):
    with LiveServer(create_app(work_engine, clock).server) as server:
        yield server


@pytest.fixture(scope="module")
def as_role(live):
    """A logged-in client per demo role (cached per module)."""
    clients: dict[str, ApiClient] = {}

    def client(role: str) -> ApiClient:
        if role not in clients:
            clients[role] = ApiClient(live.url, f"demo_{role}")
        return clients[role]
    return client


@pytest.fixture(scope="module")
def user_id(work_engine):
    def find(username: str) -> int:
        with work_engine.connect() as conn:
            return conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
    return find
