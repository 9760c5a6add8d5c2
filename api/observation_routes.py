"""The /api/v1 endpoints of home observation (follow-up lists, check-ins, self-report links): issue 25.

- ``GET /observation/follow-ups``: today's follow-ups of the worker's grids (the field app's 今日随访 tab);
- ``POST /observation/plans/{plan_id}/checks``: a check-in recorded by the staff (temperature, symptoms), replayable
  by Idempotency-Key: the phone's outbox retries a tap until it is answered, and it is recorded once;
- ``POST /observation/plans/{plan_id}/link``: issue, renew or revoke the person's self-report link;
- ``POST /observation/self-reports``: the person's own report through his link (no login), at most
  :data:`observation.links.REPORTS_PER_HOUR` an hour per link (429 with Retry-After).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import Connection

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, WORKER, Actor
from api import observation_models as om
from api.contract import ANONYMOUS, Operation, PathParam, Reply, documented
from api.http import mutation, reader
from api.routes import ID, api
from observation import links
from observation.checks import parse_check, record_check
from observation.today import follow_ups
from web.context import now, vault
from web.errors import json_response

TAG = "居家观察 observation"
READERS = (WORKER, SUPERVISOR, COMMANDER, ADMIN)  # the first: the examples' role
RECORDERS = (WORKER, SUPERVISOR, COMMANDER)
PLAN = PathParam("plan_id", ID, "观察计划编号 / observation plan id", 1)
# a well-formed token for the document; the contract test sends a real one (an example cannot hold a live link)
EXAMPLE_TOKEN = "NHO1.1.Vq3v3lX0c0m9n0Y3N2b8aQ.ZGVtby1tYWMtbm90LWEtcmVhbC1vbmUtcGxlYXNlLXg"


@api.get("/observation/follow-ups")
@reader
@documented(Operation(
    TAG, "今日随访 / today's follow-ups", READERS,
    {200: Reply("本人网格内居家观察人员（脱敏）、今日应报与下次应报 / the persons in observation in my grids (masked), "
                "today's checks and the next one", om.FollowUps)},
    "网格员为本人网格，网格长为本社区，指挥中心为全区（最多 500）/ a worker his grids, a supervisor his community, a "
    "commander the district (at most 500)", errors=(403,)))
def observation_follow_ups(conn: Connection, actor: Actor) -> Response:
    moment = now()
    return json_response({"as_of": moment.isoformat(), "follow_ups": follow_ups(conn, actor, moment)})


@api.post("/observation/plans/<int:plan_id>/checks")
@mutation()
@documented(Operation(
    TAG, "记录随访（体温与症状）/ record a check-in", RECORDERS,
    {201: Reply("计入的应报；发热或有症状时生成转运评估任务 / the check it counted for; a fever or symptom raises an "
                "escort task", om.CheckRecorded)},
    "计入时间窗内最早的待报或今日漏报；否则记为计划外补报。带 Idempotency-Key 重试只记一次 / counts for the earliest "
    "due (or today's missed) check whose window holds now, else an extra report; a retry with the same "
    "Idempotency-Key records nothing more", body=om.CheckIn,
    example={"temperature": 36.6, "symptoms": ["none"]}, path=(PLAN,), errors=(403, 404, 409)))
def observation_check(conn: Connection, actor: Actor, plan_id: int, body: om.CheckIn) -> tuple[int, dict[str, Any]]:
    actor.require_role(*RECORDERS)
    report = parse_check(body.model_dump(exclude_none=True))
    return 201, record_check(conn, plan_id, report, "worker", now(), actor)


@api.post("/observation/plans/<int:plan_id>/link")
@mutation()
@documented(Operation(
    TAG, "发放、换新或作废自报链接 / issue, renew or revoke a self-report link", links.ISSUERS,
    {200: Reply("链接（可打印为二维码）/ the link (printable as a QR code)", om.Link)},
    "链接不是一次性的（每天两次上报），计划结束即失效；换新或作废后旧链接立即失效；每次记入计划事件 / not a one-time "
    "link (two reports a day); it stops when the plan ends, and at once when renewed or revoked; each written to "
    "the plan's events", body=om.LinkRequest, example={"action": "issue"}, path=(PLAN,), errors=(403, 404, 409)))
def observation_link(conn: Connection, actor: Actor, plan_id: int, body: om.LinkRequest) -> tuple[int, dict[str, Any]]:
    return 200, links.hand_out_link(conn, actor, plan_id, body.action, vault(), now())


@api.post("/observation/self-reports")
@mutation(login=False)
@documented(Operation(
    TAG, "本人自报体温 / a person's own report", (ANONYMOUS,),
    {201: Reply("已记录，计入对应的应报 / recorded, counted for its check", om.SelfReportRecorded)},
    f"无需登录，凭自报链接令牌；伪造、已换新或计划已结束时 422（字段 token），不记录；每个链接每小时最多 "
    f"{links.REPORTS_PER_HOUR} 次 / no login: the link's token is the credential; a forged, replaced or ended link "
    f"is refused (422, field token) and nothing is stored; at most {links.REPORTS_PER_HOUR} reports an hour per "
    f"link", body=om.SelfReport,
    example={"token": EXAMPLE_TOKEN, "temperature": 36.5, "symptoms": ["none"]},
    body_note="示例令牌仅示格式 / the example token shows the format only", errors=(429,)))
def observation_self_report(conn: Connection, actor: Actor | None, body: om.SelfReport) -> tuple[int, dict[str, Any]]:
    report = parse_check(body.model_dump(exclude_none=True, exclude={"token"}))
    return 201, links.self_report(conn, vault(), body.token, report, now())
