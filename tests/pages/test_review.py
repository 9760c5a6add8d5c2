"""The review page (/review/): only supervisors, commanders and administrators open it or get an answer from any of
its callbacks; each sees the pairs of his scope, masked, in one language at a time; a decision and a split over HTTP
are stored and queue the re-match; then, in a real headless Chromium, a supervisor opens the queue, sees a pair
side by side with the fields that agree and disagree, says "same person", and the pair leaves the list."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import signed_in
from tests.dash_calls import pattern, request_body
from tests.matching.test_review_repository import District, review_district

URL = "/review/_dash-update-component"
OUTSIDERS = ("demo_worker", "demo_reporter", "anonymous")
INSIDERS = ("demo_supervisor", "demo_commander", "demo_admin")


@pytest.fixture(scope="module")
def district(database_factory, seeded_engine) -> District:
    return review_district(database_factory, seeded_engine, "nanhai_review_page")


@pytest.fixture(scope="module")
def server(district):
    return create_app(district.engine).server


def forged(pair_id: int = 999_999, record: tuple[int, int] = (999, 999), reason: str = "伪造请求") -> dict:
    """A value for every input and state of the page's callbacks: a click on ``pair_id``'s "same person" and on
    ``record``'s split."""
    file, row = record
    return {
        "review-prev.n_clicks": None, "review-next.n_clicks": None, "review-changed.data": 1,
        "review-page.data": 1, "review-lang.data": "zh", "review-linked-prev.n_clicks": None,
        "review-linked-next.n_clicks": None, "review-linked-page.data": 1,
        pattern("review-decide", "id", "same") + ".n_clicks": [({"type": "review-decide", "id": pair_id, "same": 1},
                                                                1)],
        pattern("review-reason", "id") + ".value": [({"type": "review-reason", "id": pair_id}, reason)],
        pattern("review-split", "file", "row") + ".n_clicks": [({"type": "review-split", "file": file, "row": row},
                                                                 1)],
        pattern("review-split-reason", "file", "row") + ".value": [
            ({"type": "review-split-reason", "file": file, "row": row}, reason)],
    }


def _dependencies(client) -> list[dict]:
    return [d for d in client.get("/review/_dash-dependencies").get_json() if not d.get("clientside_function")]


def _answer(client, output_part: str, values: dict) -> str:
    dependency = next(d for d in _dependencies(client) if d["output"].startswith(output_part))
    answer = client.post(URL, json=request_body(dependency, values))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return json.dumps(answer.get_json(), ensure_ascii=False)


def _one(district: District, sql: str, **params):
    with district.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_the_page_and_every_callback_refuse_workers_reporters_and_strangers(server, district):
    clients = {name: signed_in(server.test_client(), name) for name in (*INSIDERS, "demo_worker", "demo_reporter")}
    clients["anonymous"] = server.test_client()
    for name, client in clients.items():
        layout = json.dumps(client.get("/review/_dash-layout").get_json(), ensure_ascii=False)
        if name in INSIDERS:
            assert "review-tabs" in layout and "page-refusal" not in layout and '"/review/"' in layout, name
        elif name == "anonymous":
            assert "login-redirect" in layout and "review-tabs" not in layout
        else:
            assert "page-refusal" in layout and "review-tabs" not in layout, name
    dependencies = _dependencies(clients["demo_admin"])
    assert len(dependencies) == 4, [d["output"] for d in dependencies]
    for dependency in dependencies:
        body = request_body(dependency, forged())
        for name in OUTSIDERS:
            answer = clients[name].post(URL, json=body)
            assert answer.status_code == 204, (name, dependency["output"], answer.status_code)
        answer = clients["demo_supervisor"].post(URL, json=body)
        assert answer.status_code == 200, (dependency["output"], answer.get_data(as_text=True)[:300])
    assert _one(district, "SELECT count(*) FROM linkage_decisions WHERE reason = '伪造请求'") == 0
    assert _one(district, "SELECT count(*) FROM audit_log WHERE action LIKE 'linkage.%'") == 0


def test_each_reviewer_sees_his_scopes_pairs_masked_in_one_language(server, district):
    supervisor = signed_in(server.test_client(), "demo_supervisor")
    shown = _answer(supervisor, "..review-pairs.children", forged())
    pairs = district.pairs
    assert f"review-pair-{pairs['cross']}" in shown and f"review-pair-{pairs['in_a']}" in shown
    assert f"review-pair-{pairs['in_b']}" not in shown and f"review-pair-{pairs['decided']}" not in shown
    assert shown.index(f"review-pair-{pairs['cross']}") < shown.index(f"review-pair-{pairs['in_a']}"), "best first"
    for said in ("共 2 对待审，第 1/1 页", "无身份证", "440605********0001", "陈*明", "138****0001", "运营商",
                 "operator-phones.csv", "第 1 行", "行程卡", "一致：姓名", "一致：地址", "不一致：手机号", "91.0%",
                 "同一人", "不同的人"):
        assert said in shown, said
    assert "sealed-token" not in shown and "Agree" not in shown
    commander = signed_in(server.test_client(), "demo_commander")
    assert "共 3 对待审" in _answer(commander, "..review-pairs.children", forged())
    linked = _answer(supervisor, "..review-linked.children", forged())
    assert "已链接记录，第 1 页" in linked and linked.count("review-split-reason") == 2
    assert "自动链接" in linked and "人工判定" in linked and "拆分" in linked
    english = signed_in(server.test_client(), "demo_supervisor")
    english.set_cookie("nanhai_lang", "en")
    layout = json.dumps(english.get("/review/_dash-layout").get_json(), ensure_ascii=False)
    assert "Record linkage review" in layout and "To review" in layout and "记录关联审核" not in layout
    shown = _answer(english, "..review-pairs.children", {**forged(), "review-lang.data": "en"})
    assert "2 pairs to review" in shown and "no ID" in shown and "Disagree: phone" in shown
    assert "无身份证" not in shown and "一致" not in shown


def test_a_decision_and_a_split_over_http_are_stored_and_queue_the_re_match(server, district):
    sup_b = signed_in(server.test_client(), "sup_b")
    pair = district.pairs["in_b"]
    values = forged(pair, reason="号码不同，非同一人")
    values[pattern("review-decide", "id", "same") + ".n_clicks"] = [
        ({"type": "review-decide", "id": pair, "same": 0}, 1)]
    done = _answer(sup_b, "..review-message.children...", values)
    assert f"记录对 #{pair}：不同的人" in done and "重新研判已排队" in done
    assert _one(district, "SELECT decision || ' ' || decided_by || ' ' || reason FROM linkage_decisions "
                          "WHERE pair_id = :p", p=pair) == "different sup_b 号码不同，非同一人"
    assert _one(district, "SELECT count(*) FROM job_progress WHERE kind = 'rematch' AND state = 'queued'") >= 1
    again = _answer(sup_b, "..review-message.children...", values)
    assert "已有审核结论" in again and "nh-error" in again
    outside = _answer(sup_b, "..review-message.children...", forged(district.pairs["in_a"]))
    missing = _answer(sup_b, "..review-message.children...", forged(999_999))
    assert "不存在或不在您的范围内" in outside and outside.replace(str(district.pairs["in_a"]), "N") == \
        missing.replace("999999", "N")

    commander = signed_in(server.test_client(), "demo_commander")
    no_reason = _answer(commander, "..review-message.children@", forged(record=(district.operator, 5), reason=""))
    assert "请说明理由" in no_reason
    split = _answer(commander, "..review-message.children@", forged(record=(district.operator, 5),
                                                                   reason="手机号属于其家人"))
    assert f"记录 {district.operator}-5 已从 李*强 拆分" in split and "重新研判已排队" in split
    assert _one(district, "SELECT count(*) FROM linkage_decisions WHERE kind = 'split' AND record_row_number = 5 "
                          "AND record_feed_file_id = :f", f=district.operator) == 1
    linked = _answer(commander, "..review-linked.children", forged())
    assert "已拆分，等待重新研判生效" in linked


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1400, 1000)
    yield driver
    close(driver)


@pytest.mark.browser
def test_a_supervisor_decides_a_pair_in_the_browser_and_it_leaves_the_queue(district, browser):
    pair = district.pairs["cross"]
    with LiveServer(create_app(district.engine).server) as live:
        log_in(browser, live.url, "demo_supervisor", "/review/")
        wait = waiting(browser, 60)
        card_css = f"#review-pair-{pair}"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, card_css))
        card = browser.find_element(By.CSS_SELECTOR, card_css)
        sides = card.find_elements(By.CSS_SELECTOR, ".nh-review-side")
        assert len(sides) == 2 and "无身份证" in sides[0].text and "440605********0001" in sides[1].text
        assert "operator-phones.csv 第 1 行" in sides[0].text and "police.csv 第 1 行" in sides[1].text
        assert [c.text for c in card.find_elements(By.CSS_SELECTOR, ".nh-review-agree")] == ["一致：姓名", "一致：地址"]
        assert [c.text for c in card.find_elements(By.CSS_SELECTOR, ".nh-review-disagree")] == ["不一致：手机号"]
        assert card.find_element(By.CSS_SELECTOR, ".nh-review-score").text == "91.0%"
        assert "共 2 对待审" in browser.find_element(By.ID, "review-count").text
        assert "sealed-token" not in browser.page_source
        screenshot(browser, "review-queue")
        card.find_element(By.CSS_SELECTOR, "input").send_keys("手机号仅差一位，地址一致")
        card.find_element(By.CSS_SELECTOR, ".nh-review-same").click()
        wait.until(lambda d: "同一人" in d.find_element(By.ID, "review-message").text)
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, card_css))
        assert "共 1 对待审" in browser.find_element(By.ID, "review-count").text
        assert browser.find_elements(By.CSS_SELECTOR, f"#review-pair-{district.pairs['in_a']}")
        screenshot(browser, "review-decided")
        browser.find_element(By.ID, "review-tab-linked").click()  # the second tab: the links a reviewer may split
        link_css = f"#review-link-{district.operator}-4"
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, link_css) and
                   d.find_element(By.CSS_SELECTOR, link_css).is_displayed())
        link = browser.find_element(By.CSS_SELECTOR, link_css).text
        assert "自动链接" in link and "陈*明 · 440605********0001" in link and "拆分" in link
        screenshot(browser, "review-linked")
    assert _one(district, "SELECT status FROM linkage_pairs WHERE id = :p", p=pair) == "decided"
    assert _one(district, "SELECT decision || ' ' || decided_by || ' ' || reason FROM linkage_decisions "
                          "WHERE pair_id = :p", p=pair) == "same demo_supervisor 手机号仅差一位，地址一致"
    assert _one(district, "SELECT count(*) FROM audit_log WHERE action = 'linkage.decide' "
                          "AND subject = :s", s=f"linkage_pair:{pair}") == 1
