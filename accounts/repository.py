"""Database access for users, logins, sessions and the audit log.

Sessions are server-side: the cookie carries a random token, the table keeps
only its SHA-256, the CSRF token that mutating requests must echo, and the
expiry. Failed logins are counted per account and per client; past the limit
the login is refused for a while, whatever the password.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Row, text

from accounts.actor import ROLE_NAMES, SUPERVISOR, Actor
from accounts.passwords import check_strength, hash_password, verify_password
from gis.db import NamedRow, run, sql
from gis.errors import InvalidRequest, NotFound, RateLimited

SESSION_LIFETIME = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_ACCOUNT = 5
FAILURES_PER_CLIENT = 30


def token_hash(token: str) -> str:
    """What the session table keeps of a session token (its SHA-256), never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


ACTOR_SELECT = """
SELECT u.id, u.username, u.role, u.community_id, u.town_id, u.display_name,
       coalesce(array_agg(g.id ORDER BY g.code) FILTER (WHERE g.id IS NOT NULL), '{{}}') AS grid_ids,
       coalesce(array_agg(g.code ORDER BY g.code) FILTER (WHERE g.id IS NOT NULL), '{{}}') AS grid_codes
       {extra}
FROM users u {join}
LEFT JOIN LATERAL (
    SELECT g.id, g.code FROM user_grids ug JOIN grids g ON g.id = ug.grid_id WHERE ug.user_id = u.id
    UNION
    SELECT g.id, g.code FROM grids g WHERE u.role = 'supervisor' AND g.community_id = u.community_id
    UNION
    SELECT g.id, g.code FROM grids g JOIN communities c ON c.id = g.community_id
    WHERE u.town_id IS NOT NULL AND u.role IN ('commander', 'reporter') AND c.town_id = u.town_id
) g ON true
WHERE {where} AND u.active
GROUP BY u.id {group}
"""


SESSION_SELECT = ACTOR_SELECT.format(extra=", s.csrf_token", join="JOIN user_sessions s ON s.user_id = u.id",
                                     where="s.token_hash = :h AND s.expires_at > :now", group=", s.token_hash")


def actor_of(row: Row[Any] | NamedRow) -> Actor:
    """The actor of a row of ``ACTOR_SELECT`` (or of a statement built on ``SESSION_SELECT``)."""
    return Actor(row.id, row.username, row.role, row.community_id, frozenset(row.grid_ids), row.display_name,
                 tuple(row.grid_codes), row.town_id)


def load_actor(conn: Connection, user_id: int) -> Actor:
    """The active user ``user_id`` with the grids he answers for (a supervisor: all of his community's)."""
    row = conn.execute(sql(ACTOR_SELECT.format(extra="", join="", where="u.id = :id", group="")),
                       {"id": user_id}).one_or_none()
    if row is None:
        raise NotFound(f"用户不存在或已停用 / no active user {user_id}")
    return actor_of(row)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """A real hash of a random password (made once per process), checked for users who do not exist."""
    return hash_password(secrets.token_urlsafe(24))


def check_throttle(conn: Connection, username: str, client: str, now: datetime) -> None:
    """Raise :class:`RateLimited` when the account or the client failed too often lately (logins and
    activations count together: both guess a secret of the same account).

    The account's and the client's attempts are taken one at a time (transaction-scoped advisory locks, always
    account first, then client, so two attempts never wait on each other in a circle): a burst cannot all be
    counted before any failure is written. The caller's transaction holds them until it commits its failure.
    """
    conn.execute(sql("SELECT pg_advisory_xact_lock(hashtext('nanhai.login.account:' || :u)), "
                     "pg_advisory_xact_lock(hashtext('nanhai.login.client:' || :c))"), {"u": username, "c": client})
    since = now - FAILURE_WINDOW
    by_account, by_client = conn.execute(text(
        "SELECT count(*) FILTER (WHERE username = :u), count(*) FILTER (WHERE client = :c) "
        "FROM login_failures WHERE failed_at > :since AND (username = :u OR client = :c)"),
        {"u": username, "c": client, "since": since}).one()
    if by_account >= FAILURES_PER_ACCOUNT or by_client >= FAILURES_PER_CLIENT:
        raise RateLimited("失败次数过多，请 15 分钟后再试 / too many failed attempts; try again in 15 minutes",
                          retry_after=int(FAILURE_WINDOW.total_seconds()))


def record_failure(conn: Connection, username: str, client: str, now: datetime) -> None:
    """Count one failed login or activation of ``username`` from ``client`` (the caller must commit it)."""
    conn.execute(text("INSERT INTO login_failures (username, client, failed_at) VALUES (:u, :c, :now)"),
                 {"u": username, "c": client, "now": now})


def check_login(conn: Connection, username: str, password: str, client: str, now: datetime) -> Actor | None:
    """The user when ``password`` is his; None (and the failure recorded) otherwise.

    Raises :class:`RateLimited` when the account or the client failed too often
    lately, before the password is even looked at. The caller must commit even
    when None is returned, so that the failure counts. An account that must
    set its password (new, or reset) cannot log in at all: it is activated with
    its one-time code (:mod:`accounts.activation`).
    """
    check_throttle(conn, username, client, now)
    user = conn.execute(text("SELECT id, password_hash FROM users WHERE username = :u AND active "
                             "AND NOT must_set_password"), {"u": username}).one_or_none()
    # an unknown user costs the same hash as a real one: the answer's time does not tell who has an account
    if not verify_password(password, _decoy_hash() if user is None else user.password_hash) or user is None:
        record_failure(conn, username, client, now)
        return None
    conn.execute(text("DELETE FROM login_failures WHERE username = :u"), {"u": username})
    return load_actor(conn, user.id)


def open_session(conn: Connection, user_id: int, now: datetime,
                 lifetime: timedelta = SESSION_LIFETIME) -> tuple[str, str, datetime]:
    """Start a session: returns (cookie token, CSRF token, expiry)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + lifetime
    conn.execute(text("INSERT INTO user_sessions (token_hash, user_id, csrf_token, created_at, expires_at) "
                      "VALUES (:h, :u, :csrf, :now, :exp)"),
                 {"h": token_hash(token), "u": user_id, "csrf": csrf, "now": now, "exp": expires})
    return token, csrf, expires


def session_actor(conn: Connection, token: str, now: datetime) -> tuple[Actor, str] | None:
    """(actor, CSRF token) of a live session, in one query; None when unknown or expired."""
    row = run(conn, SESSION_SELECT, {"h": token_hash(token), "now": now}).fetchone()
    return None if row is None else (actor_of(row), row.csrf_token)


def close_session(conn: Connection, token: str) -> None:
    """End a session (log out)."""
    conn.execute(text("DELETE FROM user_sessions WHERE token_hash = :h"), {"h": token_hash(token)})


def record_read(conn: Connection, actor: Actor, action: str, subject: str, reason: str | None,
                client: str | None) -> None:
    """Write one line to the audit log (append-only): a read of unmasked personal data, or a change of an
    account (:mod:`accounts.staff`; ``reason`` then says what changed, never a phone in clear)."""
    conn.execute(text("INSERT INTO audit_log (user_id, username, action, subject, reason, client) "
                      "VALUES (:uid, :u, :a, :s, :r, :c)"),
                 {"uid": actor.user_id, "u": actor.username, "a": action, "s": subject, "r": reason, "c": client})


def save_user(conn: Connection, username: str, role: str, password: str, display_name: str | None = None,
              community_id: int | None = None, grid_ids: Iterable[int] = ()) -> int:
    """Create or reset a (non-synthetic) user with a password and his grids; returns his id."""
    if role not in ROLE_NAMES or role == "system":
        raise InvalidRequest(f"未知角色 {role} / unknown role {role}", "role")
    weak = check_strength(password)
    if weak:
        raise InvalidRequest(weak, "password")
    user_id = conn.execute(text(
        "INSERT INTO users (username, display_name, role, community_id, password_hash, active, synthetic) "
        "VALUES (:u, :d, :r, :c, :p, true, false) "
        "ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name, role = EXCLUDED.role, "
        "community_id = EXCLUDED.community_id, password_hash = EXCLUDED.password_hash, active = true, "
        "town_id = NULL, must_set_password = false, activation_hash = NULL, activation_expires_at = NULL, "
        "disabled_at = NULL, disabled_by = NULL "
        "RETURNING id"),
        {"u": username, "d": display_name or username, "r": role, "c": community_id,
         "p": hash_password(password)}).scalar_one()
    conn.execute(text("DELETE FROM user_grids WHERE user_id = :id"), {"id": user_id})
    conn.execute(text("DELETE FROM user_sessions WHERE user_id = :id"), {"id": user_id})
    conn.execute(text("DELETE FROM login_failures WHERE username = :u"), {"u": username})
    if role != SUPERVISOR:
        for grid_id in grid_ids:
            conn.execute(text("INSERT INTO user_grids (user_id, grid_id) VALUES (:u, :g)"),
                         {"u": user_id, "g": grid_id})
    return user_id


def set_on_duty(conn: Connection, user_id: int, on_duty: bool) -> None:
    """Mark a worker on or off duty (auto-dispatch only picks workers on duty)."""
    conn.execute(text("UPDATE users SET on_duty = :d WHERE id = :id"), {"d": on_duty, "id": user_id})


def workers_in_scope(conn: Connection, actor: Actor, grid_code: str | None = None,
                     limit: int = 500) -> list[dict[str, Any]]:
    """The workers a supervisor or commander may dispatch to (of ``grid_code`` when given), with their load."""
    actor.require_role(SUPERVISOR, "commander", "admin")
    scope = None if actor.sees_everything else sorted(actor.grid_ids)
    rows = conn.execute(text(
        "SELECT u.id, u.username, u.display_name, u.on_duty, array_agg(DISTINCT g.code) AS grid_codes, "
        "(SELECT count(*) FROM tasks t WHERE t.assignee_id = u.id AND t.status NOT IN ('closed', 'cancelled')) "
        "AS open_tasks FROM users u JOIN user_grids ug ON ug.user_id = u.id JOIN grids g ON g.id = ug.grid_id "
        "WHERE u.role = 'worker' AND u.active AND (CAST(:scope AS int[]) IS NULL OR g.id = ANY(:scope)) "
        "AND (CAST(:grid AS text) IS NULL OR g.code = :grid) GROUP BY u.id ORDER BY u.username LIMIT :limit"),
        {"scope": scope, "grid": grid_code, "limit": limit})
    return [{"id": r.id, "username": r.username, "display_name": r.display_name, "on_duty": r.on_duty,
             "grid_codes": sorted(r.grid_codes), "open_tasks": r.open_tasks} for r in rows]


IDEMPOTENCY_TTL = timedelta(hours=24)


def purge_expired(conn: Connection, now: datetime) -> int:
    """Forget what is no longer needed: ended sessions, old login failures, idempotency answers past a day.

    A phone retries within minutes; a day keeps every realistic retry safe.
    """
    removed = conn.execute(text("DELETE FROM user_sessions WHERE expires_at < :now"), {"now": now}).rowcount
    removed += conn.execute(text("DELETE FROM login_failures WHERE failed_at < :t"),
                            {"t": now - FAILURE_WINDOW}).rowcount
    removed += conn.execute(text("DELETE FROM idempotency_keys WHERE created_at < :t"),
                            {"t": now - IDEMPOTENCY_TTL}).rowcount
    return removed


def session_expiry(conn: Connection, token: str) -> datetime | None:
    """When the session of ``token`` ends (None: no such session): what a phone keeps is dropped then."""
    expires: datetime | None = conn.execute(text("SELECT expires_at FROM user_sessions WHERE token_hash = :h"),
                                            {"h": token_hash(token)}).scalar()
    return expires
