"""A database outage is a clear 503 with Retry-After — JSON from the API, a page from the login form — never a
500 with a traceback."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import create_engine

from api import register_api
from pages.plain import pages
from tests.api.test_serving import _free_port
from web.context import configure


def _down_app() -> Flask:
    engine = create_engine(f"postgresql+psycopg://nobody:x@127.0.0.1:{_free_port()}/nanhai",
                           connect_args={"connect_timeout": 2})
    server = Flask(__name__)
    configure(server, engine)
    register_api(server)
    server.register_blueprint(pages)
    return server


def test_logins_and_the_session_answer_503_with_retry_after_while_the_database_is_down():
    client = _down_app().test_client()
    for answer in (client.post("/api/v1/session", json={"username": "demo_worker", "password": "x" * 12}),
                   client.get("/api/v1/session", headers={"Cookie": "nanhai_session=abc"}),
                   client.get("/api/v1/tasks", headers={"Cookie": "nanhai_session=abc"})):
        assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
        assert answer.is_json and answer.get_json()["error"] == "DatabaseUnavailable"
        assert int(answer.headers["Retry-After"]) > 0
    client.set_cookie("nanhai_form", "t")
    page = client.post("/login", data={"username": "demo_worker", "password": "x" * 12, "form_token": "t"})
    assert page.status_code == 503 and "Traceback" not in page.get_data(as_text=True)
    assert "数据库暂不可用" in page.get_data(as_text=True) and int(page.headers["Retry-After"]) > 0
