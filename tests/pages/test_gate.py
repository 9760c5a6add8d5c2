"""The checkpoint page and the e-pass pages: who may open them and what they show, without a browser; then a gate
phone in headless Chromium (390 × 844, touch): a typed number for each colour, a scan through a network loss, and
the camera fed QR codes (Chromium's fake camera playing a y4m made here) for each colour, a forged and a revoked
pass."""

from __future__ import annotations

import re
import secrets
import time

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from benchmarks.gate import gate_chromium, id_number, qr_image, write_y4m
from tests.browser import LiveServer, close, log_in, screenshot, waiting
from tests.conftest import signed_in
from tests.persons import flag_person

GATE = "KK44060501100101"  # in demo_supervisor's community
GATE_GRID = "440605011001003"
COLOURS = ("green", "blue", "yellow", "red")
VERDICTS = {"green": ("pass", "允许通行"), "blue": ("temporary", "临时通行"), "yellow": ("temporary", "临时通行"),
            "red": ("refuse", "不予通行")}


@pytest.fixture(scope="module")
def app(work_engine):
    return create_app(work_engine)


@pytest.fixture(scope="module")
def vault(app):
    return app.server.config["NANHAI_VAULT"]()


@pytest.fixture(scope="module")
def people(work_engine, vault) -> dict[str, tuple[str, str]]:
    """A person of each colour in the gate's grid, known by an ID number: colour → (ID number, person key)."""
    base = secrets.randbelow(900)
    found = {}
    for offset, colour in enumerate(COLOURS):
        number = id_number(base + offset, born="19580707")
        key = vault.person_key(number)
        if colour == "green":  # only risk colours are flagged
            with work_engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id) "
                    "SELECT :k, '440605********0000', '周*', 'green', '无 / none', 1.0, id FROM grids "
                    "WHERE code = :g"), {"k": key, "g": GATE_GRID})
        else:
            flag_person(work_engine, key, GATE_GRID, colour, name="周*")
        found[colour] = (number, key)
    return found


def _client(app, username: str | None):
    client = app.server.test_client()
    return signed_in(client, username) if username else client


def _csrf(client) -> str:
    return client.get("/api/v1/session").get_json()["csrf_token"]


def _issue(client, key: str) -> dict:
    answer = client.post(f"/api/v1/persons/{key}/passes", json={}, headers={"X-CSRF-Token": _csrf(client)})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def _alerts(engine, key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM tasks WHERE kind = 'checkpoint_alert' AND person_key = :k"),
                            {"k": key}).scalar_one()


def _scans(engine, key: str) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT scanned_at, direction, colour FROM scans WHERE person_key = :k ORDER BY id"),
                            {"k": key}).all()


# -- without a browser ---------------------------------------------------------------------------------------------
def test_the_gate_page_is_for_gate_staff_only(app):
    anonymous = _client(app, None).get("/checkpoint/")
    assert anonymous.status_code == 303 and anonymous.headers["Location"].endswith("/login?next=/checkpoint/")
    reporter = _client(app, "demo_reporter").get("/checkpoint/")
    assert reporter.status_code == 403 and "不能使用卡口核验页面" in reporter.get_data(as_text=True)
    page = _client(app, "demo_supervisor").get("/checkpoint/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and f'value="{GATE}"' in body and 'id="gate-config"' in body
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "KK44060501100401" not in body  # another community's gate
    worker = _client(app, "demo_worker").get("/checkpoint/")  # his grid has no gate
    assert worker.status_code == 200 and 'id="gate-no-checkpoint"' in worker.get_data(as_text=True)


def test_the_gate_serves_its_own_assets_and_nothing_else(app):
    client = _client(app, None)
    script = client.get("/checkpoint/assets/gate.js")
    assert script.status_code == 200 and "window.nanhai" in script.get_data(as_text=True)
    decoder = client.get("/checkpoint/assets/vendor/jsqr-1.4.0.js").get_data(as_text=True)
    assert decoder.startswith("/*! jsQR 1.4.0") and "Apache License" in decoder[:12000]
    for other in ("app.css", "field.js", "../gis/db.py", "vendor/../gate.js"):
        assert client.get(f"/checkpoint/assets/{other}").status_code == 404, other


def test_a_pass_is_issued_printed_and_revoked_from_the_persons_page(app, people):
    number, key = people["yellow"]
    supervisor = _client(app, "demo_supervisor")
    page = supervisor.get(f"/checkpoint/persons/{key}")
    assert page.status_code == 200 and 'id="pass-issue"' in page.get_data(as_text=True)
    issued = _issue(supervisor, key)
    printed = supervisor.get(f"/checkpoint/passes/{issued['id']}")
    sheet = printed.get_data(as_text=True)
    assert printed.status_code == 200 and "<svg" in sheet and "周*" in sheet and "不是身份证件" in sheet
    assert number not in sheet and key not in sheet and issued["token"] not in sheet  # the token only as the code
    supervisor.set_cookie("nanhai_lang", "en")
    english = supervisor.get(f"/checkpoint/passes/{issued['id']}").get_data(as_text=True)
    supervisor.delete_cookie("nanhai_lang")
    assert "not an identity document" in english and "身份证件" not in english  # one language at a time
    listed = supervisor.get(f"/checkpoint/persons/{key}").get_data(as_text=True)
    assert f'data-pass="{issued["id"]}" class="pass-live"' in listed and 'id="pass-revoke-form"' in listed
    revoked = supervisor.post(f"/api/v1/persons/{key}/passes/revocation", json={"reason": "遗失补办"},
                              headers={"X-CSRF-Token": _csrf(supervisor)})
    assert revoked.status_code == 200
    after = supervisor.get(f"/checkpoint/passes/{issued['id']}").get_data(as_text=True)
    assert "<svg" not in after and 'id="pass-revoked"' in after


def test_the_pass_pages_keep_to_the_scope(app, people):
    _number, key = people["red"]
    issued = _issue(_client(app, "demo_supervisor"), key)
    worker = _client(app, "demo_worker")  # the person's grid is not his
    assert worker.get(f"/checkpoint/persons/{key}").status_code == 404
    assert worker.get(f"/checkpoint/passes/{issued['id']}").status_code == 404
    reporter = _client(app, "demo_reporter")
    assert reporter.get(f"/checkpoint/passes/{issued['id']}").status_code == 403
    assert _client(app, None).get(f"/checkpoint/passes/{issued['id']}").status_code == 303


# -- a gate phone in Chromium ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(app):
    with LiveServer(app.server) as server:
        yield server


@pytest.fixture(scope="module")
def phone(live):
    driver = gate_chromium()
    log_in(driver, live.url, "demo_supervisor", "/checkpoint/")
    waiting(driver).until(lambda d: d.execute_script("return !!(window.nanhai && window.nanhai.gate.flush)"))
    yield driver
    close(driver)


def _seq(driver) -> int:
    return int(driver.find_element(By.ID, "gate-verdict").get_attribute("data-seq"))


def _type(driver, number: str, shot: str | None = None) -> dict:
    """Type ``number``, tap 核验, wait for the verdict screen; what it shows (saved as screenshot ``shot``)."""
    before = _seq(driver)
    field = driver.find_element(By.ID, "gate-id")
    field.clear()
    field.send_keys(number)
    driver.find_element(By.ID, "gate-check").click()
    waiting(driver, 30).until(lambda d: _seq(d) > before)
    overlay = driver.find_element(By.ID, "gate-verdict")
    shown = {"verdict": overlay.get_attribute("data-verdict"), "colour": overlay.get_attribute("data-colour"),
             "text": driver.find_element(By.ID, "gate-verdict-text").text,
             "name": driver.find_element(By.ID, "gate-verdict-name").text,
             "reason": driver.find_element(By.ID, "gate-verdict-reason").text,
             "full_screen": driver.execute_script(
                 "var r = document.getElementById('gate-verdict').getBoundingClientRect();"
                 "return r.width >= window.innerWidth && r.height >= window.innerHeight;")}
    if shot:
        screenshot(driver, shot)
    overlay.click()  # a tap closes it
    waiting(driver, 10).until(lambda d: not d.find_element(By.ID, "gate-verdict").is_displayed())
    return shown


def test_a_typed_number_shows_the_verdict_of_each_colour(phone, people, work_engine, vault):
    for colour in COLOURS:
        number, key = people[colour]
        shown = _type(phone, number, f"gate_typed_{colour}")
        verdict, words = VERDICTS[colour]
        assert (shown["verdict"], shown["colour"], shown["text"], shown["name"]) == (verdict, colour, words, "周*")
        assert shown["full_screen"]
        if colour in ("red", "yellow"):
            assert re.search(r"预警任务 #\d+", shown["reason"]), shown
            assert _alerts(work_engine, key) == 1
        else:
            assert "预警" not in shown["reason"] and _alerts(work_engine, key) == 0
    phone.find_element(By.ID, "gate-out").click()  # the direction toggle: this one goes out
    assert phone.find_element(By.ID, "gate-out").get_attribute("aria-pressed") == "true"
    number = id_number(secrets.randbelow(900), born="19590909")
    unknown = _type(phone, number)
    assert (unknown["verdict"], unknown["colour"], unknown["text"], unknown["name"]) == ("pass", "none", "允许通行", "")
    assert [(s.direction, s.colour) for s in _scans(work_engine, vault.person_key(number))] == [("out", None)]
    phone.find_element(By.ID, "gate-in").click()


def test_a_scan_during_a_network_loss_is_queued_and_sent_when_back(phone, people, work_engine):
    number, key = people["blue"]
    before = len(_scans(work_engine, key))
    phone.execute_cdp_cmd("Network.enable", {})
    phone.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                               "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        queued_at = time.time()
        shown = _type(phone, number, "gate_unchecked")
        assert (shown["verdict"], shown["text"]) == ("unchecked", "未能核验")
        badge = phone.find_element(By.ID, "gate-queue")
        assert badge.is_displayed() and "1" in badge.text
        stored = phone.execute_script("return JSON.parse(localStorage.getItem('nanhai.gate.queue'))")
        assert len(stored) == 1 and stored[0]["key"] and stored[0]["body"]["scanned_at"]
        assert len(_scans(work_engine, key)) == before
    finally:
        phone.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                                   "downloadThroughput": -1, "uploadThroughput": -1})
    # back online, the page sends the queue by itself (the online event, or its 5-second retry)
    waiting(phone, 30).until(lambda d: not d.find_element(By.ID, "gate-queue").is_displayed())
    scans = _scans(work_engine, key)
    assert len(scans) == before + 1 and scans[-1].colour == "blue"
    assert abs(scans[-1].scanned_at.timestamp() - queued_at) < 30  # the time of the scan, not of the sending
    phone.execute_script("window.nanhai.gate.flush()")  # a second flush sends nothing again
    assert len(_scans(work_engine, key)) == before + 1


def test_the_camera_reads_passes_of_each_colour_and_refuses_a_forged_or_revoked_one(live, app, people, work_engine,
                                                                                      tmp_path):
    supervisor = _client(app, "demo_supervisor")
    issued = {colour: _issue(supervisor, people[colour][1]) for colour in COLOURS}
    tokens = {colour: issued[colour]["token"] for colour in COLOURS}
    revoked = tokens["green"]
    tokens["green"] = _issue(supervisor, people["green"][1])["token"]  # reissued: the first one is revoked
    pass_id, nonce, mac = revoked.split(".")[1:]
    forged = f"NHP1.{pass_id}.{nonce}.{mac[::-1]}"
    codes = [tokens[c] for c in COLOURS] + [forged, revoked]
    blank = np.full((360, 360), 255, dtype=np.uint8)
    frames = [image for code in codes for image in (qr_image(code), blank)]  # a blank between: each code read anew
    camera = write_y4m(tmp_path / "passes.y4m", frames, frames_each=6)
    alerts_before = {c: _alerts(work_engine, people[c][1]) for c in COLOURS}
    driver = gate_chromium(camera)
    try:
        log_in(driver, live.url, "demo_supervisor", "/checkpoint/")
        wanted = {("pass", "green", ""), ("temporary", "blue", ""), ("temporary", "yellow", ""),
                  ("refuse", "red", ""), ("invalid", "none", "forged"), ("invalid", "none", "revoked")}

        def seen(d) -> set:
            timings = d.execute_script("return window.nanhai && window.nanhai.gate.timings") or []
            return {(t["verdict"], t["colour"], t["why"]) for t in timings if t["source"] == "qr"}
        waiting(driver, 90).until(lambda d: wanted <= seen(d))
        assert driver.find_element(By.ID, "gate-camera-toggle").text == "关闭摄像头"
        screenshot(driver, "gate_camera")
        driver.get(f"{live.url}/checkpoint/passes/{issued['red']['id']}")  # the printable pass, as printed
        assert driver.find_element(By.CSS_SELECTOR, "#pass-qr svg").is_displayed()
        screenshot(driver, "gate_pass_print")
    finally:
        close(driver)
    for colour in COLOURS:
        assert _scans(work_engine, people[colour][1]), colour
    # red and yellow: one alert task each, however often the camera read the code
    assert {c: _alerts(work_engine, people[c][1]) for c in ("red", "yellow")} == {"red": 1, "yellow": 1}
    assert alerts_before["red"] <= 1 and alerts_before["yellow"] <= 1
