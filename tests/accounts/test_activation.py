"""Activation: a new or reset account cannot log in until its owner sets a strong password with the one-time code;
wrong codes are refused and throttled like wrong passwords."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from accounts.activation import ACTIVATION_LIFETIME, activate, code_hash, new_code, normalise_code
from accounts.passwords import check_strength, common_passwords
from accounts.repository import FAILURES_PER_ACCOUNT, check_login, open_session, session_actor
from accounts.staff import add_user, reset_password
from gis.errors import InvalidRequest, RateLimited, Unauthenticated
from tests.accounts.conftest import ADMIN_ACTOR, NOW, new_phone

STRONG = "桂城巡查-二零二六-春"


def _worker(conn, vault, username: str):
    return add_user(conn, ADMIN_ACTOR, username, "陈志伟", "worker", vault, NOW, new_phone(), ("440605011011001",))


@pytest.mark.parametrize(("password", "why"), [
    ("short-1", "10 characters"), ("woaini1314", "too common"), ("123456789a", "too common"),
    ("QwertyUIOP", "too common"), ("1qaz2wsx3edc", "too common"), ("13912345678", "phone number"),
    ("aaaaaaaaaaaa", "different characters"), ("ababababab", "different characters"),
    ("chen.zhiwei-2026", "username")])
def test_weak_passwords_are_refused_with_the_reason(password, why):
    assert why in check_strength(password, "chen.zhiwei")


def test_strong_passwords_pass_and_the_common_list_is_shipped():
    assert check_strength(STRONG, "chen.zhiwei") is None and check_strength("correct horse battery") is None
    listed = common_passwords()
    assert len(listed) > 1000 and {"woaini1314", "qwertyuiop", "123456789a", "1234567890"} <= listed


def test_codes_are_random_readable_and_folded_as_typed(vault):
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200 and all(len(c) == 14 and not set(c) & set("0O1IL") for c in codes)
    code = next(iter(codes))
    assert normalise_code(code.lower().replace("-", " ")) == code.replace("-", "")
    assert normalise_code("ＡＢＣＤ－２３４５") == "ABCD2345", "full-width, as a phone keyboard may type it"
    assert code_hash(vault, "a", code) == code_hash(vault, "a", code.lower()) != code_hash(vault, "b", code)


def test_a_new_account_cannot_log_in_until_activated_with_a_strong_password_and_the_right_code(staff_engine, vault):
    with staff_engine.begin() as conn:
        issued = _worker(conn, vault, "act.first")
        assert check_login(conn, "act.first", "", "act-client", NOW) is None
        assert check_login(conn, "act.first", issued.code, "act-client", NOW) is None, "the code is no password"
    with staff_engine.begin() as conn:  # a wrong code: refused, and the failure counts
        assert activate(conn, "act.first", "AAAA-BBBB-CCCC", STRONG, "act-client", vault, NOW) is None
        failures = conn.execute(text("SELECT count(*) FROM login_failures WHERE username = 'act.first'")).scalar()
    assert failures == 3
    with staff_engine.begin() as conn, pytest.raises(InvalidRequest) as weak:  # a weak password: refused first
        activate(conn, "act.first", issued.code, "woaini1314", "act-client", vault, NOW)
    assert weak.value.field == "password" and "too common" in str(weak.value)
    with staff_engine.begin() as conn:
        actor = activate(conn, "act.first", issued.code.lower(), STRONG, "act-client", vault, NOW)
        assert actor is not None and actor.username == "act.first" and actor.role == "worker"
        assert actor.grid_codes == ("440605011011001",)
        row = conn.execute(text("SELECT must_set_password, activation_hash, password_hash FROM users "
                                "WHERE username = 'act.first'")).one()
        assert not row.must_set_password and row.activation_hash is None and row.password_hash.startswith("scrypt$")
        assert check_login(conn, "act.first", STRONG, "act-client", NOW) is not None
        audit = conn.execute(text("SELECT action FROM audit_log WHERE subject = 'act.first' ORDER BY id")).scalars()
        assert list(audit) == ["user.create", "user.activate"]
    with staff_engine.begin() as conn:  # a code works once
        assert activate(conn, "act.first", issued.code, "another-strong-pass", "act-client", vault, NOW) is None


def test_an_expired_code_is_refused_and_says_so(staff_engine, vault):
    with staff_engine.begin() as conn:
        issued = _worker(conn, vault, "act.late")
    later = NOW + ACTIVATION_LIFETIME + timedelta(minutes=1)
    with staff_engine.begin() as conn, pytest.raises(Unauthenticated, match="expired"):
        activate(conn, "act.late", issued.code, STRONG, "act-client-2", vault, later)


def test_wrong_codes_are_throttled_even_before_the_right_one(staff_engine, vault):
    with staff_engine.begin() as conn:
        issued = _worker(conn, vault, "act.guess")
    for _ in range(FAILURES_PER_ACCOUNT):
        with staff_engine.begin() as conn:
            assert activate(conn, "act.guess", new_code(), STRONG, "guesser", vault, NOW) is None
    with staff_engine.begin() as conn, pytest.raises(RateLimited):
        activate(conn, "act.guess", issued.code, STRONG, "guesser", vault, NOW)
    with staff_engine.begin() as conn:  # 15 minutes later the right code works
        assert activate(conn, "act.guess", issued.code, STRONG, "guesser", vault, NOW + timedelta(minutes=16))


def test_a_reset_ends_the_sessions_and_the_old_password_until_the_new_code_is_used(staff_engine, vault):
    with staff_engine.begin() as conn:
        issued = _worker(conn, vault, "act.reset")
        actor = activate(conn, "act.reset", issued.code, STRONG, "c", vault, NOW)
        token, _csrf, _ = open_session(conn, actor.user_id, NOW)
        assert session_actor(conn, token, NOW) is not None
        again = reset_password(conn, ADMIN_ACTOR, "act.reset", vault, NOW)
        assert again.code != issued.code
        assert session_actor(conn, token, NOW) is None, "his session ends at once"
        assert check_login(conn, "act.reset", STRONG, "c", NOW) is None, "the old password no longer works"
        assert activate(conn, "act.reset", again.code, "a-new-strong-one", "c", vault, NOW) is not None
        assert check_login(conn, "act.reset", "a-new-strong-one", "c", NOW) is not None
