"""The wall's replay: yesterday's figures at any minute, for commanders only; then in a real headless Chromium,
the commander picks yesterday, moves the slider, plays at 60 minutes a second and goes back to live."""

import re
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import text

from accounts.actor import Actor
from app import create_app
from demo.accounts import create_demo_accounts
from matching.repository import store_match
from pages.wall_replay import replay_controls, replay_moment
from tasks.overview import BEIJING
from tasks.replay import DAYS
from tasks.repository import NewTask, create_task, transition
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import DEMO_PASSWORD, Clock, signed_in

GRID = "440605011001005"
UPDATE = "/wall/_dash-update-component"


def _yesterday(hours: float) -> datetime:
    today = datetime.now(BEIJING).date()
    return datetime.combine(today - timedelta(days=1), time(), BEIJING) + timedelta(hours=hours)


def _match(conn, reds: int, when: datetime, grid_id: int) -> None:
    """A match run storing ``reds`` red persons in the grid (their codes, history and flags)."""
    frame = pd.DataFrame([{
        "person_key": f"{i:064x}", "id_masked": "440605********0000", "name_masked": "测*", "phone_masked": None,
        "colour": "red", "reason": "确诊 / confirmed", "rule_id": "test", "sources": "测试", "set_at": when,
        "expires_at": pd.NaT, "method": "point", "confidence": 1.0, "grid_id": grid_id, "unplaced_reason": None,
        "record_feed_file_id": np.nan, "record_row_number": np.nan, "provisional": False, "explanation": None,
        "lon": 113.1, "lat": 23.0} for i in range(reds)])
    frame["set_at"] = pd.to_datetime(frame["set_at"], utc=True)
    frame["expires_at"] = pd.to_datetime(frame["expires_at"], utc=True)
    store_match(conn, [frame], pd.Timestamp(when))


@pytest.fixture(scope="module")
def yesterday(database_factory, seeded_engine):
    """A copy of the district with the demo accounts and yesterday's work: 2 red persons before 8:00, 5 after;
    a task open from 2:00 to 20:00, four more from 10:00."""
    engine = database_factory("nanhai_replay_page", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
        grid_id = conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID}).scalar_one()
        _match(conn, 2, _yesterday(-12), grid_id)
    with engine.begin() as conn:
        _match(conn, 5, _yesterday(8), grid_id)
    with engine.begin() as conn:
        night = create_task(conn, Actor.system(), NewTask("area_sweep", GRID, "夜间排查"), _yesterday(2))
        for i in range(4):
            create_task(conn, Actor.system(), NewTask("area_sweep", GRID, f"白天排查 {i}"), _yesterday(10 + i / 10))
        transition(conn, Actor.system(), night["id"], "cancel", night["version"], {"reason": "重复"}, _yesterday(20))
    DAYS.clear()
    return engine


def _show(client, day: str, minute: int, trigger: str = "wall-replay-minute.value"):
    """The replay's step as the browser posts it (the outputs as the page's dependencies name them)."""
    output = next(d["output"] for d in client.get("/wall/_dash-dependencies").get_json()
                  if "wall-replay-at.data" in d["output"])
    outputs = [dict(zip(("id", "property"), o.split(".", 1), strict=True)) for o in output.strip(".").split("...")]
    return client.post(UPDATE, json={
        "output": output, "outputs": outputs, "changedPropIds": [trigger],
        "inputs": [{"id": "wall-replay-minute", "property": "value", "value": minute},
                   {"id": "wall-replay-day", "property": "value", "value": day},
                   {"id": "wall-replay-live", "property": "n_clicks", "value": 0}],
        "state": [{"id": "wall-url", "property": "search", "value": ""},
                  {"id": "wall-lang", "property": "data", "value": "zh"}]})


def test_a_step_draws_yesterday_at_that_minute_for_commanders_only(yesterday):
    app = create_app(yesterday, Clock())
    day = _yesterday(0).date().isoformat()
    commander = signed_in(app.server.test_client(), "demo_commander")
    early = _show(commander, day, 6 * 60).get_json()["response"]
    late = _show(commander, day, 18 * 60).get_json()["response"]
    assert early["wall-as-of"]["children"] == f"回放 {day} 06:00"
    assert early["wall-replay-at"]["data"] == _yesterday(6).isoformat()
    assert (early["wall-red"]["children"], early["wall-open"]["children"]) == ("2", "1")
    assert (late["wall-red"]["children"], late["wall-open"]["children"]) == ("5", "5")
    assert late["wall-grids"]["hideout"]["values"][GRID] == [5, 0, 5, 0]
    live = _show(commander, day, 0, "wall-replay-live.n_clicks").get_json()["response"]
    assert live["wall-replay-at"]["data"] is None and live["wall-as-of"]["children"].startswith("数据时间")
    assert live["wall-open"]["children"] == "4"
    supervisor = signed_in(app.server.test_client(), "demo_supervisor")
    assert _show(supervisor, day, 6 * 60).status_code == 204, "not his to replay: nothing is drawn"
    assert _show(commander, "2999-01-01", 0).status_code == 204, "no replay of the future"


def test_the_moment_is_never_later_than_now():
    now = datetime(2026, 12, 3, 9, 30, tzinfo=BEIJING)
    assert replay_moment("2026-12-03", 23 * 60, now) == now
    assert replay_moment("2026-12-02", 23 * 60 + 59, now) == datetime(2026, 12, 2, 23, 59, tzinfo=BEIJING)
    assert replay_moment("not a day", 0, now) is None and replay_moment("2026-12-04", 0, now) is None


def _strings(component) -> list[str]:
    """Every text a component shows: children, labels, placeholders, titles, options (and stored labels)."""
    found: list[str] = []
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        return [t for c in component for t in _strings(c)]
    if isinstance(component, dict):
        return [t for v in component.values() for t in _strings(v)]
    for name in ("children", "placeholder", "title", "options", "data", "marks"):
        value = getattr(component, name, None)
        if value is not None and not isinstance(value, int | float | bool):
            found += _strings(value)
    return found


def test_the_controls_speak_one_language():
    english = " ".join(_strings(replay_controls("en", today=date(2026, 12, 3))))
    chinese = " ".join(_strings(replay_controls("zh", today=date(2026, 12, 3))))
    assert "Back to live" in english and not re.search(r"[\u4e00-\u9fff]", english)
    assert "返回实时" in chinese and not re.search(r"[A-Za-z]", chinese)


def _as_of(driver) -> str:
    return driver.find_element(By.ID, "wall-as-of").text


def _slide_to(driver, fraction: float) -> None:
    """Click the time slider at ``fraction`` of its width (0: midnight, 1: 23:59)."""
    rail = driver.find_element(By.CSS_SELECTOR, "#wall-replay-minute .dash-slider-root")
    width, height = rail.size["width"], rail.size["height"]
    # Selenium 4.2 counts the offset from the element's top-left corner
    ActionChains(driver).move_to_element_with_offset(rail, int(width * fraction), height // 2).click().perform()


@pytest.mark.browser
def test_the_commander_replays_yesterday_on_the_wall(yesterday):
    driver = chromium(1920, 1080)
    try:
        with LiveServer(create_app(yesterday).server) as live:
            log_in(driver, live.url, "demo_commander", "/wall/")
            wait = waiting(driver, 20)
            wait.until(lambda d: d.find_element(By.ID, "wall-open").text not in ("", "–"))
            day = _yesterday(0).date().isoformat()
            assert day in driver.find_element(By.ID, "wall-replay-day").text, "yesterday is picked"
            _slide_to(driver, 0.25)
            wait.until(lambda d: _as_of(d).startswith(f"回放 {day} 0"))
            early = (driver.find_element(By.ID, "wall-red").text, driver.find_element(By.ID, "wall-open").text)
            _slide_to(driver, 0.75)
            wait.until(lambda d: _as_of(d).startswith(f"回放 {day} 1"))
            late = (driver.find_element(By.ID, "wall-red").text, driver.find_element(By.ID, "wall-open").text)
            assert early == ("2", "1") and late == ("5", "5")
            screenshot(driver, "wall_replay")
            # play at 60 minutes a second: the stamp moves on by the hour
            driver.find_element(By.XPATH, "//*[@id='wall-replay-speed']//label[contains(., '60')]").click()
            driver.find_element(By.CSS_SELECTOR, "#wall-replay-minute [role=slider]").send_keys(Keys.HOME)
            wait.until(lambda d: _as_of(d) == f"回放 {day} 00:00")
            driver.find_element(By.ID, "wall-replay-play").click()
            wait.until(lambda d: _as_of(d) >= f"回放 {day} 03:00")
            assert driver.find_element(By.ID, "wall-replay-play").text == "暂停"
            driver.find_element(By.ID, "wall-replay-play").click()
            screenshot(driver, "wall_replay_playing")
            driver.find_element(By.ID, "wall-replay-live").click()
            wait.until(lambda d: _as_of(d).startswith("数据时间"))
            assert driver.find_element(By.ID, "wall-open").text == "4"
    finally:
        close(driver)
