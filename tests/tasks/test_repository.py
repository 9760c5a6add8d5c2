"""The task repository as the dispatch console uses it: the worker's report as evidence (photos, position and
its distance from the grid), a far report closed only when confirmed, the console's search, filters and paging
in the actor's scope, and timelines that name people."""

import io
from datetime import datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import load_actor
from gis.errors import Conflict
from tasks.photos import store_photo
from tasks.repository import NewTask, TaskFilter, create_task, get_task, list_tasks, task_place, transition
from tests.conftest import Clock

WORKER_GRID = "440605011001001"  # demo_worker's grid, in demo_supervisor's community
OTHER_COMMUNITY_GRID = "440605011004001"  # 叠二社区, another community of the same town


def actor(conn, username: str) -> Actor:
    user_id = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
    return load_actor(conn, user_id)


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def handled_task(conn, title: str, now: datetime, north_deg: float = 0.02, photo: bool = True) -> dict:
    """A task of demo_worker's grid that he accepted, started and reported on with a temperature, a photo and
    a position ``north_deg`` north of the grid's northern edge (0: inside the grid); returns it as get_task does."""
    supervisor, worker = actor(conn, "demo_supervisor"), actor(conn, "demo_worker")
    task = create_task(conn, Actor.system(), NewTask("home_visit", WORKER_GRID, title, dispatch=False), now)
    task = transition(conn, supervisor, task["id"], "dispatch", task["version"], {"assignee_id": worker.user_id},
                      now)["task"]
    for action in ("accept", "start"):
        task = transition(conn, worker, task["id"], action, task["version"], {}, now)["task"]
    spot = conn.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_YMax(geom) FROM grids WHERE code = :c"),
                        {"c": WORKER_GRID}).one()
    lat = spot[1] + north_deg if north_deg else conn.execute(text(
        "SELECT ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE code = :c"), {"c": WORKER_GRID}).scalar_one()
    photos = [store_photo(conn, worker, task["id"], photo_bytes(), now)["id"]] if photo else []
    transition(conn, worker, task["id"], "handle", task["version"],
               {"result": "已入户核查", "temperature": 36.8, "photos": photos,
                "location": {"lon": spot[0], "lat": lat}}, now)
    return get_task(conn, supervisor, task["id"], now)


def test_a_far_report_shows_its_evidence_and_closes_only_when_confirmed(work_engine):
    now = Clock()()
    with work_engine.begin() as conn:
        supervisor = actor(conn, "demo_supervisor")
        task = handled_task(conn, "远处反馈", now)
        report = task["report"]
        assert report["result"] == "已入户核查" and report["temperature"] == 36.8 and len(report["photos"]) == 1
        assert 2000 < report["distance_m"] < 2400 and report["far"] is True
        assert report["by"] == "演示网格员", "the report names the worker, not his username"
        assert {e["actor_name"] for e in task["events"] if e["action"] == "handle"} == {"演示网格员"}
        place = task_place(conn, supervisor, task["id"], now)
        assert [f["properties"]["role"] for f in place["features"]] == ["grid", "report", "gap"]

        with pytest.raises(Conflict) as refused:
            transition(conn, supervisor, task["id"], "close", task["version"], {}, now)
        assert refused.value.code == "far_from_grid"
        with pytest.raises(Conflict):  # only a true flag confirms
            transition(conn, supervisor, task["id"], "close", task["version"], {"confirm_far": "yes"}, now)
        closed = transition(conn, supervisor, task["id"], "close", task["version"], {"confirm_far": True}, now)
        assert closed["task"]["status"] == "closed"
        assert 2000 < closed["event"]["detail"]["far_from_grid_m"] < 2400

        near = handled_task(conn, "网格内反馈", now, north_deg=0, photo=False)
        assert near["report"]["distance_m"] == 0 and near["report"]["far"] is False
        assert transition(conn, supervisor, near["id"], "close", near["version"], {}, now)["task"]["status"] == \
            "closed", "a report made inside the grid needs no confirmation"


def test_the_console_searches_filters_and_pages_in_the_actors_scope(work_engine):
    now = Clock()()
    with work_engine.begin() as conn:
        supervisor, worker = actor(conn, "demo_supervisor"), actor(conn, "demo_worker")
        system = Actor.system()
        made = [create_task(conn, system, NewTask("area_sweep", WORKER_GRID, f"筛选测试 {i}", dispatch=False), now)
                for i in range(7)]
        commander = actor(conn, "demo_commander")
        other = create_task(conn, commander, NewTask("area_sweep", OTHER_COMMUNITY_GRID, "筛选测试 越界",
                                                     dispatch=False), now)
        visit = create_task(conn, system, NewTask("home_visit", WORKER_GRID, "筛选测试 走访",
                                                  assignee_id=worker.user_id), now)
        transition(conn, worker, visit["id"], "request_extension", visit["version"],
                   {"until": (now + timedelta(days=3)).isoformat(), "reason": "雨天"}, now)
        grid_name = conn.execute(text("SELECT name FROM grids WHERE code = :c"), {"c": WORKER_GRID}).scalar_one()

        def ids(**where) -> tuple[set[int], int]:
            found, total = list_tasks(conn, supervisor, TaskFilter(**where), now)
            return {t["id"] for t in found}, total

        mine = {t["id"] for t in made} | {visit["id"]}
        found, total = ids(search="筛选测试", limit=100)
        assert found == mine and total == 8, "the other community's task stays out of the supervisor's search"
        assert other["id"] not in ids(search=OTHER_COMMUNITY_GRID)[0]
        assert mine <= ids(search=grid_name, limit=500)[0], "a grid is found by its name"
        assert mine <= ids(search=WORKER_GRID[-6:], limit=500)[0], "and by a piece of its code"
        assert ids(search="筛选测试", kinds=("home_visit",))[0] == {visit["id"]}
        assert ids(search="筛选测试", assignee_id=worker.user_id)[0] == {visit["id"]}
        assert ids(search="筛选测试", extension_pending=True)[0] == {visit["id"]}
        assert ids(search="筛选测试", statuses=("created",))[0] == {t["id"] for t in made}
        assert ids(search="筛选测试", overdue=True)[0] == set()
        assert ids(search="100%_")[1] == 0, "the search's own wildcards are taken literally"

        first, total = list_tasks(conn, supervisor, TaskFilter(search="筛选测试", limit=3), now)
        second, _ = list_tasks(conn, supervisor, TaskFilter(search="筛选测试", limit=3, offset=3), now)
        last, _ = list_tasks(conn, supervisor, TaskFilter(search="筛选测试", limit=3, offset=6), now)
        assert total == 8 and [len(first), len(second), len(last)] == [3, 3, 2]
        assert {t["id"] for t in first + second + last} == mine, "pages neither repeat nor skip a task"
        assert all(t["grid_name"] == grid_name for t in first), "a listed task carries its grid's name"
