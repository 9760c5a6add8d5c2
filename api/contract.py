"""The typed edge of /api/v1: each route declares its operation, and its body and query arrive as models.

:func:`documented` attaches an :class:`Operation` to a view (roles, summary, the models of its body,
query and answers, the refusals it can give) and, before the view runs, validates the request into
those models: the view gets ``body=`` and ``query=`` already typed. A validation error becomes
:class:`gis.errors.InvalidRequest` naming the field (``location.lon``), with a Chinese / English
message, so the API answers it as every other 422. :mod:`api.openapi` reads the same declarations to
write the OpenAPI document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from api.http import body_json
from gis.errors import InvalidRequest

ANONYMOUS = "anonymous"
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PathParam:
    """A path parameter: its JSON Schema, description and example (the route's converter names it)."""

    name: str
    schema: dict[str, Any]
    description: str
    example: Any


@dataclass(frozen=True)
class Reply:
    """One successful answer: a description and the model of its JSON body (none: no body), or raw ``content``."""

    description: str
    model: type[BaseModel] | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    content: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one route, and what the edge validates for it.

    ``roles`` lists who may call it, the one its examples are written for first (``anonymous``: no
    login). ``errors`` are the refusals of the operation itself; a login adds 401, a change behind a
    login 403, a body or query 422 (:mod:`api.openapi`).
    """

    tag: str
    summary: str
    roles: tuple[str, ...]
    ok: Mapping[int, Reply]
    description: str = ""
    body: type[BaseModel] | None = None
    example: Mapping[str, Any] | None = None
    body_note: str = ""
    upload: Mapping[str, Any] | None = None  # a multipart body, described as it is
    query: type[BaseModel] | None = None
    path: tuple[PathParam, ...] = ()
    errors: tuple[int, ...] = ()


def field_name(error: ErrorDetails) -> str:
    """The field an error is about, as a client names it: ``location.lon``, ``status`` (list positions left out)."""
    return ".".join(str(part) for part in error["loc"] if isinstance(part, str)) or "body"


def _message(name: str, error: ErrorDetails) -> str:
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return f"缺少 {name} / {name} is required"
    if kind in ("string_type", "string_sub_type"):
        return f"{name} 必须是文字 / {name} must be a string"
    if kind == "string_too_long":
        limit = context.get("max_length")
        return f"{name} 过长（最多 {limit} 字）/ {name} is longer than {limit} characters"
    if kind == "string_too_short":
        limit = context.get("min_length")
        return f"{name} 过短（至少 {limit} 字）/ {name} is shorter than {limit} characters"
    if kind == "string_pattern_mismatch":
        return f"{name} 格式不符（{context.get('pattern')}）/ {name} does not match {context.get('pattern')}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{name} 须为 true 或 false / {name} must be true or false"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{name} 必须是整数 / {name} must be an integer"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"{name} 必须是数字 / {name} must be a number"
    if kind in ("greater_than_equal", "greater_than"):
        bound = context.get("ge", context.get("gt"))
        return f"{name} 不得小于 {bound} / {name} must be at least {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = context.get("le", context.get("lt"))
        return f"{name} 不得大于 {bound} / {name} must be at most {bound}"
    if kind == "enum":
        expected = context.get("expected")
        return f"{name} 须为 {expected} 之一 / {name} must be one of {expected}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{name} 须为 JSON 对象 / {name} must be an object"
    if kind == "list_type":
        return f"{name} 须为数组 / {name} must be an array"
    return f"{name} 无效 / {name} is invalid: {error['msg']}"


def refusal(exc: ValidationError) -> InvalidRequest:
    """The first problem of a validation error as the API's 422: the field and a Chinese / English message."""
    first = exc.errors(include_url=False)[0]
    name = field_name(first)
    return InvalidRequest(_message(name, first), name)


def validated(model: type[M], data: object) -> M:
    """``data`` as ``model``, or :class:`InvalidRequest` naming the first field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc) from None


def documented(operation: Operation) -> Callable[[F], F]:
    """Declare ``operation`` for a view; its body and query are validated into models and passed as ``body=`` and
    ``query=``. Put it below :func:`api.http.mutation` and :func:`api.http.reader`, so that a refused request
    is refused inside the transaction (and its Idempotency-Key judged afresh on a retry)."""
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if operation.query is not None:
                kwargs["query"] = validated(operation.query, request.args.to_dict())
            if operation.body is not None:
                kwargs["body"] = validated(operation.body, body_json())
            return view(*args, **kwargs)
        wrapper.operation = operation  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]
    return decorate


def operation_of(view: Callable[..., Any]) -> Operation | None:
    """The operation declared for a view (through the wrappers that copied its attributes), if any."""
    found = getattr(view, "operation", None)
    return found if isinstance(found, Operation) else None
