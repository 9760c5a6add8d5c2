"""The OpenAPI document of /api/v1: valid 3.1, complete against the routes, and its examples answer as documented.

The examples are sent to a live server over the shared work database. What they name by id is made
first (a task dispatched to demo_worker, a lead, a photo, a flagged person) and fills the path
parameters; everything else comes from the document itself. Every answer must carry a documented
status and a body that matches the documented schema, read strictly: a property the document does
not list fails the test (the contract itself stays open to additions).
"""

from __future__ import annotations

import io
import re
import secrets
import uuid

import pytest
import requests
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy import text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, WORKER
from api.openapi import ANONYMOUS, DEMO_GRID, DEMO_POINT
from app import create_app
from matching.identity import mask_id, mask_name, mask_phone
from tasks.evaluation import COLUMNS
from tests.browser import LiveServer
from tests.conftest import DEMO_PASSWORD, Clock
from tests.matching.feedfiles import valid_id

PREFIX = "/api/v1"
STAFF = (WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN)
METHODS = ("get", "put", "post", "delete", "patch")
URN = "urn:nanhai:openapi"


# -- reading the document ------------------------------------------------------------------------
def operations(document: dict):
    """(path, method, operation) of every operation, in document order."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def pointer(*parts) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(document: dict, node: dict) -> tuple[dict, str | None]:
    """(the object, its pointer) of a ``$ref``, or (``node``, None) when it is inline."""
    if "$ref" not in node:
        return node, None
    target = document
    for part in node["$ref"][2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target, node["$ref"]


def strict(node):
    """A copy in which every object schema with properties refuses properties it does not list."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    copy = {key: strict(value) for key, value in node.items()}
    if node.get("type") == "object" and node.get("properties"):
        copy.setdefault("additionalProperties", False)
    return copy


class Schemas:
    """JSON Schema validation at a pointer into the document, its ``$ref``s resolved by a registry."""

    def __init__(self, document: dict) -> None:
        self.registry = Registry().with_resource(URN, DRAFT202012.create_resource(strict(document)))

    def validate(self, instance, at: str) -> None:
        OAS31Validator({"$ref": URN + at}, registry=self.registry,
                       format_checker=oas31_format_checker).validate(instance)


# -- a live server, logged-in clients and the objects the examples name ---------------------------
class Client:
    """One logged-in ``requests.Session`` per role (with its CSRF token), or none for ``anonymous``."""

    def __init__(self, url: str) -> None:
        self.url = url + PREFIX
        self.sessions: dict[str, requests.Session] = {}

    def as_role(self, role: str) -> requests.Session:
        if role == ANONYMOUS:
            return requests.Session()
        if role not in self.sessions:
            session = requests.Session()
            login = session.post(self.url + "/session", json={"username": f"demo_{role}", "password": DEMO_PASSWORD},
                                 timeout=30)
            assert login.status_code == 201, login.text
            session.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            self.sessions[role] = session
        return self.sessions[role]

    def forget(self, role: str) -> None:
        self.sessions.pop(role, None)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app(work_engine):
    return create_app(work_engine, Clock())


@pytest.fixture(scope="module")
def client(app):
    with LiveServer(app.server) as live:
        yield Client(live.url)


@pytest.fixture(scope="module")
def document(client) -> dict:
    response = requests.get(client.url + "/openapi.json", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    return response.json()


@pytest.fixture(scope="module")
def schemas(document) -> Schemas:
    return Schemas(document)


def example(document: dict, path: str, method: str) -> dict:
    return document["paths"][path][method]["requestBody"]["content"]["application/json"]["example"]


@pytest.fixture(scope="module")
def person_key(work_engine, app):
    """A yellow-coded person flagged to the demo grid, with the sealed record that unmasking opens (removed after)."""
    vault = app.server.config["NANHAI_VAULT"]()
    id_number, name, phone = valid_id(secrets.randbelow(1000), born="19720815"), "李小红", "13912345678"
    key = vault.person_key(id_number)
    sealed = vault.key_and_seal([id_number], [name], [phone])[1][0]
    masked = {"key": key, "id": mask_id(id_number), "name": mask_name(name), "phone": mask_phone(phone)}
    with work_engine.begin() as conn:
        feed = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs) "
            "VALUES ('卫健', 'openapi-example.csv', :sha, 1, 1, 0, 'wgs84') RETURNING id"),
            {"sha": secrets.token_hex(32)}).scalar_one()
        conn.execute(text(
            "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, name_masked, "
            "phone_masked, category, reported_at) VALUES (:feed, 1, '卫健', :key, :sealed, :id, :name, :phone, "
            "'密切接触者', now())"), {**masked, "feed": feed, "sealed": sealed})
        conn.execute(text(
            "INSERT INTO persons (person_key, id_masked, name_masked, phone_masked, colour, reason, rule_id, sources, "
            "set_at, expires_at, method, confidence, geom, grid_id) SELECT :key, :id, :name, :phone, 'yellow', "
            "'密切接触者 / close contact', 'close_contact', '卫健', now(), now() + interval '14 days', 'point', 1.0, "
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), id FROM grids WHERE code = :grid"),
            {**masked, **DEMO_POINT, "grid": DEMO_GRID})
        conn.execute(text("INSERT INTO flags (person_key, colour, grid_id, flagged_at, updated_at) "
                          "SELECT person_key, colour, grid_id, now(), now() FROM persons WHERE person_key = :key"),
                     masked)
    yield key
    with work_engine.begin() as conn:
        conn.execute(text("DELETE FROM persons WHERE person_key = :key"), masked)  # its flag goes with it
        conn.execute(text("DELETE FROM feed_files WHERE id = :feed"), {"feed": feed})  # and its record


@pytest.fixture(scope="module")
def context(work_engine, client, document, person_key) -> dict:
    """The path parameters of the examples: a task dispatched to demo_worker, its photo, a lead, a person."""
    with work_engine.connect() as conn:
        worker_id = conn.execute(text("SELECT id FROM users WHERE username = 'demo_worker'")).scalar_one()
    supervisor, worker = client.as_role(SUPERVISOR), client.as_role(WORKER)
    task = supervisor.post(client.url + "/tasks", json={**example(document, "/tasks", "post"),
                                                        "assignee_id": worker_id}, timeout=30)
    assert task.status_code == 201, task.text
    transition = example(document, "/tasks/{task_id}/transitions", "post")
    assert (task.json()["status"], task.json()["version"]) == ("dispatched", transition["version"])
    photo = worker.post(f"{client.url}/tasks/{task.json()['id']}/photos",
                        files={"photo": ("visit.png", png(), "image/png")}, timeout=30)
    assert photo.status_code == 201, photo.text
    lead = supervisor.post(client.url + "/leads", json=example(document, "/leads", "post"), timeout=30)
    assert lead.status_code == 201 and lead.json()["placed"], lead.text
    return {"task_id": task.json()["id"], "photo_id": photo.json()["id"], "lead_id": lead.json()["id"],
            "key": person_key}


# -- sending an operation and checking its answer ------------------------------------------------
def query_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))  # style form, explode false
    return str(value)


def build(client: Client, document: dict, path: str, method: str, operation: dict, context: dict,
          accept: str = "application/json") -> requests.Request:
    """The operation's request from its examples: path and query parameters, then its JSON or a photo."""
    url, params = path, {}
    for param in (resolve(document, p)[0] for p in operation.get("parameters", ())):
        value = context.get(param["name"], param.get("example"))
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", str(value))
        elif param["in"] == "query" and value is not None:
            params[param["name"]] = query_value(value)
    body, extra = operation.get("requestBody", {}).get("content", {}), {}
    if "application/json" in body:
        extra["json"] = body["application/json"]["example"]
    elif "multipart/form-data" in body:
        extra["files"] = {"photo": ("visit.png", png(), "image/png")}
    return requests.Request(method.upper(), client.url + url, params=params, headers={"Accept": accept}, **extra)


def replayable(document: dict, operation: dict) -> bool:
    return any(resolve(document, p)[0]["name"] == "Idempotency-Key" for p in operation.get("parameters", ()))


def check_answer(document: dict, schemas: Schemas, path: str, method: str, operation: dict,
                 response: requests.Response) -> None:
    """The status is documented for the operation, and the body is what the document says for it."""
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method.upper()} {path}: undocumented {status} {response.text[:300]}")
    documented, at = resolve(document, operation["responses"][status])
    at = at or pointer("paths", path, method, "responses", status)
    content = documented.get("content")
    if not content:
        assert not response.content, f"{method.upper()} {path}: {status} should have no body"
        return
    mimetype = response.headers.get("Content-Type", "").split(";")[0]
    assert mimetype in content, f"{method.upper()} {path}: {status} answered {mimetype}, not {list(content)}"
    if mimetype == "application/json":
        schemas.validate(response.json(), at + "/content/application~1json/schema")


def send(session: requests.Session, request: requests.Request, key: str | None = None):
    prepared = session.prepare_request(request)
    if key:
        prepared.headers["Idempotency-Key"] = key
    return session.send(prepared, timeout=60), prepared


# -- the tests -----------------------------------------------------------------------------------
def test_the_served_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate_spec(document)
    assert document["servers"] == [{"url": PREFIX}]


def test_every_route_is_documented_and_nothing_else(app, document):
    routes, views = {}, app.server.view_functions
    for rule in app.server.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX):])
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes[path, method.lower()] = rule.endpoint
    documented = {(path, method): operation for path, method, operation in operations(document)}
    assert set(documented) == set(routes)
    for where, endpoint in routes.items():
        operation = documented[where]
        assert operation["operationId"] == endpoint.rsplit(".", 1)[-1]
        # the endpoints that store their answer under Idempotency-Key are exactly those that say so
        stores_answers = views[endpoint].__code__.co_qualname.startswith("mutation.")
        assert replayable(document, operation) == stores_answers, where
        roles = operation["x-roles"]
        assert roles and set(roles) <= {ANONYMOUS, *STAFF}, where
        assert ANONYMOUS in roles or "401" in operation["responses"], where


def test_examples_match_their_own_schemas(document, schemas):
    for path, method, operation in operations(document):
        for index, param in enumerate(operation.get("parameters", ())):
            param, at = resolve(document, param)
            at = at or pointer("paths", path, method, "parameters", index)
            schemas.validate(param["example"], at + "/schema")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schemas.validate(body["example"], pointer("paths", path, method, "requestBody", "content",
                                                      "application/json", "schema"))


def test_examples_answer_as_documented(client, document, schemas, context):
    for path, method, operation in operations(document):
        roles = operation["x-roles"]
        if ANONYMOUS not in roles:  # refusals first: a refused request changes nothing
            for role in (ANONYMOUS, *STAFF):
                if role not in roles:
                    response, _ = send(client.as_role(role), build(client, document, path, method, operation,
                                                                   context))
                    assert response.status_code == (401 if role == ANONYMOUS else 403), (path, method, role)
                    check_answer(document, schemas, path, method, operation, response)
        role = roles[0]  # the examples are written for the first role
        successes = [r for s, r in operation["responses"].items() if s.startswith("2")]
        accepts = sorted({m for r in successes for m in r.get("content", {})}) if method == "get" else []
        for accept in accepts or ["application/json"]:
            key = str(uuid.uuid4()) if replayable(document, operation) else None
            session = client.as_role(role)
            response, prepared = send(session, build(client, document, path, method, operation, context, accept),
                                      key)
            check_answer(document, schemas, path, method, operation, response)
            # 429: the public lead form may already be throttled for this client by other tests
            assert response.ok or response.status_code == 429, (path, method, role, response.text[:300])
            if key and response.ok:
                again = session.send(prepared, timeout=60)
                assert (again.status_code, again.json(), again.headers.get("Idempotent-Replayed")) == (
                    response.status_code, response.json(), "true"), (path, method)
        if (path, method) == ("/session", "delete"):
            client.forget(role)


def test_stats_csv_has_the_documented_columns(client, document):
    response = client.as_role(REPORTER).get(client.url + "/stats", params={"level": "town"},
                                            headers={"Accept": "text/csv"}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    comment, header, *rows = response.content.decode("utf-8").splitlines()
    assert comment.startswith("\ufeff# ") and rows
    documented = list(document["components"]["schemas"]["StatsRow"]["properties"])
    assert header.split(",") == documented == list(COLUMNS)
    csv_example = document["paths"]["/stats"]["get"]["responses"]["200"]["content"]["text/csv"]["example"]
    assert csv_example.splitlines()[1].split(",") == documented
