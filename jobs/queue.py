"""The procrastinate app of a database, our tasks on it, and the functions that put jobs in the queue.

A job is deferred in the caller's own transaction, together with its ``job_progress`` row: both are there, or
neither. Feed imports and re-matches share one procrastinate lock, so they run one at a time, in the order
they were queued, however many workers there are. Every night at 03:30 Beijing time the workers defer the
retention purge (:func:`jobs.tasks.purge`, procrastinate's periodic tasks): once, however many workers there are.
When group-chat robots are configured (``NANHAI_ALERT_WEBHOOK``, :mod:`jobs.webhook`), they also defer the alerts'
delivery every minute (:func:`jobs.tasks.deliver_alerts`), beside the other jobs rather than behind their lock.
Home observation (:mod:`observation`) has two periodic jobs of its own, one at a time under their own lock: the
day's checks at 00:05 Beijing time (also deferred when a worker starts, so a day the workers were down still gets
them) and the missed-check sweep every 5 minutes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from gis.db import driver_connection, sql
from gis.errors import ConfigurationError
from jobs import progress, tasks, webhook

log = logging.getLogger(__name__)

QUEUE = "nanhai"
FEED_IMPORT = "nanhai.feed_import"
REMATCH = "nanhai.rematch"
FEED_WITHDRAW = "nanhai.feed_withdraw"
PURGE = "nanhai.purge"
PURGE_CRON = "30 19 * * *"  # 03:30 Beijing time (UTC+8, no summer time): procrastinate reads cron in UTC
ALERTS = "nanhai.alerts"
ALERTS_CRON = "* * * * *"  # every minute: a new tip-off reaches the group chat within a minute or so
ALERTS_LOCK = "alerts"  # one delivery at a time, never behind an import (MATCHING_LOCK)
OBSERVATION_DAY = "nanhai.observation_day"
OBSERVATION_DAY_CRON = "5 16 * * *"  # 00:05 Beijing time: the new day's checks
OBSERVATION_SWEEP = "nanhai.observation_sweep"
OBSERVATION_SWEEP_CRON = "*/5 * * * *"  # a check is missed at most 5 minutes after its grace runs out
OBSERVATION_LOCK = "observation"  # the day's checks and the sweep, one at a time (never two visits for one miss)
MATCHING_LOCK = "matching"  # held by every job that writes persons: never two at a time
REMATCH_QUEUEING_LOCK = "rematch"  # at most one re-match waiting: a second request joins it
CRS_CHOICES = ("wgs84", "gcj02", "bd09", "cgcs2000")


def conninfo(url: str) -> str:
    """The libpq connection string (``postgresql://…``) of the SQLAlchemy URL ``url``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(connector: procrastinate.BaseConnector, periodic: bool = True) -> procrastinate.App:
    """A procrastinate app with our tasks, on ``connector``; with ``periodic``, its workers also defer the
    nightly purge and, when robots are configured (``NANHAI_ALERT_WEBHOOK``, read now: a worker started before
    it was set must be restarted), the alerts' delivery every minute (a worker run only until the queue is empty
    has no need to)."""
    app = procrastinate.App(connector=connector)
    app.task(name=FEED_IMPORT, pass_context=True, queue=QUEUE, lock=MATCHING_LOCK)(tasks.feed_import)
    app.task(name=REMATCH, pass_context=True, queue=QUEUE, lock=MATCHING_LOCK,
             queueing_lock=REMATCH_QUEUEING_LOCK)(tasks.rematch)
    app.task(name=FEED_WITHDRAW, pass_context=True, queue=QUEUE, lock=MATCHING_LOCK)(tasks.feed_withdraw)
    purge = app.task(name=PURGE, pass_context=True, queue=QUEUE, lock=MATCHING_LOCK)(tasks.purge)
    # queueing_lock: a run still waiting when the next minute comes is enough (the deferrer skips the new one)
    alerts = app.task(name=ALERTS, pass_context=True, queue=QUEUE, lock=ALERTS_LOCK,
                      queueing_lock=ALERTS_LOCK)(tasks.deliver_alerts)
    observation_day = app.task(name=OBSERVATION_DAY, pass_context=True, queue=QUEUE, lock=OBSERVATION_LOCK,
                               queueing_lock=OBSERVATION_DAY)(tasks.observation_day)
    observation_sweep = app.task(name=OBSERVATION_SWEEP, pass_context=True, queue=QUEUE, lock=OBSERVATION_LOCK,
                                 queueing_lock=OBSERVATION_SWEEP)(tasks.observation_sweep)
    if periodic:
        app.periodic(cron=PURGE_CRON, periodic_id="nightly")(purge)
        app.periodic(cron=OBSERVATION_DAY_CRON, periodic_id="observation_day")(observation_day)
        app.periodic(cron=OBSERVATION_SWEEP_CRON, periodic_id="observation_sweep")(observation_sweep)
        try:
            robots = webhook.configured_webhooks()
        except ConfigurationError as exc:  # said in the log; the imports and matches still run
            log.error("群聊提醒未启用 / alerts to the group chat are off: %s", exc)
            robots = []
        if robots:
            app.periodic(cron=ALERTS_CRON, periodic_id="alerts")(alerts)
    return app


def worker_app(url: str, periodic: bool = True) -> procrastinate.App:
    """The app a worker runs, on its own small pool of connections to ``url`` (opened by the worker)."""
    return make_app(procrastinate.PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=4), periodic)


# Deferring needs no pool of its own: every job is deferred on the caller's connection (see _defer).
_DEFERRING = make_app(procrastinate.SyncPsycopgConnector(), periodic=False)


def _defer(conn: Connection, task: str, **kwargs: str | bool | int | None) -> int:
    return _DEFERRING.configure_task(task, connection=driver_connection(conn)).defer(**kwargs)


def enqueue_feed_import(engine: Engine, path: str | Path, source: str, crs: str = "wgs84", match: bool = True,
                        requested_by: str | None = None, discard: bool = False) -> int:
    """Queue the import of the feed file ``path`` (already on disk, readable by the worker) from ``source``,
    then a match unless ``match`` is false; return the job's id. The file is checked when the job runs; with
    ``discard`` (an upload), deleted once it is imported."""
    file = Path(path).resolve()
    if not file.is_file():
        raise ConfigurationError(f"文件不存在 / no such file: {file}")
    source = source.strip()
    if not source:
        raise ConfigurationError("请指明数据来源部门 / name the department that sent the file (source)")
    if crs not in CRS_CHOICES:
        raise ConfigurationError(f"未知坐标系 {crs} / unknown coordinate system {crs!r}: one of "
                                 f"{', '.join(CRS_CHOICES)}")
    with engine.begin() as conn:
        job_id = _defer(conn, FEED_IMPORT, path=str(file), source=source, crs=crs, match=match, discard=discard)
        progress.queued(conn, job_id, "feed_import", tasks.feed_params(str(file), source, crs, match), requested_by)
    return job_id


def enqueue_rematch(engine: Engine, requested_by: str | None = None) -> int:
    """Queue a match of everyone; return the job's id. A re-match already waiting is not queued twice: its id
    is returned."""
    with engine.begin() as conn:
        try:
            with conn.begin_nested():
                job_id = _defer(conn, REMATCH)
        except procrastinate_errors.AlreadyEnqueued:
            waiting = conn.execute(sql("SELECT id FROM procrastinate_jobs WHERE queueing_lock = :lock "
                                       "AND status = 'todo'"), {"lock": REMATCH_QUEUEING_LOCK}).scalar_one_or_none()
            if waiting is not None:
                return int(waiting)
            job_id = _defer(conn, REMATCH)  # the waiting one started in between
        progress.queued(conn, job_id, "rematch", {}, requested_by)
    return job_id


def enqueue_feed_withdrawal(engine: Engine, feed_file_id: int, reason: str, requested_by: str,
                            client: str | None = None) -> int:
    """Queue the withdrawal of the import ``feed_file_id`` (:func:`matching.withdrawal.withdraw_feed`), asked by
    the user ``requested_by`` for ``reason``; return the job's id. Refused at once for an import that does not
    exist, one withdrawn already, one whose withdrawal is already waiting or running, or without a reason."""
    from gis.errors import Conflict
    from matching.withdrawal import clean_reason, withdrawable

    reason = clean_reason(reason)
    with engine.begin() as conn:
        found = withdrawable(conn, feed_file_id)
        waiting = conn.execute(sql(
            "SELECT job_id FROM job_progress WHERE kind = 'feed_withdraw' AND state IN ('queued', 'running') "
            "AND params->>'feed_file_id' = :f"), {"f": str(feed_file_id)}).scalar()
        if waiting is not None:
            raise Conflict(f"导入 #{feed_file_id} 的撤回已在进行（任务 {waiting}）/ the withdrawal of import "
                           f"#{feed_file_id} is already under way (job {waiting})", "withdrawal_under_way")
        job_id = _defer(conn, FEED_WITHDRAW, feed_file_id=feed_file_id, reason=reason, requested_by=requested_by,
                        client=client)
        progress.queued(conn, job_id, "feed_withdraw",
                        tasks.withdraw_params(feed_file_id, found["file_name"], found["source"], reason), requested_by)
    return job_id
