"""The home-observation endpoints over HTTP (issue 25), on a live server over the shared work database: the
follow-up list, a check-in retried under one Idempotency-Key (recorded once), the self-report link handed out,
used, renewed, forged and rate-limited (429 with Retry-After), and the role and scope of every endpoint (401 without
a login, 403 for another role, 404 out of scope)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import text

from tests.api.client import ApiClient

PREFIX = "/api/v1"


def _grid(conn, username: str) -> int:
    return conn.execute(text("SELECT min(grid_id) FROM user_grids ug JOIN users u ON u.id = ug.user_id "
                             "WHERE u.username = :u"), {"u": username}).scalar_one()


@pytest.fixture(scope="module")
def plans(work_engine, clock):
    """Two plans: one in demo_worker's grid, one in a grid of another community; each with a check due in an hour
    (its window is open). Removed after the module."""
    now = clock.moment
    keys = [f"obs-api-{uuid.uuid4().hex[:8]}", f"obs-api-{uuid.uuid4().hex[:8]}"]
    with work_engine.begin() as conn:
        mine = _grid(conn, "demo_worker")
        other = conn.execute(text("SELECT g.id FROM grids g WHERE g.community_id <> (SELECT community_id FROM grids "
                                  "WHERE id = :g) ORDER BY g.id LIMIT 1"), {"g": mine}).scalar_one()
        ids = []
        for key, grid in zip(keys, (mine, other), strict=True):
            conn.execute(text(
                "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, confidence, "
                "grid_id) VALUES (:k, '4406**********0010', '赵*', 'yellow', '重点地区 / key area', "
                "'yellow-key-area', 1.0, :g)"), {"k": key, "g": grid})
            plan_id = conn.execute(text(
                "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, "
                "token_nonce) VALUES (:k, :g, 'yellow-key-area', :s, :e, '{480,1200}', :n) RETURNING id"),
                {"k": key, "g": grid, "s": now - timedelta(days=3), "e": now + timedelta(days=11),
                 "n": uuid.uuid4().hex[:22]}).scalar_one()
            conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :d)"),
                         {"p": plan_id, "d": now + timedelta(hours=1)})
            ids.append(plan_id)
    yield {"mine": ids[0], "other": ids[1]}
    with work_engine.begin() as conn:
        conn.execute(text("DELETE FROM tasks WHERE person_key = ANY(:k)"), {"k": keys})
        conn.execute(text("DELETE FROM observation_plans WHERE id = ANY(:i)"), {"i": ids})
        conn.execute(text("DELETE FROM persons WHERE person_key = ANY(:k)"), {"k": keys})


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_the_worker_lists_his_follow_ups_masked(as_role, live, plans):
    answer = as_role("worker").get("/observation/follow-ups")
    assert answer.status_code == 200, answer.text
    listed = {item["plan_id"]: item for item in answer.json()["follow_ups"]}
    assert plans["mine"] in listed and plans["other"] not in listed
    item = listed[plans["mine"]]
    assert (item["name_masked"], item["next_state"], item["day"], item["days"]) == ("赵*", "due", 4, 14)
    assert plans["other"] in {i["plan_id"] for i in as_role("commander").get("/observation/follow-ups").json()[
        "follow_ups"]}
    assert as_role("reporter").get("/observation/follow-ups").status_code == 403
    assert requests.get(f"{live.url}{PREFIX}/observation/follow-ups", timeout=30).status_code == 401


def test_a_retried_check_in_is_recorded_once(as_role, work_engine, plans):
    worker, key = as_role("worker"), str(uuid.uuid4())
    path = f"/observation/plans/{plans['mine']}/checks"
    first = worker.post(path, {"temperature": 36.7, "symptoms": ["none"]}, key=key)
    again = worker.post(path, {"temperature": 36.7, "symptoms": ["none"]}, key=key)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json(), again.headers.get("Idempotent-Replayed")) == (201, first.json(), "true")
    assert (first.json()["status"], first.json()["late"], first.json()["fever"]) == ("done", False, False)
    assert _count(work_engine, "SELECT count(*) FROM observation_checks WHERE plan_id = :p AND status = 'done'",
                  p=plans["mine"]) == 1
    assert _count(work_engine, "SELECT count(*) FROM observation_events WHERE plan_id = :p AND kind = 'check'",
                  p=plans["mine"]) == 1
    listed = {i["plan_id"]: i for i in worker.get("/observation/follow-ups").json()["follow_ups"]}
    assert listed[plans["mine"]]["last_report"]["temperature"] == 36.7


def test_check_in_refusals_name_the_field_and_store_nothing(as_role, live, work_engine, plans):
    worker = as_role("worker")
    path = f"/observation/plans/{plans['mine']}/checks"
    before = _count(work_engine, "SELECT count(*) FROM observation_checks WHERE plan_id = :p", p=plans["mine"])
    for body, field in (({"temperature": 49.5}, "temperature"), ({"symptoms": ["sneeze"]}, "symptoms"),
                        ({"symptoms": ["none", "cough"]}, "symptoms"), ({}, "temperature")):
        refused = worker.post(path, body, key=str(uuid.uuid4()))
        assert (refused.status_code, refused.json().get("field")) == (422, field), (body, refused.text)
    assert _count(work_engine, "SELECT count(*) FROM observation_checks WHERE plan_id = :p",
                  p=plans["mine"]) == before
    body = {"temperature": 36.5}
    assert worker.post(f"/observation/plans/{plans['other']}/checks", body).status_code == 404
    assert worker.post("/observation/plans/999999999/checks", body).status_code == 404
    assert as_role("supervisor").post(f"/observation/plans/{plans['other']}/checks", body).status_code == 404
    assert as_role("reporter").post(path, body).status_code == 403
    assert as_role("admin").post(path, body).status_code == 403
    assert requests.post(f"{live.url}{PREFIX}{path}", json=body, timeout=30).status_code == 401


def test_the_self_report_link_story(as_role, live, work_engine, plans, clock):
    worker, public = as_role("worker"), ApiClient(live.url)
    issued = worker.post(f"/observation/plans/{plans['mine']}/link", {"action": "issue"}, key=str(uuid.uuid4()))
    assert issued.status_code == 200, issued.text
    token = issued.json()["token"]
    assert issued.json()["path"] == f"/obs/{token}" and token.startswith(f"NHO1.{plans['mine']}.")
    reported = public.post("/observation/self-reports", {"token": token, "temperature": 36.4, "symptoms": ["none"]})
    assert reported.status_code == 201, reported.text
    assert set(reported.json()) == {"plan_id", "check_id", "due_at", "status", "late", "reported_at"}
    channels = _count(work_engine, "SELECT count(*) FROM observation_checks WHERE plan_id = :p AND channel = 'self'",
                      p=plans["mine"])
    assert channels == 1

    forged = public.post("/observation/self-reports", {"token": token[:-2] + "xx", "temperature": 36.4})
    assert (forged.status_code, forged.json()["error"], forged.json()["field"]) == (422, "ForgedLink", "token")
    renewed = worker.post(f"/observation/plans/{plans['mine']}/link", {"action": "renew"}, key=str(uuid.uuid4()))
    assert renewed.status_code == 200 and renewed.json()["token"] != token
    old = public.post("/observation/self-reports", {"token": token, "temperature": 36.4})
    assert (old.status_code, old.json()["error"]) == (422, "ReplacedLink")

    fresh = renewed.json()["token"]
    for tenth in range(1, 6):  # five more in the hour, a minute apart: six in all
        clock.advance(minutes=1)
        more = public.post("/observation/self-reports", {"token": fresh, "temperature": 36.0 + tenth / 10})
        assert more.status_code == 201, more.text
    clock.advance(minutes=1)
    limited = public.post("/observation/self-reports", {"token": fresh, "temperature": 36.9})
    # the first of the six came 6 minutes ago: it leaves the hour in 54 minutes
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, str(54 * 60 + 1)), limited.text
    assert _count(work_engine, "SELECT count(*) FROM observation_checks WHERE plan_id = :p AND channel = 'self'",
                  p=plans["mine"]) == 6


def test_who_may_hand_out_a_link(as_role, live, plans):
    path = f"/observation/plans/{plans['mine']}/link"
    assert as_role("reporter").post(path, {"action": "issue"}).status_code == 403
    assert as_role("admin").post(path, {"action": "issue"}).status_code == 403
    assert as_role("worker").post(f"/observation/plans/{plans['other']}/link", {"action": "issue"}).status_code == 404
    assert as_role("supervisor").post(path, {"action": "issue"}).status_code == 200
    assert requests.post(f"{live.url}{PREFIX}{path}", json={"action": "issue"}, timeout=30).status_code == 401
    bad = as_role("worker").post(path, {"action": "reprint"})
    assert (bad.status_code, bad.json()["field"]) == (422, "action")
