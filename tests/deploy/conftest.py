"""A production-like server for the deployment tests: `gridctl serve --production` behind a trusted proxy, on a copy
of the seeded district without demo accounts, with keys from the environment and one real administrator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from cryptography.fernet import Fernet

from tests.api.test_serving import _free_port

ADMIN, ADMIN_PASSWORD = "ops_admin", "桂城运维值班 2026 夜班"


@pytest.fixture(scope="session")
def production_keys() -> dict[str, str]:
    """Keys of the kind a real deployment sets in its EnvironmentFile (not the generated development ones)."""
    return {"NANHAI_PERSON_KEY_SECRET": "k" * 8 + os.urandom(24).hex(),
            "NANHAI_FERNET_KEY": Fernet.generate_key().decode()}


@pytest.fixture(scope="session")
def production_engine(database_factory, seeded_engine):
    """The seeded district with one administrator and no demo account."""
    from accounts.actor import ADMIN as ADMIN_ROLE
    from accounts.repository import save_user

    engine = database_factory("nanhai_production", copy_of=seeded_engine)
    with engine.begin() as conn:
        save_user(conn, ADMIN, ADMIN_ROLE, ADMIN_PASSWORD, "运维管理员")
    return engine


def server_env(engine, keys: dict[str, str], data_dir) -> dict[str, str]:
    """The environment of a server on ``engine``'s database with ``keys`` (and a data folder of its own)."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("NANHAI_PRODUCTION", "NANHAI_PERSON_KEY_SECRET", "NANHAI_FERNET_KEY")}
    return {**env, **keys, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "NANHAI_DATA_DIR": str(data_dir)}


class ProductionServer:
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.port, self.base = process, port, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def production_server(production_engine, production_keys, tmp_path_factory):
    """`gridctl serve --production --trusted-proxy 127.0.0.1` (one worker) on the production database."""
    port = _free_port()
    env = {**server_env(production_engine, production_keys, tmp_path_factory.mktemp("production-data")),
           "NANHAI_PRODUCTION": "1"}
    process = subprocess.Popen([sys.executable, "-m", "gridctl", "serve", "--port", str(port), "--workers", "1",
                                "--trusted-proxy", "127.0.0.1"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    server = ProductionServer(process, port)
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{server.base}/healthz", timeout=60).status_code in (200, 503):
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(process.communicate(timeout=30)[0])
        time.sleep(0.25)
    yield server
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
