"""The gate's and the e-passes' endpoints over HTTP: roles (401/403/404) on each, forged and revoked passes refused
naming the field, red and yellow raising exactly one alert task, idempotent retries."""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import text

from accounts.actor import ADMIN, COMMANDER, REPORTER, SUPERVISOR, WORKER
from tests.api.client import ApiClient
from tests.persons import flag_person

WORKER_GRID = "440605011001001"  # demo_worker's grid (no gate in it)
GATE = "KK44060501100101"  # in demo_supervisor's community, grid 440605011001003
OTHER_TOWN_GATE = "KK44060501100401"  # another community: not demo_supervisor's


def person(engine, colour: str, grid: str = WORKER_GRID) -> str:
    return flag_person(engine, secrets.token_hex(32), grid, colour, name="钱*")


def scans(engine, key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM scans WHERE person_key = :k"), {"k": key}).scalar_one()


def alerts(engine, key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM tasks WHERE kind = 'checkpoint_alert' AND person_key = :k"),
                            {"k": key}).scalar_one()


def test_every_new_endpoint_wants_a_login(live, work_engine):
    key = person(work_engine, "red")
    anonymous = ApiClient(live.url)
    for method, path, body in (("post", "/gate/scans", {"checkpoint": GATE, "person_key": key, "direction": "in"}),
                               ("get", "/gate/checkpoints", None), ("get", f"/persons/{key}/passes", None),
                               ("post", f"/persons/{key}/passes", {}),
                               ("post", f"/persons/{key}/passes/revocation", {"reason": "遗失"})):
        answer = anonymous.get(path) if method == "get" else anonymous.post(path, body)
        assert answer.status_code == 401, (method, path)
    assert scans(work_engine, key) == 0


def test_the_reporter_and_the_administrator_are_refused_where_their_role_has_no_place(as_role, work_engine):
    key = person(work_engine, "red")
    reporter, admin = as_role(REPORTER), as_role(ADMIN)
    assert reporter.post("/gate/scans", {"checkpoint": GATE, "person_key": key, "direction": "in"}).status_code == 403
    assert reporter.get("/gate/checkpoints").status_code == 403
    for client in (reporter, admin):
        assert client.get(f"/persons/{key}/passes").status_code == 403
        assert client.post(f"/persons/{key}/passes", {}).status_code == 403
        assert client.post(f"/persons/{key}/passes/revocation", {"reason": "遗失"}).status_code == 403
    assert scans(work_engine, key) == 0


def test_out_of_scope_is_not_found(as_role, work_engine):
    elsewhere = person(work_engine, "yellow", grid="440605011004002")
    worker, supervisor = as_role(WORKER), as_role(SUPERVISOR)
    for client in (worker, supervisor):
        assert client.get(f"/persons/{elsewhere}/passes").status_code == 404
        assert client.post(f"/persons/{elsewhere}/passes", {}).status_code == 404
        assert client.post(f"/persons/{elsewhere}/passes/revocation", {"reason": "遗失"}).status_code == 404
    refused = supervisor.post("/gate/scans", {"checkpoint": OTHER_TOWN_GATE, "person_key": elsewhere,
                                              "direction": "in"})
    assert refused.status_code == 404 and OTHER_TOWN_GATE in refused.json()["message"]
    assert worker.post("/gate/scans", {"checkpoint": GATE, "person_key": elsewhere,
                                       "direction": "in"}).status_code == 404  # not his grid's gate
    assert scans(work_engine, elsewhere) == 0


def test_the_gate_lists_only_the_checkpoints_in_scope(as_role):
    mine = [c["code"] for c in as_role(SUPERVISOR).get("/gate/checkpoints").json()["checkpoints"]]
    every = as_role(COMMANDER).get("/gate/checkpoints").json()["checkpoints"]
    assert GATE in mine and OTHER_TOWN_GATE not in mine and len(every) > len(mine)
    assert as_role(WORKER).get("/gate/checkpoints").json() == {"checkpoints": []}


def test_an_issued_pass_opens_the_gate_until_revoked(as_role, work_engine):
    key = person(work_engine, "blue")
    worker, supervisor = as_role(WORKER), as_role(SUPERVISOR)
    issued = worker.post(f"/persons/{key}/passes", {}, key=str(uuid.uuid4()))
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    passed = supervisor.post("/gate/scans", {"checkpoint": GATE, "pass_token": token, "direction": "in"})
    assert passed.status_code == 201, passed.text
    assert (passed.json()["verdict"], passed.json()["colour"], passed.json()["name_masked"]) == (
        "temporary", "blue", "钱*")
    revoked = supervisor.post(f"/persons/{key}/passes/revocation", {"reason": "通行证遗失"})
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "demo_supervisor"
    again = supervisor.post(f"/persons/{key}/passes/revocation", {"reason": "通行证遗失"})
    assert again.status_code == 409 and again.json()["error"] == "no_pass_in_force"
    refused = supervisor.http.post(f"{supervisor.base}/api/v1/gate/scans", json={
        "checkpoint": GATE, "pass_token": token, "direction": "in"},
        headers={"X-CSRF-Token": supervisor.csrf, "Accept-Language": "en"})
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["error"]) == ("pass_token", "RevokedPass")
    assert "revoked" in refused.json()["message"]
    listed = worker.get(f"/persons/{key}/passes").json()["passes"]
    assert [p["reason"] for p in listed] == ["通行证遗失"] and "token" not in listed[0]
    assert scans(work_engine, key) == 1  # the refused scan stored nothing


@pytest.mark.parametrize("token", ["NHP1.1.abcdefghijklmnopqrstuv." + "A" * 43, "not a pass at all", "x" * 500])
def test_a_forged_pass_is_refused_naming_the_field(as_role, work_engine, token):
    supervisor = as_role(SUPERVISOR)
    with work_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM scans")).scalar_one()
    refused = supervisor.post("/gate/scans", {"checkpoint": GATE, "pass_token": token, "direction": "in"})
    assert refused.status_code == 422 and refused.json()["field"] == "pass_token", refused.text
    with work_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scans")).scalar_one() == before


@pytest.mark.parametrize(("colour", "verdict", "tasks"), [
    ("green", "pass", 0), ("blue", "temporary", 0), ("yellow", "temporary", 1), ("red", "refuse", 1)])
def test_red_and_yellow_raise_exactly_one_alert_task(as_role, work_engine, colour, verdict, tasks):
    key = person(work_engine, colour, grid="440605011001003") if colour != "green" else secrets.token_hex(32)
    supervisor = as_role(SUPERVISOR)
    answers = [supervisor.post("/gate/scans", {"checkpoint": GATE, "person_key": key, "direction": d})
               for d in ("in", "out")]
    answers.append(supervisor.post("/scans", {"checkpoint": GATE, "person_key": key, "direction": "in"}))
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert {a.json()["verdict"] for a in answers[:2]} == {verdict}
    assert len({a.json()["task_id"] for a in answers}) == 1  # the gate and the scans API join the same task
    assert alerts(work_engine, key) == tasks


def test_a_retry_with_the_same_key_is_answered_once(as_role, work_engine):
    key = person(work_engine, "red", grid="440605011001003")
    supervisor, retry = as_role(SUPERVISOR), str(uuid.uuid4())
    body = {"checkpoint": GATE, "person_key": key, "direction": "in", "scanned_at": "2026-12-01T08:00:00+08:00"}
    first = supervisor.post("/gate/scans", body, key=retry)
    second = supervisor.post("/gate/scans", body, key=retry)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["scanned_at"] == "2026-12-01T08:00:00+08:00"  # the time it was scanned, kept
    assert scans(work_engine, key) == 1 and alerts(work_engine, key) == 1
    other = supervisor.post("/gate/scans", {**body, "direction": "out"}, key=retry)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def test_a_typed_number_becomes_the_person_key_and_a_bad_one_names_its_field(as_role):
    supervisor = as_role(SUPERVISOR)
    typed = supervisor.post("/gate/scans", {"checkpoint": GATE, "pass_code": "440605198503030010",
                                            "direction": "in"})
    assert typed.status_code == 201 and typed.json()["verdict"] in ("pass", "temporary", "refuse")
    bad = supervisor.post("/gate/scans", {"checkpoint": GATE, "pass_code": "440605198503030011", "direction": "in"})
    assert bad.status_code == 422 and bad.json()["field"] == "pass_code"
    none = supervisor.post("/gate/scans", {"checkpoint": GATE, "direction": "in"})
    assert none.status_code == 422 and none.json()["field"] == "pass_code"
