"""What a grid worker's phone shows (the field app, ``/field/``): his tasks in hand, what he finished lately, and
for each task where to go and whom it is about.

Two lists, of the worker's own tasks only (assigned to him, whatever the grid):

- in hand: dispatched, accepted, in progress, the most urgent first;
- done: handled or closed in the last :data:`DONE_DAYS` days, the latest first, so they leave the main list.

Each task carries ``target``, the point the phone's map app is opened at (the task's own point, else a point
inside its grid), and ``address``: a lead's address as reported, or, for a task about a person, his home
address opened from its sealed record. A home address is personal data: it is opened only for the worker the
task is assigned to, only while it is in his hands, and its first reading by him is written to the audit log
(``read_task_address``, one line per worker and task: the phone re-reads its list every minute and an audit log
of refreshes would drown the reads that matter).

>>> in_hand = ("dispatched", "accepted", "in_progress")
>>> IN_HAND == in_hand
True
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from accounts.actor import WORKER, Actor
from accounts.repository import record_read
from gis.errors import NotFound
from grids.proximity import FAR_FROM_GRID_M, distance_to_grid_m, far_from_grid
from matching.privacy import Vault
from tasks.kinds import load_kinds
from tasks.repository import TASK_SELECT, task_view

IN_HAND = ("dispatched", "accepted", "in_progress")
DONE = ("handled", "closed")
DONE_DAYS = 7
LIMIT = 200
ADDRESS_READ = "read_task_address"

# where to go and about whom: the lead's address, the person's sealed home address, a point to navigate to
PLACE_SELECT = """
SELECT t.id, l.address AS lead_address, r.address_sealed,
       coalesce(ST_X(t.geom), ST_X(ST_PointOnSurface(g.geom))) AS lon,
       coalesce(ST_Y(t.geom), ST_Y(ST_PointOnSurface(g.geom))) AS lat
FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id LEFT JOIN leads l ON l.id = t.lead_id
LEFT JOIN persons p ON p.person_key = t.person_key
LEFT JOIN source_records r ON r.feed_file_id = p.record_feed_file_id AND r.row_number = p.record_row_number
WHERE t.id = ANY(:ids)
"""


def _places(conn: Connection, actor: Actor, tasks: list[dict[str, Any]], vault: Vault,
            client: str | None) -> None:
    """Put ``target`` and ``address`` on each task (in place), opening and auditing home addresses as above."""
    if not tasks:
        return
    rows = {r.id: r for r in conn.execute(text(PLACE_SELECT), {"ids": [t["id"] for t in tasks]})}
    sealed = [(t, rows[t["id"]].address_sealed) for t in tasks
              if t["status"] in IN_HAND and rows[t["id"]].address_sealed]
    opened = dict(zip([t["id"] for t, _ in sealed], vault.open_texts([s for _, s in sealed]), strict=True))
    if opened:
        audited = set(conn.execute(text(
            "SELECT subject FROM audit_log WHERE user_id = :u AND action = :a AND subject = ANY(:s)"),
            {"u": actor.user_id, "a": ADDRESS_READ, "s": [f"task:{i}" for i in opened]}).scalars())
        for task_id in opened:
            if f"task:{task_id}" not in audited:
                record_read(conn, actor, ADDRESS_READ, f"task:{task_id}", f"入户任务地址 / address of task #{task_id}",
                            client)
    for task in tasks:
        row = rows[task["id"]]
        task["target"] = None if row.lon is None else {"lon": round(row.lon, 6), "lat": round(row.lat, 6)}
        task["address"] = opened.get(task["id"]) or row.lead_address
        kind = load_kinds().get(task["kind"])
        task["kind_name_en"] = kind.name_en if kind else task["kind"]
        task["needs_temperature"] = bool(kind and kind.needs_temperature)


def field_tasks(conn: Connection, actor: Actor, now: datetime, vault: Vault,
                client: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The worker's ``tasks`` in hand (most urgent first) and ``done`` (handled or closed in the last
    :data:`DONE_DAYS` days, latest first), with their places; personal data masked but for the home address of
    a task in hand (audited, see the module)."""
    actor.require_role(WORKER)
    lists: dict[str, list[dict[str, Any]]] = {}
    for name, statuses, order, since in (
            ("tasks", IN_HAND, "t.due_at, t.priority, t.id", None),
            ("done", DONE, "coalesce(t.closed_at, t.handled_at) DESC, t.id DESC", now - timedelta(days=DONE_DAYS))):
        rows = conn.execute(text(
            TASK_SELECT + " WHERE t.assignee_id = :me AND t.status = ANY(:statuses) "
            "AND (CAST(:since AS timestamptz) IS NULL OR coalesce(t.closed_at, t.handled_at) >= :since) "
            f"ORDER BY {order} LIMIT :limit"),
            {"me": actor.user_id, "statuses": list(statuses), "since": since, "now": now, "limit": LIMIT})
        lists[name] = [task_view(r) for r in rows]
    _places(conn, actor, lists["tasks"] + lists["done"], vault, client)
    return lists


def own_task_grid(conn: Connection, actor: Actor, task_id: int) -> str:
    """The grid code of task ``task_id`` if it is assigned to ``actor`` (a worker); NotFound otherwise, exactly
    as for a task that does not exist."""
    actor.require_role(WORKER)
    code = conn.execute(text("SELECT grid_code FROM tasks WHERE id = :id AND assignee_id = :me"),
                        {"id": task_id, "me": actor.user_id}).scalar()
    if code is None:
        raise NotFound(f"任务 {task_id} 不存在或未派给您 / no task {task_id} assigned to you")
    return str(code)


def distance_from_task(conn: Connection, actor: Actor, task_id: int, lon: float, lat: float) -> dict[str, Any]:
    """How far the point (``lon``, ``lat``) is from the grid of the worker's own task ``task_id``: metres (0
    inside), whether it is inside, and whether it is far enough to warn (more than :data:`FAR_FROM_GRID_M`)."""
    metres = distance_to_grid_m(conn, own_task_grid(conn, actor, task_id), lon, lat)
    return {"task_id": task_id, "distance_m": round(metres, 1), "inside": metres == 0, "far": far_from_grid(metres),
            "far_from_m": FAR_FROM_GRID_M}
