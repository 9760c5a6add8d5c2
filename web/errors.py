"""One mapping of the platform's errors to what a web user gets: a status and a JSON body, or a message.

:class:`gis.errors.GridError` and its subclasses are the refusals a user can cause; a connection
lost mid-request (the database restarted) becomes :class:`gis.errors.DatabaseUnavailable`. The JSON
API answers them through :func:`register` (Flask error handlers), a Dash callback through
:func:`refusals_shown`; neither catches them by hand.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response
from sqlalchemy.exc import OperationalError

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
from web.language import one_side, reply_language

STATUS: dict[type[GridError], int] = {
    InvalidRequest: 422, Unauthenticated: 401, PermissionDenied: 403, NotFound: 404, Conflict: 409,
    RateLimited: 429, DatabaseUnavailable: 503}
F = TypeVar("F", bound=Callable[..., Any])
DATABASE_RETRY_SECONDS = 2  # a restart takes seconds; clients that back off on their own spread out anyway


def status_of(exc: GridError) -> int:
    """The HTTP status of a refusal (400 for an error of no more specific kind)."""
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)


def database_lost(exc: OperationalError) -> DatabaseUnavailable:
    """A connection dropped mid-request (the server restarted): the pool replaces it; this request fails cleanly."""
    return DatabaseUnavailable(f"数据库暂不可用，请稍后重试 / the database is unavailable, retry shortly "
                               f"({type(exc.orig).__name__})")


def as_refusal(exc: Exception) -> GridError:
    """``exc`` as the refusal a user sees: itself when a GridError, DatabaseUnavailable for a lost connection."""
    if isinstance(exc, GridError):
        return exc
    if isinstance(exc, OperationalError):
        return database_lost(exc)
    raise TypeError(f"not a refusal: {type(exc).__name__}")


def to_json(body: Any) -> str:
    """``body`` as JSON text: Chinese as is, dates as ISO strings (the one writer of the API's answers)."""
    return json.dumps(body, ensure_ascii=False, default=str)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as a JSON response (see :func:`to_json`)."""
    response = Response(to_json(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_body(exc: GridError, lang: str | None = None) -> dict[str, Any]:
    """One JSON shape for every refusal: ``error`` (a code), ``message`` (in ``lang``, by default the language
    the request asks for: see :func:`web.language.reply_language`), and details: ``field`` for a bad field (422),
    ``current`` for a conflict (409)."""
    body: dict[str, Any] = {"error": type(exc).__name__, "message": one_side(str(exc), lang or reply_language())}
    if isinstance(exc, InvalidRequest) and exc.field:
        body["field"] = exc.field
    if isinstance(exc, Conflict):
        body["error"] = exc.code
        if exc.current is not None:
            body["current"] = exc.current
    return body


def error_response(exc: Exception) -> Response:
    """The JSON answer to a refusal (``Retry-After`` when rate limited), its message in the language asked for
    (``Content-Language`` says which)."""
    refusal = as_refusal(exc)
    lang = reply_language()
    return json_response(error_body(refusal, lang), status_of(refusal),
                         {**(retry_headers(refusal) or {}), "Content-Language": lang})


def retry_headers(refusal: GridError) -> dict[str, str] | None:
    """``Retry-After`` for a refusal that passes by itself: rate limited (its wait), the database away (a few
    seconds: a restart)."""
    if isinstance(refusal, RateLimited):
        return {"Retry-After": str(refusal.retry_after)}
    if isinstance(refusal, DatabaseUnavailable):
        return {"Retry-After": str(DATABASE_RETRY_SECONDS)}
    return None


def register(blueprint: Blueprint) -> None:
    """Answer every refusal raised in ``blueprint``'s views as JSON (the error handler of the API)."""
    blueprint.register_error_handler(GridError, error_response)
    blueprint.register_error_handler(OperationalError, error_response)


def refusals_shown(show: Callable[[GridError], Any]) -> Callable[[F], F]:
    """Decorate a Dash callback: a refusal raised inside it (or a lost database) returns ``show(refusal)`` as the
    callback's output, instead of failing the callback with a 500 that the page would never explain."""
    def decorate(callback: F) -> F:
        @functools.wraps(callback)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except (GridError, OperationalError) as exc:
                return show(as_refusal(exc))
        return wrapper  # type: ignore[return-value]
    return decorate
