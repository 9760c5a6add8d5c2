"""The job worker: runs the queued jobs of the platform's database, at a lower CPU priority than the web workers.

``gridctl jobs worker`` runs :func:`run_worker` in the foreground (Ctrl+C or SIGTERM stop it once the running
job is done); ``gridctl serve`` forks a process for :func:`start_beside`, beside the task sweeper, which runs
it in a thread until the server stops it. Either way the process first lowers its own priority
(:data:`NICENESS`, like ``nice -n 10``): a million-row import then takes the cores only when the pages leave
them idle. When it starts, and then every half :data:`STALLED_AFTER` seconds, it looks for jobs that a dead
worker left running (:mod:`jobs.recovery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time

import procrastinate
from sqlalchemy import Engine

from gis.db import engine_for
from jobs import queue, recovery, tasks

log = logging.getLogger(__name__)

NICENESS = 10  # added to the process's nice value: the web workers (0) come first
STALLED_AFTER = 30.0  # seconds without a heartbeat after which a worker counts as dead
HEARTBEAT_EVERY = 10.0  # seconds between two heartbeats of a worker
RESTART_AFTER = 10.0  # seconds before the worker beside the server starts again after a failure


def lower_priority(niceness: int = NICENESS) -> int:
    """Add ``niceness`` to this process's nice value (Linux keeps one per thread: call it before any thread
    starts, and every thread started afterwards inherits it); return the new value."""
    return os.nice(niceness) if niceness else os.nice(0)


def run_worker(url: str, *, once: bool = False, niceness: int = NICENESS, stalled_after: float = STALLED_AFTER,
               heartbeat_every: float = HEARTBEAT_EVERY, install_signal_handlers: bool = True) -> None:
    """Run the jobs queued in the database at ``url`` (a SQLAlchemy URL), one at a time, until stopped; with
    ``once``, until the queue is empty. ``niceness`` is added to the process's priority first (0: unchanged)."""
    lower_priority(niceness)
    asyncio.run(_work(url, once, stalled_after, heartbeat_every, install_signal_handlers))


async def _work(url: str, once: bool, stalled_after: float, heartbeat_every: float,
                install_signal_handlers: bool) -> None:
    engine = engine_for(url)
    app = queue.worker_app(url, periodic=not once)  # a --once worker defers no nightly job
    async with app.open_async():
        await recovery.recover_stalled(app, engine, stalled_after, starting=True)
        if not once:  # today's observation checks, in case the workers were down at 00:05
            await _defer_observation_day(app)
        watching = None if once else asyncio.create_task(_watch(app, engine, stalled_after))
        try:
            await app.run_worker_async(
                queues=[queue.QUEUE], name=tasks.worker_name(), concurrency=1, wait=not once,
                listen_notify=not once, additional_context={"url": url}, update_heartbeat_interval=heartbeat_every,
                stalled_worker_timeout=stalled_after, install_signal_handlers=install_signal_handlers)
        finally:
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching


async def _defer_observation_day(app: procrastinate.App) -> None:
    """Queue the day's observation checks now (:func:`jobs.tasks.observation_day`); one already waiting is
    enough."""
    try:
        await app.configure_task(queue.OBSERVATION_DAY, queueing_lock=queue.OBSERVATION_DAY).defer_async(
            timestamp=int(time.time()))
    except procrastinate.exceptions.AlreadyEnqueued:
        pass


async def _watch(app: procrastinate.App, engine: Engine, stalled_after: float) -> None:
    """Look for the jobs of dead workers every half ``stalled_after``; a failed look is logged and tried again."""
    every = stalled_after / 2
    while True:
        await asyncio.sleep(every)
        try:
            await recovery.recover_stalled(app, engine, stalled_after)
        except Exception:  # noqa: BLE001 - the next round retries; the worker keeps working
            log.exception("looking for stalled jobs failed; retrying in %.0f s", every)


def start_beside(url: str) -> None:
    """For ``gridctl serve``'s job process (``api.serving.run_beside``): lower this process's priority, then run
    the worker in a thread, started again after :data:`RESTART_AFTER` seconds whenever it stops (the database
    down, a lost connection). Returns at once. The server stops the process with SIGTERM, which ends it at once:
    a job cut short then is found by the next worker's start (:mod:`jobs.recovery`) and run again."""
    lower_priority()
    threading.Thread(target=_keep_working, args=(url,), name="nanhai-jobs", daemon=True).start()


def _keep_working(url: str) -> None:
    while True:
        try:
            run_worker(url, niceness=0, install_signal_handlers=False)
        except Exception as exc:  # noqa: BLE001 - said in the server's log, then tried again
            print(f"后台任务进程出错，{RESTART_AFTER:.0f} 秒后重启：请检查数据库 / the job worker stopped "
                  f"({type(exc).__name__}: {exc}); starting it again in {RESTART_AFTER:.0f} s: check the database",
                  file=sys.stderr, flush=True)
        time.sleep(RESTART_AFTER)
