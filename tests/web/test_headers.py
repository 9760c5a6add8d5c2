"""Every answer tells browsers and proxies what they may do with it: API answers (personal data among them) are
never stored, and no page may be framed by another site (clickjacking)."""

from __future__ import annotations

import pytest

from app import create_app
from tests.conftest import signed_in


@pytest.fixture(scope="module")
def client(work_engine):
    return create_app(work_engine).server.test_client()


def test_api_answers_are_never_stored(client):
    signed_in(client, "demo_supervisor")
    for path in ("/api/v1/session", "/api/v1/tasks?limit=1", "/api/v1/tasks/999999999", "/api/v1/openapi.json"):
        answer = client.get(path)
        assert answer.headers.get("Cache-Control") == "no-store", (path, answer.status_code)


def test_no_page_may_be_framed(client):
    for path in ("/login", "/dispatch/", "/admin/users/", "/api/v1/session", "/healthz"):
        answer = client.get(path)
        assert answer.headers.get("X-Frame-Options") == "DENY", path
        assert "frame-ancestors 'none'" in answer.headers.get("Content-Security-Policy", ""), path
    login = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in login, "the plain pages keep their own policy, with frame-ancestors added"
