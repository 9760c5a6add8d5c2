"""The dispatch console: what its panels and actions do, without a browser; who may use it, over HTTP; then a
supervisor at work in a real headless Chromium."""

import json

import plotly.utils
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import load_actor
from app import create_app
from gis.errors import Conflict, NotFound
from pages.dispatch import act, grid_panel
from pages.task_panels import task_detail
from tasks.repository import NewTask, create_task, get_task
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import Clock, signed_in
from tests.persons import flag_person

OWN_GRID = "440605011001002"  # in demo_supervisor's community 440605011001
OTHER_GRID = "440605011002001"  # another community of the same town


def rendered(component) -> str:
    """A component tree as the JSON Dash sends to the browser (children included)."""
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


def _actor(conn, username: str) -> Actor:
    user_id = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
    return load_actor(conn, user_id)


def test_a_supervisor_creates_and_acts_in_his_community_only(work_engine):
    now = Clock()()
    with work_engine.begin() as conn:
        supervisor = _actor(conn, "demo_supervisor")
        done, task_id = act(conn, supervisor, {"type": "create-task", "grid": OWN_GRID},
                            {"kind": "home_visit", "title": "调度台新建", "lang": "zh"}, now)
        assert done == f"创建 #{task_id}"
        task = get_task(conn, supervisor, task_id, now)
        assert task["grid_code"] == OWN_GRID and task["title"] == "调度台新建"
        with pytest.raises(NotFound):
            act(conn, supervisor, {"type": "create-task", "grid": OTHER_GRID},
                {"kind": "home_visit", "title": "越界", "lang": "zh"}, now)
        with pytest.raises(NotFound):
            grid_panel(conn, supervisor, OTHER_GRID, "zh", now)
        stale = {"type": "task-act", "action": "cancel", "task": task_id, "version": task["version"] - 1}
        with pytest.raises(Conflict) as refused:
            act(conn, supervisor, stale, {"reason": "重复", "lang": "zh"}, now)
        assert refused.value.code == "stale_version"
        current = {**stale, "version": task["version"]}
        assert act(conn, supervisor, current, {"reason": "重复", "lang": "en"}, now)[0] == f"Cancel #{task_id}"
        assert get_task(conn, supervisor, task_id, now)["status"] == "cancelled"


def test_the_task_panel_offers_each_role_only_its_own_actions(work_engine):
    now = Clock()()
    with work_engine.begin() as conn:
        system = Actor.system()
        task = create_task(conn, system, NewTask("area_sweep", OWN_GRID, "面板测试", dispatch=False), now)
        panel = rendered(task_detail(task, "supervisor", [], "zh"))
        worker_panel = rendered(task_detail(task, "worker", [], "zh"))
        assert '"action": "dispatch"' in panel and '"action": "cancel"' in panel
        assert '"action": "close"' not in panel, "a task in created cannot be closed"
        assert '"type": "task-act"' not in worker_panel, "a worker has no action on an undispatched task"


def test_the_grid_panel_shows_masked_persons_only(work_engine):
    key = "d15" + "0" * 61
    flag_person(work_engine, key, OWN_GRID, name="陈*华", id_masked="440605********1234", phone="139****5678")
    try:
        with work_engine.connect() as conn:
            shown = rendered(grid_panel(conn, _actor(conn, "demo_supervisor"), OWN_GRID, "zh", Clock()()))
    finally:
        with work_engine.begin() as conn:
            conn.execute(text("DELETE FROM persons WHERE person_key = :key"), {"key": key})
    assert "陈*华" in shown and "440605********1234" in shown and "139****5678" in shown
    assert "nh-chip-red" in shown


def _show_grid(client, code: str):
    body = {"output": "dispatch-grid-panel.children", "outputs": {"id": "dispatch-grid-panel", "property": "children"},
            "inputs": [{"id": "dispatch-grid", "property": "data", "value": code},
                       {"id": "dispatch-changed", "property": "data", "value": 0}],
            "state": [{"id": "dispatch-lang", "property": "data", "value": "zh"}],
            "changedPropIds": ["dispatch-grid.data"]}
    return client.post("/dispatch/_dash-update-component", json=body)


def test_the_console_and_its_callbacks_refuse_whoever_may_not_dispatch(work_engine):
    app = create_app(work_engine).server
    worker, supervisor, stranger = app.test_client(), app.test_client(), app.test_client()
    signed_in(worker, "demo_worker")
    signed_in(supervisor, "demo_supervisor")
    layout = json.dumps(worker.get("/dispatch/_dash-layout").get_json(), ensure_ascii=False)
    assert "page-refusal" in layout and "dispatch-map" not in layout
    assert "dispatch-map" in json.dumps(supervisor.get("/dispatch/_dash-layout").get_json())
    assert _show_grid(worker, OWN_GRID).status_code == 204, "a worker's forged callback reads nothing"
    assert _show_grid(stranger, OWN_GRID).status_code == 204
    mine = _show_grid(supervisor, OWN_GRID)
    assert mine.status_code == 200 and OWN_GRID in mine.get_data(as_text=True)
    other = json.dumps(_show_grid(supervisor, OTHER_GRID).get_json(), ensure_ascii=False)
    assert "不在您的范围内" in other and "nh-task-list" not in other


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1600, 1000)
    yield driver
    close(driver)


@pytest.mark.browser
def test_a_supervisor_picks_a_grid_on_the_map_and_dispatches_a_new_task(work_engine, browser):
    with work_engine.connect() as conn:
        grids = len(_actor(conn, "demo_supervisor").grid_ids)
    with LiveServer(create_app(work_engine).server) as live:
        log_in(browser, live.url, "demo_supervisor")
        wait = waiting(browser, 60)
        wait.until(lambda d: d.current_url.endswith("/dispatch/"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine")) == grids)
        assert len(browser.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine, path.nh-grid-other")) == 1042
        ActionChains(browser).move_to_element(browser.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine")[0]) \
            .click().perform()
        wait.until(lambda d: d.find_elements(By.ID, "grid-panel-code"))
        code = browser.find_element(By.ID, "grid-panel-code").text
        title = browser.find_element(By.CSS_SELECTOR, "input.nh-create-title, .nh-create-title input")
        title.send_keys("浏览器派遣测试")
        browser.find_element(By.CSS_SELECTOR, ".nh-create-button").click()
        wait.until(lambda d: "创建 #" in d.find_element(By.ID, "dispatch-message").text)
        wait.until(lambda d: "浏览器派遣测试" in d.find_element(By.ID, "task-detail").text)
        screenshot(browser, "dispatch")
    with work_engine.connect() as conn:
        row = conn.execute(text("SELECT grid_code, status, created_by FROM tasks WHERE title = '浏览器派遣测试'")).one()
    assert row.grid_code == code and row.created_by == "demo_supervisor"
    assert row.status in ("created", "dispatched")


@pytest.mark.browser
def test_a_pick_is_marked_in_the_browser_without_redrawing_the_lists(work_engine, browser):
    def picked(line) -> bool:
        return "nh-selected" in line.get_attribute("class")

    def task_id(line) -> int:
        return json.loads(line.find_element(By.CSS_SELECTOR, ".nh-task-button").get_attribute("id"))["id"]

    clock = Clock()
    with work_engine.begin() as conn:
        grid = _actor(conn, "demo_supervisor").grid_codes[0]
        for title in ("标记测试一", "标记测试二"):
            create_task(conn, Actor.system(), NewTask("area_sweep", grid, title), clock())
    with LiveServer(create_app(work_engine, clock).server) as live:  # a still clock: no minute turns over
        log_in(browser, live.url, "demo_supervisor")
        wait = waiting(browser, 60)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")) >= 2)
        first, second = browser.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")[:2]
        first.find_element(By.CSS_SELECTOR, ".nh-task-button").click()
        wait.until(lambda d: picked(first) and f"#{task_id(first)} " in d.find_element(By.ID, "task-detail").text)
        second.find_element(By.CSS_SELECTOR, ".nh-task-button").click()
        wait.until(lambda d: picked(second) and not picked(first)
                   and f"#{task_id(second)} " in d.find_element(By.ID, "task-detail").text)
        mine = browser.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine")[0]
        ActionChains(browser).move_to_element(mine).click().perform()
        wait.until(lambda d: d.find_elements(By.ID, "grid-panel-code"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine[stroke-width='3']")) == 1)
        # the same elements throughout (a redrawn list would have replaced them), and the marks still right
        assert picked(second) and not picked(first)
