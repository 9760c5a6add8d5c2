"""The /api/v1 endpoints of the phone's field app (``/field/``): a worker's lists in one answer, and how far his
phone is from a task's grid. Every other action of the app goes through the task endpoints of
:mod:`api.routes` (transitions, photos, unmasking a person to call him)."""

from __future__ import annotations

from flask import Response, g
from sqlalchemy import Connection

from accounts.actor import WORKER, Actor
from accounts.repository import session_expiry
from api import field_models as fm
from api.contract import Operation, PathParam, Reply, documented
from api.http import current_actor, reader
from api.routes import ID, TAGS, api
from gis.db import changing
from grids.proximity import FAR_FROM_GRID_M
from tasks.field_view import distance_from_task, field_tasks
from web.context import client_tag, engine, now, vault
from web.errors import json_response
from web.session import session_token

TASK = PathParam("task_id", ID, "任务编号（须派给本人）/ task id (assigned to you)", 1)


@api.get("/field/tasks")
@documented(Operation(
    TAGS["tasks"], "网格员手机任务 / the worker's phone lists", (WORKER,),
    {200: Reply("在办与已办，含地址与导航点 / in hand and done, with addresses and where to go", fm.FieldTasks)},
    "手机端一次取齐：在办任务、近 7 天已办、登录到期时间与 CSRF 令牌；人员住址仅对本人在办任务打开，首次读取记审计 / "
    "everything the phone shows in one answer; a person's home address is opened only on the worker's own tasks "
    "in hand, its first reading audited", errors=(403,)))
def field_task_lists() -> Response:
    moment = now()
    with changing(engine()) as conn:  # a read that may write audit lines (opened home addresses)
        actor = current_actor(conn)
        lists = field_tasks(conn, actor, moment, vault(), client_tag())
        # the session was just found; one ended since then has ended now
        expires = session_expiry(conn, session_token() or "") or moment
    return json_response({"user_id": actor.user_id, "username": actor.username,
                          "display_name": actor.display_name or actor.username, **lists,
                          "session_expires_at": expires.isoformat(), "csrf_token": g.csrf,
                          "far_from_m": FAR_FROM_GRID_M, "as_of": moment.isoformat()})


@api.get("/field/tasks/<int:task_id>/distance")
@reader
@documented(Operation(
    TAGS["tasks"], "距任务网格多远 / how far from the task's grid", (WORKER,),
    {200: Reply("距离与是否需提示 / the distance and whether to warn", fm.Distance)},
    "反馈前手机报位置，超出网格较远时提示核实 / the phone sends its position before a report and warns when far",
    query=fm.DistanceQuery, path=(TASK,), errors=(403, 404)))
def field_task_distance(conn: Connection, actor: Actor, task_id: int, query: fm.DistanceQuery) -> Response:
    return json_response(distance_from_task(conn, actor, task_id, query.lon, query.lat))
