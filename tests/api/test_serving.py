"""`gridctl serve --workers 2`: two processes share one socket, the API answers, SIGTERM stops them all."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from api.serving import WORKER_STOP_SECONDS, run_beside, trusting
from tests.api.conftest import DEMO_GRID
from tests.conftest import DEMO_PASSWORD


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.add(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _launch(engine, port: int, *options: str) -> subprocess.Popen:
    """`gridctl serve` on ``port`` with ``options``, on ``engine``'s database, its output in one text pipe."""
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    return subprocess.Popen([sys.executable, "-m", "gridctl", "serve", "--port", str(port), *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _running(pids) -> list[int]:
    """Those of ``pids`` that still run (a zombie has ended)."""
    return [pid for pid in pids
            if os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read().lower()]


def _start(engine, port: int, *options: str) -> tuple[subprocess.Popen, requests.Response]:
    """`gridctl serve` on ``port`` with ``options``, and its first answer (the OpenAPI document)."""
    server = _launch(engine, port, *options)
    for _ in range(120):
        try:
            # the socket listens before the workers have built the app: an early request waits in the queue
            return server, requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=90)
        except requests.ConnectionError:
            time.sleep(0.25)
    server.kill()
    raise AssertionError(server.communicate(timeout=30)[0])


def test_two_worker_processes_serve_the_api_and_stop_together(work_engine):
    port = _free_port()
    server, answer = _start(work_engine, port, "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        assert answer.status_code == 200 and answer.json()["openapi"].startswith("3.1")
        children = _children(server.pid)
        assert len(children) == 3  # two workers and the task sweeper
        supervisor = requests.Session()
        login = supervisor.post(f"{base}/api/v1/session", json={"username": "demo_supervisor",
                                                                "password": DEMO_PASSWORD})
        assert login.status_code == 201
        headers = {"X-CSRF-Token": login.json()["csrf_token"], "Idempotency-Key": "serving-test-create"}
        body = {"kind": "area_sweep", "grid_code": DEMO_GRID, "title": "生产服务器上的重试", "dispatch": False}
        first, again = (supervisor.post(f"{base}/api/v1/tasks", json=body, headers=headers) for _ in range(2))
        assert first.status_code == again.status_code == 201 and again.text == first.text
        assert again.headers["Idempotent-Replayed"] == "true"
        page = supervisor.get(f"{base}/")
        assert page.status_code == 200 and "DashRenderer" in page.text
        assert supervisor.get(f"{base}/dispatch/_dash-layout").json()["type"]
        assert "nanhai" in supervisor.get(f"{base}/dispatch/assets/nanhai.js").text
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output
    assert "worker-1" in output and "worker-2" in output
    assert not _running(children)


@pytest.mark.parametrize("spawning", ["worker-1", "worker-2"])
def test_a_stop_while_the_workers_start_ends_them_all_at_once(work_engine, spawning):
    """SIGTERM as a worker is forked, while it builds the app: it used to be lost in the worker, and the main
    process waited for that worker forever (now at most WORKER_STOP_SECONDS, after which it kills it)."""
    server = _launch(work_engine, _free_port(), "--workers", "2")
    said = []
    for line in server.stdout:
        said.append(line)
        if f"Spawning {spawning}" in line:
            break
    children = _children(server.pid)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        said.append(server.communicate(timeout=WORKER_STOP_SECONDS - 10)[0])
    except subprocess.TimeoutExpired:
        for pid in (*_children(server.pid), server.pid):  # the workers hold its output open
            os.kill(pid, signal.SIGKILL)
        raise AssertionError("".join(said) + server.communicate()[0]) from None
    assert server.returncode == 0 and time.monotonic() - started < WORKER_STOP_SECONDS - 10, "".join(said)
    assert "refused to gracefully stop" not in "".join(said)
    assert not _running(children)


def test_a_connection_lost_under_a_request_answers_503_once_then_recovers(as_role, work_engine):
    worker = as_role("worker")
    assert worker.get("/tasks").status_code == 200  # the pool now holds a connection
    with work_engine.connect() as conn:
        conn.execute(__import__("sqlalchemy").text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"))
    answers = [worker.get("/tasks") for _ in range(12)]
    lost = [a for a in answers if a.status_code == 503]
    assert all("retry" in a.json()["message"] for a in lost)
    assert answers[-1].status_code == 200 and {a.status_code for a in answers} <= {200, 503}


def _public_reports(port: int, forwarded_for: str, count: int) -> list[int]:
    return [requests.post(f"http://127.0.0.1:{port}/api/v1/leads", headers={"X-Forwarded-For": forwarded_for},
                          json={"description": f"代理测试 {forwarded_for} 第 {i} 条",
                                "address": f"大沥镇黄岐社区代理路{i}号"}).status_code for i in range(count)]


def test_behind_a_trusted_proxy_clients_are_told_apart_and_nobody_else_can_forge_one(work_engine):
    port = _free_port()
    server, _ = _start(work_engine, port, "--workers", "1", "--trusted-proxy", "127.0.0.1")
    try:  # the public form allows 5 reports per client in 10 minutes
        assert _public_reports(port, "203.0.113.7", 6) == [201] * 5 + [429]
        assert _public_reports(port, "203.0.113.8", 1) == [201]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    port = _free_port()
    server, _ = _start(work_engine, port, "--workers", "1")
    try:  # no proxy named: the header is dropped, a new forged address each time is still the same client
        answers = [_public_reports(port, f"198.51.100.{i}", 1)[0] for i in range(6)]
        assert 429 in answers and answers == sorted(answers)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_the_request_environ_keeps_the_request_and_only_a_trusted_proxy_names_the_client(monkeypatch):
    monkeypatch.setenv("NANHAI_SERVING_PROBE", "from the process")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    seen = []
    app = trusting(lambda environ, start_response: seen.append(dict(environ)) or [b""], "10.0.0.1")

    def request(remote: str, **headers: str) -> dict:
        environ = {**os.environ, "REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": remote,
                   "wsgi.url_scheme": "http", **headers}
        app(environ, None)
        return seen[-1]

    direct = request("192.0.2.5", HTTP_COOKIE="nanhai_session=x", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert "NANHAI_SERVING_PROBE" not in direct and "HTTP_PROXY" not in direct
    assert direct["HTTP_COOKIE"] == "nanhai_session=x" and direct["REQUEST_METHOD"] == "GET"
    assert direct["REMOTE_ADDR"] == "192.0.2.5" and "HTTP_X_FORWARDED_FOR" not in direct
    proxied = request("10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.9", HTTP_X_FORWARDED_PROTO="https")
    assert proxied["REMOTE_ADDR"] == "198.51.100.9" and proxied["wsgi.url_scheme"] == "https"
    assert request("10.0.0.1", HTTP_X_FORWARDED_PROTO="gopher")["wsgi.url_scheme"] == "http"


def test_a_sweeper_that_cannot_start_says_so_and_its_process_ends(capfd):
    def no_database() -> None:
        raise ConnectionError("数据库未启动 / the database is down")

    pid = run_beside(no_database)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
    said = capfd.readouterr().err
    assert "the task sweeper could not start (ConnectionError: 数据库未启动" in said and "restart the server" in said
