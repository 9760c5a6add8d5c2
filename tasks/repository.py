"""Database access for tasks and their events, in the actor's data scope.

Every read filters by :class:`accounts.actor.Actor` here, not in the caller: a
task outside the scope is reported exactly like a task that does not exist.
A change locks the task row, checks its version, applies the lifecycle's plan
and appends one event, all in the caller's transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Row

from accounts.actor import COMMANDER, SUPERVISOR, SYSTEM, WORKER, Actor
from gis.db import NamedRow, run, sql
from gis.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from grids.proximity import far_from_grid
from tasks import lifecycle
from tasks.kinds import load_kinds, task_kind

OPEN_SQL = "('" + "','".join(lifecycle.OPEN) + "')"
TASK_SELECT = f"""
SELECT t.id, t.kind, t.status, t.priority, t.title, t.detail, t.source, t.grid_id, t.grid_code, t.person_key,
       t.lead_id, t.checkpoint_id, t.assignee_id, u.username AS assignee, u.display_name AS assignee_name,
       t.created_by, t.created_at, t.dispatched_at, t.handled_at, t.closed_at, t.cancelled_at, t.sla_minutes,
       t.due_at, t.escalation_level, t.rework_count, t.extension_count, t.extension_requested_until, t.version,
       ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, p.id_masked, p.name_masked, p.colour,
       t.status IN {OPEN_SQL} AND t.due_at < :now AS overdue, g.name AS grid_name
FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id LEFT JOIN persons p ON p.person_key = t.person_key
LEFT JOIN grids g ON g.id = t.grid_id
"""
# what a change can alter: returned by the UPDATE, so the answer needs no second read of the task
RETURNED = ("status, version, assignee_id, dispatched_at, handled_at, closed_at, cancelled_at, due_at, "
            "escalation_level, rework_count, extension_count, extension_requested_until")
CREATORS = (SUPERVISOR, COMMANDER, SYSTEM)
SOURCES = ("matcher", "lead", "checkpoint", "manual", "follow_up")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_view(row: Row[Any] | NamedRow | SimpleNamespace) -> dict[str, Any]:
    """A task as the API shows it (personal data masked)."""
    kind = load_kinds().get(row.kind)
    person = None
    if row.person_key:
        person = {"person_key": row.person_key, "id_masked": row.id_masked, "name_masked": row.name_masked,
                  "colour": row.colour}
    return {
        "id": row.id, "kind": row.kind, "kind_name": kind.name if kind else row.kind, "status": row.status,
        "status_name": lifecycle.STATUS_NAMES[row.status], "priority": row.priority, "title": row.title,
        "detail": row.detail, "source": row.source, "grid_code": row.grid_code,
        "grid_name": getattr(row, "grid_name", None), "person": person,
        "lead_id": row.lead_id, "checkpoint_id": row.checkpoint_id, "assignee_id": row.assignee_id,
        "assignee": row.assignee, "assignee_name": row.assignee_name, "created_by": row.created_by,
        "created_at": _iso(row.created_at), "dispatched_at": _iso(row.dispatched_at),
        "handled_at": _iso(row.handled_at), "closed_at": _iso(row.closed_at), "cancelled_at": _iso(row.cancelled_at),
        "sla_minutes": row.sla_minutes, "due_at": _iso(row.due_at), "overdue": bool(row.overdue),
        "escalation_level": row.escalation_level, "rework_count": row.rework_count,
        "extension_count": row.extension_count, "extension_requested_until": _iso(row.extension_requested_until),
        "version": row.version,
        "location": None if row.lon is None else {"lon": row.lon, "lat": row.lat},
    }


def event_view(row: Row[Any] | NamedRow) -> dict[str, Any]:
    """An event as the API shows it; ``actor_name`` (the account's display name) where the read joined it."""
    return {"id": row.id, "task_id": row.task_id, "seq": row.seq, "action": row.action,
            "from_status": row.from_status, "to_status": row.to_status, "actor": row.actor,
            "actor_name": getattr(row, "actor_name", None),
            "actor_role": row.actor_role, "at": _iso(row.at), "note": row.note, "detail": row.detail,
            "location": None if row.lon is None else {"lon": row.lon, "lat": row.lat}}


def task_row(conn: Connection, actor: Actor, task_id: int, now: datetime, lock: bool = False) -> NamedRow:
    """The task's row (TASK_SELECT's columns); NotFound when there is none in the actor's scope."""
    actor.require_rows()
    row = run(conn, TASK_SELECT + " WHERE t.id = :id" + (" FOR UPDATE OF t" if lock else ""),
              {"id": task_id, "now": now}).fetchone()
    if row is None or not actor.sees_task(row.grid_id, row.assignee_id):
        raise NotFound(f"任务 {task_id} 不存在或不在您的范围内 / no task {task_id} in your scope")
    return row


# an event's columns (prefixed ``e.``), who did it by name, and how far from the task's grid it was done
EVENT_READ = ("e.id, e.task_id, e.seq, e.action, e.from_status, e.to_status, e.actor, e.actor_role, e.at, e.note, "
              "e.detail, ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat, a.display_name AS actor_name")


def get_task(conn: Connection, actor: Actor, task_id: int, now: datetime) -> dict[str, Any]:
    """One task with its timeline (oldest event first; who acted by name) and ``report``: the worker's latest
    report (result, temperature, photos, position and its distance from the grid in metres, whether that is far),
    what a supervisor checks before closing; None before any report."""
    task = task_view(task_row(conn, actor, task_id, now))
    rows = conn.execute(sql(
        f"SELECT {EVENT_READ}, CASE WHEN e.geom IS NOT NULL THEN ST_Distance(e.geom::geography, g.geom::geography) "
        "END AS distance_m FROM task_events e JOIN tasks t ON t.id = e.task_id LEFT JOIN grids g ON g.id = t.grid_id "
        "LEFT JOIN users a ON a.id = e.actor_id WHERE e.task_id = :id ORDER BY e.seq"), {"id": task_id}).all()
    task["events"] = [event_view(e) for e in rows]
    handled = [e for e in rows if e.action == "handle"]
    task["report"] = _report(handled[-1]) if handled else None
    return task


def _report(event: Row[Any]) -> dict[str, Any]:
    detail = event.detail or {}
    metres = None if event.distance_m is None else round(float(event.distance_m), 1)
    return {"event_id": event.id, "at": _iso(event.at), "by": event.actor_name or event.actor,
            "result": detail.get("result"), "temperature": detail.get("temperature"),
            "photos": list(detail.get("photos") or []), "note": event.note,
            "location": None if event.lon is None else {"lon": event.lon, "lat": event.lat},
            "distance_m": metres, "far": metres is not None and far_from_grid(metres)}


def task_place(conn: Connection, actor: Actor, task_id: int, now: datetime) -> dict[str, Any]:
    """Where a task is, as a GeoJSON FeatureCollection (WGS84) for a map: its grid's outline (``role`` grid) and,
    once reported, the worker's position (``report``, with ``distance_m``) and the shortest line from it to the
    grid (``gap``, when outside). NotFound outside the actor's scope."""
    row = task_row(conn, actor, task_id, now)
    shapes = conn.execute(sql(
        "SELECT ST_AsGeoJSON(g.geom, 7) AS grid, ST_AsGeoJSON(e.geom, 7) AS report, "
        "ST_Distance(e.geom::geography, g.geom::geography) AS metres, "
        "ST_AsGeoJSON(ST_ShortestLine(e.geom, g.geom), 7) AS gap FROM grids g "
        "LEFT JOIN LATERAL (SELECT geom FROM task_events WHERE task_id = :task AND action = 'handle' "
        "ORDER BY seq DESC LIMIT 1) e ON true WHERE g.id = :grid"),
        {"task": task_id, "grid": row.grid_id}).one_or_none()
    features: list[dict[str, Any]] = []
    if shapes is not None:
        features.append({"type": "Feature", "geometry": json.loads(shapes.grid),
                         "properties": {"role": "grid", "code": row.grid_code}})
        if shapes.report is not None:
            metres = float(shapes.metres)
            features.append({"type": "Feature", "geometry": json.loads(shapes.report),
                             "properties": {"role": "report", "distance_m": round(metres, 1),
                                            "far": far_from_grid(metres)}})
            if metres > 0:
                features.append({"type": "Feature", "geometry": json.loads(shapes.gap),
                                 "properties": {"role": "gap", "distance_m": round(metres, 1)}})
    return {"type": "FeatureCollection", "features": features}


def report_distance_m(conn: Connection, task_id: int) -> float | None:
    """Metres between the task's grid and where its latest report was made (None: no report, or no position)."""
    return conn.execute(sql(
        "SELECT ST_Distance(e.geom::geography, g.geom::geography) FROM task_events e JOIN tasks t ON t.id = e.task_id "
        "JOIN grids g ON g.id = t.grid_id WHERE e.task_id = :id AND e.action = 'handle' ORDER BY e.seq DESC "
        "LIMIT 1"), {"id": task_id}).scalar()


@dataclass
class TaskFilter:
    """Which tasks to list (every field optional, all given ones must hold), and which page of them."""

    grid_code: str | None = None
    statuses: tuple[str, ...] = ()
    overdue: bool | None = None
    assignee: str | None = None  # a username
    due_before: datetime | None = None  # open work due before this time (the overdue and about-to-be queue)
    limit: int = 200
    offset: int = 0
    search: str | None = None  # a piece of the grid's code or name, or of the title
    assignee_id: int | None = None
    kinds: tuple[str, ...] = ()
    extension_pending: bool | None = None


def _like(fragment: str) -> str:
    """``fragment`` as an ILIKE pattern matching it anywhere, its own % and _ taken literally."""
    return "%" + fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_tasks(conn: Connection, actor: Actor, where: TaskFilter, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Tasks in scope matching ``where``: open work first, the most urgent first; returns (page, total).

    The filters are those of the dispatch console's search: a grid's code or name (or the title), a worker,
    kinds, statuses, overdue, an extension waiting for a decision; ``limit``/``offset`` page through them.
    """
    scope = actor.grid_scope()
    clauses, params = [], {"now": now, "limit": where.limit, "offset": where.offset}
    if scope is not None:
        clauses.append("(t.grid_id = ANY(:scope) OR t.assignee_id = :me)" if actor.role == WORKER
                       else "t.grid_id = ANY(:scope)")
        params.update(scope=scope, me=actor.user_id)
    if where.grid_code:
        clauses.append("t.grid_code = :grid")
        params["grid"] = where.grid_code
    if where.statuses:
        unknown = set(where.statuses) - set(lifecycle.STATUSES)
        if unknown:
            raise InvalidRequest(f"未知状态 {', '.join(sorted(unknown))} / unknown status", "status")
        clauses.append("t.status = ANY(:statuses)")
        params["statuses"] = list(where.statuses)
    if where.kinds:
        clauses.append("t.kind = ANY(:kinds)")
        params["kinds"] = list(where.kinds)
    if where.overdue is not None:
        clauses.append(("" if where.overdue else "NOT ") + f"(t.status IN {OPEN_SQL} AND t.due_at < :now)")
    if where.extension_pending is not None:
        clauses.append(f"t.extension_requested_until IS {'NOT ' if where.extension_pending else ''}NULL")
    if where.due_before is not None:
        clauses.append(f"t.status IN {OPEN_SQL} AND t.due_at < :due_before")
        params["due_before"] = where.due_before
    if where.assignee:
        clauses.append("u.username = :assignee")
        params["assignee"] = where.assignee
    if where.assignee_id is not None:
        clauses.append("t.assignee_id = :assignee_id")
        params["assignee_id"] = where.assignee_id
    search = (where.search or "").strip()
    if search:
        clauses.append("(t.grid_code LIKE :search OR g.name ILIKE :search OR t.title ILIKE :search)")
        params["search"] = _like(search[:100])
    condition = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    total = conn.execute(sql("SELECT count(*) FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id "
                             "LEFT JOIN grids g ON g.id = t.grid_id" + condition), params).scalar_one()
    rows = conn.execute(sql(TASK_SELECT + condition + f" ORDER BY t.status NOT IN {OPEN_SQL}, t.due_at, t.priority, "
                                                       "t.id LIMIT :limit OFFSET :offset"), params)
    return [task_view(r) for r in rows], total


@dataclass
class NewTask:
    """What a new task needs; the SLA, priority and due time come from its kind."""

    kind: str
    grid_code: str
    title: str
    source: str = "manual"
    detail: str | None = None
    person_key: str | None = None
    lead_id: int | None = None
    checkpoint_id: int | None = None
    request_id: int | None = None
    point: tuple[float, float] | None = None
    dispatch: bool = True
    assignee_id: int | None = None


def create_task(conn: Connection, actor: Actor, new: NewTask, now: datetime) -> dict[str, Any]:
    """Store a new task (event ``create``) and, unless told not to, dispatch it at once."""
    actor.require_role(*CREATORS)
    kind = task_kind(new.kind)
    if new.source not in SOURCES:
        raise InvalidRequest(f"未知来源 {new.source} / unknown source", "source")
    title = (new.title or "").strip()
    if not title or len(title) > 200:
        raise InvalidRequest("标题不能为空且不超过 200 字 / title is required (at most 200 characters)", "title")
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)" if new.point else "NULL"
    # the grid and whether the point lies in the district, one round trip (the point is judged after the grid)
    inside = f"EXISTS (SELECT FROM districts WHERE ST_Intersects(geom, {point}))" if new.point else "true"
    lon, lat = new.point if new.point else (None, None)
    grid = conn.execute(sql(f"SELECT id, code, {inside} AS inside FROM grids WHERE code = :c"),
                        {"c": new.grid_code, "lon": lon, "lat": lat}).one_or_none()
    if grid is None or not actor.sees_grid(grid.id):
        raise NotFound(f"网格 {new.grid_code} 不存在或不在您的范围内 / no grid {new.grid_code} in your scope")
    if not grid.inside:
        raise InvalidRequest(f"任务位置 ({lon}, {lat}) 不在本区范围内 / the task's location is outside the "
                             "district", "location")
    # the task and its ``create`` event (seq 1, no place) in one statement
    created = lifecycle.Plan("create", None, "created", detail={"source": new.source})
    event = {f"e_{key}": value for key, value in _event_params(0, created, actor, now).items()}
    task_id = conn.execute(sql(
        "WITH created AS (INSERT INTO tasks (kind, status, priority, title, detail, source, grid_id, grid_code, "
        "person_key, lead_id, checkpoint_id, request_id, geom, created_by, created_at, sla_minutes, due_at) "
        f"VALUES (:kind, 'created', :priority, :title, :detail, :source, :grid_id, :grid_code, :person, :lead, "
        f":checkpoint, :request, {point}, :by, :now, :sla, :due) RETURNING id) "
        "INSERT INTO task_events (task_id, seq, action, from_status, to_status, actor_id, actor, actor_role, at, "
        "note, detail, geom) SELECT id, 1, :e_action, :e_from, :e_to, :e_actor_id, :e_actor, :e_role, :e_now, "
        ":e_note, CAST(:e_detail AS jsonb), NULL FROM created RETURNING task_id"),
        {"kind": kind.code, "priority": kind.priority, "title": title, "detail": new.detail, "source": new.source,
         "grid_id": grid.id, "grid_code": grid.code, "person": new.person_key, "lead": new.lead_id,
         "checkpoint": new.checkpoint_id, "request": new.request_id, "by": actor.username, "now": now,
         "sla": kind.sla_minutes, "due": now + timedelta(minutes=kind.sla_minutes), "lon": lon, "lat": lat,
         **event}).scalar_one()
    if new.dispatch:
        try:
            return transition(conn, actor, task_id, "dispatch", 1, {"assignee_id": new.assignee_id}, now)["task"]
        except Conflict as exc:  # nobody on duty nearby: the task waits for a supervisor, nothing is lost
            if exc.code != "no_worker_on_duty":
                raise
    return task_view(task_row(conn, actor, task_id, now))


EVENT_COLUMNS = ("id, task_id, seq, action, from_status, to_status, actor, actor_role, at, note, detail, "
                 "ST_X(geom) AS lon, ST_Y(geom) AS lat")


def _event_insert(change: lifecycle.Plan, source: str = "") -> str:
    """The INSERT of one event of task ``:task`` (one row per row of ``source``, a FROM clause, if given)."""
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)" if change.location else "NULL"
    return ("INSERT INTO task_events (task_id, seq, action, from_status, to_status, actor_id, actor, actor_role, at, "
            "note, detail, geom) SELECT :task, (SELECT coalesce(max(seq), 0) + 1 FROM task_events WHERE task_id = "
            f":task), :action, :from, :to, :actor_id, :actor, :role, :now, :note, CAST(:detail AS jsonb), {point} "
            f"{source} RETURNING {EVENT_COLUMNS}")


def _event_params(task_id: int, change: lifecycle.Plan, actor: Actor, now: datetime) -> dict[str, object]:
    return {"task": task_id, "action": change.action, "from": change.from_status, "to": change.to_status,
            "actor_id": actor.user_id, "actor": actor.username, "role": actor.role, "now": now, "note": change.note,
            "detail": json.dumps(change.detail, ensure_ascii=False, default=str),
            "lon": change.location[0] if change.location else None,
            "lat": change.location[1] if change.location else None}


def pick_worker(conn: Connection, grid_id: int, avoid: int | None = None) -> int | None:
    """The on-duty worker of the grid with the fewest open tasks; else the nearest neighbouring grid's.

    Neighbours are the grids whose polygons touch this one, nearest centroid
    first; ties go to the lower username so that dispatch is reproducible.
    ``avoid``: a worker not to pick (the one a recalled task was taken from).
    """
    # ``own``: the grid's eligible workers (a handful, MATERIALIZED: inlined, a plan misled by stale statistics
    # joined them per worker of the district). The neighbour ring, its polygon intersections and centroid
    # distances (most of the statement's cost), runs only when ``own`` is empty: its one-time filter skips it
    # otherwise; any of the grid's own would come first anyway (ORDER BY ring). Each worker is looked up by id,
    # not hashed over the whole users table.
    return conn.execute(sql(f"""
        WITH own AS MATERIALIZED (
            SELECT u.id, u.username FROM user_grids ug JOIN users u ON u.id = ug.user_id
            WHERE ug.grid_id = :g AND u.role = 'worker' AND u.active AND u.on_duty
              AND u.id IS DISTINCT FROM CAST(:avoid AS int)
        ), candidates AS (
            SELECT id, username, 0 AS ring, 0.0 AS distance FROM own
            UNION ALL
            SELECT u.id, u.username, 1, ST_Distance(ST_Centroid(n.geom), ST_Centroid(g.geom))
            FROM grids g JOIN grids n ON n.id <> g.id AND ST_Intersects(n.geom, g.geom)
            JOIN user_grids ug ON ug.grid_id = n.id JOIN users u ON u.id = ug.user_id
            WHERE g.id = :g AND NOT EXISTS (SELECT FROM own) AND u.role = 'worker' AND u.active AND u.on_duty
              AND u.id IS DISTINCT FROM CAST(:avoid AS int)
        )
        SELECT c.id FROM candidates c
        ORDER BY c.ring, (SELECT count(*) FROM tasks t WHERE t.assignee_id = c.id AND t.status IN {OPEN_SQL}),
                 c.distance, c.username
        LIMIT 1"""), {"g": grid_id, "avoid": avoid}).scalar()


def _check_assignee(conn: Connection, actor: Actor, assignee_id: int) -> None:
    row = conn.execute(sql("SELECT role, active, array_agg(ug.grid_id) AS grids FROM users u "
                            "LEFT JOIN user_grids ug ON ug.user_id = u.id WHERE u.id = :id GROUP BY u.id"),
                       {"id": assignee_id}).one_or_none()
    if row is None or row.role != WORKER or not row.active:
        raise InvalidRequest(f"用户 {assignee_id} 不是在岗网格员 / user {assignee_id} is not an active worker",
                             "assignee_id")
    if not actor.sees_everything and not set(row.grids or ()) & actor.grid_ids:
        raise PermissionDenied("只能派给本辖区的网格员 / you may assign only to workers of your area")


def _attach_photos(conn: Connection, actor: Actor, task_id: int, event_id: int, photos: list[int]) -> None:
    if not photos:
        return
    linked = conn.execute(sql("UPDATE task_photos SET event_id = :event WHERE id = ANY(:ids) AND task_id = :task "
                               "AND event_id IS NULL AND uploaded_by = :me"),
                          {"event": event_id, "ids": photos, "task": task_id, "me": actor.user_id}).rowcount
    if linked != len(photos):
        raise InvalidRequest("照片编号无效或已使用 / a photo id is unknown, not yours, or already attached",
                             "photos")


def _check_far_report(conn: Connection, row: NamedRow, payload: dict[str, Any], change: lifecycle.Plan) -> None:
    """A report made far from the task's grid is closed only when the closer says he saw it (``confirm_far``):
    the console shows the distance and asks; a close sent without that is refused, whatever the client."""
    metres = report_distance_m(conn, row.id)
    if metres is None or not far_from_grid(metres):
        return
    if payload.get("confirm_far") is not True:
        raise Conflict(f"反馈位置距任务网格 {metres:,.0f} 米，请核实后确认结案 / the report was made {metres:,.0f} m "
                       "from the task's grid: confirm that you checked it (confirm_far)", "far_from_grid",
                       task_view(row))
    change.detail["far_from_grid_m"] = round(metres)


def transition(conn: Connection, actor: Actor, task_id: int, action: str, version: int, payload: dict[str, Any],
               now: datetime, avoid: int | None = None) -> dict[str, Any]:
    """Apply ``action`` to task ``task_id`` if it is still at ``version``; returns the task and its new event.

    Raises Conflict(code "stale_version", current task) when someone changed
    it first, Conflict("illegal_transition") when the state does not allow the
    action; nothing is written then. ``avoid``: a worker auto-dispatch must not pick.
    """
    lifecycle.permitted(action, actor)
    row = task_row(conn, actor, task_id, now, lock=True)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidRequest("version 必须是整数 / version must be an integer", "version")
    if version != row.version:
        raise Conflict(f"任务已被他人更新（当前版本 {row.version}，您的版本 {version}），请刷新后重试 / the task "
                       f"changed since version {version}; it is now at version {row.version}", "stale_version",
                       task_view(row))
    state = lifecycle.TaskState(row.status, row.kind, row.assignee_id, row.due_at, row.extension_requested_until)
    change = lifecycle.plan(state, action, actor, payload, now)
    if action == "close":
        _check_far_report(conn, row, payload, change)
    updates = change.updates.copy()
    if action in ("dispatch", "reassign"):
        if updates["assignee_id"] is None:
            updates["assignee_id"] = pick_worker(conn, row.grid_id, avoid) if row.grid_id else None
            change.detail["auto"] = True
            if updates["assignee_id"] is None:
                raise Conflict("本网格及相邻网格暂无在岗网格员 / no worker on duty in the grid or its neighbours",
                               "no_worker_on_duty", task_view(row))
        else:
            _check_assignee(conn, actor, updates["assignee_id"])
        change.detail["assignee_id"] = updates["assignee_id"]
    assignments = [f"{column} = :{column}" for column in updates]
    assignments += [f"{column} = {column} + 1" for column in change.increments]
    # The task and its event in one statement (one round trip fewer on every field update). The row lock taken
    # by the read above matters here too: this statement's snapshot, which numbers the event (max(seq) + 1),
    # starts after it, so it sees an escalation event that the SLA sweep committed while we waited for it.
    written = run(conn, f"WITH written AS (UPDATE tasks SET status = :status, version = version + 1"
                        f"{''.join(', ' + a for a in assignments)} WHERE id = :task RETURNING {RETURNED}), "
                        f"event AS ({_event_insert(change, 'FROM written')}) SELECT * FROM written, event",
                  {"status": change.to_status, **updates,
                   **_event_params(task_id, change, actor, now)}).fetchone()
    assert written is not None  # the task row is locked above, so the UPDATE finds it
    _attach_photos(conn, actor, task_id, written.id, change.detail.get("photos", []))
    if written.assignee_id != row.assignee_id:
        return {"task": task_view(task_row(conn, Actor.system(), task_id, now)), "event": event_view(written)}
    after = {**row._asdict(), **{column: getattr(written, column) for column in RETURNED.split(", ")}}
    after["overdue"] = after["status"] in lifecycle.OPEN and after["due_at"] < now
    return {"task": task_view(SimpleNamespace(**after)), "event": event_view(written)}


def grid_timeline(conn: Connection, actor: Actor, grid_code: str, limit: int = 100,
                  before: int | None = None) -> list[dict[str, Any]]:
    """The newest events of every task of a grid (``before``: an event id, for paging back)."""
    grid = conn.execute(sql("SELECT id FROM grids WHERE code = :c"), {"c": grid_code}).one_or_none()
    actor.require_rows()
    if grid is None or not actor.sees_grid(grid.id):
        raise NotFound(f"网格 {grid_code} 不存在或不在您的范围内 / no grid {grid_code} in your scope")
    rows = conn.execute(sql(
        f"SELECT {EVENT_READ}, t.kind, t.title FROM task_events e "
        "JOIN tasks t ON t.id = e.task_id LEFT JOIN users a ON a.id = e.actor_id "
        "WHERE t.grid_id = :g AND (CAST(:before AS bigint) IS NULL OR e.id < :before) "
        "ORDER BY e.at DESC, e.id DESC LIMIT :limit"), {"g": grid.id, "before": before, "limit": limit})
    return [{**event_view(r), "kind": r.kind, "title": r.title} for r in rows]


RECALLABLE = tuple(lifecycle.ACTIONS["recall"].sources)


def recall_tasks(conn: Connection, worker_id: int, reason: str, now: datetime,
                 grid_ids: list[int] | None = None, by: str | None = None) -> list[dict[str, Any]]:
    """Send a worker's open tasks (of ``grid_ids`` only, when given) back to dispatch, then auto-dispatch them.

    For a worker who is disabled or loses grids: each task still in his hands (dispatched, accepted or in
    progress) gets a ``recall`` event with ``reason`` (back to created, no assignee), then auto-dispatch picks
    another on-duty worker as for a new task; with nobody on duty it waits in created for a supervisor.
    Tasks he already handled stay for their supervisor to close. ``by``: who made the change (the event's
    note). Returns each task as it ends up.
    """
    system = Actor.system()
    rows = conn.execute(sql(
        "SELECT id FROM tasks WHERE assignee_id = :w AND status = ANY(:open) "
        "AND (CAST(:grids AS int[]) IS NULL OR grid_id = ANY(:grids)) ORDER BY id FOR UPDATE"),
        {"w": worker_id, "open": list(RECALLABLE), "grids": grid_ids}).scalars().all()
    recalled = []
    for task_id in rows:
        version = task_row(conn, system, task_id, now).version
        payload = {"reason": reason, "note": f"操作人 / by {by}" if by else None}
        task = transition(conn, system, task_id, "recall", version, payload, now)["task"]
        try:
            task = transition(conn, system, task_id, "dispatch", task["version"], {}, now, avoid=worker_id)["task"]
        except Conflict as exc:  # nobody on duty nearby: it waits for a supervisor, as a new task would
            if exc.code != "no_worker_on_duty":
                raise
        recalled.append(task)
    return recalled
