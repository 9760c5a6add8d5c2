"""The OpenAPI document of /api/v1: valid 3.1, complete against the routes, and its examples answer as documented.

The examples are sent to a live server over the shared work database. What they name by id is made
first (a task dispatched to demo_worker, a lead, a photo, a flagged person) and fills the path
parameters; everything else comes from the document itself. Every answer must carry a documented
status and a body that matches the documented schema, read strictly: a property the document does
not list fails the test (the contract itself stays open to additions).
"""

from __future__ import annotations

import io
import json
import pathlib
import re
import secrets
import uuid

import pytest
import requests
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from openapi_spec_validator import validate as validate_spec
from PIL import Image
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy import text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, WORKER
from api.contract import ANONYMOUS
from api.openapi import serialised, standalone_app
from api.routes import DEMO_GRID, DEMO_POINT
from evaluation.indicators import COLUMNS
from matching.identity import mask_id, mask_name, mask_phone
from tests.api.client import ApiClient
from tests.conftest import DEMO_PASSWORD
from tests.matching.feedfiles import valid_id

PREFIX = "/api/v1"
STAFF = (WORKER, SUPERVISOR, COMMANDER, REPORTER, ADMIN)
METHODS = ("get", "put", "post", "delete", "patch")
URN = "urn:nanhai:openapi"
# The one example not sent as written: the demo password of `make run` is not the test suite's.
BODY_OVERRIDES = {("/session", "post"): {"password": DEMO_PASSWORD}}


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


# -- the live server (tests/api/conftest.py) and the objects the examples name -------------------
def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app(live):
    return live.server.app  # the Flask server of the app under test


@pytest.fixture(scope="module")
def document(live) -> dict:
    response = requests.get(live.url + PREFIX + "/openapi.json", timeout=30)
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
    vault = app.config["NANHAI_VAULT"]()
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
            "set_at, expires_at, method, confidence, geom, grid_id, record_feed_file_id, record_row_number) "
            "SELECT :key, :id, :name, :phone, 'yellow', '密切接触者 / close contact', 'close_contact', '卫健', now(), "
            "now() + interval '14 days', 'point', 1.0, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), id, :feed, 1 "
            "FROM grids WHERE code = :grid"), {**masked, **DEMO_POINT, "grid": DEMO_GRID, "feed": feed})
        conn.execute(text("INSERT INTO flags (person_key, colour, grid_id, flagged_at, updated_at) "
                          "SELECT person_key, colour, grid_id, now(), now() FROM persons WHERE person_key = :key"),
                     masked)
    yield key
    with work_engine.begin() as conn:
        conn.execute(text("DELETE FROM persons WHERE person_key = :key"), masked)  # its flag goes with it
        conn.execute(text("DELETE FROM feed_files WHERE id = :feed"), {"feed": feed})  # and its record


@pytest.fixture(scope="module")
def activation_body(work_engine) -> dict:
    """The activation example's body for a new account with a real one-time code (an example cannot hold one)."""
    from datetime import UTC, datetime

    from accounts.actor import Actor
    from accounts.staff import add_user
    from matching.privacy import load_vault

    username = f"openapi.{secrets.token_hex(3)}"
    with work_engine.begin() as conn:
        issued = add_user(conn, Actor(None, "test_admin", ADMIN), username, "示例", WORKER, load_vault(),
                          datetime.now(UTC), grid_codes=(DEMO_GRID,))
    return {"username": username, "code": issued.code}


@pytest.fixture(scope="module")
def observation_plan(work_engine, app, person_key):
    """An observation plan of the example person, with a check due in an hour, and its self-report token."""
    from datetime import UTC, datetime, timedelta

    from observation.links import link_token

    now, nonce = datetime.now(UTC), secrets.token_urlsafe(16)
    with work_engine.begin() as conn:
        plan_id = conn.execute(text(
            "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, "
            "token_nonce) SELECT person_key, grid_id, 'yellow-key-area', :s, :e, '{480,1200}', :n FROM persons "
            "WHERE person_key = :k RETURNING id"),
            {"k": person_key, "s": now - timedelta(days=1), "e": now + timedelta(days=13), "n": nonce}).scalar_one()
        conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :d)"),
                     {"p": plan_id, "d": now + timedelta(hours=1)})
    yield plan_id, link_token(app.config["NANHAI_VAULT"](), plan_id, nonce)
    with work_engine.begin() as conn:
        conn.execute(text("DELETE FROM observation_plans WHERE id = :p"), {"p": plan_id})


@pytest.fixture(scope="module")
def context(as_role, user_id, document, person_key, activation_body, observation_plan) -> dict:
    """The path parameters of the examples: a task dispatched to demo_worker, its photo, a lead, a person; and the
    bodies that cannot be examples (``bodies``)."""
    supervisor, worker = as_role(SUPERVISOR), as_role(WORKER)
    task = supervisor.post("/tasks", {**example(document, "/tasks", "post"), "assignee_id": user_id("demo_worker")})
    assert task.status_code == 201, task.text
    transition = example(document, "/tasks/{task_id}/transitions", "post")
    assert (task.json()["status"], task.json()["version"]) == ("dispatched", transition["version"])
    photo = worker.post(f"/tasks/{task.json()['id']}/photos", files={"photo": ("visit.png", png(), "image/png")})
    assert photo.status_code == 201, photo.text
    lead = supervisor.post("/leads", example(document, "/leads", "post"))
    assert lead.status_code == 201 and lead.json()["placed"], lead.text
    return {"task_id": task.json()["id"], "photo_id": photo.json()["id"], "lead_id": lead.json()["id"],
            "key": person_key, "plan_id": observation_plan[0],
            "bodies": {("/activation", "post"): activation_body,
                       ("/observation/self-reports", "post"): {"token": observation_plan[1]}}}


# -- sending an operation and checking its answer ------------------------------------------------
def query_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))  # style form, explode false
    return str(value)


def build(document: dict, path: str, method: str, operation: dict, context: dict,
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
        extra["json"] = {**body["application/json"]["example"], **BODY_OVERRIDES.get((path, method), {}),
                         **context.get("bodies", {}).get((path, method), {})}
    elif "multipart/form-data" in body:
        extra["files"] = {"photo": ("visit.png", png(), "image/png")}
    return requests.Request(method.upper(), PREFIX + url, params=params, headers={"Accept": accept}, **extra)


def send(client: ApiClient, request: requests.Request, key: str | None = None):
    """Send ``request`` as ``client`` (its cookie and CSRF token); returns the answer and the prepared request."""
    request.url = client.base + request.url
    if client.csrf:
        request.headers["X-CSRF-Token"] = client.csrf
    if key:
        request.headers["Idempotency-Key"] = key
    prepared = client.http.prepare_request(request)
    return client.http.send(prepared, timeout=60), prepared


def replayable(document: dict, operation: dict) -> bool:
    return any(resolve(document, p)[0]["name"] == "Idempotency-Key" for p in operation.get("parameters", ()))


def check_answer(document: dict, schemas: Schemas, path: str, method: str, operation: dict,
                 response: requests.Response) -> None:
    """The status is documented for the operation, and the body is what the document says for it."""
    where, status = f"{method.upper()} {path} → {response.status_code}", str(response.status_code)
    assert status in operation["responses"], f"{where} is not documented: {response.text[:300]}"
    documented, at = resolve(document, operation["responses"][status])
    at = at or pointer("paths", path, method, "responses", status)
    content = documented.get("content")
    if not content:
        assert not response.content, f"{where} should have no body"
        return
    mimetype = response.headers.get("Content-Type", "").split(";")[0]
    assert mimetype in content, f"{where} answered {mimetype}, not one of {list(content)}"
    if mimetype == "application/json":
        try:
            schemas.validate(response.json(), at + "/content/application~1json/schema")
        except ValidationError as exc:
            pytest.fail(f"{where}: {exc.message} at {'/'.join(map(str, exc.absolute_path))}")


# -- the tests -----------------------------------------------------------------------------------
def test_the_served_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate_spec(document)
    assert document["servers"] == [{"url": PREFIX}]


def test_every_route_is_documented_and_nothing_else(app, document):
    routes, views = {}, app.view_functions
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/") and rule.endpoint != "api_v1.no_such_endpoint":
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX):])
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes[path, method.lower()] = rule.endpoint
    documented = {(path, method): operation for path, method, operation in operations(document)}
    assert set(documented) == set(routes)
    for where, endpoint in routes.items():
        operation = documented[where]
        assert operation["operationId"] == endpoint.rsplit(".", 1)[-1]
        # the endpoints that store their answer under Idempotency-Key are exactly those that say so (a mutation
        # answering personal data in clear stores nothing)
        stores_answers = getattr(views[endpoint], "replayable", False)
        assert replayable(document, operation) == stores_answers, where
        roles = operation["x-roles"]
        assert roles and set(roles) <= {ANONYMOUS, *STAFF}, where
        assert ANONYMOUS in roles or "401" in operation["responses"], where


SNAPSHOT = pathlib.Path(__file__).with_name("openapi.json")


def test_the_generated_document_is_the_committed_snapshot():
    """A change of the contract shows in review: regenerate with `python -m api.openapi > tests/api/openapi.json`."""
    assert serialised(standalone_app()) == SNAPSHOT.read_text(encoding="utf-8"), \
        "the API contract changed: if intended, run `python -m api.openapi > tests/api/openapi.json` and commit it"


def test_the_served_document_is_the_generated_one(document):
    assert document == json.loads(serialised(standalone_app()))


def test_examples_match_their_own_schemas(document, schemas):
    for path, method, operation in operations(document):
        for index, param in enumerate(operation.get("parameters", ())):
            param, at = resolve(document, param)
            schemas.validate(param["example"], (at or pointer("paths", path, method, "parameters", index)) + "/schema")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schemas.validate(body["example"], pointer("paths", path, method, "requestBody", "content",
                                                      "application/json", "schema"))


def test_examples_answer_as_documented(live, as_role, document, schemas, context):
    for path, method, operation in operations(document):
        roles = operation["x-roles"]
        if ANONYMOUS not in roles:  # the roles left out are refused (first: a refused request changes nothing)
            for role in (ANONYMOUS, *STAFF):
                if role not in roles:
                    client = ApiClient(live.url) if role == ANONYMOUS else as_role(role)
                    response, _ = send(client, build(document, path, method, operation, context))
                    assert response.status_code == (401 if role == ANONYMOUS else 403), (path, method, role)
                    check_answer(document, schemas, path, method, operation, response)
        # the examples are written for the first role; each runs in a login of its own (one logs out)
        client = ApiClient(live.url, None if roles[0] == ANONYMOUS else f"demo_{roles[0]}")
        successes = [r for s, r in operation["responses"].items() if s.startswith("2")]
        accepts = sorted({m for r in successes for m in r.get("content", {})}) if method == "get" else []
        for accept in accepts or ["application/json"]:
            key = str(uuid.uuid4()) if replayable(document, operation) else None
            response, prepared = send(client, build(document, path, method, operation, context, accept), key)
            check_answer(document, schemas, path, method, operation, response)
            # 429: the public lead form may already be throttled for this client by other tests
            assert response.ok or response.status_code == 429, (path, method, response.text[:300])
            if key and response.ok:  # a retry with the same key gets the stored answer
                again = client.http.send(prepared, timeout=60)
                assert (again.status_code, again.json(), again.headers.get("Idempotent-Replayed")) == (
                    response.status_code, response.json(), "true"), (path, method)


def test_stats_csv_has_the_documented_columns(as_role, document):
    response = as_role(REPORTER).get("/stats", params={"level": "town"}, headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    comment, header, *rows = response.content.decode("utf-8").splitlines()
    assert comment.startswith("\ufeff# ") and rows
    documented = list(document["components"]["schemas"]["StatsRow"]["properties"])
    assert header.split(",") == documented == list(COLUMNS)
    csv_example = document["paths"]["/stats"]["get"]["responses"]["200"]["content"]["text/csv"]["example"]
    assert csv_example.splitlines()[1].split(",") == documented
