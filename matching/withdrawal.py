"""A feed import after the fact: its rejection report, and its withdrawal.

Withdrawing an import takes its records out of the data collision and re-matches everyone; the file stays in
the history, marked withdrawn (who, when, why), with its balance and its rejections. It runs in four steps,
each safe to run again if the process dies between them (the background job is then run again):

1. **mark** — the file is marked withdrawn (audited: ``feed.withdraw``). From then on the matcher leaves its
   records out (:func:`matching.repository.load_records`), though they are still stored.
2. **match** — everyone is matched again without them: codes, places, flags, task requests.
3. **cancel and remove** — in one transaction: the open tasks the matcher made for persons who have a record
   in the file and are no longer red or yellow — nothing left justifies them — are cancelled by the system,
   each with an event that says which file was withdrawn and why; their pending task requests are dropped
   (``withdrawn``); then the file's records are deleted. A person who is still red or yellow because of
   another department's records keeps his task.
4. **sweep** — the task workflow's round (new task requests, escalations), as after any match.

A withdrawn file may be imported again: the same file from the same source is refused only while an import
of it stands.

>>> stored = "身份证校验位错误 / ID-card check digit wrong；手机号格式错误 / phone malformed"
>>> for field, reason in rejection_lines(stored):
...     print(field, "|", reason)
身份证号 / id_number | 身份证校验位错误 / ID-card check digit wrong
手机号 / phone | 手机号格式错误 / phone malformed
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from accounts.actor import Actor
from gis.errors import Conflict, InvalidRequest, NotFound
from matching import repository

WithdrawalProgress = Callable[[str, str, float], None]  # (stage, step, fraction of the stage)
STAGES = ("withdrawing", "matching", "cancelling", "sweeping")
REASON_LIMIT = 200
REASON_SEPARATOR = "；"  # matching.feeds.Rejection.reason joins a row's reasons with it
# The field each of matching.feeds' row checks is about, by the start of its message (most specific first).
_FIELDS = (("身份证", "id_number"), ("出生日期无法解析", "birth_date"), ("出生日期", "id_number"), ("姓名", "name"),
           ("手机号", "phone"),
           ("坐标系", "crs"), ("坐标", "lon, lat"), ("经纬度", "lon, lat"), ("登记时间", "reported_at"))
FIELD_NAMES = {"id_number": "身份证号", "name": "姓名", "phone": "手机号", "crs": "坐标系", "lon, lat": "经度、纬度",
               "reported_at": "登记时间", "birth_date": "出生日期", "": "整行"}


def _quiet(stage: str, step: str, fraction: float) -> None:
    return None


def reason_field(reason: str) -> str:
    """The field a rejection reason is about (``id_number``, ``lon, lat``…), "" for the row as a whole.

    >>> reason_field("坐标系无法识别 / coordinate system unknown")
    'crs'
    >>> reason_field("出生日期无法解析或不合理 / date of birth unparseable or impossible")
    'birth_date'
    """
    text = reason.strip()
    return next((field for start, field in _FIELDS if text.startswith(start)), "")


def rejection_lines(reasons: str) -> list[tuple[str, str]]:
    """A rejected row's reasons (as stored: joined by "；"), one (field as "中文 / key", reason) per problem."""
    lines = []
    for reason in filter(None, (part.strip() for part in reasons.split(REASON_SEPARATOR))):
        field = reason_field(reason)
        lines.append((f"{FIELD_NAMES[field]} / {field or 'row'}", reason))
    return lines


def rejection_report(conn: Connection, feed_id: int) -> list[dict[str, Any]]:
    """The rejection report of an import: one line per problem — row number (as the department sees it in its
    file), field, reason — in row order. Refused (NotFound) for an import that does not exist."""
    if repository.feed_file(conn, feed_id) is None:
        raise NotFound(f"没有导入记录 #{feed_id} / no import #{feed_id}")
    return [{"row": row, "field": field, "reason": reason}
            for row, reasons in repository.feed_rejections(conn, feed_id)
            for field, reason in rejection_lines(reasons)]


def clean_reason(reason: str | None) -> str:
    """The reason given for a withdrawal, trimmed; refused when empty or longer than :data:`REASON_LIMIT`."""
    text = " ".join((reason or "").split())
    if not text:
        raise InvalidRequest("请填写撤回原因 / give the reason for the withdrawal", "reason")
    if len(text) > REASON_LIMIT:
        raise InvalidRequest(f"撤回原因不超过 {REASON_LIMIT} 字 / the reason is limited to {REASON_LIMIT} characters",
                             "reason")
    return text


def withdrawable(conn: Connection, feed_id: int) -> dict[str, Any]:
    """The import ``feed_id`` if it may be withdrawn; NotFound when there is none, Conflict when it is withdrawn
    already (``already_withdrawn``)."""
    found = repository.feed_file(conn, feed_id)
    if found is None:
        raise NotFound(f"没有导入记录 #{feed_id} / no import #{feed_id}")
    if found["withdrawn_at"] is not None:
        raise Conflict(f"导入 #{feed_id}（{found['file_name']}）已于 {found['withdrawn_at']:%Y-%m-%d %H:%M} 撤回 / "
                       f"import #{feed_id} ({found['file_name']}) is withdrawn already", "already_withdrawn")
    return found


def begin_withdrawal(engine: Engine, feed_id: int, by: str, reason: str,
                     client: str | None = None) -> tuple[dict[str, Any], bool]:
    """Step 1: mark the import withdrawn and audit it; returns (the import, whether it was marked now). An import
    already withdrawn is returned as it is (a withdrawal run again after an interruption carries on)."""
    reason = clean_reason(reason)
    with engine.begin() as conn:
        found = repository.feed_file(conn, feed_id, lock=True)
        if found is None:
            raise NotFound(f"没有导入记录 #{feed_id} / no import #{feed_id}")
        if found["withdrawn_at"] is not None:
            return found, False
        repository.mark_withdrawn(conn, feed_id, by, reason)
        repository.audit_feed(conn, by, "feed.withdraw", feed_id,
                              f"{found['source']} · {found['file_name']} · SHA-256 {found['sha256']} · 入库 "
                              f"{found['rows_stored']} 条 / {found['rows_stored']} records: {reason}", client)
        return repository.feed_file(conn, feed_id) or found, True


def cancellation_reason(found: dict[str, Any]) -> str:
    """What a task cancelled by the withdrawal of ``found`` says in its timeline."""
    return (f"数据撤回：{found['source']} 的文件 {found['file_name']}（导入 #{found['id']}）已撤回（"
            f"{found['withdraw_reason']}），该人员已无其他红码或黄码依据 / feed withdrawn: {found['file_name']} from "
            f"{found['source']} (import #{found['id']}), reason: {found['withdraw_reason']}; no other record keeps "
            f"this person red or yellow")


def finish_withdrawal(engine: Engine, feed_id: int, now: datetime | None = None) -> dict[str, int]:
    """Step 3 (after a match that left the file out): cancel the open matcher tasks that only its records
    justified, drop their pending requests, delete its records — one transaction. Returns the counts."""
    from tasks.lifecycle import OPEN
    from tasks.repository import transition

    now = now or datetime.now(UTC)
    system = Actor.system()
    with engine.begin() as conn:
        found = repository.feed_file(conn, feed_id, lock=True)
        if found is None or found["withdrawn_at"] is None:
            raise Conflict(f"导入 #{feed_id} 未标记撤回 / import #{feed_id} is not marked withdrawn", "not_withdrawn")
        reason = cancellation_reason(found)
        cancelled = 0
        for task_id, version in repository.tasks_left_unjustified(conn, feed_id, OPEN):
            transition(conn, system, task_id, "cancel", version, {"reason": reason}, now)
            cancelled += 1
        dropped = repository.drop_unjustified_requests(conn, feed_id)
        removed = repository.remove_feed_records(conn, feed_id)
    return {"tasks_cancelled": cancelled, "requests_dropped": dropped, "records_removed": removed}


def withdraw_feed(engine: Engine, feed_id: int, by: str, reason: str, client: str | None = None,
                  progress: WithdrawalProgress = _quiet, now: datetime | None = None) -> dict[str, Any]:
    """Withdraw the import ``feed_id`` (all four steps, see the module); ``by`` names who asked (a username).
    Returns the file, the match's figures, what was cancelled and removed, and the sweep's counts."""
    from matching.pipeline import run_match
    from tasks.sweep import sweep

    progress("withdrawing", "标记撤回 / marking the import withdrawn", 0.0)
    found, marked = begin_withdrawal(engine, feed_id, by, reason, client)
    progress("matching", "重新匹配 / matching everyone again", 0.0)
    stats = run_match(engine, progress=lambda step, fraction: progress("matching", step, fraction))
    progress("cancelling", "撤销无依据的任务、删除记录 / cancelling tasks nothing justifies, removing records", 0.0)
    done = finish_withdrawal(engine, feed_id, now)
    progress("sweeping", "派发任务与超时升级 / dispatching tasks and escalating", 0.0)
    swept = sweep(engine, now)
    return {"feed_file_id": feed_id, "file": found["file_name"], "source": found["source"], "marked_now": marked,
            **done, "match": {key: int(value) for key, value in stats.items()},
            "tasks": {key: int(value) for key, value in swept.items()}}
