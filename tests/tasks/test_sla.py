"""The SLA clock with a controllable time: overdue work escalates to the community, then to the town."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from accounts.actor import Actor
from tasks.repository import NewTask, TaskFilter, create_task, get_task, list_tasks, transition
from tasks.sla import escalate_overdue

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _escalations(conn, task_id: int) -> int:
    return conn.execute(text("SELECT count(*) FROM task_events WHERE task_id = :t AND action = 'escalate'"),
                        {"t": task_id}).scalar_one()


def test_overdue_tasks_escalate_once_per_level_and_in_order(work_engine):
    system = Actor.system()
    with work_engine.begin() as conn:
        late = create_task(conn, system, NewTask("lead_verification", "440605011001003", "SLA 测试"), START)
        done = create_task(conn, system, NewTask("lead_verification", "440605011001003", "按时完成"), START)
    assert late["due_at"] == (START + timedelta(minutes=120)).isoformat()
    with work_engine.begin() as conn:
        escalate_overdue(conn, START + timedelta(minutes=119))
        assert _escalations(conn, late["id"]) == 0
        worker = Actor(done["assignee_id"], done["assignee"], "worker")
        task = done
        for action, payload in (("accept", {}), ("start", {}), ("handle", {"result": "属实"})):
            task = transition(conn, worker, task["id"], action, task["version"], payload,
                              START + timedelta(minutes=30))["task"]
    with work_engine.begin() as conn:
        escalate_overdue(conn, START + timedelta(minutes=121))
        first = _escalations(conn, late["id"]) + _escalations(conn, done["id"])
        escalate_overdue(conn, START + timedelta(minutes=122))
        again = _escalations(conn, late["id"]) + _escalations(conn, done["id"]) - first
    with work_engine.connect() as conn:
        task = get_task(conn, system, late["id"], START + timedelta(minutes=121))
        overdue = list_tasks(conn, system, TaskFilter(grid_code="440605011001003", overdue=True),
                             START + timedelta(minutes=121))[0]
    assert again == 0 and first == 2  # the handled-but-unclosed task is overdue too: the supervisor must close it
    escalations = [e for e in task["events"] if e["action"] == "escalate"]
    assert [e["detail"]["level"] for e in escalations] == [1] and escalations[0]["detail"]["to"] == "community"
    assert "s440605011001" in escalations[0]["detail"]["supervisors"] and task["escalation_level"] == 1
    assert task["version"] == late["version"], "an escalation must not make a worker's version stale"
    assert late["id"] in {t["id"] for t in overdue}

    with work_engine.begin() as conn:
        escalate_overdue(conn, START + timedelta(minutes=241))
    with work_engine.connect() as conn:
        task = get_task(conn, system, late["id"], START + timedelta(minutes=241))
    levels = [(e["detail"]["level"], e["detail"]["to"], e["detail"]["to_code"]) for e in task["events"]
              if e["action"] == "escalate"]
    assert levels == [(1, "community", "440605011001"), (2, "town", "440605011")]
    assert "桂城街道" in task["events"][-1]["note"]


def test_a_task_found_very_late_gets_both_escalations_at_once(work_engine):
    system = Actor.system()
    with work_engine.begin() as conn:
        task = create_task(conn, system, NewTask("checkpoint_alert", "440605011001004", "迟到很久"), START)
        escalate_overdue(conn, START + timedelta(hours=5))
        seqs = conn.execute(text("SELECT seq, detail->>'level' FROM task_events WHERE task_id = :t AND "
                                 "action = 'escalate' ORDER BY seq"), {"t": task["id"]}).all()
    assert [(s, level) for s, level in seqs] == [(3, "1"), (4, "2")]


def test_a_granted_extension_moves_the_clock(work_engine):
    system = Actor.system()
    with work_engine.begin() as conn:
        task = create_task(conn, system, NewTask("lead_verification", "440605011001005", "延期"), START)
        worker = Actor(task["assignee_id"], task["assignee"], "worker")
        until = START + timedelta(hours=6)
        task = transition(conn, worker, task["id"], "request_extension", task["version"],
                          {"until": until.isoformat(), "reason": "等待核酸结果"}, START)["task"]
        task = transition(conn, system, task["id"], "grant_extension", task["version"], {}, START)["task"]
        escalate_overdue(conn, START + timedelta(hours=3))
        escalated = _escalations(conn, task["id"])
    assert task["due_at"] == until.isoformat() and task["extension_count"] == 1 and escalated == 0
