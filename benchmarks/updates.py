"""``gridctl bench updates``: simulated field phones walk their tasks through the lifecycle over HTTP.

What is measured: N phones (threads, each with its own keep-alive HTTP
connection and its own session; :mod:`benchmarks.wire`, which costs less
CPU per request than :mod:`http.client`, as the phones share the CPU with
the server) run on loopback against a running server for a bounded time. Each
walks its own dispatched tasks: accept → start → handle (result,
temperature, GPS point), with an extension request on some tasks after
accepting. ``updates_per_s`` is the number of *acknowledged* updates
(a 200 answer, the first or a replay of it) divided by the wall time of the
timed phase; logins and the preparation of accounts and tasks are not timed.

The run also misbehaves on purpose, as phones on a poor network do:

- about 10 % of acknowledged updates are sent again with the same
  ``Idempotency-Key`` and body; the answer must carry ``Idempotent-Replayed:
  true`` and be byte for byte the first answer (``retries``, ``replays_ok``);
- about 5 % of updates are first tried with the version before the current
  one; the answer must be 409 ``stale_version`` and change nothing
  (``stale_sent``);
- about 5 % of updates are sent at the same moment from the worker's second
  device (a second connection, same session, same version, its own key and
  reading): exactly one must win and the other hear 409 ``stale_version``
  with the winner's version (``races``);
- about 2 % of updates lose their answer: the phone hangs up as soon as the
  request is sent, as on a dropped connection (``dropped``), and sends it
  again with the same key.

A request that gets no definitive answer — a 5xx (the server sends 503 with
``Retry-After`` while its database is away), a broken connection or a
timeout — is sent again with the *same* ``Idempotency-Key`` and body until
one comes, backing off between tries (exponential with jitter, never sooner
than the server's ``Retry-After``): the first try may have been applied with
only its answer lost, and then the retry is answered by a replay of it, not
applied twice. A phone keeps retrying past the deadline for up to
``SETTLE_SECONDS``, so that every update it sent ends acknowledged or
refused (``unresolved`` counts those that did not). ``retried`` counts the
requests sent again (``retried_by`` their cause), ``recovered`` the
acknowledged updates whose first try failed (``recovered_by_replay``: those
answered by a replay, the first try having been applied).

``outage`` (``--outage-at S --outage-for S``) takes the server's database
away during the run (:mod:`benchmarks.outage`: this one database, or the
embedded PostgreSQL itself). The figures then include the acknowledged rate
before, during and after it, and the time from the database's return to the
first acknowledged update.

``conflicts`` counts the 409 ``stale_version`` answers that came as they
should, from both kinds of conflicting edit.

Then the database is asked what really happened: the ``task_events`` of the
benchmark's tasks with a phone action (accept, start, handle,
request_extension) appended since the run began. Each acknowledged update
names its event (task, action, event id). ``lost`` counts acknowledged updates
whose event is not in the table; ``duplicated`` counts stored events that no
acknowledgement names (an update applied twice, or applied without its
answer reaching the phone). ``mismatched_tasks`` counts tasks whose stored
status or version differs from what their phone last heard. Anything else
unexpected (a wrong status code, a replay that differs) is in ``errors``;
a 5xx other than 503, a 503 without ``Retry-After``, or a failure of a
request sent after the database came back is also kept in
``server_fault_samples`` (the phones retried it, but the server should not
have said it).

Set-up goes through the domain over ``engine``, which must be the database
of the server at ``url``: worker accounts bench_phone_01… (reset with a
random password, each on a different grid, off duty so that auto-dispatch
never picks them) and a pool of dispatched "[压测]" home visits per phone.
Open pool tasks left by an earlier run are walked first; nothing is
cancelled afterwards (events are append-only) and the accounts stay.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Engine, text

from accounts.actor import WORKER, Actor
from accounts.repository import save_user, set_on_duty
from api.http import IDEMPOTENCY_HEADER
from benchmarks.outage import Outage, outage_figures
from benchmarks.wire import Headers, Wire
from gis.errors import ConfigurationError, GridError
from tasks.repository import NewTask, create_task
from web.session import CSRF_HEADER, SESSION_COOKIE

if TYPE_CHECKING:
    pass

USERNAME = "bench_phone_{:02d}"
TITLE_PREFIX = "[压测]"
KIND = "home_visit"
PHONE_ACTIONS = ("accept", "start", "handle", "request_extension")
STEPS = {"dispatched": ("accept", "start", "handle"), "accepted": ("start", "handle"), "in_progress": ("handle",)}
RETRY_SHARE = 0.10
STALE_SHARE = 0.05
RACE_SHARE = 0.05
DROP_SHARE = 0.02
EXTENSION_SHARE = 0.10
UPDATES_PER_TASK = 3 + EXTENSION_SHARE
EXPECTED_RATE = 300.0  # updates/s the pool is sized for (the target); a phone out of tasks stops early and says so
POOL_MARGIN = 2.0  # the Xeon machine does ~500 updates/s: at 1.3 (390/s) its phones ran out of tasks before the end
HTTP_TIMEOUT = 30.0  # no answer by then: the answer counts as lost, and the request is sent again (same key)
RESENDS = 2  # logging in and out: after a broken connection, same request
BACKOFF_BASE = 0.1  # s: the first wait after a failed try; doubled for each further failure of the same request
BACKOFF_CAP = 5.0  # s: the longest wait of the phone's own choosing
RETRY_AFTER_CAP = 60.0  # s: a longer Retry-After is taken as this
RETRY_AFTER_SPREAD = 0.2  # up to this share more than Retry-After: phones told the same do not all return at once
SETTLE_SECONDS = 30.0  # past the deadline, a request without a definitive answer is still retried this long
PROGRESS_EVERY = 5.0
SAMPLES = 5
GRID_STRIDE = 61  # phone n gets grid n × 61 (mod the grid count): spread over the towns, never the demo's first grid

Answer = tuple[int, Headers, bytes]


class BenchmarkError(GridError):
    """The benchmark cannot run against this server (unreachable, or it uses another database)."""


@dataclass
class BenchTask:
    """One pool task as its phone knows it."""

    id: int
    status: str
    version: int
    due_at: datetime
    extension_pending: bool = False
    uncertain: bool = False  # an unexpected answer: its phone no longer knows its state


@dataclass
class Account:
    """A bench worker: his login, his grid and a point in it (where his visits are recorded)."""

    username: str
    password: str
    user_id: int
    grid_code: str
    point: tuple[float, float]


@dataclass(frozen=True)
class Failure:
    """A try that got no definitive answer: when it was sent and answered (perf_counter), and what came."""

    sent_at: float
    answered_at: float
    cause: str  # the status ("503") or "connection" (broken, refused or timed out)
    what: str


class Attempt(NamedTuple):
    """One try of a request: its answer when definitive, else why not and the server's Retry-After."""

    answer: Answer | None
    cause: str = ""
    retry_after: float | None = None


@dataclass
class Tally:
    """What one phone sent and heard."""

    requests: int = 0
    sent: int = 0
    updates: int = 0
    retries: int = 0
    replays_ok: int = 0
    stale_sent: int = 0
    races: int = 0
    conflicts: int = 0
    errors: int = 0
    dropped: int = 0
    retried: int = 0
    recovered: int = 0
    recovered_by_replay: int = 0
    unresolved: int = 0
    tasks_handled: int = 0
    extensions: int = 0
    out_of_tasks: bool = False
    retried_by: Counter[str] = field(default_factory=Counter)
    acknowledged: list[tuple[int, str, int]] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        """Count an unexpected answer and keep the first few for the report."""
        self.errors += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(what[:300])


def retry_after(headers: Headers) -> float | None:
    """The server's ``Retry-After`` in seconds (the delta-seconds form; an HTTP date is not sent by this server)."""
    value = headers.get("Retry-After")
    try:
        return min(RETRY_AFTER_CAP, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def backoff(failures: int, server_wait: float | None, rng: random.Random) -> float:
    """Seconds to wait before trying a request again after its ``failures``-th failed try.

    Exponential with "equal jitter" (half the step fixed, half random: never a burst of instant retries, and
    the phones that failed together spread out), capped at :data:`BACKOFF_CAP`; never sooner than the server's
    ``Retry-After``, plus up to a fifth of it so that phones told the same wait do not all return at once.
    """
    step = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (max(1, failures) - 1))
    wait = step / 2 + rng.uniform(0, step / 2)
    if server_wait is not None:
        wait = max(wait, server_wait * (1 + rng.uniform(0, RETRY_AFTER_SPREAD)))
    return wait


class _Http:
    """One keep-alive connection with a session cookie and its CSRF token."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"服务器地址无效 / not an http(s) URL: {url}")
        self.connection = Wire(parts.hostname, parts.port, HTTP_TIMEOUT, tls=parts.scheme == "https")
        self.url, self.base = url, parts.path.rstrip("/")
        self.cookie: str | None = None
        self.csrf: str | None = None

    def twin(self) -> _Http:
        """A second connection in the same session (the same worker on a second device)."""
        other = _Http(self.url)
        other.cookie, other.csrf = self.cookie, self.csrf
        return other

    def _headers(self, method: str, body: bytes | None, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={self.cookie}"
        if self.csrf and method != "GET":
            headers[CSRF_HEADER] = self.csrf
        if key:
            headers[IDEMPOTENCY_HEADER] = key
        return headers

    def start(self, method: str, path: str, body: bytes | None, key: str | None) -> None:
        """Send a request without waiting for its answer (see :meth:`finish`)."""
        self.connection.request(method, self.base + path, body=body, headers=self._headers(method, body, key))

    def finish(self) -> Answer:
        """Read the answer to the request :meth:`start` sent."""
        return self.connection.getresponse()

    def send(self, method: str, path: str, body: bytes | None = None) -> Answer:
        """(status, headers, body) of a request outside the timed phase (logging in and out); a broken connection
        is reopened and the request sent again."""
        for attempt in range(RESENDS + 1):
            try:
                self.start(method, path, body, None)
                return self.finish()
            except OSError:
                self.connection.close()
                if attempt == RESENDS:
                    raise
        raise AssertionError("unreachable")

    def log_in(self, username: str, password: str) -> None:
        status, headers, raw = self.send("POST", "/api/v1/session",
                                         json.dumps({"username": username, "password": password}).encode())
        if status == 429:
            raise BenchmarkError(f"登录被限流，请 15 分钟后再试 / the server throttles logins from this client: "
                                 f"{raw[:200].decode(errors='replace')}")
        if status != 201:
            raise BenchmarkError(
                f"压测账号 {username} 无法登录服务器（HTTP {status}），服务器很可能连接的是另一个数据库 / the bench "
                f"account {username} cannot log in (HTTP {status}: {raw[:200].decode(errors='replace')}); the "
                f"server probably uses another database than this command (check DATABASE_URL of both)")
        for line in headers.get_all("Set-Cookie"):
            cookie = SimpleCookie(line)
            if SESSION_COOKIE in cookie:
                self.cookie = cookie[SESSION_COOKIE].value
        self.csrf = json.loads(raw)["csrf_token"]

    def log_out(self) -> None:
        try:
            self.send("DELETE", "/api/v1/session")
        except OSError:
            pass
        self.connection.close()


@dataclass(frozen=True)
class Misbehaviour:
    """How often a phone misbehaves on purpose (shares of its updates)."""

    retry: float = RETRY_SHARE  # an acknowledged update sent again, same key and body
    stale: float = STALE_SHARE  # an update first tried with the version before the current one
    race: float = RACE_SHARE  # an update sent at once from a second device at the same version (one must lose)
    drop: float = DROP_SHARE  # an update whose answer is lost (the phone hangs up), then sent again with its key

    def check(self) -> None:
        """Refuse shares outside 0–1."""
        if not all(0 <= share <= 1 for share in (self.retry, self.stale, self.race, self.drop)):
            raise ConfigurationError("误操作比例须在 0–1 之间 / the misbehaviour shares must lie between 0 and 1")


class Phone(threading.Thread):
    """A worker's phone (and, for races, his second device): walks its tasks until the deadline."""

    def __init__(self, account: Account, client: _Http, tasks: list[BenchTask], start: threading.Barrier,
                 seed: str, misbehaviour: Misbehaviour) -> None:
        super().__init__(name=account.username, daemon=True)
        self.account, self.client, self.tasks, self.start_line = account, client, tasks, start
        self.second = client.twin()
        self.rng = random.Random(seed)
        self.misbehaviour = misbehaviour
        self.tally = Tally()
        self.deadline = math.inf
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            self.start_line.wait()
            for task in self.tasks:
                if time.perf_counter() >= self.deadline:
                    break
                self._walk(task)
            self.tally.out_of_tasks = time.perf_counter() < self.deadline
        except Exception as exc:  # noqa: BLE001 - a crashed phone is reported, not hidden
            self.tally.error(f"{type(exc).__name__}: {exc}")
        finally:
            self.finished_at = time.perf_counter()
            self.second.connection.close()
            self.client.log_out()

    def _walk(self, task: BenchTask) -> None:
        """Take ``task`` as far as ``handle``, unless the deadline comes first or an answer is unexpected."""
        for action in STEPS[task.status]:
            if not self._step(task, action):
                return
            if action == "accept" and not task.extension_pending and self.rng.random() < EXTENSION_SHARE:
                if not self._step(task, "request_extension"):
                    return
        self.tally.tasks_handled += 1

    def _payload(self, task: BenchTask, action: str) -> dict:
        lon, lat = self.account.point
        here = {"lon": round(lon + self.rng.uniform(-3e-4, 3e-4), 6),
                "lat": round(lat + self.rng.uniform(-3e-4, 3e-4), 6)}
        if action == "handle":
            return {"result": "已入户走访，居民在家，无发热、咳嗽等症状",
                    "temperature": round(self.rng.uniform(36.0, 37.2), 1), "location": here, "note": "压测手机自动反馈"}
        if action == "request_extension":
            return {"until": (task.due_at + timedelta(days=1)).isoformat(), "reason": "居民外出未归，申请延期一天"}
        if action == "start":
            return {"location": here}
        return {}

    def _body(self, task: BenchTask, action: str, version: int) -> bytes:
        payload = {"action": action, "version": version, **self._payload(task, action)}
        return json.dumps(payload, ensure_ascii=False).encode()

    def _step(self, task: BenchTask, action: str) -> bool:
        """One update, misbehaving now and then; False at the deadline or on an unexpected answer."""
        if time.perf_counter() >= self.deadline:
            return False
        path = f"/api/v1/tasks/{task.id}/transitions"
        if self.rng.random() < self.misbehaviour.stale:
            self._send_stale(task, path, action)
        body, key = self._body(task, action, task.version), uuid.uuid4().hex
        self.tally.sent += 1
        started = time.perf_counter()
        if self.rng.random() < self.misbehaviour.race:
            answer, body, key, failures = self._race(task, path, action, body, key)
        elif self.rng.random() < self.misbehaviour.drop:
            self._hang_up(path, body, key)
            answer, failures = self._deliver(self.client, path, body, key, Attempt(None, "dropped"), failures=1)
        else:
            answer, failures = self._deliver(self.client, path, body, key)
        if failures == 0:  # the server's latency, not the phone's waits between tries
            self.tally.latencies.append(time.perf_counter() - started)
        if answer is None:
            task.uncertain = True
            return False
        status, headers, raw = answer
        if status != 200:
            task.uncertain = True
            self.tally.error(f"{action} task {task.id}: HTTP {status} {raw[:200].decode(errors='replace')}")
            return False
        self._heard(task, action, raw)
        if failures:
            self.tally.recovered += 1
            self.tally.recovered_by_replay += headers.get("Idempotent-Replayed") == "true"
        if self.rng.random() < self.misbehaviour.retry:
            self._send_again(path, body, key, raw)
        return True

    def _heard(self, task: BenchTask, action: str, raw: bytes) -> None:
        answer = json.loads(raw)
        self.tally.updates += 1
        self.tally.acked_at.append(time.perf_counter())
        self.tally.acknowledged.append((task.id, action, answer["event"]["id"]))
        task.status, task.version = answer["task"]["status"], answer["task"]["version"]
        if action == "request_extension":
            task.extension_pending = True
            self.tally.extensions += 1

    # -- one try, and tries until a definitive answer ----------------------------------------------------------
    def _attempt(self, client: _Http, sent_at: float, answer: Answer | None = None,
                 broken: OSError | None = None) -> Attempt:
        """Judge one try: a definitive answer, or a failure (5xx, broken connection, timeout) noted in the tally."""
        if answer is not None and answer[0] < 500:
            return Attempt(answer)
        now = time.perf_counter()
        if answer is None:
            client.connection.close()
            failure = Failure(sent_at, now, "connection", f"{type(broken).__name__}: {broken}")
            self.tally.failures.append(failure)
            return Attempt(None, failure.cause)
        status, headers, raw = answer
        wait = retry_after(headers)
        failure = Failure(sent_at, now, str(status), f"HTTP {status} Retry-After {headers.get('Retry-After')}: "
                                                     f"{raw[:200].decode(errors='replace')}")
        self.tally.failures.append(failure)
        return Attempt(None, failure.cause, wait)

    def _try(self, client: _Http, path: str, body: bytes, key: str) -> Attempt:
        sent_at = time.perf_counter()
        self.tally.requests += 1
        try:
            client.start("POST", path, body, key)
            return self._attempt(client, sent_at, client.finish())
        except OSError as exc:
            return self._attempt(client, sent_at, broken=exc)

    def _deliver(self, client: _Http, path: str, body: bytes, key: str, last: Attempt | None = None,
                 failures: int = 0) -> tuple[Answer | None, int]:
        """Send ``body`` with ``key`` until a definitive answer comes: (that answer, failed tries before it).

        ``last``/``failures``: a try already made and failed. Between tries the phone backs off
        (:func:`backoff`); the key and body never change, so an update applied by a try whose answer was lost is
        answered by a replay, not applied again. None when no answer came by ``SETTLE_SECONDS`` past the deadline.
        """
        while True:
            if last is not None:
                if last.answer is not None:
                    return last.answer, failures
                if time.perf_counter() >= self.deadline + SETTLE_SECONDS:
                    self.tally.unresolved += 1
                    return None, failures
                time.sleep(backoff(failures, last.retry_after, self.rng))
                self.tally.retried += 1
                self.tally.retried_by[last.cause] += 1
            last = self._try(client, path, body, key)
            failures += last.answer is None

    def _hang_up(self, path: str, body: bytes, key: str) -> None:
        """Send an update and hang up before its answer (a dropped connection): the phone never hears it."""
        self.tally.requests += 1
        self.tally.dropped += 1
        try:
            self.client.start("POST", path, body, key)
        except OSError:
            pass
        self.client.connection.close()

    def _race(self, task: BenchTask, path: str, action: str, body: bytes, key: str) -> tuple:
        """Send the update from both devices at once (own keys, own readings): one must win, one hear 409.

        A device whose try fails (5xx, broken connection) tries again with its key until it hears a definitive
        answer. Returns (answer, body, key, failed tries) of the winner, as if this phone had sent it alone; the
        answer is None (the error counted) unless exactly one won and the other heard ``stale_version`` with the
        winner's version.
        """
        rival, rival_key = self._body(task, action, task.version), uuid.uuid4().hex
        sent = [(self.client, body, key), (self.second, rival, rival_key)]
        sent_at = time.perf_counter()
        started: list[OSError | None] = []
        for device, payload, its_key in sent:
            try:
                device.start("POST", path, payload, its_key)
                started.append(None)
            except OSError as exc:
                started.append(exc)
        tries = []
        for (device, _, _), broken in zip(sent, started, strict=True):
            try:
                tries.append(self._attempt(device, sent_at, broken=broken) if broken else
                             self._attempt(device, sent_at, device.finish()))
            except OSError as exc:
                tries.append(self._attempt(device, sent_at, broken=exc))
        self.tally.requests += 2
        self.tally.races += 1
        played: list[tuple[Answer, bytes, str, int]] = []
        for (device, payload, its_key), attempt in zip(sent, tries, strict=True):
            answer, failures = self._deliver(device, path, payload, its_key, attempt, int(attempt.answer is None))
            if answer is None:  # no answer by the end of the settling time: counted as unresolved
                task.uncertain = True
                return None, body, key, failures
            played.append((answer, payload, its_key, failures))
        won = [p for p in played if p[0][0] == 200]
        lost = [p for p in played if p[0][0] != 200]
        if len(won) == 1 and self._is_stale(lost[0][0], json.loads(won[0][0][2])["task"]["version"]):
            self.tally.conflicts += 1
            return won[0]
        task.uncertain = True
        self.tally.error(f"race on task {task.id}: HTTP {played[0][0][0]} and {played[1][0][0]}, expected one 200 "
                         f"and one 409 stale_version")
        return None, body, key, 0

    @staticmethod
    def _is_stale(answer: Answer, current: int) -> bool:
        status, _, raw = answer
        if status != 409:
            return False
        try:
            body = json.loads(raw)
        except ValueError:
            return False
        return body.get("error") == "stale_version" and (body.get("current") or {}).get("version") == current

    def _send_stale(self, task: BenchTask, path: str, action: str) -> None:
        answer, _ = self._deliver(self.client, path, self._body(task, action, task.version - 1), uuid.uuid4().hex)
        self.tally.stale_sent += 1
        if answer is None:
            return
        if self._is_stale(answer, task.version):
            self.tally.conflicts += 1
        else:
            self.tally.error(f"stale {action} task {task.id}: HTTP {answer[0]} "
                             f"{answer[2][:200].decode(errors='replace')}")

    def _send_again(self, path: str, body: bytes, key: str, first: bytes) -> None:
        answer, _ = self._deliver(self.client, path, body, key)
        self.tally.retries += 1
        if answer is None:
            return
        status, headers, raw = answer
        if status == 200 and headers.get("Idempotent-Replayed") == "true" and raw == first:
            self.tally.replays_ok += 1
        else:
            self.tally.error(f"replay of {key}: HTTP {status}, replayed={headers.get('Idempotent-Replayed')}, "
                             f"same body={raw == first}")


def count_events(acknowledged: Iterable[tuple[int, str, int]],
                 stored: Iterable[tuple[int, str, int]]) -> tuple[int, int]:
    """(lost, duplicated): acknowledged (task, action, event) not stored, and stored ones nobody acknowledged."""
    heard, found = Counter(acknowledged), Counter(stored)
    return sum((heard - found).values()), sum((found - heard).values())


def pool_size(phones: int, seconds: float, rate: float = EXPECTED_RATE) -> int:
    """Tasks each phone needs to stay busy for ``seconds`` if the server reached ``rate`` updates/s."""
    return math.ceil(seconds * rate / UPDATES_PER_TASK / phones * POOL_MARGIN) + 2


def prepare_accounts(engine: Engine, phones: int) -> list[Account]:
    """Create or reset bench_phone_01… (workers, off duty), each on his own grid, spread over the district."""
    with engine.begin() as conn:
        grids = conn.execute(text(
            "SELECT id, code, community_id, ST_X(ST_PointOnSurface(geom)) AS lon, "
            "ST_Y(ST_PointOnSurface(geom)) AS lat FROM grids ORDER BY code")).all()
        if len(grids) <= phones:
            raise ConfigurationError(f"网格只有 {len(grids)} 个，不够 {phones} 部手机各占一个 / only {len(grids)} "
                                     f"grids: not enough for {phones} phones, one each (run `gridctl seed nanhai`?)")
        stride = GRID_STRIDE if math.gcd(GRID_STRIDE, len(grids)) == 1 else 1
        accounts = []
        for number in range(1, phones + 1):
            grid = grids[number * stride % len(grids)]  # the same grid for the same phone, run after run
            username, password = USERNAME.format(number), secrets.token_urlsafe(12)
            user_id = save_user(conn, username, WORKER, password, f"压测手机 {number:02d}", grid.community_id,
                                [grid.id])
            set_on_duty(conn, user_id, False)
            accounts.append(Account(username, password, user_id, grid.code, (grid.lon, grid.lat)))
    return accounts


def prepare_tasks(engine: Engine, account: Account, count: int) -> tuple[list[BenchTask], int]:
    """The phone's open "[压测]" tasks (left by earlier runs first), topped up to ``count``; returns (pool, created)."""
    actor, created = Actor.system(), 0
    with engine.begin() as conn:
        pool = [BenchTask(r.id, r.status, r.version, r.due_at, r.extension_requested_until is not None)
                for r in conn.execute(text(
                    "SELECT id, status, version, due_at, extension_requested_until FROM tasks "
                    "WHERE assignee_id = :me AND status = ANY(:open) AND kind = :kind AND title LIKE :prefix "
                    "ORDER BY id LIMIT :count"),
                    {"me": account.user_id, "open": list(STEPS), "kind": KIND, "prefix": TITLE_PREFIX + "%",
                     "count": count})]
        while len(pool) < count:
            task = create_task(conn, actor, NewTask(
                kind=KIND, grid_code=account.grid_code, title=f"{TITLE_PREFIX} {account.username} 入户走访测温",
                detail="更新压测任务（gridctl bench updates），可忽略 / update benchmark task, ignore",
                point=account.point, dispatch=True, assignee_id=account.user_id), datetime.now(UTC))
            pool.append(BenchTask(task["id"], task["status"], task["version"], datetime.fromisoformat(task["due_at"])))
            created += 1
    return pool, created


def _log_in(url: str, accounts: list[Account]) -> list[_Http]:
    clients: list[_Http] = []
    try:
        for account in accounts:
            clients.append(_Http(url))
            clients[-1].log_in(account.username, account.password)
    except (OSError, BenchmarkError) as exc:
        for client in clients:
            client.connection.close()
        if isinstance(exc, BenchmarkError):
            raise
        raise BenchmarkError(f"无法连接服务器 {url}（请先运行 gridctl serve）/ cannot reach the server at {url}: "
                             f"{exc}. Start it with `gridctl serve`.") from exc
    return clients


def _stored_events(engine: Engine, task_ids: list[int], after: int) -> list[tuple[int, str, int]]:
    with engine.connect() as conn:
        return [(r.task_id, r.action, r.id) for r in conn.execute(text(
            "SELECT id, task_id, action FROM task_events WHERE task_id = ANY(:ids) AND id > :after "
            "AND action = ANY(:actions)"), {"ids": task_ids, "after": after, "actions": list(PHONE_ACTIONS)})]


def _mismatched(engine: Engine, tasks: list[BenchTask]) -> int:
    known = {t.id: (t.status, t.version) for t in tasks if not t.uncertain}
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, version FROM tasks WHERE id = ANY(:ids)"), {"ids": list(known)})
        return sum(known[r.id] != (r.status, r.version) for r in rows)


def _quantile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _totals(tallies: list[Tally]) -> dict:
    total = {name: sum(getattr(t, name) for t in tallies)
             for name in ("updates", "requests", "sent", "retries", "replays_ok", "stale_sent", "races", "conflicts",
                          "errors", "dropped", "retried", "recovered", "recovered_by_replay", "unresolved",
                          "tasks_handled", "extensions")}
    total["retried_by"] = dict(sum((t.retried_by for t in tallies), Counter()))
    total["answers_5xx"] = dict(Counter(f.cause for t in tallies for f in t.failures if f.cause != "connection"))
    total["connection_failures"] = sum(f.cause == "connection" for t in tallies for f in t.failures)
    return total


def _server_faults(tallies: list[Tally], outage: Outage | None) -> list[str]:
    """Failures the server should not have given: a 5xx other than 503, a 503 without Retry-After, any failure
    outside an outage (answered before it, or of a try sent after the database came back)."""
    cut = outage.cut_at if outage is not None else None
    back = outage.restored_at if outage is not None else None
    faults = []
    for failure in sorted((f for t in tallies for f in t.failures), key=lambda f: f.sent_at):
        in_outage = cut is not None and failure.answered_at >= cut and (back is None or failure.sent_at < back)
        if failure.cause not in ("503", "connection") or "Retry-After None" in failure.what or not in_outage:
            faults.append(failure.what)
    return faults


def updates_benchmark(engine: Engine, url: str, phones: int, seconds: float,
                      echo: Callable[[str], None] = print, seed: int = 20200202,
                      misbehaviour: Misbehaviour = Misbehaviour(), outage: Outage | None = None,
                      pool_rate: float = EXPECTED_RATE) -> dict:
    """Run ``phones`` simulated phones against the server at ``url`` for ``seconds``; return the figures.

    ``engine`` must be the server's database. ``outage``: the database taken away during the run (figures
    under ``"outage"``). ``pool_rate``: the update rate the task pool is sized for. Raises
    :class:`BenchmarkError` when the server cannot be reached or the bench accounts cannot log in to it.
    """
    if phones < 1 or not seconds > 0:
        raise ConfigurationError("--phones 须 ≥ 1，--seconds 须 > 0 / --phones must be ≥ 1 and --seconds > 0")
    if outage is not None and not (outage.at > 0 and outage.lasts > 0 and outage.at + outage.lasts < seconds):
        raise ConfigurationError("断库须在运行期间开始并结束：0 < --outage-at，0 < --outage-for，两者之和 < "
                                 "--seconds / the outage must begin and end within the run: 0 < --outage-at, "
                                 "0 < --outage-for, and their sum < --seconds")
    misbehaviour.check()
    prepared = time.perf_counter()
    echo(f"准备 {phones} 个压测账号 / resetting {phones} bench accounts ({USERNAME.format(1)}…)")
    accounts = prepare_accounts(engine, phones)
    clients = _log_in(url, accounts)
    per_phone = pool_size(phones, seconds, pool_rate)
    pools, created = [], 0
    for account in accounts:
        pool, new = prepare_tasks(engine, account, per_phone)
        pools.append(pool)
        created += new
    setup_s = time.perf_counter() - prepared
    echo(f"任务池 {per_phone * phones} 个（新建 {created}，沿用 {per_phone * phones - created}）/ pool of "
         f"{per_phone * phones} tasks ({created} created, {per_phone * phones - created} left by earlier runs); "
         f"set-up {setup_s:.1f} s")
    with engine.connect() as conn:
        after = conn.execute(text("SELECT coalesce(max(id), 0) FROM task_events")).scalar_one()

    start_line = threading.Barrier(phones + 1)
    devices = [Phone(a, c, p, start_line, f"{seed}-{i}", misbehaviour)
               for i, (a, c, p) in enumerate(zip(accounts, clients, pools, strict=True))]
    for device in devices:
        device.start()
    echo(f"{phones} 部手机运行 {seconds:g} 秒 / {phones} phones for {seconds:g} s against {url}"
         + (f"; 第 {outage.at:g} 秒断库 {outage.lasts:g} 秒 / the database away from {outage.at:g} s for "
            f"{outage.lasts:g} s ({outage.mode})" if outage else ""))
    started = time.perf_counter()
    deadline = started + seconds
    for device in devices:
        device.deadline = deadline
    start_line.wait()
    try:
        progress_at = started + PROGRESS_EVERY
        while (now := time.perf_counter()) < deadline and any(d.is_alive() for d in devices):
            wake = min(progress_at, deadline, outage.next_at(started) if outage else math.inf)
            time.sleep(max(0.0, wake - now))
            if outage is not None:
                outage.tick(started, echo)
            if time.perf_counter() >= progress_at:
                elapsed, done = time.perf_counter() - started, sum(d.tally.updates for d in devices)
                echo(f"  {elapsed:5.1f} s  {done} updates ({done / elapsed:.0f}/s)")
                progress_at += PROGRESS_EVERY
    finally:
        if outage is not None:
            outage.end()  # the database back, whatever happened
    for device in devices:
        device.join()
    wall_s = max(d.finished_at or started for d in devices) - started
    tallies = [d.tally for d in devices]

    echo("核对数据库中的事件 / counting the events in the database")
    all_tasks = [t for p in pools for t in p]
    acknowledged = [a for t in tallies for a in t.acknowledged]
    lost, duplicated = count_events(acknowledged, _stored_events(engine, [t.id for t in all_tasks], after))
    latencies = [x for t in tallies for x in t.latencies]
    total = _totals(tallies)
    out_of_tasks = sum(t.out_of_tasks for t in tallies)
    if out_of_tasks:
        echo(f"注意：{out_of_tasks} 部手机提前做完任务池 / note: {out_of_tasks} phones ran out of tasks early")
    faults = _server_faults(tallies, outage)
    result = {
        "updates_per_s": round(total["updates"] / wall_s, 1) if wall_s > 0 else 0.0,
        "requests_per_s": round(total["requests"] / wall_s, 1) if wall_s > 0 else 0.0,
        **total,
        "lost": lost, "duplicated": duplicated, "mismatched_tasks": _mismatched(engine, all_tasks),
        "update_ms_p50": round(_quantile(latencies, 0.5) * 1000, 1),
        "update_ms_p95": round(_quantile(latencies, 0.95) * 1000, 1),
        "phones": phones, "seconds": seconds, "wall_s": round(wall_s, 2), "setup_s": round(setup_s, 1),
        "tasks_created": created, "tasks_reused": per_phone * phones - created,
        "phones_out_of_tasks": out_of_tasks, "url": url,
        "error_samples": [s for t in tallies for s in t.samples][:SAMPLES],
        "server_faults": len(faults), "server_fault_samples": faults[:SAMPLES],
    }
    echo(f"更新：发送 {total['sent']}，确认 {total['updates']}，重发 {total['retried']}，失败后恢复 "
         f"{total['recovered']}（其中重放 {total['recovered_by_replay']}），丢失 {lost}，重复 {duplicated} / updates "
         f"sent {total['sent']}, acknowledged {total['updates']}, retried {total['retried']} {total['retried_by']}, "
         f"failed then recovered {total['recovered']} ({total['recovered_by_replay']} by a replay), unresolved "
         f"{total['unresolved']}, lost {lost}, duplicated {duplicated}")
    if outage is not None:
        figures = outage_figures(outage, [t for tally in tallies for t in tally.acked_at],
                                 [f for tally in tallies for f in tally.failures], started, started + wall_s)
        result["outage"] = figures
        if figures["happened"]:
            echo(f"断库 {figures['down_s']} 秒：确认速率 前 {figures['rate_before']}/s，中 {figures['rate_during']}/s，"
                 f"后 {figures['rate_after']}/s；数据库恢复后 {figures['recovery_s']} 秒首个成功 / outage of "
                 f"{figures['down_s']} s: acknowledged {figures['rate_before']}/s before, {figures['rate_during']}/s "
                 f"during, {figures['rate_after']}/s after; first success {figures['recovery_s']} s after the "
                 f"database came back ({figures['failed_after_restore']} tries sent after that failed)")
    if faults:
        echo(f"服务器异常应答 {len(faults)} 次 / the server answered wrongly {len(faults)} times, e.g. {faults[0]}")
    return result
