"""Checkpoint scans: record a pass, raise a checkpoint-alert task for a red or yellow person, count per hour.

A gate identifies a person by his person key, by a pass code — the ID
number read from the card or code at the gate, which is turned into the
person key at once and never stored — or by an e-pass token
(:mod:`checkpoints.passes`), checked and turned into the person key.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, SYSTEM, WORKER, Actor
from checkpoints import passes
from evaluation.disclosure import SUPPRESS_BELOW
from gis.errors import InvalidRequest, NotFound
from matching.identity import id_number_problem, normalise_id_number
from matching.privacy import Vault
from tasks.lifecycle import parse_time
from tasks.repository import OPEN_SQL, NewTask, create_task

ALERT_COLOURS = ("red", "yellow")
FUTURE_TOLERANCE = timedelta(minutes=5)
COLOUR_NAMES = {"red": "红码", "yellow": "黄码", "blue": "蓝码", "green": "绿码"}


def _person_key(conn: Connection, payload: dict[str, Any], vault: Vault) -> str:
    key, code, token = payload.get("person_key"), payload.get("pass_code"), payload.get("pass_token")
    if token is not None:
        return passes.verify(conn, vault, token)
    if key is not None:
        if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key):
            raise InvalidRequest("person_key 须为 64 位十六进制 / person_key must be 64 hex digits", "person_key")
        return key
    if code is None:
        raise InvalidRequest("请提供 person_key、pass_code 或 pass_token / person_key, pass_code or pass_token is "
                             "required", "pass_code")
    if not isinstance(code, str) or id_number_problem(code):
        raise InvalidRequest("通行码（身份证号）无效 / the pass code is not a valid ID number", "pass_code")
    return vault.person_key(normalise_id_number(code))


def _checkpoint(conn: Connection, actor: Actor, code: object, aggregates: bool = False) -> Row[Any]:
    if not isinstance(code, str) or not code.strip():
        raise InvalidRequest("请提供卡口编号 checkpoint / checkpoint is required", "checkpoint")
    row = conn.execute(text("SELECT id, code, name, grid_id, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                            "FROM checkpoints WHERE code = :c"), {"c": code.strip()}).one_or_none()
    sees = actor.sees_aggregates_of if aggregates else actor.sees_grid
    if row is None or not sees(row.grid_id):
        raise NotFound(f"卡口 {code} 不存在或不在您的范围内 / no checkpoint {code} in your scope")
    return row


def record_scan(conn: Connection, actor: Actor, payload: dict[str, Any], vault: Vault,
                now: datetime) -> dict[str, Any]:
    """Store one scan; a red or yellow person raises (or joins) an open checkpoint-alert task in that grid."""
    return record_person_scan(conn, actor, payload, vault, now)[0]


def record_person_scan(conn: Connection, actor: Actor, payload: dict[str, Any], vault: Vault,
                       now: datetime) -> tuple[dict[str, Any], str | None]:
    """:func:`record_scan`, with the masked name of the person scanned (None: no risk record) for the gate's
    verdict: the one domain path for the scans API and the gate page."""
    actor.require_role(WORKER, SUPERVISOR, COMMANDER, ADMIN, SYSTEM)
    if not isinstance(payload, dict):
        raise InvalidRequest("请求体必须是 JSON 对象 / the body must be a JSON object")
    checkpoint = _checkpoint(conn, actor, payload.get("checkpoint"))
    person_key = _person_key(conn, payload, vault)
    scanned_at = parse_time(payload["scanned_at"], "scanned_at") if payload.get("scanned_at") else now
    if scanned_at > now + FUTURE_TOLERANCE:
        raise InvalidRequest("扫码时间晚于当前时间 / scanned_at is in the future", "scanned_at")
    direction = payload.get("direction")
    if direction not in ("in", "out"):
        raise InvalidRequest("direction 须为 in 或 out / direction must be in or out", "direction")
    person = conn.execute(text("SELECT colour, name_masked FROM persons WHERE person_key = :k"),
                          {"k": person_key}).one_or_none()
    colour, name = (person.colour, person.name_masked) if person is not None else (None, None)
    task_id = None
    if colour in ALERT_COLOURS and checkpoint.grid_id is not None:
        task_id = conn.execute(text(
            f"SELECT id FROM tasks WHERE kind = 'checkpoint_alert' AND person_key = :k AND checkpoint_id = :c "
            f"AND status IN {OPEN_SQL} ORDER BY id LIMIT 1 FOR UPDATE"),
            {"k": person_key, "c": checkpoint.id}).scalar()
        if task_id is None:
            grid_code = conn.execute(text("SELECT code FROM grids WHERE id = :g"),
                                     {"g": checkpoint.grid_id}).scalar_one()  # the grid_id is a foreign key
            task_id = create_task(conn, Actor.system(), NewTask(
                kind="checkpoint_alert", grid_code=grid_code, source="checkpoint", person_key=person_key,
                checkpoint_id=checkpoint.id, point=(checkpoint.lon, checkpoint.lat),
                title=f"卡口预警：{COLOUR_NAMES[colour]}人员经过{checkpoint.name}",
                detail=f"{scanned_at.isoformat()} {'进' if direction == 'in' else '出'}"), now)["id"]
    scan_id = conn.execute(text(
        "INSERT INTO scans (checkpoint_id, person_key, scanned_at, direction, colour, task_id, recorded_by, "
        "recorded_at) VALUES (:c, :k, :at, :d, :colour, :task, :by, :now) RETURNING id"),
        {"c": checkpoint.id, "k": person_key, "at": scanned_at, "d": direction, "colour": colour, "task": task_id,
         "by": actor.user_id, "now": now}).scalar_one()
    return {"id": scan_id, "checkpoint": checkpoint.code, "scanned_at": scanned_at.isoformat(),
            "direction": direction, "alert": colour in ALERT_COLOURS, "colour": colour, "task_id": task_id}, name


def checkpoints_in_scope(conn: Connection, actor: Actor) -> list[dict[str, Any]]:
    """The checkpoints at which the actor may record scans (those of his grids; all for a district-wide role),
    by code: the gate page's list to pick from."""
    actor.require_role(WORKER, SUPERVISOR, COMMANDER, ADMIN)
    scope = None if actor.sees_everything else sorted(actor.grid_ids)
    rows = conn.execute(text(
        "SELECT k.code, k.name, g.code AS grid_code FROM checkpoints k LEFT JOIN grids g ON g.id = k.grid_id "
        "WHERE CAST(:scope AS int[]) IS NULL OR k.grid_id = ANY(CAST(:scope AS int[])) ORDER BY k.code"),
        {"scope": scope})
    return [{"code": r.code, "name": r.name, "grid_code": r.grid_code} for r in rows]


def hourly_counts(conn: Connection, actor: Actor, checkpoint_code: str, since: datetime,
                  until: datetime) -> list[dict[str, Any]]:
    """Scans per hour (Beijing time) at a checkpoint: in, out and alerts (aggregates: reporters may read them).

    An alert is a red or yellow person passing: for a reporter, an hour's 1 to 4 alerts are None, as small
    person counts are in the statistics, and the period is widened to whole hours, so that two periods cut
    inside one hour cannot be subtracted to give a hidden count back. No sum over the hours is published, so no
    complementary cell is needed.
    """
    checkpoint = _checkpoint(conn, actor, checkpoint_code, aggregates=True)
    reporter = actor.role == REPORTER
    since, until = counted_period(actor, since, until)
    rows = conn.execute(text(
        "SELECT date_trunc('hour', scanned_at AT TIME ZONE 'Asia/Shanghai') AS hour, "
        "count(*) FILTER (WHERE direction = 'in') AS entries, count(*) FILTER (WHERE direction = 'out') AS exits, "
        "count(*) FILTER (WHERE colour IN ('red', 'yellow')) AS alerts FROM scans "
        "WHERE checkpoint_id = :c AND scanned_at >= :since AND scanned_at < :until GROUP BY 1 ORDER BY 1"),
        {"c": checkpoint.id, "since": since, "until": until})
    return [{"hour": r.hour.isoformat() + "+08:00", "in": r.entries, "out": r.exits,
             "alerts": None if reporter and 0 < r.alerts < SUPPRESS_BELOW else r.alerts} for r in rows]


def counted_period(actor: Actor, since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The period :func:`hourly_counts` counts for ``actor``: a reporter's widened to whole hours."""
    return (_whole_hour(since), _whole_hour(until, up=True)) if actor.role == REPORTER else (since, until)


def _whole_hour(moment: datetime, up: bool = False) -> datetime:
    """``moment`` down (or ``up``) to the whole hour (Beijing's hours are whole UTC hours too)."""
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor + timedelta(hours=1) if up and floor != moment else floor
