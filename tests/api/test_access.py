"""Roles and data scope, enforced by the server: a role × endpoint matrix, and scope leaks checked by content."""

import pytest
from sqlalchemy import text

from tests.api.client import ApiClient
from tests.api.conftest import DEMO_GRID

OTHER_GRID = "440605124001003"  # 狮山: outside the demo worker's grid and the demo supervisor's community


@pytest.fixture(scope="module")
def tasks_here_and_there(as_role):
    """One task in the demo grid, one in a grid of another town (created by the commander)."""
    commander = as_role("commander")
    made = {}
    for name, grid in (("here", DEMO_GRID), ("there", OTHER_GRID)):
        response = commander.post("/tasks", {"kind": "area_sweep", "grid_code": grid, "title": f"范围测试 {name}",
                                             "dispatch": False})
        assert response.status_code == 201, response.text
        made[name] = response.json()
    return made


def _matrix(here: int, there: int) -> list[tuple[str, str, dict]]:
    """(method, path, expected status per role; 'anon' = no login)."""
    everyone_rows = {"commander": 200, "admin": 200, "supervisor": 200, "worker": 200, "reporter": 403, "anon": 401}
    central = {"commander": 200, "admin": 200, "supervisor": 404, "worker": 404, "reporter": 403, "anon": 401}
    return [
        ("GET", "/session", {**{r: 200 for r in ("commander", "admin", "supervisor", "worker", "reporter")},
                             "anon": 401}),
        ("GET", "/tasks", everyone_rows),
        ("GET", f"/tasks/{here}", everyone_rows),
        ("GET", f"/tasks/{there}", central),
        ("GET", f"/grids/{DEMO_GRID}/timeline", everyone_rows),
        ("GET", f"/grids/{OTHER_GRID}/timeline", central),
        ("GET", f"/grids/{OTHER_GRID}/persons", central),
        ("GET", "/leads", everyone_rows),
        ("GET", "/stats?level=town", {**{r: 200 for r in ("commander", "admin", "supervisor", "worker", "reporter")},
                                      "anon": 401}),
        ("POST", "/tasks", {"commander": 201, "supervisor": 201, "worker": 403, "reporter": 403, "admin": 403,
                            "anon": 401}),
        ("POST", f"/tasks/{there}/transitions", {"commander": 409, "admin": 403, "supervisor": 404, "worker": 403,
                                                  "reporter": 403, "anon": 401}),
        ("POST", "/sweeps", {"commander": 200, "admin": 200, "supervisor": 403, "worker": 403, "reporter": 403,
                             "anon": 401}),
    ]


BODIES = {"/tasks": {"kind": "area_sweep", "grid_code": DEMO_GRID, "title": "矩阵", "dispatch": False}}


def test_role_by_endpoint_matrix(live, as_role, tasks_here_and_there):
    here, there = tasks_here_and_there["here"]["id"], tasks_here_and_there["there"]["id"]
    failures = []
    for method, path, expected in _matrix(here, there):
        for role, status in expected.items():
            client = ApiClient(live.url) if role == "anon" else as_role(role)
            if method == "GET":
                response = client.get(path)
            else:
                body = BODIES.get(path, {"action": "dispatch", "version": 999})
                response = client.post(path, body)
            if response.status_code != status:
                failures.append(f"{role} {method} {path}: {response.status_code} (expected {status})")
    assert failures == []


def test_a_worker_learns_nothing_about_another_grids_task(as_role, tasks_here_and_there):
    worker = as_role("worker")
    hidden = worker.get(f"/tasks/{tasks_here_and_there['there']['id']}")
    missing = worker.get("/tasks/987654321")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["message"].replace(str(tasks_here_and_there["there"]["id"]), "N") == \
        missing.json()["message"].replace("987654321", "N")
    listed = worker.get("/tasks?limit=1000").json()
    assert listed["tasks"] and all(t["grid_code"] == DEMO_GRID or t["assignee"] == "demo_worker"
                                   for t in listed["tasks"])
    assert worker.get(f"/tasks?grid={OTHER_GRID}").json() == {"tasks": [], "total": 0, "limit": 200, "offset": 0}
    there = tasks_here_and_there["there"]["id"]
    acting = worker.post(f"/tasks/{there}/transitions", {"action": "accept", "version": 1})
    assert acting.status_code == 404 and acting.json()["message"] == hidden.json()["message"]


def test_a_supervisor_sees_his_community_only(as_role, tasks_here_and_there):
    codes = {t["grid_code"][:12] for t in as_role("supervisor").get("/tasks?limit=1000").json()["tasks"]}
    assert codes == {DEMO_GRID[:12]}
    everything = {t["grid_code"] for t in as_role("commander").get("/tasks?limit=1000").json()["tasks"]}
    assert OTHER_GRID in everything


def test_a_reporter_gets_aggregates_only_and_small_counts_suppressed(as_role, work_engine):
    reporter = as_role("reporter")
    assert reporter.get("/tasks").json()["error"] == "PermissionDenied"
    rows = reporter.get("/stats?level=grid").json()["rows"]
    assert len(rows) == 1042 and len({r["code"] for r in rows}) == 1042 and all(r["name"] for r in rows)
    assert all(r[f"persons_{c}"] is None or r[f"persons_{c}"] == 0 or r[f"persons_{c}"] >= 5
               for r in rows for c in ("red", "yellow", "blue", "green"))


def test_a_worker_cannot_dispatch_to_himself_nor_act_on_others_tasks(as_role, user_id, tasks_here_and_there):
    here = as_role("commander").get(f"/tasks/{tasks_here_and_there['here']['id']}").json()
    response = as_role("worker").act(here, "dispatch", assignee_id=user_id("demo_worker"))
    assert response.status_code == 403


def test_a_supervisor_cannot_assign_outside_his_area(as_role, tasks_here_and_there, work_engine):
    with work_engine.connect() as conn:
        outsider = conn.execute(text("SELECT u.id FROM users u JOIN user_grids ug ON ug.user_id = u.id "
                                     "JOIN grids g ON g.id = ug.grid_id WHERE g.code = :g AND u.role = 'worker' "
                                     "LIMIT 1"), {"g": OTHER_GRID}).scalar_one()
    here = as_role("supervisor").get(f"/tasks/{tasks_here_and_there['here']['id']}").json()
    response = as_role("supervisor").act(here, "dispatch", assignee_id=outsider)
    assert response.status_code == 403 and "本辖区" in response.json()["message"]


def test_task_lists_put_open_work_first(as_role):
    tasks = as_role("commander").get("/tasks?limit=1000").json()["tasks"]
    finished = [t["status"] in ("closed", "cancelled") for t in tasks]
    assert finished == sorted(finished), "open tasks first, then the finished ones"
    open_due = [t["due_at"] for t in tasks if t["status"] not in ("closed", "cancelled")]
    assert open_due == sorted(open_due)
