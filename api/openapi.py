"""The OpenAPI 3.1 document of /api/v1, generated from the routes and their models; served at /api/v1/openapi.json.

Every operation comes from a route of the app and the :class:`api.contract.Operation` it declares;
every schema from the pydantic models of :mod:`api.models` (``model_json_schema``). A small
generator of our own rather than spectree or flask-openapi3: those bring their own request parsing
and error bodies, while this API keeps its JSON errors, its ``x-roles`` per operation, its
Idempotency-Key replay (declared by :func:`api.http.mutation`) and its bilingual texts, and needs
nothing from them but what ``model_json_schema`` already gives. ``tests/api/openapi.json`` is the
committed snapshot the generated document is compared with, so that a change of the contract is
seen in review; ``python -m api.openapi`` writes it anew.

Conventions of the document:

- ``x-roles`` lists the roles that may call an operation, the one its examples are written for
  first; ``anonymous`` means that no login is needed.
- The examples use the reference district and the demo accounts (``gridctl users demo``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from flask import Blueprint, Flask, Response, current_app
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from accounts.actor import ROLE_NAMES
from api import models as m
from api.contract import ANONYMOUS, Operation, Reply, documented, operation_of
from api.http import IDEMPOTENCY_HEADER
from api.routes import DEMO_COMMUNITY, DEMO_GRID, TAGS
from web.errors import json_response
from web.session import CSRF_HEADER, SESSION_COOKIE

openapi = Blueprint("openapi", __name__)
PREFIX = "/api/v1"
METHODS = ("get", "post", "put", "patch", "delete")
SCHEMAS = "#/components/schemas/{model}"

ERRORS = {
    401: ("Unauthenticated", "未登录或会话已过期 / no login, or the session expired"),
    403: ("Forbidden", f"角色或数据范围不允许，或缺少/错误的 {CSRF_HEADER} / the role or data scope does not "
                       f"allow it, or {CSRF_HEADER} is missing"),
    404: ("NotFound", "不存在或不在您的数据范围内（两者不作区分）/ no such object in your scope"),
    409: ("Conflict", "与对象当前状态冲突：error 为冲突代码，current（如有）为当前对象 / conflicts with the "
                      "object's state; current shows it"),
    422: ("Invalid", f"字段缺失或错误（field 指出字段），或 {IDEMPOTENCY_HEADER} 无效或已用于另一请求 / a field "
                     f"is missing or wrong, or the {IDEMPOTENCY_HEADER} is invalid or reused"),
    429: ("RateLimited", "过于频繁，请按 Retry-After 秒后再试 / too many attempts; retry after Retry-After seconds"),
}

INTRO = f"""南海区网格指挥平台的 JSON API / the JSON API of the Nanhai grid command platform.

- **登录 / login**：`POST /session` 设置 HttpOnly Cookie `{SESSION_COOKIE}` 并返回 `csrf_token`；
  之后每个 POST/DELETE 须带 `{CSRF_HEADER}`（若发送 Origin，须为本站）。
- **重试 / retries**：变更请求可带 `{IDEMPOTENCY_HEADER}`（1–128 字符）；同一键的重试返回第一次的应答
  （`Idempotent-Replayed: true`）且不重复执行；同一键用于不同请求返回 422。
- **错误 / errors**：一律为 `Error`：`error` 代码、`message`、`field`（422）、`current`（409）。
- **语言 / language**：`message` 按 `Accept-Language` 选择中文（默认）或英文（`en`），`Content-Language` 注明。
- **数据范围 / scope**：网格员限本人网格，网格长限本村居，指挥中心与管理员全区；统计员只读汇总。
  范围外的对象与不存在的对象一样返回 404。
- **x-roles**：可调用的角色，示例按第一个角色编写；`anonymous` 表示无需登录。
  示例基于参考区与演示账号（demo_worker 负责网格 {DEMO_GRID}，demo_supervisor 负责村居 {DEMO_COMMUNITY}）。
"""


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema without the titles it makes up from field names (the descriptions say more)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


# -- the routes and what they declare ---------------------------------------------------------------------------
Route = tuple[str, str, str, Operation, bool]
Mode = Literal["validation", "serialization"]


def routes(app: Flask) -> Iterator[Route]:
    """(document path, method, operation id, operation, replayable) of every route under /api/v1, in the order
    the routes were registered; a route under /api/v1 that declares nothing is an error."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint == "api_v1.no_such_endpoint":
            continue
        view = app.view_functions[rule.endpoint]
        operation = operation_of(view)
        if operation is None:
            raise LookupError(f"{rule.rule} declares no operation (api.contract.documented)")
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX):])
        declared = {param.name for param in operation.path}
        if declared != set(rule.arguments):
            raise LookupError(f"{rule.rule}: path parameters {sorted(rule.arguments)}, declared {sorted(declared)}")
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        for method in sorted(methods, key=lambda name: METHODS.index(name.lower())):
            yield (path, method.lower(), rule.endpoint.rsplit(".", 1)[-1], operation,
                   bool(getattr(view, "replayable", False)))


def _models(found: Iterable[Route]) -> list[tuple[type[BaseModel], Mode]]:
    """Every model the operations name, each once, requests in validation mode and answers in serialisation mode."""
    wanted: dict[type[BaseModel], Mode] = {m.Error: "serialization"}
    for *_where, operation, _replayable in found:
        if operation.body is not None:
            wanted.setdefault(operation.body, "validation")
        for reply in operation.ok.values():
            if reply.model is not None:
                wanted.setdefault(reply.model, "serialization")
    return list(wanted.items())


# -- parameters, bodies, answers --------------------------------------------------------------------------------
def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A query field's schema as a parameter's: without its null branch (an absent parameter is the null), its
    description and examples moved to the parameter."""
    branches = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(branches) == 1:
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}
    return {k: v for k, v in schema.items()
            if k not in ("description", "examples") and not (k == "default" and v is None)}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(schema_generator=_Schemas, ref_template=SCHEMAS)
    required = set(schema.get("required", ()))
    params = []
    for name, field in schema["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "description": field.get("description", ""), "schema": _plain(field)}
        if field.get("examples"):
            param["example"] = field["examples"][0]
        if param["schema"].get("type") == "array":
            param.update(style="form", explode=False)
        params.append(param)
    return params


def _parameters(operation: Operation, replayable: bool) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": p.name, "in": "path", "required": True, "description": p.description, "schema": p.schema,
         "example": p.example} for p in operation.path]
    if operation.query is not None:
        params += _query_parameters(operation.query)
    if replayable:
        params.append(ref("IdempotencyKey", "parameters"))
    return params


def _request_body(operation: Operation) -> dict[str, Any] | None:
    if operation.upload is not None:
        return dict(operation.upload)
    if operation.body is None:
        return None
    body: dict[str, Any] = {"required": True, "content": {"application/json": {
        "schema": ref(operation.body.__name__), "example": dict(operation.example or {})}}}
    if operation.body_note:
        body["description"] = operation.body_note
    return body


def _answer(reply: Reply, replayable: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": reply.description}
    content = {**({"application/json": {"schema": ref(reply.model.__name__)}} if reply.model else {}),
               **reply.content}
    if content:
        answer["content"] = content
    headers = {**reply.headers, **({"Idempotent-Replayed": ref("IdempotentReplayed", "headers")} if replayable
                                   else {})}
    if headers:
        answer["headers"] = headers
    return answer


def _security(roles: tuple[str, ...], changes: bool) -> list[dict[str, list[str]]]:
    login: dict[str, list[str]] = {"session": [], "csrf": []} if changes else {"session": []}
    if ANONYMOUS not in roles:
        return [login]
    return [] if list(roles) == [ANONYMOUS] else [{}, login]


def _role_names(roles: Iterable[str]) -> str:
    return "、".join(f"{ROLE_NAMES.get(r, '匿名')} {r}" for r in roles)


def operation_object(name: str, method: str, operation: Operation, replayable: bool) -> dict[str, Any]:
    """One operation with the statuses that really occur: its own refusals; a login adds 401, a change behind a
    login 403 (CSRF), a body, a query or an Idempotency-Key 422."""
    login, changes = ANONYMOUS not in operation.roles, method != "get"
    statuses = set(operation.errors) | ({401} if login else set())
    if changes and login:
        statuses.add(403)
    if replayable or operation.body is not None or operation.query is not None:
        statuses.add(422)
    result: dict[str, Any] = {
        "operationId": name, "tags": [operation.tag], "summary": operation.summary,
        "description": (operation.description + "\n\n" if operation.description else "")
        + f"角色 / roles: {_role_names(operation.roles)}",
        "x-roles": list(operation.roles), "security": _security(operation.roles, changes),
        "responses": {**{str(s): _answer(r, replayable) for s, r in operation.ok.items()},
                      **{str(s): ref(ERRORS[s][0], "responses") for s in sorted(statuses)}}}
    parameters = _parameters(operation, replayable)
    if parameters:
        result["parameters"] = parameters
    body = _request_body(operation)
    if body is not None:
        result["requestBody"] = body
    return result


def _components(found: list[Route]) -> dict[str, Any]:
    _keys, generated = models_json_schema(_models(found), ref_template=SCHEMAS, schema_generator=_Schemas)
    schemas = {name: {k: v for k, v in schema.items() if k != "title"}
               for name, schema in generated.get("$defs", {}).items()}
    schemas["OpenApiDocument"] = {"type": "object", "description": "本文档 / this document",
                                  "required": ["openapi", "info", "paths"]}
    responses = {name: {"description": words, "content": {"application/json": {"schema": ref("Error")}}}
                 for name, words in ERRORS.values()}
    responses["RateLimited"]["headers"] = {"Retry-After": {"description": "秒 / seconds",
                                                           "schema": {"type": "integer", "minimum": 1}}}
    return {
        "schemas": dict(sorted(schemas.items())),
        "responses": responses,
        "parameters": {"IdempotencyKey": {
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "重试键：同一键的重试返回第一次的应答且不重复执行 / a retry with the same key gets the "
                           "first answer and changes nothing",
            "schema": {"type": "string", "minLength": 1, "maxLength": 128},
            "example": "7c1d3e52-8f4a-4b8e-9d2a-6a0f5e3b9c41"}},
        "headers": {"IdempotentReplayed": {"description": "重放的应答 / a stored answer replayed",
                                           "schema": {"type": "string", "enum": ["true"]}}},
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                        "description": "POST /session 设置 / set by POST /session"},
            "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
                     "description": "会话的 csrf_token，变更请求必带 / the session's csrf_token, on every change"},
        },
    }


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s /api/v1 routes."""
    found = list(routes(app))
    paths: dict[str, dict[str, Any]] = {}
    for path, method, name, operation, replayable in found:
        paths.setdefault(path, {})[method] = operation_object(name, method, operation, replayable)
    return {
        "openapi": "3.1.0",
        "info": {"title": "南海区网格指挥平台 API", "version": "1", "description": INTRO},
        "servers": [{"url": PREFIX}],
        "security": [{"session": []}],
        "tags": [{"name": name} for name in TAGS.values()],
        "paths": paths,
        "components": _components(found),
    }


def serialised(app: Flask) -> str:
    """The document as the snapshot keeps it: indented, keys in the generator's order, Chinese as is."""
    return json.dumps(document(app), ensure_ascii=False, indent=1) + "\n"


@openapi.get("/api/v1/openapi.json")
@documented(Operation(TAGS["operations"], "本文档 / this document", (ANONYMOUS,),
                      {200: Reply("OpenAPI 3.1", content={"application/json": {"schema": ref("OpenApiDocument")}})}))
def openapi_json() -> Response:
    cache = current_app.extensions.setdefault("nanhai_openapi", {})
    if "document" not in cache:  # the routes do not change once the app serves
        cache["document"] = document(current_app)
    return json_response(cache["document"])


def standalone_app() -> Flask:
    """A bare app with the API's routes, enough to write the document (no database is touched)."""
    from api import register_api

    app = Flask("nanhai_openapi")
    register_api(app)
    return app


if __name__ == "__main__":  # python -m api.openapi > tests/api/openapi.json
    sys.stdout.write(serialised(standalone_app()))
