"""The bodies of /api/v1 as pydantic models: what a request must carry and what an answer holds.

These models are the contract. Requests are validated through them at the edge (:mod:`api.contract`)
before the domain sees them; the OpenAPI document (:mod:`api.openapi`) is generated from them, and
the contract test checks every documented example's answer against them. Descriptions are Chinese
first, then English; enumerations come from the domain modules, so the contract cannot drift from
them. Answers are built by the repositories as plain dicts (the hot update path stays one
serialisation); the response models describe them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, SYSTEM, WORKER
from evaluation.indicators import COLOURS, LEVELS
from tasks import lifecycle
from tasks.kinds import load_kinds
from tasks.photos import FORMATS
from tasks.repository import SOURCES
from web.session import CSRF_HEADER

STAFF = (WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN)  # every role that logs in
LEAD_STATUSES = ("open", "triaged", "dismissed")
DIRECTIONS = ("in", "out")
CRS_NAMES = ("wgs84", "gcj02", "bd09")
KINDS = tuple(load_kinds())
MAX_PAGE = 1000


def one_of(values: Iterable[str]) -> Any:
    """A validator (and its JSON Schema ``enum``) that accepts one of ``values``: the domain's enumerations."""
    allowed = tuple(values)

    def check(value: str) -> str:
        if value not in allowed:
            raise PydanticCustomError("enum", "须为 {expected} 之一 / must be one of {expected}",
                                      {"expected": ", ".join(allowed)})
        return value
    return AfterValidator(check)


def enum(values: Iterable[str]) -> dict[str, Any]:
    return {"enum": list(values)}


def sometimes_absent(schema: dict[str, Any]) -> None:
    """An answer's property that is left out when it does not apply (never null): no default in its schema."""
    schema.pop("default", None)


class Body(BaseModel):
    """A request body: JSON types are strict (no "yes" for true, no number for a code); unknown fields ignored;
    a field sent empty ("" or null) counts as left out, as the forms of a phone send it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: object) -> object:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value is not None and value != ""}
        return data


class Answer(BaseModel):
    """An answer's body: every property listed is present (null where the model allows it); the contract stays
    open to additions, so the schema does not forbid other properties."""


# -- shared pieces ----------------------------------------------------------------------------------------------
GridCode = Annotated[str, Field(description="15 位网格编码（区 6 + 镇街 3 + 村居 3 + 序号 3）/ 15-digit grid code",
                                pattern="^[0-9]{15}$")]
PersonKey = Annotated[str, Field(description="人员键：规范化身份证号的 HMAC；尚无身份证号的临时人员为 ~文件-行 / the "
                                             "person key, an HMAC of the ID number; ~file-row for a provisional "
                                             "person known by no ID number yet",
                                 pattern="^([0-9a-f]{64}|~[0-9]{1,10}-[0-9]{1,10})$")]
Count = Annotated[int, Field(ge=0)]
Rate = Annotated[float | None, Field(ge=0, le=1)]
Hours = Annotated[float | None, Field(ge=0)]
Colour = Annotated[str, one_of(COLOURS), Field(json_schema_extra=enum(COLOURS))]
Kind = Annotated[str, one_of(KINDS), Field(json_schema_extra=enum(KINDS))]
Status = Annotated[str, one_of(lifecycle.STATUSES), Field(json_schema_extra=enum(lifecycle.STATUSES))]
LeadStatus = Annotated[str, one_of(LEAD_STATUSES), Field(json_schema_extra=enum(LEAD_STATUSES))]
Level = Annotated[str, one_of(LEVELS), Field(json_schema_extra=enum(LEVELS))]
Direction = Annotated[str, one_of(DIRECTIONS), Field(json_schema_extra=enum(DIRECTIONS))]
Text = Annotated[str, Field(max_length=lifecycle.TEXT_LIMIT)]


class Location(Body):
    """WGS84 坐标 / a WGS84 point"""

    lon: float = Field(description="经度 / longitude", ge=-180, le=180)
    lat: float = Field(description="纬度 / latitude", ge=-90, le=90)


# -- session ----------------------------------------------------------------------------------------------------
class Credentials(Body):
    username: str
    password: str = Field(json_schema_extra={"format": "password"})


class Session(Answer):
    username: str
    display_name: str
    role: Annotated[str, Field(json_schema_extra=enum(STAFF))]
    role_name: str
    grid_codes: list[GridCode] = Field(description="负责的网格 / grids answered for")
    csrf_token: str = Field(description=f"变更请求须放在 {CSRF_HEADER} 头 / echo it in {CSRF_HEADER}")
    expires_at: datetime = Field(None, description="仅登录时返回 / on login only",  # type: ignore[assignment]
                                 json_schema_extra=sometimes_absent)


class Activation(Body):
    """激活账号：用一次性激活码设置首个密码 / activate an account: set its first password with the one-time code"""

    username: str = Field(min_length=1, max_length=64)
    code: str = Field(description="管理员发放的一次性激活码（不分大小写，可含空格或连字符）/ the one-time code "
                                  "from the administrator (case, spaces and hyphens do not matter)",
                      min_length=1, max_length=40)
    password: str = Field(description="新密码：至少 10 位，不能是常见密码、手机号或含用户名 / the new password: 10 "
                                      "characters or more, not a common one, a phone number or the username",
                          min_length=1, max_length=200, json_schema_extra={"format": "password"})


class Duty(Body):
    on_duty: bool = Field(description="在岗才会被自动派单 / only on-duty workers get auto-dispatch")


class DutyState(Answer):
    username: str
    on_duty: bool


# -- tasks ------------------------------------------------------------------------------------------------------
def _kinds_text() -> str:
    return "\n".join(f"- `{k.code}` {k.name} / {k.name_en}：时限 {k.sla_minutes} 分钟"
                     + ("，须测温 / needs a temperature" if k.needs_temperature else "")
                     for k in load_kinds().values())


ACTION_FIELDS = {"dispatch": "assignee_id（省略则自动派给在岗网格员 / omitted: auto-dispatch）",
                 "reassign": "assignee_id", "decline": "reason", "rework": "reason", "cancel": "reason",
                 "handle": "result, temperature（须测温的类型 / kinds that need it）, photos",
                 "request_extension": "until, reason", "refuse_extension": "reason"}


# the actions a client may ask for (``recall`` is the system's own, when a worker is disabled or loses a grid)
CLIENT_ACTIONS = tuple(name for name, action in lifecycle.ACTIONS.items() if set(action.roles) - {SYSTEM})


def _actions_text() -> str:
    lines = []
    for action in (lifecycle.ACTIONS[name] for name in CLIENT_ACTIONS):
        roles = ", ".join(r for r in action.roles if r != SYSTEM)
        target = action.target or "状态不变 / unchanged"
        needs = f"；字段 / fields: {ACTION_FIELDS[action.name]}" if action.name in ACTION_FIELDS else ""
        lines.append(f"- `{action.name}` {action.label}：{', '.join(action.sources)} → {target}（{roles}）{needs}")
    return "\n".join(lines)


class PersonRef(Answer):
    """任务涉及的人员（脱敏）/ the person of a task, masked"""

    person_key: PersonKey
    id_masked: str | None
    name_masked: str | None
    colour: Colour | None


class Task(Answer):
    """任务（个人信息已脱敏）/ a field task, personal data masked"""

    id: int
    kind: Kind = Field(description="任务类型 / task kind")
    kind_name: str
    status: Status
    status_name: str = Field(description="状态中文名 / status in Chinese")
    priority: int = Field(description="1 最紧急 / 1 = most urgent", ge=1)
    title: str = Field(max_length=200)
    detail: str | None
    source: Annotated[str, Field(json_schema_extra=enum(SOURCES))]
    grid_code: GridCode
    grid_name: str | None = Field(description="网格名称 / the grid's name")
    person: PersonRef | None
    lead_id: int | None
    checkpoint_id: int | None
    assignee_id: int | None = Field(description="网格员用户编号 / the worker's user id")
    assignee: str | None = Field(description="网格员用户名 / username")
    assignee_name: str | None
    created_by: str = Field(description="创建人用户名或 system / username or system")
    created_at: datetime
    dispatched_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    sla_minutes: int = Field(ge=1)
    due_at: datetime = Field(description="时限 / due time")
    overdue: bool = Field(description="未结且已超时 / open and past due")
    escalation_level: int = Field(description="0 未超时，1 已上报社区，2 已上报镇街 / 0 none, 1 community, 2 town",
                                  ge=0, le=2)
    rework_count: Count
    extension_count: Count
    extension_requested_until: datetime | None
    version: int = Field(description="乐观锁版本：变更时原样提交 / send it back with every change", ge=1)
    location: Location | None


EVENT_ACTIONS = ("create", *lifecycle.ACTIONS, "escalate")


class TaskEvent(Answer):
    """任务时间线的一行（只追加）/ one append-only line of a task's timeline"""

    id: int
    task_id: int
    seq: int = Field(description="任务内序号 / position in the task", ge=1)
    action: Annotated[str, Field(json_schema_extra=enum(EVENT_ACTIONS))]
    from_status: Status | None
    to_status: Status
    actor: str = Field(description="用户名或 system / username or system")
    actor_name: str | None = Field(description="操作人姓名（系统为空）/ the actor's display name (none for the system)")
    actor_role: Annotated[str, Field(json_schema_extra=enum((*STAFF, SYSTEM)))]
    at: datetime
    note: str | None
    detail: dict[str, Any] = Field(description="按操作而定：reason、result、temperature、photos、assignee_id、level… / "
                                               "depends on the action")
    location: Location | None


class TaskReport(Answer):
    """网格员最近一次反馈：照片、位置及其离网格的距离 / the worker's latest report: photos, position and its
    distance from the grid"""

    event_id: int
    at: datetime
    by: str = Field(description="反馈人姓名或用户名 / who reported, by name")
    result: str | None
    temperature: float | None = Field(description="体温 ℃")
    photos: list[int] = Field(description="照片编号（GET /photos/{id}）/ photo ids")
    note: str | None
    location: Location | None
    distance_m: float | None = Field(description="反馈位置离任务网格的距离（米）/ metres from the task's grid")
    far: bool = Field(description="离网格过远，结案须确认 / far from the grid: closing asks for confirm_far")


class TaskWithEvents(Task):
    """任务及其完整时间线 / a task with its timeline"""

    events: list[TaskEvent] = Field(description="最早的在前 / oldest first")
    report: TaskReport | None = Field(description="已反馈时，最近一次反馈 / the latest report, once handled")


class TaskList(Answer):
    tasks: list[Task] = Field(description="按时限排序 / most urgent first")
    total: Count
    limit: int
    offset: int


class NewTask(Body):
    kind: Kind = Field(description="任务类型 / task kind:\n" + _kinds_text())
    grid_code: GridCode
    title: str = Field(min_length=1, max_length=200)
    detail: Text | None = None
    person_key: PersonKey | None = None
    location: Location | None = None
    dispatch: bool = Field(True, description="立即派遣（默认）/ dispatch at once")
    assignee_id: int | None = Field(None, description="指定网格员；省略则自动派给本网格或相邻网格的在岗网格员 / "
                                                      "omitted: auto-dispatch")


class Transition(Body):
    """任务流转 / a lifecycle action"""

    action: Annotated[str, one_of(CLIENT_ACTIONS), Field(json_schema_extra=enum(CLIENT_ACTIONS))] = Field(
        description="操作 / action:\n" + _actions_text())
    version: int = Field(description="任务当前版本；不符返回 409 stale_version / the version you saw", ge=1)
    note: Text | None = None
    reason: Text | None = None
    result: Text | None = Field(None, description="处置结果 / what was done")
    temperature: float | None = Field(None, description="体温 ℃", ge=lifecycle.TEMPERATURE_RANGE[0],
                                      le=lifecycle.TEMPERATURE_RANGE[1])
    photos: list[int] | None = Field(None, description="已上传照片编号 / ids of uploaded photos")
    until: str | None = Field(None, description="延期至（带时区）/ new due time, with its offset",
                              json_schema_extra={"format": "date-time"})
    assignee_id: int | None = None
    location: Location | None = None
    confirm_far: bool | None = Field(None, description="结案时确认已核实离网格过远的反馈 / close: the far-from-grid "
                                                       "report was checked")


class TransitionResult(Answer):
    task: Task
    event: TaskEvent


class Photo(Answer):
    id: int
    task_id: int
    content_type: Annotated[str, Field(json_schema_extra=enum(FORMATS.values()))]
    size: int = Field(ge=1)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class TimelineEvent(TaskEvent):
    """网格时间线的一行：事件加任务类型与标题 / an event with its task's kind and title"""

    kind: Kind
    title: str


class GridTimeline(Answer):
    grid_code: GridCode
    events: list[TimelineEvent] = Field(description="最新的在前 / newest first")


class Worker(Answer):
    id: int
    username: str
    display_name: str
    on_duty: bool
    grid_codes: list[GridCode]
    open_tasks: Count


class WorkerList(Answer):
    workers: list[Worker] = Field(description="按用户名排序 / by username")


# -- persons ----------------------------------------------------------------------------------------------------
class Person(Answer):
    """人员（脱敏）/ a person, masked"""

    person_key: PersonKey
    id_masked: str = Field(examples=["440605********0010"])
    name_masked: str
    phone_masked: str | None
    colour: Colour = Field(description="四色码 / risk code")
    reason: str = Field(description="赋码原因 / why")
    rule_id: str | None
    sources: str | None = Field(description="数据来源 / sources")
    set_at: datetime | None
    expires_at: datetime | None
    method: str | None = Field(description="定位方式 / how he was placed")
    confidence: float
    grid_code: GridCode | None
    unplaced_reason: str | None = Field(description="未落格原因 / why no grid")
    explanation: str | None = Field(None, description="赋码依据：规则、成立的条件及其取值（脱敏）、计时起点 / why: the "
                                                      "rule, the conditions that held with their values (masked), "
                                                      "the date its days count from")


class GridPersons(Answer):
    grid_code: GridCode
    persons: list[Person] = Field(description="红、黄、蓝码人员 / flagged persons")


class Unmask(Body):
    reason: str = Field(description="查看理由（记入审计日志）/ why (audited)", min_length=2, max_length=500)


class UnmaskedPerson(Person):
    """人员及其完整证件号、姓名、电话（已审计）/ a person in clear, audited"""

    id_number: str = Field(description="身份证号（临时人员为空）/ the ID number ('' for a provisional person)")
    name: str
    phone: str
    birth: str = Field("", description="无身份证号的记录所给的出生日期（YYYY-MM-DD）/ the date of birth a record "
                                       "without an ID number gave (YYYY-MM-DD), else ''")


# -- leads ------------------------------------------------------------------------------------------------------
class NewLeadReport(Body):
    """地址与坐标至少给一个 / an address, a point, or both"""

    description: Text = Field(description="发生了什么 / what happened")
    address: str | None = Field(None, max_length=200)
    location: Location | None = None
    crs: Annotated[str, one_of(CRS_NAMES), Field(json_schema_extra=enum(CRS_NAMES))] | None = Field(
        None, description="location 的坐标系（默认 wgs84）/ CRS of location")
    contact: str | None = Field(None, description="联系方式（加密保存）/ contact, stored sealed", max_length=50)


class LeadReceipt(Answer):
    id: int
    status: LeadStatus
    report_count: int = Field(ge=1)
    placed: bool = Field(description="已定位到网格 / placed in a grid")
    merged: bool = Field(description="并入已有线索 / merged into an open lead")


class Lead(Answer):
    """线索 / a lead (reports of the same place within 24 h are merged)"""

    id: int
    status: LeadStatus
    summary: str
    address: str | None
    location: Location | None
    grid_code: GridCode | None
    grid_name: str | None = Field(description="网格名称 / the grid's name")
    report_count: int = Field(description="合并的举报数 / reports merged into it", ge=1)
    first_reported_at: datetime
    last_reported_at: datetime


class LeadReport(Answer):
    id: int
    received_at: datetime
    description: str
    address: str | None
    contact: str | None = Field(description="脱敏联系方式 / masked contact")
    channel: Annotated[str, Field(json_schema_extra=enum(("public", "staff")))]


class LeadDetail(Lead):
    """线索及其全部举报 / a lead with its reports"""

    reports: list[LeadReport]


class LeadList(Answer):
    leads: list[Lead] = Field(description="最近举报的在前 / newest report first")


class Triage(Body):
    kind: Kind = Field("lead_verification", description="默认 lead_verification / default lead_verification")
    grid_code: GridCode | None = None
    dispatch: bool = True
    assignee_id: int | None = None
    dismiss: bool = Field(False, description="true：不建任务，直接关闭线索 / close without a task")


# -- checkpoints ------------------------------------------------------------------------------------------------
class NewScan(Body):
    """person_key、pass_code 与 pass_token 给一个 / one of person_key, pass_code and pass_token"""

    checkpoint: str = Field(description="卡口编号 / checkpoint code", max_length=64)
    person_key: str | None = Field(None, description="人员键 / the person key (64 hex digits)", max_length=64)
    pass_code: str | None = Field(None, description="通行码（身份证号），立即转为人员键，不保存 / the ID number read "
                                                    "at the gate", max_length=64)
    pass_token: str | None = Field(None, description="电子通行证令牌（二维码内容）/ the e-pass token of the QR code",
                                   max_length=120)
    direction: Direction
    scanned_at: str | None = Field(None, description="默认当前时间 / default: now",
                                   json_schema_extra={"format": "date-time"})


class Scan(Answer):
    id: int
    checkpoint: str
    scanned_at: datetime
    direction: Direction
    alert: bool = Field(description="红、黄码预警 / red or yellow")
    colour: Colour | None
    task_id: int | None = Field(description="卡口预警任务 / the checkpoint-alert task")


class ScanHour(Answer):
    hour: datetime = Field(description="北京时间整点 / Beijing hour")
    in_: Count = Field(alias="in")
    out: Count
    alerts: Count | None = Field(description="红黄码通行数；统计员看到的 1–4 为 null / red and yellow passes; "
                                             "1 to 4 are null for a reporter")


class CheckpointScans(Answer):
    checkpoint: str
    from_: datetime = Field(alias="from")
    to: datetime
    hours: list[ScanHour]


# -- statistics -------------------------------------------------------------------------------------------------
class StatsRow(Answer):
    """一个单元的考核指标（比率附分子分母）/ one unit's indicators; the property order is the CSV column order"""

    level: Level
    code: str = Field(description="区划或网格编码 / unit code")
    name: str
    tasks: Count = Field(description="任务数（不含撤销）/ tasks, cancelled ones left out")
    cancelled: Count = Field(description="撤销 / cancelled")
    closed: Count = Field(description="结案 / closed")
    closed_on_time: Count = Field(description="按期结案 / closed by the due time")
    open_overdue: Count = Field(description="未结且超时 / open and overdue")
    handled: Count = Field(description="已反馈 / handled at least once")
    reworked: Count = Field(description="返工过 / sent back at least once")
    extended: Count = Field(description="延期过 / extended at least once")
    closure_rate: Rate = Field(description="结案率 = closed / tasks（分母为 0 时为 null）")
    on_time_rate: Rate = Field(description="按期结案率 = closed_on_time / (closed + open_overdue)"
                                           "（分母为 0 时为 null）")
    rework_rate: Rate = Field(description="返工率 = reworked / handled（分母为 0 时为 null）")
    extension_rate: Rate = Field(description="延期率 = extended / tasks（分母为 0 时为 null）")
    median_handling_hours: Hours = Field(description="结案用时中位数（小时）/ median hours to close")
    p90_handling_hours: Hours = Field(description="结案用时 90 分位（小时）/ 90th percentile")
    persons_red: int | None = Field(description="red 码人数；统计员看到的 1–4 为 null（防识别）/ suppressed 1–4 for "
                                                "reporters", ge=0)
    persons_yellow: int | None = Field(description="yellow 码人数；统计员看到的 1–4 为 null（防识别）/ suppressed 1–4 "
                                                   "for reporters", ge=0)
    persons_blue: int | None = Field(description="blue 码人数；统计员看到的 1–4 为 null（防识别）/ suppressed 1–4 for "
                                                 "reporters", ge=0)
    persons_green: int | None = Field(description="green 码人数；统计员看到的 1–4 为 null（防识别）/ suppressed 1–4 "
                                                  "for reporters", ge=0)


class Stats(Answer):
    level: Level
    from_: datetime = Field(alias="from")
    to: datetime
    as_of: datetime = Field(description="评价时点 min(to, now) / evaluation time")
    generated_at: datetime
    rows: list[StatsRow]


class SweepResult(Answer):
    tasks: Count
    unplaced: Count
    escalations: Count


class Error(Answer):
    """所有拒绝的统一格式 / one shape for every refusal"""

    error: str = Field(description="错误代码：异常名，或冲突代码 stale_version、illegal_transition、no_worker_on_duty、"
                                   "extension_pending、no_extension_pending、lead_not_open、no_pass_in_force / "
                                   "error code")
    message: str = Field(description="说明，语言按 Accept-Language（默认中文，可选 en）/ message, in the language of "
                                     "Accept-Language (Chinese by default, or en)")
    field: str = Field(None, description="出错的字段 / the offending field (422)",  # type: ignore[assignment]
                       json_schema_extra=sometimes_absent)
    current: Task | Lead = Field(None, description="冲突时对象的当前状态 / the object as it is now (409)",  # type: ignore[assignment]
                                 json_schema_extra=sometimes_absent)


# -- query strings ----------------------------------------------------------------------------------------------
class Query(BaseModel):
    """A query string: values arrive as text and are read leniently (``limit=20``, ``overdue=true``)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: object) -> object:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value != ""}
        return data


def page_size(default: int) -> Any:
    """The ``limit`` of a list: a page of at most :data:`MAX_PAGE`."""
    return Field(default, description="最多返回条数 / page size", ge=1, le=MAX_PAGE, examples=[default])


class TaskQuery(Query):
    status: list[Status] = Field([], description="状态，逗号分隔 / statuses, comma-separated",
                                 examples=[["dispatched", "accepted"]])
    grid: GridCode | None = Field(None, description="网格编码 / grid code", examples=["440605011001001"])
    overdue: bool | None = Field(None, description="仅超时（true）或仅未超时（false）/ overdue only, or not",
                                 examples=[False])
    assignee: str | None = Field(None, description="网格员用户名 / the worker's username", examples=["demo_worker"])
    limit: int = page_size(200)
    offset: int = Field(0, description="跳过条数 / offset", ge=0, le=10**9, examples=[0])

    @field_validator("status", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [s for s in value.split(",") if s] if isinstance(value, str) else value


class WorkerQuery(Query):
    grid: GridCode | None = Field(None, description="只看此网格 / of this grid only", examples=["440605011001001"])
    limit: int = page_size(500)


class TimelineQuery(Query):
    limit: int = page_size(100)
    before: int | None = Field(None, description="翻页：只返回编号小于它的事件 / events with a smaller id (paging "
                                                 "back)", ge=1, le=2**62, examples=[1_000_000_000])


class LeadQuery(Query):
    status: Annotated[str, one_of((*LEAD_STATUSES, "all")), Field(json_schema_extra=enum((*LEAD_STATUSES, "all")))] = \
        Field("open", description="状态，all 为全部 / status, all for every lead", examples=["open"])
    limit: int = page_size(200)


PERIOD_FORMATS: dict[str, Any] = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}


class PeriodQuery(Query):
    from_: str | None = Field(None, alias="from", json_schema_extra=PERIOD_FORMATS, examples=["2026-11-01"],
                              description="起始：北京日期 YYYY-MM-DD 或 ISO 时间（默认 to 前 30 天）/ start: a Beijing "
                                          "date or an ISO time (default: 30 days before to)")
    to: str | None = Field(None, json_schema_extra=PERIOD_FORMATS, examples=["2026-11-30"],
                           description="截止：日期含当天，或 ISO 时间（默认今天结束）/ end: a date (inclusive) or an "
                                       "ISO time (default: end of today)")


class StatsQuery(PeriodQuery):
    level: Level = Field("district", description="汇总层级 / level", examples=["grid"])
    area: str | None = Field(None, description="编码前缀，如村居 / a code prefix", pattern="^[0-9]{6,15}$",
                             examples=["440605011001"])
