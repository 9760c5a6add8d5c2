"""One task's whole life across the four pages, each role in its own browser: the supervisor dispatches it, the
worker (on a 390 x 844 phone) accepts it and reports with a temperature and a position, the supervisor closes
it; the task's timeline, the commander's wall and the reporter's statistics all show it."""

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from accounts.actor import Actor
from app import create_app
from evaluation.export import HEADER_ROW, header
from pages.reports import say_for
from tasks.repository import NewTask, create_task
from tests.browser import LiveServer, chromium, close, log_in, phone_chromium, place, screenshot, waiting
from tests.conftest import signed_in

pytestmark = pytest.mark.browser

GRID = "440605011001001"  # demo_worker's grid, in demo_supervisor's community
TITLE = "端到端：入户走访测温"


@pytest.fixture(scope="module")
def desk():
    driver = chromium(1440, 900)  # a supervisor's desk
    yield driver
    close(driver)


@pytest.fixture(scope="module")
def phone():
    driver = phone_chromium()
    yield driver
    close(driver)


def _task(engine, task_id: int):
    with engine.connect() as conn:
        return conn.execute(text("SELECT t.status, u.username AS assignee FROM tasks t LEFT JOIN users u ON "
                                 "u.id = t.assignee_id WHERE t.id = :t"), {"t": task_id}).one()


def _open_task_in_console(desk, task_id: int) -> None:
    """Find the task as a supervisor would among a shared database's many: search its title, then pick it."""
    wait = waiting(desk, 60)
    search = wait.until(lambda d: d.find_element(By.ID, "dispatch-search"))
    search.clear()
    search.send_keys(TITLE, Keys.TAB)  # the search is sent when the box loses focus
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dispatch-tasks button[id*='task-pick']")) == 1)
    pick = f"#dispatch-tasks button[id*='\"id\":{task_id},']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, pick))
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, pick).click() or True)
    wait.until(lambda d: TITLE in d.find_element(By.ID, "task-detail").text)


def _click(wait: WebDriverWait, css: str) -> None:
    """Click ``css`` once it is there, again if a callback redrew it in between."""
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def _choose_worker(desk, name: str) -> bool:
    """Open the worker list of the task panel and pick ``name``; False (try again) while it is not shown."""
    options = [o for o in desk.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
               if o.is_displayed() and name in o.text]
    if not options:
        desk.find_element(By.CSS_SELECTOR, "#task-detail .dash-dropdown").click()
        return False
    options[0].click()
    return True


def test_a_task_from_dispatch_to_the_phone_to_closure_shows_on_wall_timeline_and_statistics(work_engine, desk,
                                                                                            phone):
    with work_engine.begin() as conn:
        task_id = create_task(conn, Actor.system(), NewTask("home_visit", GRID, TITLE, dispatch=False),
                              datetime.now(UTC))["id"]
        spot = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                 "WHERE code = :c) g"), {"c": GRID}).one()
    server = create_app(work_engine).server  # one app: the desk, the phone and the reporter's download
    with LiveServer(server) as live:
        # The supervisor picks the waiting task and dispatches it to the grid's worker.
        log_in(desk, live.url, "demo_supervisor")
        wait = waiting(desk, 60)
        _open_task_in_console(desk, task_id)
        wait.until(lambda d: _choose_worker(d, "演示网格员"))
        wait.until(lambda d: "演示网格员" in d.find_element(By.CSS_SELECTOR, "#task-detail .dash-dropdown").text)
        _click(wait, "#task-detail .nh-action-dispatch")
        wait.until(lambda d: f"派遣 #{task_id}" in d.find_element(By.CSS_SELECTOR, "#task-detail .nh-note").text)
        assert tuple(_task(work_engine, task_id)) == ("dispatched", "demo_worker")

        # The worker, on his phone, accepts, starts and reports from inside the grid.
        log_in(phone, live.url, "demo_worker")
        tap = waiting(phone, 60)
        tap.until(lambda d: d.current_url.endswith("/field/"))
        for action, status in (("accept", "accepted"), ("start", "in_progress")):
            tap.until(lambda d, a=action: d.find_element(By.ID, f"field-{a}-{task_id}").is_displayed())
            tap.until(lambda d, a=action: d.find_element(By.ID, f"field-{a}-{task_id}").click() or True)
            tap.until(lambda d, s=status: _task(work_engine, task_id).status == s)
        place(phone, live.url, *spot)
        tap.until(lambda d: d.find_element(By.ID, f"field-handle-{task_id}").is_displayed())
        tap.until(lambda d: d.find_element(By.ID, f"field-handle-{task_id}").click() or True)
        tap.until(lambda d: "位于任务网格内" in d.find_element(By.ID, "field-distance").text)
        phone.find_element(By.ID, "field-result").send_keys("已入户，体温正常")
        phone.find_element(By.ID, "field-temperature").send_keys("36.6")
        phone.find_element(By.ID, "field-submit").click()
        tap.until(lambda d: _task(work_engine, task_id).status == "handled")
        screenshot(phone, "story-field")

        # The supervisor closes it; the task's timeline tells the whole story.
        desk.refresh()
        _open_task_in_console(desk, task_id)
        evidence = desk.find_element(By.ID, "task-evidence").text  # what he checks before closing
        assert "位于任务网格内" in evidence and "36.6 ℃" in evidence and "已入户，体温正常" in evidence
        _click(wait, "#task-detail .nh-action-close")
        wait.until(lambda d: f"结案 #{task_id}" in d.find_element(By.CSS_SELECTOR, "#task-detail .nh-note").text)
        wait.until(lambda d: "已结案" in d.find_element(By.ID, "task-detail").text)
        timeline = desk.find_element(By.CSS_SELECTOR, "#task-detail .nh-timeline").text
        for step in ("创建", "派遣", "接收", "开始处置", "反馈", "结案", "体温 36.6 ℃", "已入户，体温正常",
                     "演示网格员", "演示网格长"):
            assert step in timeline, step
        assert "demo_worker" not in timeline, "the timeline names people, not their usernames"
        screenshot(desk, "story-dispatch")
        assert _task(work_engine, task_id).status == "closed"

        # The commander's wall counts it among today's closures and puts it at the top of the ticker.
        desk.delete_all_cookies()
        desk.set_window_size(1920, 1080)  # the wall's screen (its counters, follow-ups and ticker fit from 1080 p)
        log_in(desk, live.url, "demo_commander")
        wait.until(lambda d: d.current_url.endswith("/wall/"))
        wait.until(lambda d: d.find_element(By.ID, "wall-closed_today").text not in ("", "–"))
        today = datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=0, minute=0, second=0, microsecond=0)
        with work_engine.connect() as conn:
            closed_today = conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'closed' AND closed_at >= "
                                             ":t"), {"t": today}).scalar_one()
        assert closed_today >= 1
        assert desk.find_element(By.ID, "wall-closed_today").text.replace(",", "") == str(closed_today)
        newest = desk.find_element(By.CSS_SELECTOR, "#wall-ticker li").text
        assert "结案" in newest and "入户走访测温" in newest
        screenshot(desk, "story-wall")

        # The reporter's export for the grid counts it as closed, on time.
        reporter = signed_in(server.test_client(), "demo_reporter")
        day = today.date().isoformat()
        exported = reporter.get(f"/reports/export.csv?level=grid&area={GRID}&from={day}&to={day}")
        assert exported.status_code == 200
        lines = exported.get_data(as_text=True).lstrip("\ufeff").splitlines()[HEADER_ROW - 1:]  # the stamp above
        row = next(csv.DictReader(io.StringIO("\n".join(lines))))
    with work_engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FILTER (WHERE status = 'closed') AS closed, count(*) FILTER (WHERE status = 'closed' "
            "AND closed_at <= due_at) AS on_time FROM tasks WHERE grid_code = :g AND created_at >= :t "
            "AND created_at < :t + interval '1 day'"), {"g": GRID, "t": today}).one()
    say = say_for("zh")  # the export's headers are in the reader's language (Chinese by default)
    column = {name: header(name, say) for name in ("closed", "closed_on_time")}
    assert row[say("col.code")] == GRID and int(row[column["closed"]]) == expected.closed >= 1
    assert int(row[column["closed_on_time"]]) == expected.on_time >= 1
