"""Turn the matcher's task requests (new or raised red and yellow flags) into dispatched tasks.

A red person gets an escort to medical observation, a yellow one a home
visit with temperature, in the grid he was flagged to. Requests for persons
no grid holds stay visible in the unplaced list and are marked ``unplaced``
here; nothing is dropped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from accounts.actor import Actor
from tasks.repository import NewTask, create_task

KIND_FOR_COLOUR = {"red": "escort", "yellow": "home_visit"}
TITLES = {"red": "红码人员转运", "yellow": "黄码人员入户走访"}


def take_requests(conn: Connection, now: datetime, limit: int = 5000) -> dict[str, int]:
    """Create a task for each pending request (at most ``limit``); returns counts by outcome."""
    rows = conn.execute(text(
        "SELECT r.id, r.person_key, r.colour, r.reason, g.code AS grid_code, p.name_masked, "
        "ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat FROM task_requests r "
        "LEFT JOIN grids g ON g.id = r.grid_id LEFT JOIN persons p ON p.person_key = r.person_key "
        "WHERE r.status = 'pending' ORDER BY r.id LIMIT :limit FOR UPDATE OF r SKIP LOCKED"), {"limit": limit}).all()
    counts = {"tasks": 0, "unplaced": 0}
    system = Actor.system()
    for row in rows:
        if row.grid_code is None or row.colour not in KIND_FOR_COLOUR:
            conn.execute(text("UPDATE task_requests SET status = 'unplaced' WHERE id = :id"), {"id": row.id})
            counts["unplaced"] += 1
            continue
        task = create_task(conn, system, NewTask(
            kind=KIND_FOR_COLOUR[row.colour], grid_code=row.grid_code, source="matcher", person_key=row.person_key,
            request_id=row.id, title=f"{TITLES[row.colour]}：{row.name_masked or ''}", detail=row.reason,
            point=(row.lon, row.lat) if row.lon is not None else None), now)
        conn.execute(text("UPDATE task_requests SET status = 'converted', task_id = :t WHERE id = :id"),
                     {"t": task["id"], "id": row.id})
        counts["tasks"] += 1
    return counts
