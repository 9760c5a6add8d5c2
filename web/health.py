"""``/healthz`` and ``/metrics``: is the server well, and its figures for Prometheus.

``GET /healthz`` answers JSON: the database (up or down, and how long a ``SELECT 1`` took through the app's
pool), the task sweeper and the job worker (up, down or unknown, with the age of their last heartbeat), and
an overall ``status``: ``ok``, ``degraded`` (the database answers, a background process does not) or ``down``
(no database: status 503, so that a load balancer takes the server out).

- The sweeper runs beside the workers (``gridctl serve``, :mod:`tasks.sweep`) and records a heartbeat in the
  server's run folder after each round that went through (:mod:`gis.runtime`); it rounds every 60 s, so it is
  up while its last heartbeat is under :data:`SWEEPER_UP_SECONDS` old. Outside ``gridctl serve`` it is unknown.
- The job worker's heartbeats are procrastinate's own, in ``procrastinate_workers.last_heartbeat`` (every
  10 s by default; the jobs package, migration 0008): up while the newest is under
  :data:`JOB_WORKER_UP_SECONDS` old, down when none is that fresh (no worker runs), unknown on a database
  without that table.

``GET /metrics`` is Prometheus's text format: requests by endpoint (the route, never the concrete path),
method and status, with their latency (a histogram); apps started (one per worker process: more than the
workers once one was replaced); and, read from the database at each scrape, the time of the last feed per
source (``feed_files``), the job queue's depth and the jobs running (``procrastinate_jobs``), the durations of
finished jobs by kind and state (``job_progress``), the heartbeats' ages and the database's state. Under
``gridctl serve`` the workers' figures are added up through prometheus-client's multiprocess mode (the run
folder's ``metrics/``, see :mod:`api.serving`).

Neither shows personal data (routes, sources' names, counts, times). Who may read them: a request made
directly from this machine (a loopback address, and no ``X-Forwarded-For``: a request relayed by a proxy is
never local, whatever the proxy's address) — Prometheus and a monitoring agent on the server itself — or an
administrator logged in. Anyone else gets 403. deploy/nginx.conf.example also refuses both paths from outside.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, text

from accounts.actor import ADMIN
from gis.db import reading
from gis.runtime import METRICS_VARIABLE, last_beat, run_dir
from web.context import engine
from web.session import page_actor

SWEEPER_UP_SECONDS = 150.0  # the sweeper rounds every 60 s: two rounds missed and it is down
JOB_WORKER_UP_SECONDS = 30.0  # procrastinate's workers beat every 10 s; jobs.recovery counts one dead after 30 s
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# api.serving sets it on a request that came with an X-Forwarded-For (web may not import api: same name there)
PROXIED_KEY = "nanhai.proxied"

REQUESTS = Counter("nanhai_http_requests", "HTTP requests answered, by route, method and status",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("nanhai_http_request_duration_seconds", "Time to answer an HTTP request, by route, method and "
                    "status", ["endpoint", "method", "status"])
APP_STARTS = Counter("nanhai_app_starts", "Apps built: one per worker process started (more than the workers "
                     "once a dead one was replaced)")

health = Blueprint("health", __name__)


# -- what is measured --------------------------------------------------------------------------------------------
@dataclass
class DatabaseReading:
    """The database's answer to one check: reachable or not, how fast, and the job worker's heartbeat there."""

    up: bool
    latency: float | None = None
    error: str | None = None
    job_tables: bool = False  # procrastinate's tables exist (migration 0008)
    job_heartbeat_age: float | None = None  # seconds since the newest worker heartbeat; None: no worker row
    job_workers: int = 0
    # for /metrics only (with_figures): the newest import per feed source, the jobs queued and running (None: no
    # job tables), and the durations of finished jobs per (kind, state)
    feeds: list[tuple[str, float]] = field(default_factory=list)
    queued: int | None = None
    running: int | None = None
    durations: list[JobDurations] = field(default_factory=list)


@dataclass
class JobDurations:
    """Finished jobs of one kind and end state: how many took at most each of JOB_DURATION_BUCKETS, in all, and
    the seconds they took together."""

    kind: str
    state: str
    at_most: list[int]
    count: int
    seconds: float


def read_database(db: Engine, with_figures: bool = False) -> DatabaseReading:
    """Time ``SELECT 1`` on a connection of the app's pool; read the job worker's heartbeat (and, for
    ``/metrics``, the feeds' and jobs' figures) in the same read-only transaction."""
    started = time.perf_counter()
    try:
        with reading(db) as conn:
            conn.execute(text("SELECT 1"))
            latency = time.perf_counter() - started
            jobs, workers, progress = conn.execute(text(
                "SELECT to_regclass('procrastinate_jobs') IS NOT NULL, to_regclass('procrastinate_workers') "
                "IS NOT NULL, to_regclass('job_progress') IS NOT NULL")).one()
            found = DatabaseReading(up=True, latency=latency, job_tables=bool(workers))
            if workers:
                count, age = conn.execute(text(
                    "SELECT count(*), extract(epoch FROM clock_timestamp() - max(last_heartbeat)) "
                    "FROM procrastinate_workers")).one()
                found.job_workers, found.job_heartbeat_age = int(count), None if age is None else float(age)
            if with_figures:
                found.feeds = [(source, float(at)) for source, at in conn.execute(text(
                    "SELECT source, extract(epoch FROM max(imported_at)) FROM feed_files GROUP BY source "
                    "ORDER BY source"))]
                if jobs:
                    found.queued, found.running = conn.execute(text(
                        "SELECT count(*) FILTER (WHERE status = 'todo'), count(*) FILTER (WHERE status = 'doing') "
                        "FROM procrastinate_jobs")).one()
                if progress:
                    found.durations = _job_durations(conn)
            return found
    except Exception as exc:  # noqa: BLE001 - whatever stops the database answering is "down", and said
        return DatabaseReading(up=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def _job_durations(conn: Connection) -> list[JobDurations]:
    """The finished jobs' durations (``job_progress``: started to finished) per kind and end state."""
    buckets = ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in JOB_DURATION_BUCKETS)
    rows = conn.execute(text(
        f"SELECT kind, state, count(*), coalesce(sum(d), 0), {buckets} FROM (SELECT kind, state, "
        "extract(epoch FROM finished_at - started_at)::float8 AS d FROM job_progress WHERE finished_at IS NOT NULL "
        "AND started_at IS NOT NULL) finished GROUP BY kind, state ORDER BY kind, state")).all()
    return [JobDurations(kind, state, [int(n) for n in at_most], int(count), float(seconds))
            for kind, state, count, seconds, *at_most in rows]


def component(age: float | None, known: bool, up_within: float) -> dict[str, object]:
    """A background process's state from the age of its last heartbeat."""
    if not known:
        return {"state": "unknown", "heartbeat_age_s": None}
    state = "up" if age is not None and age <= up_within else "down"
    return {"state": state, "heartbeat_age_s": None if age is None else round(age, 1)}


def sweeper_age() -> float | None:
    beat = last_beat("sweeper")
    return None if beat is None else max(time.time() - beat, 0.0)


def health_report(db: Engine) -> tuple[dict[str, object], int]:
    """The ``/healthz`` document and its HTTP status."""
    found = read_database(db)
    database: dict[str, object] = {"state": "up" if found.up else "down",
                                   "latency_ms": None if found.latency is None else round(found.latency * 1000, 2)}
    if found.error:
        database["error"] = found.error
    sweeper = component(sweeper_age(), run_dir() is not None, SWEEPER_UP_SECONDS)
    if run_dir() is None:
        sweeper["note"] = "不在 gridctl serve 下运行 / not running under gridctl serve: no sweeper beside it"
    job_worker = component(found.job_heartbeat_age, found.up and found.job_tables, JOB_WORKER_UP_SECONDS)
    job_worker["workers"] = found.job_workers
    if found.up and not found.job_tables:
        job_worker["note"] = "数据库中没有作业表 / no job tables (procrastinate_workers) in this database"
    if not found.up:
        status = "down"
    elif "down" in (sweeper["state"], job_worker["state"]):
        status = "degraded"
    else:
        status = "ok"
    report: dict[str, object] = {"status": status, "database": database, "sweeper": sweeper,
                                 "job_worker": job_worker,
                                 "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return report, 200 if found.up else 503


# -- Prometheus ------------------------------------------------------------------------------------------------------
class _ThisProcess(Collector):
    """The metrics this process counted itself (outside ``gridctl serve``: tests, a development server)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class DatabaseFigures(Collector):
    """What ``/metrics`` reads from the database and the run folder at each scrape."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        found = read_database(self.db, with_figures=True)
        up = GaugeMetricFamily("nanhai_database_up", "Whether the database answered SELECT 1 (1) or not (0)")
        up.add_metric([], 1.0 if found.up else 0.0)
        yield up
        if found.latency is not None:
            latency = GaugeMetricFamily("nanhai_database_latency_seconds", "Time of SELECT 1 through the app's pool")
            latency.add_metric([], found.latency)
            yield latency
        ages = GaugeMetricFamily("nanhai_heartbeat_age_seconds", "Seconds since a background process's last "
                                 "heartbeat (absent: unknown, or it never beat)", labels=["component"])
        sweeper = sweeper_age()
        if sweeper is not None:
            ages.add_metric(["sweeper"], sweeper)
        if found.job_heartbeat_age is not None:
            ages.add_metric(["job_worker"], found.job_heartbeat_age)
        yield ages
        feeds = GaugeMetricFamily("nanhai_feed_last_import_timestamp_seconds", "When the last feed file of each "
                                  "source was imported (seconds since the epoch)", labels=["source"])
        for source, at in found.feeds:
            feeds.add_metric([source], at)
        yield feeds
        if found.queued is not None and found.running is not None:
            queued = GaugeMetricFamily("nanhai_job_queue_depth", "Jobs waiting in the queue (procrastinate: todo)")
            queued.add_metric([], found.queued)
            running = GaugeMetricFamily("nanhai_jobs_running", "Jobs a worker is running (procrastinate: doing)")
            running.add_metric([], found.running)
            yield from (queued, running)
        if found.up:
            durations = HistogramMetricFamily("nanhai_job_duration_seconds", "Durations of finished jobs (started "
                                              "to finished), by kind and end state", labels=["kind", "state"])
            for jobs in found.durations:
                buckets = [(str(bound), float(n)) for bound, n in zip(JOB_DURATION_BUCKETS, jobs.at_most, strict=True)]
                durations.add_metric([jobs.kind, jobs.state], [*buckets, ("+Inf", float(jobs.count))], jobs.seconds)
            yield durations


def metrics_text(db: Engine) -> bytes:
    """Every metric in Prometheus's text format: all the server's processes (or this one), and the database's."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(METRICS_VARIABLE):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseFigures(db))
    return generate_latest(registry)


# -- the endpoints -------------------------------------------------------------------------------------------------
def local_request() -> bool:
    """Made from this machine and not relayed by a proxy."""
    if request.environ.get(PROXIED_KEY):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _refused() -> Response | None:
    """None when this request may read the health and the metrics; else the 403 to answer."""
    if local_request() or page_actor(engine(), roles=(ADMIN,)) is not None:
        return None
    answer = jsonify(error="forbidden", message="仅限本机或管理员访问 / only from this machine or for an administrator")
    answer.status_code = 403
    return answer


@health.get("/healthz")
def healthz() -> Response:
    refused = _refused()
    if refused is not None:
        return refused
    report, status = health_report(engine())
    answer = jsonify(report)
    answer.status_code = status
    answer.headers["Cache-Control"] = "no-store"
    return answer


@health.get("/metrics")
def metrics() -> Response:
    refused = _refused()
    if refused is not None:
        return refused
    return Response(metrics_text(engine()), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _started() -> None:
    g.nanhai_started = time.perf_counter()


def _counted(response: Response) -> Response:
    started = g.pop("nanhai_started", None)
    rule = request.url_rule
    labels = (rule.rule if rule is not None else "unmatched", request.method, str(response.status_code))
    REQUESTS.labels(*labels).inc()
    if started is not None:
        LATENCY.labels(*labels).observe(time.perf_counter() - started)
    return response


def install(server: Flask) -> None:
    """Serve ``/healthz`` and ``/metrics`` on ``server`` and count its requests (call it once per app)."""
    server.register_blueprint(health)
    server.before_request(_started)
    server.after_request(_counted)
    APP_STARTS.inc()
