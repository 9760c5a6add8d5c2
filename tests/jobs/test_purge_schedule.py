"""The nightly retention purge: scheduled with procrastinate's periodic tasks at 03:30 Beijing time, deferred once
per night however many workers defer it, run by the worker with the days in force, recorded like any job."""

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from procrastinate import SyncPsycopgConnector
from procrastinate.periodic import PeriodicDeferrer
from sqlalchemy import text

from gis import migrate
from jobs.progress import read_progress
from jobs.worker import run_worker
from matching.pipeline import import_feed, run_match
from tests.matching.feedfiles import valid_id, write_csv

BEIJING = ZoneInfo("Asia/Shanghai")


def scalar(engine, statement, **params):
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def the_purge(app):
    from jobs.queue import PURGE

    found = [task for (name, _id), task in app.periodic_registry.periodic_tasks.items() if name == PURGE]
    assert len(found) == 1
    return found[0]


def test_the_purge_is_scheduled_every_night_at_0330_beijing_time():
    from jobs.queue import make_app

    scheduled = the_purge(make_app(SyncPsycopgConnector()))
    ticks = []
    moment = datetime(2026, 12, 31, 12, 0, tzinfo=UTC).timestamp()
    for _ in range(3):
        moment = scheduled.croniter.get_next(ret_type=float, start_time=moment)
        ticks.append(datetime.fromtimestamp(moment, BEIJING))
    assert [(t.month, t.day, t.hour, t.minute) for t in ticks] == [(1, 1, 3, 30), (1, 2, 3, 30), (1, 3, 3, 30)]
    assert scheduled.task.lock == "matching"  # never beside an import, a match or a withdrawal


def test_a_worker_that_does_not_wait_defers_nothing_on_its_own():
    from jobs.queue import make_app

    assert make_app(SyncPsycopgConnector(), periodic=False).periodic_registry.periodic_tasks == {}


@pytest.fixture
def engine(database_factory, seeded_engine, monkeypatch):
    monkeypatch.setenv("NANHAI_PERSON_KEY_SECRET", "purge-schedule-secret")
    monkeypatch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("NANHAI_RETENTION_DAYS", "30")
    return database_factory("nanhai_purge_schedule", copy_of=seeded_engine)


def test_the_scheduled_purge_runs_once_in_the_worker_with_the_days_in_force(engine, tmp_path):
    from jobs.queue import worker_app

    url = engine.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    rows = [[str(i + 1), "陈八方", valid_id(700 + i), "", "", "113.15", "23.03", "WGS84", "一般人员",
             (now - timedelta(days=days)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")]
            for i, days in enumerate((31, 29))]
    import_feed(engine, write_csv(tmp_path / "old.csv", rows), "公安")
    run_match(engine)
    app = worker_app(url)
    scheduled = the_purge(app)
    tick = int(scheduled.croniter.get_prev(ret_type=float, start_time=now.timestamp()))

    async def defer_twice():  # two workers deferring the same night's run
        async with app.open_async():
            for _ in range(2):
                await PeriodicDeferrer(app.periodic_registry).defer_jobs([(scheduled, tick)])

    asyncio.run(defer_twice())
    assert scalar(engine, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'nanhai.purge'") == 1
    run_worker(url, once=True, niceness=0, install_signal_handlers=False)
    job_id = scalar(engine, "SELECT id FROM procrastinate_jobs WHERE task_name = 'nanhai.purge'")
    done = read_progress(engine, job_id)
    assert (done.kind, done.state, done.queue_status) == ("purge", "succeeded", "succeeded")
    assert done.params == {"days": 30, "scheduled_for": datetime.fromtimestamp(tick, UTC).isoformat()}
    assert done.result["days"] == 30 and done.result["people"] == 1 and done.result["removed"]["persons"] == 1
    assert scalar(engine, "SELECT count(*) FROM persons") == 1  # the record 29 days old keeps its person
    assert scalar(engine, "SELECT username FROM audit_log WHERE action = 'retention.purge'") == "system"


def test_0015_lets_job_progress_record_a_purge_and_takes_it_back(database_factory):
    engine = database_factory("nanhai_0015", upgrade=False)
    migrate.upgrade(engine, "0015")
    insert = "INSERT INTO job_progress (job_id, kind) VALUES (1, 'purge')"
    with engine.begin() as conn:
        conn.execute(text(insert))
    migrate.downgrade(engine, "0014")
    assert scalar(engine, "SELECT count(*) FROM job_progress") == 0
    with pytest.raises(Exception, match="job_progress_kind_known"), engine.begin() as conn:
        conn.execute(text(insert))
    migrate.upgrade(engine, "0015")
