"""The jobs' bodies: a feed import then a match, and a match alone, each recording its progress and result.

They run in the worker (:mod:`jobs.worker`), in a thread of its own, and call the very functions that
``gridctl feed import`` and ``gridctl match`` call, with a progress callback that writes ``job_progress``
instead of drawing a bar. A failure is recorded with its message (a platform error's own message; for any
other error only its type, as no value from a feed may reach the pages or the logs in clear) and the job
fails; procrastinate does not retry it. Only a job cut short by a dead worker is run again (:mod:`jobs.recovery`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from procrastinate import JobContext
from sqlalchemy import Engine

from gis.db import engine_for, sql
from gis.errors import GridError, user_message
from jobs import progress

log = logging.getLogger(__name__)

# The steps matching.pipeline.import_feed reports; it checks, seals and stores a feed chunk by chunk, in one
# pass, so checking, sealing and storing are one stage here ("storing"), whose step names all three.
READING_STEP = "读取 / reading"
DONE_STEP = "完成 / done"
REJECTIONS_KEPT = 50  # rejected rows listed in a job's result (all of them are in feed_rejections)
FIELD_WARNINGS_KEPT = 50  # field warnings listed in a job's result (all of them are in feed_field_warnings)


class JobFailed(Exception):
    """A job's failure, with the message recorded for it (and nothing of the error it stands for)."""


def worker_name() -> str:
    """This process, as ``job_progress.worker`` names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def feed_params(path: str, source: str, crs: str, match: bool) -> dict[str, object]:
    """What a page shows of a feed import's request: the file's name (not its folder), source, CRS, match."""
    return {"file": Path(path).name, "source": source, "crs": crs, "match": match}


def _engine(context: JobContext) -> Engine:
    return engine_for(context.additional_context["url"])


def _job_id(context: JobContext) -> int:
    job_id = context.job.id
    if job_id is None:  # procrastinate types it optional: only a job not yet deferred has none
        raise RuntimeError("a job without an id")
    return job_id


@contextmanager
def _recorded(context: JobContext, kind: str, params: dict[str, object]) -> Iterator[progress.StageWriter]:
    """Record the job's start, and its failure if the block raises (then fail it with that message only)."""
    engine, job_id = _engine(context), _job_id(context)
    progress.started(engine, job_id, kind, params, context.job.attempts + 1, worker_name())
    try:
        yield progress.StageWriter(engine, job_id)
    except Exception as exc:
        if isinstance(exc, GridError):  # the platform's own message, as gridctl prints it
            reason = user_message(exc)
            log.warning("job %s (%s) failed: %s", job_id, kind, reason)
        else:
            reason = (f"内部错误 / internal error: {type(exc).__name__}（详见工作进程日志 / see the worker's log "
                      f"for where）")
            log.error("job %s (%s) failed: %s\n%s", job_id, kind, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)))  # where, not the message: it may quote a row
        progress.failed(engine, job_id, reason)
        raise JobFailed(reason) from None


def _matched(engine: Engine, write: progress.StageWriter) -> dict[str, object]:
    """Match everyone, then take the new task requests and escalate (as ``gridctl match`` does)."""
    from matching.pipeline import run_match
    from tasks.sweep import sweep

    started = time.monotonic()
    stats = run_match(engine, progress=lambda step, fraction: write("matching", step, fraction))
    write("sweeping", "派发任务与超时升级 / dispatching tasks and escalating", 0.0)
    swept = sweep(engine)
    return {"match": {key: int(value) for key, value in stats.items()},
            "tasks": {key: int(value) for key, value in swept.items()},
            "match_seconds": round(time.monotonic() - started, 3)}


def _import_stages(write: progress.StageWriter) -> Callable[[str, float], None]:
    def report(step: str, fraction: float) -> None:
        if step != DONE_STEP:
            write("reading" if step == READING_STEP else "storing", step, fraction)
    return report


def feed_import(context: JobContext, path: str, source: str, crs: str = "wgs84",
                match: bool = True, discard: bool = False) -> dict[str, object]:
    """Import the feed file ``path`` from ``source`` (every row stored or rejected), then match everyone; with
    ``discard`` (a file uploaded for this import), delete the file once it is in: it holds ID numbers, names and
    phones in clear, which the database keeps only sealed. A failed import keeps it for another try.

    Run again after an interruption, the import finds its file stored (or not: it stores all or nothing) and
    the match runs whatever it finds, so a retried job ends as a whole one would have.
    """
    from matching.pipeline import import_feed

    params = feed_params(path, source, crs, match)
    with _recorded(context, "feed_import", params) as write:
        engine, started, job_id = _engine(context), time.monotonic(), _job_id(context)
        asked = progress.read_progress(engine, job_id)  # who asked: the import history keeps it
        result = import_feed(engine, path, source, crs, progress=_import_stages(write),
                             imported_by=asked.requested_by if asked else None, job_id=job_id)
        outcome: dict[str, object] = {
            "file": result.file_name, "source": result.source, "rows_read": result.rows_read,
            "rows_stored": result.rows_stored, "rows_rejected": result.rows_rejected,
            "already_imported": result.already_imported, "warnings": result.warnings,
            "rows_warned": result.rows_warned,
            "rejections": [list(rejection) for rejection in result.rejections[:REJECTIONS_KEPT]],
            "field_warnings": [list(warning) for warning in result.field_warnings[:FIELD_WARNINGS_KEPT]],
            "import_seconds": round(time.monotonic() - started, 3)}
        if match and (not result.already_imported or context.job.attempts > 0):
            outcome |= _matched(engine, write)
        outcome["seconds"] = round(time.monotonic() - started, 3)
        progress.succeeded(engine, _job_id(context), outcome)
    if discard:
        Path(path).unlink(missing_ok=True)
    return _summary(outcome)


def rematch(context: JobContext) -> dict[str, object]:
    """Match everyone (data collision, rules, locating, flags), then take the task requests and escalate."""
    with _recorded(context, "rematch", {}) as write:
        engine, started = _engine(context), time.monotonic()
        outcome = _matched(engine, write)
        outcome["seconds"] = round(time.monotonic() - started, 3)
        progress.succeeded(engine, _job_id(context), outcome)
    return _summary(outcome)


def _summary(outcome: dict[str, object]) -> dict[str, object]:
    """What procrastinate logs of a finished job: the figures, not the lists of rejected rows and field warnings."""
    return {key: value for key, value in outcome.items() if key not in ("rejections", "field_warnings")}


# The withdrawal's steps (matching.withdrawal) as the stages job_progress knows: marking the import withdrawn is
# recorded as "reading", cancelling the tasks nothing justifies any more and removing the records as "storing".
WITHDRAW_STAGES = {"withdrawing": "reading", "matching": "matching", "cancelling": "storing", "sweeping": "sweeping"}


def withdraw_params(feed_file_id: int, file_name: str, source: str, reason: str) -> dict[str, object]:
    """What a page shows of a withdrawal's request: which import (its id, file and source) and why."""
    return {"feed_file_id": feed_file_id, "file": file_name, "source": source, "reason": reason}


def feed_withdraw(context: JobContext, feed_file_id: int, reason: str, requested_by: str,
                  client: str | None = None) -> dict[str, object]:
    """Withdraw the import ``feed_file_id``: mark it, match everyone without it, cancel the tasks only its records
    justified, remove its records, sweep (:func:`matching.withdrawal.withdraw_feed`). Run again after an
    interruption, it carries on from where the import stands."""
    from matching.withdrawal import withdraw_feed

    engine = _engine(context)
    with engine.connect() as conn:
        found = conn.execute(sql("SELECT file_name, source FROM feed_files WHERE id = :f"),
                             {"f": feed_file_id}).first()
    params = withdraw_params(feed_file_id, found.file_name if found else "", found.source if found else "", reason)
    with _recorded(context, "feed_withdraw", params) as write:
        started = time.monotonic()
        outcome = withdraw_feed(engine, feed_file_id, requested_by, reason, client,
                                progress=lambda stage, step, fraction: write(WITHDRAW_STAGES[stage], step, fraction))
        outcome["seconds"] = round(time.monotonic() - started, 3)
        progress.succeeded(engine, _job_id(context), outcome)
    return _summary(outcome)


def purge(context: JobContext, timestamp: int) -> dict[str, object]:
    """The nightly retention purge (:func:`matching.retention.purge`) with the days in force
    (``NANHAI_RETENTION_DAYS``, else 28), deferred for the night ``timestamp`` (its scheduled moment) by the
    workers' periodic deferrer (:data:`jobs.queue.PURGE_CRON`). One transaction: cut short, it changed nothing, and
    run again it does the whole of it."""
    from datetime import UTC, datetime

    from matching.retention import purge as purge_expired
    from matching.retention import retention_days

    params: dict[str, object] = {"scheduled_for": datetime.fromtimestamp(timestamp, UTC).isoformat()}
    try:
        params = {"days": retention_days(), **params}
    except GridError:
        pass  # a wrong NANHAI_RETENTION_DAYS: the job fails with its message, below
    with _recorded(context, "purge", params) as write:
        engine, days = _engine(context), retention_days()
        write("storing", f"清除 {days} 天前到期的个人数据 / purging the personal data past {days} days", 0.0)
        outcome = purge_expired(engine, days).as_dict()
        progress.succeeded(engine, _job_id(context), outcome)
    return outcome


def deliver_alerts(context: JobContext, timestamp: int) -> dict[str, object]:
    """Post the new alerts to the office's group-chat robots (``NANHAI_ALERT_WEBHOOK``; :mod:`jobs.webhook`),
    deferred every minute by the workers' periodic deferrer (:data:`jobs.queue.ALERTS_CRON`). It asks up to
    :data:`jobs.webhook.SETTLE` behind the clock, not the scheduled ``timestamp``: a run held up behind an import
    takes everything since. A robot that fails is recorded and tried again later, and the job still succeeds: it
    is the next run's to retry, never procrastinate's. Not recorded in ``job_progress`` (a run a minute is not a
    job anyone asked for); its result is the figures of the run, and its earlier finished runs are removed."""
    from datetime import UTC, datetime

    from jobs.webhook import SETTLE, configured_webhooks
    from jobs.webhook import deliver_alerts as deliver

    engine = _engine(context)
    hooks = configured_webhooks()
    report = deliver(engine, hooks, datetime.now(UTC) - SETTLE).as_dict() if hooks else {"webhooks": []}
    with engine.begin() as conn:  # one row a minute otherwise: keep only the latest runs of this task
        conn.execute(sql(
            "DELETE FROM procrastinate_jobs j WHERE j.task_name = :task AND j.status = 'succeeded' AND j.id < :me "
            "AND NOT EXISTS (SELECT FROM procrastinate_periodic_defers d WHERE d.job_id = j.id)"),
            {"task": context.job.task_name, "me": _job_id(context)})
    return report


def observation_day(context: JobContext, timestamp: int) -> dict[str, object]:
    """Home observation's day (:mod:`observation`): plans brought in line with the codes (a plan whose period
    ended closes), then the checks of the Beijing day of ``timestamp`` (00:05 Beijing time by the periodic
    deferrer, :data:`jobs.queue.OBSERVATION_DAY_CRON`, and the moment a worker starts), none due more than the
    grace period ago. Run twice, it makes nothing more. Not recorded in ``job_progress`` (nobody asked for it);
    its result is its counts."""
    from datetime import UTC, datetime

    from matching.rule_versions import current_rules
    from observation.plans import sync_plans
    from observation.policy import observation_policy
    from observation.schedule import beijing_day, make_checks

    day, now = beijing_day(datetime.fromtimestamp(timestamp, UTC)), datetime.now(UTC)
    with _engine(context).begin() as conn:
        policy = observation_policy(current_rules(conn))
        plans = sync_plans(conn, now, policy)
        # none that could no longer be reported for (a worker started late in the day: see make_checks)
        checks = make_checks(conn, day, policy, not_before=now - policy.grace)
    return {"day": day.isoformat(), "plans": plans, "checks": checks}


def observation_sweep(context: JobContext, timestamp: int) -> dict[str, object]:
    """The missed-check sweep (:func:`observation.schedule.sweep_missed`) at the clock's time, every 5 minutes
    (:data:`jobs.queue.OBSERVATION_SWEEP_CRON`); one transaction. Its earlier finished runs are removed, as the
    alerts' are."""
    from datetime import UTC, datetime

    from observation.schedule import sweep_missed

    engine = _engine(context)
    with engine.begin() as conn:
        counts = sweep_missed(conn, datetime.now(UTC))
        conn.execute(sql(
            "DELETE FROM procrastinate_jobs j WHERE j.task_name = :task AND j.status = 'succeeded' AND j.id < :me "
            "AND NOT EXISTS (SELECT FROM procrastinate_periodic_defers d WHERE d.job_id = j.id)"),
            {"task": context.job.task_name, "me": _job_id(context)})
    return {"scheduled_for": datetime.fromtimestamp(timestamp, UTC).isoformat(), **counts}
