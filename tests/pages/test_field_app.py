"""The field app on a worker's phone: real headless Chromium at 390 x 844 with touch, one browser and one server for
the module. The stories (accept, report with two photos and a position, call, navigate, extension, the done tab),
the offline open with the server really stopped and the flush when it is back (delivered exactly once), and the
logout that clears what the phone kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from benchmarks.field import StoppableServer
from tests.browser import close, log_in, phone_chromium, place, screenshot, waiting
from tests.pages.test_field import inside_and_far, person_with_home, worker_task

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(work_engine):
    """(the phone, the server): the worker logged in once for the module."""
    server = StoppableServer(create_app(work_engine).server)
    driver = phone_chromium()
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    try:
        log_in(driver, server.url, "demo_worker", "/field/")
        waiting(driver, 60).until(lambda d: d.find_elements(By.ID, "field-outbox"))
        yield driver, server
    finally:
        close(driver)
        server.stop()


def _open(driver, server) -> None:
    driver.get(f"{server.url}/field/")
    waiting(driver, 60).until(lambda d: d.execute_script(
        "return document.querySelectorAll('#field-tasks .nh-field-card, #field-empty').length > 0"))


def _card(driver, task_id: int):
    return driver.find_element(By.ID, f"field-task-{task_id}")


def _status(engine, task_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT status FROM tasks WHERE id = :t"), {"t": task_id}).scalar_one()


def _events(engine, task_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT action, count(*) FROM task_events WHERE task_id = :t GROUP BY action"),
                                 {"t": task_id}).all())


def _tap(driver, element_id: str) -> None:
    waiting(driver, 30).until(lambda d: d.find_element(By.ID, element_id).is_displayed())
    driver.find_element(By.ID, element_id).click()


def test_a_worker_calls_accepts_reports_with_two_photos_and_finds_it_done(work_engine, site, tmp_path):
    driver, server = site
    key = person_with_home(work_engine, "桂城街道南桂东路 8 号 3 座 502", phone="13912345678")
    task_id = worker_task(work_engine, "入户测温 · 手机端", kind="home_visit", person_key=key)
    late_id = worker_task(work_engine, "早已超时的巡查")
    with work_engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET due_at = :d WHERE id = :t"),
                     {"d": datetime.now(UTC) - timedelta(days=1, hours=1), "t": late_id})
    inside, far = inside_and_far(work_engine)
    photos = []
    for index, colour in enumerate(((200, 40, 40), (40, 160, 60))):
        photos.append(tmp_path / f"visit-{index}.png")
        Image.new("RGB", (64, 48), colour).save(photos[-1])
    _open(driver, server)
    wait = waiting(driver, 60)
    wait.until(lambda d: _card(d, task_id).find_element(By.CSS_SELECTOR, ".nh-field-countdown").text)
    card = _card(driver, task_id)
    assert card.find_element(By.CSS_SELECTOR, ".nh-field-countdown").text.startswith("剩余")
    assert "南桂东路 8 号" in card.find_element(By.CSS_SELECTOR, ".nh-field-address").text
    assert "李*" in card.find_element(By.CSS_SELECTOR, ".nh-field-person").text
    assert "13912345678" not in driver.page_source, "the phone number is opened only on the tap"
    late = _card(driver, late_id).find_element(By.CSS_SELECTOR, ".nh-field-countdown")
    assert late.text.startswith("已超时 1天") and late.value_of_css_property("color") == "rgba(224, 49, 49, 1)"
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    navigate = driver.find_element(By.ID, f"field-nav-{task_id}").get_attribute("href")
    assert navigate.startswith("https://uri.amap.com/marker?position=113.") and "coordinate=wgs84" in navigate
    assert driver.find_element(By.ID, f"field-geo-{task_id}").get_attribute("href").startswith("geo:23.")

    _tap(driver, f"field-call-{task_id}")
    wait.until(lambda d: d.find_elements(By.ID, f"field-tel-{task_id}"))
    assert driver.find_element(By.ID, f"field-tel-{task_id}").get_attribute("href") == "tel:13912345678"
    with work_engine.connect() as conn:
        reason = conn.execute(text("SELECT reason FROM audit_log WHERE action = 'unmask_person' AND subject = :k"),
                              {"k": key}).scalar_one()
    assert reason.startswith(f"外呼 任务#{task_id}")

    _tap(driver, f"field-accept-{task_id}")
    wait.until(lambda d: _status(work_engine, task_id) == "accepted")
    wait.until(lambda d: _card(d, task_id).get_attribute("data-sync") == "sent")
    wait.until(lambda d: d.find_element(By.ID, f"field-start-{task_id}").size["height"] >= 44)
    _tap(driver, f"field-start-{task_id}")
    wait.until(lambda d: _status(work_engine, task_id) == "in_progress")

    place(driver, server.url, *far)
    _tap(driver, f"field-handle-{task_id}")
    wait.until(lambda d: "请确认" in d.find_element(By.ID, "field-distance").text)
    place(driver, server.url, *inside)
    driver.find_element(By.ID, "field-locate").click()
    wait.until(lambda d: "位于任务网格内" in d.find_element(By.ID, "field-distance").text)
    driver.find_element(By.ID, "field-submit").click()
    assert "处置结果" in driver.find_element(By.ID, "field-sheet-error").text, "the result is required"
    driver.find_element(By.ID, "field-result").send_keys("已入户，居民在家，无异常")
    driver.find_element(By.ID, "field-temperature").send_keys("36.8")
    driver.find_element(By.ID, "field-note").send_keys("已告知居家注意事项")
    driver.find_element(By.ID, "field-photo").send_keys("\n".join(str(p) for p in photos))
    wait.until(lambda d: d.find_element(By.ID, "field-previews").get_attribute("data-count") == "2")
    previews = driver.find_elements(By.CSS_SELECTOR, "#field-previews img")
    assert all(p.get_attribute("src").startswith("data:image/jpeg") for p in previews), "shrunk before sending"
    screenshot(driver, "field-report")
    driver.find_element(By.ID, "field-submit").click()
    wait.until(lambda d: _status(work_engine, task_id) == "handled")
    wait.until(lambda d: d.find_element(By.ID, "field-outbox").get_attribute("data-state") == "sent")
    wait.until(lambda d: not d.find_elements(By.ID, f"field-task-{task_id}"))  # it left the list in hand
    _tap(driver, "field-tab-done")
    wait.until(lambda d: d.find_element(By.ID, f"field-done-{task_id}").is_displayed())
    assert not driver.find_element(By.ID, "field-tasks").is_displayed()
    screenshot(driver, "field-done")
    _tap(driver, "field-tab-todo")

    assert _events(work_engine, task_id) == {"create": 1, "dispatch": 1, "accept": 1, "start": 1, "handle": 1}
    with work_engine.connect() as conn:
        event = conn.execute(text("SELECT id, detail, note, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM task_events "
                                  "WHERE task_id = :t AND action = 'handle'"), {"t": task_id}).one()
        stored = conn.execute(text("SELECT id, event_id, content_type FROM task_photos WHERE task_id = :t ORDER BY id"),
                              {"t": task_id}).all()
    assert event.detail["temperature"] == 36.8 and event.detail["result"] == "已入户，居民在家，无异常"
    assert event.note == "已告知居家注意事项"
    assert event.lon == pytest.approx(inside[0], abs=1e-5) and event.lat == pytest.approx(inside[1], abs=1e-5)
    assert [(p.event_id, p.content_type) for p in stored] == [(event.id, "image/jpeg")] * 2
    assert event.detail["photos"] == [p.id for p in stored]


def test_an_extension_request_goes_to_the_supervisor(work_engine, site):
    driver, server = site
    task_id = worker_task(work_engine, "需要延期的巡查")
    _open(driver, server)
    wait = waiting(driver, 60)
    _tap(driver, f"field-extend-{task_id}")
    wait.until(lambda d: d.find_element(By.ID, "field-until").get_attribute("value"))
    assert not driver.find_element(By.ID, "field-result").is_displayed()
    driver.find_element(By.ID, "field-submit").click()
    assert "延期原因" in driver.find_element(By.ID, "field-sheet-error").text
    driver.find_element(By.ID, "field-extend-reason").send_keys("居民外出，约定明早上门")
    driver.find_element(By.ID, "field-submit").click()
    wait.until(lambda d: "request_extension" in _events(work_engine, task_id))
    wait.until(lambda d: "延期申请待审批" in _card(d, task_id).text)
    assert not driver.find_element(By.ID, f"field-extend-{task_id}").is_displayed(), "one request at a time"
    with work_engine.connect() as conn:
        row = conn.execute(text("SELECT t.due_at, t.extension_requested_until, e.detail FROM tasks t "
                                "JOIN task_events e ON e.task_id = t.id AND e.action = 'request_extension' "
                                "WHERE t.id = :t"),
                           {"t": task_id}).one()
    assert row.detail["reason"] == "居民外出，约定明早上门" and row.extension_requested_until > row.due_at
    assert _status(work_engine, task_id) == "dispatched", "asking for time changes no state"


def test_the_phone_opens_offline_and_sends_the_tap_once_when_back(work_engine, site):
    driver, server = site
    task_id = worker_task(work_engine, "离线接收的任务")
    _open(driver, server)
    wait = waiting(driver, 60)
    wait.until(lambda d: d.find_elements(By.ID, f"field-task-{task_id}"))
    wait.until(lambda d: d.execute_script("return !!navigator.serviceWorker.controller"))
    wait.until(lambda d: d.execute_async_script(
        "var done = arguments[0]; caches.keys().then(function (names) { return Promise.all(names.map("
        "function (n) { return caches.open(n).then(function (c) { return c.match('/field/'); }); })); })"
        ".then(function (found) { done(found.some(Boolean)); });"))
    server.stop()
    try:
        driver.refresh()  # the server is gone: the service worker opens the app, the app shows what it kept
        wait.until(lambda d: d.find_elements(By.ID, f"field-task-{task_id}"))
        assert driver.find_element(By.ID, "field-net").is_displayed()
        assert "离线" in driver.find_element(By.ID, "field-net").text
        _tap(driver, f"field-accept-{task_id}")
        wait.until(lambda d: d.find_element(By.ID, "field-outbox").get_attribute("data-state") == "offline")
        assert _card(driver, task_id).get_attribute("data-status") == "accepted", "the card moves on at once"
        assert _card(driver, task_id).get_attribute("data-sync") == "pending"
        kept = driver.execute_script("return JSON.parse(localStorage.getItem('nanhai.field.outbox'))")
        assert [(e["task"], e["action"]) for e in kept] == [(str(task_id), "accept")]
        screenshot(driver, "field-offline")
        assert _status(work_engine, task_id) == "dispatched"
    finally:
        server.start()
    wait.until(lambda d: d.find_element(By.ID, "field-outbox").get_attribute("data-state") == "sent")
    wait.until(lambda d: _status(work_engine, task_id) == "accepted")
    assert driver.execute_script("return localStorage.getItem('nanhai.field.outbox')") == "[]"
    assert _events(work_engine, task_id)["accept"] == 1, "delivered exactly once"


def test_logging_out_clears_what_the_phone_kept_and_an_expired_session_shows_nothing(work_engine, site):
    driver, server = site
    task_id = worker_task(work_engine, "退出前的任务")
    _open(driver, server)
    waiting(driver, 60).until(lambda d: d.find_elements(By.ID, f"field-task-{task_id}"))
    kept = json.loads(driver.execute_script("return localStorage.getItem('nanhai.field.cache')"))
    assert kept["user"] == "demo_worker" and kept["expires_at"] > datetime.now(UTC).isoformat()
    _tap(driver, "field-logout")
    waiting(driver, 30).until(lambda d: "/login" in d.current_url)
    assert driver.execute_script("return Object.keys(localStorage).filter(function (k) { "
                                 "return k.indexOf('nanhai.field.') === 0; })") == []

    # a copy kept from a session that has since expired is not shown, even offline, and is dropped
    kept["expires_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    driver.execute_script("localStorage.setItem('nanhai.field.cache', arguments[0])", json.dumps(kept))
    server.stop()
    try:
        driver.get(f"{server.url}/field/")
        waiting(driver, 30).until(lambda d: d.find_elements(By.ID, "field-offline-empty"))
        assert not driver.find_elements(By.CSS_SELECTOR, ".nh-field-card")
        assert driver.execute_script("return localStorage.getItem('nanhai.field.cache')") is None
    finally:
        server.start()
    log_in(driver, server.url, "demo_worker", "/field/")  # as the module found it


def test_a_tap_the_dash_page_left_in_the_outbox_is_still_sent(work_engine, site):
    driver, server = site
    task_id = worker_task(work_engine, "旧页面留下的接收")
    with work_engine.connect() as conn:
        user_id = conn.execute(text("SELECT id FROM users WHERE username = 'demo_worker'")).scalar_one()
    _open(driver, server)
    left = {"key": "dash-era-key-1", "user": str(user_id), "task": str(task_id), "action": "accept", "version": 2,
            "body": {}, "to": "accepted", "photo": None, "photoKey": None, "photoId": None, "json": None,
            "at": datetime.now(UTC).isoformat()}  # as the Dash page's field.js kept it
    driver.execute_script("localStorage.setItem('nanhai.field.outbox', arguments[0])", json.dumps([left]))
    _open(driver, server)
    waiting(driver, 60).until(lambda d: _status(work_engine, task_id) == "accepted")
    assert _events(work_engine, task_id)["accept"] == 1
