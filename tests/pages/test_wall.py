"""The wall: its figures without a browser, then the page in a real headless Chromium (one server and one browser
for the module, at the wall's sizes: 1920 x 1080 and 3840 x 2160)."""

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
from layers.palette import QUIET, fill, legend_rows
from layers.wall import COMMUNITY_LABEL_ZOOM, PANES, SUPPRESS_BELOW, TOWN_LABEL_ZOOM, density_geojson
from observation.overview import wall_counters, wall_stamp
from pages.strings import catalog
from pages.wall import FOLLOW_UPS, MEASURES, WALL_PATH, legend, panel
from tasks.overview import grid_figures, version_stamp, wall_summary
from tasks.repository import NewTask, create_task
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import Clock, signed_in
from tests.language import CJK, foreign_text
from tests.observation.test_overview import add_plan, bj, direct
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


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_measure_has_a_legend_in_one_language(lang):
    for measure in (*MEASURES, "density", "checkpoint", "town", "community"):
        shown = legend(measure, lang)
        assert shown.className == f"nh-legend nh-legend-{measure}"
        lines = [str(row.children[1].children) for row in shown.children[-1].children]
        assert len(lines) == len(legend_rows(measure)) >= 1
        assert all("{" not in line for line in lines), "every number is filled in"
        assert all(bool(CJK.search(line)) == (lang == "zh") for line in lines), lines
    assert [str(row.children[1].children) for row in legend("risk", "en").children[-1].children] == [
        "No red or yellow", "Red: 1", "Red: 2–4", "Red: ≥ 5", "Yellow only: 1–2", "Yellow only: ≥ 3"]


def test_the_panel_names_kinds_and_events_in_the_page_language(work_engine):
    clock = Clock()
    with work_engine.begin() as conn:
        create_task(conn, Actor.system(), NewTask("home_visit", "440605011001003", "墙面语言"), clock())
    with work_engine.connect() as conn:
        summary = wall_summary(conn, clock())
    for lang in ("zh", "en"):
        values, ticker, as_of, measure, _alarm = panel(summary, lang, clock(), "work")
        line = ticker[0]
        event, kind, grid = line.children[1], line.children[3], line.children[5]
        assert grid.className == "nh-name nh-ticker-grid" and grid.children == summary["ticker"][0]["grid"]
        newest = summary["ticker"][0]
        assert newest["kind"] == "home_visit" and newest["action"] in ("create", "dispatch")
        assert kind.children == ("入户走访测温" if lang == "zh" else "Home visit with temperature")
        assert event.children == catalog(lang)[f"wall.event.{newest['action']}"]
        assert measure == catalog(lang)["wall.measure.work"] and as_of.startswith(catalog(lang)["wall.as_of"])
        assert len(values) == 12 and values[-4:] == ["–"] * 4, "a summary without follow-ups (replayed): –"


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


def _refresh(known: str | None, replay_at: str | None = None) -> dict:
    """The live refresh as the browser posts it, replaying (``replay_at``) or live."""
    payload = refresh_payload(known)
    payload["state"] = [s for s in payload["state"] if s["id"] != "wall-replay-at"] + [
        {"id": "wall-replay-at", "property": "data", "value": replay_at}]
    return payload


def test_the_wall_opens_with_its_figures_and_its_first_refresh_resends_nothing(work_engine):
    with work_engine.begin() as conn:
        idle = conn.execute(text("SELECT code FROM grids ORDER BY code DESC LIMIT 1")).scalar_one()
        create_task(conn, Actor.system(), NewTask("area_sweep", idle, "墙面首屏"), Clock()())
    client = signed_in(create_app(work_engine).server.test_client(), "demo_commander")
    layout = client.get(f"{WALL_PATH}_dash-layout").get_json()
    with work_engine.connect() as conn:
        stamp = f"{version_stamp(conn)}|{wall_stamp(conn, Clock()())}"
        open_tasks = conn.execute(text("SELECT count(*) FROM tasks WHERE status NOT IN ('closed', "
                                       "'cancelled')")).scalar_one()
    assert _component(layout, "wall-version")["props"]["data"] == f"{stamp}|risk"
    assert _component(layout, "wall-open")["props"]["children"].replace(",", "") == str(open_tasks)
    assert _component(layout, "wall-ticker")["props"]["children"]
    url = f"{WALL_PATH}_dash-update-component"
    first = client.post(url, json=_refresh(f"{stamp}|risk")).get_json()
    assert set(first["response"]) == {"wall-last-ok"}  # figures, counters and ticker are not computed again
    moved = client.post(url, json=_refresh(None)).get_json()["response"]
    assert moved["wall-version"]["data"] == f"{stamp}|risk"
    assert set(moved["wall-grids"]["hideout"]) == {"measure", "values", "seq"}, \
        "names, labels and colours travel once (the outlines' URL, the script), not with every refresh"
    # Replaying, the live refresh sends no figures: it forgets the version (live again, it redraws everything).
    replaying = client.post(url, json=_refresh(f"{stamp}|risk", "2026-12-02T10:00:00+08:00")).get_json()
    assert set(replaying["response"]) == {"wall-version", "wall-last-ok"}
    assert replaying["response"]["wall-version"]["data"] is None


def test_the_follow_up_counters_match_the_database_and_a_check_in_redraws_them(work_engine):
    """Persons in observation, checks due within the hour, missed today, fevers today: on the page as the
    database counts them (plain SQL), for the commander and for a town's wall; a report moves the stamp."""
    clock = Clock()
    clock.moment = bj(3, 10, 30)
    flag_person(work_engine, "wall-follow-1", "440605011001003", colour="yellow")
    flag_person(work_engine, "wall-follow-2", "440605011004001", colour="yellow")
    with work_engine.begin() as conn:
        add_plan(conn, "wall-follow-1", "440605011001003", bj(1, 9), checks=(
            (bj(3, 8), "done", bj(3, 8, 5), 38.2), (bj(3, 11), "due", None, None)))
        second = add_plan(conn, "wall-follow-2", "440605011004001", bj(1, 9), checks=(
            (bj(3, 8), "missed", None, None), (bj(3, 11, 15), "due", None, None)))
    client = signed_in(create_app(work_engine, clock).server.test_client(), "demo_commander")
    layout = client.get(f"{WALL_PATH}_dash-layout").get_json()
    with work_engine.connect() as conn:
        expected = direct(conn, clock())
        assert wall_counters(conn, clock()) == expected
    assert expected["observed"] >= 2 and expected["fevers_today"] >= 1 and expected["checks_missed_today"] >= 1
    assert expected["checks_due_soon"] >= 2
    shown = {key: int(_component(layout, f"wall-{key}")["props"]["children"].replace(",", "")) for key in FOLLOW_UPS}
    assert shown == expected
    url = f"{WALL_PATH}_dash-update-component"
    known = _component(layout, "wall-version")["props"]["data"]
    assert set(client.post(url, json=_refresh(known)).get_json()["response"]) == {"wall-last-ok"}
    with work_engine.begin() as conn:  # the person who missed this morning reports at 10:40
        conn.execute(text("UPDATE observation_checks SET status = 'done', reported_at = :at, temperature = 36.6, "
                          "channel = 'self' WHERE plan_id = :p AND due_at = :due"),
                     {"p": second, "at": bj(3, 10, 40), "due": bj(3, 11, 15)})
        conn.execute(text("INSERT INTO observation_events (plan_id, person_key, kind, at) VALUES "
                          "(:p, 'wall-follow-2', 'check', :at)"), {"p": second, "at": bj(3, 10, 40)})
    clock.moment = bj(3, 10, 41)
    redrawn = client.post(url, json=_refresh(known)).get_json()["response"]
    with work_engine.connect() as conn:
        expected = direct(conn, clock())
    assert {key: int(redrawn[f"wall-{key}"]["children"].replace(",", "")) for key in FOLLOW_UPS} == expected
    # a town's commander sees his town's plans only
    with work_engine.connect() as conn:
        town = sorted(conn.execute(text("SELECT id FROM grids WHERE code LIKE '440605011%'")).scalars())
        assert wall_counters(conn, clock(), town) == direct(conn, clock(), town)


# The browser tests: one server and one browser for them all.

@pytest.fixture(scope="module")
def live(work_engine):
    with LiveServer(create_app(work_engine).server) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1920, 1080)
    yield driver
    close(driver)


def _screen(driver, width: int, height: int) -> None:
    """The page's viewport at exactly ``width`` x ``height`` CSS pixels (the window's frame aside)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                                  "deviceScaleFactor": 1, "mobile": False})


RED_GRID = "440605011001006"


@pytest.mark.browser
def test_the_commander_wall_shows_1042_grids_counters_and_the_ticker(work_engine, live, browser):
    with work_engine.begin() as conn:
        create_task(conn, Actor.system(), NewTask("lead_verification", "440605011001004", "墙面动态"), Clock()())
    flag_person(work_engine, "e" * 64, RED_GRID)
    with work_engine.connect() as conn:
        risky = conn.execute(text("SELECT count(DISTINCT grid_id) FROM flags WHERE colour IN ('red', 'yellow') "
                                  "AND grid_id IS NOT NULL")).scalar_one()
    _screen(browser, 1920, 1080)
    browser.delete_all_cookies()
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
    with work_engine.connect() as conn:  # the follow-up counters, as the database counts them
        observed = direct(conn, Clock()())["observed"]
    assert browser.find_element(By.ID, "wall-observed").text.replace(",", "") == str(observed)
    assert browser.find_element(By.CSS_SELECTOR, ".nh-follow-counters-box h2").text == "居家随访"
    assert browser.find_elements(By.CSS_SELECTOR, "#wall-ticker li")
    assert "数据时间" in browser.find_element(By.ID, "wall-as-of").text
    assert not re.search(r"[\u4e00-\u9fff]\*", browser.find_element(By.TAG_NAME, "body").text), \
        "no masked names either: the wall shows no person"
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert all(url.startswith(live.url) for url in requested)
    assert _legends_shown(browser) == ["risk", "density", "symbols"]
    screenshot(browser, "wall")

    # Coloured by work, the wall lights a grid as soon as it gets open work (restyled, no geometry resent).
    browser.get(f"{live.url}/wall/?measure=work")
    wait.until(lambda d: "工作" in d.find_element(By.ID, "wall-measure").text)
    assert _legends_shown(browser) == ["work", "density", "symbols"]
    _until_lit(wait, lambda: _grids_with_open_work(work_engine), work_engine)
    with work_engine.begin() as conn:
        idle = conn.execute(text("SELECT code FROM grids WHERE id NOT IN (SELECT grid_id FROM tasks WHERE status "
                                 "NOT IN ('closed', 'cancelled')) ORDER BY code LIMIT 1")).scalar_one()
        create_task(conn, Actor.system(), NewTask("area_sweep", idle, "墙面点亮"), Clock()())
    before = _grids_with_open_work(work_engine) - 1
    assert before >= 1
    _until_lit(wait, lambda: before + 1, work_engine)


def _legends_shown(driver) -> list[str]:
    """The legends the wall shows (visible), by measure."""
    return [el.get_attribute("class").split("nh-legend-")[-1]
            for el in driver.find_elements(By.CSS_SELECTOR, "#wall-legend > .nh-legend") if el.is_displayed()]


def _lit(driver) -> int:
    fills = driver.execute_script("return Array.from(document.querySelectorAll('path.nh-wall-grid'))"
                                  ".map(function (p) { return p.getAttribute('fill'); });")
    return sum(fill != QUIET["dark"] for fill in fills)


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


# Where each layer is drawn: its pane's z-index and whether its shapes are in it; the topmost element at a
# checkpoint; the labels shown, each with its box; the counter's font size; the map's zoom and the district's
# share of it.
INSPECT = """
const z = (name) => { const el = document.querySelector('.leaflet-' + name + '-pane');
                      return el ? Number(getComputedStyle(el).zIndex) : null; };
const inPane = (selector, name) => { const all = document.querySelectorAll(selector);
  return all.length > 0 && Array.from(all).every((el) => el.closest('.leaflet-' + name + '-pane') !== null); };
const point = document.querySelector('path.nh-wall-checkpoint');
const box = point ? point.getBoundingClientRect() : null;
const top = box ? document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2) : null;
const labels = Array.from(document.querySelectorAll('.nh-label'))
  .filter((el) => !el.classList.contains('nh-label-off') && !el.classList.contains('nh-label-clash'))
  .map((el) => { const r = el.firstChild.getBoundingClientRect();
                 return [el.classList.contains('nh-label-town') ? 'town' : 'community', r.left, r.top, r.right,
                         r.bottom]; });
const w = window.nanhai.wall;
const counter = document.querySelector('#wall-red');
const map = document.querySelector('#wall-map').getBoundingClientRect();
const wall = document.querySelector('.nh-wall').getBoundingClientRect();
return {z: {grids: z('nh-grids'), density: z('nh-density'), outlines: z('nh-outlines'),
            checkpoints: z('nh-checkpoints'), labels: z('nh-labels')},
        placed: {grids: inPane('path.nh-wall-grid', 'nh-grids'),
                 outlines: inPane('path.nh-wall-outline', 'nh-outlines'),
                 checkpoints: inPane('path.nh-wall-checkpoint', 'nh-checkpoints'),
                 labels: inPane('.nh-label', 'nh-labels')},
        top: top ? top.getAttribute('class') : null, labels: labels,
        counter: parseFloat(getComputedStyle(counter).fontSize), zoom: w.map.getZoom(), labelZoom: w.labelZoom(),
        fitted: w.bounds !== null && w.map.getBounds().pad(0.001).contains(L.latLngBounds(w.bounds)),
        size: [w.map.getSize().x, w.map.getSize().y, map.width, map.height],
        filled: w.bounds === null ? null : (() => {
          const b = L.latLngBounds(w.bounds), s = w.map.getSize();
          const a = w.map.latLngToContainerPoint(b.getSouthWest()), c = w.map.latLngToContainerPoint(b.getNorthEast());
          return Math.max(Math.abs(c.x - a.x) / s.x, Math.abs(a.y - c.y) / s.y); })(),
        wall: [wall.width, wall.height], map: [map.width, map.height], inner: [innerWidth, innerHeight]};
"""


SAMPLES = [(measure, [red, yellow, open_, overdue]) for measure in MEASURES for red, yellow, open_, overdue in
           ((0, 0, 0, 0), (0, 2, 1, 0), (0, 3, 3, 1), (1, 9, 0, 2), (4, 0, 9, 4), (5, 1, 0, 5), (70, 70, 70, 70))]


def _overlapping(labels: list) -> list:
    return [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]
            if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]]


@pytest.mark.browser
def test_the_wall_explains_itself_at_full_hd_and_at_4k(live, browser):
    sizes = {}
    for width, height in ((1920, 1080), (3840, 2160)):
        _screen(browser, width, height)
        browser.delete_all_cookies()
        log_in(browser, live.url, "demo_commander", "/wall/")
        wait = waiting(browser, 60)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.nh-wall-grid")) >= 1042
                   and d.find_elements(By.CSS_SELECTOR, "path.nh-wall-checkpoint")
                   and d.find_elements(By.CSS_SELECTOR, ".nh-label-town:not(.nh-label-off)"))
        seen = browser.execute_script(INSPECT)
        if width == 1920:  # the browser colours as the legend says (the palette, from layers/palette.py)
            assert browser.execute_script(
                "return arguments[0].map(function (c) { return window.nanhai.palette.fill(c[0], c[1]); });",
                SAMPLES) == [fill(measure, values) for measure, values in SAMPLES]
        # The layers in order, whatever order they arrived in: checkpoints and outlines above the grid fill.
        z = seen["z"]
        assert z["grids"] < z["density"] < z["outlines"] < z["checkpoints"] < z["labels"], z
        assert z == {name.removeprefix("nh-"): index for name, index in PANES.items()}
        assert all(seen["placed"].values()), seen["placed"]
        assert "nh-wall-checkpoint" in (seen["top"] or ""), f"a checkpoint is drawn on top, not {seen['top']}"
        # The whole width: the map and the side panel fill the screen; the district fills the map.
        assert seen["wall"] == [width, height] and seen["inner"] == [width, height]
        assert seen["map"][0] > 0.6 * width
        assert seen["fitted"] and seen["size"][:2] == [round(v) for v in seen["size"][2:]], "the district in view"
        sizes[width] = seen
        # Town labels at the district's zoom, no community label yet, none overlapping.
        kinds = {kind for kind, *_ in seen["labels"]}
        assert kinds == {"town"} and TOWN_LABEL_ZOOM <= seen["labelZoom"] < COMMUNITY_LABEL_ZOOM, seen
        assert not _overlapping(seen["labels"])
        screenshot(browser, f"wall-{width}x{height}")
        if width > 1920:
            break
        # Closer in, the communities are named too, still without overlaps.
        browser.execute_script("var w = window.nanhai.wall; w.map.setZoom(w.map.getZoom() + "
                               f"{COMMUNITY_LABEL_ZOOM + 0.5} - w.labelZoom(), {{animate: false}});")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".nh-label-community:not(.nh-label-off)"))
        closer = browser.execute_script(INSPECT)
        assert closer["labelZoom"] >= COMMUNITY_LABEL_ZOOM
        assert "community" in {kind for kind, *_ in closer["labels"]} and not _overlapping(closer["labels"])
        screenshot(browser, "wall-communities")
    # As legible at 4K as at full HD: text twice the size, the district drawn a zoom level closer, filling the map
    # as much.
    assert sizes[3840]["counter"] >= 1.8 * sizes[1920]["counter"], (sizes[1920]["counter"], sizes[3840]["counter"])
    fits = {width: (seen["zoom"], seen["filled"]) for width, seen in sizes.items()}
    assert abs(fits[3840][0] - fits[1920][0] - 1) <= 0.15, fits
    assert all(0.85 <= filled <= 1 for _, filled in fits.values()) and abs(fits[3840][1] - fits[1920][1]) < 0.1, fits
    _screen(browser, 1920, 1080)


@pytest.mark.browser
def test_other_roles_are_refused_with_their_own_pages_offered_and_get_no_density(live, browser):
    _screen(browser, 1920, 1080)
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
def test_the_wall_speaks_one_language_at_a_time(live, browser):
    _screen(browser, 1920, 1080)
    browser.delete_all_cookies()
    log_in(browser, live.url, "demo_commander", "/wall/")
    wait = waiting(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a.nh-wall-language"))
    assert browser.find_element(By.CSS_SELECTOR, "a.nh-wall-language").get_attribute("lang") == "en"
    browser.find_element(By.CSS_SELECTOR, "a.nh-wall-language").click()
    wait.until(lambda d: "command centre" in d.find_element(By.TAG_NAME, "h1").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#wall-ticker .nh-ticker-grid")
               and d.find_elements(By.CSS_SELECTOR, ".nh-label-town:not(.nh-label-off)"))
    assert "Open tasks" in browser.find_element(By.CSS_SELECTOR, ".nh-counter-open").text
    assert browser.find_element(By.CSS_SELECTOR, "a.nh-wall-language").get_attribute("lang") == "zh"
    assert foreign_text(browser, "en") == []
    screenshot(browser, "wall-en")
    browser.find_element(By.CSS_SELECTOR, "a.nh-wall-language").click()
    wait.until(lambda d: "指挥中心" in d.find_element(By.TAG_NAME, "h1").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#wall-ticker .nh-ticker-grid"))
    assert foreign_text(browser, "zh") == []
