"""Crafted requests (issue 20): whatever the input, the server answers 4xx JSON — never a 500 and a traceback."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest

from app import create_app
from tests.conftest import signed_in


@pytest.fixture(scope="module")
def app(work_engine):
    return create_app(work_engine).server


@pytest.fixture(scope="module")
def supervisor(app):
    client = signed_in(app.test_client(), "demo_supervisor")
    client.csrf = client.get("/api/v1/session").get_json()["csrf_token"]
    return client


def _refused(answer, *statuses: int) -> None:
    assert answer.status_code in (statuses or (400, 404, 413, 422)), (answer.status_code, answer.get_data()[:300])
    assert answer.is_json, answer.get_data()[:300]


@pytest.mark.parametrize("text", ["走访\x00", "走访\ud800", "\udfff"])
def test_nul_bytes_and_lone_surrogates_in_json_strings(supervisor, text):
    raw = json.dumps({"kind": "area_sweep", "grid_code": "440605011001001", "title": text, "dispatch": False})
    _refused(supervisor.post("/api/v1/tasks", data=raw, content_type="application/json",
                             headers={"X-CSRF-Token": supervisor.csrf}))
    _refused(supervisor.post("/api/v1/leads", data=json.dumps({"description": text, "address": text}),
                             content_type="application/json"), 422, 429)


@pytest.mark.parametrize("text", ["440605011001001\x00", "%00", "%ED%A0%80"])
def test_nul_bytes_and_surrogates_in_query_and_path_parameters(supervisor, text):
    _refused(supervisor.get("/api/v1/tasks", query_string={"grid": text}))
    _refused(supervisor.get(f"/api/v1/grids/{text}/persons"))
    _refused(supervisor.get(f"/api/v1/persons/{text}"))


def test_a_nul_byte_in_a_form_field(supervisor, app):
    client = app.test_client()
    client.set_cookie("nanhai_form", "t")
    page = client.post("/login", data={"username": "demo\x00worker", "password": "x\x00" * 8, "form_token": "t"})
    assert page.status_code in (401, 422), page.status_code


def test_a_deeply_nested_json_body(supervisor):
    _refused(supervisor.post("/api/v1/tasks", data="[" * 100_000 + "]" * 100_000, content_type="application/json",
                             headers={"X-CSRF-Token": supervisor.csrf}))


def test_dates_at_the_ends_of_the_calendar(app):
    reporter = signed_in(app.test_client(), "demo_reporter")
    _refused(reporter.get("/api/v1/stats", query_string={"from": "0001-01-01", "to": "9999-12-31"}))


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_a_photo_claiming_twenty_thousand_pixels_square(app, supervisor):
    task = supervisor.post("/api/v1/tasks", json={"kind": "area_sweep", "grid_code": "440605011001001",
                                                  "title": "照片炸弹"}, headers={"X-CSRF-Token": supervisor.csrf})
    assert task.status_code == 201 and task.get_json()["assignee"] == "demo_worker", task.get_json()
    worker = signed_in(app.test_client(), "demo_worker")
    csrf = worker.get("/api/v1/session").get_json()["csrf_token"]
    answer = worker.post(f"/api/v1/tasks/{task.get_json()['id']}/photos", headers={"X-CSRF-Token": csrf},
                         data={"photo": (io.BytesIO(_png_header(20000, 20000)), "big.png")},
                         content_type="multipart/form-data")
    _refused(answer, 409, 413, 422)


def test_a_dash_callback_naming_an_unknown_output(supervisor):
    body = {"output": "nobody-here.children", "outputs": {"id": "nobody-here", "property": "children"},
            "inputs": [{"id": "dispatch-tick", "property": "n_intervals", "value": 1}], "changedPropIds": []}
    _refused(supervisor.post("/dispatch/_dash-update-component", json=body), 400, 422)


def test_a_documented_path_under_another_method_answers_405_with_allow(supervisor):
    """Schemathesis' finding: PUT, PATCH, DELETE on /tasks/1 fell through to the catch-all's 404."""
    for method in ("put", "patch", "delete"):
        answer = getattr(supervisor, method)("/api/v1/tasks/1", headers={"X-CSRF-Token": supervisor.csrf})
        _refused(answer, 405)
        assert answer.headers["Allow"] == "GET" and answer.get_json()["error"] == "MethodNotAllowed"
    _refused(supervisor.put("/api/v1/no-such-thing", headers={"X-CSRF-Token": supervisor.csrf}), 404)


def test_a_task_placed_outside_the_district_is_refused(supervisor):
    """Schemathesis' finding: a task for a 桂城 grid was accepted with a point at longitude -179."""
    body = {"kind": "area_sweep", "grid_code": "440605011001001", "title": "走访", "dispatch": False,
            "location": {"lon": -179, "lat": 23.0551}}
    answer = supervisor.post("/api/v1/tasks", json=body, headers={"X-CSRF-Token": supervisor.csrf,
                                                                  "Idempotency-Key": "outside-1"})
    _refused(answer, 422)
    assert answer.get_json()["field"] == "location"
