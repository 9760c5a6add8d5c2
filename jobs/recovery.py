"""Jobs cut short by a dead worker (a restart, a crash, a killed process): run again, or failed with the reason.

A worker that dies leaves its job ``doing`` in procrastinate's table, and nobody would ever finish it. Two
things find such jobs, each time a worker starts and then every half :data:`jobs.worker.STALLED_AFTER` while
it runs:

- procrastinate's heartbeats (3.x): every worker writes ``procrastinate_workers.last_heartbeat`` every few
  seconds; a worker silent for ``stalled_after`` seconds is pruned, and its ``doing`` jobs are stalled
  (``JobManager.get_stalled_jobs``). This works across machines, after the delay.
- this machine's own dead processes, at once: ``job_progress.worker`` names the process (``host:pid``) that
  started each job; when that process no longer exists here, its job is stalled without waiting for its
  heartbeat to age (a service restart takes seconds, the heartbeat timeout half a minute). A pid reused by
  another process only makes this miss: the heartbeat then finds the job.

A stalled job is queued again (``retry_job``: procrastinate counts the attempt) as long as it has run fewer
than :data:`MAX_RUNS` times, and failed after that — a feed that kills its worker every time is not run
forever. Either way ``job_progress`` says why, in its message and history; its state is never left running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status
from sqlalchemy import Engine

from gis.db import sql
from jobs import progress

log = logging.getLogger(__name__)

MAX_RUNS = 3  # a job whose worker dies under it is run at most this many times in all


@dataclass(frozen=True)
class Recovered:
    job_id: int
    task_name: str
    retried: bool
    reason: str


def _gone(pid: int, starting: bool) -> bool:
    """Whether the process ``pid`` of this machine is gone. While this worker starts it runs nothing, so a job
    that names its own pid was left by an earlier process that had the same pid (common in containers)."""
    if pid == os.getpid():
        return starting
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _dead_here(engine: Engine, starting: bool) -> dict[int, str]:
    host = socket.gethostname()
    return {job_id: (f"工作进程 {host}:{pid} 已不在运行（服务重启或进程被终止）/ its worker process {host}:{pid} is "
                     f"gone (a restart, or the process was killed)")
            for job_id, pid in progress.running_here(engine, host) if _gone(pid, starting)}


def _doing(engine: Engine, job_ids: list[int]) -> dict[int, tuple[str, int]]:
    """Task name and attempts of those of ``job_ids`` that procrastinate still counts as running."""
    with engine.connect() as conn:
        rows = conn.execute(sql("SELECT id, task_name, attempts FROM procrastinate_jobs "
                                "WHERE id = ANY(:ids) AND status = 'doing'"), {"ids": job_ids}).all()
    return {job_id: (task_name, attempts) for job_id, task_name, attempts in rows}


def _kind(task_name: str) -> str | None:
    """The job_progress kind of a procrastinate task name (``nanhai.feed_withdraw`` → ``feed_withdraw``); None for
    a task that keeps no progress (the alerts' periodic delivery): it is retried, with no progress row to mend."""
    kind = task_name.rsplit(".", 1)[-1]
    return kind if kind in progress.KINDS else None


async def recover_stalled(app: procrastinate.App, engine: Engine, stalled_after: float,
                          starting: bool = False) -> list[Recovered]:
    """Find the jobs of dead workers; queue each again, or fail it after :data:`MAX_RUNS` runs. ``starting``:
    the calling worker is starting and runs no job yet."""
    manager = app.job_manager
    await manager.prune_stalled_workers(stalled_after)
    silent = (f"工作进程超过 {stalled_after:.0f} 秒没有心跳（重启、崩溃或断网）/ its worker sent no heartbeat for "
              f"{stalled_after:.0f} s (a restart, a crash, or a lost connection)")
    reasons = {job.id: silent for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after)
               if job.id is not None}
    for job_id, reason in (await asyncio.to_thread(_dead_here, engine, starting)).items():
        reasons.setdefault(job_id, reason)
    if not reasons:
        return []
    found = await asyncio.to_thread(_doing, engine, list(reasons))
    recovered = []
    for job_id, (task_name, attempts) in sorted(found.items()):
        runs = attempts + 1  # procrastinate counts an attempt when it is retried or finished
        retried = runs < MAX_RUNS
        try:
            if retried:
                await manager.retry_job_by_id_async(job_id, retry_at=datetime.now(UTC))
            else:
                await manager.finish_job_by_id_async(job_id, status=Status.FAILED, delete_job=False)
        except procrastinate_errors.ConnectorException:  # another worker recovered it first
            continue
        if retried:
            reason = f"{reasons[job_id]}；第 {runs} 次运行中断，已重新排队 / run {runs} cut short: queued again"
        else:
            reason = f"{reasons[job_id]}；已中断 {runs} 次，不再重试 / cut short {runs} times: not run again"
        kind = _kind(task_name)
        if kind is not None:
            await asyncio.to_thread(progress.interrupted, engine, job_id, kind, reason, retried)
        log.warning("job %s (%s): %s", job_id, task_name, reason)
        recovered.append(Recovered(job_id, task_name, retried, reason))
    return recovered
