"""The closed loop of a task (GB/T 30428 practice), as a pure state machine.

    created ─dispatch→ dispatched ─accept→ accepted ─start→ in_progress ─handle→ handled ─close→ closed
                 ↑          └─decline→ declined ─dispatch┘                  ↑          └─rework┘
                 reassign (dispatched, accepted, in_progress → dispatched)
    cancel: any open stage → cancelled
    recall (the system, when the worker is disabled or loses the grid): dispatched, accepted, in_progress → created
    regrid (the system, when a boundary change moves the task to another grid): any open stage, the state stays
    request_extension / grant_extension / refuse_extension: the state stays, the due time may move

:func:`plan` checks the action against the state, the actor's role and the
payload, and says what changes; it touches nothing, so an illegal request
changes nothing. The repository applies the plan and appends the event.

>>> from accounts.actor import Actor
>>> state = TaskState(status="dispatched", kind="home_visit", assignee_id=7, due_at=None)
>>> plan(state, "accept", Actor(7, "w", "worker"), {}, now=None).to_status
'accepted'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

from accounts.actor import COMMANDER, SUPERVISOR, SYSTEM, WORKER, Actor
from gis.errors import Conflict, InvalidRequest, PermissionDenied
from tasks.kinds import task_kind

STATUSES = ("created", "dispatched", "accepted", "declined", "in_progress", "handled", "closed", "cancelled")
FINAL = ("closed", "cancelled")
OPEN = tuple(s for s in STATUSES if s not in FINAL)
STATUS_NAMES = {"created": "待派遣", "dispatched": "已派遣", "accepted": "已接收", "declined": "已退回",
                "in_progress": "处置中", "handled": "待核查", "closed": "已结案", "cancelled": "已撤销"}
SUPERVISING = (SUPERVISOR, COMMANDER, SYSTEM)
WORKING = (WORKER,)
TEMPERATURE_RANGE = (34.0, 43.0)
TEXT_LIMIT = 1000


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str | None  # None: the state stays
    roles: tuple[str, ...]


ACTIONS = {a.name: a for a in (
    Action("dispatch", "派遣", ("created", "declined"), "dispatched", SUPERVISING),
    Action("reassign", "改派", ("dispatched", "accepted", "in_progress"), "dispatched", SUPERVISING),
    Action("accept", "接收", ("dispatched",), "accepted", WORKING),
    Action("decline", "退回", ("dispatched",), "declined", WORKING),
    Action("start", "开始处置", ("accepted",), "in_progress", WORKING),
    Action("handle", "反馈", ("in_progress",), "handled", WORKING),
    Action("close", "结案", ("handled",), "closed", SUPERVISING),
    Action("rework", "返工", ("handled",), "in_progress", SUPERVISING),
    Action("cancel", "撤销", OPEN, "cancelled", SUPERVISING),
    Action("request_extension", "申请延期", ("dispatched", "accepted", "in_progress"), None, WORKING),
    Action("grant_extension", "批准延期", ("dispatched", "accepted", "in_progress"), None, SUPERVISING),
    Action("refuse_extension", "驳回延期", ("dispatched", "accepted", "in_progress"), None, SUPERVISING),
    Action("recall", "收回", ("dispatched", "accepted", "in_progress"), "created", (SYSTEM,)),
    Action("regrid", "调整网格", OPEN, None, (SYSTEM,)),
)}


EXTENSION_DECISIONS = ("grant_extension", "refuse_extension")
NEEDS_REASON = ("decline", "rework", "cancel", "refuse_extension", "request_extension")


def available_actions(status: str, role: str, extension_pending: bool) -> list[Action]:
    """The actions ``role`` may take on a task in ``status``: what a page offers (``plan`` still decides).

    >>> [a.name for a in available_actions("handled", "supervisor", False)]
    ['close', 'rework', 'cancel']
    """
    return [a for a in ACTIONS.values() if status in a.sources and role in a.roles
            and (a.name not in EXTENSION_DECISIONS or extension_pending)
            and (a.name != "request_extension" or not extension_pending)]


@dataclass(frozen=True)
class TaskState:
    """What the lifecycle needs to know of a task."""

    status: str
    kind: str
    assignee_id: int | None
    due_at: datetime | None
    extension_requested_until: datetime | None = None


class TaskUpdates(TypedDict, total=False):
    """Task columns an action sets, each to the value given."""

    assignee_id: int | None  # None on dispatch/reassign: the repository picks the worker
    dispatched_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    due_at: datetime | None
    escalation_level: int
    extension_requested_until: datetime | None


Counter = Literal["rework_count", "extension_count"]  # task columns an action adds one to


@dataclass
class Plan:
    """What a legal action changes: the new state, task columns (set, or counted up by one), and the event's
    note, detail and point."""

    action: str
    from_status: str | None  # None: the task's first event (create)
    to_status: str
    updates: TaskUpdates = field(default_factory=TaskUpdates)
    increments: list[Counter] = field(default_factory=list)
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    location: tuple[float, float] | None = None


def _text(payload: dict[str, Any], name: str, required: bool, what: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{what}（{name}）必须是文字 / {name} must be text", name)
    value = (value or "").strip()
    if required and not value:
        raise InvalidRequest(f"请填写{what}（{name}）/ {name} is required for this action", name)
    if len(value) > TEXT_LIMIT:
        raise InvalidRequest(f"{what}过长（最多 {TEXT_LIMIT} 字）/ {name} is longer than {TEXT_LIMIT} characters", name)
    return value or None


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(f"{name} 必须是数字 / {name} must be a number", name)
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest(f"{name} 必须是数字 / {name} must be a number", name) from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{name} 必须是有限数字 / {name} must be finite", name)
    return number


def parse_location(payload: dict[str, Any]) -> tuple[float, float] | None:
    """The worker's GPS point ``{"location": {"lon": .., "lat": ..}}`` (WGS84), checked to be on the Earth."""
    location = payload.get("location")
    if location in (None, {}):
        return None
    if not isinstance(location, dict):
        raise InvalidRequest("location 必须是 {lon, lat} / location must be an object {lon, lat}", "location")
    lon, lat = _number(location.get("lon"), "location.lon"), _number(location.get("lat"), "location.lat")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidRequest(f"坐标超出范围 / location ({lon}, {lat}) is not a WGS84 point", "location")
    return lon, lat


def parse_time(value: object, name: str) -> datetime:
    """An ISO 8601 time with its offset (a naive time would be ambiguous across servers)."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} 必须是 ISO 8601 时间 / {name} must be an ISO 8601 time", name)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} 不是有效时间：{value} / {name} is not an ISO 8601 time", name) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} 需带时区，如 +08:00 / {name} needs a UTC offset", name)
    return moment


def _refuse(state: TaskState, action: Action) -> Conflict:
    allowed = "、".join(STATUS_NAMES[s] for s in action.sources)
    return Conflict(f"任务当前为「{STATUS_NAMES[state.status]}」，不能{action.label}（仅限：{allowed}）/ cannot "
                    f"{action.name} a task that is {state.status}", "illegal_transition")


def permitted(action_name: str, actor: Actor) -> Action:
    """The action ``action_name`` if the actor's role may do it at all (checked before anything else)."""
    action = ACTIONS.get(action_name)
    if action is None:
        raise InvalidRequest(f"未知操作 {action_name}，可选：{', '.join(ACTIONS)} / unknown action", "action")
    if actor.role not in action.roles:
        raise PermissionDenied(f"该角色不能执行「{action.label}」/ the role {actor.role} may not {action.name}")
    return action


def plan(state: TaskState, action_name: str, actor: Actor, payload: dict[str, Any], now: datetime | None) -> Plan:
    """Check ``action_name`` on ``state`` by ``actor`` with ``payload``; return what changes or raise.

    Raises InvalidRequest (unknown action, bad payload), PermissionDenied (not
    this role's action, or not the assignee) or Conflict (not from this state).
    """
    action = permitted(action_name, actor)
    if actor.role == WORKER and state.assignee_id != actor.user_id:
        raise PermissionDenied("只有被派遣的网格员可以操作此任务 / only the assigned worker may do this")
    if state.status not in action.sources:
        raise _refuse(state, action)
    result = Plan(action.name, state.status, action.target or state.status)
    result.note = _text(payload, "note", False, "备注")
    result.location = parse_location(payload)
    return _ACTION_RULES.get(action.name, lambda *_: result)(result, state, payload, now)


def _assign(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    assignee = payload.get("assignee_id")
    if assignee is not None and (isinstance(assignee, bool) or not isinstance(assignee, int)):
        raise InvalidRequest("assignee_id 必须是用户编号 / assignee_id must be a user id", "assignee_id")
    if result.action == "reassign" and assignee is None:
        raise InvalidRequest("改派须指定网格员（assignee_id）/ reassign needs assignee_id", "assignee_id")
    if result.action == "reassign" and assignee == state.assignee_id:
        raise InvalidRequest("改派对象与当前网格员相同 / the task is already assigned to that worker", "assignee_id")
    result.updates["assignee_id"] = assignee  # None: the repository auto-dispatches
    result.updates["dispatched_at"] = now
    result.detail["previous_assignee_id"] = state.assignee_id
    return result


def _with_reason(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    result.detail["reason"] = _text(payload, "reason", True, "原因")
    if result.action == "decline":
        result.updates["assignee_id"] = None
        result.detail["declined_by"] = state.assignee_id
    elif result.action == "rework":
        result.increments.append("rework_count")
    elif result.action == "cancel":
        result.updates["cancelled_at"] = now
    return result


def _recall(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    """Back to dispatch, the assignee (and any extension he asked) cleared: why is kept in the event."""
    result.detail.update(reason=_text(payload, "reason", True, "原因"), previous_assignee_id=state.assignee_id)
    result.updates["assignee_id"] = None
    result.updates["dispatched_at"] = None
    result.updates["extension_requested_until"] = None
    return result


def _regrid(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    """A boundary change moved the task to another grid (:mod:`grids.changes`): from where to where, and why."""
    result.detail.update(reason=_text(payload, "reason", True, "原因"),
                         from_grid=_text(payload, "from_grid", True, "原网格"),
                         to_grid=_text(payload, "to_grid", True, "新网格"))
    return result


def _handle(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    result.detail["result"] = _text(payload, "result", True, "处置结果")
    temperature = payload.get("temperature")
    if temperature is None and task_kind(state.kind).needs_temperature:
        raise InvalidRequest("此类任务须填写体温（temperature）/ this kind of task needs a temperature",
                             "temperature")
    if temperature is not None:
        value = _number(temperature, "temperature")
        low, high = TEMPERATURE_RANGE
        if not low <= value <= high:
            raise InvalidRequest(f"体温 {value} ℃ 不合理（{low}–{high}）/ temperature out of range", "temperature")
        result.detail["temperature"] = round(value, 1)
    photos = payload.get("photos") or []
    if not isinstance(photos, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in photos):
        raise InvalidRequest("photos 必须是照片编号列表 / photos must be a list of photo ids", "photos")
    result.detail["photos"] = sorted(set(photos))
    result.updates["handled_at"] = now
    return result


def _close(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    result.updates["closed_at"] = now
    result.detail["on_time"] = state.due_at is None or now <= state.due_at
    return result


def _request_extension(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    if state.extension_requested_until is not None:
        raise Conflict("已有待审批的延期申请 / an extension request is already waiting", "extension_pending")
    until = parse_time(payload.get("until"), "until")
    if state.due_at is not None and until <= state.due_at:
        raise InvalidRequest("延期后的时限须晚于当前时限 / until must be later than the current due time", "until")
    result.detail.update(until=until.isoformat(), reason=_text(payload, "reason", True, "延期原因"))
    result.updates["extension_requested_until"] = until
    return result


def _decide_extension(result: Plan, state: TaskState, payload: dict[str, Any], now: datetime) -> Plan:
    if state.extension_requested_until is None:
        raise Conflict("没有待审批的延期申请 / no extension request is waiting", "no_extension_pending")
    result.updates["extension_requested_until"] = None
    if result.action == "grant_extension":
        result.updates["due_at"] = state.extension_requested_until
        result.updates["escalation_level"] = 0
        result.increments.append("extension_count")
        result.detail.update(previous_due_at=state.due_at.isoformat() if state.due_at else None,
                             due_at=state.extension_requested_until.isoformat())
    else:
        result.detail["reason"] = _text(payload, "reason", True, "驳回原因")
    return result


_ACTION_RULES = {"dispatch": _assign, "reassign": _assign, "decline": _with_reason, "rework": _with_reason,
                 "cancel": _with_reason, "handle": _handle, "close": _close,
                 "request_extension": _request_extension, "grant_extension": _decide_extension,
                 "refuse_extension": _decide_extension, "recall": _recall, "regrid": _regrid}
