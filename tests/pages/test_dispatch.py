"""The dispatch console: what its panels and actions do, without a browser; who may use it and see a worker's
photos, over HTTP; then a supervisor at work in a real headless Chromium at a desk's 1440 x 900: a far report
closed only after its photo and distance were seen, searching and paging, alerts that light the badge and the
title, leads dismissed only with a reason, and the English page without Chinese."""

import json
from datetime import datetime, timedelta

import plotly.utils
import pytest
from cryptography.fernet import Fernet
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

import pages.dispatch
from accounts.actor import Actor
from accounts.repository import load_actor, save_user
from app import create_app
from gis.errors import Conflict, InvalidRequest, NotFound
from leads.reports import LeadReport
from leads.repository import get_lead, submit_report
from matching.privacy import Vault
from observation.overview import lost_to_follow_up
from pages.dispatch import act, alert_items, grid_panel
from pages.task_panels import lead_detail, lost_list, task_detail
from tasks.alerts import Alert
from tasks.repository import NewTask, create_task, get_task
from tests.browser import LiveServer, chromium, close, log_in, screenshot
from tests.conftest import DEMO_PASSWORD, Clock, signed_in
from tests.language import foreign_text
from tests.observation.test_overview import add_plan
from tests.persons import flag_person
from tests.tasks.test_repository import handled_task

OWN_GRID = "440605011001002"  # in demo_supervisor's community 440605011001
OTHER_GRID = "440605011004001"  # 叠二社区, another community of the same town
VAULT = Vault(b"k" * 32, Fernet.generate_key())


def waiting(driver, seconds: float = 30) -> WebDriverWait:
    """tests.browser.waiting, polling every 0.1 s: a console answers in tens of milliseconds, and the default
    half-second poll added seconds to these tests."""
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


def rendered(component) -> str:
    """A component tree as the JSON Dash sends to the browser (children included)."""
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


def _actor(conn, username: str) -> Actor:
    user_id = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
    return load_actor(conn, user_id)


def _tip_off(conn, grid: str, words: str, now: datetime) -> dict:
    """A public tip-off at a point inside ``grid``."""
    lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                 "WHERE code = :c) g"), {"c": grid}).one()
    return submit_report(conn, LeadReport(words, None, (lon, lat), None), f"test-{words}", "public", VAULT, now)


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
        cancel = {"type": "task-act", "action": "cancel", "task": task_id, "version": task["version"], "confirm": 0}
        with pytest.raises(InvalidRequest):  # cancelling is confirmed next to its button
            act(conn, supervisor, cancel, {"cancel_reason": "重复", "lang": "zh"}, now)
        confirmed = {**cancel, "confirm": 1}
        with pytest.raises(InvalidRequest):  # and needs its own reason
            act(conn, supervisor, confirmed, {"reason": "写在别处", "cancel_reason": "", "lang": "zh"}, now)
        with pytest.raises(Conflict) as refused:
            act(conn, supervisor, {**confirmed, "version": task["version"] - 1}, {"cancel_reason": "重复",
                                                                                  "lang": "zh"}, now)
        assert refused.value.code == "stale_version"
        assert act(conn, supervisor, confirmed, {"cancel_reason": "重复", "lang": "en"}, now)[0] == f"Cancel #{task_id}"
        task = get_task(conn, supervisor, task_id, now)
        assert task["status"] == "cancelled" and task["events"][-1]["detail"]["reason"] == "重复"
        assert task["events"][-1]["actor_name"] == "演示网格长", "the timeline names people"


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
        assert '"name": "cancel_reason"' in panel and "nh-confirm" in panel


def test_a_far_report_is_shown_with_its_photo_and_distance_and_closed_only_once_confirmed(work_engine):
    now = Clock()()
    with work_engine.begin() as conn:
        supervisor = _actor(conn, "demo_supervisor")
        task = handled_task(conn, "面板远处反馈", now)
        panel = rendered(task_detail(task, "supervisor", [], "en"))
        photo = task["report"]["photos"][0]
        assert f'"src": "/api/v1/photos/{photo}"' in panel and "nh-photo-thumb" in panel
        assert f"About {task['report']['distance_m']:,.0f} m from the task's grid (far)" in panel
        assert "nh-far-flag" in panel and "36.8 \u2103" in panel and "已入户核查" in panel
        assert f'"action": "close", "task": {task["id"]}, "version": {task["version"]}, "confirm": 1' in panel
        assert '"confirm": 0}' not in panel.split('"action": "close"')[1][:60], "no unconfirmed close button"
        close = {"type": "task-act", "action": "close", "task": task["id"], "version": task["version"], "confirm": 0}
        with pytest.raises(Conflict) as refused:
            act(conn, supervisor, close, {"lang": "zh"}, now)
        assert refused.value.code == "far_from_grid"
        assert act(conn, supervisor, {**close, "confirm": 1}, {"lang": "zh"}, now)[0] == f"结案 #{task['id']}"


def test_a_lead_lists_every_report_and_is_dismissed_only_with_a_reason(work_engine):
    now = Clock()()
    with work_engine.begin() as conn:
        supervisor = _actor(conn, "demo_supervisor")
        lead = _tip_off(conn, OWN_GRID, "楼道有人发热", now)
        _tip_off(conn, OWN_GRID, "同一楼道再次举报", now + timedelta(minutes=5))
        shown = get_lead(conn, supervisor, lead["id"])
        panel = rendered(lead_detail(shown, "zh", actionable=True))
        assert "楼道有人发热" in panel and "同一楼道再次举报" in panel and "全部举报（2 条）" in panel
        dismiss = {"type": "lead-act", "action": "dismiss", "id": lead["id"]}
        with pytest.raises(InvalidRequest):
            act(conn, supervisor, dismiss, {"dismiss_reason": "  ", "lang": "zh"}, now)
        assert act(conn, supervisor, dismiss, {"dismiss_reason": "重复举报", "lang": "zh"}, now)[0] == \
            f"已关闭线索 #{lead['id']}"
        dismissed = get_lead(conn, supervisor, lead["id"])
        assert dismissed["status"] == "dismissed"
        assert dismissed["dismissal"]["reason"] == "重复举报" and dismissed["dismissal"]["by"] == "演示网格长"


def test_alerts_open_their_task_or_lead_and_name_the_grid():
    at = datetime.fromisoformat("2026-12-03T06:00:00+00:00")
    items = rendered(alert_items([Alert("lead", at, OWN_GRID, "桂一社区第2网格", None, 7),
                                  Alert("overdue", at, OWN_GRID, "桂一社区第2网格", 9, None)], "en"))
    assert '"type": "lead-pick", "id": 7' in items and '"type": "task-pick", "id": 9' in items
    assert "New tip-off" in items and "Task overdue" in items and "桂一社区第2网格" in items


def test_the_grid_panel_shows_masked_persons_under_headers(work_engine):
    key = "d15" + "0" * 61
    flag_person(work_engine, key, OWN_GRID, name="陈*华", id_masked="440605********1234", phone="139****5678")
    try:
        with work_engine.connect() as conn:
            shown = rendered(grid_panel(conn, _actor(conn, "demo_supervisor"), OWN_GRID, "en", Clock()()))
    finally:
        with work_engine.begin() as conn:
            conn.execute(text("DELETE FROM persons WHERE person_key = :key"), {"key": key})
    assert "陈*华" in shown and "440605********1234" in shown and "139****5678" in shown
    assert "nh-chip-red" in shown and '"Name"' in shown and '"ID number"' in shown and '"Phone"' in shown


def _observed(conn, key: str, now: datetime) -> int:
    """A person in observation in OWN_GRID since three days: reported 26 h ago, then missed twice."""
    return add_plan(conn, key, OWN_GRID, now - timedelta(days=3), checks=(
        (now - timedelta(hours=26), "done", now - timedelta(hours=26), 37.8),
        (now - timedelta(hours=14), "missed", None, None), (now - timedelta(hours=2), "missed", None, None),
        (now + timedelta(hours=10), "due", None, None)))


def test_the_grid_panel_shows_follow_ups_and_plan_events_and_the_lost_list(work_engine):
    key = "f" * 60 + "d001"
    now = Clock()()
    flag_person(work_engine, key, OWN_GRID, colour="yellow", name="林*观", id_masked="440605********4321")
    with work_engine.begin() as conn:
        plan = _observed(conn, key, now)
    try:
        with work_engine.connect() as conn:
            supervisor = _actor(conn, "demo_supervisor")
            zh = rendered(grid_panel(conn, supervisor, OWN_GRID, "zh", now))
            en = rendered(grid_panel(conn, supervisor, OWN_GRID, "en", now))
            lost, total = lost_to_follow_up(conn, supervisor, now)
            shown = rendered(lost_list(lost, total, "en"))
    finally:
        with work_engine.begin() as conn:
            conn.execute(text("DELETE FROM observation_plans WHERE id = :p"), {"p": plan})
            conn.execute(text("DELETE FROM persons WHERE person_key = :key"), {"key": key})
    assert "居家观察随访（已脱敏）" in zh and "林*观" in zh and "440605********4321" in zh
    assert "第 4/14 天" in zh and "37.8 ℃" in zh and "2（连续 2）" in zh and "nh-follow-lost" in zh
    assert "建立居家观察" in zh, "the plan's creation is on the grid's timeline"
    assert "Day 4 of 14" in en and "2 (2 in a row)" in en and "Observation plan created" in en
    assert plan in [r["plan_id"] for r in lost]
    assert "林*观" in shown and "silent for 26 h" in shown and '"lost-pick"' in shown


def test_a_lost_person_opens_his_grid_for_the_desk_only(server):
    body = {"outputs": {"id": "dispatch-grid", "property": "data"},
            "inputs": [[{"id": {"type": "lost-pick", "plan": 1, "grid": OWN_GRID}, "property": "n_clicks",
                         "value": 1}]],
            "changedPropIds": [json.dumps({"grid": OWN_GRID, "plan": 1, "type": "lost-pick"},
                                          separators=(",", ":")) + ".n_clicks"], "state": []}
    dependencies = server.test_client().get("/dispatch/_dash-dependencies").get_json()
    body["output"] = next(d["output"] for d in dependencies if "lost-pick" in json.dumps(d["inputs"]))
    worker = signed_in(server.test_client(), "demo_worker")
    assert worker.post("/dispatch/_dash-update-component", json=body).status_code == 204
    supervisor = signed_in(server.test_client(), "demo_supervisor")
    picked = supervisor.post("/dispatch/_dash-update-component", json=body)
    assert picked.status_code == 200 and picked.get_json()["response"]["dispatch-grid"]["data"] == OWN_GRID


def _show_grid(client, code: str):
    body = {"output": "dispatch-grid-panel.children", "outputs": {"id": "dispatch-grid-panel", "property": "children"},
            "inputs": [{"id": "dispatch-grid", "property": "data", "value": code},
                       {"id": "dispatch-changed", "property": "data", "value": 0}],
            "state": [{"id": "dispatch-note", "property": "data", "value": None},
                      {"id": "dispatch-lang", "property": "data", "value": "zh"}],
            "changedPropIds": ["dispatch-grid.data"]}
    return client.post("/dispatch/_dash-update-component", json=body)


@pytest.fixture(scope="module")
def clock():
    return Clock()


@pytest.fixture(scope="module")
def server(work_engine, clock):
    """The module's one app (on a still clock: no minute turns over to redraw the lists while a browser test reads
    them), for its HTTP tests and its live server."""
    return create_app(work_engine, clock).server


def test_the_console_and_its_callbacks_refuse_whoever_may_not_dispatch(server):
    app = server
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


def test_a_workers_photo_is_served_only_within_the_viewers_scope(work_engine, server):
    now = Clock()()
    with work_engine.begin() as conn:
        task = handled_task(conn, "照片范围", now)
        community = conn.execute(text("SELECT community_id FROM grids WHERE code = :c"), {"c": OTHER_GRID}).scalar()
        save_user(conn, "test_other_supervisor", "supervisor", DEMO_PASSWORD, "别社区网格长", community)
    url = f"/api/v1/photos/{task['report']['photos'][0]}"
    app = server
    supervisor = signed_in(app.test_client(), "demo_supervisor")
    seen = supervisor.get(url)
    assert seen.status_code == 200 and seen.mimetype == "image/png" and seen.data[:4] == b"\x89PNG"
    assert signed_in(app.test_client(), "test_other_supervisor").get(url).status_code == 404
    assert app.test_client().get(url).status_code == 401


# -- in the browser --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    driver = chromium(1440, 900)
    yield driver
    close(driver)


@pytest.fixture(scope="module")
def live(server, browser):
    """The module's app served for its browser tests, its console refreshing every 1.5 s (a desk's refresh is
    10 s; the test waits for one refresh, whatever its length); the browser logged in as demo_supervisor once."""
    refresh, pages.dispatch.REFRESH_MS = pages.dispatch.REFRESH_MS, 1500
    try:
        with LiveServer(server) as running:
            log_in(browser, running.url, "demo_supervisor")
            waiting(browser, 30).until(lambda d: d.current_url.endswith("/dispatch/"))
            yield running
    finally:
        pages.dispatch.REFRESH_MS = refresh


def _open_console(browser, live, lang: str = "zh") -> None:
    """The console in ``lang``: the page already open when it is (a desk keeps its console open; a page load
    costs seconds), its search cleared; else loaded."""
    shown = browser.find_elements(By.CSS_SELECTOR, ".nh-dispatch-page") if browser.current_url.startswith(
        f"{live.url}/dispatch/") else []
    if shown and shown[0].get_attribute("lang") == lang:
        _search(browser, "")
        return
    browser.get(f"{live.url}/lang/{lang}?next=/dispatch/")
    waiting(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item, "
                                                                          "#dispatch-tasks .nh-empty"))


def _click(browser, css: str) -> None:
    """Click ``css`` once it is there, again if a refresh redrew it in between."""
    waiting(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def _settled(browser) -> None:
    """Wait until the map has zoomed to the picked task (its outline stays put), so that a click lands where
    the grid is drawn."""
    places: list[str] = []

    def still(d) -> bool:
        places.append(d.execute_script("var p = document.querySelector('path.nh-pick-grid'); "
                                       "return p ? JSON.stringify(p.getBoundingClientRect()) : '';"))
        return len(places) > 2 and places[-1] != "" and places[-1] == places[-2] == places[-3]

    waiting(browser, 30).until(still)


def _search(browser, words: str) -> None:
    box = browser.find_element(By.ID, "dispatch-search")
    box.clear()
    box.send_keys(words + "\n")


@pytest.mark.browser
def test_the_supervisor_closes_a_far_report_only_after_seeing_its_photo_and_distance(work_engine, browser, live,
                                                                                      clock):
    with work_engine.begin() as conn:
        task = handled_task(conn, "浏览器远处反馈核查", clock())
    _open_console(browser, live)
    wait = waiting(browser, 30)
    _search(browser, "浏览器远处反馈")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")) == 1
               and "共 1 条" in d.find_element(By.ID, "dispatch-page").text)
    _click(browser, "#dispatch-tasks .nh-task-button")
    wait.until(lambda d: "浏览器远处反馈核查" in d.find_element(By.ID, "task-detail").text)
    thumb = browser.find_element(By.CSS_SELECTOR, "#task-evidence img.nh-photo-thumb")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) == 64)
    evidence = browser.find_element(By.ID, "task-evidence").text
    assert "远离任务网格" in evidence and f"{task['report']['distance_m']:,.0f} 米" in evidence
    assert "36.8 ℃" in evidence and "已入户核查" in evidence
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "path.nh-pick-grid")
               and d.find_elements(By.CSS_SELECTOR, "path.nh-report-far"))
    panes = browser.execute_script(  # outlines, checkpoints and the pick are drawn above the grid fill
        "return ['overlay', 'nh-dispatch-outlines', 'nh-dispatch-points', 'nh-dispatch-pick'].map(function (n) {"
        "return +getComputedStyle(document.querySelector('.leaflet-' + n + '-pane')).zIndex; });")
    assert panes == sorted(panes) and len(set(panes)) == 4, panes
    assert browser.find_elements(By.CSS_SELECTOR, ".leaflet-nh-dispatch-outlines-pane path")
    thumb.click()
    wait.until(lambda d: d.find_element(By.ID, "nh-photo-viewer").is_displayed())
    screenshot(browser, "dispatch-photo")
    browser.find_element(By.ID, "nh-photo-viewer").click()
    wait.until(lambda d: not d.find_element(By.ID, "nh-photo-viewer").is_displayed())
    confirm = browser.find_element(By.CSS_SELECTOR, "#task-detail .nh-action-close.nh-confirmed")
    assert not confirm.is_displayed(), "closing a far report needs a second, deliberate step"
    browser.find_element(By.CSS_SELECTOR, "#task-detail details.nh-action-close > summary").click()
    wait.until(lambda d: confirm.is_displayed())
    warning = browser.find_element(By.CSS_SELECTOR, "#task-detail details.nh-action-close .nh-warning").text
    assert f"{task['report']['distance_m']:,.0f} 米" in warning
    assert foreign_text(browser, "zh") == [], "the Chinese console shows no English"
    screenshot(browser, "dispatch-far-report")
    confirm.click()
    wait.until(lambda d: f"结案 #{task['id']}" in d.find_element(By.CSS_SELECTOR, "#task-detail .nh-note").text)
    with work_engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM tasks WHERE id = :t"), {"t": task["id"]}).scalar() == "closed"


@pytest.mark.browser
def test_a_new_tip_off_lights_the_badge_and_the_title_within_one_refresh(work_engine, browser, live, clock):
    with work_engine.begin() as conn:
        for i in range(27):  # enough for two pages
            create_task(conn, Actor.system(), NewTask("area_sweep", OWN_GRID, f"翻页测试 {i:02d}", dispatch=False),
                        clock())
    _open_console(browser, live)
    wait = waiting(browser, 30)
    _search(browser, "翻页测试")
    wait.until(lambda d: "第 1–25 条，共 27 条" in d.find_element(By.ID, "dispatch-page").text)
    _click(browser, "#dispatch-next")
    wait.until(lambda d: "第 26–27 条，共 27 条" in d.find_element(By.ID, "dispatch-page").text
               and len(d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")) == 2)

    browser.find_element(By.ID, "dispatch-alert-badge").click()  # everything so far seen
    wait.until(lambda d: d.find_element(By.ID, "dispatch-alert-number").text == "0" and d.title == "调度台")
    with work_engine.begin() as conn:  # a tip-off after the desk looked; the server's clock moves on past it
        lead = _tip_off(conn, OWN_GRID, "浏览器测试新线索", clock() + timedelta(seconds=1))
    clock.advance(seconds=2)
    wait.until(lambda d: d.find_element(By.ID, "dispatch-alert-number").text == "1")
    assert browser.title == "(1) 调度台"
    assert browser.execute_script("return window.nanhai.dispatch.beeps || 0") >= 1, "the sound is on by default"
    screenshot(browser, "dispatch-alert")

    _click(browser, "#dispatch-alert-list .nh-alert-lead button")
    wait.until(lambda d: "浏览器测试新线索" in d.find_element(By.ID, "lead-detail").text)
    browser.find_element(By.CSS_SELECTOR, "#lead-detail details > summary").click()
    dismiss = browser.find_element(By.CSS_SELECTOR, "#lead-detail .nh-lead-dismiss")
    wait.until(lambda d: dismiss.is_displayed())
    dismiss.click()
    wait.until(lambda d: "原因" in d.find_element(By.CSS_SELECTOR, "#lead-detail .nh-note").text)
    browser.find_element(By.CSS_SELECTOR, "#lead-detail details > summary").click()
    browser.find_element(By.CSS_SELECTOR, "#lead-detail textarea").send_keys("测试：重复举报")
    browser.find_element(By.CSS_SELECTOR, "#lead-detail .nh-lead-dismiss").click()
    wait.until(lambda d: f"已关闭线索 #{lead['id']}" in d.find_element(By.CSS_SELECTOR, "#lead-detail .nh-note").text)

    browser.find_element(By.ID, "dispatch-sound-toggle").click()
    wait.until(lambda d: d.find_element(By.ID, "dispatch-sound-toggle").text == "提示音：关")
    assert browser.execute_script("return localStorage.getItem('dispatch-sound')") == "false"


@pytest.mark.browser
def test_a_pick_is_marked_in_the_browser_without_redrawing_the_lists(work_engine, browser, live, clock):
    def picked(line) -> bool:
        return "nh-selected" in line.get_attribute("class")

    def task_id(line) -> int:
        return json.loads(line.find_element(By.CSS_SELECTOR, ".nh-task-button").get_attribute("id"))["id"]

    with work_engine.begin() as conn:
        grid = _actor(conn, "demo_supervisor").grid_codes[0]
        for title in ("标记测试一", "标记测试二"):
            create_task(conn, Actor.system(), NewTask("area_sweep", grid, title), clock())
    _open_console(browser, live)
    wait = waiting(browser, 30)
    _search(browser, "标记测试")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")) == 2)
    first, second = browser.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")[:2]
    first.find_element(By.CSS_SELECTOR, ".nh-task-button").click()
    wait.until(lambda d: picked(first) and f"#{task_id(first)} " in d.find_element(By.ID, "task-detail").text)
    second.find_element(By.CSS_SELECTOR, ".nh-task-button").click()
    wait.until(lambda d: picked(second) and not picked(first)
               and f"#{task_id(second)} " in d.find_element(By.ID, "task-detail").text)
    _settled(browser)
    mine = browser.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine")[0]
    ActionChains(browser).move_to_element(mine).click().perform()
    wait.until(lambda d: d.find_elements(By.ID, "grid-panel-code"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine[stroke-width='3']")) == 1)
    assert picked(second) and not picked(first)

    # a new task from the grid's form: created, and its outcome shown next to the form's button
    code = browser.find_element(By.ID, "grid-panel-code").get_attribute("data-code")
    browser.find_element(By.CSS_SELECTOR, "input.nh-create-title, .nh-create-title input").send_keys("浏览器派遣测试")
    browser.find_element(By.CSS_SELECTOR, ".nh-create-button").click()
    wait.until(lambda d: "创建 #" in d.find_element(By.CSS_SELECTOR, ".nh-create .nh-note").text)
    wait.until(lambda d: "浏览器派遣测试" in d.find_element(By.ID, "task-detail").text)
    screenshot(browser, "dispatch")
    with work_engine.connect() as conn:
        row = conn.execute(text("SELECT grid_code, created_by FROM tasks WHERE title = '浏览器派遣测试'")).one()
    assert row.grid_code == code and row.created_by == "demo_supervisor"


@pytest.mark.browser
def test_the_english_console_shows_no_chinese_outside_names(work_engine, browser, live, clock):
    with work_engine.begin() as conn:
        task = handled_task(conn, "英文页面任务", clock())
    _open_console(browser, live, "en")
    wait = waiting(browser, 30)
    _search(browser, "英文页面任务")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks .nh-task-item")) == 1)
    _click(browser, "#dispatch-tasks .nh-task-button")
    wait.until(lambda d: f"#{task['id']}" in d.find_element(By.ID, "task-detail").text)
    _settled(browser)
    mine = browser.find_elements(By.CSS_SELECTOR, "path.nh-grid-mine")[0]
    ActionChains(browser).move_to_element(mine).click().perform()
    wait.until(lambda d: d.find_elements(By.ID, "grid-panel-code"))
    wait.until(lambda d: d.title.endswith("Dispatch"))
    screenshot(browser, "dispatch-en")
    assert foreign_text(browser, "en") == []


@pytest.mark.browser
def test_a_person_lost_to_follow_up_opens_his_grid_and_its_follow_up_table(work_engine, browser, live, clock):
    key = "f" * 60 + "d002"
    flag_person(work_engine, key, OWN_GRID, colour="yellow", name="郑*失", id_masked="440605********5678")
    with work_engine.begin() as conn:
        plan = _observed(conn, key, clock())
    try:
        browser.get(f"{live.url}/lang/zh?next=/dispatch/")  # a new page: the lost list as it is now
        wait = waiting(browser, 30)
        wait.until(lambda d: "郑*失" in d.find_element(By.ID, "dispatch-lost").text)
        assert "26 小时未上报" in browser.find_element(By.ID, "dispatch-lost").text
        _click(browser, f"#dispatch-lost button[id*='\"plan\":{plan}']")
        wait.until(lambda d: d.find_elements(By.ID, "grid-panel-code")
                   and d.find_element(By.ID, "grid-panel-code").get_attribute("data-code") == OWN_GRID)
        row = browser.find_element(By.CSS_SELECTOR, f"tr.nh-follow-row[data-plan='{plan}']")
        assert "第 4/14 天" in row.text and "37.8 ℃" in row.text and "失访" in row.text
        screenshot(browser, "dispatch-follow-ups")
    finally:
        with work_engine.begin() as conn:
            conn.execute(text("DELETE FROM observation_plans WHERE id = :p"), {"p": plan})
            conn.execute(text("DELETE FROM persons WHERE person_key = :key"), {"key": key})


def test_a_code_waiting_for_review_shows_on_the_console_in_scope_only(server, work_engine):
    """A fever on follow-up files a code review (a pending appeal by the system): the desk sees it in its list."""
    from tests.dash_calls import request_body

    key = "f" * 60 + "e001"
    flag_person(work_engine, key, OWN_GRID, colour="red", name="罗*审", id_masked="440605********7777")
    with work_engine.begin() as conn:
        appeal = conn.execute(text(
            "INSERT INTO code_appeals (person_key, colour, reason, expires_at, requested_by) VALUES (:k, 'yellow', "
            "'随访发热：待医学评估后复核 / fever on follow-up: review after assessment', now() + interval '14 days', "
            "'system') RETURNING id"), {"k": key}).scalar_one()
    try:
        dependencies = server.test_client().get("/dispatch/_dash-dependencies").get_json()
        refresh = next(d for d in dependencies if "dispatch-reviews.children" in d["output"])
        body = request_body(refresh, {"dispatch-tick.n_intervals": 1, "dispatch-query.data": {},
                                      "dispatch-lang.data": "zh"})
        supervisor = signed_in(server.test_client(), "demo_supervisor")
        shown = json.dumps(supervisor.post("/dispatch/_dash-update-component", json=body).get_json(),
                           ensure_ascii=False)
        other = Actor(10**6, "other_supervisor", "supervisor", community_id=1, grid_ids=frozenset({10**6}))
        with work_engine.connect() as conn:
            outside = pages.dispatch.pending_appeals(conn, other)
    finally:
        with work_engine.begin() as conn:
            conn.execute(text("DELETE FROM code_appeals WHERE id = :a"), {"a": appeal})
            conn.execute(text("DELETE FROM persons WHERE person_key = :k"), {"k": key})
    assert f"people-appeal-{appeal}" in shown and "罗*审" in shown and "随访发热：待医学评估后复核" in shown
    assert appeal not in [a["id"] for a in outside], "another community's desk does not see it"
