"""The /api/v1 endpoints: thin — declare the operation, take the typed request, call the domain in the actor's
scope, answer JSON.

Each route carries its :class:`api.contract.Operation` (roles, models, refusals): the edge validates the
request into the models before the view runs, and :mod:`api.openapi` writes the document from the same
declarations. Refusals raised anywhere below become JSON through :mod:`web.errors`.

The examples use the reference district and the demo accounts (``gridctl users demo``): grid
440605011001001 belongs to demo_worker, its community 440605011001 to demo_supervisor, and checkpoint
KK44060501100101 stands in that community.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import Connection
from werkzeug.exceptions import HTTPException

from accounts.actor import ADMIN, COMMANDER, REPORTER, ROLE_NAMES, SUPERVISOR, WORKER, Actor
from accounts.repository import set_on_duty, workers_in_scope
from api import models as m
from api.contract import ANONYMOUS, Operation, PathParam, Reply, documented
from api.http import IDEMPOTENCY_HEADER, current_actor, mutation, reader
from checkpoints import repository as scan_repository
from evaluation import indicators as evaluation
from evaluation.export import CSV_MEDIA, Stamp, beijing_time, stats_csv
from gis.db import changing, reading
from gis.errors import InvalidRequest, NotFound
from leads import repository as lead_repository
from leads.reports import parse_report
from matching.person_repository import flagged_in_grid, get_person, unmask_person
from tasks import photos
from tasks import repository as tasks
from tasks.intake import take_requests
from tasks.lifecycle import parse_location
from tasks.sla import escalate_overdue
from web import errors
from web.context import client_tag, device_tag, engine, now, vault
from web.errors import error_response, json_response
from web.language import one_side, reply_language
from web.session import SESSION_COOKIE, activate_account, clear_session_cookie, end_session, set_session_cookie
from web.session import log_in as open_login

api = Blueprint("api_v1", __name__, url_prefix="/api/v1")
errors.register(api)
BEIJING = ZoneInfo("Asia/Shanghai")

STAFF = m.STAFF
ROW_READERS = (WORKER, SUPERVISOR, COMMANDER, ADMIN)  # the reporter reads aggregates only
TAGS = {"session": "会话 session", "tasks": "任务 tasks", "grids": "网格 grids", "persons": "人员 persons",
        "leads": "线索 leads", "checkpoints": "卡口 checkpoints", "stats": "统计 stats",
        "operations": "运维 operations"}
DEMO_GRID = "440605011001001"
DEMO_COMMUNITY = "440605011001"
DEMO_CHECKPOINT = "KK44060501100101"
DEMO_POINT = {"lon": 113.1524, "lat": 23.0551}  # inside DEMO_GRID
DEMO_PERSON_KEY = "5f0c6a1e9b8d4c3f2a1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b"
DEMO_ID_NUMBER = "440605198503030010"  # a made-up number with a valid GB 11643 check digit

ID = {"type": "integer", "minimum": 1}
TASK_ID = PathParam("task_id", ID, "任务编号 / task id", 1)
LEAD_ID = PathParam("lead_id", ID, "线索编号 / lead id", 1)
GRID = PathParam("code", {"type": "string", "pattern": "^[0-9]{15}$",
                          "description": "15 位网格编码 / 15-digit grid code"}, "网格编码 / grid code", DEMO_GRID)
PERSON = PathParam("key", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "人员键 / person key", DEMO_PERSON_KEY)


def session_body(actor: Actor, csrf: str | None = None, expires: datetime | None = None) -> dict[str, Any]:
    """What the API says of a session: who, his role and grids, the CSRF token to echo, the expiry on login."""
    body: dict[str, Any] = {"username": actor.username, "display_name": actor.display_name, "role": actor.role,
                            "role_name": ROLE_NAMES[actor.role], "grid_codes": list(actor.grid_codes)}
    if csrf:
        body["csrf_token"] = csrf
    if expires:
        body["expires_at"] = expires.isoformat()
    return body


# -- session -------------------------------------------------------------------------------------
@api.get("/session")
@reader
@documented(Operation(TAGS["session"], "当前登录 / who am I", STAFF,
                      {200: Reply("当前用户与 CSRF 令牌 / the user and his CSRF token", m.Session)}))
def who_am_i(conn: Connection, actor: Actor) -> Response:
    return json_response(session_body(actor, g.csrf))


@api.post("/session")
@documented(Operation(
    TAGS["session"], "登录 / log in", (ANONYMOUS,),
    {201: Reply("已登录，会话 Cookie 已设置 / logged in", m.Session,
                {"Set-Cookie": {"description": f"{SESSION_COOKIE}（HttpOnly, SameSite=Lax）",
                                "schema": {"type": "string"}}})},
    "失败过多时按账号和客户端限流 / throttled per account and client after repeated failures",
    body=m.Credentials, example={"username": "demo_worker", "password": "nanhai-demo-2026"},
    body_note="示例为 make run 演示账号的口令 / the example is the demo password of make run", errors=(401, 429)))
def log_in(body: m.Credentials) -> Response:
    # JSON only: a cross-site form cannot send it without a preflight
    token, actor, csrf, expires = open_login(body.username, body.password)
    return set_session_cookie(json_response(session_body(actor, csrf, expires), 201), token, expires)


@api.post("/activation")
@documented(Operation(
    TAGS["session"], "激活账号 / activate an account", (ANONYMOUS,),
    {201: Reply("已激活并登录，会话 Cookie 已设置 / activated and logged in", m.Session,
                {"Set-Cookie": {"description": f"{SESSION_COOKIE}（HttpOnly, SameSite=Lax）",
                                "schema": {"type": "string"}}})},
    "新账号或重置密码后：用管理员发放的一次性激活码（14 天内有效）设置首个密码，随即登录；"
    "失败与登录失败一起按账号和客户端限流 / a new or reset account: set its first password with the one-time code "
    "from the administrator (valid 14 days) and be logged in; failures are throttled with failed logins, per "
    "account and client",
    body=m.Activation, example={"username": "w1385678", "code": "K7QM-2XWD-P9HT", "password": "桂城巡查-2026-春"},
    body_note="激活码只显示给管理员一次，只能用一次 / an activation code is shown once and works once",
    errors=(401, 429)))
def activation(body: m.Activation) -> Response:
    # JSON only, as the login: a cross-site form cannot send it without a preflight
    token, actor, csrf, expires = activate_account(body.username, body.code, body.password)
    return set_session_cookie(json_response(session_body(actor, csrf, expires), 201), token, expires)


@api.delete("/session")
@documented(Operation(TAGS["session"], "退出 / log out", STAFF, {204: Reply("已退出，Cookie 已清除 / logged out")}))
def log_out() -> Response:
    with changing(engine()) as conn:
        current_actor(conn)
        end_session(conn)
    return clear_session_cookie(Response(status=204))


@api.post("/duty")
@mutation()
@documented(Operation(TAGS["session"], "上岗 / 离岗 / go on or off duty", (WORKER,),
                      {200: Reply("当前在岗状态 / the duty state", m.DutyState)},
                      body=m.Duty, example={"on_duty": True}, errors=(403,)))
def duty(conn: Connection, actor: Actor, body: m.Duty) -> tuple[int, dict[str, Any]]:
    actor.require_role(WORKER)
    if actor.user_id is not None:  # a worker is a stored user; the system actor has no duty
        set_on_duty(conn, actor.user_id, body.on_duty)
    return 200, {"username": actor.username, "on_duty": body.on_duty}


# -- tasks ---------------------------------------------------------------------------------------
@api.get("/tasks")
@reader
@documented(Operation(TAGS["tasks"], "任务列表 / tasks in scope", ROW_READERS,
                      {200: Reply("一页任务，按时限排序 / a page of tasks, most urgent first", m.TaskList)},
                      query=m.TaskQuery, errors=(403,)))
def task_list(conn: Connection, actor: Actor, query: m.TaskQuery) -> Response:
    where = tasks.TaskFilter(grid_code=query.grid, statuses=tuple(query.status), overdue=query.overdue,
                             assignee=query.assignee, limit=query.limit, offset=query.offset)
    page, total = tasks.list_tasks(conn, actor, where, now())
    return json_response({"tasks": page, "total": total, "limit": where.limit, "offset": where.offset})


@api.post("/tasks")
@mutation()
@documented(Operation(
    TAGS["tasks"], "新建任务 / create a task", (SUPERVISOR, COMMANDER),
    {201: Reply("新任务；无在岗网格员时保持 created / the task (left created when nobody is on duty)", m.Task)},
    body=m.NewTask, example={"kind": "home_visit", "grid_code": DEMO_GRID, "title": "入户走访测温",
                             "detail": "桂一一路149号 3 楼，居家观察第 2 天", "location": DEMO_POINT},
    errors=(403, 404)))
def task_create(conn: Connection, actor: Actor, body: m.NewTask) -> tuple[int, dict[str, Any]]:
    new = tasks.NewTask(kind=body.kind, grid_code=body.grid_code, title=body.title, detail=body.detail,
                        person_key=body.person_key, point=parse_location(body.model_dump()),
                        dispatch=body.dispatch, assignee_id=body.assignee_id)
    return 201, tasks.create_task(conn, actor, new, now())


@api.get("/tasks/<int:task_id>")
@reader
@documented(Operation(TAGS["tasks"], "任务及时间线 / a task with its timeline", ROW_READERS,
                      {200: Reply("任务 / the task", m.TaskWithEvents)}, path=(TASK_ID,), errors=(403, 404)))
def task_detail(conn: Connection, actor: Actor, task_id: int) -> Response:
    return json_response(tasks.get_task(conn, actor, task_id, now()))


@api.post("/tasks/<int:task_id>/transitions")
@mutation()
@documented(Operation(
    TAGS["tasks"], "任务流转 / apply a lifecycle action", (WORKER, SUPERVISOR, COMMANDER),
    {200: Reply("新状态与新增事件 / the task and its new event", m.TransitionResult)},
    "带上读到的 version；他人先改则 409 stale_version（附当前任务）/ send the version you read; a change made first "
    "by someone else answers 409 stale_version with the current task",
    body=m.Transition,
    example={"action": "accept", "version": 2, "note": "已接收，30 分钟内到达", "location": DEMO_POINT},
    path=(TASK_ID,), errors=(403, 404, 409)))
def task_transition(conn: Connection, actor: Actor, task_id: int, body: m.Transition) -> tuple[int, dict[str, Any]]:
    data = body.model_dump(exclude_unset=True)
    return 200, tasks.transition(conn, actor, task_id, body.action, body.version, data, now())


PHOTO_FORM = {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "properties": {"photo": {
        "type": "string", "description": "JPEG、PNG 或 WebP，≤ 5 MB，边长 ≤ 10000 / at most 5 MB",
        "contentMediaType": "application/octet-stream"}}, "required": ["photo"]},
    "encoding": {"photo": {"contentType": ", ".join(photos.FORMATS.values())}}}}}


@api.post("/tasks/<int:task_id>/photos")
@mutation()
@documented(Operation(
    TAGS["tasks"], "上传现场照片 / upload a photo", ROW_READERS,
    {201: Reply("照片编号，在 handle 的 photos 中引用 / the photo, to name in handle's photos", m.Photo)},
    "先上传（可单独重试），再在 handle 操作中引用；网格员只能传给派给自己的任务 / upload first, then name it in "
    f"handle; a worker only to his own tasks. {IDEMPOTENCY_HEADER} 重试须发送相同字节 / a retry must resend the "
    "same bytes", upload=PHOTO_FORM, path=(TASK_ID,), errors=(403, 404)))
def task_photo(conn: Connection, actor: Actor, task_id: int) -> tuple[int, dict[str, Any]]:
    upload = request.files.get("photo")
    if upload is None:
        raise InvalidRequest("请以 multipart/form-data 的 photo 字段上传照片 / send the photo as the multipart field "
                             "'photo'", "photo")
    return 201, photos.store_photo(conn, actor, task_id, upload.read(photos.MAX_BYTES + 1), now())


@api.get("/photos/<int:photo_id>")
@documented(Operation(
    TAGS["tasks"], "读取照片 / a photo", ROW_READERS,
    {200: Reply("图片 / the image", content={mime: {"schema": {"type": "string", "contentMediaType": mime}}
                                            for mime in photos.FORMATS.values()})},
    path=(PathParam("photo_id", ID, "照片编号 / photo id", 1),), errors=(403, 404)))
def photo(photo_id: int) -> Response:
    with reading(engine()) as conn:
        content_type, content = photos.load_photo(conn, current_actor(conn), photo_id, now())
    response = Response(content, mimetype=content_type)
    return response  # not stored by the browser: web.headers marks every API answer no-store


@api.get("/workers")
@reader
@documented(Operation(
    TAGS["grids"], "可派遣的网格员 / the workers one may dispatch to", (SUPERVISOR, COMMANDER, ADMIN),
    {200: Reply("本辖区网格员及其在办任务数 / the workers of one's area with their open tasks", m.WorkerList)},
    "assignee_id 取自这里 / where dispatch and reassign find assignee_id", query=m.WorkerQuery, errors=(403,)))
def workers(conn: Connection, actor: Actor, query: m.WorkerQuery) -> Response:
    return json_response({"workers": workers_in_scope(conn, actor, query.grid, query.limit)})


@api.get("/grids/<code>/timeline")
@reader
@documented(Operation(TAGS["grids"], "网格时间线 / a grid's timeline", ROW_READERS,
                      {200: Reply("最新事件在前 / newest first", m.GridTimeline)}, query=m.TimelineQuery,
                      path=(GRID,), errors=(403, 404)))
def grid_timeline(conn: Connection, actor: Actor, code: str, query: m.TimelineQuery) -> Response:
    events = tasks.grid_timeline(conn, actor, code, query.limit, query.before)
    return json_response({"grid_code": code, "events": events})


@api.get("/grids/<code>/persons")
@reader
@documented(Operation(TAGS["grids"], "网格内红黄蓝码人员 / flagged persons of a grid", ROW_READERS,
                      {200: Reply("最红的在前，最多 500 / reddest first, at most 500", m.GridPersons)},
                      path=(GRID,), errors=(403, 404)))
def grid_persons(conn: Connection, actor: Actor, code: str) -> Response:
    return json_response({"grid_code": code, "persons": flagged_in_grid(conn, actor, code)})


@api.get("/persons/<key>")
@reader
@documented(Operation(TAGS["persons"], "人员（脱敏）/ a person, masked", ROW_READERS,
                      {200: Reply("人员 / the person", m.Person)}, path=(PERSON,), errors=(403, 404)))
def person(conn: Connection, actor: Actor, key: str) -> Response:
    return json_response(get_person(conn, actor, key))


@api.post("/persons/<key>/unmask")
@mutation(personal=True)
@documented(Operation(
    TAGS["persons"], "查看完整信息 / read a person in clear", (WORKER, SUPERVISOR, COMMANDER),
    {200: Reply("完整信息（已写审计日志）/ in clear, audited", m.UnmaskedPerson)},
    "须说明理由，每次读取记入审计日志 / needs a reason; every read is audited",
    body=m.Unmask, example={"reason": "入户走访前电话联系本人 / calling him before the visit"},
    path=(PERSON,), errors=(403, 404)))
def person_unmask(conn: Connection, actor: Actor, key: str, body: m.Unmask) -> tuple[int, dict[str, Any]]:
    return 200, unmask_person(conn, actor, key, body.reason, vault(), client_tag())


# -- leads ---------------------------------------------------------------------------------------
@api.post("/leads")
@mutation(login=False)
@documented(Operation(
    TAGS["leads"], "举报线索 / report a lead", (ANONYMOUS, *STAFF),
    {201: Reply("线索回执（同地 24 小时内合并）/ the lead (merged with reports of the same place)", m.LeadReceipt)},
    "无需登录；匿名举报每设备（X-Device-Token 请求头或 nanhai_device Cookie）10 分钟 5 次，同一地址合计 100 次，"
    "无设备令牌时每客户端 5 次 / no login needed; anonymous reports are limited per device (header X-Device-Token or "
    "cookie nanhai_device), 100 per client address in all, and 5 per client address without a device token",
    body=m.NewLeadReport, example={"description": "楼下有从外地返回人员未报备", "address": "桂城街道桂一一路149号",
                                   "location": DEMO_POINT, "crs": "wgs84", "contact": "13800138000"},
    errors=(429,)))
def lead_report(conn: Connection, actor: Actor | None, body: m.NewLeadReport) -> tuple[int, dict[str, Any]]:
    report = parse_report(body.model_dump(exclude_none=True))
    channel = "public" if actor is None else "staff"
    return 201, lead_repository.submit_report(conn, report, client_tag(), channel, vault(), now(),
                                              actor.user_id if actor else None, device=device_tag())


@api.get("/leads")
@reader
@documented(Operation(TAGS["leads"], "线索列表 / leads in scope", ROW_READERS, {200: Reply("线索 / leads", m.LeadList)},
                      query=m.LeadQuery, errors=(403,)))
def lead_list(conn: Connection, actor: Actor, query: m.LeadQuery) -> Response:
    status = None if query.status == "all" else query.status
    return json_response({"leads": lead_repository.list_leads(conn, actor, status, query.limit)})


@api.get("/leads/<int:lead_id>")
@reader
@documented(Operation(TAGS["leads"], "线索详情 / a lead with its reports", ROW_READERS,
                      {200: Reply("线索 / the lead", m.LeadDetail)}, path=(LEAD_ID,), errors=(403, 404)))
def lead_detail(conn: Connection, actor: Actor, lead_id: int) -> Response:
    return json_response(lead_repository.get_lead(conn, actor, lead_id))


@api.post("/leads/<int:lead_id>/triage")
@mutation()
@documented(Operation(
    TAGS["leads"], "研判线索 / triage a lead", (SUPERVISOR, COMMANDER),
    {201: Reply("已转为任务（默认线索核查）/ the task made from it", m.Task),
     200: Reply("dismiss 为 true 时：已关闭的线索 / with dismiss: the dismissed lead", m.Lead)},
    body=m.Triage, example={"kind": "lead_verification", "dispatch": True}, path=(LEAD_ID,), errors=(403, 404, 409)))
def lead_triage(conn: Connection, actor: Actor, lead_id: int, body: m.Triage) -> tuple[int, dict[str, Any]]:
    if body.dismiss:
        return 200, lead_repository.dismiss_lead(conn, actor, lead_id)
    return 201, lead_repository.triage_lead(conn, actor, lead_id, body.kind, now(), body.grid_code, body.dispatch,
                                            body.assignee_id)


# -- checkpoints ---------------------------------------------------------------------------------
@api.post("/scans")
@mutation()
@documented(Operation(
    TAGS["checkpoints"], "记录扫码 / record a scan", (SUPERVISOR, COMMANDER, ADMIN, WORKER),
    {201: Reply("扫码记录；红黄码生成或并入卡口预警任务 / the scan; red or yellow raises an alert task", m.Scan)},
    body=m.NewScan, example={"checkpoint": DEMO_CHECKPOINT, "pass_code": DEMO_ID_NUMBER, "direction": "in"},
    errors=(403, 404)))
def scan(conn: Connection, actor: Actor, body: m.NewScan) -> tuple[int, dict[str, Any]]:
    return 201, scan_repository.record_scan(conn, actor, body.model_dump(exclude_none=True), vault(), now())


FIRST_YEAR, LAST_YEAR = 2000, 2100  # the periods a report can ask about; beyond, date arithmetic overflows


def _period(query: m.PeriodQuery) -> tuple[datetime, datetime]:
    """``from`` and ``to`` as dates (Beijing days, ``to`` inclusive) or ISO times; default: the last 30 days."""
    def read(name: str, raw: str | None, default: datetime, end: bool) -> datetime:
        if not raw:
            return default
        try:
            if len(raw) == 10:
                day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
                moment = datetime.combine(day, time(), BEIJING)
            else:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if not FIRST_YEAR <= moment.year <= LAST_YEAR:
                raise InvalidRequest(f"{name} 须在 {FIRST_YEAR}–{LAST_YEAR} 年之间 / {name} must fall between "
                                     f"{FIRST_YEAR} and {LAST_YEAR}", name)
            return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
        except (ValueError, OverflowError):
            raise InvalidRequest(f"{name} 须为 {FIRST_YEAR}–{LAST_YEAR} 年间的日期 YYYY-MM-DD 或 ISO 时间 / {name} "
                                 f"must be a date or time between {FIRST_YEAR} and {LAST_YEAR}", name) from None
    today = datetime.combine(now().astimezone(BEIJING).date() + timedelta(days=1), time(), BEIJING)
    until = read("to", query.to, today, end=True)
    since = read("from", query.from_, until - timedelta(days=30), end=False)
    evaluation.Period(since, until)  # refuses a range that ends before it starts
    return since, until


@api.get("/checkpoints/<code>/scans")
@reader
@documented(Operation(
    TAGS["checkpoints"], "卡口每小时通行量 / scans per hour at a checkpoint",
    (SUPERVISOR, COMMANDER, REPORTER, ADMIN, WORKER),
    {200: Reply("按北京时间整点 / per hour", m.CheckpointScans)}, "汇总数据，统计员可读 / aggregates: the reporter may "
    "read them", query=m.PeriodQuery,
    path=(PathParam("code", {"type": "string"}, "卡口编号 / checkpoint code", DEMO_CHECKPOINT),), errors=(404,)))
def checkpoint_scans(conn: Connection, actor: Actor, code: str, query: m.PeriodQuery) -> Response:
    since, until = scan_repository.counted_period(actor, *_period(query))
    return json_response({"checkpoint": code, "from": since.isoformat(), "to": until.isoformat(),
                          "hours": scan_repository.hourly_counts(conn, actor, code, since, until)})


# -- statistics ----------------------------------------------------------------------------------
CSV_EXAMPLE = ("\ufeff# 数据时间 2026-11-25T20:00:00+00:00; 查询 /api/v1/stats?level=grid&area=440605011001\n"
               + ",".join(evaluation.COLUMNS) + "\n"
               + "grid,440605011001001,桂一社区第1网格,4,0,3,2,1,3,1,0,0.75,0.5,0.3333,0.0,5.2,9.81,0,6,0,0\n")


@api.get("/stats")
@reader
@documented(Operation(
    TAGS["stats"], "考核统计 / indicators per unit", (REPORTER, WORKER, SUPERVISOR, COMMANDER, ADMIN),
    {200: Reply("Accept: text/csv 时为 Excel 可读的 CSV（带 BOM 与数据时间注释行）/ CSV with a BOM and a comment line "
                "when asked for text/csv", m.Stats,
                content={"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}})},
    "统计员看到的 1–4 人计数为 null / counts of 1 to 4 persons are suppressed for reporters", query=m.StatsQuery))
def stats(conn: Connection, actor: Actor, query: m.StatsQuery) -> Response:
    since, until = _period(query)
    moment = now()
    rows = evaluation.evaluate(conn, actor, query.level, evaluation.Period(since, until), moment, query.area)
    stamp = {"level": query.level, "from": beijing_time(since), "to": beijing_time(until),
             "as_of": beijing_time(min(until, moment)), "generated_at": beijing_time(moment)}
    if request.accept_mimetypes.best_match(["application/json", CSV_MEDIA]) == CSV_MEDIA:
        made = Stamp(min(until, moment), request.full_path, moment)
        response = Response(stats_csv(rows, made), mimetype=CSV_MEDIA)
        response.headers["Content-Disposition"] = f"attachment; filename=stats-{query.level}.csv"
        return response
    return json_response({**stamp, "rows": rows})


# -- operations ------------------------------------------------------------------------------------
@api.post("/sweeps")
@mutation()
@documented(Operation(
    TAGS["operations"], "立即巡检 / sweep now", (COMMANDER, ADMIN),
    {200: Reply("新建任务、未落格请求与升级数 / tasks made, requests unplaced, escalations", m.SweepResult)},
    "处理比对产生的任务请求并升级超时任务（服务器每分钟自动执行）/ take the matcher's requests and escalate overdue "
    "work (the server also does it every minute)", errors=(403,)))
def sweep(conn: Connection, actor: Actor) -> tuple[int, dict[str, Any]]:
    """Take pending matcher requests and escalate overdue work now (the server also does it every minute)."""
    actor.require_role(COMMANDER, ADMIN)
    moment = now()
    return 200, {**take_requests(conn, moment), "escalations": escalate_overdue(conn, moment)}


@api.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_endpoint(unknown: str) -> Response:
    """Anything else under /api/v1 answers JSON (not the Dash page that catches every other path): 405 with
    ``Allow`` for a path that exists under other methods, else 404."""
    allowed = _methods_of(request.path)
    if allowed:
        message = (f"{request.method} 不适用于此接口，可用：{', '.join(allowed)} / {request.method} is not allowed "
                   f"here: use {', '.join(allowed)}")
        lang = reply_language()
        return json_response({"error": "MethodNotAllowed", "message": one_side(message, lang)}, 405,
                             {"Allow": ", ".join(allowed), "Content-Language": lang})
    return error_response(NotFound(f"没有这个接口 {request.method} /api/v1/{unknown}（见 /api/v1/openapi.json）/ "
                                   f"no such endpoint or method"))


def _methods_of(path: str) -> list[str]:
    """The methods some other route of the API takes at ``path`` (this catch-all takes them all)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    return allowed


@api.errorhandler(413)
def too_large(_error: Exception) -> Response:
    return error_response(InvalidRequest("上传内容过大（最多 5 MB）/ the upload is too large (5 MB at most)", "photo"))
