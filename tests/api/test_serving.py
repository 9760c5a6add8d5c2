"""`gridctl serve --workers 2`: two processes share one socket, the API answers, SIGTERM stops them all; a worker
killed is replaced while the other serves on, and one that keeps dying stops the server for systemd to restart."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
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
        assert len(children) == 4  # two workers, the task sweeper and the job worker
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


class _Output:
    """The server's output, read as it comes (a thread), to find granian's lines about its workers."""

    def __init__(self, server: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(server.stdout), daemon=True)
        self.reader.start()

    def text(self) -> str:
        return "".join(self.lines)

    def worker_pids(self) -> dict[str, int]:
        """The newest PID of each worker ("worker-1": 4242), from granian's "Spawning worker-N with PID: P"."""
        return {name: int(pid) for name, pid in re.findall(r"Spawning (worker-\d+) with PID: (\d+)", self.text())}

    def wait_for(self, found, seconds: float = 60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(self.text())


def _app_starts(base: str) -> float:
    """``nanhai_app_starts_total`` of the whole server (every worker process, the dead ones too)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    return float(re.search(r"^nanhai_app_starts_total (\S+)$", text, re.M).group(1))


def test_a_killed_worker_is_replaced_while_the_other_serves_and_a_crash_loop_stops_the_server(work_engine):
    """kill -9 of one worker: the other answers every request meanwhile (each on a new connection), granian forks a
    replacement and the app counts three starts. A worker that dies again within 5.5 s of being replaced is a crash
    loop: the server stops with status 1 (systemd's Restart=always then starts it whole)."""
    port = _free_port()
    server = _launch(work_engine, port, "--workers", "2")
    output, base = _Output(server), f"http://127.0.0.1:{port}"
    try:
        first = output.wait_for(lambda: len(output.worker_pids()) == 2 and output.worker_pids())
        output.wait_for(lambda: all(f"Started worker-{n}" in output.text() for n in (1, 2)))  # both listen
        assert _answers(base) and _app_starts(base) == 2
        os.kill(first["worker-1"], signal.SIGKILL)
        # each worker listens on a socket of its own (SO_REUSEPORT): the connections queued on the dead one's are
        # reset as its last thread ends (net.ipv4.tcp_migrate_req=1 hands them to the others instead). granian says
        # "Unexpected exit" once it has reaped the worker, every thread gone: from then on only living workers listen
        output.wait_for(lambda: "Unexpected exit from worker-1" in output.text())
        answers = []
        replaced = lambda: output.worker_pids()["worker-1"] != first["worker-1"]  # noqa: E731
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (replaced() and _app_starts(base) == 3):
            answers.append(requests.get(f"{base}/api/v1/openapi.json", timeout=30).status_code)
        assert replaced() and _app_starts(base) == 3, output.text()
        assert len(answers) >= 3 and set(answers) == {200}, answers
        assert "Unexpected exit from worker-1" in output.text() and "Respawning worker-1" in output.text()
        now = output.worker_pids()
        assert sorted(now.values()) == sorted(set(now.values()) & _children(server.pid)) and len(now) == 2
        assert all(requests.get(f"{base}/api/v1/openapi.json", timeout=30).status_code == 200 for _ in range(5))

        everyone = _children(server.pid)  # the workers, the sweeper and the job worker
        os.kill(now["worker-2"], signal.SIGKILL)
        again = output.wait_for(lambda: output.worker_pids()["worker-2"] != now["worker-2"] and output.worker_pids())
        os.kill(again["worker-2"], signal.SIGKILL)  # within 5.5 s of its start
        server.wait(timeout=WORKER_STOP_SECONDS + 10)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=WORKER_STOP_SECONDS + 10)
    output.reader.join(timeout=10)
    assert server.returncode == 1 and "crash loop" in output.text(), output.text()
    assert not _running([*everyone, *again.values()])


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/api/v1/openapi.json", timeout=30).status_code == 200
    except requests.ConnectionError:
        return False


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


def test_after_the_database_drops_every_connection_no_request_fails(work_engine):
    """The served app checks a pooled connection before use: connections the database closed (a restart) cost a
    reconnect, not a failed request — in each worker, for logins and API reads alike."""
    port = _free_port()
    server, _ = _start(work_engine, port, "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        sessions = [requests.Session() for _ in range(4)]
        for session in sessions:  # each worker's pool now holds connections
            assert session.post(f"{base}/api/v1/session", json={"username": "demo_worker",
                                                                "password": DEMO_PASSWORD}).status_code == 201
            assert session.get(f"{base}/api/v1/tasks").status_code == 200
        with work_engine.connect() as conn:
            conn.execute(__import__("sqlalchemy").text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))
        time.sleep(1.5)  # a restart takes longer than this: the pooled connections have sat idle since
        answers = [session.get(f"{base}/api/v1/tasks").status_code for session in sessions for _ in range(3)]
        answers += [requests.post(f"{base}/api/v1/session", json={"username": "demo_worker",
                                                                  "password": DEMO_PASSWORD}).status_code
                    for _ in range(4)]
        assert answers == [200] * 12 + [201] * 4
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)


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
