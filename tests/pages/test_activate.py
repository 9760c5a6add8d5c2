"""The activation page (/activate) and POST /api/v1/activation: a new account's owner sets his password with the
one-time code and lands, logged in, on his own page."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest

from accounts.actor import ADMIN, Actor
from accounts.staff import add_user
from app import create_app
from matching.privacy import load_vault

ADMIN_ACTOR = Actor(None, "test_admin", ADMIN)
STRONG = "桂城巡查-二零二六-春"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def server(work_engine):
    return create_app(work_engine).server


def browser(server):
    """A test client with an address of its own: its failures do not count against other tests' clients."""
    client = server.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.19.0.{next(_numbers)}"
    return client


@pytest.fixture
def account(work_engine):
    """(username, activation code) of a new worker of grid 440605011001001."""
    number = next(_numbers)
    username = f"page.act{number}"
    with work_engine.begin() as conn:
        issued = add_user(conn, ADMIN_ACTOR, username, "陈志伟", "worker", load_vault(), datetime.now(UTC),
                          f"1370000{number:04d}", ("440605011001001",))
    return username, issued.code


def _form(client, path="/activate"):
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return html, re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def test_the_login_page_links_to_activation_in_the_chosen_language_chinese_first(server):
    client = browser(server)
    login = client.get("/login").get_data(as_text=True)
    assert 'href="/activate"' in login and "首次登录？激活账号" in login and "Activate" not in login
    html, _ = _form(client, "/activate?username=chen.zw")
    assert '<html lang="zh-CN">' in html and "激活账号" in html and "Activate your account" not in html
    assert 'value="chen.zw"' in html and 'name="password2"' in html and 'autocomplete="one-time-code"' in html
    client.set_cookie("nanhai_lang", "en")
    html, _ = _form(client, "/activate?username=chen.zw")
    assert '<html lang="en">' in html and "Activate your account" in html and "激活账号" not in html


def test_activation_refuses_a_forged_form_different_passwords_a_wrong_code_and_a_weak_password(server, account):
    username, code = account
    client = browser(server)
    client.set_cookie("nanhai_lang", "en")  # the refusals in English: one language at a time
    _, token = _form(client)
    form = {"username": username, "code": code, "password": STRONG, "password2": STRONG, "form_token": token}
    assert client.post("/activate", data={**form, "form_token": "guess"}).status_code == 400
    differ = client.post("/activate", data={**form, "password2": STRONG + "x"})
    assert differ.status_code == 422 and "differ" in differ.get_data(as_text=True)
    wrong = client.post("/activate", data={**form, "code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 401 and "wrong username or activation code" in wrong.get_data(as_text=True)
    weak = client.post("/activate", data={**form, "password": "woaini1314", "password2": "woaini1314"})
    assert weak.status_code == 422 and "too common" in weak.get_data(as_text=True)
    assert 'aria-invalid="true"' in weak.get_data(as_text=True)
    assert client.get("/api/v1/session").status_code == 401, "nothing logged in so far"


def test_activation_logs_in_and_lands_on_his_page_then_the_password_works_and_the_code_not(server, account):
    username, code = account
    client = browser(server)
    _, token = _form(client)
    done = client.post("/activate", data={"username": username, "code": f" {code.lower()} ", "password": STRONG,
                                          "password2": STRONG, "form_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/field/"
    me = client.get("/api/v1/session").get_json()
    assert me["username"] == username and me["grid_codes"] == ["440605011001001"]
    other = browser(server)
    assert other.post("/api/v1/session", json={"username": username, "password": STRONG}).status_code == 201
    again = browser(server)
    _, token = _form(again)
    reused = again.post("/activate", data={"username": username, "code": code, "password": "another-strong-1",
                                           "password2": "another-strong-1", "form_token": token})
    assert reused.status_code == 401


def test_the_json_activation_answers_the_session_and_is_throttled(server, account):
    username, code = account
    client = browser(server)
    missing = client.post("/api/v1/activation", json={"username": username, "password": STRONG})
    assert missing.status_code == 422 and missing.get_json()["field"] == "code"
    weak = client.post("/api/v1/activation", json={"username": username, "code": code, "password": "short"})
    assert weak.status_code == 422 and weak.get_json()["field"] == "password"
    done = client.post("/api/v1/activation", json={"username": username, "code": code, "password": STRONG})
    assert done.status_code == 201, done.get_data(as_text=True)
    body = done.get_json()
    assert body["username"] == username and body["role"] == "worker" and body["csrf_token"] and body["expires_at"]
    assert "nanhai_session" in done.headers["Set-Cookie"]
    blocked = None
    for _ in range(6):
        blocked = client.post("/api/v1/activation", json={"username": username, "code": code, "password": STRONG})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
