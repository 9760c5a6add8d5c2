"""Auto-dispatch's choice of worker against the rule as it was first written (one statement over the grid's own
workers and every neighbour's, all of them always): the grid's own worker with the fewest open tasks, else the
nearest neighbouring grid's (centroid distance), ties by username, ``avoid`` never picked. Checked over many
grids, with their own workers on and off duty and tasks loading some of them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from accounts.actor import Actor
from tasks.repository import OPEN_SQL, NewTask, create_task, pick_worker

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

# pick_worker's statement before the neighbour ring was skipped when the grid has a worker of its own
REFERENCE = f"""
WITH candidates AS MATERIALIZED (
    SELECT ug.user_id, 0 AS ring, 0.0 AS distance FROM user_grids ug WHERE ug.grid_id = :g
    UNION ALL
    SELECT ug.user_id, 1, ST_Distance(ST_Centroid(n.geom), ST_Centroid(g.geom))
    FROM grids g JOIN grids n ON n.id <> g.id AND ST_Intersects(n.geom, g.geom)
    JOIN user_grids ug ON ug.grid_id = n.id WHERE g.id = :g
)
SELECT c.user_id FROM candidates c JOIN users u ON u.id = c.user_id
WHERE u.role = 'worker' AND u.active AND u.on_duty AND u.id IS DISTINCT FROM CAST(:avoid AS int)
ORDER BY c.ring, (SELECT count(*) FROM tasks t WHERE t.assignee_id = c.user_id AND t.status IN {OPEN_SQL}),
         c.distance, u.username
LIMIT 1"""


def reference(conn, grid_id: int, avoid: int | None = None) -> int | None:
    return conn.execute(text(REFERENCE), {"g": grid_id, "avoid": avoid}).scalar()


def test_the_choice_is_the_reference_rules_over_many_grids(work_engine):
    with work_engine.connect() as conn, conn.begin() as transaction:
        grids = conn.execute(text("SELECT id, code FROM grids ORDER BY id LIMIT 120")).all()
        # every third grid has nobody of its own on duty (its neighbours' workers are picked), and some
        # workers carry open tasks (the fewest-open-tasks rule and the neighbours' order then matter)
        conn.execute(text("UPDATE users u SET on_duty = false FROM user_grids ug JOIN grids g ON g.id = ug.grid_id "
                          "WHERE ug.user_id = u.id AND u.role = 'worker' AND g.id % 3 = 0"))
        for grid in grids[::7]:
            create_task(conn, Actor.system(), NewTask("area_sweep", grid.code, "负载"), NOW)
        compared = neighbours_picked = 0
        for grid in grids:
            own = reference(conn, grid.id)
            assert pick_worker(conn, grid.id) == own, grid.code
            assert pick_worker(conn, grid.id, avoid=own) == reference(conn, grid.id, avoid=own), grid.code
            compared += 1
            if own is not None and not conn.execute(text(
                    "SELECT EXISTS (SELECT FROM user_grids WHERE grid_id = :g AND user_id = :u)"),
                    {"g": grid.id, "u": own}).scalar():
                neighbours_picked += 1
        assert compared == len(grids) and neighbours_picked >= 10, "the neighbour ring was exercised"
        transaction.rollback()


def test_with_nobody_on_duty_in_the_grid_the_nearest_neighbours_worker_is_picked(work_engine):
    with work_engine.connect() as conn, conn.begin() as transaction:
        grid_id = conn.execute(text("SELECT id FROM grids WHERE code = '440605011001008'")).scalar_one()
        conn.execute(text("UPDATE users SET on_duty = false WHERE id IN (SELECT user_id FROM user_grids "
                          "WHERE grid_id = :g)"), {"g": grid_id})
        picked = pick_worker(conn, grid_id)
        assert picked is not None and picked == reference(conn, grid_id)
        nearest = conn.execute(text(
            "SELECT n.id FROM grids g JOIN grids n ON n.id <> g.id AND ST_Intersects(n.geom, g.geom) "
            "JOIN user_grids ug ON ug.grid_id = n.id WHERE g.id = :g AND ug.user_id = :u "
            "ORDER BY ST_Distance(ST_Centroid(n.geom), ST_Centroid(g.geom)) LIMIT 1"),
            {"g": grid_id, "u": picked}).scalar()
        assert nearest is not None, "a worker of a neighbouring grid"
        # nobody on duty anywhere near: nobody
        conn.execute(text("UPDATE users SET on_duty = false WHERE role = 'worker'"))
        assert pick_worker(conn, grid_id) is None
        transaction.rollback()
