"""`gridctl bench adminload`: does a supervisor's page stay responsive while a 100,000-row feed imports?

The issue's "done when": *upload a 100,000-row feed and watch its progress while a supervisor's page stays
responsive* — its refresh time during the import is this benchmark's figure, target under 1 s.

1. A database of its own, ``nanhai_adminload_bench`` on the same server (created, migrated and seeded with the
   reference district the first time, kept afterwards), with the demo accounts (a fresh random password).
2. A generated feed of ``rows`` residents (:func:`demo.feeds.write_feed`).
3. ``gridctl serve`` on a free loopback port, as a deployment runs it: granian's web workers (2 × 8 threads)
   and, beside them, the job worker at nice +10 (:mod:`jobs.worker`) and the task sweeper.
4. demo_supervisor logs in over HTTP and refreshes his dispatch console as the page does: the refresh callback
   (``dispatch-tick``: his queue, his open tasks, leads, the grid figures), posted with no stamp so that the server
   always does the whole work, and the panel of one of his grids (its persons, tasks, leads and timeline). Each
   "refresh" is both round trips, client-side wall time, one after the other with a short pause.
5. The peer: the same refresh with no job running — before the import (an empty district) and after it (the
   same data as at the import's end). The import is queued the way the feeds page queues it
   (:func:`jobs.queue.enqueue_feed_import`), refreshes go on until its job is done, each tagged with the stage the
   job was at; then the import is withdrawn (:func:`jobs.queue.enqueue_feed_withdrawal`: records removed,
   everyone matched again) under the same refreshes, which leaves the database as it was for the next run.

Figures: median, p95 and max of the refresh in each phase, the ratio of the import's median and p95 to the
peer's (after the import), the job's own durations and the worker's nice value. Times in ms.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

BENCH_DATABASE = "nanhai_adminload_bench"
SOURCE = "压测部门"
SUPERVISOR = "demo_supervisor"
PAUSE_S = 0.05  # between two refreshes
PEER_SAMPLES = 40
TARGET_MS = 1000.0
PROJECT = Path(__file__).resolve().parent.parent
DISPATCH = "/dispatch/"


class _Client:
    """One keep-alive HTTP connection with a session cookie (as the supervisor's browser holds one)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookie = ""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=data, headers=headers)
                answer = self.connection.getresponse()
                raw = answer.read()
                for line in answer.headers.get_all("Set-Cookie") or []:
                    cookie = SimpleCookie(line)
                    if "nanhai_session" in cookie:
                        self.cookie = f"nanhai_session={cookie['nanhai_session'].value}"
                return answer.status, raw
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _callback_output(client: _Client, first: str) -> str:
    """The dispatch page's callback output string whose first output is ``first`` (as its dependencies list it)."""
    status, raw = client.request("GET", f"{DISPATCH}_dash-dependencies")
    if status != 200:
        raise RuntimeError(f"dispatch dependencies: HTTP {status}")
    for dep in json.loads(raw):
        if dep["output"].strip(".").split("...")[0].split("@")[0] == first:
            return str(dep["output"])
    raise RuntimeError(f"no dispatch callback for {first}")


def _body(output: str, inputs: list[tuple[str, str, Any]], state: list[tuple[str, str, Any]]) -> dict[str, Any]:
    outputs = [{"id": item.rsplit(".", 1)[0], "property": item.rsplit(".", 1)[1]}
               for item in output.strip(".").split("...")]
    return {"output": output, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
            "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
            "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"]}


@dataclass
class _Refresher:
    """The supervisor's page refreshing: the tick callback (no stamp: the whole work) and one grid's panel."""

    client: _Client
    grid_code: str
    refresh: dict[str, Any] = field(default_factory=dict)
    panel: dict[str, Any] = field(default_factory=dict)

    def prepare(self) -> None:
        self.refresh = _body(_callback_output(self.client, "dispatch-queue.children"),
                             [("dispatch-tick", "n_intervals", 1), ("dispatch-changed", "data", 0),
                              ("dispatch-status", "value", "open")],
                             [("dispatch-stamp", "data", None), ("dispatch-lang", "data", "zh")])
        self.panel = _body(_callback_output(self.client, "dispatch-grid-panel.children"),
                           [("dispatch-grid", "data", self.grid_code), ("dispatch-changed", "data", 0)],
                           [("dispatch-lang", "data", "zh")])

    def once(self) -> tuple[float, float]:
        """One refresh: (tick callback ms, grid panel ms)."""
        times = []
        for body in (self.refresh, self.panel):
            started = time.perf_counter()
            status, raw = self.client.request("POST", f"{DISPATCH}_dash-update-component", body)
            times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"dispatch refresh: HTTP {status} {raw[:200]!r}")
        return times[0], times[1]


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _figures(samples: list[tuple[float, float, str]]) -> dict[str, Any]:
    """median, p95, max (ms) of whole refreshes (tick + panel) and of each part, and the count."""
    whole = [tick + panel for tick, panel, _stage in samples]
    if not whole:
        return {"n": 0}
    return {"n": len(whole), "median_ms": round(statistics.median(whole), 1),
            "p95_ms": round(_quantile(whole, 0.95), 1), "max_ms": round(max(whole), 1),
            "tick_median_ms": round(statistics.median(t for t, _p, _s in samples), 1),
            "panel_median_ms": round(statistics.median(p for _t, p, _s in samples), 1)}


def _by_stage(samples: list[tuple[float, float, str]]) -> dict[str, dict[str, Any]]:
    stages: dict[str, list[tuple[float, float, str]]] = {}
    for sample in samples:
        stages.setdefault(sample[2], []).append(sample)
    return {stage: _figures(found) for stage, found in stages.items()}


class _Watcher(threading.Thread):
    """Reads a job's stage twice a second (its own connection), so that each refresh is tagged with it."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        super().__init__(daemon=True)
        self.engine, self.job_id = engine, job_id
        self.stage, self.state, self.worker = "queued", "queued", ""
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with self.engine.connect() as conn:
                row = conn.execute(text("SELECT stage, state, coalesce(worker, '') FROM job_progress "
                                        "WHERE job_id = :j"), {"j": self.job_id}).first()
            if row is not None:
                self.stage, self.state, self.worker = row
            if self.state in ("succeeded", "failed"):
                return
            self.stopped.wait(0.5)


def _during(refresher: _Refresher, watcher: _Watcher, limit_s: float) -> list[tuple[float, float, str]]:
    samples = []
    deadline = time.monotonic() + limit_s
    while watcher.is_alive() and time.monotonic() < deadline:
        stage = watcher.stage if watcher.state == "running" else watcher.state
        tick, panel = refresher.once()
        samples.append((tick, panel, stage))
        time.sleep(PAUSE_S)
    watcher.stopped.set()
    return samples


def _idle(refresher: _Refresher, count: int) -> list[tuple[float, float, str]]:
    samples = []
    for _ in range(count):
        tick, panel = refresher.once()
        samples.append((tick, panel, "idle"))
        time.sleep(PAUSE_S)
    return samples


def _niceness(worker: str) -> int | None:
    """The nice value of the job worker named ``host:pid`` (this machine's)."""
    pid = worker.rsplit(":", 1)[-1]
    try:
        return os.getpriority(os.PRIO_PROCESS, int(pid)) if pid.isdigit() else None
    except OSError:
        return None


def _serve(url: str, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "gridctl", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _stop(server: subprocess.Popen[str]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: its workers and job process
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_ready(client: _Client, server: subprocess.Popen[str], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            said = server.stderr.read() if server.stderr else ""
            raise RuntimeError(f"gridctl serve ended ({server.returncode}): {said[-1000:]}")
        try:
            if client.request("GET", "/login")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"gridctl serve did not answer within {seconds:.0f} s")


def _wait_job(engine: Engine, job_id: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT state, result, error, extract(epoch FROM finished_at - started_at) "
                                    "FROM job_progress WHERE job_id = :j"), {"j": job_id}).first()
        if row is not None and row[0] in ("succeeded", "failed"):
            if row[0] == "failed":
                raise RuntimeError(f"job {job_id} failed: {row[2]}")
            return {**(row[1] or {}), "job_s": float(row[3])}
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} did not end within {seconds:.0f} s")


def prepare_database(engine: Engine, echo: Callable[[str], None]) -> str:
    """Seed the bench database when it is new, reset the demo accounts; returns their password. An import of
    the bench's source still standing (a run cut short) is withdrawn first."""
    from demo.accounts import create_demo_accounts
    from gis import migrate
    from grids.seeding import seed_nanhai
    from matching.pipeline import grid_locator

    migrate.upgrade(engine)
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grids")).scalar_one()
    if not grids:
        echo("播种示例区 / seeding the reference district (once)")
        echo(seed_nanhai(engine, progress=echo).message)
    grid_locator(engine)  # the locator tables are cached, as a deployment has them
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # as autovacuum leaves a live database: without, auto-dispatch crawls
    password = secrets.token_urlsafe(12)
    with engine.begin() as conn:
        create_demo_accounts(conn, password)
        left = conn.execute(text("SELECT count(*) FROM feed_files WHERE source = :s AND withdrawn_at IS NULL"),
                            {"s": SOURCE}).scalar_one()
    if left:
        from matching.withdrawal import withdraw_feed

        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM feed_files WHERE source = :s AND withdrawn_at IS NULL"),
                               {"s": SOURCE}).scalars().all()
        for feed_id in ids:
            echo(f"撤回上次留下的导入 #{feed_id} / withdrawing import #{feed_id} left by an earlier run")
            withdraw_feed(engine, feed_id, "bench", "压测清理 / bench clean-up")
    return password


def _feed(engine: Engine, folder: str, rows: int, echo: Callable[[str], None]) -> Path:
    import pandas as pd

    from demo.feeds import district_of, write_feed
    from grids import repository as grid_repository
    from matching import repository

    with engine.connect() as conn:
        grids = grid_repository.load_grids(conn)
        _, communities, book = repository.load_places(conn)
    book = book.merge(communities[["code", "name_short"]].rename(columns={"code": "community_code",
                                                                          "name_short": "community_name"}))
    path = Path(folder) / f"adminload_{rows}.csv"
    echo(f"生成 {rows} 行的数据文件 / writing a {rows}-row feed to {path}")
    write_feed(path, rows, district_of(grids), book, seed=19,
               now=pd.Timestamp.now(tz="Asia/Shanghai").floor("min").tz_localize(None))
    return path


def adminload_benchmark(engine: Engine, rows: int = 100_000, peer_samples: int = PEER_SAMPLES,
                        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark on ``engine`` (the bench database); returns the figures."""
    from jobs.queue import enqueue_feed_import, enqueue_feed_withdrawal

    password = prepare_database(engine, echo)
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        grid_code = conn.execute(text(
            "SELECT g.code FROM grids g JOIN users u ON u.community_id = g.community_id WHERE u.username = :u "
            "ORDER BY g.code LIMIT 1"), {"u": SUPERVISOR}).scalar_one()
    with tempfile.TemporaryDirectory() as folder:
        path = _feed(engine, folder, rows, echo)
        port = _free_port()
        echo(f"启动 gridctl serve（端口 {port}）/ starting gridctl serve on port {port}")
        server = _serve(url, port)
        try:
            client = _Client(port)
            _wait_ready(client, server)
            status, raw = client.request("POST", "/api/v1/session", {"username": SUPERVISOR, "password": password})
            if status != 201:
                raise RuntimeError(f"{SUPERVISOR} cannot log in: HTTP {status} {raw[:200]!r}")
            refresher = _Refresher(client, grid_code)
            refresher.prepare()
            _idle(refresher, 5)  # warm: each web worker's first requests build its caches
            echo(f"无任务时刷新 × {peer_samples} / refreshes with no job running")
            before = _idle(refresher, peer_samples)

            job_id = enqueue_feed_import(engine, path, SOURCE, "wgs84", requested_by="bench")
            echo(f"导入排队：任务 {job_id}；导入期间持续刷新 / import queued as job {job_id}; refreshing meanwhile")
            watcher = _Watcher(engine, job_id)
            watcher.start()
            during = _during(refresher, watcher, limit_s=1800)
            imported = _wait_job(engine, job_id, 60)
            niceness = _niceness(watcher.worker)
            echo(f"导入完成 / import done in {imported['job_s']:.1f} s: read {imported.get('rows_read')}, "
                 f"{imported.get('rows_stored')} stored")
            echo(f"无任务时刷新 × {peer_samples}（导入后）/ refreshes with no job running, after the import")
            after = _idle(refresher, peer_samples)

            with engine.connect() as conn:
                feed_id = conn.execute(text("SELECT id FROM feed_files WHERE job_id = :j"), {"j": job_id}).scalar_one()
            withdraw_id = enqueue_feed_withdrawal(engine, feed_id, "压测撤回 / bench withdrawal", "bench")
            echo(f"撤回排队：任务 {withdraw_id} / withdrawal queued as job {withdraw_id}")
            watcher = _Watcher(engine, withdraw_id)
            watcher.start()
            withdrawing = _during(refresher, watcher, limit_s=1800)
            withdrawn = _wait_job(engine, withdraw_id, 60)
        finally:
            _stop(server)
    peer = _figures(after)
    load = _figures(during)
    return {
        "rows": rows, "cores": os.cpu_count(), "worker_nice": niceness,
        "import_job_s": round(imported["job_s"], 1), "import_s": imported.get("import_seconds"),
        "match_s": imported.get("match_seconds"), "rows_read": imported.get("rows_read"),
        "rows_stored": imported.get("rows_stored"), "rows_rejected": imported.get("rows_rejected"),
        "persons": (imported.get("match") or {}).get("persons"),
        "tasks_made": (imported.get("tasks") or {}).get("tasks"),
        "refresh_before": _figures(before), "refresh_during_import": load, "refresh_after": peer,
        "refresh_during_import_by_stage": _by_stage(during),
        "ratio_median_vs_peer": round(load["median_ms"] / peer["median_ms"], 2) if load.get("n") else None,
        "ratio_p95_vs_peer": round(load["p95_ms"] / peer["p95_ms"], 2) if load.get("n") else None,
        "withdraw_job_s": round(withdrawn["job_s"], 1), "tasks_cancelled": withdrawn.get("tasks_cancelled"),
        "records_removed": withdrawn.get("records_removed"),
        "refresh_during_withdrawal": _figures(withdrawing),
        "target_ms": TARGET_MS, "met": bool(load.get("n")) and load["p95_ms"] < TARGET_MS,
    }
