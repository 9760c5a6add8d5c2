"""The sweep's home visits are the tasks that one ``create_task`` after another would make: the same rows and
events, and the same workers, each pick seeing the picks before it (load balancing). Hand-built: two touching
grids, the first with nobody of its own on duty (its visits go to the neighbour's workers), the second with two
workers on duty, and a third grid far away with nobody near (its visit waits, created, for a supervisor)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from sqlalchemy import text

from accounts.actor import Actor
from observation.policy import observation_policy
from observation.schedule import BEIJING, VISIT_KIND, VISIT_SOURCE, VISIT_TITLE, make_checks, sweep_missed
from tasks.repository import OPEN_SQL, NewTask, create_task

POLICY = observation_policy()  # 08:00 and 20:00 Beijing, grace 120 minutes, a visit after 2 misses in a row
DAY = date(2026, 12, 16)
MORNING_MISSED = datetime(2026, 12, 16, 2, 0, 1, tzinfo=UTC)  # 10:00:01 Beijing
EVENING_MISSED = datetime(2026, 12, 16, 14, 0, 1, tzinfo=UTC)  # 22:00:01 Beijing


def person_with_plan(conn, grid_id: int) -> int:
    """A yellow person placed at a point of grid ``grid_id``, and his plan; the plan's id."""
    key = "obs-disp-" + secrets.token_hex(6)
    conn.execute(text(
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, confidence, grid_id, "
        "geom, set_at, expires_at) SELECT :k, '440605********0012', '钱*', 'yellow', 'r', 'yellow-key-area', 1.0, "
        "g.id, ST_PointOnSurface(g.geom), :s, :e FROM grids g WHERE g.id = :g"),
        {"k": key, "g": grid_id, "s": datetime(2026, 12, 10, tzinfo=UTC), "e": datetime(2026, 12, 24, tzinfo=UTC)})
    return conn.execute(text(
        "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, status, "
        "token_nonce) VALUES (:k, :g, 'yellow-key-area', :s, :e, :m, 'active', 'n') RETURNING id"),
        {"k": key, "g": grid_id, "s": datetime(2026, 12, 15, tzinfo=UTC), "e": datetime(2026, 12, 24, tzinfo=UTC),
         "m": [480, 1200]}).scalar_one()


def tasks_of(conn, plan_ids: list[int]) -> list[tuple]:
    """Each plan's home visit (by plan) as stored: the task's columns that dispatch and the kind set, and its
    events."""
    rows = conn.execute(text(
        "SELECT pl.id AS plan_id, t.id, t.kind, t.status, t.priority, t.title, t.detail, t.source, t.grid_id, "
        "t.person_key, t.assignee_id, t.created_by, t.created_at, t.dispatched_at, t.sla_minutes, t.due_at, "
        "t.version, ST_AsText(t.geom) AS place FROM observation_plans pl "
        "JOIN tasks t ON t.person_key = pl.person_key AND t.kind = :kind "
        "WHERE pl.id = ANY(:plans) ORDER BY pl.id"), {"plans": plan_ids, "kind": VISIT_KIND}).all()
    out = []
    for row in rows:
        events = conn.execute(text(
            "SELECT seq, action, from_status, to_status, actor, actor_role, at, note, detail, geom IS NULL "
            "FROM task_events WHERE task_id = :t ORDER BY seq"), {"t": row.id}).all()
        out.append((tuple(v for k, v in row._asdict().items() if k != "id"), [tuple(e) for e in events]))
    return out


def test_the_sweeps_visits_are_those_of_one_create_task_after_another(conn):
    grid_a = conn.execute(text("SELECT id FROM grids WHERE code = '440605011001001'")).scalar_one()
    grid_b = conn.execute(text(
        "SELECT n.id FROM grids g JOIN grids n ON n.id <> g.id AND ST_Intersects(n.geom, g.geom) "
        "WHERE g.id = :a AND (SELECT count(*) FROM user_grids ug JOIN users u ON u.id = ug.user_id "
        "WHERE ug.grid_id = n.id AND u.role = 'worker' AND u.active) >= 2 "
        "ORDER BY n.id LIMIT 1"), {"a": grid_a}).scalar_one()
    grid_c = conn.execute(text(
        "SELECT g.id FROM grids g, grids a WHERE a.id = :a AND ST_Distance(g.geom, a.geom) > 0.05 "
        "ORDER BY g.id LIMIT 1"), {"a": grid_a}).scalar_one()
    # on duty: two workers of grid B, nobody else
    pair = conn.execute(text(
        "SELECT u.id FROM users u JOIN user_grids ug ON ug.user_id = u.id WHERE ug.grid_id = :b "
        "AND u.role = 'worker' AND u.active ORDER BY u.username LIMIT 2"), {"b": grid_b}).scalars().all()
    conn.execute(text("UPDATE users SET on_duty = (id = ANY(:pair)) WHERE role = 'worker'"), {"pair": pair})
    assert not conn.execute(text(f"SELECT EXISTS (SELECT FROM tasks WHERE assignee_id = ANY(:pair) "
                                 f"AND status IN {OPEN_SQL})"), {"pair": pair}).scalar()
    # one of the pair already carries an open task: the first picks go to the other
    create_task(conn, Actor.system(), NewTask("area_sweep", conn.execute(text(
        "SELECT code FROM grids WHERE id = :b"), {"b": grid_b}).scalar_one(), "已有任务", assignee_id=pair[1]),
        MORNING_MISSED)
    plans = [person_with_plan(conn, g) for g in (grid_a, grid_b, grid_a, grid_c, grid_b, grid_a)]
    make_checks(conn, DAY)
    sweep_missed(conn, MORNING_MISSED, POLICY)  # the first miss of each: no visit yet

    swept = conn.begin_nested()
    counts = sweep_missed(conn, EVENING_MISSED, POLICY)
    by_sweep = tasks_of(conn, plans)
    links = conn.execute(text(
        "SELECT e.plan_id, e.at, e.detail, t.detail AS task_detail FROM observation_events e "
        "JOIN tasks t ON t.id = e.task_id WHERE e.kind = 'visit_task' AND e.plan_id = ANY(:p) ORDER BY e.id"),
        {"p": plans}).all()
    swept.rollback()

    assert counts["visits"] >= len(plans) and counts["failed"] == 0
    assert [link.plan_id for link in links] == sorted(plans), "one visit_task event a plan, in the plans' order"
    assert all(link.at == EVENING_MISSED and link.detail == link.task_detail for link in links)

    # the same visits, one create_task after another in the sweep's order (by plan), from the same state
    one_by_one = conn.begin_nested()
    newest = datetime(2026, 12, 16, 12, 0, tzinfo=UTC).astimezone(BEIJING).strftime("%m-%d %H:%M")
    for plan_id in sorted(plans):
        row = conn.execute(text(
            "SELECT g.code, pl.person_key, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat FROM observation_plans pl "
            "JOIN grids g ON g.id = pl.grid_id JOIN persons p ON p.person_key = pl.person_key WHERE pl.id = :p"),
            {"p": plan_id}).one()
        detail = (f"居家观察连续 2 次未报体温（最近应报于 {newest}），请入户测温 / 2 checks missed in a row during "
                  f"home observation (the last due {newest} Beijing time): visit and take the temperature")
        create_task(conn, Actor.system(), NewTask(
            kind=VISIT_KIND, grid_code=row.code, source=VISIT_SOURCE, person_key=row.person_key,
            title=f"{VISIT_TITLE}：钱*", detail=detail, point=(row.lon, row.lat)), EVENING_MISSED)
    by_hand = tasks_of(conn, plans)
    one_by_one.rollback()

    assert len(by_sweep) == len(plans) and by_sweep == by_hand
    assignees = [task[0][9] for task in by_sweep]  # assignee_id, by plan
    placed = dict(zip(sorted(plans), assignees, strict=True))
    assert placed[plans[3]] is None, "grid C: nobody on duty near, the visit waits in created"
    dispatched = [placed[p] for p in sorted(plans) if p != plans[3]]
    assert set(dispatched) == set(pair), "grid A's visits went to its neighbour B's workers"
    # load balancing: pair[1] starts with one open task, so pair[0] takes the first, then they alternate
    assert dispatched == [pair[0], pair[0], pair[1], pair[0], pair[1]]
