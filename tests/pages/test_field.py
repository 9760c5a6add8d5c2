"""The field view: distances and refusals without a browser, then a worker's phone in a real headless Chromium."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from sqlalchemy import text

from accounts.actor import Actor
from app import create_app
from gis.errors import NotFound
from grids.proximity import FAR_FROM_GRID_M, distance_to_grid_m
from tasks.repository import NewTask, create_task
from tests.browser import LiveServer, close, log_in, phone_chromium, place, screenshot, waiting
from tests.conftest import signed_in

GRID = "440605011001001"  # demo_worker's grid


def _inside_and_far(conn) -> tuple[tuple[float, float], tuple[float, float]]:
    row = conn.execute(text("SELECT ST_X(p) AS lon, ST_Y(p) AS lat, ST_YMax(geom) AS top FROM "
                            "(SELECT geom, ST_PointOnSurface(geom) AS p FROM grids WHERE code = :c) g"),
                       {"c": GRID}).one()
    return (row.lon, row.lat), (row.lon, row.top + 0.02)  # about 2.2 km north of the grid's northern edge


def _worker_task(engine, title: str, kind: str = "home_visit", created: datetime | None = None) -> int:
    with engine.begin() as conn:
        worker = conn.execute(text("SELECT id FROM users WHERE username = 'demo_worker'")).scalar_one()
        task = create_task(conn, Actor.system(), NewTask(kind, GRID, title, assignee_id=worker),
                           created or datetime.now(UTC))
    assert task["status"] == "dispatched" and task["assignee"] == "demo_worker"
    return task["id"]


def _events(engine, task_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT action, count(*) FROM task_events WHERE task_id = :t GROUP BY action"),
                                 {"t": task_id}).all())


def _status(engine, task_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT status FROM tasks WHERE id = :t"), {"t": task_id}).scalar_one()


def test_the_distance_to_a_grid_is_zero_inside_and_metres_outside(work_engine):
    with work_engine.connect() as conn:
        inside, far = _inside_and_far(conn)
        assert distance_to_grid_m(conn, GRID, *inside) == 0
        metres = distance_to_grid_m(conn, GRID, *far)
        with pytest.raises(NotFound):
            distance_to_grid_m(conn, "440605999999999", *inside)
    assert FAR_FROM_GRID_M < metres < 5000


def _client(app, username: str | None):
    client = app.server.test_client()
    return signed_in(client, username) if username else client


def _layout(client) -> str:
    return json.dumps(client.get("/field/_dash-layout").get_json(), ensure_ascii=False)


def _callback(client, outputs: list[str], inputs: list[dict], state: list[dict]):
    """Fire a callback the way dash-renderer does (``outputs``: "id.property" each)."""
    pairs = [dict(zip(("id", "property"), output.split("."), strict=True)) for output in outputs]
    body = {"output": outputs[0] if len(outputs) == 1 else ".." + "...".join(outputs) + "..",
            "outputs": pairs[0] if len(outputs) == 1 else pairs, "inputs": inputs, "state": state,
            "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}
    return client.post("/field/_dash-update-component", json=body, headers={"Origin": "http://localhost"})


def test_only_a_worker_gets_the_field_view_and_its_answers(work_engine):
    task_id = _worker_task(work_engine, "字段页权限")
    app = create_app(work_engine)
    with work_engine.connect() as conn:
        inside, far = _inside_and_far(conn)
    ticks = [{"id": "field-synced", "property": "data", "value": 1},
             {"id": "field-tick", "property": "n_intervals", "value": None}]
    refresh = (["field-tasks.children", "field-stamp.data"], ticks,
               [{"id": "field-lang", "property": "data", "value": "en"},
                {"id": "field-stamp", "property": "data", "value": None}])
    position = (["field-distance.children", "field-distance.className"],
                [{"id": "field-position", "property": "data", "value": {"task": task_id, "lon": far[0],
                                                                        "lat": far[1]}}],
                [{"id": "field-lang", "property": "data", "value": "en"}])

    worker = _client(app, "demo_worker")
    layout = _layout(worker)
    assert f"field-task-{task_id}" in layout and "page-refusal" not in layout
    cards = _callback(worker, *refresh)
    assert cards.status_code == 200 and f"field-task-{task_id}" in cards.get_data(as_text=True)
    stamp = cards.get_json()["response"]["field-stamp"]["data"]
    assert f"{task_id}:2" in stamp
    unchanged = (refresh[0], ticks, [refresh[2][0], {"id": "field-stamp", "property": "data", "value": stamp}])
    assert _callback(worker, *unchanged).status_code == 204, "an idle refresh resends nothing"
    warning = _callback(worker, *position)
    assert warning.status_code == 200 and "are you on site" in warning.get_data(as_text=True)
    assert "接收任务" in layout and "Accept" not in layout, "Chinese by default"
    worker.set_cookie("nanhai_lang", "en")
    english = _layout(worker)
    assert "My tasks" in english and "Accept" in english and "接收任务" not in english

    supervisor = _client(app, "demo_supervisor")
    layout = _layout(supervisor)
    assert "page-refusal" in layout and f"field-task-{task_id}" not in layout
    assert _callback(supervisor, *refresh).status_code == 204
    assert _callback(supervisor, *position).status_code == 204
    stranger = _client(app, None)
    assert "/login?next=/field/" in _layout(stranger)
    assert _callback(stranger, *refresh).status_code == 204


@pytest.fixture(scope="module")
def phone():
    driver = phone_chromium()
    yield driver
    close(driver)


def _card(driver, task_id: int):
    return driver.find_element(By.ID, f"field-task-{task_id}")


@pytest.mark.browser
def test_a_worker_accepts_starts_and_reports_on_his_phone(work_engine, phone, tmp_path):
    task_id = _worker_task(work_engine, "入户测温 · 手机端")
    late_id = _worker_task(work_engine, "早已超时的走访", created=datetime.now(UTC) - timedelta(days=2))
    with work_engine.connect() as conn:
        inside, far = _inside_and_far(conn)
    photo = tmp_path / "visit.png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(photo)
    with LiveServer(create_app(work_engine).server) as live:
        log_in(phone, live.url, "demo_worker", "/field/")
        wait = waiting(phone, 60)
        wait.until(lambda d: d.find_elements(By.ID, f"field-task-{task_id}"))
        wait.until(lambda d: _card(d, task_id).find_element(By.CSS_SELECTOR, ".nh-field-countdown").text)
        assert _card(phone, task_id).find_element(By.CSS_SELECTOR, ".nh-field-countdown").text.startswith("剩余")
        late = _card(phone, late_id).find_element(By.CSS_SELECTOR, ".nh-field-countdown")
        assert late.text.startswith("已超时 1天") and "nh-field-overdue" in late.get_attribute("class")
        assert late.value_of_css_property("color") == "rgba(224, 49, 49, 1)", "overdue in red"
        dues = [datetime.fromisoformat(e.get_attribute("data-due"))
                for e in phone.find_elements(By.CSS_SELECTOR, ".nh-field-countdown")]
        assert len(dues) >= 2 and dues == sorted(dues), "the earliest due first"
        assert phone.execute_script("return window.innerWidth") == 390
        assert phone.execute_script("return document.documentElement.scrollWidth") <= 390, "no sideways scrolling"

        wait.until(lambda d: d.find_element(By.ID, f"field-accept-{task_id}").click() or True)
        wait.until(lambda d: _status(work_engine, task_id) == "accepted")
        wait.until(lambda d: _card(d, task_id).get_attribute("data-sync") == "sent")
        wait.until(lambda d: d.find_element(By.ID, f"field-start-{task_id}").is_displayed())
        wait.until(lambda d: not d.find_element(By.ID, f"field-accept-{task_id}").is_displayed())
        wait.until(lambda d: d.find_element(By.ID, f"field-start-{task_id}").size["height"] >= 44)
        wait.until(lambda d: d.find_element(By.ID, f"field-start-{task_id}").click() or True)
        wait.until(lambda d: _status(work_engine, task_id) == "in_progress")

        place(phone, live.url, *far)
        wait.until(lambda d: d.find_element(By.ID, f"field-handle-{task_id}").is_displayed())
        wait.until(lambda d: d.find_element(By.ID, f"field-handle-{task_id}").click() or True)
        wait.until(lambda d: "请确认" in d.find_element(By.ID, "field-distance").text)
        assert "米" in phone.find_element(By.ID, "field-distance").text
        place(phone, live.url, *inside)
        phone.find_element(By.ID, "field-locate").click()
        wait.until(lambda d: "位于任务网格内" in d.find_element(By.ID, "field-distance").text)
        phone.find_element(By.ID, "field-submit").click()
        assert "处置结果" in phone.find_element(By.ID, "field-sheet-error").text, "the result is required"
        phone.find_element(By.ID, "field-result").send_keys("已入户，居民在家，无异常")
        phone.find_element(By.ID, "field-temperature").send_keys("36.8")
        phone.find_element(By.ID, "field-note").send_keys("已告知居家注意事项")
        phone.find_element(By.ID, "field-photo").send_keys(str(photo))
        screenshot(phone, "field-report")
        phone.find_element(By.ID, "field-submit").click()
        wait.until(lambda d: _status(work_engine, task_id) == "handled")
        wait.until(lambda d: _card(d, task_id).get_attribute("data-status") == "handled")
        wait.until(lambda d: d.find_element(By.ID, "field-outbox").get_attribute("data-state") == "sent")
        assert phone.find_element(By.ID, "field-outbox").text == "已全部发送"
        screenshot(phone, "field")

    assert _events(work_engine, task_id) == {"create": 1, "dispatch": 1, "accept": 1, "start": 1, "handle": 1}
    with work_engine.connect() as conn:
        event = conn.execute(text("SELECT id, detail, note, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM task_events "
                                  "WHERE task_id = :t AND action = 'handle'"), {"t": task_id}).one()
        photos = conn.execute(text("SELECT id, event_id, content_type FROM task_photos WHERE task_id = :t"),
                              {"t": task_id}).all()
    assert event.detail["temperature"] == 36.8 and event.detail["result"] == "已入户，居民在家，无异常"
    assert event.note == "已告知居家注意事项"
    assert event.lon == pytest.approx(inside[0], abs=1e-5) and event.lat == pytest.approx(inside[1], abs=1e-5)
    assert [(p.event_id, p.content_type) for p in photos] == [(event.id, "image/jpeg")]
    assert event.detail["photos"] == [photos[0].id]


class LoseFirstAnswer:
    """A WSGI wrapper that lets the first task transition through and then loses its answer (a 503 instead):
    the update is stored, the phone does not know it."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: list[tuple[str | None, str, str | None]] = []

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST" or not environ["PATH_INFO"].endswith("/transitions"):
            return self.app(environ, start_response)
        answer = {}

        def keep(status, headers, exc_info=None):
            answer.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.app(environ, keep))
        self.seen.append((environ.get("HTTP_IDEMPOTENCY_KEY"), answer["status"],
                          dict(answer["headers"]).get("Idempotent-Replayed")))
        if len(self.seen) == 1:
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"error": "lost", "message": "answer lost on the way"}).encode()]
        start_response(answer["status"], answer["headers"])
        return [body]


def _offline(driver, offline: bool) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": offline, "latency": 0,
                                                                "downloadThroughput": -1, "uploadThroughput": -1})


@pytest.mark.browser
def test_a_tap_on_a_bad_network_is_kept_and_applied_exactly_once(work_engine, phone):
    task_id = _worker_task(work_engine, "弱网重试", kind="area_sweep")
    flaky = LoseFirstAnswer(create_app(work_engine).server)
    with LiveServer(flaky) as live:
        log_in(phone, live.url, "demo_worker", "/field/")
        wait = waiting(phone, 60)
        wait.until(lambda d: d.find_elements(By.ID, f"field-task-{task_id}"))
        phone.execute_script("window.fetch('/api/v1/session')")  # the CSRF token is read when first needed
        _offline(phone, True)
        try:
            wait.until(lambda d: d.find_element(By.ID, f"field-accept-{task_id}").click() or True)
            wait.until(lambda d: d.find_element(By.ID, "field-outbox").get_attribute("data-state") == "offline")
            assert _card(phone, task_id).get_attribute("data-sync") == "pending"
            assert _card(phone, task_id).get_attribute("data-status") == "accepted", "the card moves on at once"
            kept = phone.execute_script("return JSON.parse(localStorage.getItem('nanhai.field.outbox'))")
            assert [(e["task"], e["action"]) for e in kept] == [(str(task_id), "accept")]
            assert "待发送" in phone.find_element(By.ID, "field-outbox").text
            assert _status(work_engine, task_id) == "dispatched" and not flaky.seen
        finally:
            _offline(phone, False)
        wait.until(lambda d: d.find_element(By.ID, "field-outbox").get_attribute("data-state") == "sent")
        wait.until(lambda d: _card(d, task_id).get_attribute("data-sync") == "sent")
        assert phone.execute_script("return localStorage.getItem('nanhai.field.outbox')") == "[]"

    assert _status(work_engine, task_id) == "accepted"
    assert _events(work_engine, task_id)["accept"] == 1
    keys = {key for key, _status_line, _replayed in flaky.seen}
    assert len(flaky.seen) >= 2 and keys == {kept[0]["key"]}, "every retry carried the one key of the tap"
    assert flaky.seen[0][1].startswith("200") and flaky.seen[1][2] == "true", "the retry got the stored answer"


@pytest.mark.browser
def test_declining_needs_a_reason_and_a_stale_card_is_put_right(work_engine, phone):
    declined_id = _worker_task(work_engine, "需退回的任务", kind="area_sweep")
    stale_id = _worker_task(work_engine, "别处已更新的任务", kind="area_sweep")
    with LiveServer(create_app(work_engine).server) as live:
        log_in(phone, live.url, "demo_worker", "/field/")
        wait = waiting(phone, 60)
        wait.until(lambda d: d.find_elements(By.ID, f"field-task-{stale_id}"))
        with work_engine.begin() as conn:  # somebody else changed the task after the phone drew it
            conn.execute(text("UPDATE tasks SET version = version + 1 WHERE id = :t"), {"t": stale_id})
        wait.until(lambda d: d.find_element(By.ID, f"field-accept-{stale_id}").click() or True)
        wait.until(lambda d: "任务已有变化" in d.find_element(By.ID, "field-message").text)
        wait.until(lambda d: (_card(d, stale_id).get_attribute("data-status"),
                              _card(d, stale_id).get_attribute("data-version")) == ("dispatched", "3"))
        assert _status(work_engine, stale_id) == "dispatched" and "accept" not in _events(work_engine, stale_id)
        wait.until(lambda d: d.find_element(By.ID, f"field-accept-{stale_id}").click() or True)
        wait.until(lambda d: _status(work_engine, stale_id) == "accepted")

        wait.until(lambda d: d.find_element(By.ID, f"field-decline-{declined_id}").click() or True)
        wait.until(lambda d: d.find_element(By.ID, "field-reason").is_displayed())
        assert not phone.find_element(By.ID, "field-result").is_displayed()
        phone.find_element(By.ID, "field-submit").click()
        assert "退回原因" in phone.find_element(By.ID, "field-sheet-error").text
        phone.find_element(By.ID, "field-reason").send_keys("不在本人网格，已联系网格长")
        phone.find_element(By.ID, "field-submit").click()
        wait.until(lambda d: _status(work_engine, declined_id) == "declined")
        wait.until(lambda d: not d.find_elements(By.ID, f"field-task-{declined_id}"))
    with work_engine.connect() as conn:
        detail = conn.execute(text("SELECT detail FROM task_events WHERE task_id = :t AND action = 'decline'"),
                              {"t": declined_id}).scalar_one()
    assert detail["reason"] == "不在本人网格，已联系网格长"
    assert _events(work_engine, stale_id)["accept"] == 1
