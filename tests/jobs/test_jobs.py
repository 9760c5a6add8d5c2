"""Background jobs on the real database: a queued feed import runs to its result, a job whose worker dies is
run again or failed with the reason (never left running), and the `gridctl jobs` commands."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import inspect, text

from gis import migrate
from gis.errors import ConfigurationError
from gridctl import main
from jobs.progress import read_progress, summary
from jobs.queue import enqueue_feed_import, enqueue_rematch
from jobs.recovery import MAX_RUNS
from jobs.worker import run_worker
from tests.matching.feedfiles import valid_id, write_csv

PROJECT = Path(__file__).resolve().parents[2]
TODAY = datetime.now().strftime("%Y-%m-%d 09:00")  # the rules' codes run from the report time: keep them current


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "jobs-test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        engine = database_factory("nanhai_jobs", copy_of=seeded_engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # a district just seeded has no statistics: auto-dispatch would crawl
        yield engine


@pytest.fixture(scope="module")
def url(engine):
    return engine.url.render_as_string(hide_password=False)


def person(serial, category, lon="113.15", lat="23.03", id_number=None, phone="13812345678"):
    return [str(serial), "张小明", id_number or valid_id(serial), phone, "", lon, lat, "WGS84", category, TODAY]


def wrong_check_digit(serial):
    return valid_id(serial)[:-1] + ("0" if valid_id(serial)[-1] != "0" else "1")


def feed(tmp_path, name, first, count=3, bad=1, warned=0):
    """A small feed: ``count`` good rows from serial ``first``, then ``warned`` rows with unparseable coordinates
    (stored without a point, with a field warning), then ``bad`` rows with a wrong ID number and no phone (nothing
    else to link them by: rejected)."""
    rows = [person(first + i, "密切接触者") for i in range(count)]
    rows += [person(first + count + i, "确诊", lon="东经") for i in range(warned)]
    serial = first + count + warned
    rows += [person(serial + i, "确诊", id_number=wrong_check_digit(serial + i), phone="") for i in range(bad)]
    return write_csv(tmp_path / name, rows)


def scalar(engine, statement, **params):
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def work(url):
    """Run the queued jobs in this process, as `gridctl jobs worker --once` does (without lowering our priority)."""
    run_worker(url, once=True, niceness=0, install_signal_handlers=False)


def assert_nothing_left_running(engine):
    assert scalar(engine, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 0
    assert scalar(engine, "SELECT count(*) FROM job_progress WHERE state = 'running'") == 0


def test_a_queued_feed_import_shows_its_stages_and_balances_its_rows(engine, url, tmp_path):
    path = feed(tmp_path, "health.csv", first=1, count=3, bad=1, warned=1)
    job_id = enqueue_feed_import(engine, path, "卫健", requested_by="test")
    queued = read_progress(engine, job_id)
    assert (queued.kind, queued.state, queued.stage, queued.queue_status) == ("feed_import", "queued", "queued", "todo")
    assert queued.params == {"file": "health.csv", "source": "卫健", "crs": "wgs84", "match": True}
    assert queued.requested_by == "test"

    work(url)
    done = read_progress(engine, job_id)
    assert (done.state, done.stage, done.queue_status, done.fraction) == ("succeeded", "done", "succeeded", 1.0)
    assert done.stages == ["reading", "storing", "matching", "sweeping"]
    assert [entry["event"] for entry in done.history] == ["queued", "started", "stage", "stage", "stage", "stage",
                                                           "succeeded"]
    assert done.attempts == 1 and done.worker.endswith(f":{os.getpid()}") and done.error is None
    assert done.started_at <= done.finished_at
    result = done.result
    assert result["rows_read"] == result["rows_stored"] + result["rows_rejected"] == 5
    assert (result["rows_stored"], result["rows_rejected"], result["rows_warned"]) == (4, 1, 1)
    assert result["rejections"] == [[7, "身份证校验位错误 / ID-card check digit wrong"]]
    assert result["field_warnings"] == [[6, "lon, lat", "坐标无法解析 / coordinates unparseable"]]
    assert "读取 5 行 = 入库 4 + 拒收 1，字段警告 1 行 / read 5 = stored 4 + rejected 1, rows with field " \
           "warnings: 1" in summary(done)
    # the confirmed case with the garbled point stays in the net: red, flagged, unplaced (no address either)
    assert result["match"]["persons"] == 4 and result["match"]["red"] == 4 and result["seconds"] >= 0
    assert result["match"]["unplaced_flags"] == 1
    assert scalar(engine, "SELECT count(*) FROM persons WHERE grid_id IS NOT NULL AND colour = 'red'") == 3
    assert scalar(engine, "SELECT count(*) FROM flags") == 4
    assert_nothing_left_running(engine)
    assert path.exists(), "a file named on the command line is the operator's: kept"


def test_an_uploaded_feed_is_deleted_once_imported_and_kept_when_its_import_fails(engine, url, tmp_path):
    """An upload holds ID numbers, names and phones in clear: once its rows are stored sealed it goes."""
    uploaded = feed(tmp_path, "upload.csv", first=31, count=2)
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00garbage\x00")
    done = enqueue_feed_import(engine, uploaded, "卫健", match=False, discard=True)
    failed = enqueue_feed_import(engine, broken, "卫健", match=False, discard=True)
    work(url)
    assert (read_progress(engine, done).state, read_progress(engine, failed).state) == ("succeeded", "failed")
    assert not uploaded.exists() and broken.exists()


def test_a_failed_import_records_its_reason_and_a_rematch_is_queued_once(engine, url, tmp_path):
    with pytest.raises(ConfigurationError, match="no such file"):
        enqueue_feed_import(engine, tmp_path / "missing.csv", "公安")
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00garbage\x00")
    broken = enqueue_feed_import(engine, garbage, "公安")
    first, second = enqueue_rematch(engine), enqueue_rematch(engine)
    assert first == second  # one re-match waiting is enough
    work(url)
    failed = read_progress(engine, broken)
    assert (failed.state, failed.queue_status) == ("failed", "failed") and failed.finished_at is not None
    assert "cannot decode the file" in failed.error and failed.history[-1]["event"] == "failed"
    rematch = read_progress(engine, first)
    assert (rematch.kind, rematch.state, rematch.stages) == ("rematch", "succeeded", ["matching", "sweeping"])
    assert rematch.result["match"]["persons"] == scalar(engine, "SELECT count(*) FROM persons") > 0
    assert_nothing_left_running(engine)


def _worker_process(url):
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "gridctl", "jobs", "worker"], cwd=PROJECT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, seconds=60.0, what="", process=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            said = (process.stderr or process.stdout).read()
            raise AssertionError(f"the process ended ({process.returncode}): {said}")
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds} s for {what}")


def test_a_job_whose_worker_is_killed_mid_run_is_run_again_by_the_next_worker(engine, url, tmp_path):
    path = feed(tmp_path, "police.csv", first=21, count=2, bad=1)
    job_id = enqueue_feed_import(engine, path, "公安")
    worker = _worker_process(url)
    try:
        with engine.connect() as blocker:
            # the import reads its file, then waits for this lock: it is mid-run when its worker is killed
            blocker.execute(text("LOCK TABLE feed_files IN ACCESS EXCLUSIVE MODE"))
            _wait_for(lambda: (view := read_progress(engine, job_id)).stage == "reading" and
                      view.queue_status == "doing", what="the import to start", process=worker)
            # the worker lowered its own priority below ours, so that pages come first
            assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            blocker.rollback()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    cut = read_progress(engine, job_id)
    assert (cut.state, cut.queue_status, cut.worker) == ("running", "doing", f"{os.uname().nodename}:{worker.pid}")

    work(url)  # a new worker starts: it finds the dead process's job at once, and runs it again
    again = read_progress(engine, job_id)
    assert (again.state, again.queue_status, again.attempts) == ("succeeded", "succeeded", 2)
    interruption = next(entry for entry in again.history if entry["event"] == "interrupted")
    assert interruption["retried"] and f"{worker.pid} is gone" in interruption["reason"]
    assert "run 1 cut short: queued again" in interruption["reason"]
    assert again.stages == ["reading", "reading", "storing", "matching", "sweeping"]
    assert again.result["rows_read"] == again.result["rows_stored"] + again.result["rows_rejected"] == 3
    assert not again.result["already_imported"]  # the killed run stored nothing: its transaction never ended
    assert_nothing_left_running(engine)


@pytest.mark.parametrize(("earlier_runs", "state"), [(0, "succeeded"), (MAX_RUNS - 1, "failed")])
def test_a_job_of_a_worker_without_heartbeat_is_retried_or_failed_with_the_reason(engine, url, tmp_path,
                                                                                   earlier_runs, state):
    """A worker on another machine that stopped sending heartbeats: its job is run again, or, cut short
    MAX_RUNS times, failed with the reason."""
    path = feed(tmp_path, f"tel{earlier_runs}.csv", first=41 + 10 * earlier_runs, count=1, bad=0)
    job_id = enqueue_feed_import(engine, path, "通信")
    with engine.begin() as conn:
        silent = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                   "VALUES (now() - interval '1 hour') RETURNING id")).scalar_one()
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w, attempts = :n "
                          "WHERE id = :id"), {"w": silent, "n": earlier_runs, "id": job_id})
        conn.execute(text("UPDATE job_progress SET state = 'running', stage = 'storing', worker = 'elsewhere:1' "
                          "WHERE job_id = :id"), {"id": job_id})
    work(url)
    view = read_progress(engine, job_id)
    assert (view.state, view.queue_status) == (state, state)
    interruption = next(entry for entry in view.history if entry["event"] == "interrupted")
    assert "no heartbeat for 30 s" in interruption["reason"]
    if state == "failed":
        assert not interruption["retried"] and view.error == interruption["reason"] == view.message
        assert f"cut short {MAX_RUNS} times: not run again" in view.error and view.finished_at is not None
    else:
        assert interruption["retried"] and view.result["rows_stored"] == 1 and view.error is None
    assert scalar(engine, "SELECT count(*) FROM procrastinate_workers WHERE id = :w", w=silent) == 0
    assert_nothing_left_running(engine)


def test_the_gridctl_jobs_commands(engine, url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    path = feed(tmp_path, "cli.csv", first=81, count=2, bad=1)
    queued = run("jobs", "import", "--source", "社区", str(path))
    assert queued.exit_code == 0 and "queued as job" in queued.output
    job_id = int(queued.output.split("queued as job ")[1].split()[0])
    listed = run("jobs", "list")
    assert listed.exit_code == 0 and f"{job_id}" in listed.output.splitlines()[0] and "queued" in listed.output

    worked = run("jobs", "worker", "--once", "--niceness", "0")
    assert worked.exit_code == 0, worked.output
    shown = run("jobs", "show", str(job_id))
    assert shown.exit_code == 0
    assert "state: succeeded" in shown.output and "read 3 = stored 2 + rejected 1" in shown.output
    assert "source=社区" in shown.output and "history:" in shown.output
    as_json = json.loads(run("jobs", "show", str(job_id), "--json").output)
    assert as_json["job_id"] == job_id and as_json["result"]["rows_read"] == 3 and as_json["stage"] == "done"
    assert job_id in [job["job_id"] for job in json.loads(run("jobs", "list", "--json").output)]
    assert "read 3 = stored 2 + rejected 1" in run("jobs", "list").output

    missing = run("jobs", "show", "987654321")
    assert missing.exit_code == 1 and "no job 987654321" in missing.output
    refused = run("jobs", "import", "--source", "社区", str(tmp_path / "nope.csv"))
    assert refused.exit_code == 1 and "no such file" in refused.output


def test_0008_adds_and_removes_procrastinate_and_job_progress(database_factory):
    engine = database_factory("nanhai_jobs_migration", upgrade=False)
    migrate.upgrade(engine, "0008")
    assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_events", "procrastinate_periodic_defers",
            "job_progress"} <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "0007")
    assert migrate.current_revision(engine) == "0007"
    tables = inspect(engine).get_table_names()
    assert "job_progress" not in tables and not [table for table in tables if table.startswith("procrastinate")]
    objects = ("SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%'",
               "SELECT count(*) FROM pg_type WHERE typname LIKE 'procrastinate%'")
    assert [scalar(engine, statement) for statement in objects] == [0, 0]
    migrate.upgrade(engine, "0008")  # and back again: nothing was left behind to collide with
    assert scalar(engine, "SELECT count(*) FROM pg_proc WHERE proname = 'procrastinate_fetch_job_v2'") == 1


def test_gridctl_serve_runs_the_job_worker_in_a_process_of_its_own_at_low_priority(engine):
    from tests.api.test_serving import _children, _free_port, _launch, _running

    job_id = enqueue_rematch(engine, requested_by="test")
    server = _launch(engine, _free_port(), "--workers", "1")
    try:
        _wait_for(lambda: read_progress(engine, job_id).state == "succeeded", what="the server's job worker",
                  process=server)
        pid = int(read_progress(engine, job_id).worker.rsplit(":", 1)[1])
        assert pid in _children(server.pid) and pid != server.pid
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(os.getpriority(os.PRIO_PROCESS, server.pid) + 10, 19)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert not _running([pid])
    assert_nothing_left_running(engine)


def test_an_interrupted_job_is_recorded_under_its_own_kind():
    from jobs.queue import ALERTS, FEED_IMPORT, FEED_WITHDRAW, PURGE, REMATCH
    from jobs.recovery import _kind

    assert [_kind(name) for name in (FEED_IMPORT, REMATCH, FEED_WITHDRAW, PURGE)] == [
        "feed_import", "rematch", "feed_withdraw", "purge"]
    assert _kind(ALERTS) is None  # keeps no progress: retried, and no feed-import row is made up for it
