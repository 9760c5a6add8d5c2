"""The statistics page: its downloads without a browser (CSV and Excel cell for cell, the 日报 as Excel and PDF),
then the page in a real headless Chromium at the reporter's 1440 x 900."""

import csv
import io
import re

import pytest
import requests
from openpyxl import load_workbook
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from evaluation.export import HEADER_ROW, SUPPRESSED_TEXT
from evaluation.indicators import REPORT_COLUMNS
from pages.strings import text as say
from tests.api.client import ApiClient
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import Clock
from tests.evaluation.test_export import STATUSES_G, hand_made_tasks
from tests.language import foreign_text

QUERY = "level=grid&area={area}&from=2025-04-01&to=2025-04-02"


@pytest.fixture(scope="module")
def made(work_engine) -> tuple[str, str, str]:
    return hand_made_tasks(work_engine)


@pytest.fixture(scope="module")
def live(work_engine):
    with LiveServer(create_app(work_engine, Clock()).server) as server:
        yield server


def _csv_cells(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _xlsx_cells(body: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(body)).worksheets[0]
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def _both(http: requests.Session, base: str, query: str) -> tuple[list[list[str]], list[list[str]]]:
    answers = [http.get(f"{base}/reports/export.{kind}?{query}") for kind in ("csv", "xlsx")]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text[:200]
    assert answers[0].headers["Content-Type"].startswith("text/csv")
    assert "spreadsheetml" in answers[1].headers["Content-Type"]
    return _csv_cells(answers[0].content), _xlsx_cells(answers[1].content)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_reporters_csv_and_excel_agree_cell_for_cell(made, live, lang):
    community, grid, _ = made
    reporter = ApiClient(live.url, "demo_reporter").http
    query = QUERY.format(area=community)
    from_csv, from_xlsx = _both(reporter, live.url, f"{query}&lang={lang}")
    # the generated time is the request's: the same clock, so the same second in both
    assert from_csv == from_xlsx
    assert from_csv[0][:2] == [say("reports.as_of", lang), "2025-04-03T00:00:00+08:00"]
    assert from_csv[1][:2] == [say("reports.query", lang), f"/reports/?{query}"]
    head = from_csv[HEADER_ROW - 1]
    assert head[1] == say("reports.col.code", lang) and head[REPORT_COLUMNS.index("status_cancelled")] == \
        say("reports.col.status_prefix", lang) + say("reports.col.status_cancelled", lang)
    assert head[-2:] == [say("reports.col.follow_up_rate", lang) + say("reports.col.percent", lang),
                         say("reports.col.lost_to_follow_up", lang)], "the follow-ups after the statuses"
    g = dict(zip(REPORT_COLUMNS, next(r for r in from_csv if r[1] == grid), strict=True))
    assert g["persons_red"] == SUPPRESSED_TEXT == "<5" and g["closure_rate"] == "22.22"
    assert {k: g[k] for k in STATUSES_G} == {k: str(v) for k, v in STATUSES_G.items()}
    assert all(r[0] != say("reports.level.unplaced", lang) for r in from_csv), "no unplaced row for a reporter"


def test_a_commanders_files_end_with_the_unplaced_row_and_a_supervisors_name_his_community(made, live):
    commander = ApiClient(live.url, "demo_commander").http
    from_csv, from_xlsx = _both(commander, live.url, "level=town&from=2025-04-01&to=2025-04-02")
    assert from_csv == from_xlsx
    assert from_csv[3][:2] == ["范围", "南海区"]
    assert from_csv[-1][:3] == ["未落图", "", "未落图（无网格）"], "the persons in no grid: a row of their own"
    supervisor = ApiClient(live.url, "demo_supervisor").http
    from_csv, from_xlsx = _both(supervisor, live.url, "level=grid&area=440605011")
    assert from_csv == from_xlsx and from_csv[3][:2] == ["范围", "桂一社区居委会"]
    codes = [row[1] for row in from_csv[HEADER_ROW:]]
    assert len(codes) == 8 and all(code.startswith("440605011001") for code in codes)


def pdf_text(body: bytes) -> str:
    """The text layer of a PDF, as a reader's PDF library (pypdf) extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def test_the_daily_report_opens_in_excel_and_as_a_pdf(work_engine, made, live):
    commander = ApiClient(live.url, "demo_commander").http
    book = commander.get(f"{live.url}/reports/daily.xlsx?to=2025-04-01&lang=zh")
    assert book.status_code == 200 and "spreadsheetml" in book.headers["Content-Type"]
    assert book.headers["Content-Disposition"] == "attachment; filename=daily-2025-04-01.xlsx"
    cells = [[c for c in row if c is not None] for row in load_workbook(io.BytesIO(book.content)).worksheets[0]
             .iter_rows(values_only=True)]
    assert cells[0] == ["南海区 日报 2025-04-01"]
    headings = [row[0] for row in cells if len(row) == 1 and str(row[0])[:2] in ("一、", "二、", "三、", "四、")]
    assert headings == [say(f"reports.daily.{k}") for k in ("persons", "new", "tasks", "follow_ups")]
    assert [say("reports.daily.follow_ups_absent")] not in cells
    assert any(say("reports.col.follow_up_rate") + say("reports.col.percent") in row for row in cells), \
        "the follow-ups' table, under its header"
    town = next(row for row in cells if row[1:2] == ["440605124"])
    totals = [row for row in cells if row and row[0] == "合计"]
    assert len(totals) == 4 and town
    opened = totals[2][2]
    pdf = commander.get(f"{live.url}/reports/daily.pdf?to=2025-04-01&lang=zh")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and len(PdfReader(io.BytesIO(pdf.content)).pages) >= 1
    layer = pdf_text(pdf.content)
    assert "南海区 日报 2025-04-01" in layer and "随访" in layer and town[0] in layer
    assert str(opened) in layer.split("合计")[3], "the day's tasks opened, as in the workbook (the third total)"
    english = commander.get(f"{live.url}/reports/daily.pdf?to=2025-04-01&lang=en")
    assert "daily report 2025-04-01" in pdf_text(english.content) and "Follow-ups" in pdf_text(english.content)
    with work_engine.connect() as conn:
        kinds = conn.execute(text("SELECT reason FROM audit_log WHERE action = 'reports.export' "
                                  "AND username = 'demo_commander'")).scalars().all()
    assert {"daily.xlsx", "daily.pdf"} <= set(kinds), "every download is audited"


def test_only_the_reports_page_loads_the_mantine_scripts(live):
    for path, mantine in (("/reports/", True), ("/wall/", False), ("/field/", False), ("/dispatch/", False)):
        page = requests.get(f"{live.url}{path}").text
        assert ("dash_mantine_components.v" in page) is mantine, path
    script = re.search(r'src="(/reports/_dash-component-suites/dash_mantine_components/[^"]+)"',
                       requests.get(f"{live.url}/reports/").text)
    assert script and requests.get(f"{live.url}{script.group(1)}").status_code == 200


def test_the_downloads_refuse_a_stranger_and_a_worker(live, made):
    for path in ("export.csv", "export.xlsx", "daily.xlsx", "daily.pdf"):
        stranger = requests.get(f"{live.url}/reports/{path}?level=town", allow_redirects=False)
        assert stranger.status_code == 302 and stranger.headers["Location"].endswith("/login?next=/reports/")
        assert ApiClient(live.url, "demo_worker").http.get(f"{live.url}/reports/{path}").status_code == 403
    reporter = ApiClient(live.url, "demo_reporter").http
    assert reporter.get(f"{live.url}/reports/export.csv?level=street").status_code == 422
    assert reporter.get(f"{live.url}/reports/export.csv?area=44%25").status_code == 422, "an area is digits only"
    assert reporter.get(f"{live.url}/reports/export.csv?from=2025-04-05&to=2025-04-01").status_code == 422


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1440, 900)
    yield driver
    close(driver)


def _rows(driver, key: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, f"#reports-{key}-rows tbody tr"))


@pytest.mark.browser
def test_the_reporter_uses_presets_sorts_prints_and_downloads(work_engine, made, live, browser):
    with work_engine.connect() as conn:
        towns = conn.execute(text("SELECT count(DISTINCT c.town_id) FROM grids g "
                                  "JOIN communities c ON c.id = g.community_id")).scalar_one()
    log_in(browser, live.url, "demo_reporter", "/reports/")
    wait = waiting(browser, 60)
    wait.until(lambda d: _rows(d, "indicators") == 1 and _rows(d, "trend") == 7)
    assert browser.find_element(By.ID, "reports-scope").text == "南海区"
    next(label for label in browser.find_elements(By.CSS_SELECTOR, "#reports-level label")
         if label.text.strip() == "镇街").click()
    wait.until(lambda d: _rows(d, "indicators") == towns == _rows(d, "persons") == _rows(d, "follow_ups"))
    follow = browser.find_element(By.ID, "reports-follow_ups-rows").text
    assert "随访完成率" in follow and "失访人数" in follow, "the follow-ups per unit, in a table of their own"
    browser.find_element(By.ID, "reports-preset-30").click()
    wait.until(lambda d: _rows(d, "trend") == 30)
    browser.find_element(By.ID, "reports-preset-today").click()
    wait.until(lambda d: _rows(d, "trend") == 1)
    picker = browser.find_element(By.CSS_SELECTOR, ".nh-date button")
    today = picker.text.split(" – ")
    assert len(today) == 2 and today[0] == today[1], "today's range: one day"
    # the calendar speaks Chinese (the vendored dayjs locale), weeks from Monday
    picker.click()
    wait.until(lambda d: "月" in d.find_element(By.CSS_SELECTOR, ".mantine-DatePickerInput-calendarHeaderLevel").text)
    weekdays = [w.text for w in browser.find_elements(By.CSS_SELECTOR, "th.mantine-DatePickerInput-weekday")]
    assert weekdays == ["一", "二", "三", "四", "五", "六", "日"]
    assert foreign_text(browser, "zh") == []
    screenshot(browser, "reports-calendar")
    picker.click()  # closes the calendar
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".mantine-DatePickerInput-calendarHeaderLevel"))
    # small multiples: one bar chart per colour
    assert len(browser.find_elements(By.CSS_SELECTOR, "#reports-persons-chart g.trace.bars")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == 4
    # print: the controls gone, the tables whole
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not browser.find_element(By.CSS_SELECTOR, ".nh-reports-controls").is_displayed()
    assert browser.find_element(By.ID, "reports-print").is_displayed() is False
    screenshot(browser, "reports-print")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    for key in ("csv", "xlsx", "daily-xlsx", "daily-pdf"):
        href = browser.find_element(By.ID, f"reports-{key}").get_attribute("href")
        assert "level=town" in href and "lang=zh" in href
        assert requests.get(href, cookies=cookies).status_code == 200, key
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert all(url.startswith(live.url) for url in requested), "nothing from outside the server"
    screenshot(browser, "reports")


@pytest.mark.browser
def test_the_english_page_has_no_chinese_and_the_supervisor_sees_his_community(live, browser):
    browser.delete_all_cookies()
    log_in(browser, live.url, "demo_supervisor", "/reports/")
    wait = waiting(browser, 60)
    wait.until(lambda d: _rows(d, "indicators") == 1)
    assert browser.find_element(By.ID, "reports-scope").text == "桂一社区居委会"
    browser.get(f"{live.url}/lang/en?next=/reports/")
    wait.until(lambda d: "Statistics" in "".join(h.text for h in d.find_elements(By.TAG_NAME, "h1")))
    wait.until(lambda d: _rows(d, "indicators") == 1 and _rows(d, "trend") == 7)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .xtick")) > 3)
    assert "Closure rate" in browser.find_element(By.ID, "reports-indicators-rows").text
    assert "Lost to follow-up" in browser.find_element(By.ID, "reports-follow_ups-rows").text
    assert foreign_text(browser, "en") == []
    screenshot(browser, "reports-en")
    browser.get(f"{live.url}/lang/zh?next=/reports/")
    browser.delete_all_cookies()
    log_in(browser, live.url, "demo_worker", "/reports/")
    wait.until(lambda d: d.find_elements(By.ID, "page-refusal"))
    assert not browser.find_elements(By.ID, "reports-indicators-rows")
