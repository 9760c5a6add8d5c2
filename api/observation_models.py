"""The bodies of the home-observation /api/v1 endpoints (issue 25), beside :mod:`api.models`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.models import Answer, Body, Count, GridCode, PersonKey, enum, one_of
from observation.checks import SYMPTOMS
from observation.links import LINK_ACTIONS

CHECK_STATES = ("due", "done", "missed")
NEXT_STATES = ("due", "late", "scheduled")
CHANNELS = ("worker", "self")

Symptom = Annotated[str, one_of(SYMPTOMS), Field(json_schema_extra=enum(SYMPTOMS))]
CheckState = Annotated[str, one_of(CHECK_STATES), Field(json_schema_extra=enum(CHECK_STATES))]
Channel = Annotated[str, one_of(CHANNELS), Field(json_schema_extra=enum(CHANNELS))]
LinkAction = Annotated[str, one_of(LINK_ACTIONS), Field(json_schema_extra=enum(LINK_ACTIONS))]
LinkToken = Annotated[str, Field(description="自报链接令牌（NHO1.计划编号.随机串.签名，不含个人信息）/ the "
                                             "self-report token (NHO1.plan.nonce.mac: no personal data in it)",
                                 max_length=120)]
Temperature = Annotated[float, Field(description="体温 ℃，34.0–43.0，保留一位小数 / temperature in ℃, 34.0 to 43.0",
                                     ge=34.0, le=43.0)]


class CheckIn(Body):
    """一次随访记录：体温与症状 / one follow-up report: temperature and symptoms"""

    temperature: Temperature | None = None
    symptoms: list[Symptom] = Field(default_factory=list, description="症状：none 无、cough 咳嗽、fever 发热、other "
                                                                      "其他；空或仅 none 为无症状 / none, cough, "
                                                                      "fever, other; empty or none alone: no symptom",
                                    max_length=4)
    note: str | None = Field(None, description="备注 / a note", max_length=500)


class SelfReport(CheckIn):
    """本人通过自报链接上报 / a person's own report through his link"""

    token: LinkToken


class LinkRequest(Body):
    action: LinkAction = Field("issue", description="issue 取当前链接、renew 换新（旧链接作废）、revoke 作废 / issue: "
                                                    "the link in force; renew: a new one (the old stops); revoke: "
                                                    "the old stops, none is shown")


class Link(Answer):
    """自报链接（打印页 /obs/print/{plan_id} 显示二维码）/ the self-report link (its QR code: /obs/print/{plan_id})"""

    plan_id: Count
    action: LinkAction
    token: LinkToken | None = Field(description="revoke 时为 null / null after revoke")
    path: str | None = Field(description="本人打开的地址 /obs/{token} / the page the person opens")
    name_masked: str | None
    grid_code: GridCode | None
    starts_at: datetime
    ends_at: datetime = Field(description="链接随计划结束失效 / the link stops when the plan ends")


class CheckRecorded(Answer):
    """记录结果 / what the report counted for"""

    check_id: Count
    plan_id: Count
    due_at: datetime = Field(description="计入的应报时间（计划外补报为上报时间）/ the check it counts for (an extra "
                                         "report: its own time)")
    status: CheckState
    late: bool = Field(description="超过应报时间后上报 / reported after the check's time")
    fever: bool = Field(description="发热或有症状：已生成转运评估任务并标记复核 / a fever or symptom: an escort task "
                                    "and a code review were raised")
    task_ids: list[Count] = Field(description="因此生成的任务 / the tasks it raised")


class SelfReportRecorded(Answer):
    """已记录（不含任务与赋码信息）/ recorded (no task or code in the answer)"""

    plan_id: Count
    check_id: Count
    due_at: datetime
    status: CheckState
    late: bool
    reported_at: datetime


class CheckToday(Answer):
    id: Count
    due_at: datetime
    status: CheckState
    reported_at: datetime | None
    temperature: float | None
    symptoms: list[str]
    channel: Channel | None
    abnormal: bool = Field(description="发热（≥ 规则文件 fever_at）或有症状 / a fever (at or above the rules' "
                                       "fever_at) or a symptom")


class LastReport(Answer):
    reported_at: datetime
    temperature: float | None
    symptoms: list[str]
    channel: Channel | None
    abnormal: bool


class FollowUp(Answer):
    """一名居家观察人员（脱敏）/ one person in observation, masked"""

    plan_id: Count
    person_key: PersonKey
    name_masked: str | None
    id_masked: str | None
    colour: str | None
    grid_code: GridCode | None
    grid_name: str | None
    day: int = Field(description="观察第几天 / day n of the plan")
    days: int = Field(description="共几天 / the plan's days")
    ends_at: datetime
    next_check_id: Count | None
    next_check_at: datetime | None = Field(description="下次应报时间 / the next check's time")
    next_state: str | None = Field(description="due 待报、late 已过时间仍在宽限内、scheduled 尚未生成 / due, late "
                                               "(past its time, inside the grace), scheduled (not made yet)",
                                   json_schema_extra=enum(("due", "late", "scheduled")))
    checks_today: list[CheckToday] = Field(description="今天（北京时间）的应报 / today's checks (Beijing day)")
    done_today: int
    missed_today: int
    last_missed: bool = Field(description="最近一次应报已漏报 / the last settled check was missed")
    last_report: LastReport | None


class FollowUps(Answer):
    """今日随访 / today's follow-ups"""

    as_of: datetime
    follow_ups: list[FollowUp] = Field(description="漏报的在前，再按下次应报时间 / the last missed first, then by "
                                                   "the next check's time")


__all__ = ["CheckIn", "CheckRecorded", "FollowUps", "Link", "LinkRequest", "SelfReport", "SelfReportRecorded"]
