"""The /api/v1 endpoints: thin — parse the request, call the domain in the actor's scope, answer JSON."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, request

from accounts.actor import ROLE_NAMES, WORKER
from accounts.repository import check_login, close_session, open_session, set_on_duty, workers_in_scope
from api.http import (
    SESSION_COOKIE,
    body_json,
    client_tag,
    current_actor,
    engine,
    error_response,
    json_response,
    mutation,
    now,
    reader,
    vault,
)
from gis.db import changing, reading
from gis.errors import GridError, InvalidRequest, NotFound, Unauthenticated
from matching.person_repository import flagged_in_grid, get_person, unmask_person
from tasks import evaluation, lead_repository, photos, scan_repository
from tasks import repository as tasks
from tasks.leads import parse_report
from tasks.lifecycle import parse_location
from tasks.sla import escalate_overdue
from tasks.stats_export import CSV_MEDIA, Stamp, beijing_time, stats_csv

api = Blueprint("api_v1", __name__, url_prefix="/api/v1")
BEIJING = ZoneInfo("Asia/Shanghai")
MAX_PAGE = 1000


def _int_arg(name: str, default: int, low: int = 0, high: int = MAX_PAGE) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} 必须是整数 / {name} must be an integer", name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} 须在 {low}–{high} 之间 / {name} must be between {low} and {high}", name)
    return value


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise InvalidRequest(f"{name} 须为 true 或 false / {name} must be true or false", name)


def _text_field(data: dict, name: str, required: bool = False, limit: int = 1000) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"缺少 {name} / {name} is required", name)
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} 必须是文字 / {name} must be a string", name)
    if len(value) > limit:
        raise InvalidRequest(f"{name} 过长（最多 {limit} 字）/ {name} is longer than {limit} characters", name)
    return value


def _bool_field(data: dict, name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} 须为 true 或 false / {name} must be true or false", name)
    return value


def _id_field(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"{name} 必须是整数编号 / {name} must be an integer id", name)
    return value


def _person_key_field(data: dict) -> str | None:
    value = _text_field(data, "person_key")
    if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InvalidRequest("person_key 须为 64 位十六进制 / person_key must be 64 hex digits", "person_key")
    return value


def _session_body(actor, csrf: str | None = None, expires: datetime | None = None) -> dict:
    body = {"username": actor.username, "display_name": actor.display_name, "role": actor.role,
            "role_name": ROLE_NAMES[actor.role], "grid_codes": list(actor.grid_codes)}
    if csrf:
        body["csrf_token"] = csrf
    if expires:
        body["expires_at"] = expires.isoformat()
    return body


# -- session -------------------------------------------------------------------------------------
@api.get("/session")
def who_am_i():
    try:
        with reading(engine()) as conn:
            return json_response(_session_body(current_actor(conn), g.csrf))
    except GridError as exc:
        return error_response(exc)


def login(username: str, password: str) -> tuple[str, dict, datetime]:
    """Check a login (throttled); returns (cookie token, session body, expiry). Shared with the login page."""
    if not username or not password:
        raise InvalidRequest("请输入用户名和密码 / username and password are required", "username")
    moment = now()
    with engine().begin() as conn:
        actor = check_login(conn, username, password, client_tag(), moment)
        if actor is not None:
            token, csrf, expires = open_session(conn, actor.user_id, moment)
    if actor is None:
        raise Unauthenticated("用户名或密码错误 / wrong username or password")
    return token, _session_body(actor, csrf, expires), expires


def set_session_cookie(response: Response, token: str, expires: datetime) -> Response:
    response.set_cookie(SESSION_COOKIE, token, expires=expires, httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/")
    return response


@api.post("/session")
def log_in():
    try:
        data = body_json()  # JSON only: a cross-site form cannot send it without a preflight
        token, body, expires = login(str(data.get("username") or ""), str(data.get("password") or ""))
    except GridError as exc:
        return error_response(exc)
    return set_session_cookie(json_response(body, 201), token, expires)


@api.delete("/session")
def log_out():
    try:
        with changing(engine()) as conn:
            current_actor(conn)
            close_session(conn, request.cookies[SESSION_COOKIE])
    except GridError as exc:
        return error_response(exc)
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@api.post("/duty")
@mutation()
def duty(conn, actor):
    actor.require_role(WORKER)
    on_duty = body_json().get("on_duty")
    if not isinstance(on_duty, bool):
        raise InvalidRequest("on_duty 须为 true 或 false / on_duty must be true or false", "on_duty")
    set_on_duty(conn, actor.user_id, on_duty)
    return 200, {"username": actor.username, "on_duty": on_duty}


# -- tasks ---------------------------------------------------------------------------------------
@api.get("/tasks")
@reader
def task_list(conn, actor):
    statuses = tuple(s for s in (request.args.get("status") or "").split(",") if s)
    where = tasks.TaskFilter(grid_code=request.args.get("grid") or None, statuses=statuses,
                             overdue=_bool_arg("overdue"), assignee=request.args.get("assignee") or None,
                             limit=_int_arg("limit", 200, 1), offset=_int_arg("offset", 0, 0, 10**9))
    page, total = tasks.list_tasks(conn, actor, where, now())
    return json_response({"tasks": page, "total": total, "limit": where.limit, "offset": where.offset})


@api.post("/tasks")
@mutation()
def task_create(conn, actor):
    data = body_json()
    new = tasks.NewTask(kind=_text_field(data, "kind", required=True), grid_code=_text_field(data, "grid_code", True),
                        title=_text_field(data, "title", required=True), detail=_text_field(data, "detail"),
                        person_key=_person_key_field(data), point=parse_location(data),
                        dispatch=_bool_field(data, "dispatch", True), assignee_id=_id_field(data, "assignee_id"))
    return 201, tasks.create_task(conn, actor, new, now())


@api.get("/tasks/<int:task_id>")
@reader
def task_detail(conn, actor, task_id: int):
    return json_response(tasks.get_task(conn, actor, task_id, now()))


@api.post("/tasks/<int:task_id>/transitions")
@mutation()
def task_transition(conn, actor, task_id: int):
    data = body_json()
    if "version" not in data:
        raise InvalidRequest("请提供任务版本 version（防止覆盖他人的更新）/ version is required", "version")
    return 200, tasks.transition(conn, actor, task_id, str(data.get("action") or ""), data["version"], data, now())


@api.post("/tasks/<int:task_id>/photos")
@mutation()
def task_photo(conn, actor, task_id: int):
    upload = request.files.get("photo")
    if upload is None:
        raise InvalidRequest("请以 multipart/form-data 的 photo 字段上传照片 / send the photo as the multipart field "
                             "'photo'", "photo")
    return 201, photos.store_photo(conn, actor, task_id, upload.read(photos.MAX_BYTES + 1), now())


@api.get("/photos/<int:photo_id>")
def photo(photo_id: int):
    try:
        with reading(engine()) as conn:
            content_type, content = photos.load_photo(conn, current_actor(conn), photo_id, now())
    except GridError as exc:
        return error_response(exc)
    response = Response(content, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@api.get("/workers")
@reader
def workers(conn, actor):
    return json_response({"workers": workers_in_scope(conn, actor, request.args.get("grid") or None,
                                                      _int_arg("limit", 500, 1))})


@api.get("/grids/<code>/timeline")
@reader
def grid_timeline(conn, actor, code: str):
    before = request.args.get("before")
    events = tasks.grid_timeline(conn, actor, code, _int_arg("limit", 100, 1),
                                 _int_arg("before", 0, 1, 2**62) if before else None)
    return json_response({"grid_code": code, "events": events})


@api.get("/grids/<code>/persons")
@reader
def grid_persons(conn, actor, code: str):
    return json_response({"grid_code": code, "persons": flagged_in_grid(conn, actor, code)})


@api.get("/persons/<key>")
@reader
def person(conn, actor, key: str):
    return json_response(get_person(conn, actor, key))


@api.post("/persons/<key>/unmask")
@mutation()
def person_unmask(conn, actor, key: str):
    return 200, unmask_person(conn, actor, key, body_json().get("reason"), vault(), client_tag())


# -- leads ---------------------------------------------------------------------------------------
@api.post("/leads")
@mutation(login=False)
def lead_report(conn, actor):
    report = parse_report(body_json())
    channel = "public" if actor is None else "staff"
    return 201, lead_repository.submit_report(conn, report, client_tag(), channel, vault(), now(),
                                              actor.user_id if actor else None)


@api.get("/leads")
@reader
def lead_list(conn, actor):
    status = request.args.get("status") or "open"
    if status not in ("open", "triaged", "dismissed", "all"):
        raise InvalidRequest("status 须为 open、triaged、dismissed 或 all / unknown lead status", "status")
    return json_response({"leads": lead_repository.list_leads(conn, actor, None if status == "all" else status,
                                                              _int_arg("limit", 200, 1))})


@api.get("/leads/<int:lead_id>")
@reader
def lead_detail(conn, actor, lead_id: int):
    return json_response(lead_repository.get_lead(conn, actor, lead_id))


@api.post("/leads/<int:lead_id>/triage")
@mutation()
def lead_triage(conn, actor, lead_id: int):
    data = body_json()
    if _bool_field(data, "dismiss", False):
        return 200, lead_repository.dismiss_lead(conn, actor, lead_id)
    return 201, lead_repository.triage_lead(conn, actor, lead_id, _text_field(data, "kind") or "lead_verification",
                                            now(), _text_field(data, "grid_code"), _bool_field(data, "dispatch", True),
                                            _id_field(data, "assignee_id"))


# -- checkpoints ---------------------------------------------------------------------------------
@api.post("/scans")
@mutation()
def scan(conn, actor):
    return 201, scan_repository.record_scan(conn, actor, body_json(), vault(), now())


def _period() -> tuple[datetime, datetime]:
    """``from`` and ``to`` as dates (Beijing days, ``to`` inclusive) or ISO times; default: the last 30 days."""
    def read(name: str, default: datetime, end: bool) -> datetime:
        raw = request.args.get(name)
        if not raw:
            return default
        try:
            if len(raw) == 10:
                day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
                return datetime.combine(day, time(), BEIJING)
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)
        except ValueError:
            raise InvalidRequest(f"{name} 须为日期 YYYY-MM-DD 或 ISO 时间 / {name} must be a date or time",
                                 name) from None
    today = datetime.combine(now().astimezone(BEIJING).date() + timedelta(days=1), time(), BEIJING)
    until = read("to", today, end=True)
    return read("from", until - timedelta(days=30), end=False), until


@api.get("/checkpoints/<code>/scans")
@reader
def checkpoint_scans(conn, actor, code: str):
    since, until = _period()
    evaluation.Period(since, until)  # refuses a range that ends before it starts
    return json_response({"checkpoint": code, "from": since.isoformat(), "to": until.isoformat(),
                          "hours": scan_repository.hourly_counts(conn, actor, code, since, until)})


# -- statistics ----------------------------------------------------------------------------------
@api.get("/stats")
@reader
def stats(conn, actor):
    since, until = _period()
    level = request.args.get("level", "district")
    moment = now()
    rows = evaluation.evaluate(conn, actor, level, evaluation.Period(since, until), moment,
                               request.args.get("area") or None)
    stamp = {"level": level, "from": beijing_time(since), "to": beijing_time(until),
             "as_of": beijing_time(min(until, moment)), "generated_at": beijing_time(moment)}
    if request.accept_mimetypes.best_match(["application/json", CSV_MEDIA]) == CSV_MEDIA:
        made = Stamp(min(until, moment), request.full_path, moment)
        response = Response(stats_csv(rows, made), mimetype=CSV_MEDIA)
        response.headers["Content-Disposition"] = f"attachment; filename=stats-{level}.csv"
        return response
    return json_response({**stamp, "rows": rows})


# -- operations ------------------------------------------------------------------------------------
@api.post("/sweeps")
@mutation()
def sweep(conn, actor):
    """Take pending matcher requests and escalate overdue work now (the server also does it every minute)."""
    actor.require_role("commander", "admin")
    from tasks.intake import take_requests

    moment = now()
    return 200, {**take_requests(conn, moment), "escalations": escalate_overdue(conn, moment)}


@api.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_endpoint(unknown: str):
    """Anything else under /api/v1 answers JSON (not the Dash page that catches every other path)."""
    return error_response(NotFound(f"没有这个接口 {request.method} /api/v1/{unknown}（见 /api/v1/openapi.json）/ "
                                   f"no such endpoint or method"))


@api.errorhandler(413)
def too_large(_error):
    return error_response(InvalidRequest("上传内容过大（最多 5 MB）/ the upload is too large (5 MB at most)", "photo"))
