"""Production mode: `gridctl serve --production` (or NANHAI_PRODUCTION=1) refuses demo accounts and the generated
development keys, one line each, and starts cleanly without them."""

from __future__ import annotations

import time

import requests
from click.testing import CliRunner

from accounts.demo_names import DEMO_USERNAMES, active_demo_accounts
from gridctl import main
from tests.conftest import DEMO_PASSWORD
from tests.deploy.conftest import ADMIN, ADMIN_PASSWORD

NO_KEYS = {"NANHAI_PERSON_KEY_SECRET": None, "NANHAI_FERNET_KEY": None}


def _serve(engine, env: dict, *options: str):
    """`gridctl serve` in this process: a refusal comes before anything listens."""
    env = {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "NANHAI_PRODUCTION": None, **env}
    return CliRunner().invoke(main, ["serve", "--port", "9", *options], env=env)


def test_the_products_list_of_demo_accounts_is_what_gridctl_users_demo_creates(work_engine):
    with work_engine.connect() as conn:
        assert active_demo_accounts(conn) == sorted(DEMO_USERNAMES)


def test_demo_accounts_are_refused_in_one_line(work_engine, production_keys, tmp_path):
    result = _serve(work_engine, {**production_keys, "NANHAI_DATA_DIR": str(tmp_path)}, "--production")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "demo accounts exist" in lines[0] and "demo_admin" in lines[0], \
        (result.output, result.exception)
    assert lines[0].startswith("生产模式拒绝启动")


def test_the_generated_development_keys_are_refused_in_one_line(production_engine, tmp_path):
    result = _serve(production_engine, {**NO_KEYS, "NANHAI_DATA_DIR": str(tmp_path), "NANHAI_PRODUCTION": "1"})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "generated development keys" in lines[0], result.output
    assert str(tmp_path / "secrets.json") in lines[0] and "NANHAI_FERNET_KEY" in lines[0]


def test_both_at_once_are_two_lines_and_a_malformed_key_is_named(work_engine, production_keys, tmp_path):
    both = _serve(work_engine, {**NO_KEYS, "NANHAI_DATA_DIR": str(tmp_path)}, "--production")
    assert both.exit_code == 1 and len(both.stderr.strip().splitlines()) == 2, both.output
    bad = _serve(work_engine, {**production_keys, "NANHAI_FERNET_KEY": "not-a-key", "NANHAI_DATA_DIR": str(tmp_path)},
                 "--production")
    assert bad.exit_code == 1 and "is not a Fernet key" in bad.stderr, bad.output
    short = _serve(work_engine, {**production_keys, "NANHAI_PERSON_KEY_SECRET": "short",
                                 "NANHAI_DATA_DIR": str(tmp_path)}, "--production")
    assert short.exit_code == 1 and "too short" in short.stderr, short.output


def test_a_clean_production_start_serves(production_server):
    """No demo account, keys from the environment: it starts, its health is good, a real account logs in."""
    base = production_server.base
    deadline = time.monotonic() + 30
    while (health := requests.get(f"{base}/healthz", timeout=30).json())["sweeper"]["state"] != "up":
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    assert health["database"]["state"] == "up" and health["status"] in ("ok", "degraded")
    session = requests.Session()
    login = session.post(f"{base}/api/v1/session", json={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert login.status_code == 201, login.text
    assert session.post(f"{base}/api/v1/session", json={"username": "demo_admin",
                                                        "password": DEMO_PASSWORD}).status_code == 401
