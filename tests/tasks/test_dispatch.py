"""Auto-dispatch: fewest open tasks first; with nobody on duty anywhere near, the task waits for a supervisor."""

from datetime import UTC, datetime

from sqlalchemy import text

from accounts.actor import Actor
from tasks.repository import NewTask, create_task, pick_worker

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def test_the_least_loaded_worker_on_duty_gets_the_task(work_engine):
    with work_engine.connect() as conn, conn.begin() as transaction:
        grid_id = conn.execute(text("SELECT id FROM grids WHERE code = '440605011001008'")).scalar_one()
        workers = conn.execute(text("SELECT u.id FROM users u JOIN user_grids ug ON ug.user_id = u.id "
                                    "WHERE ug.grid_id = :g AND u.role = 'worker' ORDER BY u.username"),
                               {"g": grid_id}).scalars().all()
        first = pick_worker(conn, grid_id)
        task = create_task(conn, Actor.system(), NewTask("area_sweep", "440605011001008", "负载均衡"), NOW)
        assert task["assignee_id"] == first and first in workers
        assert pick_worker(conn, grid_id) != first, "the next task goes to someone with fewer open tasks"
        transaction.rollback()


def test_with_nobody_on_duty_the_task_stays_created_and_nothing_is_lost(work_engine):
    with work_engine.connect() as conn, conn.begin() as transaction:
        conn.execute(text("UPDATE users SET on_duty = false WHERE role = 'worker'"))
        task = create_task(conn, Actor.system(), NewTask("lead_verification", "440605011001008", "无人在岗"), NOW)
        events = conn.execute(text("SELECT action FROM task_events WHERE task_id = :t"), {"t": task["id"]}).scalars()
        assert task["status"] == "created" and task["assignee_id"] is None and list(events) == ["create"]
        transaction.rollback()
