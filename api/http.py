"""The HTTP edge of /api/v1: read-only and state-changing endpoints, and idempotent retries.

Who is asking, CSRF and the Origin check are :mod:`web.session`'s; refusals become JSON through
:mod:`web.errors` (registered on the API's blueprint), so a view simply raises.

A mutating request may carry ``Idempotency-Key``: the first answer is stored in the same
transaction as the change, and a retry (even a concurrent one, which waits on the first) gets that
answer back and changes nothing. A key reused for a different request is refused.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, Literal, overload

from flask import Response, g, request
from sqlalchemy import Connection

from accounts.actor import Actor
from accounts.repository import SESSION_SELECT, actor_of, token_hash
from gis.db import changing, reading, run
from gis.errors import InvalidRequest
from web.context import client_tag, engine, now
from web.errors import to_json
from web.session import request_actor

IDEMPOTENCY_HEADER = "Idempotency-Key"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
View = Callable[..., Any]


# The session and the Idempotency-Key claim in one statement, one round trip fewer on every phone update. The
# scope is the one _idempotency_scope gives a logged-in user. Only a live session claims; a CSRF refusal after it
# rolls the claim back with the rest of the transaction.
SESSION_AND_CLAIM = f"""
WITH s AS ({SESSION_SELECT}),
claim AS (INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body)
          SELECT 'u:' || s.id, :k, :fp, 0, '' FROM s ON CONFLICT DO NOTHING RETURNING 1)
SELECT s.*, EXISTS (SELECT FROM claim) AS claimed FROM s
"""


def _claiming(key: str) -> Callable[[Connection, str], tuple[Actor, str] | None]:
    """A session look-up that also takes ``key`` for the session's user; ``g.claimed`` says whether it was free."""
    def lookup(conn: Connection, token: str) -> tuple[Actor, str] | None:
        row = run(conn, SESSION_AND_CLAIM, {"h": token_hash(token), "now": now(), "k": key,
                                            "fp": _request_hash()}).fetchone()
        if row is None:
            return None
        g.claimed = row.claimed
        return actor_of(row), row.csrf_token
    return lookup


@overload
def current_actor(conn: Connection, required: Literal[True] = True, claim: str | None = None) -> Actor: ...


@overload
def current_actor(conn: Connection, required: bool, claim: str | None = None) -> Actor | None: ...


def current_actor(conn: Connection, required: bool = True, claim: str | None = None) -> Actor | None:
    """The logged-in actor of this request (CSRF checked for changes), or 401 when ``required``.

    ``claim`` (only with ``required``): an Idempotency-Key to take for the actor in the same statement;
    ``g.claimed`` then says whether it was free (None: no key was tried).
    """
    if claim is not None and not required:
        raise ValueError("a key is claimed with the session only where a login is required")
    g.setdefault("claimed", None)
    return request_actor(conn, required, _claiming(claim) if claim is not None else None)


def body_json() -> dict[str, Any]:
    """The request's JSON object, or a clear 422."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequest("请求体必须是 JSON 对象（Content-Type: application/json）/ the body must be a JSON object")
    return data


def reader(view: View) -> View:
    """A read-only endpoint: one connection, the actor resolved (401 without a login)."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reading(engine()) as conn:
            return view(conn, current_actor(conn), *args, **kwargs)
    return wrapper


def _idempotency_scope(actor: Actor | None) -> str:
    return f"u:{actor.user_id}" if actor is not None and actor.user_id is not None else f"c:{client_tag()}"


def mutation(login: bool = True, personal: bool = False) -> Callable[[View], View]:
    """A state-changing endpoint in one transaction, replayable by Idempotency-Key.

    The view returns ``(status, body)``; errors roll everything back (the key
    too, so a retry of a refused request is judged afresh and still changes
    nothing it should not). A ``personal`` answer (personal data in clear) is
    never stored for a replay: its Idempotency-Key is checked and ignored, and a
    retry reads — and is audited — again.
    """
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if key is not None and not 1 <= len(key) <= 128:
                raise InvalidRequest(f"{IDEMPOTENCY_HEADER} 长度须为 1–128 / {IDEMPOTENCY_HEADER} must have 1 to "
                                     f"128 characters", IDEMPOTENCY_HEADER)
            if personal:
                key = None
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
                answer = to_json(body)  # once: the stored answer and the one sent are the same bytes
                if key is not None:
                    run(conn, "UPDATE idempotency_keys SET status_code = :s, body = :b WHERE scope = :scope "
                              "AND key = :k", {"s": status, "b": answer, "scope": _idempotency_scope(actor),
                                               "k": key})
            return Response(answer, status=status, mimetype="application/json")
        wrapper.replayable = not personal  # type: ignore[attr-defined]  # read by the OpenAPI document
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
    if stored is None:  # cannot be: a key that could not be taken is held by a committed row
        raise RuntimeError(f"{IDEMPOTENCY_HEADER} row missing after a refused claim")
    if stored.request_hash != _request_hash():
        raise InvalidRequest(f"同一 {IDEMPOTENCY_HEADER} 已用于另一请求，新请求请换一个新键 / this "
                             f"{IDEMPOTENCY_HEADER} was used for a different request: send a new request with a "
                             f"new key", IDEMPOTENCY_HEADER)
    response = Response(stored.body, status=stored.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response
