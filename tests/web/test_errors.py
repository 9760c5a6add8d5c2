"""One mapping of refusals: statuses and JSON bodies for the API, outputs for Dash callbacks."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from psycopg import OperationalError as DriverError
from sqlalchemy.exc import OperationalError

from gis.errors import (
    Conflict,
    DatabaseUnavailable,
    GridError,
    InvalidRequest,
    NoGrids,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from web.errors import error_body, error_response, refusals_shown, status_of


@pytest.mark.parametrize(("error", "status"), [
    (InvalidRequest("x", "f"), 422), (Unauthenticated("x"), 401), (PermissionDenied("x"), 403), (NotFound("x"), 404),
    (NoGrids(), 404), (Conflict("x", "stale_version"), 409), (RateLimited("x", 60), 429),
    (DatabaseUnavailable("x"), 503), (GridError("x"), 400)])
def test_each_refusal_has_its_status(error, status):
    assert status_of(error) == status


def test_the_body_names_the_field_or_the_conflict_in_one_language_chinese_by_default():
    assert error_body(InvalidRequest("缺少 title / title is required", "title")) == {
        "error": "InvalidRequest", "message": "缺少 title", "field": "title"}
    assert error_body(Conflict("已被他人更新 / stale", "stale_version", {"id": 7}), "en") == {
        "error": "stale_version", "message": "stale", "current": {"id": 7}}


def test_a_lost_database_and_a_rate_limit_answer_as_json():
    with Flask(__name__).test_request_context("/api/v1/tasks", headers={"Accept-Language": "en"}):
        lost = error_response(OperationalError("SELECT 1", {}, DriverError("server closed the connection")))
        limited = error_response(RateLimited("过于频繁 / too many", 900))
    assert lost.status_code == 503 and "retry" in json.loads(lost.get_data())["message"]
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "900"
    assert json.loads(limited.get_data())["message"] == "too many" and limited.headers["Content-Language"] == "en"


def test_a_callback_shows_a_refusal_instead_of_failing():
    @refusals_shown(lambda exc: ("refused", str(exc)))
    def callback(fail: bool) -> tuple[str, str]:
        if fail:
            raise NotFound("没有这个网格 / no such grid")
        return "ok", ""

    assert callback(False) == ("ok", "")
    assert callback(True) == ("refused", "没有这个网格 / no such grid")


def test_a_callback_lets_a_programming_error_through():
    @refusals_shown(lambda exc: "refused")
    def callback() -> str:
        raise KeyError("a bug is not a refusal")

    with pytest.raises(KeyError):
        callback()
