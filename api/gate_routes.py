"""The /api/v1 endpoints of the checkpoint gate and its e-passes (issue 24).

- ``POST /gate/scans``: a scan at a gate — by e-pass token, typed ID number or person key — recorded by the scans
  API's own domain path (the same checkpoint-alert tasks for red and yellow) and answered with the verdict; a forged
  or revoked pass is a 422 naming ``pass_token``, and nothing is stored.
- ``GET /gate/checkpoints``: the checkpoints the user may scan at (the gate page's list).
- ``GET/POST /persons/{key}/passes``: a person's passes; issue a new one (the one in force is revoked), audited.
- ``POST /persons/{key}/passes/revocation``: revoke the person's pass in force, with a reason, audited.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import Connection

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, WORKER, Actor
from api import gate_models as gm
from api.contract import Operation, Reply, documented
from api.http import mutation, reader
from api.routes import DEMO_CHECKPOINT, DEMO_ID_NUMBER, PERSON, TAGS, api
from checkpoints import passes
from checkpoints.repository import checkpoints_in_scope
from checkpoints.verdict import gate_scan
from gis.errors import Conflict
from web.context import client_tag, now, vault
from web.errors import json_response

GATE_STAFF = (SUPERVISOR, COMMANDER, ADMIN, WORKER)  # as the scans API (the first: the examples' role)
ISSUERS = (SUPERVISOR, COMMANDER, WORKER)  # the first is the examples' role


@api.post("/gate/scans")
@mutation()
@documented(Operation(
    TAGS["checkpoints"], "卡口扫码判定 / a scan at the gate and its verdict", GATE_STAFF,
    {201: Reply("扫码记录与判定；红黄码生成或并入卡口预警任务 / the scan and its verdict; red or yellow raises an "
                "alert task", gm.GateVerdict)},
    "与 POST /scans 同一记录与预警；电子通行证伪造或已吊销时 422（字段 pass_token），不记录 / the same record and "
    "alerts as POST /scans; a forged or revoked e-pass is refused (422, field pass_token) and nothing is stored",
    body=gm.GateScan, example={"checkpoint": DEMO_CHECKPOINT, "pass_code": DEMO_ID_NUMBER, "direction": "in"},
    errors=(403, 404)))
def gate_scans(conn: Connection, actor: Actor, body: gm.GateScan) -> tuple[int, dict[str, Any]]:
    return 201, gate_scan(conn, actor, body.model_dump(exclude_none=True), vault(), now())


@api.get("/gate/checkpoints")
@reader
@documented(Operation(TAGS["checkpoints"], "可扫码的卡口 / the checkpoints I may scan at", GATE_STAFF,
                      {200: Reply("按编号排序 / by code", gm.GateCheckpoints)}, errors=(403,)))
def gate_checkpoints(conn: Connection, actor: Actor) -> Response:
    return json_response({"checkpoints": checkpoints_in_scope(conn, actor)})


@api.get("/persons/<key>/passes")
@reader
@documented(Operation(TAGS["persons"], "人员的电子通行证 / a person's e-passes", ISSUERS,
                      {200: Reply("新的在前，不含令牌 / newest first, without tokens", gm.EPasses)},
                      path=(PERSON,), errors=(403, 404)))
def person_passes(conn: Connection, actor: Actor, key: str) -> Response:
    return json_response({"passes": passes.person_passes(conn, actor, key)})


@api.post("/persons/<key>/passes")
@mutation()
@documented(Operation(
    TAGS["persons"], "签发电子通行证 / issue an e-pass", ISSUERS,
    {201: Reply("新通行证及其令牌（打印页 /checkpoint/passes/{id}）/ the new pass and its token (print page "
                "/checkpoint/passes/{id})", gm.IssuedPass)},
    "原有效通行证随即吊销；记入审计日志 / the pass in force is revoked; audited", path=(PERSON,),
    errors=(403, 404)))
def issue_pass(conn: Connection, actor: Actor, key: str) -> tuple[int, dict[str, Any]]:
    return 201, passes.issue_pass(conn, actor, key, vault(), now(), client_tag())


@api.post("/persons/<key>/passes/revocation")
@mutation()
@documented(Operation(
    TAGS["persons"], "吊销电子通行证 / revoke a person's e-pass", ISSUERS,
    {200: Reply("已吊销的通行证 / the revoked pass", gm.EPass)}, "须说明理由，记入审计日志 / needs a reason; audited",
    body=gm.Revocation, example={"reason": "通行证遗失 / the pass was lost"}, path=(PERSON,),
    errors=(403, 404, 409)))
def revoke_pass(conn: Connection, actor: Actor, key: str, body: gm.Revocation) -> tuple[int, dict[str, Any]]:
    live = [p for p in passes.person_passes(conn, actor, key) if p["revoked_at"] is None]
    if not live:
        raise Conflict("该人员没有有效的电子通行证 / this person has no pass in force", "no_pass_in_force")
    return 200, passes.revoke_pass(conn, actor, live[0]["id"], body.reason, now(), client_tag())
