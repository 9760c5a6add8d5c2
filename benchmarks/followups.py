"""``gridctl bench followups``: the worker's "today's follow-ups" list and his check-in taps, over HTTP.

Set-up (not timed): a worker ``bench_followups_worker`` on grid 440605011001001 with ``persons`` persons in home
observation in his grid and ``tasks`` tasks in hand, beside ``background`` plans spread over the district's other
grids (each plan with six days of checks behind it, done or missed, and today's two), so that the list is read
from tables of a realistic size. A run removes the plans of the run before (``bench-fu-`` person keys).

1. **List server time.** ``loads`` loads of ``GET /api/v1/observation/follow-ups`` (target: median and p95 at most
   200 ms), each followed by a load of its named peer measured the same way in the same run: ``GET
   /api/v1/field/tasks``, the same worker's task list on the same phone (issue 24). Server time is what a WSGI
   middleware around the app measures, from the request's arrival to the last byte of its answer: the network is
   left out. Three warm-up loads of each are not counted.
2. **Check-in taps with retries.** ``phones`` phones (threads, each on its own connection, logged in as the
   worker) send ``taps`` check-ins in all to the worker's plans, each with its own ``Idempotency-Key`` — the field
   app's outbox semantics. About ``drop_share`` of them lose their answer (the phone hangs up as soon as the
   request is sent, as on a dropped connection) and are sent again with the same key and body until answered;
   about ``retry_share`` of the answered ones are sent once more and must come back as the same bytes with
   ``Idempotent-Replayed: true``. Then the database is asked: each acknowledged tap names its check; ``lost``
   counts acknowledged taps whose check is not stored done, ``duplicated`` the ``check`` events of the run beyond
   one per acknowledged tap. Target: 0 and 0.

The last line of the command is JSON.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, text

from accounts.actor import WORKER, Actor
from accounts.repository import save_user
from api.http import IDEMPOTENCY_HEADER
from tasks.repository import NewTask, create_task
from web.session import CSRF_HEADER, SESSION_COOKIE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

BENCH_USER = "bench_followups_worker"
BENCH_GRID = "440605011001001"
KEY_PREFIX = "bench-fu-"
LIST = "/api/v1/observation/follow-ups"
PEER = "/api/v1/field/tasks"
TARGET_MS = 200.0
HTTP_TIMEOUT = 30.0
Echo = Callable[[str], None]


class Timed:
    """A WSGI middleware that keeps the server time of each answer by path: from the call to the close of its
    body (the last byte handed to the server)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.times: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        body = self.app(environ, start_response)
        try:
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            elapsed = (time.perf_counter() - started) * 1000
            with self.lock:
                self.times.setdefault(path, []).append(elapsed)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _figures(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 1), "p95_ms": round(_percentile(values, 0.95), 1),
            "max_ms": round(max(values), 1), "loads": len(values)}


def prepare(engine: Engine, persons: int, background: int, tasks: int, echo: Echo) -> tuple[str, list[int]]:
    """The worker (a new random password, returned), his tasks and the plans; the ids of his grid's plans."""
    password = secrets.token_urlsafe(12)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        grid_id = conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": BENCH_GRID}).scalar_one()
        community = conn.execute(text("SELECT community_id FROM grids WHERE id = :g"), {"g": grid_id}).scalar_one()
        save_user(conn, BENCH_USER, WORKER, password, "压测随访网格员", community, [grid_id])
        user_id = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": BENCH_USER}).scalar_one()
        conn.execute(text("DELETE FROM observation_plans WHERE person_key LIKE :p"), {"p": KEY_PREFIX + "%"})
        conn.execute(text("DELETE FROM persons WHERE person_key LIKE :p"), {"p": KEY_PREFIX + "%"})
        in_hand = conn.execute(text("SELECT count(*) FROM tasks WHERE assignee_id = :u AND status IN "
                                    "('dispatched', 'accepted', 'in_progress')"), {"u": user_id}).scalar_one()
        for index in range(max(0, tasks - in_hand)):
            create_task(conn, Actor.system(), NewTask("area_sweep", BENCH_GRID, f"[压测] 随访巡查 {index + 1}",
                                                       assignee_id=user_id), now)
        # persons: the worker's grid first, then the others spread over every other grid
        conn.execute(text(
            "WITH others AS (SELECT array_agg(id ORDER BY id) AS ids FROM grids WHERE id <> :g), "
            "wanted AS (SELECT n, CASE WHEN n <= :mine THEN :g ELSE others.ids[1 + (n % cardinality(others.ids))] "
            "END AS grid_id FROM generate_series(1, :mine + :background) AS n, others) "
            "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, confidence, grid_id) "
            "SELECT :prefix || lpad(n::text, 8, '0'), '4406**********' || lpad((n % 10000)::text, 4, '0'), "
            "'测*' || n, 'yellow', '重点地区 / key area', 'yellow-key-area', 1.0, grid_id FROM wanted"),
            {"g": grid_id, "mine": persons, "background": background, "prefix": KEY_PREFIX})
        conn.execute(text(
            "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, "
            "token_nonce) SELECT person_key, grid_id, 'yellow-key-area', "
            "date_trunc('day', CAST(:now AS timestamptz) AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' "
            "- interval '6 days', CAST(:now AS timestamptz) + interval '8 days', '{480,1200}', "
            "substr(md5(person_key), 1, 22) FROM persons WHERE person_key LIKE :p"),
            {"now": now, "p": KEY_PREFIX + "%"})
        # six days behind (done, one in ten missed) and today's two checks (due unless already past: done)
        conn.execute(text(
            "INSERT INTO observation_checks (plan_id, due_at, status, reported_at, temperature, symptoms, channel, "
            "missed_at) SELECT p.id, d.due, CASE WHEN d.due > :now THEN 'due' WHEN (p.id + d.k) % 10 = 0 "
            "THEN 'missed' ELSE 'done' END, CASE WHEN d.due <= :now AND (p.id + d.k) % 10 <> 0 THEN d.due END, "
            "CASE WHEN d.due <= :now AND (p.id + d.k) % 10 <> 0 THEN 36.5 END, "
            "CASE WHEN d.due <= :now AND (p.id + d.k) % 10 <> 0 THEN ARRAY['none'] END, "
            "CASE WHEN d.due <= :now AND (p.id + d.k) % 10 <> 0 THEN 'self' END, "
            "CASE WHEN d.due <= :now AND (p.id + d.k) % 10 = 0 THEN d.due + interval '2 hours' END "
            "FROM observation_plans p CROSS JOIN LATERAL (SELECT k, p.starts_at + (k / 2) * interval '1 day' "
            "+ CASE WHEN k % 2 = 0 THEN interval '8 hours' ELSE interval '20 hours' END AS due "
            "FROM generate_series(0, 13) AS k) d WHERE p.person_key LIKE :p"), {"now": now, "p": KEY_PREFIX + "%"})
        conn.execute(text("ANALYZE observation_plans; ANALYZE observation_checks; ANALYZE persons"))
        mine = [int(i) for i in conn.execute(text(
            "SELECT id FROM observation_plans WHERE grid_id = :g AND person_key LIKE :p ORDER BY id"),
            {"g": grid_id, "p": KEY_PREFIX + "%"}).scalars()]
        rows = conn.execute(text("SELECT count(*) FROM observation_checks c JOIN observation_plans p ON p.id = "
                                 "c.plan_id WHERE p.person_key LIKE :p"), {"p": KEY_PREFIX + "%"}).scalar_one()
    echo(f"准备完成 / ready: {persons} persons in the worker's grid, {background} elsewhere, {rows} checks, "
         f"{tasks} tasks in hand")
    return password, mine


class Phone:
    """One phone: its own keep-alive connection and the worker's session (cookie and CSRF token)."""

    def __init__(self, base: str, password: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port
        self.connection = self._connect()
        status, headers, body = self.send("POST", "/api/v1/session",
                                          {"username": BENCH_USER, "password": password})
        if status != 201:
            raise RuntimeError(f"login failed: {status} {body[:200]!r}")
        cookie = next(v for k, v in headers if k.lower() == "set-cookie" and v.startswith(SESSION_COOKIE + "="))
        self.cookie = cookie.split(";", 1)[0]
        self.csrf = json.loads(body)["csrf_token"]

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)

    def send(self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None,
             drop: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request; ``drop``: hang up once it is sent (its answer lost: status 0)."""
        headers = {"Content-Type": "application/json"}
        if getattr(self, "cookie", None):
            headers["Cookie"] = self.cookie
            headers[CSRF_HEADER] = self.csrf
        if key:
            headers[IDEMPOTENCY_HEADER] = key
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            if drop:
                self.connection.close()
                self.connection = self._connect()
                return 0, [], b""
            answer = self.connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = self._connect()
            return 0, [], b""


def _tap(phone: Phone, plan_id: int, rng: random.Random, drop_share: float, retry_share: float,
         tally: dict[str, int]) -> dict[str, Any] | None:
    """One check-in tap through the outbox semantics: one key, the same body until a definitive answer."""
    key, body = str(uuid.uuid4()), {"temperature": round(rng.uniform(36.0, 37.2), 1), "symptoms": ["none"]}
    path = f"/api/v1/observation/plans/{plan_id}/checks"
    drop = rng.random() < drop_share
    for attempt in range(20):
        status, headers, answer = phone.send("POST", path, body, key, drop=drop and attempt == 0)
        if status == 0 or status == 429 or status >= 500:
            tally["retried"] += 1
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
            continue
        if status != 201:
            tally["refused"] += 1
            return None
        if rng.random() < retry_share:  # sent again though answered: the very same answer, replayed
            again, again_headers, again_answer = phone.send("POST", path, body, key)
            replayed = dict((k.lower(), v) for k, v in again_headers).get("idempotent-replayed")
            tally["replays"] += 1
            tally["replays_ok"] += int(again == 201 and again_answer == answer and replayed == "true")
        return {"plan_id": plan_id, **json.loads(answer)}
    tally["unresolved"] += 1
    return None


def followups_benchmark(engine: Engine, persons: int = 60, background: int = 20_000, tasks: int = 20,
                        loads: int = 30, phones: int = 4, taps: int = 200, drop_share: float = 0.1,
                        retry_share: float = 0.1, echo: Echo = print) -> dict[str, Any]:
    """Run the benchmark (see the module's text) against an app on ``engine``; returns the figures."""
    from app import create_app
    from benchmarks.headless import LiveServer

    password, plans = prepare(engine, persons, background, tasks, echo)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would drown the figures
    server = create_app(engine).server
    timed = Timed(server.wsgi_app)
    server.wsgi_app = timed
    with LiveServer(server) as live:
        reader = Phone(live.url, password)
        for _ in range(3):
            reader.send("GET", LIST)
            reader.send("GET", PEER)
        timed.times.clear()
        listed = 0
        for _ in range(loads):
            status, _headers, body = reader.send("GET", LIST)
            if status != 200:
                raise RuntimeError(f"{LIST} answered {status}: {body[:200]!r}")
            listed = len(json.loads(body)["follow_ups"])
            reader.send("GET", PEER)
        time.sleep(0.2)  # the last answer's body is closed just after the phone has read it
        # the last ``loads`` of each: a warm-up answer may be closed just after the clearing
        own, peer = _figures(timed.times[LIST][-loads:]), _figures(timed.times[PEER][-loads:])
        echo(f"今日随访 / follow-ups ({listed} persons): median {own['median_ms']} ms, p95 {own['p95_ms']} ms; "
             f"peer {PEER}: median {peer['median_ms']} ms, p95 {peer['p95_ms']} ms")

        started = datetime.now(UTC)
        tally = {"retried": 0, "refused": 0, "unresolved": 0, "replays": 0, "replays_ok": 0}
        acknowledged: list[dict[str, Any]] = []
        lock = threading.Lock()

        def run(index: int) -> None:
            phone, rng = Phone(live.url, password), random.Random(index)
            mine = {key: 0 for key in tally}
            done = []
            for n in range(index, taps, phones):
                answer = _tap(phone, plans[n % len(plans)], rng, drop_share, retry_share, mine)
                if answer is not None:
                    done.append(answer)
            with lock:
                acknowledged.extend(done)
                for key, value in mine.items():
                    tally[key] += value

        clock = time.perf_counter()
        threads = [threading.Thread(target=run, args=(i,)) for i in range(phones)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - clock
    with engine.connect() as conn:
        stored = {int(r.id): r.status for r in conn.execute(text(
            "SELECT id, status FROM observation_checks WHERE id = ANY(:ids)"),
            {"ids": [a["check_id"] for a in acknowledged]})}
        events = conn.execute(text(
            "SELECT count(*) FROM observation_events e JOIN observation_plans p ON p.id = e.plan_id WHERE "
            "e.kind = 'check' AND e.at >= :since AND p.person_key LIKE :p"),
            {"since": started, "p": KEY_PREFIX + "%"}).scalar_one()
    lost = sum(1 for a in acknowledged if stored.get(int(a["check_id"])) != "done")
    duplicated = max(0, int(events) - len(acknowledged))
    echo(f"打卡 / taps: {len(acknowledged)} of {taps} acknowledged in {seconds:.1f} s, {tally['retried']} retried, "
         f"{tally['replays_ok']}/{tally['replays']} replays identical; lost {lost}, duplicated {duplicated}")
    return {"benchmark": "followups", "persons_in_grid": persons, "background_plans": background,
            "listed": listed, "follow_ups": own, "peer": {"path": PEER, **peer},
            "target_ms": TARGET_MS, "list_ok": own["median_ms"] <= TARGET_MS and own["p95_ms"] <= TARGET_MS,
            "taps": taps, "acknowledged": len(acknowledged), "phones": phones, "tap_seconds": round(seconds, 2),
            **tally, "lost": lost, "duplicated": duplicated,
            "taps_ok": lost == 0 and duplicated == 0 and len(acknowledged) == taps
            and tally["replays_ok"] == tally["replays"]}
