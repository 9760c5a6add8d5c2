"""The audit page (/admin/audit/): only administrators and commanders open it or get an answer from its callbacks;
what it shows and exports is the log, filtered, and each read is logged; then, in a real headless Chromium, an
administrator filters the log and exports it to Excel."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from sqlalchemy import Engine, text

from accounts.actor import SUPERVISOR, Actor
from accounts.repository import record_read
from app import create_app
from matching.privacy import load_vault
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import signed_in
from tests.matching.feedfiles import valid_id
from tests.pages.test_people import request_body

URL = "/admin/audit/_dash-update-component"
READERS = ("demo_admin", "demo_commander")
OTHERS = ("demo_supervisor", "demo_worker", "demo_reporter", "anonymous")
PERSON_ID = valid_id(801)


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine) -> Engine:
    """A copy of the seeded district with the demo accounts and three look-ups of one person in its audit log."""
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory("nanhai_audit_page", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
        for n in range(3):
            record_read(conn, Actor(None, "audit_page_supervisor", SUPERVISOR), "person.lookup",
                        load_vault().person_key(PERSON_ID), f"热线来电 {n}", None)
    return engine


@pytest.fixture(scope="module")
def server(engine):
    return create_app(engine).server


FORGED = {"audit-search.n_clicks": 1, "audit-prev.n_clicks": None, "audit-next.n_clicks": None,
          "audit-user.value": None, "audit-person.value": PERSON_ID, "audit-kind.value": "person.lookup",
          "audit-dates.value": None, "audit-page.data": 1,
          "audit-lang.data": "zh", "audit-export.n_clicks": 1}


def _dependencies(client) -> list[dict]:
    return [d for d in client.get("/admin/audit/_dash-dependencies").get_json() if not d.get("clientside_function")]


def _answer(client, output_part: str, values: dict) -> dict:
    dependency = next(d for d in _dependencies(client) if output_part in d["output"])
    answer = client.post(URL, json=request_body(dependency, values))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return answer.get_json()


def _lines(engine: Engine, action: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT username, reason FROM audit_log WHERE action = :a "
                                                    "ORDER BY id"), {"a": action})]


def test_the_page_and_its_callbacks_answer_administrators_and_commanders_only(server, engine):
    clients = {name: signed_in(server.test_client(), name) for name in (*READERS, *OTHERS[:-1])}
    clients["anonymous"] = server.test_client()
    for name, client in clients.items():
        layout = json.dumps(client.get("/admin/audit/_dash-layout").get_json(), ensure_ascii=False)
        if name in READERS:
            assert "audit-table" in layout and "page-refusal" not in layout, name
        elif name == "anonymous":
            assert "login-redirect" in layout and "audit-table" not in layout
        else:
            assert "page-refusal" in layout and "audit-table" not in layout, name
    reads = len(_lines(engine, "audit.read")) + len(_lines(engine, "audit.export"))
    dependencies = _dependencies(clients["demo_admin"])
    assert len(dependencies) == 2, [d["output"] for d in dependencies]
    for dependency in dependencies:
        body = request_body(dependency, FORGED)
        for name in OTHERS:
            assert clients[name].post(URL, json=body).status_code == 204, (name, dependency["output"])
        for name in READERS:
            answer = clients[name].post(URL, json=body)
            assert answer.status_code == 200, (name, dependency["output"], answer.get_data(as_text=True)[:300])
    assert len(_lines(engine, "audit.read")) + len(_lines(engine, "audit.export")) == reads + 4, \
        "each reader's read and export logged; nobody else's"


def test_the_table_shows_the_filtered_log_and_the_read_is_logged_by_key(server, engine):
    commander = signed_in(server.test_client(), "demo_commander")
    shown = json.dumps(_answer(commander, "audit-table.children", FORGED), ensure_ascii=False)
    assert all(f"热线来电 {n}" in shown for n in range(3)) and "共 3 条" in shown and PERSON_ID not in shown
    key = load_vault().person_key(PERSON_ID)
    assert _lines(engine, "audit.read")[-1] == ("demo_commander", f"person={key} kind=person.lookup")
    wrong = json.dumps(_answer(commander, "audit-table.children", {**FORGED, "audit-person.value": PERSON_ID[:-1] +
                                                                   ("0" if PERSON_ID[-1] != "0" else "1")}),
                       ensure_ascii=False)
    assert "身份证号无效" in wrong and "nh-error" in wrong
    paged = json.dumps(_answer(commander, "audit-table.children", {**FORGED, "audit-person.value": None,
                                                                   "audit-kind.value": None}), ensure_ascii=False)
    assert "第 1/" in paged


def test_the_export_is_the_filtered_log_as_a_sheet(server, engine):
    admin = signed_in(server.test_client(), "demo_admin")
    answer = _answer(admin, "audit-download.data", FORGED)
    download = answer["response"]["audit-download"]["data"]
    assert download["filename"].endswith(".xlsx") and download["base64"]
    sheet = load_workbook(io.BytesIO(base64.b64decode(download["content"]))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 4 and rows[0] == ("时间", "用户", "操作", "对象", "人员（脱敏）", "理由")
    assert {r[5] for r in rows[1:]} == {"热线来电 0", "热线来电 1", "热线来电 2"}
    english = _answer(admin, "audit-download.data", {**FORGED, "audit-lang.data": "en"})["response"]
    rows = list(load_workbook(io.BytesIO(base64.b64decode(english["audit-download"]["data"]["content"])))
                .active.iter_rows(values_only=True))
    assert rows[0] == ("At", "User", "Action", "Subject", "Person (masked)", "Reason") and len(rows) == 4
    assert _lines(engine, "audit.export")[-1][0] == "demo_admin"


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1400, 1000)
    yield driver
    close(driver)


def _choose(driver, name: str) -> bool:
    """Open the kind list and pick ``name``; False (try again) while it is not shown."""
    options = [o for o in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
               if o.is_displayed() and o.text.strip() == name]
    if not options:
        driver.find_element(By.CSS_SELECTOR, ".nh-audit .dash-dropdown").click()
        return False
    options[0].click()
    return True


@pytest.mark.browser
def test_an_administrator_filters_the_log_and_exports_it(engine, browser, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    with LiveServer(create_app(engine).server) as live:
        log_in(browser, live.url, "demo_admin", "/admin/audit/")
        wait = waiting(browser, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#audit-rows .nh-audit-row"))
        browser.find_element(By.ID, "audit-user").send_keys("demo_admin")
        wait.until(lambda d: _choose(d, "登录"))
        wait.until(lambda d: "登录" in d.find_element(By.CSS_SELECTOR, ".nh-audit .dash-dropdown").text)
        logins = len([line for line in _lines(engine, "login") if line[0] == "demo_admin"])
        assert logins >= 1, "this very login is in the log"
        browser.find_element(By.ID, "audit-search").click()
        wait.until(lambda d: f"共 {logins} 条" in d.find_element(By.ID, "audit-count").text)
        row = browser.find_element(By.CSS_SELECTOR, "#audit-rows .nh-audit-row").text
        assert "demo_admin" in row and "login" in row
        screenshot(browser, "admin-audit")
        browser.find_element(By.ID, "audit-export").click()
        wait.until(lambda d: "已导出" in d.find_element(By.ID, "audit-message").text)
        deadline = time.monotonic() + 30
        while not list(downloads.glob("*.xlsx")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # the rename from .crdownload is the last step: let the writer close it
    sheets = list(downloads.glob("*.xlsx"))
    assert len(sheets) == 1, list(downloads.iterdir())
    rows = list(load_workbook(sheets[0]).active.iter_rows(values_only=True))
    assert [(r[1], r[2]) for r in rows[1:]] == [("demo_admin", "登录 · login")] * logins
    assert _lines(engine, "audit.export")[-1] == ("demo_admin", "user=demo_admin kind=login")
