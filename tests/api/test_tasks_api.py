"""The task API against the real server and database: the loop end to end, photos, versions and retries."""

import io
import threading
import uuid

import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.api.conftest import DEMO_GRID


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def new_task(as_role, user_id):
    """A home visit in the demo grid dispatched to demo_worker by demo_supervisor."""
    def make(**extra) -> dict:
        body = {"kind": "home_visit", "grid_code": DEMO_GRID, "title": "入户走访：陈*明",
                "assignee_id": user_id("demo_worker"), **extra}
        response = as_role("supervisor").post("/tasks", body)
        assert response.status_code == 201, response.text
        return response.json()
    return make


def _events(work_engine, task_id: int) -> list[tuple]:
    with work_engine.connect() as conn:
        return conn.execute(text("SELECT seq, action, from_status, to_status, actor FROM task_events "
                                 "WHERE task_id = :t ORDER BY seq"), {"t": task_id}).all()


def test_the_closed_loop_end_to_end_with_rework_photo_and_gps(as_role, new_task, work_engine):
    worker, supervisor = as_role("worker"), as_role("supervisor")
    task = new_task()
    assert task["status"] == "dispatched" and task["assignee"] == "demo_worker" and task["sla_minutes"] == 720
    for action in ("accept", "start"):
        response = worker.act(task, action)
        assert response.status_code == 200, response.text
        task = response.json()["task"]
    photo = worker.http.post(f"{worker.base}/api/v1/tasks/{task['id']}/photos", headers=worker._headers(None),
                             files={"photo": ("visit.png", _png(), "image/png")})
    assert photo.status_code == 201 and photo.json()["width"] == 40
    handled = worker.act(task, "handle", result="已走访，居家隔离中", temperature=36.7, note="门口测温",
                         location={"lon": 113.145, "lat": 23.03}, photos=[photo.json()["id"]])
    assert handled.status_code == 200, handled.text
    event = handled.json()["event"]
    assert event["detail"]["temperature"] == 36.7 and event["detail"]["photos"] == [photo.json()["id"]]
    assert event["location"] == {"lon": 113.145, "lat": 23.03} and event["actor"] == "demo_worker"
    task = handled.json()["task"]
    task = supervisor.act(task, "rework", reason="请补充体温照片").json()["task"]
    assert task["status"] == "in_progress" and task["rework_count"] == 1
    task = worker.act(task, "handle", result="已补充", temperature=36.5).json()["task"]
    closed = supervisor.act(task, "close")
    assert closed.status_code == 200 and closed.json()["task"]["status"] == "closed"
    assert closed.json()["event"]["detail"]["on_time"] is True

    assert [(e.action, e.from_status, e.to_status) for e in _events(work_engine, task["id"])] == [
        ("create", None, "created"), ("dispatch", "created", "dispatched"), ("accept", "dispatched", "accepted"),
        ("start", "accepted", "in_progress"), ("handle", "in_progress", "handled"),
        ("rework", "handled", "in_progress"), ("handle", "in_progress", "handled"), ("close", "handled", "closed")]
    detail = supervisor.get(f"/tasks/{task['id']}").json()
    assert [e["seq"] for e in detail["events"]] == list(range(1, 9)) and detail["version"] == 8
    assert supervisor.get(f"/photos/{photo.json()['id']}").content == _png()
    timeline = supervisor.get(f"/grids/{DEMO_GRID}/timeline?limit=500").json()["events"]
    assert {e["action"] for e in timeline if e["task_id"] == task["id"]} >= {"create", "handle", "close"}


def test_an_illegal_transition_is_refused_and_changes_nothing(as_role, new_task, work_engine):
    task = new_task()
    before = _events(work_engine, task["id"])
    response = as_role("supervisor").act(task, "close")
    assert response.status_code == 409 and response.json()["error"] == "illegal_transition"
    assert "已派遣" in response.json()["message"]
    assert _events(work_engine, task["id"]) == before
    assert as_role("supervisor").get(f"/tasks/{task['id']}").json()["version"] == task["version"]


def test_bad_photos_are_refused(as_role, new_task):
    worker, task = as_role("worker"), new_task()
    for content, reason in ((b"GIF89a not really", "image"), (b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image"),
                            (b"x" * (7 * 1024 * 1024), "large")):
        response = worker.http.post(f"{worker.base}/api/v1/tasks/{task['id']}/photos",
                                    headers={**worker._headers(None), "Accept-Language": "en"},
                                    files={"photo": ("p.png", content, "image/png")})
        assert response.status_code == 422 and reason in response.json()["message"], response.text


def test_a_stale_version_is_refused_with_the_current_state(as_role, new_task):
    worker, supervisor = as_role("worker"), as_role("supervisor")
    task = new_task()
    assert worker.act(task, "accept").status_code == 200
    stale = supervisor.act(task, "reassign", assignee_id=task["assignee_id"])
    assert stale.status_code == 409 and stale.json()["error"] == "stale_version"
    assert stale.json()["current"]["status"] == "accepted" and stale.json()["current"]["version"] == task["version"] + 1


def test_concurrent_updates_exactly_one_wins_and_no_event_is_lost(as_role, new_task, work_engine):
    task = new_task()
    worker = as_role("worker")
    answers: list = []
    barrier = threading.Barrier(8)

    def tap(action: str) -> None:
        barrier.wait()
        answers.append(worker.act(task, action, reason="不在辖区") if action == "decline" else worker.act(task, action))

    threads = [threading.Thread(target=tap, args=("accept" if i % 2 else "decline",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 7
    assert all(a.json()["error"] == "stale_version" for a in answers if a.status_code == 409)
    events = _events(work_engine, task["id"])
    assert len(events) == 3 and events[-1].action == next(a.json()["event"]["action"] for a in answers
                                                          if a.status_code == 200)


def test_the_same_idempotency_key_sent_concurrently_has_one_effect(as_role, new_task, work_engine):
    task = new_task()
    worker, key = as_role("worker"), str(uuid.uuid4())
    body = {"action": "accept", "version": task["version"]}
    answers: list = []
    barrier = threading.Barrier(6)

    def tap() -> None:
        barrier.wait()
        answers.append(worker.post(f"/tasks/{task['id']}/transitions", body, key=key))

    threads = [threading.Thread(target=tap) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 5
    assert [e.action for e in _events(work_engine, task["id"])] == ["create", "dispatch", "accept"]
    other = worker.post(f"/tasks/{task['id']}/transitions", {"action": "start", "version": 3}, key=key)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def test_a_retried_create_makes_one_task(as_role, work_engine, user_id):
    supervisor, key = as_role("supervisor"), str(uuid.uuid4())
    body = {"kind": "area_sweep", "grid_code": DEMO_GRID, "title": "片区排查（重试）",
            "assignee_id": user_id("demo_worker")}
    first, second = supervisor.post("/tasks", body, key=key), supervisor.post("/tasks", body, key=key)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    with work_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tasks WHERE title = '片区排查（重试）'")).scalar_one() == 1


def test_the_database_refuses_to_change_or_remove_events(new_task, work_engine):
    task = new_task()
    for statement in ("UPDATE task_events SET note = 'x' WHERE task_id = :t",
                      "DELETE FROM task_events WHERE task_id = :t", "DELETE FROM tasks WHERE id = :t"):
        with pytest.raises(DBAPIError), work_engine.begin() as conn:
            conn.execute(text(statement), {"t": task["id"]})
    with pytest.raises(DBAPIError, match="append-only"), work_engine.begin() as conn:
        conn.execute(text("TRUNCATE task_events CASCADE"))
    assert len(_events(work_engine, task["id"])) == 2


def test_extension_asked_by_the_worker_and_granted_by_the_supervisor(as_role, new_task, clock):
    worker, supervisor = as_role("worker"), as_role("supervisor")
    task = new_task()
    until = (clock() + __import__("datetime").timedelta(hours=20)).isoformat()
    task = worker.act(task, "request_extension", until=until, reason="住户外出").json()["task"]
    assert task["extension_requested_until"] is not None and task["status"] == "dispatched"
    task = supervisor.act(task, "grant_extension").json()["task"]
    assert task["due_at"] == until and task["extension_count"] == 1 and task["extension_requested_until"] is None


def test_no_worker_on_duty_falls_back_to_a_neighbouring_grid(as_role, work_engine):
    with work_engine.begin() as conn:
        conn.execute(text("UPDATE users SET on_duty = false WHERE id IN (SELECT user_id FROM user_grids ug "
                          "JOIN grids g ON g.id = ug.grid_id WHERE g.code = '440605011001002')"))
    try:
        task = as_role("supervisor").post("/tasks", {"kind": "lead_verification", "grid_code": "440605011001002",
                                                     "title": "邻格派遣"}).json()
        with work_engine.connect() as conn:
            grids = conn.execute(text(
                "SELECT g.code, ST_Intersects(g.geom, (SELECT geom FROM grids WHERE code = '440605011001002')) "
                "FROM user_grids ug JOIN grids g ON g.id = ug.grid_id WHERE ug.user_id = :u"),
                {"u": task["assignee_id"]}).all()
        assert task["status"] == "dispatched" and task["sla_minutes"] == 120
        assert grids and all(code != "440605011001002" and touches for code, touches in grids)
        assert as_role("supervisor").get(f"/tasks/{task['id']}").json()["events"][1]["detail"]["auto"] is True
    finally:
        with work_engine.begin() as conn:
            conn.execute(text("UPDATE users SET on_duty = true"))


def test_a_retried_photo_upload_is_one_photo_even_with_a_new_multipart_boundary(as_role, new_task, work_engine):
    worker, task, key = as_role("worker"), new_task(), str(uuid.uuid4())
    answers = [worker.http.post(f"{worker.base}/api/v1/tasks/{task['id']}/photos", headers=worker._headers(key),
                                files={"photo": ("visit.png", _png(), "image/png")}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201] and answers[0].json() == answers[1].json()
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    with work_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM task_photos WHERE task_id = :t"),
                            {"t": task["id"]}).scalar_one() == 1


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/tasks", {"kind": "home_visit", "grid_code": DEMO_GRID, "title": "x", "person_key": "abc"}, "person_key"),
    ("/tasks", {"kind": "home_visit", "grid_code": 440605011001001, "title": "x"}, "grid_code"),
    ("/tasks", {"kind": "home_visit", "grid_code": DEMO_GRID, "title": "x", "detail": "长" * 1001}, "detail"),
    ("/tasks", {"kind": "home_visit", "grid_code": DEMO_GRID, "title": "x", "dispatch": "yes"}, "dispatch"),
    ("/tasks", {"kind": "home_visit", "grid_code": DEMO_GRID}, "title"),
])
def test_malformed_requests_name_the_field(as_role, path, body, field):
    response = as_role("supervisor").post(path, body)
    assert response.status_code == 422 and response.json()["field"] == field


def test_unknown_api_paths_answer_json(as_role):
    for path in ("/nope", "/tasks/abc"):
        response = as_role("worker").get(path)
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
    assert as_role("worker").get("/leads?status=bogus").json()["field"] == "status"


def test_a_supervisor_lists_the_workers_he_may_dispatch_to(as_role):
    workers = as_role("supervisor").get("/workers").json()["workers"]
    assert workers and all(code.startswith(DEMO_GRID[:12]) for w in workers for code in w["grid_codes"])
    demo = next(w for w in workers if w["username"] == "demo_worker")
    assert demo["grid_codes"] == [DEMO_GRID] and demo["open_tasks"] > 0
    assert as_role("worker").get("/workers").status_code == 403
