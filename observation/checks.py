"""Recording a check-in: which of a plan's checks a report counts for, on time or late, and what a fever sets off.

A report (:class:`CheckReport`: a temperature, the symptoms, a note) comes from the worker's field app or from the
person's own self-report link. It counts for the earliest check of the plan still ``due`` (or already swept
``missed``) whose window holds the moment it arrives: from ``opens`` before the check's time to ``grace`` after it,
both ends included, so a report at exactly due + grace still counts (late). A report within no window (a third
reading in the afternoon) is kept as an extra ``done`` row due at the moment it came. A temperature at or above
``fever_at``, or a symptom, goes on to :func:`observation.fever.escalate` in the same transaction.

The plan's row is locked first, so two reports of one check at the same moment are taken one after the other: the
second finds the check done and, being the same report at the same moment (a retried tap that slipped past the API
layer's Idempotency-Key), is answered with what the first stored instead of being stored twice.

>>> parse_check({"temperature": "37.25", "symptoms": ["cough", "cough"]})
CheckReport(temperature=37.3, symptoms=('cough',), note=None)
>>> parse_check({"temperature": 36.5, "symptoms": ["none"]}).abnormal(37.3)
False
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, text

from accounts.actor import Actor
from gis.errors import Conflict, InvalidRequest, NotFound
from observation.policy import ObservationPolicy, observation_policy

SYMPTOMS = ("none", "cough", "fever", "other")
SYMPTOM_NAMES = {"none": "无", "cough": "咳嗽", "fever": "发热", "other": "其他"}
CHANNELS = ("worker", "self")
LOWEST, HIGHEST = 34.0, 43.0  # a thermometer's reading outside these is a typing slip, not a temperature
NOTE_LENGTH = 200
PLAN_COLUMNS = "id, person_key, grid_id, rule_id, starts_at, ends_at, status"
# a run of digits as long as a phone's or an ID number's tail: never stored from a note (the plan's tables hold no
# ID number, name or phone)
LONG_NUMBER = re.compile(r"\d{5,}[\dXx]")


@dataclass(frozen=True)
class CheckReport:
    """What one check-in reports: the temperature (℃, one decimal; None when not taken), the symptoms (from
    :data:`SYMPTOMS`; empty or ``("none",)`` for none) and a short note."""

    temperature: float | None
    symptoms: tuple[str, ...]
    note: str | None = None

    @property
    def symptomatic(self) -> bool:
        """Whether a symptom other than "none" is reported."""
        return any(s != "none" for s in self.symptoms)

    def feverish(self, fever_at: float) -> bool:
        """Whether the temperature is a fever (at or above ``fever_at``)."""
        return self.temperature is not None and self.temperature >= fever_at

    def abnormal(self, fever_at: float) -> bool:
        """Whether the report calls for a medical assessment: a fever or a symptom."""
        return self.feverish(fever_at) or self.symptomatic


def _temperature(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest("体温须为数字 / temperature must be a number", "temperature")
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest("体温须为数字 / temperature must be a number", "temperature") from None
    if not math.isfinite(number):
        raise InvalidRequest("体温须为数字 / temperature must be a number", "temperature")
    # one decimal, as stored (numeric(3,1)), rounded half up like the thermometer's display: 37.25 → 37.3
    rounded = float(Decimal(str(number)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    if not LOWEST <= rounded <= HIGHEST:
        raise InvalidRequest(f"体温须在 {LOWEST}–{HIGHEST} ℃ 之间 / temperature must be between {LOWEST} and "
                             f"{HIGHEST} ℃", "temperature")
    return rounded


def _symptoms(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) for s in value):
        raise InvalidRequest("症状须为列表 / symptoms must be a list", "symptoms")
    unknown = [s for s in value if s not in SYMPTOMS]
    if unknown:
        raise InvalidRequest(f"未知症状 {unknown[0][:20]} / unknown symptom: one of {', '.join(SYMPTOMS)}",
                             "symptoms")
    chosen = tuple(dict.fromkeys(value))  # each once, in the order given
    if "none" in chosen and len(chosen) > 1:
        raise InvalidRequest("“无症状”不能与其他症状同选 / \"none\" cannot go with a symptom", "symptoms")
    return chosen


def parse_check(payload: dict) -> CheckReport:
    """The report of a check-in's fields (``temperature``, ``symptoms``, ``note``), refused with the field named
    when one is wrong: a temperature from 34.0 to 43.0 ℃, symptoms from :data:`SYMPTOMS`, a temperature or a
    symptom answer at least."""
    if not isinstance(payload, dict):
        raise InvalidRequest("请求体须为对象 / the body must be an object", "body")
    unknown = sorted(set(payload) - {"temperature", "symptoms", "note"})
    if unknown:
        raise InvalidRequest(f"未知字段 {unknown[0][:30]} / unknown field", unknown[0][:30])
    temperature = _temperature(payload.get("temperature"))
    symptoms = _symptoms(payload.get("symptoms"))
    if temperature is None and not symptoms:
        raise InvalidRequest("请填写体温或症状 / give a temperature or the symptoms", "temperature")
    note = payload.get("note")
    if note is not None and not isinstance(note, str):
        raise InvalidRequest("备注须为文字 / note must be a text", "note")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_LENGTH:
        raise InvalidRequest(f"备注不超过 {NOTE_LENGTH} 字 / note: at most {NOTE_LENGTH} characters", "note")
    return CheckReport(temperature, symptoms, LONG_NUMBER.sub("***", note) if note else None)


def describe(report: CheckReport) -> str:
    """A report in a few words for events and task details ("38.1 ℃；症状 咳嗽"): no personal data."""
    parts = [] if report.temperature is None else [f"{report.temperature:.1f} ℃"]
    if report.symptomatic:
        parts.append("症状 / symptoms " + "、".join(SYMPTOM_NAMES[s] for s in report.symptoms))
    elif report.symptoms:
        parts.append("无症状 / no symptom")
    return "；".join(parts)


def locked_plan(conn: Connection, plan_id: int, actor: Actor | None, lock: bool = True) -> Any:
    """The plan's row, locked for the rest of the transaction (unless ``lock`` is false), if it is in the actor's
    scope (``actor`` None: the caller has verified a self-report link for it); else NotFound, as for a plan that
    does not exist."""
    row = conn.execute(text(f"SELECT {PLAN_COLUMNS} FROM observation_plans WHERE id = :id"
                            + (" FOR UPDATE" if lock else "")), {"id": plan_id}).one_or_none()
    if row is None or (actor is not None and not actor.sees_grid(row.grid_id)):
        raise NotFound(f"观察计划 #{plan_id} 不存在或不在您的范围内 / no observation plan #{plan_id} in your scope")
    return row


def _counted_check(conn: Connection, plan_id: int, now: datetime, policy: ObservationPolicy) -> Any:
    """The check a report at ``now`` counts for (see the module's text), locked; None when there is none."""
    return conn.execute(text(
        "SELECT id, due_at, status FROM observation_checks WHERE plan_id = :p AND status IN ('due', 'missed') "
        "AND due_at - :opens <= :now AND :now <= due_at + :grace ORDER BY due_at LIMIT 1 FOR UPDATE"),
        {"p": plan_id, "now": now, "opens": policy.opens, "grace": policy.grace}).one_or_none()


def _same_report(conn: Connection, plan_id: int, report: CheckReport, now: datetime) -> Any:
    """A check of this plan already done with this very report at this very moment (a retried tap), if any."""
    return conn.execute(text(
        "SELECT id, due_at, status FROM observation_checks WHERE plan_id = :p AND status = 'done' "
        "AND reported_at = :now AND temperature IS NOT DISTINCT FROM :t "
        "AND coalesce(symptoms, '{}') = CAST(:s AS text[]) ORDER BY due_at LIMIT 1"),
        {"p": plan_id, "now": now, "t": report.temperature, "s": list(report.symptoms)}).one_or_none()


def _event(conn: Connection, plan: Any, kind: str, now: datetime, detail: str | None, actor: Actor | None,
           task_id: int | None = None) -> None:
    conn.execute(text("INSERT INTO observation_events (plan_id, person_key, kind, at, detail, task_id, actor_id) "
                      "VALUES (:p, :k, :kind, :at, :d, :t, :a)"),
                 {"p": plan.id, "k": plan.person_key, "kind": kind, "at": now, "d": detail, "t": task_id,
                  "a": actor.user_id if actor else None})


def record_check(conn: Connection, plan_id: int, report: CheckReport, channel: str, now: datetime,
                 actor: Actor | None, policy: ObservationPolicy | None = None) -> dict[str, Any]:
    """Record a check-in of the plan ``plan_id`` at ``now`` (see the module's text) in the caller's transaction.

    ``actor`` None is a self-report (the caller verified the link); otherwise the plan must be in his scope
    (NotFound). A plan closed or not yet begun refuses it (Conflict). Writes the check, a ``check`` event and, for a
    fever or a symptom, what :func:`observation.fever.escalate` does. Returns check_id, plan_id, due_at, status,
    late (reported after the check's time), fever (the report called for a medical assessment) and task_ids (the
    tasks it raised).
    """
    from observation.fever import escalate

    if channel not in CHANNELS:
        raise InvalidRequest(f"未知渠道 {channel} / unknown channel: one of {', '.join(CHANNELS)}", "channel")
    if (actor is None) != (channel == "self"):
        raise InvalidRequest("自报须经本人链接，网格员记录须登录 / a self-report comes through the person's link, a "
                             "worker's record from a signed-in worker", "channel")
    if actor is not None:
        actor.require_rows()
    policy = policy or observation_policy()
    abnormal = report.abnormal(policy.fever_at)
    if abnormal:
        # the code change takes the matcher's lock: taken before the plan's, in the order a match run takes them,
        # once the plan is known to be in scope (nobody outside it waits for a match to be refused)
        from matching.repository import lock_match

        locked_plan(conn, plan_id, actor, lock=False)
        lock_match(conn)
    plan = locked_plan(conn, plan_id, actor)
    if plan.status != "active" or not plan.starts_at <= now < plan.ends_at:
        raise Conflict(f"观察计划 #{plan_id} 已结束或尚未开始 / observation plan #{plan_id} is not in force",
                       code="plan_not_active")
    again = _same_report(conn, plan_id, report, now)
    if again is not None:
        return _answer(again, plan_id, abnormal, now, [])
    check = _counted_check(conn, plan_id, now, policy)
    values = {"now": now, "t": report.temperature, "s": list(report.symptoms), "c": channel,
              "by": actor.user_id if actor else None}
    if check is not None:
        conn.execute(text("UPDATE observation_checks SET status = 'done', reported_at = :now, temperature = :t, "
                          "symptoms = :s, channel = :c, recorded_by = :by WHERE id = :id"), {**values, "id": check.id})
        check_id, due_at = check.id, check.due_at
    else:  # within no check's window: an extra reading, due when it came (a microsecond on when another reading
        # of the plan, different, came at the very same moment: the plan's row lock keeps this from racing)
        extra = conn.execute(text(
            "INSERT INTO observation_checks (plan_id, due_at, status, reported_at, temperature, symptoms, channel, "
            "recorded_by) SELECT :p, greatest(CAST(:now AS timestamptz), max(due_at) + interval '1 microsecond'), "
            "'done', :now, :t, :s, :c, :by FROM observation_checks WHERE plan_id = :p AND due_at >= :now "
            "AND due_at < CAST(:now AS timestamptz) + interval '1 second' "
            "RETURNING id, due_at"), {**values, "p": plan_id}).one()
        check_id, due_at = extra.id, extra.due_at
    late = now > due_at
    how = "自报 / self-report" if channel == "self" else "网格员 / worker"
    timing = "补报 / late" if late else ("按时 / on time" if check is not None else "额外 / extra")
    detail = f"{describe(report)}（{how}，{timing}）" + (f"：{report.note}" if report.note else "")
    _event(conn, plan, "check", now, detail, actor)
    task_ids: list[int] = []
    if abnormal:
        task_ids = escalate(conn, plan, check_id, report, now, actor, policy)["task_ids"]
    return {"check_id": check_id, "plan_id": plan_id, "due_at": due_at.isoformat(), "status": "done", "late": late,
            "fever": abnormal, "task_ids": task_ids}


def _answer(row: Any, plan_id: int, abnormal: bool, now: datetime, task_ids: list[int]) -> dict[str, Any]:
    return {"check_id": row.id, "plan_id": plan_id, "due_at": row.due_at.isoformat(), "status": row.status,
            "late": now > row.due_at, "fever": abnormal, "task_ids": task_ids}
