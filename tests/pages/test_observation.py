"""Home observation on a phone (issue 25): real headless Chromium at 390 x 844, one browser for the module.

- The worker's story on /field/: the 今日随访 tab lists each person in observation (masked) with his next check,
  a person whose last check was missed first;
  a check-in tapped offline waits in the outbox and is recorded exactly once when the network is back; a 38.1 ℃
  reading is recorded and says it raised an escort task.
- The self-report link: printed by the worker as a QR code, opened on the phone without a login (a page with no
  script: a plain form), a refusal naming the field, the language switch, a report the worker's list then shows as
  done, and a renewed link after which the old one stops.

And without a browser (Flask's test client): the pages' refusals — forged (404), ended (410), a post without the
form's token, the limit of six an hour (429 with Retry-After) — and who may open the print page.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from matching.privacy import load_vault
from observation.links import link_token
from tests.browser import LiveServer, close, log_in, phone_chromium, screenshot, waiting
from tests.conftest import DEMO_PASSWORD, signed_in

pytestmark = pytest.mark.browser
BEIJING = timedelta(hours=8)


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    from demo.accounts import create_demo_accounts

    engine = database_factory("nanhai_obs_pages", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    return engine


def add_plan(engine, name: str, grid: str = "worker", due_in: timedelta = timedelta(hours=1),
             ends_in: timedelta = timedelta(days=11)) -> tuple[int, str, datetime]:
    """A masked yellow person with a plan (started 3 days ago) and one check due ``due_in`` from now, in
    demo_worker's grid (or, ``grid="other"``, a grid of another community). Returns (plan id, key, due)."""
    now, key = datetime.now(UTC).replace(microsecond=0), f"obs-page-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        mine = conn.execute(text("SELECT min(grid_id) FROM user_grids ug JOIN users u ON u.id = ug.user_id "
                                 "WHERE u.username = 'demo_worker'")).scalar_one()
        grid_id = mine if grid == "worker" else conn.execute(text(
            "SELECT id FROM grids WHERE community_id <> (SELECT community_id FROM grids WHERE id = :g) ORDER BY id "
            "LIMIT 1"), {"g": mine}).scalar_one()
        conn.execute(text(
            "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, rule_id, confidence, grid_id, "
            "expires_at) VALUES (:k, '4406**********0010', :n, 'yellow', '重点地区 / key area', 'yellow-key-area', "
            "1.0, :g, :e)"), {"k": key, "n": name, "g": grid_id, "e": now + ends_in})
        plan_id = conn.execute(text(
            "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, "
            "token_nonce) VALUES (:k, :g, 'yellow-key-area', :s, :e, '{480,1200}', :n) RETURNING id"),
            {"k": key, "g": grid_id, "s": now - timedelta(days=3), "e": now + ends_in,
             "n": uuid.uuid4().hex[:22]}).scalar_one()
        conn.execute(text("INSERT INTO observation_checks (plan_id, due_at) VALUES (:p, :d)"),
                     {"p": plan_id, "d": now + due_in})
    return int(plan_id), key, now + due_in


def token_for(engine, plan_id: int) -> str:
    with engine.connect() as conn:
        nonce = conn.execute(text("SELECT token_nonce FROM observation_plans WHERE id = :p"),
                             {"p": plan_id}).scalar_one()
    return link_token(load_vault(), plan_id, nonce)


def done_checks(engine, plan_id: int, channel: str | None = None) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT temperature::float8, channel FROM observation_checks WHERE plan_id = :p AND status = 'done' "
            "AND (CAST(:c AS text) IS NULL OR channel = :c) ORDER BY reported_at"), {"p": plan_id, "c": channel})]


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def beijing_clock(moment: datetime) -> str:
    return (moment + BEIJING).strftime("%H:%M")


# -- the phone ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(engine):
    with LiveServer(create_app(engine).server) as server:
        driver = phone_chromium()
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        try:
            log_in(driver, server.url, "demo_worker", "/field/")
            waiting(driver, 60).until(lambda d: d.find_elements(By.ID, "field-outbox"))
            yield driver, server
        finally:
            close(driver)


def _tap(driver, element_id: str) -> None:
    waiting(driver, 30).until(lambda d: d.find_element(By.ID, element_id).is_displayed())
    driver.find_element(By.ID, element_id).click()


def _offline(driver, offline: bool) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": offline, "latency": 0,
                                                                "downloadThroughput": -1, "uploadThroughput": -1})


def _follow_tab(driver, server) -> None:
    driver.get(f"{server.url}/field/")
    waiting(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-follow") == "ready")
    _tap(driver, "field-tab-follow")


def test_the_worker_records_temperatures_from_todays_follow_ups(engine, site):
    driver, server = site
    normal, normal_key, due = add_plan(engine, "孙*")
    fever, _fever_key, _ = add_plan(engine, "周*")
    missed, _missed_key, _ = add_plan(engine, "钱*", due_in=timedelta(hours=-3))
    with engine.begin() as conn:
        conn.execute(text("UPDATE observation_checks SET status = 'missed', missed_at = now() WHERE plan_id = :p"),
                     {"p": missed})
    _follow_tab(driver, server)
    wait = waiting(driver, 60)
    card = wait.until(lambda d: d.find_element(By.ID, f"field-follow-{normal}"))
    assert "孙*" in card.find_element(By.CSS_SELECTOR, ".nh-field-title").text
    assert normal_key not in card.text and "4406**********0010" in card.text  # masked, never the key
    assert beijing_clock(due) in card.find_element(By.CSS_SELECTOR, ".nh-field-next").text
    assert "第 4/14 天" in card.text
    first = driver.find_element(By.CSS_SELECTOR, "#field-follow .nh-field-card")
    assert first.get_attribute("id") == f"field-follow-{missed}", "the first miss is listed first"
    assert "上次漏报" in first.text and first.get_attribute("data-missed") == "1"
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    assert driver.find_element(By.ID, f"field-check-{normal}").size["height"] >= 44

    # offline: the tap waits in the outbox; back online it is recorded once
    _offline(driver, True)
    _tap(driver, f"field-check-{normal}")
    driver.find_element(By.ID, "field-submit").click()
    assert driver.find_element(By.ID, "field-sheet-error").text == "请填写体温或选择症状"
    driver.find_element(By.ID, "field-check-temperature").send_keys("36.6")
    driver.find_element(By.ID, "field-check-symptom-none").click()
    driver.find_element(By.ID, "field-submit").click()
    wait.until(lambda d: d.find_element(By.ID, f"field-follow-{normal}").get_attribute("data-sync") == "pending")
    assert driver.execute_script("return window.nanhai.field.outbox().length") == 1
    assert done_checks(engine, normal) == []
    screenshot(driver, "observation-field-offline")
    _offline(driver, False)
    driver.execute_script("window.dispatchEvent(new Event('online'))")
    wait.until(lambda d: len(done_checks(engine, normal)) == 1)
    wait.until(lambda d: d.execute_script("return window.nanhai.field.outbox().length") == 0)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#field-follow-{normal} .nh-field-chip[data-state=done]"))
    assert done_checks(engine, normal) == [(pytest.approx(36.6), "worker")]
    assert count(engine, "SELECT count(*) FROM observation_events WHERE plan_id = :p AND kind = 'check'",
                 p=normal) == 1

    # a fever: recorded once, and the worker is told it raised an escort task
    _tap(driver, f"field-check-{fever}")
    driver.find_element(By.ID, "field-check-temperature").send_keys("38.1")
    driver.find_element(By.ID, "field-submit").click()
    wait.until(lambda d: "转运" in d.find_element(By.ID, "field-message").text)
    assert done_checks(engine, fever) == [(pytest.approx(38.1), "worker")]
    done = f"#field-follow-{fever} .nh-field-chip[data-state=done]"
    chip = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, done))
    assert chip.get_attribute("data-abnormal") == "1" and "38.1" in chip.text, "a fever shows in red"
    screenshot(driver, "observation-field-fever")


def test_a_self_report_through_the_printed_link(engine, site):
    driver, server = site
    plan, _key, _due = add_plan(engine, "吴*")
    driver.get(f"{server.url}/obs/print/{plan}")
    wait = waiting(driver, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#obs-qr svg"))
    url = driver.find_element(By.ID, "obs-url").text
    assert re.fullmatch(rf"{re.escape(server.url)}/obs/NHO1\.{plan}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{{43}}", url)
    assert driver.find_element(By.ID, "obs-name").text == "吴*"

    driver.get(url)  # what the phone's camera opens: no login asked, no script on the page
    assert driver.find_element(By.ID, "obs-heading").text == "居家观察 · 体温自报"
    assert driver.execute_script("return document.scripts.length") == 0
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    driver.find_element(By.ID, "obs-temperature").send_keys("49.5")
    driver.find_element(By.ID, "obs-submit").click()
    error = wait.until(lambda d: d.find_element(By.ID, "obs-error"))
    assert error.get_attribute("data-field") == "temperature" and "体温" in error.text
    assert driver.find_element(By.ID, "obs-temperature").get_attribute("value") == "49.5", "what he typed is kept"

    driver.find_element(By.ID, "other-language").click()
    wait.until(lambda d: d.find_element(By.ID, "obs-heading").text.startswith("Home observation"))
    assert "居家" not in driver.find_element(By.TAG_NAME, "main").text, "one language at a time"
    driver.find_element(By.ID, "other-language").click()
    wait.until(lambda d: d.find_element(By.ID, "obs-heading").text.startswith("居家观察"))

    temperature = driver.find_element(By.ID, "obs-temperature")
    temperature.clear()
    temperature.send_keys("36.5")
    driver.find_element(By.ID, "obs-symptom-none").click()
    screenshot(driver, "observation-self-report")
    driver.find_element(By.ID, "obs-submit").click()
    done = wait.until(lambda d: d.find_element(By.ID, "obs-done"))
    assert "已记录" in done.text and "36.5" in done.text
    assert done_checks(engine, plan, "self") == [(pytest.approx(36.5), "self")]

    _follow_tab(driver, server)  # the worker's list shows it done
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#field-follow-{plan} .nh-field-chip[data-state=done]"))

    driver.get(f"{server.url}/obs/print/{plan}")
    _tap(driver, "obs-renew")
    wait.until(lambda d: d.find_elements(By.ID, "obs-renewed"))
    assert driver.find_element(By.ID, "obs-url").text != url
    driver.get(url)
    assert "已作废" in driver.find_element(By.ID, "obs-refused").text


# -- without a browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(engine):
    return create_app(engine).server.test_client()


def _post(client, token: str, **form) -> object:
    page = client.get(f"/obs/{token}")
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.get_data(as_text=True))
    return client.post(f"/obs/{token}", data={"form_token": form_token.group(1) if form_token else "", **form})


def test_the_self_report_page_refuses_what_it_must(engine, client):
    plan, _key, _due = add_plan(engine, "郑*")
    token = token_for(engine, plan)
    page = client.get(f"/obs/{token}")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin" and "script-src 'self'" in page.headers[
        "Content-Security-Policy"]
    assert client.get(f"/obs/{token[:-3]}abc").status_code == 404
    assert client.post(f"/obs/{token}", data={"temperature": "36.5"}).status_code == 422, "no form token"
    for tenth in range(6):
        assert _post(client, token, temperature=f"36.{tenth}").status_code == 201
    limited = _post(client, token, temperature="36.9")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 3000
    assert len(done_checks(engine, plan, "self")) == 6

    ended, _key, _due = add_plan(engine, "冯*", ends_in=timedelta(days=11))
    ended_token = token_for(engine, ended)
    with engine.begin() as conn:
        conn.execute(text("UPDATE observation_plans SET status = 'closed', closed_at = now(), close_reason = 'x' "
                          "WHERE id = :p"), {"p": ended})
    gone = client.get(f"/obs/{ended_token}")
    assert gone.status_code == 410 and "已结束" in gone.get_data(as_text=True)
    assert _post(client, ended_token, temperature="36.5").status_code == 410
    assert done_checks(engine, ended) == []


def test_who_may_open_the_print_page(engine):
    plan, _key, _due = add_plan(engine, "陈*")
    other, _key, _due = add_plan(engine, "褚*", grid="other")
    server = create_app(engine).server
    anonymous = server.test_client().get(f"/obs/print/{plan}")
    assert anonymous.status_code == 303 and anonymous.headers["Location"].startswith("/login")
    assert signed_in(server.test_client(), "demo_reporter").get(f"/obs/print/{plan}").status_code == 403
    worker = signed_in(server.test_client(), "demo_worker")
    assert worker.get(f"/obs/print/{other}").status_code == 404
    printed = worker.get(f"/obs/print/{plan}")
    assert printed.status_code == 200 and "<svg" in printed.get_data(as_text=True)
    assert worker.post(f"/obs/print/{plan}", data={"csrf_token": "wrong"}).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM observation_events WHERE plan_id = :p AND kind = 'link'"),
                            {"p": plan}).scalar_one() == 0, "a refused renewal changes nothing"
