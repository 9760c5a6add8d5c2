"""The ``job_progress`` table (migration 0008): what each background job is doing, and what it did.

One row per job, keyed by procrastinate's job id. Procrastinate keeps the queue (``procrastinate_jobs``: todo,
doing, succeeded, failed…); this row keeps what a page shows: the kind, our state (queued, running, succeeded,
failed), the stage and how far into it, a history of stages, starts and interruptions, the result or the error.
Every write is its own short transaction, apart from the job's work, so a page sees progress while the import's
own transaction is still open. No personal data is written here: file names, sources, counts and reasons only.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from gis.db import sql

KINDS = ("feed_import", "rematch", "feed_withdraw", "purge")
STATES = ("queued", "running", "succeeded", "failed")
STAGES = ("queued", "reading", "storing", "matching", "sweeping", "done")
WRITE_EVERY = 1.0  # seconds between two writes of the same stage's fraction (a new stage is written at once)

_COLUMNS = ("p.job_id, p.kind, p.state, p.stage, p.step, p.fraction, p.history, p.params, p.requested_by, "
            "p.attempts, p.worker, p.message, p.result, p.error, p.created_at, p.started_at, p.updated_at, "
            "p.finished_at, j.status::text AS queue_status")


@dataclass(frozen=True)
class JobView:
    """A job as the pages and ``gridctl jobs`` show it. ``queue_status`` is procrastinate's own status of the job
    (todo, doing, succeeded, failed, cancelled, aborted), or None once procrastinate has deleted it."""

    job_id: int
    kind: str
    state: str
    stage: str
    step: str | None
    fraction: float
    history: list[dict[str, Any]]
    params: dict[str, Any]
    requested_by: str | None
    attempts: int
    worker: str | None
    message: str | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    queue_status: str | None

    @property
    def stages(self) -> list[str]:
        """The stages the job went through, in order (each once per attempt)."""
        return [entry["stage"] for entry in self.history if entry.get("event") == "stage"]


def _entry(event: str, **fields: object) -> str:
    """One history entry (its time is added by the database), as the JSON text of a one-element array."""
    return json.dumps([{"event": event, **fields}], ensure_ascii=False)


_APPEND = ("history || (SELECT jsonb_agg(jsonb_build_object('at', now()) || e) "
           "FROM jsonb_array_elements(CAST(:entry AS jsonb)) e)")


def queued(conn: Connection, job_id: int, kind: str, params: Mapping[str, object],
           requested_by: str | None) -> None:
    """Record a job just deferred, in the transaction that deferred it (so the worker, which writes the row too
    when it starts, always finds it)."""
    conn.execute(sql(
        "INSERT INTO job_progress (job_id, kind, params, requested_by, history) "
        "VALUES (:job_id, :kind, CAST(:params AS jsonb), :requested_by, "
        "        jsonb_build_array(jsonb_build_object('at', now(), 'event', 'queued')))"),
        {"job_id": job_id, "kind": kind, "params": json.dumps(dict(params), ensure_ascii=False),
         "requested_by": requested_by})


def started(engine: Engine, job_id: int, kind: str, params: Mapping[str, object], attempt: int, worker: str) -> None:
    """Record that ``worker`` (host:pid) starts the job's attempt ``attempt`` (1 for the first run)."""
    with engine.begin() as conn:
        conn.execute(sql(
            "INSERT INTO job_progress (job_id, kind, params) VALUES (:job_id, :kind, CAST(:params AS jsonb)) "
            "ON CONFLICT (job_id) DO NOTHING"),
            {"job_id": job_id, "kind": kind, "params": json.dumps(dict(params), ensure_ascii=False)})
        conn.execute(sql(
            f"UPDATE job_progress SET state = 'running', stage = 'queued', step = NULL, fraction = 0, "
            f"       attempts = :attempt, worker = :worker, error = NULL, result = NULL, finished_at = NULL, "
            f"       started_at = coalesce(started_at, now()), updated_at = now(), history = {_APPEND} "
            f"WHERE job_id = :job_id"),
            {"job_id": job_id, "attempt": attempt, "worker": worker,
             "entry": _entry("started", attempt=attempt, worker=worker)})


class StageWriter:
    """Writes a running job's stage and fraction: a new stage at once, the same stage's fraction at most every
    :data:`WRITE_EVERY` seconds (the pipeline reports every chunk; a page needs a figure a second, not more)."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine, self.job_id = engine, job_id
        self.stage: str | None = None
        self.written = 0.0
        self.lock = threading.Lock()  # the pipeline may report from its writer thread

    def __call__(self, stage: str, step: str | None, fraction: float) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        with self.lock:
            now = time.monotonic()
            new_stage = stage != self.stage
            if not new_stage and now - self.written < WRITE_EVERY:
                return
            self.stage, self.written = stage, now
            fraction = min(max(fraction, 0.0), 1.0)
            with self.engine.begin() as conn:
                if new_stage:
                    conn.execute(sql(
                        f"UPDATE job_progress SET stage = :stage, step = :step, fraction = :fraction, "
                        f"updated_at = now(), history = {_APPEND} WHERE job_id = :job_id"),
                        {"job_id": self.job_id, "stage": stage, "step": step, "fraction": fraction,
                         "entry": _entry("stage", stage=stage)})
                else:
                    conn.execute(sql(
                        "UPDATE job_progress SET step = :step, fraction = :fraction, updated_at = now() "
                        "WHERE job_id = :job_id"), {"job_id": self.job_id, "step": step, "fraction": fraction})


def succeeded(engine: Engine, job_id: int, result: Mapping[str, object]) -> None:
    """Record the job's result: state succeeded, stage done."""
    with engine.begin() as conn:
        conn.execute(sql(
            f"UPDATE job_progress SET state = 'succeeded', stage = 'done', step = NULL, fraction = 1, "
            f"       result = CAST(:result AS jsonb), message = NULL, finished_at = now(), updated_at = now(), "
            f"       history = {_APPEND} WHERE job_id = :job_id"),
            {"job_id": job_id, "result": json.dumps(dict(result), ensure_ascii=False),
             "entry": _entry("succeeded")})


def failed(engine: Engine, job_id: int, error: str) -> None:
    """Record that the job failed, and why (a message for operators: no personal data)."""
    with engine.begin() as conn:
        conn.execute(sql(
            f"UPDATE job_progress SET state = 'failed', error = :error, finished_at = now(), updated_at = now(), "
            f"       history = {_APPEND} WHERE job_id = :job_id"),
            {"job_id": job_id, "error": error, "entry": _entry("failed", reason=error)})


def interrupted(engine: Engine, job_id: int, kind: str, reason: str, retried: bool) -> None:
    """Record that the job's worker died under it: queued again (``retried``), or failed with ``reason``."""
    with engine.begin() as conn:
        conn.execute(sql(
            "INSERT INTO job_progress (job_id, kind) VALUES (:job_id, :kind) ON CONFLICT (job_id) DO NOTHING"),
            {"job_id": job_id, "kind": kind})
        conn.execute(sql(
            f"UPDATE job_progress SET state = CASE WHEN :retried THEN 'queued' ELSE 'failed' END, "
            f"       message = :reason, error = CASE WHEN :retried THEN NULL ELSE :reason END, "
            f"       finished_at = CASE WHEN :retried THEN NULL ELSE now() END, updated_at = now(), "
            f"       history = {_APPEND} WHERE job_id = :job_id"),
            {"job_id": job_id, "reason": reason, "retried": retried,
             "entry": _entry("interrupted", reason=reason, retried=retried)})


def running_here(engine: Engine, host: str) -> list[tuple[int, int]]:
    """(job id, pid) of the jobs procrastinate counts as running that a process of ``host`` started."""
    with engine.connect() as conn:
        rows = conn.execute(sql(
            "SELECT p.job_id, p.worker FROM job_progress p JOIN procrastinate_jobs j ON j.id = p.job_id "
            "WHERE j.status = 'doing' AND starts_with(p.worker, :prefix)"), {"prefix": f"{host}:"}).all()
    found = []
    for job_id, worker in rows:
        pid = worker.rsplit(":", 1)[1]
        if pid.isdigit():
            found.append((job_id, int(pid)))
    return found


def read_progress(engine: Engine, job_id: int) -> JobView | None:
    """The job ``job_id`` as the pages show it, or None when there is no such job of ours."""
    with engine.connect() as conn:
        row = conn.execute(sql(
            f"SELECT {_COLUMNS} FROM job_progress p LEFT JOIN procrastinate_jobs j ON j.id = p.job_id "
            f"WHERE p.job_id = :job_id"), {"job_id": job_id}).mappings().first()
    return JobView(**row) if row else None


def list_progress(engine: Engine, limit: int = 20) -> list[JobView]:
    """The newest ``limit`` jobs, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(sql(
            f"SELECT {_COLUMNS} FROM job_progress p LEFT JOIN procrastinate_jobs j ON j.id = p.job_id "
            f"ORDER BY p.created_at DESC, p.job_id DESC LIMIT :limit"), {"limit": limit}).mappings().all()
    return [JobView(**row) for row in rows]


def as_dict(view: JobView) -> dict[str, Any]:
    """The job as JSON-ready values (times in ISO 8601)."""
    return {key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in dataclasses.asdict(view).items()}


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _result_line(view: JobView) -> str | None:
    result = view.result or {}
    parts = []
    if "rows_read" in result:
        warned = int(result.get("rows_warned") or 0)  # stored rows with a field ignored: apart from the balance
        parts.append(f"读取 {result['rows_read']} 行 = 入库 {result['rows_stored']} + 拒收 {result['rows_rejected']}"
                     + (f"，字段警告 {warned} 行" if warned else "") + " / "
                     f"read {result['rows_read']} = stored {result['rows_stored']} + rejected {result['rows_rejected']}"
                     + (f", rows with field warnings: {warned}" if warned else "")
                     + ("（已导入过 / already imported）" if result.get("already_imported") else ""))
    match = result.get("match")
    if isinstance(match, dict):
        parts.append(f"人员 / persons {match.get('persons')}（红 / red {match.get('red')}，黄 / yellow "
                     f"{match.get('yellow')}，未定位 / unplaced {match.get('unplaced_flags')}）")
    removed = result.get("removed")
    if "people" in result and isinstance(removed, dict):
        parts.append(f"清除 {result['people']} 人的个人数据 / purged {result['people']} people（"
                     + "，".join(f"{table} {count}" for table, count in removed.items() if count) + "）")
    if "seconds" in result:
        parts.append(f"{result['seconds']:.1f} s")
    return "；".join(parts) or None


def summary(view: JobView) -> str:
    """One line for a list of jobs."""
    where = f"{view.stage} {view.fraction:.0%}" if view.state == "running" else view.stage
    subject = " ".join(str(view.params[key]) for key in ("source", "file") if key in view.params)
    outcome = view.error if view.state == "failed" else (_result_line(view) or view.message or "")
    return (f"{view.job_id:>6}  {_when(view.created_at)}  {view.kind:<11} {view.state:<9} {where:<14} "
            f"{subject}  {outcome}").rstrip()


def describe(view: JobView) -> list[str]:
    """The job's full account, line by line (``gridctl jobs show``)."""
    lines = [f"任务 / job {view.job_id}  {view.kind}  状态 / state: {view.state}  "
             f"(队列 / queue: {view.queue_status or '已清除 / deleted'})",
             f"阶段 / stage: {view.stage} {view.fraction:.0%}" + (f"  {view.step}" if view.step else "")]
    if view.params:
        lines.append("请求 / request: " + ", ".join(f"{key}={value}" for key, value in view.params.items()))
    lines.append(f"排队 / queued {_when(view.created_at)}" + (f" 由 / by {view.requested_by}" if view.requested_by
                                                              else "")
                 + f"；开始 / started {_when(view.started_at)}；结束 / finished {_when(view.finished_at)}")
    if view.worker:
        lines.append(f"进程 / worker: {view.worker}，第 {view.attempts} 次运行 / run {view.attempts}")
    result = _result_line(view)
    if result:
        lines.append(f"结果 / result: {result}")
    if view.error:
        lines.append(f"错误 / error: {view.error}")
    elif view.message:
        lines.append(f"说明 / note: {view.message}")
    lines.append("经过 / history:")
    for entry in view.history:
        details = ", ".join(f"{key}={value}" for key, value in entry.items() if key not in ("at", "event"))
        at = datetime.fromisoformat(entry["at"]) if entry.get("at") else None
        lines.append(f"  {_when(at)}  {entry.get('event')}" + (f"  {details}" if details else ""))
    return lines
