"""The wall: its figures without a browser, then the page in a real headless Chromium."""

import re

import pytest
import requests
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from accounts.actor import Actor
from app import create_app
from benchmarks.wall import refresh_payload
from layers.wall import SUPPRESS_BELOW, density_geojson
from pages.wall import WALL_PATH
from tasks.overview import grid_figures, version_stamp, wall_summary
from tasks.repository import NewTask, create_task
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import Clock, signed_in
from tests.persons import flag_person


def test_the_stamp_moves_with_work_and_the_summary_adds_up(work_engine):
    clock = Clock()
    with work_engine.connect() as conn:
        before = version_stamp(conn)
    with work_engine.begin() as conn:
        create_task(conn, Actor.system(), NewTask("area_sweep", "440605011001003", "墙面测试"), clock())
    with work_engine.connect() as conn:
        after = version_stamp(conn)
        summary = wall_summary(conn, clock())
        open_tasks = conn.execute(text("SELECT count(*) FROM tasks WHERE status NOT IN ('closed', 'cancelled')"))
        open_tasks = open_tasks.scalar_one()
        grid_open = conn.execute(text("SELECT count(*) FROM tasks WHERE grid_code = '440605011001003' AND status "
                                      "NOT IN ('closed', 'cancelled')")).scalar_one()
    assert before != after
    assert summary["counters"]["open"] == open_tasks
    assert summary["grids"]["440605011001003"][2] == grid_open
    assert summary["ticker"][0]["grid"] and "墙面测试" not in str(summary["ticker"]), "no titles on the wall"


def test_density_leaves_out_cells_with_fewer_than_five(work_engine):
    with work_engine.connect() as conn:
        cells = density_geojson(conn)["features"]
    assert all(f["properties"]["count"] >= SUPPRESS_BELOW for f in cells)


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1920, 1080)
    yield driver
    close(driver)


RED_GRID = "440605011001006"
QUIET = "#22313f"  # nanhai.wall.RISK[0]: a grid with no red or yellow person


@pytest.mark.browser
def test_the_commander_wall_shows_1042_grids_counters_and_the_ticker(work_engine, browser):
    with work_engine.begin() as conn:
        create_task(conn, Actor.system(), NewTask("lead_verification", "440605011001004", "墙面动态"), Clock()())
    flag_person(work_engine, "e" * 64, RED_GRID)
    with work_engine.connect() as conn:
        risky = conn.execute(text("SELECT count(DISTINCT grid_id) FROM flags WHERE colour IN ('red', 'yellow') "
                                  "AND grid_id IS NOT NULL")).scalar_one()
    with LiveServer(create_app(work_engine).server) as live:
        log_in(browser, live.url, "demo_commander", "/wall/")
        wait = waiting(browser, 60)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.nh-wall-grid")) >= 1042)
        wait.until(lambda d: d.find_element(By.ID, "wall-open").text not in ("", "–"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "path.nh-wall-grid")) == 1042
        assert risky >= 1 and _lit(browser) == risky, "every grid with a red or yellow person is lit"
        with work_engine.connect() as conn:
            open_tasks = conn.execute(text("SELECT count(*) FROM tasks WHERE status NOT IN ('closed', "
                                           "'cancelled')")).scalar_one()
        assert browser.find_element(By.ID, "wall-open").text.replace(",", "") == str(open_tasks)
        assert browser.find_elements(By.CSS_SELECTOR, "#wall-ticker li")
        assert "数据时间" in browser.find_element(By.ID, "wall-as-of").text
        assert not re.search(r"[\u4e00-\u9fff]\*", browser.find_element(By.TAG_NAME, "body").text), \
            "no masked names either: the wall shows no person"
        requested = browser.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
        assert all(url.startswith(live.url) for url in requested)
        screenshot(browser, "wall")

        # Coloured by work, the wall lights a grid as soon as it gets open work (restyled, no geometry resent).
        browser.get(f"{live.url}/wall/?measure=work")
        wait.until(lambda d: "工作" in d.find_element(By.ID, "wall-measure").text)
        _until_lit(wait, lambda: _grids_with_open_work(work_engine), work_engine)
        with work_engine.begin() as conn:
            idle = conn.execute(text("SELECT code FROM grids WHERE id NOT IN (SELECT grid_id FROM tasks WHERE status "
                                     "NOT IN ('closed', 'cancelled')) ORDER BY code LIMIT 1")).scalar_one()
            create_task(conn, Actor.system(), NewTask("area_sweep", idle, "墙面点亮"), Clock()())
        before = _grids_with_open_work(work_engine) - 1
        assert before >= 1
        _until_lit(wait, lambda: before + 1, work_engine)


def _lit(driver) -> int:
    fills = driver.execute_script("return Array.from(document.querySelectorAll('path.nh-wall-grid'))"
                                  ".map(function (p) { return p.getAttribute('fill'); });")
    return sum(fill != QUIET for fill in fills)


def _until_lit(wait: WebDriverWait, expected, engine) -> None:
    """Wait until the wall lights ``expected()`` grids; on time-out, say how the server's figures differ."""
    seen: dict = {}

    def lit_as_expected(driver) -> bool:
        seen["lit"], seen["expected"] = _lit(driver), expected()
        return seen["lit"] == seen["expected"]

    try:
        wait.until(lit_as_expected)
    except TimeoutException:
        with engine.connect() as conn:
            figures = {code for code, v in grid_figures(conn, Clock()(), None).items() if v[2]}
            stored = set(conn.execute(text("SELECT DISTINCT g.code FROM tasks t JOIN grids g ON g.id = t.grid_id "
                                           "WHERE t.status NOT IN ('closed', 'cancelled')")).scalars())
        raise AssertionError(f"{seen.get('lit')} grids lit, {seen.get('expected')} expected; figures without "
                             f"stored work {sorted(figures - stored)}, stored work missing from the figures "
                             f"{sorted(stored - figures)}") from None


def _grids_with_open_work(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(DISTINCT grid_id) FROM tasks WHERE status NOT IN ('closed', "
                                 "'cancelled')")).scalar_one()


@pytest.mark.browser
def test_other_roles_are_refused_with_their_own_pages_offered_and_get_no_density(work_engine, browser):
    with LiveServer(create_app(work_engine).server) as live:
        browser.delete_all_cookies()
        log_in(browser, live.url, "demo_worker", "/wall/")
        refusal = waiting(browser, 30).until(lambda d: d.find_elements(By.ID, "page-refusal"))
        assert "无权" in refusal[0].text and "/wall/" in browser.current_url
        assert browser.find_elements(By.CSS_SELECTOR, "a[href='/field/']")
        assert not browser.find_elements(By.CSS_SELECTOR, ".leaflet-interactive")
        cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
        assert requests.get(f"{live.url}/layers/density.geojson", cookies=cookies).status_code == 403
        assert requests.get(f"{live.url}/layers/density.geojson").status_code == 403


@pytest.mark.browser
def test_the_wall_speaks_english_when_asked(work_engine, browser):
    with LiveServer(create_app(work_engine).server) as live:
        browser.delete_all_cookies()
        log_in(browser, live.url, "demo_commander", "/wall/")
        wait = waiting(browser, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a.nh-wall-language"))
        browser.find_element(By.CSS_SELECTOR, "a.nh-wall-language").click()
        wait.until(lambda d: "command centre" in d.find_element(By.TAG_NAME, "h1").text)
        assert "Open tasks" in browser.find_element(By.CSS_SELECTOR, ".nh-counter-open").text
        browser.find_element(By.CSS_SELECTOR, "a.nh-wall-language").click()
        wait.until(lambda d: "指挥中心" in d.find_element(By.TAG_NAME, "h1").text)


def _component(tree, wanted: str) -> dict | None:
    """The component with id ``wanted`` in a Dash layout as served (JSON)."""
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == wanted:
            return tree
        children = tree.get("props", {}).get("children")
        return _component(children, wanted) if children is not None else None
    if isinstance(tree, list):
        return next((found for child in tree if (found := _component(child, wanted)) is not None), None)
    return None


def test_the_wall_opens_with_its_figures_and_its_first_refresh_resends_nothing(work_engine):
    with work_engine.begin() as conn:
        idle = conn.execute(text("SELECT code FROM grids ORDER BY code DESC LIMIT 1")).scalar_one()
        create_task(conn, Actor.system(), NewTask("area_sweep", idle, "墙面首屏"), Clock()())
    client = signed_in(create_app(work_engine).server.test_client(), "demo_commander")
    layout = client.get(f"{WALL_PATH}_dash-layout").get_json()
    with work_engine.connect() as conn:
        stamp = version_stamp(conn)
        open_tasks = conn.execute(text("SELECT count(*) FROM tasks WHERE status NOT IN ('closed', "
                                       "'cancelled')")).scalar_one()
    assert _component(layout, "wall-version")["props"]["data"] == f"{stamp}|risk"
    assert _component(layout, "wall-open")["props"]["children"].replace(",", "") == str(open_tasks)
    assert _component(layout, "wall-ticker")["props"]["children"]
    first = client.post(f"{WALL_PATH}_dash-update-component", json=refresh_payload(f"{stamp}|risk")).get_json()
    assert set(first["response"]) == {"wall-last-ok"}  # figures, counters and ticker are not computed again
    moved = client.post(f"{WALL_PATH}_dash-update-component", json=refresh_payload(None)).get_json()
    assert moved["response"]["wall-version"]["data"] == f"{stamp}|risk"
