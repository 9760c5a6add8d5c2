"""Background jobs, queued in PostgreSQL itself: long work (feed imports, re-matches) never runs in a web worker.

Why procrastinate (pinned in pyproject.toml): the queue is a few tables and functions in the platform's own
PostgreSQL (migration 0008 applies the schema SQL the package ships), so there is no Redis, broker or other
server to run, back up or watch, as DESIGN.md §5 asks. A job is deferred in the database (in the caller's own
transaction if it likes), a worker hears of it at once through LISTEN/NOTIFY (polling as a fallback), takes it
with ``FOR UPDATE SKIP LOCKED``, and records every change of state there. It has locks (our feed imports and
matches never run two at a time), retries, periodic tasks and, since 3.1, worker heartbeats, from which
:mod:`jobs.recovery` finds the jobs a dead worker left behind. It runs on psycopg 3, which the project already
uses, ships type hints, and is actively maintained (3.10.0, the current release, is pinned). Celery, RQ and
Dramatiq want a broker server; the smaller PostgreSQL queues lack heartbeats or locks.

- :mod:`jobs.queue`     the procrastinate app for a database, our tasks, and the functions that enqueue them
- :mod:`jobs.tasks`     the task bodies: a feed import (then a match), a re-match
- :mod:`jobs.progress`  the ``job_progress`` table the pages and ``gridctl jobs`` read
- :mod:`jobs.recovery`  jobs interrupted by a dead worker: retried, or failed with the reason
- :mod:`jobs.worker`    the worker process (``gridctl jobs worker``, and beside ``gridctl serve``), at low priority

Plain functions over the database, like every domain package: nothing here imports Flask or Dash.
"""
