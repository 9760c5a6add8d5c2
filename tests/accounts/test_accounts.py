"""Accounts: password hashing, the demo accounts command, and the data scope each role gets."""

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from accounts.actor import Actor
from accounts.passwords import hash_password, verify_password
from accounts.repository import check_login, save_user
from gis.errors import InvalidRequest, PermissionDenied
from gridctl import main


def test_passwords_hash_with_a_fresh_salt_and_verify():
    first, second = hash_password("桂城网格 2026"), hash_password("桂城网格 2026")
    assert first != second and verify_password("桂城网格 2026", first) and verify_password("桂城网格 2026", second)
    assert not verify_password("桂城网格 2025", first)
    assert not verify_password("x", None) and not verify_password("x", "md5$abc")


def test_users_demo_creates_one_account_per_role_with_a_small_real_scope(work_engine, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", work_engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(main, ["users", "demo"], catch_exceptions=False)
    assert result.exit_code == 0
    password = result.output.split("password: ")[1].split()[0]
    assert len(password) >= 8 and "demo only" in result.output.replace("embedded demo only", "demo only")
    now = datetime.now(UTC)
    with work_engine.begin() as conn:
        actors = {role: check_login(conn, f"demo_{role}", password, "test", now)
                  for role in ("commander", "supervisor", "worker", "reporter", "admin")}
    assert all(actors.values())
    assert actors["worker"].grid_codes == ("440605011001001",)
    assert {code[:12] for code in actors["supervisor"].grid_codes} == {"440605011001"}
    assert actors["commander"].sees_everything and actors["reporter"].grid_codes == ()
    with pytest.raises(PermissionDenied):
        actors["reporter"].grid_scope()
    # back to the password the other tests use
    CliRunner().invoke(main, ["users", "demo", "--password", "demo-password-1"], catch_exceptions=False)


def test_a_weak_password_or_an_unknown_role_is_refused(work_engine):
    with work_engine.begin() as conn:
        with pytest.raises(InvalidRequest, match="10"):
            save_user(conn, "weak", "worker", "short")
        with pytest.raises(InvalidRequest, match="role"):
            save_user(conn, "boss", "king", "long-enough-1")
        assert conn.execute(text("SELECT count(*) FROM users WHERE username IN ('weak', 'boss')")).scalar_one() == 0


def test_the_system_actor_sees_everything_and_a_worker_his_grids():
    worker = Actor(1, "w", "worker", grid_ids=frozenset({5}))
    assert worker.grid_scope() == [5] and Actor.system().grid_scope() is None
    assert worker.sees_task(6, 1) and not worker.sees_task(6, 2)
