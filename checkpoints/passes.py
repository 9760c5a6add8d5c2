"""E-passes (电子通行证): a signed token per person, shown as a QR code at a checkpoint or printed on paper.

A token is ``NHP1.<pass id>.<nonce>.<mac>``: the mac is HMAC-SHA256 over ``NHP1.<pass id>.<nonce>`` under a key
derived from the platform's person-key secret (:meth:`matching.privacy.Vault.tag`, so no second secret has to be
kept and backed up), base64url without padding. The token carries no ID number, name or phone: read off a
phone's screen or a sheet of paper, it says nothing about the person without the platform.

A token is good when its mac is right (checked in constant time), its pass exists with the same nonce, and the
pass is not revoked: it then stands for the pass's person key. Issuing and revoking are for the staff who see the
person (his grid's worker, its supervisor, a commander: the scope of :func:`matching.person_repository.get_person`),
each written to the audit log. A person has at most one pass in force: a new one revokes the previous one.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from accounts.actor import COMMANDER, SUPERVISOR, WORKER, Actor
from accounts.repository import record_read
from gis.errors import Conflict, InvalidRequest, NotFound
from matching.person_repository import get_person
from matching.privacy import SignedIds, Vault

VERSION = "NHP1"
ISSUERS = (WORKER, SUPERVISOR, COMMANDER)
REISSUED = "重新签发 / reissued"
TOKEN_FIELD = "pass_token"
# the pass-signing key is derived under a purpose of its own (see SignedIds)
TOKENS = SignedIds(VERSION, "e-pass signing key")


def sign(vault: Vault, pass_id: int, nonce: str) -> str:
    """The token of pass ``pass_id`` with its ``nonce``.

    >>> vault = Vault(b"k" * 32, b"A" * 43 + b"=")
    >>> token = sign(vault, 7, "n" * 22)
    >>> token.startswith("NHP1.7.nnnn") and parse_token(vault, token) == (7, "n" * 22)
    True
    """
    return TOKENS.sign(vault, pass_id, nonce)


class InvalidPass(InvalidRequest):
    """A pass token that is not good: refused (422), naming ``pass_token``; nothing is recorded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, TOKEN_FIELD)


class ForgedPass(InvalidPass):
    """Malformed, not signed by this platform, or naming no pass it keeps (the API's ``error``: ForgedPass)."""

    def __init__(self) -> None:
        super().__init__("通行证无效：不是本平台签发的通行证 / invalid pass: not a pass this platform issued")


class RevokedPass(InvalidPass):
    """A pass of ours, revoked (the API's ``error``: RevokedPass): the gate page says so apart from a forgery."""

    def __init__(self) -> None:
        super().__init__("通行证已吊销 / this pass has been revoked")


def parse_token(vault: Vault, token: object) -> tuple[int, str]:
    """(pass id, nonce) of a well-formed token whose mac is right; :class:`InvalidPass` otherwise."""
    parsed = TOKENS.parse(vault, token)
    if parsed is None:
        raise ForgedPass
    return parsed


def verify(conn: Connection, vault: Vault, token: object) -> str:
    """The person key a pass token stands for: signature, existence (same nonce) and not revoked, else
    :class:`ForgedPass` or :class:`RevokedPass`, naming ``pass_token``."""
    pass_id, nonce = parse_token(vault, token)
    row = conn.execute(text("SELECT person_key, nonce, revoked_at FROM e_passes WHERE id = :i"),
                       {"i": pass_id}).one_or_none()
    if row is None or not hmac.compare_digest(row.nonce.encode(), nonce.encode()):
        raise ForgedPass  # signed by us once, then gone (a restored backup): not in force
    if row.revoked_at is not None:
        raise RevokedPass
    return str(row.person_key)


def _view(row: Any, vault: Vault | None = None) -> dict[str, Any]:
    answer = {"id": row.id, "person_key": row.person_key, "issued_at": row.issued_at.isoformat(),
              "issued_by": row.issuer, "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
              "revoked_by": row.revoker, "reason": row.reason}
    if vault is not None:
        answer["token"] = sign(vault, row.id, row.nonce)
    return answer


SELECT = ("SELECT e.id, e.person_key, e.nonce, e.issued_at, e.revoked_at, e.reason, i.username AS issuer, "
          "r.username AS revoker FROM e_passes e LEFT JOIN users i ON i.id = e.issued_by "
          "LEFT JOIN users r ON r.id = e.revoked_by")


def _in_scope(conn: Connection, actor: Actor, person_key: str) -> dict[str, Any]:
    """The person (masked) if the actor may issue his passes: 403 for another role, 404 outside the scope."""
    actor.require_role(*ISSUERS)
    return get_person(conn, actor, person_key)


def issue_pass(conn: Connection, actor: Actor, person_key: str, vault: Vault, now: datetime,
               client: str | None = None) -> dict[str, Any]:
    """Issue a new pass for a person in the actor's scope; the pass in force before it (if any) is revoked. Audited
    (``e_pass.issue``). The answer carries the token (for the QR code) and the ids it replaced."""
    person = _in_scope(conn, actor, person_key)
    # the person's row locked first: two issues at once for one person wait for each other instead of failing on
    # the one-live-pass index
    conn.execute(text("SELECT 1 FROM persons WHERE person_key = :k FOR UPDATE"), {"k": person_key})
    replaced = conn.execute(text(
        "UPDATE e_passes SET revoked_at = :now, revoked_by = :by, reason = :why WHERE person_key = :k "
        "AND revoked_at IS NULL RETURNING id"),
        {"now": now, "by": actor.user_id, "why": REISSUED, "k": person_key}).scalars().all()
    pass_id = conn.execute(text(
        "INSERT INTO e_passes (person_key, nonce, issued_by, issued_at) VALUES (:k, :n, :by, :now) RETURNING id"),
        {"k": person_key, "n": SignedIds.new_nonce(), "by": actor.user_id, "now": now}).scalar_one()
    note = f"签发通行证 #{pass_id}" + (f"，吊销 #{', #'.join(map(str, replaced))}" if replaced else "")
    record_read(conn, actor, "e_pass.issue", person_key, note, client)
    row = conn.execute(text(SELECT + " WHERE e.id = :i"), {"i": pass_id}).one()
    return {**_view(row, vault), "name_masked": person["name_masked"], "replaces": sorted(replaced)}


def _pass_in_scope(conn: Connection, actor: Actor, pass_id: int) -> tuple[Any, dict[str, Any]]:
    actor.require_role(*ISSUERS)
    row = conn.execute(text(SELECT + " WHERE e.id = :i"), {"i": pass_id}).one_or_none()
    try:
        person = get_person(conn, actor, row.person_key) if row is not None else None
    except NotFound:
        person = None
    if row is None or person is None:
        raise NotFound(f"通行证 {pass_id} 不存在或不在您的范围内 / no pass {pass_id} in your scope")
    return row, person


def revoke_pass(conn: Connection, actor: Actor, pass_id: int, reason: object, now: datetime,
                client: str | None = None) -> dict[str, Any]:
    """Revoke a pass in force, with a reason; audited (``e_pass.revoke``). A pass already revoked: 409."""
    if not isinstance(reason, str) or len(reason.strip()) < 2:
        raise InvalidRequest("吊销通行证须说明理由（reason）/ a reason is required to revoke a pass", "reason")
    row, _person = _pass_in_scope(conn, actor, pass_id)
    done = conn.execute(text("UPDATE e_passes SET revoked_at = :now, revoked_by = :by, reason = :why "
                             "WHERE id = :i AND revoked_at IS NULL RETURNING id"),
                        {"now": now, "by": actor.user_id, "why": reason.strip(), "i": pass_id}).scalar()
    if done is None:
        raise Conflict(f"通行证 {pass_id} 已于先前吊销 / pass {pass_id} was already revoked", "pass_revoked")
    record_read(conn, actor, "e_pass.revoke", row.person_key, f"吊销通行证 #{pass_id}：{reason.strip()}", client)
    return _view(conn.execute(text(SELECT + " WHERE e.id = :i"), {"i": pass_id}).one())


def person_passes(conn: Connection, actor: Actor, person_key: str) -> list[dict[str, Any]]:
    """The passes issued to a person in scope, newest first (without their tokens)."""
    _in_scope(conn, actor, person_key)
    rows = conn.execute(text(SELECT + " WHERE e.person_key = :k ORDER BY e.id DESC"), {"k": person_key})
    return [_view(r) for r in rows]


def printable(conn: Connection, actor: Actor, pass_id: int, vault: Vault) -> dict[str, Any]:
    """What the print page shows of a pass in scope: its token (for the QR code), the masked name, the issue date
    and whether it was revoked (a revoked pass is not printed)."""
    row, person = _pass_in_scope(conn, actor, pass_id)
    return {**_view(row, vault), "name_masked": person["name_masked"]}
