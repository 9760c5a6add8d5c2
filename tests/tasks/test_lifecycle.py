"""The lifecycle as a pure state machine: every action from every state, by every role."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.actor import Actor
from gis.errors import Conflict, InvalidRequest, PermissionDenied
from tasks.lifecycle import ACTIONS, FINAL, OPEN, STATUSES, TaskState, plan

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
DUE = NOW + timedelta(hours=2)
WORKER = Actor(7, "w", "worker", grid_ids=frozenset({1}))
OTHER_WORKER = Actor(8, "w2", "worker", grid_ids=frozenset({1}))
SUPERVISOR = Actor(3, "s", "supervisor", grid_ids=frozenset({1}))
SYSTEM = Actor.system()
VALID = {  # a payload each action accepts
    "dispatch": {"assignee_id": 7}, "reassign": {"assignee_id": 9}, "accept": {}, "start": {},
    "decline": {"reason": "不在辖区"}, "handle": {"result": "已走访", "temperature": 36.6,
                                                "location": {"lon": 113.1, "lat": 23.0}},
    "close": {}, "rework": {"reason": "未测温"}, "cancel": {"reason": "重复任务"},
    "request_extension": {"until": (DUE + timedelta(hours=3)).isoformat(), "reason": "住户不在家"},
    "grant_extension": {}, "refuse_extension": {"reason": "不予延期"}, "recall": {"reason": "网格员已停用"},
    "regrid": {"reason": "网格边界调整", "from_grid": "440605011001001", "to_grid": "440605011001002"},
}
EXPECTED = {  # (action, from) -> to, the whole closed loop of DESIGN.md §3
    ("dispatch", "created"): "dispatched", ("dispatch", "declined"): "dispatched",
    **{("reassign", s): "dispatched" for s in ("dispatched", "accepted", "in_progress")},
    ("accept", "dispatched"): "accepted", ("decline", "dispatched"): "declined",
    ("start", "accepted"): "in_progress", ("handle", "in_progress"): "handled",
    ("close", "handled"): "closed", ("rework", "handled"): "in_progress",
    **{("cancel", s): "cancelled" for s in OPEN},
    **{("recall", s): "created" for s in ("dispatched", "accepted", "in_progress")},
    **{("regrid", s): s for s in OPEN},
    **{(a, s): s for a in ("request_extension", "grant_extension", "refuse_extension")
       for s in ("dispatched", "accepted", "in_progress")},
}


def _state(status: str, pending: bool) -> TaskState:
    return TaskState(status, "home_visit", 7, DUE, DUE + timedelta(hours=3) if pending else None)


def _actor(action: str) -> Actor:
    if ACTIONS[action].roles == ("system",):
        return SYSTEM
    return WORKER if ACTIONS[action].roles == ("worker",) else SUPERVISOR


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("status", STATUSES)
def test_every_action_from_every_state(action, status):
    pending = action in ("grant_extension", "refuse_extension")
    state = _state(status, pending)
    if (action, status) in EXPECTED:
        result = plan(state, action, _actor(action), VALID[action], NOW)
        assert (result.from_status, result.to_status) == (status, EXPECTED[(action, status)])
    else:
        with pytest.raises(Conflict) as refused:
            plan(state, action, _actor(action), VALID[action], NOW)
        assert refused.value.code == "illegal_transition" and action in str(refused.value)


def test_final_states_allow_nothing():
    for status in FINAL:
        assert not any(status in a.sources for a in ACTIONS.values())


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_role_may_do_only_its_own_actions(action):
    status = ACTIONS[action].sources[0]
    state = _state(status, action in ("grant_extension", "refuse_extension"))
    wrong = SUPERVISOR if _actor(action) is WORKER else WORKER
    with pytest.raises(PermissionDenied):
        plan(state, action, wrong, VALID[action], NOW)
    for role in ("reporter", "admin"):
        with pytest.raises(PermissionDenied):
            plan(state, action, Actor(5, role, role), VALID[action], NOW)


def test_only_the_assigned_worker_acts():
    with pytest.raises(PermissionDenied, match="assigned"):
        plan(_state("dispatched", False), "accept", OTHER_WORKER, {}, NOW)


@pytest.mark.parametrize(("action", "payload", "field"), [
    ("decline", {}, "reason"),
    ("cancel", {"reason": "  "}, "reason"),
    ("rework", {}, "reason"),
    ("handle", {"temperature": 36.5}, "result"),
    ("handle", {"result": "已走访"}, "temperature"),
    ("handle", {"result": "已走访", "temperature": 48}, "temperature"),
    ("handle", {"result": "已走访", "temperature": "热"}, "temperature"),
    ("handle", {"result": "已走访", "temperature": 36.5, "location": {"lon": 200, "lat": 23}}, "location"),
    ("handle", {"result": "已走访", "temperature": 36.5, "photos": ["a"]}, "photos"),
    ("request_extension", {"reason": "x"}, "until"),
    ("request_extension", {"until": "2026-11-25T20:00:00", "reason": "x"}, "until"),
    ("request_extension", {"until": NOW.isoformat(), "reason": "x"}, "until"),
    ("reassign", {}, "assignee_id"),
    ("dispatch", {"assignee_id": "7"}, "assignee_id"),
])
def test_bad_payloads_name_the_field(action, payload, field):
    status = {"handle": "in_progress", "request_extension": "accepted", "reassign": "accepted"}.get(
        action, ACTIONS[action].sources[0])
    with pytest.raises(InvalidRequest) as refused:
        plan(_state(status, False), action, _actor(action), payload, NOW)
    assert refused.value.field == field


def test_kinds_without_a_temperature_do_not_need_one():
    state = TaskState("in_progress", "lead_verification", 7, DUE)
    assert plan(state, "handle", WORKER, {"result": "线索属实"}, NOW).detail["result"] == "线索属实"


def test_extensions_one_at_a_time_and_only_when_asked():
    with pytest.raises(Conflict, match="already waiting"):
        plan(_state("accepted", True), "request_extension", WORKER, VALID["request_extension"], NOW)
    with pytest.raises(Conflict, match="no extension"):
        plan(_state("accepted", False), "grant_extension", SUPERVISOR, {}, NOW)
    granted = plan(_state("accepted", True), "grant_extension", SUPERVISOR, {}, NOW)
    assert granted.updates["due_at"] == DUE + timedelta(hours=3) and granted.updates["escalation_level"] == 0
    assert granted.increments == ["extension_count"] and "extension_count" not in granted.updates


def test_rework_counts_up_and_nothing_else_does():
    assert plan(_state("handled", False), "rework", SUPERVISOR, VALID["rework"], NOW).increments == ["rework_count"]
    assert plan(_state("handled", False), "close", SUPERVISOR, {}, NOW).increments == []


def test_closing_records_whether_it_was_on_time():
    assert plan(_state("handled", False), "close", SUPERVISOR, {}, NOW).detail["on_time"] is True
    late = DUE + timedelta(seconds=1)
    assert plan(_state("handled", False), "close", SUPERVISOR, {}, late).detail["on_time"] is False
