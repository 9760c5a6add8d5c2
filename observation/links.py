"""The self-report link of a plan (居家观察自报链接): a signed token the person opens on his phone, no login.

A link is ``/obs/<token>`` with the token ``NHO1.<plan id>.<nonce>.<mac>``: the mac is HMAC-SHA256 over
``NHO1.<plan id>.<nonce>`` under a key derived from the platform's person-key secret
(:meth:`matching.privacy.Vault.tag`, under a purpose of its own: an observation mac can never be taken for an
e-pass mac, a person key or a client tag), base64url without padding. The token names no person: printed as a
QR code and handed over by the worker, it says nothing without the platform.

It is not a one-time token: the person reports twice a day with the same link. It stands for its plan while

- its mac is right (checked in constant time) — else :class:`ForgedLink`;
- its nonce is the plan's ``token_nonce``: renewing (or revoking) the link draws a new nonce, and every link given
  before stops — :class:`ReplacedLink`;
- the plan is active and has not ended — :class:`EndedLink`.

A link reports at most :data:`REPORTS_PER_HOUR` times an hour (counted per plan, under the plan's lock): a
lost or shared link cannot flood the plan's checks; past it, :class:`~gis.errors.RateLimited` with the seconds
until the oldest report of the hour ages out.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from accounts.actor import COMMANDER, SUPERVISOR, WORKER, Actor
from gis.errors import Conflict, InvalidRequest, NotFound, RateLimited
from matching.privacy import SignedIds, Vault
from observation.checks import CheckReport, record_check

VERSION = "NHO1"
TOKEN_FIELD = "token"
ISSUERS = (WORKER, SUPERVISOR, COMMANDER)  # who may issue, renew or revoke a link (in his scope)
LINK_ACTIONS = ("issue", "renew", "revoke")
REPORTS_PER_HOUR = 6
RATE_WINDOW = timedelta(hours=1)
TOKENS = SignedIds(VERSION, "observation link signing key")  # a purpose of its own (see SignedIds)
new_nonce = SignedIds.new_nonce


def link_token(vault: Vault, plan_id: int, nonce: str) -> str:
    """The self-report token of plan ``plan_id`` with its current ``nonce``.

    >>> vault = Vault(b"k" * 32, b"A" * 43 + b"=")
    >>> token = link_token(vault, 7, "n" * 22)
    >>> token.startswith("NHO1.7.nnnn") and parse_link(vault, token) == (7, "n" * 22)
    True
    """
    return TOKENS.sign(vault, plan_id, nonce)


class InvalidLink(InvalidRequest):
    """A self-report link that is not good: refused (422) naming ``token``; nothing is recorded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, TOKEN_FIELD)


class ForgedLink(InvalidLink):
    """Malformed, not signed by this platform, or naming no plan it keeps."""

    def __init__(self) -> None:
        super().__init__("链接无效：不是本平台发出的自报链接 / invalid link: not a self-report link this platform gave")


class ReplacedLink(InvalidLink):
    """A link of ours, replaced by a newer one (renewed) or revoked: the person asks his grid worker for the new one."""

    def __init__(self) -> None:
        super().__init__("该链接已作废，请向网格员索取新链接 / this link was replaced or revoked: ask your grid worker "
                         "for the new one")


class EndedLink(InvalidLink):
    """The link's plan has ended or was closed: there is nothing more to report."""

    def __init__(self) -> None:
        super().__init__("居家观察已结束，无需再报 / the home observation has ended: no more reports are needed")


def parse_link(vault: Vault, token: object) -> tuple[int, str]:
    """(plan id, nonce) of a well-formed token whose mac is right; :class:`ForgedLink` otherwise."""
    parsed = TOKENS.parse(vault, token)
    if parsed is None:
        raise ForgedLink
    return parsed


def verify_link(conn: Connection, vault: Vault, token: object, now: datetime) -> int:
    """The plan id a self-report token stands for, or :class:`ForgedLink`, :class:`ReplacedLink` (an old nonce)
    or :class:`EndedLink` (the plan closed or past its end), each naming ``token``."""
    plan_id, nonce = parse_link(vault, token)
    row = conn.execute(text("SELECT token_nonce, status, ends_at FROM observation_plans WHERE id = :i"),
                       {"i": plan_id}).one_or_none()
    if row is None:
        raise ForgedLink  # signed by us once, then gone (a restored backup): not in force
    if not hmac.compare_digest(row.token_nonce.encode(), nonce.encode()):
        raise ReplacedLink
    if row.status != "active" or row.ends_at <= now:
        raise EndedLink
    return plan_id


def check_rate(conn: Connection, plan_id: int, now: datetime) -> None:
    """Refuse a self-report over :data:`REPORTS_PER_HOUR` for the plan in the last hour (429 with the seconds until
    the oldest of them ages out). Counted under a transaction-scoped advisory lock of the link's plan, held until
    the report is stored: a burst is counted one report at a time. (Not the plan's row lock: recording a fever
    takes the matcher's lock before the plan's, and this must not come between them.)"""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('nanhai.observation.link:' || CAST(:i AS text)))"),
                 {"i": plan_id})
    row = conn.execute(text(
        "SELECT count(*) AS n, min(reported_at) AS oldest FROM observation_checks WHERE plan_id = :i "
        "AND channel = 'self' AND reported_at > :since"), {"i": plan_id, "since": now - RATE_WINDOW}).one()
    if row.n >= REPORTS_PER_HOUR:
        wait = max(1, int((row.oldest + RATE_WINDOW - now).total_seconds()) + 1)
        raise RateLimited(f"本链接一小时内已上报 {REPORTS_PER_HOUR} 次，请稍后再试 / this link has reported "
                          f"{REPORTS_PER_HOUR} times in the last hour: try again later", retry_after=wait)


def self_report(conn: Connection, vault: Vault, token: object, report: CheckReport, now: datetime) -> dict[str, Any]:
    """Record a person's own report through his link: verified, rate-limited, then counted as his check by
    :func:`observation.checks.record_check` (channel ``self``, no actor). The answer says only what the person
    may read: which check it counted for and whether it was late (no task, no code)."""
    plan_id = verify_link(conn, vault, token, now)
    check_rate(conn, plan_id, now)
    recorded = record_check(conn, plan_id, report, "self", now, None)
    return {"plan_id": plan_id, "check_id": recorded["check_id"], "due_at": recorded["due_at"],
            "status": recorded["status"], "late": bool(recorded["late"]), "reported_at": now.isoformat()}


def _plan_in_scope(conn: Connection, actor: Actor, plan_id: int) -> Any:
    """The plan if the actor may hand out its link: 403 for another role, 404 outside his grids or unknown."""
    actor.require_role(*ISSUERS)
    row = conn.execute(text(
        "SELECT p.id, p.person_key, p.grid_id, p.status, p.starts_at, p.ends_at, p.token_nonce, "
        "per.name_masked, g.code AS grid_code FROM observation_plans p "
        "LEFT JOIN persons per ON per.person_key = p.person_key LEFT JOIN grids g ON g.id = p.grid_id "
        "WHERE p.id = :i"), {"i": plan_id}).one_or_none()
    if row is None or not actor.sees_grid(row.grid_id):
        raise NotFound(f"观察计划 {plan_id} 不存在或不在您的范围内 / no observation plan {plan_id} in your scope")
    return row


def _in_force(row: Any, now: datetime) -> None:
    if row.status != "active" or row.ends_at <= now:
        raise Conflict(f"观察计划 {row.id} 已结束，不再发放自报链接 / observation plan {row.id} has ended: no link is "
                       f"given for it", "plan_ended")


def _event(conn: Connection, row: Any, actor: Actor, now: datetime, detail: str) -> None:
    conn.execute(text("INSERT INTO observation_events (plan_id, person_key, kind, at, detail, actor_id) "
                      "VALUES (:p, :k, 'link', :at, :d, :a)"),
                 {"p": row.id, "k": row.person_key, "at": now, "d": detail, "a": actor.user_id})


def current_link(conn: Connection, actor: Actor, plan_id: int, vault: Vault, now: datetime) -> dict[str, Any]:
    """The plan's link in force (read only: printing it again changes nothing), for the staff who see the plan."""
    row = _plan_in_scope(conn, actor, plan_id)
    _in_force(row, now)
    return _link_view(row, link_token(vault, row.id, row.token_nonce))


def _link_view(row: Any, token: str | None) -> dict[str, Any]:
    return {"plan_id": row.id, "token": token, "path": f"/obs/{token}" if token else None,
            "name_masked": row.name_masked, "grid_code": row.grid_code, "starts_at": row.starts_at.isoformat(),
            "ends_at": row.ends_at.isoformat()}


def _replace_nonce(conn: Connection, actor: Actor, row: Any, now: datetime, detail: str) -> str:
    nonce = new_nonce()
    conn.execute(text("UPDATE observation_plans SET token_nonce = :n, updated_at = :now WHERE id = :i"),
                 {"n": nonce, "now": now, "i": row.id})
    _event(conn, row, actor, now, detail)
    return nonce


RENEWED = "自报链接已换新，旧链接作废 / self-report link renewed; the old one no longer works"
REVOKED = "自报链接已作废 / self-report link revoked"


def renew_link(conn: Connection, actor: Actor, plan_id: int, now: datetime) -> str:
    """Give the plan a new nonce (every link handed out before stops working) and return the new nonce; written to
    the plan's events (``link``). 403 for another role, 404 out of scope, 409 for a plan that has ended.

    The token is :func:`link_token` over the plan id and this nonce (the caller holds the vault)."""
    row = _plan_in_scope(conn, actor, plan_id)
    _in_force(row, now)
    return _replace_nonce(conn, actor, row, now, RENEWED)


def hand_out_link(conn: Connection, actor: Actor, plan_id: int, action: str, vault: Vault,
                  now: datetime) -> dict[str, Any]:
    """Issue (the link in force), renew (a new one; the old stops) or revoke (the old stops, none shown) a plan's
    self-report link; each written to the plan's events (``link``)."""
    if action not in LINK_ACTIONS:
        raise InvalidRequest(f"action 须为 {', '.join(LINK_ACTIONS)} 之一 / action must be one of "
                             f"{', '.join(LINK_ACTIONS)}", "action")
    row = _plan_in_scope(conn, actor, plan_id)
    _in_force(row, now)
    if action == "issue":
        _event(conn, row, actor, now, "发放自报链接 / self-report link given")
        return {**_link_view(row, link_token(vault, row.id, row.token_nonce)), "action": action}
    nonce = _replace_nonce(conn, actor, row, now, RENEWED if action == "renew" else REVOKED)
    return {**_link_view(row, link_token(vault, row.id, nonce) if action == "renew" else None), "action": action}
