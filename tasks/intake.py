"""Turn the matcher's task requests (new or raised red and yellow flags, and the tasks a rule asks for) into
dispatched tasks.

A red person gets an escort to medical observation, a yellow one a home
visit with temperature, in the grid he was flagged to; a rule's request gets
the kind the rule names (a verification, say). Requests for persons
no grid holds stay visible in the unplaced list and are marked ``unplaced``
here; nothing is dropped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from accounts.actor import Actor
from tasks.kinds import task_kind
from tasks.repository import NewTask, create_task

KIND_FOR_COLOUR = {"red": "escort", "yellow": "home_visit"}
TITLES = {"red": "红码人员转运", "yellow": "黄码人员入户走访"}


def take_requests(conn: Connection, now: datetime, limit: int = 5000) -> dict[str, int]:
    """Create a task for each pending request (at most ``limit``); returns counts by outcome."""
    rows = conn.execute(text(
        "SELECT r.id, r.person_key, r.colour, r.reason, r.kind, r.explanation, g.code AS grid_code, p.name_masked, "
        "ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat FROM task_requests r "
        "LEFT JOIN grids g ON g.id = r.grid_id LEFT JOIN persons p ON p.person_key = r.person_key "
        "WHERE r.status = 'pending' ORDER BY r.id LIMIT :limit FOR UPDATE OF r SKIP LOCKED"), {"limit": limit}).all()
    counts = {"tasks": 0, "unplaced": 0}
    system = Actor.system()
    for row in rows:
        kind = row.kind or KIND_FOR_COLOUR.get(row.colour)
        if row.grid_code is None or kind is None:
            conn.execute(text("UPDATE task_requests SET status = 'unplaced' WHERE id = :id"), {"id": row.id})
            counts["unplaced"] += 1
            continue
        title = task_kind(kind).name if row.kind else TITLES[row.colour]
        detail = f"{row.reason}\n{row.explanation}" if row.explanation else row.reason
        task = create_task(conn, system, NewTask(
            kind=kind, grid_code=row.grid_code, source="matcher", person_key=row.person_key,
            request_id=row.id, title=f"{title}：{row.name_masked or ''}", detail=detail,
            point=(row.lon, row.lat) if row.lon is not None else None), now)
        conn.execute(text("UPDATE task_requests SET status = 'converted', task_id = :t WHERE id = :id"),
                     {"t": task["id"], "id": row.id})
        counts["tasks"] += 1
    return counts
