"""The accounts page (/admin/users/): only administrators open it or get an answer from any of its callbacks; its
buttons do what the domain does (a code shown once, grids taken back with their tasks, duty, role and scope);
then, in a real headless Chromium, an administrator imports a roster with errors and a corrected one, downloads
the activation codes, and one new worker activates his account and finds his task on /field/; and disabling a
worker on the page ends his session and sends his tasks back to dispatch."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import text

from accounts.activation import activate
from accounts.actor import ADMIN, Actor
from accounts.repository import load_actor
from accounts.staff import add_user
from app import create_app
from matching.privacy import load_vault
from tasks.repository import NewTask, create_task, get_task
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import DEMO_PASSWORD, signed_in
from tests.dash_calls import pattern, request_body

URL = "/admin/users/_dash-update-component"
OTHERS = ("demo_supervisor", "demo_commander", "demo_worker", "demo_reporter")
STRONG = "桂城巡查-二零二六-春"
ADMIN_ACTOR = Actor(None, "test_admin", ADMIN)
HEADER = ["姓名", "手机号", "角色", "网格编码", "村居编码", "镇街编码", "用户名"]
_numbers = itertools.count(1)


def new_phone() -> str:
    """A mobile number no other test of this module uses."""
    return f"1371{next(_numbers):07d}"


@pytest.fixture(scope="module")
def users_engine(database_factory, seeded_engine):
    """A copy of the seeded district with the demo accounts: these tests disable, import and recall."""
    from demo.accounts import create_demo_accounts

    engine = database_factory("nanhai_users_page", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    return engine


@pytest.fixture(scope="module")
def server(users_engine):
    return create_app(users_engine).server


@pytest.fixture(scope="module")
def community(users_engine) -> tuple[str, list[str]]:
    """The demo supervisor's community code and its grid codes."""
    with users_engine.connect() as conn:
        code = conn.execute(text("SELECT c.code FROM users u JOIN communities c ON c.id = u.community_id "
                                 "WHERE u.username = 'demo_supervisor'")).scalar_one()
        grids = list(conn.execute(text("SELECT g.code FROM grids g JOIN communities c ON c.id = g.community_id "
                                       "WHERE c.code = :c ORDER BY g.code"), {"c": code}).scalars())
    assert len(grids) >= 3
    return code, grids


def _actor(conn, username: str) -> Actor:
    return load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = :u"),
                                         {"u": username}).scalar_one())


# -- forged callback requests -----------------------------------------------------------------------------------
# a value for every input and state of the page's callbacks: each one, sent by an administrator, gets an answer
FORGED = {
    "users-search.value": "demo", "users-role.value": None, "users-status.value": None,
    "users-generated.value": [], "users-prev.n_clicks": None, "users-next.n_clicks": None,
    "users-changed.data": 1, "users-page.data": 0, "users-lang.data": "zh", "users-selected.data": "demo_worker",
    pattern("users-pick", "username") + ".n_clicks": [({"type": "users-pick", "username": "demo_worker"}, 1)],
    pattern("users-act", "action", "username") + ".n_clicks":
        [({"type": "users-act", "action": "duty_on", "username": "demo_worker"}, 1)],
    pattern("users-field", "name") + ".value": [({"type": "users-field", "name": "more_grids"}, "")],
    "users-create.n_clicks": 1, "users-new-username.value": "x", "users-new-name.value": "陈志伟",
    "users-new-phone.value": None, "users-new-role.value": "worker", "users-new-grids.value": "",
    "users-new-community.value": None, "users-new-town.value": None,
    "users-roster-upload.data": {"id": "0" * 32, "name": "r.xlsx"}, "users-roster-apply.n_clicks": 1,
    "users-roster-id.data": "0" * 32,
}


def test_the_page_and_every_callback_refuse_everyone_but_administrators(server):
    clients = {name: signed_in(server.test_client(), name) for name in (*OTHERS, "demo_admin")}
    clients["anonymous"] = server.test_client()
    for name, client in clients.items():
        layout = json.dumps(client.get("/admin/users/_dash-layout").get_json(), ensure_ascii=False)
        if name == "demo_admin":
            assert "users-list" in layout and "users-roster-file" in layout and "page-refusal" not in layout
        elif name == "anonymous":
            assert "login-redirect" in layout and "users-list" not in layout
        else:
            assert "page-refusal" in layout and "users-list" not in layout, name
    english = signed_in(server.test_client(), "demo_admin")
    english.set_cookie("nanhai_lang", "en")
    layout = json.dumps(english.get("/admin/users/_dash-layout").get_json(), ensure_ascii=False)
    assert "Import a staff roster" in layout and "导入花名册" not in layout
    dependencies = [d for d in clients["demo_admin"].get("/admin/users/_dash-dependencies").get_json()
                    if not d.get("clientside_function")]
    assert len(dependencies) == 7, [d["output"] for d in dependencies]
    for dependency in dependencies:
        body = request_body(dependency, FORGED)
        for name, client in clients.items():
            answer = client.post(URL, json=body)
            if name == "demo_admin":
                assert answer.status_code == 200, (dependency["output"], answer.get_data(as_text=True)[:300])
            else:
                assert answer.status_code == 204, (name, dependency["output"], answer.status_code)
    # what the administrator's forged requests got: real answers (a list, a refusal naming the field, ...)
    admin = clients["demo_admin"]
    listing = next(d for d in dependencies if d["output"].startswith("..users-list.children"))
    found = admin.post(URL, json=request_body(listing, FORGED)).get_data(as_text=True)
    assert "demo_worker" in found and "demo_admin" in found
    creating = next(d for d in dependencies if "users-created.children" in d["output"])
    refused = json.dumps(admin.post(URL, json=request_body(creating, FORGED)).get_json(), ensure_ascii=False)
    assert "用户名" in refused and "nh-error" in refused and "/ username" not in refused  # one language


# -- the page's buttons, over HTTP --------------------------------------------------------------------------------
def _dependency(client, trigger: str) -> dict:
    """The page's callback whose first input is ``trigger`` (a part of its id)."""
    return next(d for d in client.get("/admin/users/_dash-dependencies").get_json()
                if trigger in d["inputs"][0]["id"] and not d.get("clientside_function"))


def _press(client, action: str, username: str, **fields: str) -> str:
    """Press one of the selected account's buttons as the page does; the answer as text."""
    values = {**FORGED, pattern("users-act", "action", "username") + ".n_clicks":
              [({"type": "users-act", "action": action, "username": username}, 1)],
              pattern("users-field", "name") + ".value":
              [({"type": "users-field", "name": name}, value) for name, value in fields.items()]}
    answer = client.post(URL, json=request_body(_dependency(client, "users-act"), values))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return json.dumps(answer.get_json(), ensure_ascii=False)


def _create(client, **fields: str | None) -> dict:
    values = {**FORGED, **{f"users-new-{name}.value": value for name, value in fields.items()}}
    answer = client.post(URL, json=request_body(_dependency(client, "users-create"), values))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def _code_in(answer: str) -> str:
    start = answer.index('"id": "users-code"')
    return json.loads("{" + answer[answer.rindex("{", 0, start) + 1:answer.index("}", start) + 1])["children"]


def test_creating_shows_the_code_once_and_taking_a_grid_recalls_the_workers_tasks_there(server, users_engine,
                                                                                          community):
    _, grids = community
    admin = signed_in(server.test_client(), "demo_admin")
    made = json.dumps(_create(admin, username="page.two", name="黄俊杰", phone=new_phone(), role="worker",
                              grids=f"{grids[1]}、{grids[2]}"), ensure_ascii=False)
    code = _code_in(made)
    assert "page.two" in made and "只显示这一次" in made and len(code) == 14
    with users_engine.begin() as conn:
        vault, now = load_vault(), datetime.now(UTC)
        worker = activate(conn, "page.two", code, STRONG, "t", vault, now)
        supervisor = _actor(conn, "demo_supervisor")
        kept = create_task(conn, supervisor, NewTask("area_sweep", grids[1], "留下的任务", assignee_id=worker.user_id),
                           now)
        taken = create_task(conn, supervisor, NewTask("area_sweep", grids[2], "收回的任务",
                                                      assignee_id=worker.user_id), now)
    shown = _press(admin, "unassign", "page.two", more_grids=grids[2])
    assert f"#{taken['id']}" in shown and "收回并重新派遣任务 1 个" in shown
    with users_engine.connect() as conn:
        system = Actor.system()
        moved, stays = get_task(conn, system, taken["id"], now), get_task(conn, system, kept["id"], now)
        grid_codes = list(conn.execute(text("SELECT g.code FROM user_grids ug JOIN grids g ON g.id = ug.grid_id "
                                            "JOIN users u ON u.id = ug.user_id WHERE u.username = 'page.two'"))
                          .scalars())
    assert grid_codes == [grids[1]] and stays["assignee_id"] == worker.user_id
    assert moved["assignee_id"] != worker.user_id
    recall = next(e for e in moved["events"] if e["action"] == "recall")
    assert "taken" in recall["detail"]["reason"] and recall["note"] == "操作人 / by demo_admin"
    assert "已离岗" in _press(admin, "duty_off", "page.two")
    with users_engine.connect() as conn:
        assert conn.execute(text("SELECT on_duty FROM users WHERE username = 'page.two'")).scalar_one() is False
    again = _press(admin, "reset", "page.two")
    assert "users-code" in again and _code_in(again) != code
    refused = _press(admin, "scope", "page.two", role="supervisor", grids="", community="", town="")
    assert "村居编码" in refused and "nh-error" in refused and "community_code" not in refused
    assert "已保存 page.two 的角色与范围" in _press(admin, "scope", "page.two", role="supervisor", grids="",
                                                  community=community[0], town="")
    assert "不能停用自己的账号" in _press(admin, "disable", "demo_admin")
    with users_engine.connect() as conn:
        lines = conn.execute(text("SELECT action FROM audit_log WHERE username = 'demo_admin' AND subject = "
                                  "'page.two' ORDER BY id")).scalars().all()
    assert lines == ["user.create", "user.scope", "user.duty", "user.reset_password", "user.scope"]


# -- in a real browser ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    driver = chromium(1500, 1000)
    yield driver
    close(driver)


def write_roster(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["南海区网格人员花名册（2026 年 12 月）"])
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _upload(driver, path: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, "#users-roster-file input[type=file]").send_keys(str(path))
    driver.find_element(By.ID, "users-roster-send").click()


def _table_rows(driver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, "#users-roster-table tbody tr")


@pytest.mark.browser
def test_an_administrator_imports_a_roster_and_a_new_worker_activates_and_finds_his_task(
        users_engine, community, browser, tmp_path):
    community_code, grids = community
    phones = [new_phone() for _ in range(4)]
    with_errors = write_roster(tmp_path / "花名册-有误.xlsx", [
        ["梁丽华", phones[0], "网格员", grids[0], "", "", ""],  # row 3: fine
        ["何建国", phones[1], "网格员", "440605999999999", "", "", ""],  # row 4: no such grid
        ["罗敏婷", "12345", "网格员", grids[1], "", "", ""],  # row 5: not a mobile number
        ["冯文强", phones[3], "网格长", "", community_code, "", ""],  # row 6: fine
    ])
    corrected = write_roster(tmp_path / "花名册.xlsx", [
        ["梁丽华", phones[0], "网格员", grids[0], "", "", ""],
        ["何建国", phones[1], "网格员", f"{grids[1]}、{grids[2]}", "", "", ""],
        ["罗敏婷", phones[2], "网格员", grids[1], "", "", ""],
        ["冯文强", phones[3], "网格长", "", community_code, "", ""],
    ])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    with LiveServer(create_app(users_engine).server) as live:
        log_in(browser, live.url, "demo_admin", "/admin/users/")
        wait = waiting(browser, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#users-roster-file input[type=file]"))
        _upload(browser, with_errors)
        wait.until(lambda d: len(_table_rows(d)) == 4)
        errors = browser.find_elements(By.CSS_SELECTOR, "#users-roster-table tr.nh-row-error")
        assert [row.find_element(By.TAG_NAME, "td").text for row in errors] == ["4", "5"]
        assert "440605999999999" in errors[0].text and "手机号" in errors[1].text
        assert "错误 2" in browser.find_element(By.ID, "users-roster-counts").text
        assert not browser.find_element(By.ID, "users-roster-apply").is_enabled()
        browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.ID, "users-roster-counts"))
        screenshot(browser, "admin_users_roster_errors")

        _upload(browser, corrected)
        wait.until(lambda d: "新建 4" in d.find_element(By.ID, "users-roster-counts").text)
        assert len(_table_rows(browser)) == 4
        assert not browser.find_elements(By.CSS_SELECTOR, "#users-roster-table tr.nh-row-error")
        wait.until(lambda d: d.find_element(By.ID, "users-roster-apply").is_enabled())
        browser.find_element(By.ID, "users-roster-apply").click()
        wait.until(lambda d: "新建 4" in d.find_element(By.ID, "users-roster-applied").text)
        assert not browser.find_element(By.ID, "users-roster-apply").is_enabled(), "applied once"
        deadline = time.monotonic() + 30
        while not list(downloads.glob("*.xlsx")) and time.monotonic() < deadline:
            time.sleep(0.2)
        sheets = list(downloads.glob("*.xlsx"))
        assert len(sheets) == 1, list(downloads.iterdir())
        time.sleep(0.5)  # the rename from .crdownload is the last step: let the writer close it
        book = load_workbook(sheets[0], read_only=True)
        handed = [row for row in book.worksheets[0].iter_rows(values_only=True)][1:]
        book.close()
        assert sorted(row[2] for row in handed) == sorted(["梁丽华", "何建国", "罗敏婷", "冯文强"])
        luo = next(row for row in handed if row[2] == "罗敏婷")
        username, code = luo[1], luo[5]
        assert luo[7] == f"{live.url}/activate"

        with users_engine.begin() as conn:  # a task in his grid, given to him, before he first logs in
            supervisor = _actor(conn, "demo_supervisor")
            worker_id = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
            task = create_task(conn, supervisor, NewTask("home_visit", grids[1], "新网格员的第一个任务",
                                                         assignee_id=worker_id), datetime.now(UTC))
        assert task["status"] == "dispatched"

        browser.delete_all_cookies()
        browser.get(f"{live.url}/activate?username={username}")
        browser.find_element(By.ID, "code").send_keys(code)
        browser.find_element(By.ID, "password").send_keys(STRONG)
        browser.find_element(By.ID, "password2").send_keys(STRONG)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.current_url.endswith("/field/"))
        wait.until(lambda d: "新网格员的第一个任务" in d.find_element(By.TAG_NAME, "body").text)

        browser.delete_all_cookies()  # and his own password logs him in from now on
        browser.get(f"{live.url}/login")
        browser.find_element(By.ID, "username").send_keys(username)
        browser.find_element(By.ID, "password").send_keys(STRONG)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.current_url.endswith("/field/"))
        wait.until(lambda d: "新网格员的第一个任务" in d.find_element(By.TAG_NAME, "body").text)
        screenshot(browser, "admin_users_new_worker_field")
    with users_engine.connect() as conn:
        audit = conn.execute(text("SELECT reason FROM audit_log WHERE action = 'roster.import' AND subject = "
                                  "'花名册.xlsx'")).scalars().all()
    assert len(audit) == 1 and "新建 4" in audit[0]


@pytest.mark.browser
def test_disabling_a_worker_on_the_page_ends_his_session_and_sends_his_tasks_back(users_engine, server, community,
                                                                                   browser):
    _, grids = community
    now = datetime.now(UTC)
    with users_engine.begin() as conn:
        issued = add_user(conn, ADMIN_ACTOR, "page.off", "吴振宇", "worker", load_vault(), now, new_phone(),
                          (grids[0],))
        worker = activate(conn, "page.off", issued.code, STRONG, "t", load_vault(), now)
        supervisor = _actor(conn, "demo_supervisor")
        tasks = [create_task(conn, supervisor, NewTask("area_sweep", grids[0], f"停用前的任务 {n}",
                                                       assignee_id=worker.user_id), now) for n in range(2)]
    phone = server.test_client()
    assert phone.post("/api/v1/session", json={"username": "page.off", "password": STRONG}).status_code == 201
    assert phone.get("/api/v1/session").status_code == 200
    with LiveServer(create_app(users_engine).server) as live:
        browser.delete_all_cookies()
        log_in(browser, live.url, "demo_admin", "/admin/users/")
        wait = waiting(browser, 60)
        search = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#users-search"))
        search.send_keys("page.off", Keys.ENTER)
        wait.until(lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#users-table tr.nh-user-row")
                              if r.get_attribute("data-username") == "page.off"])
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#users-table tr.nh-user-row")
                   if r.get_attribute("data-username") == "page.off")
        row.find_element(By.CSS_SELECTOR, "button.nh-users-pick").click()
        wait.until(lambda d: d.find_element(By.ID, "users-detail-username").text == "page.off")
        assert "****" in browser.find_element(By.ID, "users-detail").text, "the phone is shown masked"
        disable = next(b for b in browser.find_elements(By.CSS_SELECTOR, "#users-detail button")
                       if b.text == "停用账号")
        disable.click()
        wait.until(lambda d: "收回并重新派遣任务 2 个" in d.find_element(By.ID, "users-message").text)
        wait.until(lambda d: "已停用" in d.find_element(By.ID, "users-detail").text)
        wait.until(lambda d: "启用账号" in d.find_element(By.ID, "users-detail").text)
        screenshot(browser, "admin_users_disabled")
    assert phone.get("/api/v1/session").status_code == 401, "his session ended at once"
    assert phone.get("/api/v1/tasks").status_code == 401
    with users_engine.connect() as conn:
        for task in tasks:
            moved = get_task(conn, Actor.system(), task["id"], now + timedelta(minutes=1))
            assert moved["assignee_id"] != worker.user_id
            recall = next(e for e in moved["events"] if e["action"] == "recall")
            assert "disabled" in recall["detail"]["reason"] and recall["note"] == "操作人 / by demo_admin"
