"""The HTTP edge of /api/v1: who is asking, CSRF, idempotent retries, and errors as JSON.

- A session is a random token in an HttpOnly, SameSite=Lax cookie; the server keeps its hash.
- Every state-changing request that rides on a session cookie must echo the session's CSRF token
  in ``X-CSRF-Token`` (and, when the browser sends ``Origin``, come from this site).
- A mutating request may carry ``Idempotency-Key``: the first answer is stored in the same
  transaction as the change, and a retry (even a concurrent one, which waits on the first) gets
  that answer back and changes nothing. A key reused for a different request is refused.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Response, current_app, g, request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from accounts.actor import Actor
from accounts.repository import SESSION_SELECT, actor_of, session_actor, token_hash
from gis.db import changing, reading, run
from gis.errors import (
    Conflict,
    DatabaseUnavailable,
    GridError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from matching.privacy import Vault

SESSION_COOKIE = "nanhai_session"
CSRF_HEADER = "X-CSRF-Token"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
STATUS = {InvalidRequest: 422, Unauthenticated: 401, PermissionDenied: 403, NotFound: 404, Conflict: 409,
          RateLimited: 429, DatabaseUnavailable: 503}


def now() -> datetime:
    """The app's clock (tests set ``NANHAI_CLOCK`` to control SLA time)."""
    return current_app.config.get("NANHAI_CLOCK", lambda: datetime.now(UTC))()


def engine() -> Engine:
    return current_app.config["NANHAI_ENGINE"]


def vault() -> Vault:
    return current_app.config["NANHAI_VAULT"]()


def client_tag() -> str:
    """A keyed hash of the client's address: enough to count and throttle, nothing to trace back."""
    return vault().tag("client", request.remote_addr or "unknown")


def _json(body) -> str:
    return json.dumps(body, ensure_ascii=False, default=str)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(_json(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def database_lost(exc: OperationalError) -> DatabaseUnavailable:
    """A connection dropped mid-request (the server restarted): the pool replaces it; this request fails cleanly."""
    return DatabaseUnavailable(f"数据库暂不可用，请稍后重试 / the database is unavailable, retry shortly "
                               f"({type(exc.orig).__name__})")


def error_response(exc: GridError) -> Response:
    """One JSON shape for every refusal: ``error`` (a code), ``message`` (Chinese / English), and details."""
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    body = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, InvalidRequest) and exc.field:
        body["field"] = exc.field
    if isinstance(exc, Conflict):
        body["error"] = exc.code
        if exc.current is not None:
            body["current"] = exc.current
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return json_response(body, status, headers)


# The session and the Idempotency-Key claim in one statement, one round trip fewer on every phone update. The
# scope is the one _idempotency_scope gives a logged-in user. Only a live session claims; a CSRF refusal after it
# rolls the claim back with the rest of the transaction.
SESSION_AND_CLAIM = f"""
WITH s AS ({SESSION_SELECT}),
claim AS (INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body)
          SELECT 'u:' || s.id, :k, :fp, 0, '' FROM s ON CONFLICT DO NOTHING RETURNING 1)
SELECT s.*, EXISTS (SELECT FROM claim) AS claimed FROM s
"""


def _session(conn: Connection, claim: str | None) -> tuple[Actor, str, bool | None] | None:
    """(actor, CSRF token, whether ``claim``, an Idempotency-Key, was taken for him: None when none was tried)
    of the cookie's session."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if claim is None:
        found = session_actor(conn, token, now())
        return None if found is None else (*found, None)
    row = run(conn, SESSION_AND_CLAIM, {"h": token_hash(token), "now": now(), "k": claim,
                                        "fp": _request_hash()}).fetchone()
    return None if row is None else (actor_of(row), row.csrf_token, row.claimed)


def _check_csrf(csrf: str) -> None:
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise PermissionDenied("跨站请求被拒绝 / cross-site request refused (Origin does not match)")
    if request.headers.get(CSRF_HEADER) != csrf:
        raise PermissionDenied(f"缺少或错误的 {CSRF_HEADER}（请先 GET /api/v1/session 获取）/ missing or wrong "
                               f"{CSRF_HEADER}: read it from GET /api/v1/session")


def current_actor(conn: Connection, required: bool = True, claim: str | None = None) -> Actor | None:
    """The logged-in actor of this request (CSRF checked for changes), or 401 when ``required``.

    ``claim`` (only with ``required``): an Idempotency-Key to take for the actor in the same statement;
    ``g.claimed`` then says whether it was free (None: no key was tried).
    """
    if claim is not None and not required:
        raise ValueError("a key is claimed with the session only where a login is required")
    if "actor" not in g:
        found = _session(conn, claim)
        g.actor, g.claimed = None, None
        if found is not None:
            try:
                _check_csrf(found[1])
                g.actor, g.csrf, g.claimed = found
            except PermissionDenied:
                if required:
                    raise  # an open endpoint treats a cookie without its CSRF token as no login at all
    if g.actor is None and required:
        raise Unauthenticated("请先登录 / please log in")
    return g.actor


def body_json() -> dict:
    """The request's JSON object, or a clear 422."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequest("请求体必须是 JSON 对象（Content-Type: application/json）/ the body must be a JSON object")
    return data


def reader(view: Callable) -> Callable:
    """A read-only endpoint: one connection, the actor resolved (401 without a login)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            with reading(engine()) as conn:
                return view(conn, current_actor(conn), *args, **kwargs)
        except GridError as exc:
            return error_response(exc)
        except OperationalError as exc:
            return error_response(database_lost(exc))
    return wrapper


def _idempotency_scope(actor: Actor | None) -> str:
    return f"u:{actor.user_id}" if actor is not None and actor.user_id is not None else f"c:{client_tag()}"


def mutation(login: bool = True) -> Callable:
    """A state-changing endpoint in one transaction, replayable by Idempotency-Key.

    The view returns ``(status, body)``; errors roll everything back (the key
    too, so a retry of a refused request is judged afresh and still changes
    nothing it should not).
    """
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get(IDEMPOTENCY_HEADER)
            try:
                if key is not None and not 1 <= len(key) <= 128:
                    raise InvalidRequest(f"{IDEMPOTENCY_HEADER} 长度须为 1–128 / {IDEMPOTENCY_HEADER} must have 1 to "
                                         f"128 characters", IDEMPOTENCY_HEADER)
                with changing(engine()) as conn:
                    actor = current_actor(conn, required=login, claim=key if login else None)
                    claimed = g.get("claimed")
                    if key is not None and not claimed:
                        scope = _idempotency_scope(actor)
                        # taken by an earlier request (the session's statement tried): its answer, no second try
                        replay = _claim(conn, scope, key) if claimed is None else _stored_answer(conn, scope, key)
                        if replay is not None:
                            return replay
                    status, body = view(conn, actor, *args, **kwargs)
                    answer = _json(body)  # once: the stored answer and the one sent are the same bytes
                    if key is not None:
                        run(conn, "UPDATE idempotency_keys SET status_code = :s, body = :b WHERE scope = :scope "
                                  "AND key = :k", {"s": status, "b": answer, "scope": _idempotency_scope(actor),
                                                   "k": key})
                return Response(answer, status=status, mimetype="application/json")
            except GridError as exc:
                return error_response(exc)
            except OperationalError as exc:
                return error_response(database_lost(exc))
        return wrapper
    return decorate


def _request_hash() -> str:
    """What makes two requests the same: method, path and body; for uploads the fields and file bytes
    (a client library picks a new multipart boundary on every retry). Computed once per request."""
    if "fingerprint" in g:
        return g.fingerprint
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    # asking a JSON request for its form parses the body a second time: only forms are read as forms
    if request.mimetype in FORM_TYPES and (request.files or request.form):
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"{name}={value}\n".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            digest.update(f"{name}:".encode())
            digest.update(upload.stream.read())
            upload.stream.seek(0)
    else:
        digest.update(request.get_data(cache=True))
    g.fingerprint = digest.hexdigest()
    return g.fingerprint


def _claim(conn: Connection, scope: str, key: str) -> Response | None:
    """Take the key for this request, or return the stored answer of the request that took it first.

    INSERT … ON CONFLICT waits for a concurrent holder of the same key to
    commit or roll back, so two simultaneous retries cannot both act.
    """
    taken = run(conn, "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body) "
                      "VALUES (:scope, :k, :h, 0, '') ON CONFLICT DO NOTHING RETURNING 1",
                {"scope": scope, "k": key, "h": _request_hash()}).fetchone()
    return None if taken else _stored_answer(conn, scope, key)


def _stored_answer(conn: Connection, scope: str, key: str) -> Response:
    """The answer stored under a key already taken (by a committed request: taking it waited for that one),
    or a clear refusal when the key was taken for a different request."""
    stored = run(conn, "SELECT request_hash, status_code, body FROM idempotency_keys WHERE scope = :scope AND key = :k",
                 {"scope": scope, "k": key}).fetchone()
    if stored.request_hash != _request_hash():
        raise InvalidRequest(f"同一 {IDEMPOTENCY_HEADER} 已用于另一请求，新请求请换一个新键 / this "
                             f"{IDEMPOTENCY_HEADER} was used for a different request: send a new request with a "
                             f"new key", IDEMPOTENCY_HEADER)
    response = Response(stored.body, status=stored.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response
