"""The models of the field app's endpoints (``api.field_routes``): a worker's lists with their places, and how far
a phone is from a task's grid."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models import Answer, Location, Query, Task


class FieldTask(Task):
    """网格员手机上的任务：含导航点与地址 / a task as the worker's phone shows it, with where to go"""

    kind_name_en: str = Field(description="任务类型英文名 / the kind's English name")
    needs_temperature: bool = Field(description="反馈须填体温 / the report needs a temperature")
    target: Location | None = Field(description="导航点：任务位置，否则网格内一点 / where the map app opens: the "
                                                "task's point, else a point inside its grid")
    address: str | None = Field(description="地址：线索所报地址，或人员住址（仅本人在办任务，首次读取记审计）/ the "
                                             "address: a lead's, or the person's home address (only on the worker's "
                                             "own tasks in hand; the first reading is audited)")


class FieldTasks(Answer):
    """网格员的在办与已办任务 / a worker's tasks in hand and done"""

    user_id: int
    username: str
    display_name: str
    tasks: list[FieldTask] = Field(description="在办：待接收、已接收、处置中，时限早的在前 / in hand, most urgent "
                                               "first")
    done: list[FieldTask] = Field(description="近 7 天已反馈或已结案，最近的在前 / handled or closed in the last 7 "
                                              "days, latest first")
    session_expires_at: datetime = Field(description="本次登录的到期时间：手机缓存的任务到期即删 / when this login "
                                                     "expires: the phone drops its cached tasks then")
    csrf_token: str = Field(description="变更请求须在 X-CSRF-Token 中回传 / echo it in X-CSRF-Token on changes")
    far_from_m: float = Field(description="超过此距离（米）提示核实是否在现场 / beyond this many metres the "
                                          "phone asks whether the worker is on site")
    as_of: datetime


class DistanceQuery(Query):
    lon: float = Field(description="经度（WGS84）/ longitude", ge=-180, le=180, examples=[113.1524])
    lat: float = Field(description="纬度（WGS84）/ latitude", ge=-90, le=90, examples=[23.0551])


class Distance(Answer):
    """手机位置到任务网格的距离 / how far the phone is from the task's grid"""

    task_id: int
    distance_m: float = Field(description="米，网格内为 0 / metres, 0 inside", ge=0)
    inside: bool
    far: bool = Field(description="超过 far_from_m：请确认在现场 / beyond far_from_m: ask whether on site")
    far_from_m: float
