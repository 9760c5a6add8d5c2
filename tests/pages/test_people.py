"""The people page (/people/): only supervisors, commanders and administrators open it or get an answer from any
of its callbacks; a look-up through it is scoped and audited; then, in a real headless Chromium, a supervisor looks
a person up by ID number and files an appeal, and a commander approves it, and after the re-match sees the
override on the person's timeline."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import Engine, text

from app import create_app
from jobs.worker import run_worker
from matching.lookup import NOT_FOUND
from matching.privacy import load_vault
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import signed_in
from tests.dash_calls import pattern, request_body
from tests.matching.feedfiles import valid_id
from tests.matching.test_lookup import BLUE, GREEN, RED, people_district

URL = "/people/_dash-update-component"
OUTSIDERS = ("demo_worker", "demo_reporter", "anonymous")
INSIDERS = ("demo_supervisor", "demo_commander", "demo_admin")


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory) -> Engine:
    return people_district(database_factory, seeded_engine, "nanhai_people_page", tmp_path_factory.mktemp("people"))


@pytest.fixture(scope="module")
def server(engine):
    return create_app(engine).server


# -- forged callback requests -------------------------------------------------------------------------------------
def forged(key: str) -> dict:
    """A value for every input and state of the page's callbacks, about the person ``key``."""
    return {
        "people-search.n_clicks": 1, "people-query.n_submit": None, "people-query.value": RED,
        "people-reason.value": "热线来电", "people-lang.data": "zh", "people-key.data": key,
        pattern("people-pick", "key") + ".n_clicks": [({"type": "people-pick", "key": key}, 1)],
        "people-change.n_clicks": 1, "people-colour.value": "yellow", "people-change-reason.value": "伪造请求",
        "people-days.value": 3, "people-until.value": None, "people-changed.data": 1,
        pattern("people-decide", "approve", "id") + ".n_clicks": [({"type": "people-decide", "id": 999999,
                                                                      "approve": 0}, 1)],
        pattern("people-note", "id") + ".value": [({"type": "people-note", "id": 999999}, "伪造")],
    }


def _dependencies(client) -> list[dict]:
    return [d for d in client.get("/people/_dash-dependencies").get_json() if not d.get("clientside_function")]


def _answer(client, output_part: str, values: dict) -> str:
    dependency = next(d for d in _dependencies(client) if d["output"].startswith(output_part))
    answer = client.post(URL, json=request_body(dependency, values))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return json.dumps(answer.get_json(), ensure_ascii=False)


def test_the_page_and_every_callback_refuse_workers_reporters_and_strangers(server, engine):
    clients = {name: signed_in(server.test_client(), name) for name in (*INSIDERS, "demo_worker", "demo_reporter")}
    clients["anonymous"] = server.test_client()
    for name, client in clients.items():
        layout = json.dumps(client.get("/people/_dash-layout").get_json(), ensure_ascii=False)
        if name in INSIDERS:
            assert "people-query" in layout and "page-refusal" not in layout, name
        elif name == "anonymous":
            assert "login-redirect" in layout and "people-query" not in layout
        else:
            assert "page-refusal" in layout and "people-query" not in layout, name
    commander = json.dumps(clients["demo_commander"].get("/people/_dash-layout").get_json(), ensure_ascii=False)
    supervisor = json.dumps(clients["demo_supervisor"].get("/people/_dash-layout").get_json(), ensure_ascii=False)
    assert "保存调整" in commander and "提交申诉" in supervisor
    key = load_vault().person_key(RED)
    before = _count(engine, "SELECT count(*) FROM audit_log")
    dependencies = _dependencies(clients["demo_admin"])
    assert len(dependencies) == 7, [d["output"] for d in dependencies]
    for dependency in dependencies:
        body = request_body(dependency, forged(key))
        for name in OUTSIDERS:
            answer = clients[name].post(URL, json=body)
            assert answer.status_code == 204, (name, dependency["output"], answer.status_code)
        answer = clients["demo_supervisor"].post(URL, json=body)
        assert answer.status_code == 200, (dependency["output"], answer.get_data(as_text=True)[:300])
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE username IN ('demo_worker', 'demo_reporter') "
                          "AND action <> 'login'") == 0
    # the supervisor's forged requests: one look-up, one appeal (about his community's person), audited
    assert _count(engine, "SELECT count(*) FROM audit_log") > before
    assert _count(engine, "SELECT count(*) FROM code_appeals WHERE reason = '伪造请求'") == 1
    with engine.begin() as conn:
        conn.execute(text("UPDATE code_appeals SET status = 'rejected', decided_at = now(), decided_by = 'test' "
                          "WHERE reason = '伪造请求'"))


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_a_look_up_over_http_is_scoped_and_audited_and_needs_a_reason(server, engine):
    supervisor = signed_in(server.test_client(), "demo_supervisor")
    mine = _answer(supervisor, "..people-result.children", {**forged(""), "people-query.value": GREEN,
                                                             "people-reason.value": "热线：本人来电"})
    assert "陈*绿" in mine and GREEN not in mine and "nh-people-card" in mine
    for query in (BLUE, valid_id(998)):
        other = _answer(supervisor, "..people-result.children", {**forged(""), "people-query.value": query})
        assert NOT_FOUND.split(" / ")[0] in other and "nh-people-card" not in other
        assert NOT_FOUND.split(" / ")[1] not in other, "one language at a time: the refusal in Chinese"
    no_reason = _answer(supervisor, "..people-result.children", {**forged(""), "people-reason.value": ""})
    assert "须说明理由" in no_reason
    commander = signed_in(server.test_client(), "demo_commander")
    both = _answer(commander, "..people-result.children", {**forged(""), "people-query.value": "13800000501"})
    assert "陈*红" in both and "陈*绿" in both and "people-pick" in both
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'person.lookup' "
                          "AND username = 'demo_supervisor' AND reason = '热线：本人来电'") == 1


def test_an_override_over_http_queues_the_re_match(server, engine):
    commander = signed_in(server.test_client(), "demo_commander")
    key = load_vault().person_key(BLUE)
    done = _answer(commander, "..people-message.children", {**forged(key), "people-change-reason.value": "复核后调整",
                                                            "people-until.value": None, "people-days.value": 2})
    assert "重新研判已排队" in done
    assert _count(engine, "SELECT count(*) FROM risk_overrides WHERE reason = '复核后调整'") == 1
    assert _count(engine, "SELECT count(*) FROM job_progress WHERE kind = 'rematch' AND state = 'queued'") >= 1
    bad = _answer(commander, "..people-message.children", {**forged(key), "people-days.value": 900})
    assert "有效期须在" in bad


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1400, 1000)
    yield driver
    close(driver)


def _type(browser, element_id: str, value: str) -> None:
    box = browser.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(value)


@pytest.mark.browser
def test_a_supervisor_appeals_and_a_commander_approves_in_the_browser(engine, browser):
    key = load_vault().person_key(RED)
    with LiveServer(create_app(engine).server) as live:
        log_in(browser, live.url, "demo_supervisor", "/people/")
        wait = waiting(browser, 60)
        wait.until(lambda d: d.find_elements(By.ID, "people-query"))
        _type(browser, "people-query", RED)
        _type(browser, "people-reason", "热线来电：家属询问")
        browser.find_element(By.ID, "people-search").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".nh-people-card"))
        card = browser.find_element(By.CSS_SELECTOR, ".nh-people-card")
        shown = browser.find_element(By.ID, "people-result").get_attribute("innerHTML")
        assert "陈*红" in card.text and RED not in shown and "13800000501" not in shown
        # why he is red, in the page's language only: the rule's conditions and the date its days count from
        assert "赋码依据" in card.text and "自登记时间" in card.text and "days from" not in card.text
        wait.until(lambda d: "陈*红" in d.find_element(By.ID, "people-selected").text)
        _type(browser, "people-change-reason", "核酸两次阴性，申请转绿")
        browser.find_element(By.ID, "people-change").click()
        wait.until(lambda d: "已提交申诉" in d.find_element(By.ID, "people-message").text)
        wait.until(lambda d: "核酸两次阴性" in d.find_element(By.ID, "people-appeals").text)
        screenshot(browser, "people-appeal")

        browser.delete_all_cookies()
        log_in(browser, live.url, "demo_commander", "/people/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".nh-people-appeal"))
        appeal_id = _count(engine, "SELECT max(id) FROM code_appeals WHERE status = 'pending'")
        note = browser.find_element(By.CSS_SELECTOR, f"#people-appeal-{appeal_id} input")
        note.send_keys("同意，报告已核")
        browser.find_element(By.CSS_SELECTOR, f"#people-appeal-{appeal_id} .nh-action-close").click()
        wait.until(lambda d: "已批准" in d.find_element(By.ID, "people-message").text)
        wait.until(lambda d: not d.find_elements(By.ID, f"people-appeal-{appeal_id}"))
        run_worker(engine.url.render_as_string(hide_password=False), once=True, niceness=0,
                   install_signal_handlers=False)
        _type(browser, "people-query", RED)
        _type(browser, "people-reason", "复核申诉结果")
        browser.find_element(By.ID, "people-search").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".nh-people-card .nh-people-at-override"))
        wait.until(lambda d: "绿码" in d.find_element(By.CSS_SELECTOR, ".nh-people-who").text)
        timeline = browser.find_element(By.CSS_SELECTOR, ".nh-people-timeline").text
        assert "人工调整" in timeline and "申诉处理" in timeline and "demo_commander" in timeline
        screenshot(browser, "people-approved")
    with engine.connect() as conn:
        colour, rule = conn.execute(text("SELECT colour, rule_id FROM persons WHERE person_key = :k"),
                                    {"k": key}).one()
    assert (colour, rule) == ("green", "override")
