"""The API's refusals follow Accept-Language: Chinese by default, English when asked (and said so in
Content-Language); the same refusal in either language carries the same code and field."""

from __future__ import annotations

import pytest

from app import create_app


@pytest.fixture(scope="module")
def client(work_engine):
    return create_app(work_engine).server.test_client()


@pytest.mark.parametrize(("accept", "lang", "message"), [
    (None, "zh", "请先登录"),
    ("en", "en", "please log in"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en", "please log in"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh", "请先登录"),
    ("fr-FR", "zh", "请先登录"),
])
def test_a_refusal_is_in_the_language_asked_for_chinese_by_default(client, accept, lang, message):
    answer = client.get("/api/v1/tasks", headers={"Accept-Language": accept} if accept else {})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "Unauthenticated", "message": message}
    assert answer.headers["Content-Language"] == lang


def test_a_field_refusal_keeps_its_field_in_both_languages(client):
    zh = client.post("/api/v1/session", json={"username": "", "password": ""})
    en = client.post("/api/v1/session", json={"username": "", "password": ""}, headers={"Accept-Language": "en"})
    assert zh.status_code == en.status_code == 422
    assert zh.get_json()["field"] == en.get_json()["field"]
    assert "缺少" in zh.get_json()["message"] and " / " not in zh.get_json()["message"]
    assert en.get_json()["message"].isascii()


def test_an_unknown_endpoint_and_a_wrong_method_answer_in_english_when_asked(client):
    missing = client.get("/api/v1/nothing-here", headers={"Accept-Language": "en"})
    assert missing.status_code == 404 and missing.get_json()["message"] == "no such endpoint or method"
    wrong = client.delete("/api/v1/session/x", headers={"Accept-Language": "en"})
    assert wrong.status_code in (404, 405) and wrong.get_json()["message"].isascii()
    assert "不适用" in client.put("/api/v1/session").get_json()["message"]
