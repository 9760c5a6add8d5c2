"""Logins and sessions: throttled failures, expiry, logout, CSRF, the login page, the audit log."""

import re
import uuid

import pytest
import requests
from sqlalchemy import text

from accounts.repository import FAILURES_PER_ACCOUNT
from app import create_app
from tests.api.client import ApiClient
from tests.browser import LiveServer
from tests.conftest import DEMO_PASSWORD, Clock


@pytest.fixture
def own_clock_server(work_engine):
    clock = Clock()
    with LiveServer(create_app(work_engine, clock).server) as server:
        yield server, clock


def test_session_answers_who_is_logged_in(as_role):
    me = as_role("worker").get("/session").json()
    assert me["username"] == "demo_worker" and me["role"] == "worker" and me["grid_codes"] == ["440605011001001"]
    assert len(as_role("supervisor").get("/session").json()["grid_codes"]) == 8


def test_passwords_are_stored_hashed_with_scrypt(work_engine):
    with work_engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE username = 'demo_admin'")).scalar_one()
    assert stored.startswith("scrypt$") and DEMO_PASSWORD not in stored


def test_failed_logins_are_throttled_even_for_the_right_password(live, work_engine):
    from accounts.repository import save_user

    with work_engine.begin() as conn:
        save_user(conn, "throttle_me", "reporter", "right-password-1")
    http = requests.Session()
    for _ in range(FAILURES_PER_ACCOUNT):
        wrong = http.post(f"{live.url}/api/v1/session", json={"username": "throttle_me", "password": "nope-nope"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "用户名或密码错误"  # Chinese by default
    blocked = http.post(f"{live.url}/api/v1/session", json={"username": "throttle_me", "password": "right-password-1"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


def test_sessions_expire_and_logout_ends_them(own_clock_server):
    server, clock = own_clock_server
    client = ApiClient(server.url, "demo_commander")
    assert client.get("/tasks").status_code == 200
    clock.advance(hours=12, minutes=1)
    assert client.get("/tasks").status_code == 401
    clock.advance(hours=-12, minutes=-1)
    again = ApiClient(server.url, "demo_commander")
    assert again.delete("/session").status_code == 204
    assert again.get("/session").status_code == 401


def test_changes_need_the_csrf_token_and_the_same_origin(as_role):
    supervisor = as_role("supervisor")
    body = {"kind": "area_sweep", "grid_code": "440605011001001", "title": "CSRF", "dispatch": False}
    bare = supervisor.http.post(f"{supervisor.base}/api/v1/tasks", json=body)
    assert bare.status_code == 403 and "X-CSRF-Token" in bare.json()["message"]
    forged = supervisor.http.post(f"{supervisor.base}/api/v1/tasks", json=body,
                                  headers={"X-CSRF-Token": supervisor.csrf, "Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert supervisor.post("/tasks", body).status_code == 201


def test_a_key_sent_with_a_refused_request_is_not_used_up(as_role):
    """The session and the Idempotency-Key are taken in one statement: a CSRF refusal must give the key back."""
    supervisor, key = as_role("supervisor"), str(uuid.uuid4())
    body = {"kind": "area_sweep", "grid_code": "440605011001001", "title": "CSRF 与重试键", "dispatch": False}
    refused = supervisor.http.post(f"{supervisor.base}/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
    assert refused.status_code == 403 and "Idempotent-Replayed" not in refused.headers
    first, again = supervisor.post("/tasks", body, key=key), supervisor.post("/tasks", body, key=key)
    assert first.status_code == again.status_code == 201 and first.json()["title"] == "CSRF 与重试键"
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert again.text == first.text


def test_the_login_page_logs_in_with_a_form_and_refuses_a_forged_post(live):
    browser = requests.Session()
    page = browser.get(f"{live.url}/login?next=/api/v1/session")
    assert page.status_code == 200 and "登录" in page.text
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    forged = requests.post(f"{live.url}/login", data={"username": "demo_worker", "password": DEMO_PASSWORD,
                                                      "form_token": "guess"})
    assert forged.status_code == 400 and "nanhai_session" not in forged.cookies
    done = browser.post(f"{live.url}/login", data={"username": "demo_worker", "password": DEMO_PASSWORD,
                                                   "form_token": token, "next": "https://evil.example/"},
                        allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"] == "/field/", "not off-site: to his own page"
    assert browser.get(f"{live.url}/api/v1/session").json()["username"] == "demo_worker"


def test_unmasked_reads_need_a_reason_and_are_audited(live, as_role, work_engine):
    from matching.privacy import load_vault

    vault = load_vault()
    key = vault.person_key("440605198503030011")
    with work_engine.begin() as conn:
        conn.execute(text("INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, "
                          "default_crs) VALUES ('audit', 'a.csv', 'audit', 1, 1, 0, 'wgs84') ON CONFLICT DO NOTHING"))
        conn.execute(text(
            "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, name_masked) "
            "SELECT id, 1, 'audit', :k, :sealed, '440605********0011', '陈*' FROM feed_files WHERE sha256 = 'audit' "
            "ON CONFLICT DO NOTHING"),
            {"k": key, "sealed": vault.key_and_seal(["440605198503030011"], ["陈明"], ["13800138000"])[1][0]})
        conn.execute(text(
            "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id, "
            "  record_feed_file_id, record_row_number) "
            "SELECT :k, '440605********0011', '陈*', 'red', '确诊', 1, g.id, f.id, 1 FROM grids g, feed_files f "
            "WHERE g.code = '440605011001001' AND f.sha256 = 'audit' ON CONFLICT DO NOTHING"), {"k": key})
    worker = as_role("worker")
    assert worker.get(f"/persons/{key}").json()["name_masked"] == "陈*"
    assert worker.post(f"/persons/{key}/unmask", {}).status_code == 422
    assert as_role("reporter").post(f"/persons/{key}/unmask", {"reason": "统计"}).status_code == 403
    opened = worker.post(f"/persons/{key}/unmask", {"reason": "电话联系转运"})
    assert opened.status_code == 200 and opened.json()["phone"] == "13800138000"
    with work_engine.connect() as conn:
        audit = conn.execute(text("SELECT username, action, reason FROM audit_log WHERE subject = :k"),
                             {"k": key}).all()
    assert [tuple(a) for a in audit] == [("demo_worker", "unmask_person", "电话联系转运")]
    def move(grid_code: str) -> None:
        with work_engine.begin() as conn:
            conn.execute(text("UPDATE persons SET grid_id = (SELECT id FROM grids WHERE code = :g) "
                              "WHERE person_key = :k"), {"g": grid_code, "k": key})

    move("440605011001002")  # the same person in a grid outside the worker's scope
    try:
        assert worker.post(f"/persons/{key}/unmask", {"reason": "电话联系转运"}).status_code == 404
        assert as_role("commander").post(f"/persons/{key}/unmask", {"reason": "指挥核实"}).status_code == 200
    finally:
        move("440605011001001")  # back where other tests expect him
    with work_engine.connect() as conn:
        audit = conn.execute(text("SELECT username FROM audit_log WHERE subject = :k ORDER BY id"), {"k": key}).all()
    assert [a.username for a in audit] == ["demo_worker", "demo_commander"]
    retry = str(uuid.uuid4())  # a retried unmask is read (and audited) again: its clear answer is never stored
    first, again = (worker.post(f"/persons/{key}/unmask", {"reason": "回访核实"}, key=retry) for _ in range(2))
    assert first.status_code == again.status_code == 200 and again.json()["phone"] == "13800138000"
    assert "Idempotent-Replayed" not in again.headers
    with work_engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM idempotency_keys WHERE key = :r OR body LIKE '%13800138000%'"),
                            {"r": retry}).scalar_one()
        reads = conn.execute(text("SELECT count(*) FROM audit_log WHERE subject = :k AND reason = '回访核实'"),
                             {"k": key}).scalar_one()
    assert kept == 0 and reads == 2
    with pytest.raises(Exception, match="append-only"), work_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
