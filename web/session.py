"""The web session: one cookie, one CSRF token, one Origin check, and the actor behind a request.

- A session is a random token in an HttpOnly, SameSite=Lax cookie; the server keeps its hash
  (:mod:`accounts.repository`), with the session's CSRF token.
- A state-changing request that rides on the cookie must echo the CSRF token in ``X-CSRF-Token``
  (the JSON API) and, when the browser names its ``Origin``, come from this site (every POST: the
  API, Dash callbacks, the plain pages' forms).
- The JSON API, the Dash pages and the plain pages all ask here who is acting; none of them reads
  the cookie itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

from flask import g, request
from sqlalchemy import Connection, Engine
from werkzeug.wrappers import Response

from accounts.activation import activate
from accounts.actor import Actor
from accounts.repository import check_login, close_session, open_session, record_read, session_actor
from gis.db import reading
from gis.errors import InvalidRequest, PermissionDenied, Unauthenticated
from web.context import client_tag, engine, now, vault

SESSION_COOKIE = "nanhai_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
R = TypeVar("R", bound=Response)  # Flask's response or a redirect, as werkzeug types it

# (actor, CSRF token) of a session token, or None; the JSON API passes one that also claims an Idempotency-Key
SessionLookup = Callable[[Connection, str], "tuple[Actor, str] | None"]


def session_token() -> str | None:
    """The session token the browser sent, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def same_origin() -> bool:
    """Whether the request comes from this site: true when the browser names no ``Origin`` (not a browser, or
    a same-origin GET), else when that origin's host is this server's."""
    origin = request.headers.get("Origin")
    return not origin or urlsplit(origin).netloc == request.host


def check_csrf(csrf: str) -> None:
    """Refuse a state-changing request from another site, or one without the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    if not same_origin():
        raise PermissionDenied("跨站请求被拒绝 / cross-site request refused (Origin does not match)")
    if request.headers.get(CSRF_HEADER) != csrf:
        raise PermissionDenied(f"缺少或错误的 {CSRF_HEADER}（请先 GET /api/v1/session 获取）/ missing or wrong "
                               f"{CSRF_HEADER}: read it from GET /api/v1/session")


def _stored_session(conn: Connection, token: str) -> tuple[Actor, str] | None:
    return session_actor(conn, token, now())


def request_actor(conn: Connection, required: bool = True, lookup: SessionLookup | None = None) -> Actor | None:
    """The logged-in actor of this request (CSRF and Origin checked for changes), or 401 when ``required``.

    Resolved once per request (kept in ``flask.g``, with the session's CSRF token as ``g.csrf``). An
    open endpoint (``required`` false) treats a cookie without its CSRF token as no login at all.
    """
    if "actor" not in g:
        g.actor, g.csrf = None, None
        token = session_token()
        found = None if token is None else (lookup or _stored_session)(conn, token)
        if found is not None:
            try:
                check_csrf(found[1])
                g.actor, g.csrf = found
            except PermissionDenied:
                if required:
                    raise
    if g.actor is None and required:
        raise Unauthenticated("请先登录 / please log in")
    actor: Actor | None = g.actor
    return actor


def page_actor(db: Engine, moment: datetime | None = None, roles: tuple[str, ...] = ()) -> Actor | None:
    """The actor of a page or Dash callback request if his role is one of ``roles`` (any role when empty), else
    None. A Dash callback is a POST from the page itself: one naming a foreign ``Origin`` counts as no login."""
    token = session_token()
    if token is None or (request.method == "POST" and not same_origin()):
        return None
    with reading(db) as conn:
        found = session_actor(conn, token, moment or now())
    if found is None or (roles and found[0].role not in roles):
        return None
    return found[0]


def log_in(username: str, password: str) -> tuple[str, Actor, str, datetime]:
    """Check a login (throttled per account and client); returns (cookie token, actor, CSRF token, expiry)."""
    if not username or not password:
        raise InvalidRequest("请输入用户名和密码 / username and password are required", "username")
    moment = now()
    with engine().begin() as conn:  # committed even when the password is wrong: the failure must count
        actor = check_login(conn, username, password, client_tag(), moment)
        if actor is not None and actor.user_id is not None:  # a login is always a stored user
            token, csrf, expires = open_session(conn, actor.user_id, moment)
            record_read(conn, actor, "login", actor.username, "登录 / logged in", client_tag())
    if actor is None:
        raise Unauthenticated("用户名或密码错误 / wrong username or password")
    return token, actor, csrf, expires


def activate_account(username: str, code: str, password: str) -> tuple[str, Actor, str, datetime]:
    """Set a new account's first password with its one-time code (throttled with the logins) and log him in;
    returns (cookie token, actor, CSRF token, expiry)."""
    if not username or not code or not password:
        raise InvalidRequest("请输入用户名、激活码和新密码 / username, activation code and new password are required",
                             "username" if not username else "code" if not code else "password")
    moment = now()
    with engine().begin() as conn:  # committed even when the code is wrong: the failure must count
        actor = activate(conn, username, code, password, client_tag(), vault(), moment)
        if actor is not None and actor.user_id is not None:
            token, csrf, expires = open_session(conn, actor.user_id, moment)
            record_read(conn, actor, "login", actor.username, "激活后登录 / logged in on activation", client_tag())
    if actor is None:
        raise Unauthenticated("用户名或激活码错误（激活码只能用一次）/ wrong username or activation code (a code works "
                              "once)")
    return token, actor, csrf, expires


def end_session(conn: Connection) -> None:
    """Close the session of this request's cookie (nothing when there is none)."""
    token = session_token()
    if token is not None:
        close_session(conn, token)


def set_session_cookie(response: R, token: str, expires: datetime) -> R:
    """``response`` carrying the session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS)."""
    response.set_cookie(SESSION_COOKIE, token, expires=expires, httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/")
    return response


def clear_session_cookie(response: R) -> R:
    """``response`` telling the browser to forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
