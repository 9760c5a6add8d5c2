"""/healthz and /metrics on a real database: what they report, who may read them, and that they name routes,
never concrete paths or personal data."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from accounts.actor import ADMIN, COMMANDER
from accounts.repository import save_user
from api import register_api
from gis.runtime import RUN_DIR_VARIABLE, beat
from tests.api.test_serving import _free_port
from web.context import configure
from web.health import install

PASSWORD = "桂城网格巡查 2026 监控"


def _app(engine) -> Flask:
    server = Flask(__name__)
    configure(server, engine)
    install(server)
    register_api(server)
    return server


@pytest.fixture(scope="module")
def engine(database_factory):
    engine = database_factory("nanhai_health")
    with engine.begin() as conn:
        save_user(conn, "health_admin", ADMIN, PASSWORD, "管理员")
        save_user(conn, "health_commander", COMMANDER, PASSWORD, "指挥员")
    return engine


@pytest.fixture()
def app(engine, monkeypatch):
    monkeypatch.delenv(RUN_DIR_VARIABLE, raising=False)
    return _app(engine)


def _from(address: str) -> dict:
    return {"REMOTE_ADDR": address}


def test_health_outside_gridctl_serve(app):
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    report = answer.get_json()
    assert report["database"]["state"] == "up" and report["database"]["latency_ms"] > 0
    assert report["sweeper"] == {"state": "unknown", "heartbeat_age_s": None, "note": report["sweeper"]["note"]}
    assert report["job_worker"]["state"] == "down" and report["job_worker"]["workers"] == 0  # tables, no worker
    assert report["status"] == "degraded"


def test_heartbeats_make_the_background_processes_up_or_down(app, engine, monkeypatch, tmp_path):
    monkeypatch.setenv(RUN_DIR_VARIABLE, str(tmp_path))
    client = app.test_client()
    assert client.get("/healthz").get_json()["sweeper"] == {"state": "down", "heartbeat_age_s": None}
    beat("sweeper", time.time() - 10)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '5 seconds')"))
    try:
        report = client.get("/healthz").get_json()
        assert report["sweeper"]["state"] == "up" and 9 <= report["sweeper"]["heartbeat_age_s"] <= 20
        assert report["job_worker"]["state"] == "up" and 4 <= report["job_worker"]["heartbeat_age_s"] <= 20
        assert report["job_worker"]["workers"] == 1 and report["status"] == "ok"
        beat("sweeper", time.time() - 400)  # more than two rounds missed
        with engine.begin() as conn:
            conn.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '2 minutes'"))
        report = client.get("/healthz").get_json()
        assert report["sweeper"]["state"] == report["job_worker"]["state"] == "down"
        assert report["status"] == "degraded" and client.get("/healthz").status_code == 200
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM procrastinate_workers"))


def test_no_database_is_503_and_says_why():
    dead = create_engine(f"postgresql+psycopg://nobody:x@127.0.0.1:{_free_port()}/nanhai")
    answer = _app(dead).test_client().get("/healthz")
    report = answer.get_json()
    assert answer.status_code == 503 and report["status"] == "down"
    assert report["database"]["state"] == "down" and "OperationalError" in report["database"]["error"]
    assert report["job_worker"]["state"] == "unknown"
    metrics = _app(dead).test_client().get("/metrics").get_data(as_text=True)
    assert "nanhai_database_up 0.0" in metrics


def _log_in(client, username: str, address: str) -> None:
    answer = client.post("/api/v1/session", json={"username": username, "password": PASSWORD},
                         environ_base=_from(address))
    assert answer.status_code == 201, answer.get_json()


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_only_this_host_or_an_administrator_may_read(app, path):
    client = app.test_client()
    assert client.get(path, environ_base=_from("127.0.0.1")).status_code == 200
    assert client.get(path, environ_base=_from("::1")).status_code == 200
    refused = client.get(path, environ_base=_from("192.0.2.10"))
    assert refused.status_code == 403 and "administrator" in refused.get_json()["message"]
    # relayed by a proxy on this host (api.serving marks such requests): not local
    assert client.get(path, environ_base={**_from("127.0.0.1"), "nanhai.proxied": True}).status_code == 403
    _log_in(client, "health_commander", "192.0.2.10")
    assert client.get(path, environ_base=_from("192.0.2.10")).status_code == 403
    admin = app.test_client()
    _log_in(admin, "health_admin", "192.0.2.11")
    assert admin.get(path, environ_base=_from("192.0.2.11")).status_code == 200


def _samples(body: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_metrics_count_requests_by_route_and_read_feeds_and_jobs(app, engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, "
                          "default_crs, imported_at) VALUES ('卫健局', 'a.csv', repeat('a', 64), 0, 0, 0, 'wgs84', "
                          "'2026-02-01T08:00:00+08:00'), ('卫健局', 'b.csv', repeat('b', 64), 0, 0, 0, 'wgs84', "
                          "'2026-02-02T08:00:00+08:00')"))
        conn.execute(text("INSERT INTO job_progress (job_id, kind, state, stage, started_at, finished_at) VALUES "
                          "(1, 'feed_import', 'succeeded', 'done', now() - interval '42 seconds', now())"))
        conn.execute(text("INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('default', 'x'), "
                          "('default', 'y')"))
    client = app.test_client()
    before = _samples(client.get("/metrics").get_data(as_text=True))
    for task in (101, 202, 303):
        assert client.get(f"/api/v1/tasks/{task}").status_code == 401
    answer = client.get("/metrics")
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    body = answer.get_data(as_text=True)
    after = _samples(body)
    route = ("nanhai_http_requests_total", (("endpoint", "/api/v1/tasks/<int:task_id>"), ("method", "GET"),
                                            ("status", "401")))
    assert after[route] - before.get(route, 0) == 3
    timed = ("nanhai_http_request_duration_seconds_count", route[1])
    assert after[timed] - before.get(timed, 0) == 3
    assert not any(f"/api/v1/tasks/{task}" in body for task in (101, 202, 303))  # routes, never concrete paths
    assert after[("nanhai_feed_last_import_timestamp_seconds", (("source", "卫健局"),))] == 1769990400.0
    assert after[("nanhai_job_queue_depth", ())] == 2 and after[("nanhai_jobs_running", ())] == 0
    jobs = (("kind", "feed_import"), ("state", "succeeded"))
    assert after[("nanhai_job_duration_seconds_bucket", (*jobs[:1], ("le", "30.0"), *jobs[1:]))] == 0
    assert after[("nanhai_job_duration_seconds_bucket", (*jobs[:1], ("le", "60.0"), *jobs[1:]))] == 1
    assert 42 <= after[("nanhai_job_duration_seconds_sum", jobs)] < 43
    assert after[("nanhai_database_up", ())] == 1 and after[("nanhai_app_starts_total", ())] >= 1
