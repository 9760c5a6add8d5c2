"""Reading persons in the actor's data scope: masked by default, unmasked only with a reason and an audit line."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, text

from accounts.actor import COMMANDER, SUPERVISOR, WORKER, Actor
from accounts.repository import record_read
from gis.errors import InvalidRequest, NotFound
from matching.privacy import Vault

PERSON_COLUMNS = (
    "p.person_key, p.id_masked, p.name_masked, p.phone_masked, p.colour, p.reason, p.rule_id, p.sources, "
    "p.set_at, p.expires_at, p.method, p.confidence, p.unplaced_reason, p.grid_id, g.code AS grid_code, "
    "p.explanation")
PERSONS = "FROM persons p LEFT JOIN grids g ON g.id = p.grid_id"
PERSON_SELECT = f"SELECT {PERSON_COLUMNS} {PERSONS}"
# with the sealed data of the record his masked fields come from (as the last match chose it)
SEALED_SELECT = (f"SELECT {PERSON_COLUMNS}, r.sealed {PERSONS} LEFT JOIN source_records r "
                 "ON r.feed_file_id = p.record_feed_file_id AND r.row_number = p.record_row_number")


def _view(row: Row[Any]) -> dict[str, Any]:
    return {"person_key": row.person_key, "id_masked": row.id_masked, "name_masked": row.name_masked,
            "phone_masked": row.phone_masked, "colour": row.colour, "reason": row.reason, "rule_id": row.rule_id,
            "sources": row.sources, "set_at": row.set_at.isoformat() if row.set_at else None,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None, "method": row.method,
            "confidence": row.confidence, "grid_code": row.grid_code, "unplaced_reason": row.unplaced_reason,
            "explanation": row.explanation}


def _person_in_scope(conn: Connection, actor: Actor, person_key: str, select: str = PERSON_SELECT) -> Row[Any]:
    actor.require_rows()
    row = conn.execute(text(select + " WHERE p.person_key = :k"), {"k": person_key}).one_or_none()
    if row is None or not actor.sees_grid(row.grid_id):
        raise NotFound("人员不存在或不在您的范围内 / no such person in your scope")
    return row


def get_person(conn: Connection, actor: Actor, person_key: str) -> dict[str, Any]:
    """One person, masked, if his grid is in the actor's scope (unplaced persons: district-wide roles only)."""
    return _view(_person_in_scope(conn, actor, person_key))


def persons_in_scope(conn: Connection, actor: Actor, person_keys: list[str]) -> list[dict[str, Any]]:
    """Those of ``person_keys`` who are stored and in the actor's scope, masked, in key order; the others are
    left out, whether they do not exist or are outside the scope (the caller cannot tell which)."""
    actor.require_rows()
    if not person_keys:
        return []
    rows = conn.execute(text(PERSON_SELECT + " WHERE p.person_key = ANY(:keys) ORDER BY p.person_key"),
                        {"keys": person_keys})
    return [_view(r) for r in rows if actor.sees_grid(r.grid_id)]


def flagged_in_grid(conn: Connection, actor: Actor, grid_code: str, limit: int = 500) -> list[dict[str, Any]]:
    """The red, yellow and blue persons flagged to a grid in scope, reddest first (masked)."""
    actor.require_rows()
    grid_id = conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": grid_code}).scalar()
    if grid_id is None or not actor.sees_grid(grid_id):
        raise NotFound(f"网格 {grid_code} 不存在或不在您的范围内 / no grid {grid_code} in your scope")
    rows = conn.execute(text(PERSON_SELECT + " JOIN flags f ON f.person_key = p.person_key WHERE f.grid_id = :g "
                             "ORDER BY CASE p.colour WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 ELSE 2 END, "
                             "p.person_key LIMIT :limit"), {"g": grid_id, "limit": limit})
    return [_view(r) for r in rows]


def unmask_person(conn: Connection, actor: Actor, person_key: str, reason: str, vault: Vault,
                  client: str | None) -> dict[str, Any]:
    """The clear ID number, name and phone of a person in scope, from his latest record (the one his masked
    fields come from, as the last match chose it); audited.

    Only the staff who must reach him (his grid's workers, their supervisor,
    the command centre) may read them, and only with a stated reason.
    """
    actor.require_role(WORKER, SUPERVISOR, COMMANDER)
    if not isinstance(reason, str) or len(reason.strip()) < 2:
        raise InvalidRequest("查看完整信息须说明理由（reason）/ a reason is required to read personal data",
                             "reason")
    row = _person_in_scope(conn, actor, person_key, SEALED_SELECT)
    if row.sealed is None:
        raise NotFound("该人员没有可解密的原始记录 / no source record holds this person's data")
    record_read(conn, actor, "unmask_person", person_key, reason.strip(), client)
    return {**_view(row), **vault.open(row.sealed)}
