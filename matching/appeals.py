"""Changing a person's code by hand from the browser: a commander's override, a supervisor's appeal.

- A commander or an administrator **overrides** a code directly: colour, reason, until when. It is stored as
  ``gridctl codes override`` stores it (:func:`matching.repository.add_override`) and holds, whatever the
  rules say, until it expires.
- A supervisor **appeals**: the same three things, as a request that a commander or an administrator approves
  (which creates the override) or rejects, each with a note. One appeal per person may wait at a time.

Each step is audited (``code.override``, ``code.appeal``, ``code.appeal.decide``) in the caller's transaction,
and only for a person in the actor's scope. An override takes effect at the next match: the caller queues one
(:func:`jobs.queue.enqueue_rematch`) once its transaction is committed, and the match writes the change into
the person's code history like any other.

>>> from datetime import UTC, datetime
>>> expiry(datetime(2026, 12, 1, 8, tzinfo=UTC), days=7).isoformat()
'2026-12-08T08:00:00+00:00'
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, Actor
from accounts.repository import record_read
from gis.errors import Conflict, InvalidRequest, NotFound
from matching.person_repository import get_person
from matching.repository import add_override

COLOURS = ("red", "yellow", "blue", "green")
OVERRIDERS = (COMMANDER, ADMIN)  # change a code directly, and decide appeals
APPELLANTS = (SUPERVISOR,)  # ask for a change
MOST_DAYS = 365
BEIJING = ZoneInfo("Asia/Shanghai")
APPEAL_COLUMNS = ("a.id, a.person_key, a.colour, a.reason, a.expires_at, a.requested_by, a.requested_at, a.status, "
                  "a.decided_by, a.decided_at, a.decision_note, a.override_id")


def expiry(now: datetime, days: int | None = None, until: date | None = None) -> datetime:
    """When a manual code ends: ``days`` from ``now``, or the end of the day ``until`` (Beijing time); from
    1 day to :data:`MOST_DAYS` ahead."""
    if until is not None:
        ends = datetime.combine(until + timedelta(days=1), time(0), BEIJING).astimezone(UTC)
    elif days is not None:
        if not isinstance(days, int) or isinstance(days, bool):
            raise InvalidRequest("有效天数须为整数 / days must be a whole number", "days")
        ends = now + timedelta(days=days)
    else:
        raise InvalidRequest("请填写有效天数或截止日期 / give a number of days or an end date", "days")
    if ends <= now + timedelta(hours=1) or ends > now + timedelta(days=MOST_DAYS, hours=24):
        raise InvalidRequest(f"有效期须在 1 至 {MOST_DAYS} 天之间 / the code must hold from 1 to {MOST_DAYS} days",
                             "until" if until is not None else "days")
    return ends


def _checked(colour: object, reason: object) -> tuple[str, str]:
    if colour not in COLOURS:
        raise InvalidRequest(f"未知颜色 {colour} / unknown colour: one of {', '.join(COLOURS)}", "colour")
    if not isinstance(reason, str) or len(reason.strip()) < 2:
        raise InvalidRequest("请说明理由 / a reason is required", "reason")
    return str(colour), reason.strip()[:500]


def _beijing_day(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d")


def override_code(conn: Connection, actor: Actor, person_key: str, colour: str, reason: str, expires_at: datetime,
                  client: str | None = None) -> int:
    """Set a person's code by hand until ``expires_at`` (a commander or an administrator, the person in his
    scope); audited. Returns the override's id; it applies at the next match."""
    actor.require_role(*OVERRIDERS)
    colour, why = _checked(colour, reason)
    get_person(conn, actor, person_key)  # in scope, or NotFound
    override_id = add_override(conn, person_key, colour, why, actor.username, expires_at)
    record_read(conn, actor, "code.override", person_key,
                f"#{override_id} → {colour}，至 / until {_beijing_day(expires_at)}：{why}", client)
    return override_id


def file_appeal(conn: Connection, actor: Actor, person_key: str, colour: str, reason: str, expires_at: datetime,
                client: str | None = None) -> int:
    """A supervisor asks for a person of his community to have ``colour`` until ``expires_at``; audited.
    Returns the appeal's id. Refused (Conflict) while another appeal about him waits."""
    actor.require_role(*APPELLANTS)
    colour, why = _checked(colour, reason)
    get_person(conn, actor, person_key)
    try:
        with conn.begin_nested():
            appeal_id: int = conn.execute(text(
                "INSERT INTO code_appeals (person_key, colour, reason, expires_at, requested_by) "
                "VALUES (:k, :c, :r, :e, :b) RETURNING id"),
                {"k": person_key, "c": colour, "r": why, "e": expires_at, "b": actor.username}).scalar_one()
    except IntegrityError as exc:
        if "ux_code_appeals_one_pending" not in str(exc.orig):
            raise
        raise Conflict("该人员已有待处理的申诉 / an appeal about this person is already waiting",
                       code="appeal_pending") from None
    record_read(conn, actor, "code.appeal", person_key,
                f"#{appeal_id} → {colour}，至 / until {_beijing_day(expires_at)}：{why}", client)
    return appeal_id


def decide_appeal(conn: Connection, actor: Actor, appeal_id: int, approve: bool, note: str, now: datetime,
                  client: str | None = None) -> dict[str, Any]:
    """Approve (creating the override the appeal asks for) or reject a waiting appeal, with a note; a
    commander or an administrator, the person in his scope. Audited; returns the appeal as decided."""
    actor.require_role(*OVERRIDERS)
    if not isinstance(note, str) or len(note.strip()) < 2:
        raise InvalidRequest("请填写处理意见 / a note on the decision is required", "note")
    row = conn.execute(text(f"SELECT {APPEAL_COLUMNS} FROM code_appeals a WHERE a.id = :id FOR UPDATE"),
                       {"id": appeal_id}).one_or_none()
    missing = NotFound(f"申诉 #{appeal_id} 不存在或不在您的范围内 / no appeal #{appeal_id} in your scope")
    if row is None:
        raise missing
    if not actor.sees_everything:  # a town's commander: his town's persons (a person gone: the district's roles)
        try:
            get_person(conn, actor, row.person_key)
        except NotFound:
            raise missing from None
    if row.status != "pending":
        raise Conflict(f"申诉 #{appeal_id} 已处理（{row.status}）/ appeal #{appeal_id} was already decided",
                       code="appeal_decided")
    override_id = None
    if approve:
        if row.expires_at <= now + timedelta(hours=1):
            raise InvalidRequest(f"申诉 #{appeal_id} 申请的有效期已过，请驳回后重新申诉 / the appeal's end date has "
                                 "passed: reject it and appeal again", "note")
        override_id = add_override(conn, row.person_key, row.colour, row.reason,
                                   f"{actor.username}（批准 {row.requested_by} 的申诉 #{appeal_id} / appeal approved）",
                                   row.expires_at)
    status = "approved" if approve else "rejected"
    conn.execute(text("UPDATE code_appeals SET status = :s, decided_by = :b, decided_at = :at, decision_note = :n, "
                      "override_id = :o WHERE id = :id"),
                 {"s": status, "b": actor.username, "at": now, "n": note.strip()[:500], "o": override_id,
                  "id": appeal_id})
    made = f" → 人工调整 / override #{override_id}" if override_id else ""
    record_read(conn, actor, "code.appeal.decide", row.person_key, f"#{appeal_id} {status}{made}：{note.strip()}",
                client)
    return appeal(conn, appeal_id)


def _view(row: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    view = {"id": row.id, "person_key": row.person_key, "colour": row.colour, "reason": row.reason,
            "expires_at": iso(row.expires_at), "requested_by": row.requested_by,
            "requested_at": iso(row.requested_at), "status": row.status, "decided_by": row.decided_by,
            "decided_at": iso(row.decided_at), "decision_note": row.decision_note, "override_id": row.override_id}
    for extra in ("id_masked", "name_masked", "grid_code", "current_colour"):
        if extra in row._fields:
            view[extra] = getattr(row, extra)
    return view


def appeal(conn: Connection, appeal_id: int) -> dict[str, Any]:
    """One appeal (the caller has checked the scope)."""
    return _view(conn.execute(text(f"SELECT {APPEAL_COLUMNS} FROM code_appeals a WHERE a.id = :id"),
                              {"id": appeal_id}).one())


def appeals_of(conn: Connection, person_key: str) -> list[dict[str, Any]]:
    """Every appeal about a person, newest first (the caller has checked he is in scope)."""
    return [_view(r) for r in conn.execute(text(
        f"SELECT {APPEAL_COLUMNS} FROM code_appeals a WHERE a.person_key = :k ORDER BY a.requested_at DESC, a.id DESC"),
        {"k": person_key})]


def pending_appeals(conn: Connection, actor: Actor, limit: int = 100) -> list[dict[str, Any]]:
    """The appeals waiting for a decision about persons in the actor's scope, oldest first, each with the
    person's masked ID and name, grid and current colour (supervisors see their community's, to follow them;
    commanders and administrators decide them). An appeal whose person is gone (his records withdrawn) is
    left to the district-wide roles."""
    actor.require_role(*APPELLANTS, *OVERRIDERS)
    scope = None if actor.sees_everything else sorted(actor.grid_ids)
    rows = conn.execute(text(
        f"SELECT {APPEAL_COLUMNS}, p.id_masked, p.name_masked, g.code AS grid_code, p.colour AS current_colour "
        "FROM code_appeals a LEFT JOIN persons p ON p.person_key = a.person_key LEFT JOIN grids g ON g.id = p.grid_id "
        "WHERE a.status = 'pending' AND (CAST(:scope AS int[]) IS NULL OR p.grid_id = ANY(:scope)) "
        "ORDER BY a.requested_at, a.id LIMIT :n"), {"scope": scope, "n": limit})
    return [_view(r) for r in rows]
