"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Hand-written, because it is the contract and is reviewed like code. Small builders below keep it
free of repetition; the enumerations (task kinds, statuses, actions, roles) come from the domain
modules, so the document cannot drift from them. ``tests/api/test_openapi.py`` checks it against the
app's routes and sends its examples to a live server.

Conventions of the document:

- ``x-roles`` lists the roles that may call an operation, the one its examples are written for
  first; ``anonymous`` means that no login is needed.
- The examples use the reference district and the demo accounts (``gridctl users demo``): grid
  440605011001001 belongs to demo_worker, its community 440605011001 to demo_supervisor, and
  checkpoint KK44060501100101 stands in that community.
"""

from __future__ import annotations

from flask import Blueprint

from accounts.actor import ADMIN, COMMANDER, REPORTER, ROLE_NAMES, SUPERVISOR, SYSTEM, WORKER
from api.http import CSRF_HEADER, IDEMPOTENCY_HEADER, SESSION_COOKIE, json_response
from tasks import lifecycle
from tasks.kinds import load_kinds
from tasks.photos import FORMATS
from tasks.repository import SOURCES

openapi = Blueprint("openapi", __name__)

ANONYMOUS = "anonymous"
STAFF = (WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN)  # every role that logs in
ROW_READERS = (WORKER, SUPERVISOR, COMMANDER, ADMIN)  # the reporter reads aggregates only
COLOURS = ("red", "yellow", "blue", "green")
DEMO_GRID = "440605011001001"
DEMO_COMMUNITY = "440605011001"
DEMO_CHECKPOINT = "KK44060501100101"
DEMO_POINT = {"lon": 113.1524, "lat": 23.0551}  # inside DEMO_GRID
DEMO_PERSON_KEY = "5f0c6a1e9b8d4c3f2a1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b"
DEMO_ID_NUMBER = "440605198503030010"  # a made-up number with a valid GB 11643 check digit
LEAD_STATUSES = ("open", "triaged", "dismissed")
LEVELS = ("district", "town", "community", "grid")
TAGS = {"session": "会话 session", "tasks": "任务 tasks", "grids": "网格 grids", "persons": "人员 persons",
        "leads": "线索 leads", "checkpoints": "卡口 checkpoints", "stats": "统计 stats",
        "operations": "运维 operations"}


# -- schema builders -----------------------------------------------------------------------------
def ref(name: str, kind: str = "schemas") -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def field(kind: str, description: str | None = None, **extra) -> dict:
    schema = {"type": kind, **extra}
    if description:
        schema["description"] = description
    return schema


def text(description: str | None = None, **extra) -> dict:
    return field("string", description, **extra)


def integer(description: str | None = None, **extra) -> dict:
    return field("integer", description, **extra)


def moment(description: str | None = None) -> dict:
    return text(description, format="date-time")


def enum(values, description: str | None = None) -> dict:
    return text(description, enum=list(values))


def array(items: dict, description: str | None = None, **extra) -> dict:
    return field("array", description, items=items, **extra)


def nullable(schema: dict) -> dict:
    """``schema`` or null: a type list (with null in an enum), or ``anyOf`` for a reference."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def obj(properties: dict, description: str | None = None, optional=(), required=None) -> dict:
    """An object; every property is always present unless named in ``optional`` (or ``required`` is given)."""
    schema = field("object", description, properties=properties)
    schema["required"] = list(required) if required is not None else [p for p in properties if p not in optional]
    return schema


def extend(base: dict, properties: dict, description: str) -> dict:
    """``base`` with more (always present) properties, spelled out rather than ``allOf``: one whole shape each."""
    merged = obj({**base["properties"], **properties}, description)
    merged["required"] = [*base["required"], *properties]
    return merged


GRID_CODE = text("15 位网格编码（区 6 + 镇街 3 + 村居 3 + 序号 3）/ 15-digit grid code", pattern="^[0-9]{15}$")
PERSON_KEY = text("人员键：规范化身份证号的 HMAC / the person key, an HMAC of the ID number", pattern="^[0-9a-f]{64}$")
COUNT = integer(minimum=0)
RATE = nullable(field("number", minimum=0, maximum=1))
HOURS = nullable(field("number", minimum=0))


def _kinds_text() -> str:
    return "\n".join(f"- `{k.code}` {k.name} / {k.name_en}：时限 {k.sla_minutes} 分钟"
                     + ("，须测温 / needs a temperature" if k.needs_temperature else "")
                     for k in load_kinds().values())


ACTION_FIELDS = {"dispatch": "assignee_id（省略则自动派给在岗网格员 / omitted: auto-dispatch）",
                 "reassign": "assignee_id", "decline": "reason", "rework": "reason", "cancel": "reason",
                 "handle": "result, temperature（须测温的类型 / kinds that need it）, photos",
                 "request_extension": "until, reason", "refuse_extension": "reason"}


def _actions_text() -> str:
    lines = []
    for action in lifecycle.ACTIONS.values():
        roles = ", ".join(r for r in action.roles if r != SYSTEM)
        target = action.target or "状态不变 / unchanged"
        needs = f"；字段 / fields: {ACTION_FIELDS[action.name]}" if action.name in ACTION_FIELDS else ""
        lines.append(f"- `{action.name}` {action.label}：{', '.join(action.sources)} → {target}（{roles}）{needs}")
    return "\n".join(lines)


def schemas() -> dict:
    location = obj({"lon": field("number", "经度 / longitude", minimum=-180, maximum=180),
                    "lat": field("number", "纬度 / latitude", minimum=-90, maximum=90)}, "WGS84 坐标 / a WGS84 point")
    person_ref = obj({"person_key": PERSON_KEY, "id_masked": nullable(text()), "name_masked": nullable(text()),
                      "colour": nullable(enum(COLOURS))}, "任务涉及的人员（脱敏）/ the person of a task, masked")
    task = obj({
        "id": integer(), "kind": enum(load_kinds(), "任务类型 / task kind"), "kind_name": text(),
        "status": enum(lifecycle.STATUSES), "status_name": text("状态中文名 / status in Chinese"),
        "priority": integer("1 最紧急 / 1 = most urgent", minimum=1), "title": text(maxLength=200),
        "detail": nullable(text()), "source": enum(SOURCES), "grid_code": GRID_CODE,
        "person": nullable(ref("PersonRef")), "lead_id": nullable(integer()), "checkpoint_id": nullable(integer()),
        "assignee_id": nullable(integer("网格员用户编号 / the worker's user id")),
        "assignee": nullable(text("网格员用户名 / username")), "assignee_name": nullable(text()),
        "created_by": text("创建人用户名或 system / username or system"), "created_at": moment(),
        "dispatched_at": nullable(moment()), "handled_at": nullable(moment()), "closed_at": nullable(moment()),
        "cancelled_at": nullable(moment()), "sla_minutes": integer(minimum=1), "due_at": moment("时限 / due time"),
        "overdue": field("boolean", "未结且已超时 / open and past due"),
        "escalation_level": integer("0 未超时，1 已上报社区，2 已上报镇街 / 0 none, 1 community, 2 town",
                                    minimum=0, maximum=2),
        "rework_count": COUNT, "extension_count": COUNT, "extension_requested_until": nullable(moment()),
        "version": integer("乐观锁版本：变更时原样提交 / send it back with every change", minimum=1),
        "location": nullable(ref("Location")),
    }, "任务（个人信息已脱敏）/ a field task, personal data masked")
    event = obj({
        "id": integer(), "task_id": integer(), "seq": integer("任务内序号 / position in the task", minimum=1),
        "action": enum(["create", *lifecycle.ACTIONS, "escalate"]), "from_status": nullable(enum(lifecycle.STATUSES)),
        "to_status": enum(lifecycle.STATUSES), "actor": text("用户名或 system / username or system"),
        "actor_role": enum([*STAFF, SYSTEM]), "at": moment(), "note": nullable(text()),
        "detail": field("object", "按操作而定：reason、result、temperature、photos、assignee_id、level… / "
                                  "depends on the action"),
        "location": nullable(ref("Location")),
    }, "任务时间线的一行（只追加）/ one append-only line of a task's timeline")
    person = obj({
        "person_key": PERSON_KEY, "id_masked": text(examples=["440605********0010"]), "name_masked": text(),
        "phone_masked": nullable(text()), "colour": enum(COLOURS, "四色码 / risk code"),
        "reason": text("赋码原因 / why"), "rule_id": nullable(text()), "sources": nullable(text("数据来源 / sources")),
        "set_at": nullable(moment()), "expires_at": nullable(moment()),
        "method": nullable(text("定位方式 / how he was placed")), "confidence": field("number"),
        "grid_code": nullable(GRID_CODE), "unplaced_reason": nullable(text("未落格原因 / why no grid")),
    }, "人员（脱敏）/ a person, masked")
    lead = obj({
        "id": integer(), "status": enum(LEAD_STATUSES), "summary": text(), "address": nullable(text()),
        "location": nullable(ref("Location")), "grid_code": nullable(GRID_CODE),
        "report_count": integer("合并的举报数 / reports merged into it", minimum=1),
        "first_reported_at": moment(), "last_reported_at": moment(),
    }, "线索 / a lead (reports of the same place within 24 h are merged)")
    lead_report = obj({"id": integer(), "received_at": moment(), "description": text(), "address": nullable(text()),
                       "contact": nullable(text("脱敏联系方式 / masked contact")),
                       "channel": enum(("public", "staff"))})
    session = obj({"username": text(), "display_name": text(), "role": enum(STAFF),
                   "role_name": text(), "grid_codes": array(GRID_CODE, "负责的网格 / grids answered for"),
                   "csrf_token": text(f"变更请求须放在 {CSRF_HEADER} 头 / echo it in {CSRF_HEADER}"),
                   "expires_at": moment("仅登录时返回 / on login only")}, optional=("expires_at",))
    return {
        "Location": location,
        "Error": obj({"error": text("错误代码：异常名，或冲突代码 stale_version、illegal_transition、"
                                    "no_worker_on_duty、extension_pending、no_extension_pending、lead_not_open / "
                                    "error code"),
                      "message": text("中文 / English 说明 / message"),
                      "field": text("出错的字段 / the offending field (422)"),
                      "current": {"anyOf": [ref("Task"), ref("Lead")],
                                  "description": "冲突时对象的当前状态 / the object as it is now (409)"}},
                     "所有拒绝的统一格式 / one shape for every refusal", required=("error", "message")),
        "Credentials": obj({"username": text(), "password": text(format="password")}),
        "Session": session,
        "Duty": obj({"on_duty": field("boolean", "在岗才会被自动派单 / only on-duty workers get auto-dispatch")}),
        "DutyState": obj({"username": text(), "on_duty": field("boolean")}),
        "PersonRef": person_ref,
        "Task": task,
        "TaskEvent": event,
        "TaskWithEvents": extend(task, {"events": array(ref("TaskEvent"), "最早的在前 / oldest first")},
                                 "任务及其完整时间线 / a task with its timeline"),
        "TaskList": obj({"tasks": array(ref("Task"), "按时限排序 / most urgent first"), "total": COUNT,
                         "limit": integer(), "offset": integer()}),
        "NewTask": obj({
            "kind": enum(load_kinds(), "任务类型 / task kind:\n" + _kinds_text()), "grid_code": GRID_CODE,
            "title": text(minLength=1, maxLength=200), "detail": text(), "person_key": PERSON_KEY,
            "location": ref("Location"),
            "dispatch": field("boolean", "立即派遣（默认）/ dispatch at once", default=True),
            "assignee_id": integer("指定网格员；省略则自动派给本网格或相邻网格的在岗网格员 / omitted: auto-dispatch"),
        }, required=("kind", "grid_code", "title")),
        "Transition": obj({
            "action": enum(lifecycle.ACTIONS, "操作 / action:\n" + _actions_text()),
            "version": integer("任务当前版本；不符返回 409 stale_version / the version you saw", minimum=1),
            "note": text(maxLength=lifecycle.TEXT_LIMIT), "reason": text(maxLength=lifecycle.TEXT_LIMIT),
            "result": text("处置结果 / what was done", maxLength=lifecycle.TEXT_LIMIT),
            "temperature": field("number", "体温 ℃", minimum=lifecycle.TEMPERATURE_RANGE[0],
                                 maximum=lifecycle.TEMPERATURE_RANGE[1]),
            "photos": array(integer(), "已上传照片编号 / ids of uploaded photos"),
            "until": moment("延期至（带时区）/ new due time, with its offset"), "assignee_id": integer(),
            "location": ref("Location"),
        }, "任务流转 / a lifecycle action", required=("action", "version")),
        "TransitionResult": obj({"task": ref("Task"), "event": ref("TaskEvent")}),
        "Photo": obj({"id": integer(), "task_id": integer(), "content_type": enum(FORMATS.values()),
                      "size": integer(minimum=1), "width": integer(minimum=1), "height": integer(minimum=1),
                      "sha256": text(pattern="^[0-9a-f]{64}$")}),
        "TimelineEvent": extend(event, {"kind": enum(load_kinds()), "title": text()},
                                "网格时间线的一行：事件加任务类型与标题 / an event with its task's kind and title"),
        "GridTimeline": obj({"grid_code": GRID_CODE,
                             "events": array(ref("TimelineEvent"), "最新的在前 / newest first")}),
        "Worker": obj({"id": integer(), "username": text(), "display_name": text(), "on_duty": field("boolean"),
                       "grid_codes": array(GRID_CODE), "open_tasks": integer(minimum=0)}),
        "WorkerList": obj({"workers": array(ref("Worker"), "按用户名排序 / by username")}),
        "Person": person,
        "GridPersons": obj({"grid_code": GRID_CODE,
                            "persons": array(ref("Person"), "红、黄、蓝码人员 / flagged persons")}),
        "Unmask": obj({"reason": text("查看理由（记入审计日志）/ why (audited)", minLength=2)}),
        "UnmaskedPerson": extend(person, {"id_number": text(), "name": text(), "phone": text()},
                                 "人员及其完整证件号、姓名、电话（已审计）/ a person in clear, audited"),
        "NewLeadReport": obj({
            "description": text("发生了什么 / what happened", maxLength=lifecycle.TEXT_LIMIT),
            "address": text(maxLength=200), "location": ref("Location"),
            "crs": enum(("wgs84", "gcj02", "bd09"), "location 的坐标系（默认 wgs84）/ CRS of location"),
            "contact": text("联系方式（加密保存）/ contact, stored sealed", maxLength=50),
        }, "地址与坐标至少给一个 / an address, a point, or both", required=("description",)),
        "LeadReceipt": obj({"id": integer(), "status": enum(LEAD_STATUSES), "report_count": integer(minimum=1),
                            "placed": field("boolean", "已定位到网格 / placed in a grid"),
                            "merged": field("boolean", "并入已有线索 / merged into an open lead")}),
        "Lead": lead,
        "LeadReport": lead_report,
        "LeadDetail": extend(lead, {"reports": array(ref("LeadReport"))}, "线索及其全部举报 / a lead with its reports"),
        "LeadList": obj({"leads": array(ref("Lead"), "最近举报的在前 / newest report first")}),
        "Triage": obj({"kind": enum(load_kinds(), "默认 lead_verification / default lead_verification"),
                       "grid_code": GRID_CODE, "dispatch": field("boolean", default=True), "assignee_id": integer(),
                       "dismiss": field("boolean", "true：不建任务，直接关闭线索 / close without a task")},
                      required=()),
        "NewScan": obj({
            "checkpoint": text("卡口编号 / checkpoint code"), "person_key": PERSON_KEY,
            "pass_code": text("通行码（身份证号），立即转为人员键，不保存 / the ID number read at the gate"),
            "direction": enum(("in", "out")), "scanned_at": moment("默认当前时间 / default: now"),
        }, "person_key 与 pass_code 给一个 / person_key or pass_code", required=("checkpoint", "direction")),
        "Scan": obj({"id": integer(), "checkpoint": text(), "scanned_at": moment(), "direction": enum(("in", "out")),
                     "alert": field("boolean", "红、黄码预警 / red or yellow"), "colour": nullable(enum(COLOURS)),
                     "task_id": nullable(integer("卡口预警任务 / the checkpoint-alert task"))}),
        "CheckpointScans": obj({"checkpoint": text(), "from": moment(), "to": moment(),
                                "hours": array(obj({"hour": moment("北京时间整点 / Beijing hour"), "in": COUNT,
                                                    "out": COUNT, "alerts": COUNT}))}),
        "StatsRow": stats_row(),
        "Stats": obj({"level": enum(LEVELS), "from": moment(), "to": moment(),
                      "as_of": moment("评价时点 min(to, now) / evaluation time"), "generated_at": moment(),
                      "rows": array(ref("StatsRow"))}),
        "SweepResult": obj({"tasks": COUNT, "unplaced": COUNT, "escalations": COUNT}),
    }


def stats_row() -> dict:
    """One unit's indicators; the property order is the CSV column order."""
    counts = {"tasks": "任务数（不含撤销）/ tasks, cancelled ones left out", "cancelled": "撤销 / cancelled",
              "closed": "结案 / closed", "closed_on_time": "按期结案 / closed by the due time",
              "open_overdue": "未结且超时 / open and overdue", "handled": "已反馈 / handled at least once",
              "reworked": "返工过 / sent back at least once", "extended": "延期过 / extended at least once"}
    rates = {"closure_rate": "结案率 = closed / tasks",
             "on_time_rate": "按期结案率 = closed_on_time / (closed + open_overdue)",
             "rework_rate": "返工率 = reworked / handled", "extension_rate": "延期率 = extended / tasks"}
    return obj({
        "level": enum(LEVELS), "code": text("区划或网格编码 / unit code"), "name": text(),
        **{name: {**COUNT, "description": words} for name, words in counts.items()},
        **{name: {**RATE, "description": words + "（分母为 0 时为 null）"} for name, words in rates.items()},
        "median_handling_hours": {**HOURS, "description": "结案用时中位数（小时）/ median hours to close"},
        "p90_handling_hours": {**HOURS, "description": "结案用时 90 分位（小时）/ 90th percentile"},
        **{f"persons_{c}": nullable(integer(f"{c} 码人数；统计员看到的 1–4 为 null（防识别）/ suppressed 1–4 "
                                            f"for reporters", minimum=0)) for c in COLOURS},
    }, "一个单元的考核指标（比率附分子分母）/ one unit's indicators")


# -- parameters, responses, operations -----------------------------------------------------------
def parameter(where: str, name: str, schema: dict, description: str, example=None, **extra) -> dict:
    param = {"name": name, "in": where, "required": where == "path", "description": description, "schema": schema}
    if example is not None:
        param["example"] = example
    return {**param, **extra}


def path_param(name: str, schema: dict, description: str, example) -> dict:
    return parameter("path", name, schema, description, example)


def query(name: str, schema: dict, description: str, example=None, **extra) -> dict:
    return parameter("query", name, schema, description, example, **extra)


def limit(default: int) -> dict:
    return query("limit", integer(minimum=1, maximum=1000, default=default), "最多返回条数 / page size", default)


def json_body(schema: str, example: dict, description: str | None = None) -> dict:
    body = {"required": True, "content": {"application/json": {"schema": ref(schema), "example": example}}}
    if description:
        body["description"] = description
    return body


def answer(description: str, schema: str | None = None, headers: dict | None = None) -> dict:
    response = {"description": description}
    if schema:
        response["content"] = {"application/json": {"schema": ref(schema)}}
    if headers:
        response["headers"] = headers
    return response


ERRORS = {
    401: ("Unauthenticated", "未登录或会话已过期 / no login, or the session expired"),
    403: ("Forbidden", f"角色或数据范围不允许，或缺少/错误的 {CSRF_HEADER} / the role or data scope does not "
                       f"allow it, or {CSRF_HEADER} is missing"),
    404: ("NotFound", "不存在或不在您的数据范围内（两者不作区分）/ no such object in your scope"),
    409: ("Conflict", "与对象当前状态冲突：error 为冲突代码，current（如有）为当前对象 / conflicts with the "
                      "object's state; current shows it"),
    422: ("Invalid", f"字段缺失或错误（field 指出字段），或 {IDEMPOTENCY_HEADER} 无效或已用于另一请求 / a field "
                     f"is missing or wrong, or the {IDEMPOTENCY_HEADER} is invalid or reused"),
    429: ("RateLimited", "过于频繁，请按 Retry-After 秒后再试 / too many attempts; retry after Retry-After seconds"),
}


def responses() -> dict:
    out = {name: answer(words, "Error") for name, words in ERRORS.values()}
    out["RateLimited"]["headers"] = {"Retry-After": {"description": "秒 / seconds", "schema": integer(minimum=1)}}
    return out


def _security(roles, changes: bool) -> list[dict]:
    login = {"session": [], "csrf": []} if changes else {"session": []}
    if ANONYMOUS not in roles:
        return [login]
    return [] if list(roles) == [ANONYMOUS] else [{}, login]


def _role_names(roles) -> str:
    return "、".join(f"{ROLE_NAMES.get(r, '匿名')} {r}" for r in roles)


def operation(name: str, tag: str, summary: str, roles, ok: dict, description: str = "", parameters=(),
              body: dict | None = None, errors=(), changes: bool = False, replayable: bool = False) -> dict:
    """One operation with the statuses that really occur.

    ``ok`` maps success statuses to responses; ``errors`` are the refusals of the operation itself. A
    login adds 401, a state change behind a login adds 403 (CSRF), and ``replayable`` (an endpoint
    that stores its answer under Idempotency-Key) adds the header, the replay marker and 422.
    """
    statuses = set(errors) | ({401} if ANONYMOUS not in roles else set()) | ({422} if replayable else set())
    if changes and ANONYMOUS not in roles:
        statuses.add(403)
    parameters = [*parameters, *([ref("IdempotencyKey", "parameters")] if replayable else [])]
    if replayable:
        ok = {status: {**response, "headers": {**response.get("headers", {}),
                                               "Idempotent-Replayed": ref("IdempotentReplayed", "headers")}}
              for status, response in ok.items()}
    result = {"operationId": name, "tags": [tag], "summary": summary,
              "description": (description + "\n\n" if description else "") + f"角色 / roles: {_role_names(roles)}",
              "x-roles": list(roles), "security": _security(roles, changes),
              "responses": {**{str(s): r for s, r in ok.items()},
                            **{str(s): ref(ERRORS[s][0], "responses") for s in sorted(statuses)}}}
    if parameters:
        result["parameters"] = parameters
    if body:
        result["requestBody"] = body
    return result


def mutation(name: str, tag: str, summary: str, roles, ok: dict, description: str = "", **kwargs) -> dict:
    """A state change stored under Idempotency-Key (``api.http.mutation``)."""
    return operation(name, tag, summary, roles, ok, description, changes=True, replayable=True, **kwargs)


TASK_ID = path_param("task_id", integer(minimum=1), "任务编号 / task id", 1)
GRID = path_param("code", GRID_CODE, "网格编码 / grid code", DEMO_GRID)
PERIOD = (query("from", text(anyOf=[{"format": "date"}, {"format": "date-time"}]),
                "起始：北京日期 YYYY-MM-DD 或 ISO 时间（默认 to 前 30 天）/ start: a Beijing date or an ISO time "
                "(default: 30 days before to)", "2026-11-01"),
          query("to", text(anyOf=[{"format": "date"}, {"format": "date-time"}]),
                "截止：日期含当天，或 ISO 时间（默认今天结束）/ end: a date (inclusive) or an ISO time (default: "
                "end of today)", "2026-11-30"))
CSV_EXAMPLE = ("\ufeff# 数据时间 2026-11-25T20:00:00+00:00; 查询 /api/v1/stats?level=grid&area=440605011001\n"
               + ",".join(stats_row()["properties"]) + "\n"
               + "grid,440605011001001,桂一社区第1网格,4,0,3,2,1,3,1,0,0.75,0.5,0.3333,0.0,5.2,9.81,0,6,0,0\n")


def paths() -> dict:
    return {
        "/session": {
            "get": operation("who_am_i", TAGS["session"], "当前登录 / who am I", STAFF,
                             {200: answer("当前用户与 CSRF 令牌 / the user and his CSRF token", "Session")}),
            "post": operation(
                "log_in", TAGS["session"], "登录 / log in", (ANONYMOUS,),
                {201: answer("已登录，会话 Cookie 已设置 / logged in", "Session",
                             {"Set-Cookie": {"description": f"{SESSION_COOKIE}（HttpOnly, SameSite=Lax）",
                                             "schema": text()}})},
                "失败过多时按账号和客户端限流 / throttled per account and client after repeated failures",
                body=json_body("Credentials", {"username": "demo_worker", "password": "nanhai-demo-2026"},
                               "示例为 make run 演示账号的口令 / the example is the demo password of make run"),
                errors=(401, 422, 429)),
            "delete": operation("log_out", TAGS["session"], "退出 / log out", STAFF,
                                {204: {"description": "已退出，Cookie 已清除 / logged out"}}, changes=True),
        },
        "/duty": {"post": mutation("duty", TAGS["session"], "上岗 / 离岗 / go on or off duty", (WORKER,),
                                   {200: answer("当前在岗状态 / the duty state", "DutyState")},
                                   body=json_body("Duty", {"on_duty": True}), errors=(403,))},
        "/tasks": {
            "get": operation(
                "task_list", TAGS["tasks"], "任务列表 / tasks in scope", ROW_READERS,
                {200: answer("一页任务，按时限排序 / a page of tasks, most urgent first", "TaskList")},
                parameters=(
                    query("status", array(enum(lifecycle.STATUSES)), "状态，逗号分隔 / statuses, comma-separated",
                          ["dispatched", "accepted"], style="form", explode=False),
                    query("grid", GRID_CODE, "网格编码 / grid code", DEMO_GRID),
                    query("overdue", field("boolean"), "仅超时（true）或仅未超时（false）/ overdue only, or not",
                          False),
                    query("assignee", text(), "网格员用户名 / the worker's username", "demo_worker"),
                    limit(200), query("offset", integer(minimum=0, maximum=10**9, default=0), "跳过条数 / offset", 0)),
                errors=(403, 422)),
            "post": mutation(
                "task_create", TAGS["tasks"], "新建任务 / create a task", (SUPERVISOR, COMMANDER),
                {201: answer("新任务；无在岗网格员时保持 created / the task (left created when nobody is on duty)",
                             "Task")},
                body=json_body("NewTask", {"kind": "home_visit", "grid_code": DEMO_GRID, "title": "入户走访测温",
                                           "detail": "桂一一路149号 3 楼，居家观察第 2 天", "location": DEMO_POINT}),
                errors=(403, 404)),
        },
        "/tasks/{task_id}": {"get": operation(
            "task_detail", TAGS["tasks"], "任务及时间线 / a task with its timeline", ROW_READERS,
            {200: answer("任务 / the task", "TaskWithEvents")}, parameters=(TASK_ID,), errors=(403, 404))},
        "/tasks/{task_id}/transitions": {"post": mutation(
            "task_transition", TAGS["tasks"], "任务流转 / apply a lifecycle action", (WORKER, SUPERVISOR, COMMANDER),
            {200: answer("新状态与新增事件 / the task and its new event", "TransitionResult")},
            "带上读到的 version；他人先改则 409 stale_version（附当前任务）/ send the version you read; a change "
            "made first by someone else answers 409 stale_version with the current task",
            parameters=(TASK_ID,), errors=(403, 404, 409),
            body=json_body("Transition", {"action": "accept", "version": 2, "note": "已接收，30 分钟内到达",
                                          "location": DEMO_POINT}))},
        "/tasks/{task_id}/photos": {"post": mutation(
            "task_photo", TAGS["tasks"], "上传现场照片 / upload a photo", ROW_READERS,
            {201: answer("照片编号，在 handle 的 photos 中引用 / the photo, to name in handle's photos", "Photo")},
            "先上传（可单独重试），再在 handle 操作中引用；网格员只能传给派给自己的任务 / upload first, then name "
            f"it in handle; a worker only to his own tasks. {IDEMPOTENCY_HEADER} 重试须发送相同字节 / a retry "
            "must resend the same bytes", parameters=(TASK_ID,), errors=(403, 404),
            body={"required": True, "content": {"multipart/form-data": {
                "schema": obj({"photo": text("JPEG、PNG 或 WebP，≤ 5 MB，边长 ≤ 10000 / at most 5 MB",
                                             contentMediaType="application/octet-stream")}),
                "encoding": {"photo": {"contentType": ", ".join(FORMATS.values())}}}}})},
        "/photos/{photo_id}": {"get": operation(
            "photo", TAGS["tasks"], "读取照片 / a photo", ROW_READERS,
            {200: {"description": "图片 / the image", "content": {
                mime: {"schema": text(contentMediaType=mime)} for mime in FORMATS.values()}}},
            parameters=(path_param("photo_id", integer(minimum=1), "照片编号 / photo id", 1),), errors=(403, 404))},
        "/workers": {"get": operation(
            "workers", TAGS["grids"], "可派遣的网格员 / the workers one may dispatch to",
            (SUPERVISOR, COMMANDER, ADMIN),
            {200: answer("本辖区网格员及其在办任务数 / the workers of one's area with their open tasks", "WorkerList")},
            "assignee_id 取自这里 / where dispatch and reassign find assignee_id",
            parameters=(query("grid", GRID_CODE, "只看此网格 / of this grid only", DEMO_GRID), limit(500)),
            errors=(403, 422))},
        "/grids/{code}/timeline": {"get": operation(
            "grid_timeline", TAGS["grids"], "网格时间线 / a grid's timeline", ROW_READERS,
            {200: answer("最新事件在前 / newest first", "GridTimeline")},
            parameters=(GRID, limit(100), query("before", integer(minimum=1), "翻页：只返回编号小于它的事件 / "
                                                "events with a smaller id (paging back)", 1_000_000_000)),
            errors=(403, 404, 422))},
        "/grids/{code}/persons": {"get": operation(
            "grid_persons", TAGS["grids"], "网格内红黄蓝码人员 / flagged persons of a grid", ROW_READERS,
            {200: answer("最红的在前，最多 500 / reddest first, at most 500", "GridPersons")},
            parameters=(GRID,), errors=(403, 404))},
        "/persons/{key}": {"get": operation(
            "person", TAGS["persons"], "人员（脱敏）/ a person, masked", ROW_READERS,
            {200: answer("人员 / the person", "Person")}, errors=(403, 404),
            parameters=(path_param("key", PERSON_KEY, "人员键 / person key", DEMO_PERSON_KEY),))},
        "/persons/{key}/unmask": {"post": mutation(
            "person_unmask", TAGS["persons"], "查看完整信息 / read a person in clear", (WORKER, SUPERVISOR, COMMANDER),
            {200: answer("完整信息（已写审计日志）/ in clear, audited", "UnmaskedPerson")},
            "须说明理由，每次读取记入审计日志 / needs a reason; every read is audited", errors=(403, 404),
            parameters=(path_param("key", PERSON_KEY, "人员键 / person key", DEMO_PERSON_KEY),),
            body=json_body("Unmask", {"reason": "入户走访前电话联系本人 / calling him before the visit"}))},
        "/leads": {
            "post": mutation(
                "lead_report", TAGS["leads"], "举报线索 / report a lead", (ANONYMOUS, *STAFF),
                {201: answer("线索回执（同地 24 小时内合并）/ the lead (merged with reports of the same place)",
                             "LeadReceipt")},
                "无需登录；匿名举报每客户端 10 分钟 5 次 / no login needed; anonymous reports are limited per client",
                body=json_body("NewLeadReport", {"description": "楼下有从外地返回人员未报备", "address":
                                                 "桂城街道桂一一路149号", "location": DEMO_POINT, "crs": "wgs84",
                                                 "contact": "13800138000"}),
                errors=(429,)),
            "get": operation(
                "lead_list", TAGS["leads"], "线索列表 / leads in scope", ROW_READERS,
                {200: answer("线索 / leads", "LeadList")},
                parameters=(query("status", enum((*LEAD_STATUSES, "all"), None) | {"default": "open"},
                                  "状态，all 为全部 / status, all for every lead", "open"), limit(200)),
                errors=(403, 422)),
        },
        "/leads/{lead_id}": {"get": operation(
            "lead_detail", TAGS["leads"], "线索详情 / a lead with its reports", ROW_READERS,
            {200: answer("线索 / the lead", "LeadDetail")},
            parameters=(path_param("lead_id", integer(minimum=1), "线索编号 / lead id", 1),), errors=(403, 404))},
        "/leads/{lead_id}/triage": {"post": mutation(
            "lead_triage", TAGS["leads"], "研判线索 / triage a lead", (SUPERVISOR, COMMANDER),
            {201: answer("已转为任务（默认线索核查）/ the task made from it", "Task"),
             200: answer("dismiss 为 true 时：已关闭的线索 / with dismiss: the dismissed lead", "Lead")},
            parameters=(path_param("lead_id", integer(minimum=1), "线索编号 / lead id", 1),),
            body=json_body("Triage", {"kind": "lead_verification", "dispatch": True}), errors=(403, 404, 409))},
        "/scans": {"post": mutation(
            "scan", TAGS["checkpoints"], "记录扫码 / record a scan", (SUPERVISOR, COMMANDER, ADMIN, WORKER),
            {201: answer("扫码记录；红黄码生成或并入卡口预警任务 / the scan; red or yellow raises an alert task",
                         "Scan")},
            body=json_body("NewScan", {"checkpoint": DEMO_CHECKPOINT, "pass_code": DEMO_ID_NUMBER,
                                       "direction": "in"}), errors=(403, 404))},
        "/checkpoints/{code}/scans": {"get": operation(
            "checkpoint_scans", TAGS["checkpoints"], "卡口每小时通行量 / scans per hour at a checkpoint",
            (SUPERVISOR, COMMANDER, REPORTER, ADMIN, WORKER),
            {200: answer("按北京时间整点 / per hour", "CheckpointScans")},
            "汇总数据，统计员可读 / aggregates: the reporter may read them",
            parameters=(path_param("code", text(), "卡口编号 / checkpoint code", DEMO_CHECKPOINT), *PERIOD),
            errors=(404, 422))},
        "/stats": {"get": operation(
            "stats", TAGS["stats"], "考核统计 / indicators per unit", (REPORTER, WORKER, SUPERVISOR, COMMANDER, ADMIN),
            {200: {"description": "Accept: text/csv 时为 Excel 可读的 CSV（带 BOM 与数据时间注释行）/ CSV with a BOM "
                                  "and a comment line when asked for text/csv",
                   "content": {"application/json": {"schema": ref("Stats")},
                               "text/csv": {"schema": text(), "example": CSV_EXAMPLE}}}},
            "统计员看到的 1–4 人计数为 null / counts of 1 to 4 persons are suppressed for reporters",
            parameters=(query("level", enum(LEVELS) | {"default": "district"}, "汇总层级 / level", "grid"),
                        query("area", text(pattern="^[0-9]{6,15}$"), "编码前缀，如村居 / a code prefix",
                              DEMO_COMMUNITY), *PERIOD),
            errors=(422,))},
        "/sweeps": {"post": mutation(
            "sweep", TAGS["operations"], "立即巡检 / sweep now", (COMMANDER, ADMIN),
            {200: answer("新建任务、未落格请求与升级数 / tasks made, requests unplaced, escalations", "SweepResult")},
            "处理比对产生的任务请求并升级超时任务（服务器每分钟自动执行）/ take the matcher's requests and escalate "
            "overdue work (the server also does it every minute)", errors=(403,))},
        "/openapi.json": {"get": operation(
            "openapi_json", TAGS["operations"], "本文档 / this document", (ANONYMOUS,),
            {200: answer("OpenAPI 3.1", "OpenApiDocument")})},
    }


INTRO = f"""南海区网格指挥平台的 JSON API / the JSON API of the Nanhai grid command platform.

- **登录 / login**：`POST /session` 设置 HttpOnly Cookie `{SESSION_COOKIE}` 并返回 `csrf_token`；
  之后每个 POST/DELETE 须带 `{CSRF_HEADER}`（若发送 Origin，须为本站）。
- **重试 / retries**：变更请求可带 `{IDEMPOTENCY_HEADER}`（1–128 字符）；同一键的重试返回第一次的应答
  （`Idempotent-Replayed: true`）且不重复执行；同一键用于不同请求返回 422。
- **错误 / errors**：一律为 `Error`：`error` 代码、`message`（中文 / English）、`field`（422）、`current`（409）。
- **数据范围 / scope**：网格员限本人网格，网格长限本村居，指挥中心与管理员全区；统计员只读汇总。
  范围外的对象与不存在的对象一样返回 404。
- **x-roles**：可调用的角色，示例按第一个角色编写；`anonymous` 表示无需登录。
  示例基于参考区与演示账号（demo_worker 负责网格 {DEMO_GRID}，demo_supervisor 负责村居 {DEMO_COMMUNITY}）。
"""


def document() -> dict:
    """The OpenAPI document (hand-written: it is the contract, so it is reviewed like code)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "南海区网格指挥平台 API", "version": "1", "description": INTRO},
        "servers": [{"url": "/api/v1"}],
        "security": [{"session": []}],
        "tags": [{"name": name} for name in TAGS.values()],
        "paths": paths(),
        "components": {
            "schemas": {**schemas(), "OpenApiDocument": field("object", "本文档 / this document",
                                                               required=["openapi", "info", "paths"])},
            "responses": responses(),
            "parameters": {"IdempotencyKey": parameter(
                "header", IDEMPOTENCY_HEADER, text(minLength=1, maxLength=128),
                "重试键：同一键的重试返回第一次的应答且不重复执行 / a retry with the same key gets the first "
                "answer and changes nothing", "7c1d3e52-8f4a-4b8e-9d2a-6a0f5e3b9c41")},
            "headers": {"IdempotentReplayed": {"description": "重放的应答 / a stored answer replayed",
                                               "schema": enum(("true",))}},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                            "description": "POST /session 设置 / set by POST /session"},
                "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
                         "description": "会话的 csrf_token，变更请求必带 / the session's csrf_token, on every change"},
            },
        },
    }


@openapi.get("/api/v1/openapi.json")
def openapi_json():
    return json_response(document())
