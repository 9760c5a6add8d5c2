"""Property-based checks of /api/v1 against its own OpenAPI document (schemathesis), for every role.

Every operation of the document is called over HTTP on a :class:`tests.browser.LiveServer` serving a
throwaway copy of the demo database, logged in as each demo account (``demo_worker``, ``demo_supervisor``,
``demo_commander``, ``demo_reporter``, ``demo_admin``) and once anonymous. Every answer must be no 5xx and
valid against the document: its status documented for the operation, its content type one the document
names for that status, its body matching the schema, its documented headers well formed.

The requests are bounded and derandomized (the same ones on every run): the document's examples,
schemathesis' coverage cases (boundaries, missing and wrong fields, both valid and invalid requests) and
:data:`EXAMPLES` random ones per operation and role. Two touches make them reach further: a well-formed
``Idempotency-Key`` is made unique per request (schemathesis draws "0" again and again, and a key reused
for another request is refused before the operation runs), and every other ``GET /stats`` asks for CSV.

Left out, because it would undo the test's own login rather than test the API:

- ``DELETE /session`` (log out) ends the very session the role's requests ride on; logging out is
  tested in ``tests/api/test_session.py``.

Kept, though they change data, since the database is a throwaway copy: task creation and transitions,
triage, photos, scans, duty, sweeps, unmasking (audited), lead reports, and the failing logins and
activations schemathesis makes up. Every role logs in before the first of those, so the login throttle
they trip cannot lock the test out; a session already open is not affected by it.

The document is read at import (schemathesis' pytest integration needs the operations at collection;
its fixture-loaded variant does not run under pytest 9.2); it is the one the server serves
(``tests/api/test_openapi.py::test_the_served_document_is_the_generated_one``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from http.cookiejar import DefaultCookiePolicy

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.http import IDEMPOTENCY_HEADER
from api.openapi import PREFIX, document, standalone_app
from app import create_app
from evaluation.export import CSV_MEDIA
from tests.api.client import ApiClient
from tests.browser import LiveServer
from tests.conftest import Clock
from web.session import CSRF_HEADER, SESSION_COOKIE

ANONYMOUS = "anonymous"
ROLES = ("worker", "supervisor", "commander", "reporter", "admin", ANONYMOUS)
EXAMPLES = 30  # random requests per operation and role, on top of the examples and coverage cases
LEFT_OUT = {("DELETE", "/session")}
KEYS = itertools.count(1)
CSV_TOO = itertools.cycle((False, True))  # every other GET /stats asks for its CSV, the other documented answer
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

schema = schemathesis.openapi.from_dict(document(standalone_app())).exclude(
    func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in LEFT_OUT)
# Security parameters are not made up: each request carries exactly its role's session cookie and CSRF token.
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True, database="none",
                                with_security_parameters=False)


@pytest.fixture(scope="module")
def server(database_factory, work_engine) -> Iterator[LiveServer]:
    """The app on a throwaway copy of the demo database: whatever the generated requests change stays there."""
    engine = database_factory("nanhai_schemathesis", copy_of=work_engine)
    with LiveServer(create_app(engine, Clock()).server) as live:
        yield live


@pytest.fixture(scope="module")
def logins(server) -> dict[str, ApiClient]:
    """Every demo role logged in up front, before any made-up login can trip the throttle."""
    return {role: ApiClient(server.url, f"demo_{role}") for role in ROLES if role != ANONYMOUS}


@pytest.fixture(scope="module", params=ROLES)
def role(request) -> str:
    """One role per test; module scope runs all operations of a role together."""
    return request.param


@pytest.fixture(scope="module")
def http(role) -> requests.Session:
    """A connection pool for the role that keeps no cookie: a login made up by schemathesis cannot stick."""
    session = requests.Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


@schema.parametrize()
@pytest.mark.usefixtures("role")  # its parameters make one test per operation and role
# Health checks judge generation speed and filtering, which vary with the machine; the bound is EXAMPLES.
@settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_answers_are_as_documented(case, role, logins, http, server):
    """No 5xx, and a status, content type, body and headers the document gives for the operation."""
    if role != ANONYMOUS:
        client = logins[role]
        case.cookies = {**(case.cookies or {}), SESSION_COOKIE: client.http.cookies[SESSION_COOKIE]}
        case.headers = {**(case.headers or {}), CSRF_HEADER: client.csrf}
    key = (case.headers or {}).get(IDEMPOTENCY_HEADER)
    if isinstance(key, str) and 1 <= len(key) <= 128:
        # unique, so that the body reaches the view; ill-formed keys are left to be refused
        case.headers[IDEMPOTENCY_HEADER] = f"{next(KEYS)}-{key}"[:128]
    # passed to the call, not set on the case: the session's own Accept would win over the case's
    accept = {"Accept": CSV_MEDIA} if case.operation.path == "/stats" and next(CSV_TOO) else None
    case.call_and_validate(base_url=server.url + PREFIX, session=http, headers=accept, checks=CHECKS)
