"""The statistics page: its export routes without a browser, then the page in a real headless Chromium."""

import csv
import io

import pytest
import requests
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from sqlalchemy import text

from accounts.repository import load_actor
from app import create_app
from evaluation.export import SUPPRESSED_TEXT
from evaluation.indicators import REPORT_COLUMNS, report
from tests.api.client import ApiClient
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import Clock
from tests.evaluation.test_export import EXPECTED_G, PERIOD, STATUSES_G, as_the_reporter_sees, hand_made_tasks

QUERY = "level=grid&area={area}&from=2025-04-01&to=2025-04-02"


@pytest.fixture(scope="module")
def made(work_engine) -> tuple[str, str, str]:
    return hand_made_tasks(work_engine)


@pytest.fixture(scope="module")
def live(work_engine):
    with LiveServer(create_app(work_engine, Clock()).server) as server:
        yield server


def _reporter_rows(engine, area: str) -> list[dict]:
    with engine.connect() as conn:
        user = conn.execute(text("SELECT id FROM users WHERE username = 'demo_reporter'")).scalar_one()
        return report(conn, load_actor(conn, user), "grid", PERIOD, Clock()(), area)


def test_the_reporters_csv_is_evaluate_to_the_last_digit_with_its_stamp(work_engine, made, live):
    community, grid, _ = made
    reporter = ApiClient(live.url, "demo_reporter").http
    answer = reporter.get(f"{live.url}/reports/export.csv?" + QUERY.format(area=community))
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    assert answer.headers["Content-Disposition"] == "attachment; filename=stats-grid-2025-04-01-2025-04-02.csv"
    assert answer.content.startswith("\ufeff".encode())
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ("# 数据时间 2025-04-03T00:00:00+08:00; 查询 /reports/export.csv?"
                        + QUERY.format(area=community))
    read = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    expected = _reporter_rows(work_engine, community)
    assert read == [{k: "" if r[k] is None else str(r[k]) for k in REPORT_COLUMNS} for r in expected]
    g = next(r for r in read if r["code"] == grid)
    as_the_reporter_sees(g, EXPECTED_G, hidden="", form=str)
    assert {k: g[k] for k in STATUSES_G} == {k: str(v) for k, v in STATUSES_G.items()}


def test_the_reporters_excel_is_evaluate_to_the_last_digit_with_its_stamp(work_engine, made, live):
    community, grid, _ = made
    reporter = ApiClient(live.url, "demo_reporter").http
    answer = reporter.get(f"{live.url}/reports/export.xlsx?" + QUERY.format(area=community))
    assert answer.status_code == 200 and "spreadsheetml" in answer.headers["Content-Type"]
    sheet = load_workbook(io.BytesIO(answer.content))["统计"]
    assert sheet["B1"].value == "2025-04-03T00:00:00+08:00"
    assert sheet["B2"].value == "/reports/export.xlsx?" + QUERY.format(area=community)
    expected = _reporter_rows(work_engine, community)
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=6)]
    assert [row[1] for row in cells] == [r["code"] for r in expected]
    for row, want in zip(cells, expected, strict=True):
        assert row[3:] == [SUPPRESSED_TEXT if want[k] is None and k.startswith("persons_") else want[k]
                           for k in REPORT_COLUMNS[3:]]
    g = dict(zip(REPORT_COLUMNS, next(row for row in cells if row[1] == grid), strict=True))
    as_the_reporter_sees(g, EXPECTED_G, hidden=SUPPRESSED_TEXT)


def test_the_export_refuses_a_stranger_and_a_worker(live, made):
    stranger = requests.get(f"{live.url}/reports/export.csv?level=town", allow_redirects=False)
    assert stranger.status_code == 302 and stranger.headers["Location"].endswith("/login?next=/reports/")
    assert requests.get(f"{live.url}/reports/export.xlsx", allow_redirects=False).status_code == 302
    worker = ApiClient(live.url, "demo_worker").http
    assert worker.get(f"{live.url}/reports/export.csv?level=town").status_code == 403
    assert worker.get(f"{live.url}/reports/export.xlsx?level=town").status_code == 403
    reporter = ApiClient(live.url, "demo_reporter").http
    assert reporter.get(f"{live.url}/reports/export.csv?level=street").status_code == 422
    assert reporter.get(f"{live.url}/reports/export.csv?area=44%25").status_code == 422, "an area is digits only"
    assert reporter.get(f"{live.url}/reports/export.csv?from=2025-04-05&to=2025-04-01").status_code == 422


def test_a_supervisor_exports_only_his_community(live):
    supervisor = ApiClient(live.url, "demo_supervisor").http
    lines = supervisor.get(f"{live.url}/reports/export.csv?level=grid").content.decode("utf-8-sig").splitlines()
    codes = [row["code"] for row in csv.DictReader(io.StringIO("\n".join(lines[1:])))]
    assert len(codes) == 8 and all(code.startswith("440605011001") for code in codes)


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1280, 900)
    yield driver
    close(driver)


@pytest.mark.browser
def test_the_reporter_picks_towns_sees_tables_and_charts_and_exports(work_engine, made, live, browser):
    with work_engine.connect() as conn:
        towns = conn.execute(text("SELECT count(DISTINCT c.town_id) FROM grids g "
                                  "JOIN communities c ON c.id = g.community_id")).scalar_one()
    log_in(browser, live.url, "demo_reporter", "/reports/")
    wait = waiting(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#reports-indicators-rows tbody tr"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#reports-indicators-rows tbody tr")) == 1, "the district"
    next(label for label in browser.find_elements(By.CSS_SELECTOR, "#reports-level label")
         if label.text.strip() == "镇街").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#reports-indicators-rows tbody tr")) == towns)
    for key in ("persons", "statuses"):
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#reports-{key}-rows tbody tr")) == towns
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot g.trace.bars")) >= 3)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == 3
    assert "数据时间" in browser.find_element(By.ID, "reports-stamp").text
    assert "结案率" in browser.find_element(By.ID, "reports-indicators-rows").text
    href = browser.find_element(By.ID, "reports-csv").get_attribute("href")
    assert "level=town" in href
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    exported = requests.get(href, cookies=cookies)
    assert exported.status_code == 200
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("# 数据时间") and "level=town" in lines[0] and len(lines) == 2 + towns
    workbook = requests.get(browser.find_element(By.ID, "reports-xlsx").get_attribute("href"), cookies=cookies)
    assert workbook.status_code == 200 and load_workbook(io.BytesIO(workbook.content))["统计"].max_row == 5 + towns
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert all(url.startswith(live.url) for url in requested), "nothing from outside the server"
    screenshot(browser, "reports")


@pytest.mark.browser
def test_the_page_speaks_english_and_refuses_a_worker(live, browser):
    browser.delete_all_cookies()
    log_in(browser, live.url, "demo_reporter", "/reports/")
    wait = waiting(browser, 60)
    wait.until(lambda d: "统计" in "".join(h.text for h in d.find_elements(By.TAG_NAME, "h1")))
    browser.get(f"{live.url}/lang/en?next=/reports/")
    wait.until(lambda d: "Statistics" in "".join(h.text for h in d.find_elements(By.TAG_NAME, "h1")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#reports-indicators-rows tbody tr"))
    assert "Closure rate" in browser.find_element(By.ID, "reports-indicators-rows").text
    browser.get(f"{live.url}/lang/zh?next=/reports/")
    browser.delete_all_cookies()
    log_in(browser, live.url, "demo_worker", "/reports/")
    wait.until(lambda d: d.find_elements(By.ID, "page-refusal"))
    assert not browser.find_elements(By.ID, "reports-indicators-rows")
