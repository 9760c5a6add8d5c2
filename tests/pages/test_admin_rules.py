"""The rules page: only administrators open it or reach any of its callbacks; the callbacks check, preview, save
and roll back as the domain does; then an administrator's whole story in a real headless Chromium."""

from __future__ import annotations

import json
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import text

from accounts.actor import ADMIN, Actor
from app import create_app
from matching import rule_versions as versions
from matching.rules import DEFAULT_RULES
from pages.admin_rules import _digest
from tasks.kinds import DEFAULT_FILE, load_kinds
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import Clock, signed_in
from tests.matching.test_rule_versions import PROPOSED, district_with_persons, vault_keys

PAGE = "/admin/rules/"
NOT_ADMINS = ("demo_supervisor", "demo_commander", "demo_worker", "demo_reporter")
BROKEN = PROPOSED.replace('colour = "red"', 'colour = "crimson"', 1)  # rule red-confirmed
BROKEN_LINE = PROPOSED.splitlines().index('colour = "red"') + 1


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        vault_keys(patch)
        engine = district_with_persons(database_factory, seeded_engine, "nanhai_rules_page",
                                       tmp_path_factory.mktemp("page"))
        yield engine
    versions.follow_versions(None)  # the page made this process follow its database: back to the files


@pytest.fixture(scope="module")
def server(engine):
    return create_app(engine, Clock()).server


def call(client, first_output: str, values: dict[str, Any], triggered: str | None = None):
    """Post the page's callback whose first output is ``first_output`` (``id.property``), as the browser would,
    with ``values`` for its inputs and states (by ``id.property``; a pattern-matching input by its ``type``)."""
    dependencies = client.get(f"{PAGE}_dash-dependencies").get_json()
    found = next(d for d in dependencies if d["output"].strip(".").split("...")[0].split("@")[0] == first_output)
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
               for part in found["output"].strip(".").split("...")]

    def given(item: dict) -> dict:
        if item["id"].startswith("{"):  # a pattern: the browser sends every matching component
            kind = json.loads(item["id"])["type"]
            return {**item, "id": json.loads(item["id"]), "value": values.get(kind, [])}
        return {**item, "value": values.get(f"{item['id']}.{item['property']}")}

    inputs = [given(i) for i in found["inputs"]]
    first = inputs[0]
    changed = triggered or (f"{first['id']}.{first['property']}" if isinstance(first["id"], str) else
                            json.dumps(first["value"][0]["id"], separators=(",", ":"), sort_keys=True) + ".n_clicks")
    body = {"output": found["output"], "outputs": outputs if found["output"].startswith("..") else outputs[0],
            "inputs": [i if not isinstance(i["id"], dict) else i["value"] for i in inputs],
            "state": [given(s) for s in found["state"]], "changedPropIds": [changed]}
    return client.post(f"{PAGE}_dash-update-component", json=body)


def answer(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.dumps(response.get_json()["response"], ensure_ascii=False)


def rollback_button(version: int | str) -> list[dict]:
    return [{"id": {"type": "rules-rollback", "id": version}, "property": "n_clicks", "value": 1}]


CALLBACKS = {  # each callback's first output, and inputs that would make it act for an administrator
    "rules-colour-check.children": {"rules-colour-text.value": PROPOSED, "rules-lang.data": "zh"},
    "rules-kinds-check.children": {"rules-kinds-text.value": "x", "rules-lang.data": "zh"},
    "rules-colour-preview-out.children": {"rules-colour-preview.n_clicks": 1, "rules-colour-text.value": PROPOSED},
    "rules-kinds-preview-out.children": {"rules-kinds-preview.n_clicks": 1, "rules-kinds-text.value": "x"},
    "rules-colour-message.children": {"rules-colour-save.n_clicks": 1, "rules-colour-text.value": PROPOSED,
                                      "rules-colour-note.value": "forged",
                                      "rules-colour-previewed.data": _digest(PROPOSED)},
    "rules-kinds-message.children": {"rules-kinds-save.n_clicks": 1, "rules-kinds-text.value": "x",
                                     "rules-kinds-note.value": "forged", "rules-kinds-previewed.data": _digest("x")},
    "rules-colour-text.value": {"rules-colour-default.n_clicks": 1},
    "rules-kinds-text.value": {"rules-kinds-default.n_clicks": 1},
    "rules-versions.children": {"rules-changed.data": 1},
    "rules-rollback-message.children": {"rules-rollback": rollback_button("colour_rules")},
}


def test_every_callback_of_the_page_is_bound_and_listed_here(server):
    dependencies = server.test_client().get(f"{PAGE}_dash-dependencies").get_json()
    firsts = {d["output"].strip(".").split("...")[0].split("@")[0] for d in dependencies}
    assert firsts == set(CALLBACKS)


def test_only_administrators_open_the_page_or_reach_its_callbacks(server, engine):
    for username in NOT_ADMINS:
        client = signed_in(server.test_client(), username)
        layout = json.dumps(client.get(f"{PAGE}_dash-layout").get_json(), ensure_ascii=False)
        assert "page-refusal" in layout and "rules-colour-text" not in layout, username
        for output, values in CALLBACKS.items():
            assert call(client, output, values).status_code == 204, (username, output)
    stranger = server.test_client()
    assert "login-redirect" in json.dumps(stranger.get(f"{PAGE}_dash-layout").get_json())
    for output, values in CALLBACKS.items():
        assert call(stranger, output, values).status_code == 204, output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rule_versions")).scalar_one() == 0
    admin = signed_in(server.test_client(), "demo_admin")
    layout = json.dumps(admin.get(f"{PAGE}_dash-layout").get_json(), ensure_ascii=False)
    assert "rules-colour-text" in layout and "rules-kinds-text" in layout and "red-confirmed" in layout
    assert "默认文件（未保存过版本）" in layout


def test_the_callbacks_check_preview_save_and_roll_back(server, engine):
    admin = signed_in(server.test_client(), "demo_admin")
    broken = answer(call(admin, "rules-colour-check.children",
                         {"rules-colour-text.value": BROKEN, "rules-lang.data": "en"}))
    assert f"line {BROKEN_LINE} · rule red-confirmed · colour" in broken and "第 " not in broken  # English only
    assert '"disabled": true' in broken
    valid = answer(call(admin, "rules-colour-check.children",
                        {"rules-colour-text.value": PROPOSED, "rules-lang.data": "en"}))
    assert "✓ Valid" in valid and '"disabled": true' in valid, "valid, but not previewed yet"

    previewed = answer(call(admin, "rules-colour-preview-out.children",
                            {"rules-colour-preview.n_clicks": 1, "rules-colour-text.value": PROPOSED,
                             "rules-lang.data": "en"}))
    assert _digest(PROPOSED) in previewed
    assert "5 persons change colour · 5 code changes · 3 new task requests" in previewed
    assert all(f'"{n}"' in previewed for n in ("-2", "+3", "-3", "+2"))
    ready = answer(call(admin, "rules-colour-check.children",
                        {"rules-colour-text.value": PROPOSED, "rules-colour-previewed.data": _digest(PROPOSED),
                         "rules-lang.data": "en"}))
    assert '"disabled": false' in ready
    refused = answer(call(admin, "rules-colour-preview-out.children",
                          {"rules-colour-preview.n_clicks": 1, "rules-colour-text.value": BROKEN,
                           "rules-lang.data": "en"}))
    assert "1 处错误，未保存" in refused and "nh-error" in refused and "nothing was saved" not in refused

    save = {"rules-colour-save.n_clicks": 1, "rules-colour-text.value": PROPOSED, "rules-colour-note.value": "返岗居家",
            "rules-lang.data": "en"}
    assert call(admin, "rules-colour-message.children", save).status_code == 204, "not previewed: nothing saved"
    saved = answer(call(admin, "rules-colour-message.children", {**save, "rules-colour-previewed.data":
                                                                 _digest(PROPOSED)}))
    with engine.connect() as conn:
        version = versions.newest(conn, "colour_rules")
        job = conn.execute(text("SELECT job_id, requested_by FROM job_progress WHERE kind = 'rematch' "
                                "ORDER BY job_id DESC LIMIT 1")).one()
    assert version is not None and version.body == PROPOSED and version.saved_by == "demo_admin"
    assert f"Saved version #{version.id}: in force now" in saved and f"Re-match queued (job #{job.job_id})" in saved
    assert job.requested_by == "demo_admin"
    listed = answer(call(admin, "rules-versions.children", {"rules-changed.data": 1, "rules-lang.data": "en"}))
    assert f"#{version.id}" in listed and "返岗居家" in listed and "In force" in listed

    back = answer(call(admin, "rules-rollback-message.children",
                       {"rules-rollback": rollback_button("colour_rules"), "rules-lang.data": "en"}))
    with engine.connect() as conn:
        restored = versions.newest(conn, "colour_rules")
        actions = conn.execute(text("SELECT action, username FROM audit_log WHERE action LIKE 'rules.%' "
                                    "ORDER BY id")).all()
    assert restored is not None and restored.body == DEFAULT_RULES.read_text(encoding="utf-8")
    assert f"the shipped file saved as version #{restored.id}" in back and "red-confirmed" in back
    assert [tuple(a) for a in actions] == [("rules.save", "demo_admin"), ("rules.rollback", "demo_admin")]
    again = answer(call(admin, "rules-rollback-message.children",
                        {"rules-rollback": rollback_button(version.id), "rules-lang.data": "en"}))
    assert f"version #{version.id} saved again as version #{restored.id + 1}" in again
    kinds = answer(call(admin, "rules-kinds-text.value", {"rules-kinds-default.n_clicks": 1}))
    assert "lead_verification" in kinds


def test_the_kinds_editor_previews_and_saves_time_limits_that_new_tasks_take(server, engine):
    admin = signed_in(server.test_client(), "demo_admin")
    # area_sweep's limit (the first of the two kinds with a day: verification, after it, keeps its own)
    body = DEFAULT_FILE.read_text(encoding="utf-8").replace("sla_minutes = 1440", "sla_minutes = 2880", 1)
    shown = answer(call(admin, "rules-kinds-preview-out.children",
                        {"rules-kinds-preview.n_clicks": 1, "rules-kinds-text.value": body, "rules-lang.data": "en"}))
    assert "Area sweep" in shown and "area_sweep" in shown and "sla_minutes" in shown
    assert '"1440"' in shown and '"2880"' in shown
    assert "1 changes; the 0 open tasks of these kinds keep their time limits" in shown
    saved = answer(call(admin, "rules-kinds-message.children",
                        {"rules-kinds-save.n_clicks": 1, "rules-kinds-text.value": body, "rules-lang.data": "en",
                         "rules-kinds-note.value": "片区排查放宽到两天", "rules-kinds-previewed.data": _digest(body)}))
    assert "New tasks take the new settings" in saved and "Re-match" not in saved
    assert load_kinds()["area_sweep"].sla_minutes == 2880, "the page's server follows its database"
    back = answer(call(admin, "rules-rollback-message.children",
                       {"rules-rollback": rollback_button("task_kinds"), "rules-lang.data": "en"}))
    assert "the shipped file saved as version" in back and "Re-match" not in back
    assert load_kinds()["area_sweep"].sla_minutes == 1440


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1400, 1000)
    yield driver
    close(driver)


def _set_text(driver, element, value: str) -> None:
    """Put ``value`` in a textarea as one edit (a paste), as React sees typing: one input event."""
    driver.execute_script(
        "const [el, value] = arguments;"
        "Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set.call(el, value);"
        "el.dispatchEvent(new Event('input', {bubbles: true}));", element, value)


@pytest.mark.browser
def test_an_administrator_edits_previews_saves_and_rolls_back_in_the_browser(server, engine, browser):
    with engine.connect() as conn:
        before = versions.newest(conn, "colour_rules")
        start = conn.execute(text("SELECT coalesce(max(id), 0) FROM rule_versions")).scalar_one()
    # the proposal without its last line (a reason: optional), typed in two goes: first pasted up to an
    # unfinished "days = " (a mistake the check names, on its line), then finished by typing
    edited = PROPOSED.rstrip("\n").rsplit("\n", 1)[0] + "\n"
    pasted, typed = edited[:edited.rindex("days = 14") + len("days = ")], "14\n"
    assert pasted + typed == edited
    with LiveServer(server) as live:
        log_in(browser, live.url, "demo_admin", PAGE)
        wait = waiting(browser, 60)
        editor = wait.until(lambda d: d.find_element(By.ID, "rules-colour-text"))
        wait.until(lambda d: "✓" in d.find_element(By.ID, "rules-colour-check").text)
        # how to write conditions, folded until asked for, in the page's language only
        browser.find_element(By.CSS_SELECTOR, "#rules-colour-help summary").click()
        help_text = wait.until(lambda d: d.find_element(By.ID, "rules-colour-help-table")).text
        assert "id_region" in help_text and "身份证号地区码" in help_text and "native place" not in help_text
        _set_text(browser, editor, pasted)
        wait.until(lambda d: "TOML" in d.find_element(By.ID, "rules-colour-check").text)
        assert f"第 {len(pasted.splitlines())} 行" in browser.find_element(By.ID, "rules-colour-check").text
        assert browser.find_element(By.ID, "rules-colour-save").get_attribute("disabled")
        editor.send_keys(typed)
        wait.until(lambda d: "✓" in d.find_element(By.ID, "rules-colour-check").text)
        assert browser.find_element(By.ID, "rules-colour-save").get_attribute("disabled"), "not previewed yet"

        browser.find_element(By.ID, "rules-colour-preview").click()
        table = wait.until(lambda d: d.find_element(By.ID, "rules-colour-preview-table"))
        rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert rows == [["红码", "5", "3", "-2"], ["黄码", "3", "6", "+3"], ["蓝码", "3", "0", "-3"],
                        ["绿码", "2", "4", "+2"]]
        assert "新任务请求 3 个" in browser.find_element(By.ID, "rules-colour-preview-summary").text
        browser.find_element(By.ID, "rules-colour-note").send_keys("浏览器：返岗人员居家观察")
        wait.until(lambda d: d.find_element(By.ID, "rules-colour-save").get_attribute("disabled") is None)
        screenshot(browser, "admin_rules_preview")
        browser.find_element(By.ID, "rules-colour-save").click()
        wait.until(lambda d: f"#{start + 1}" in d.find_element(By.ID, "rules-colour-saved").text)
        wait.until(lambda d: "浏览器：返岗人员居家观察" in d.find_element(By.ID, "rules-versions-table").text)
        assert f"#{start + 1}" in browser.find_element(By.ID, "rules-colour-in-force").text
        assert browser.find_element(By.ID, "rules-colour-save").get_attribute("disabled"), "saved: preview again"

        # the newest colour rules with a button are the ones before: roll back to them
        rows = browser.find_elements(By.CSS_SELECTOR, "#rules-versions-table tbody tr")
        colour_rows = [r for r in rows if r.find_elements(By.TAG_NAME, "td")[1].text == "四色码研判规则"]
        colour_rows[1].find_element(By.TAG_NAME, "button").click()
        wait.until(lambda d: f"#{start + 2}" in d.find_element(By.ID, "rules-rolled-back").text)
        wait.until(lambda d: f"#{start + 2}" in d.find_element(By.ID, "rules-colour-in-force").text)
        assert browser.find_element(By.ID, "rules-colour-text").get_attribute("value") != edited
        screenshot(browser, "admin_rules_rolled_back")
    with engine.connect() as conn:
        saved = versions.get_version(conn, Actor(None, "test", ADMIN), start + 1)
        back = versions.newest(conn, "colour_rules")
    assert (saved.body, saved.note, saved.saved_by) == (edited, "浏览器：返岗人员居家观察", "demo_admin")
    assert back is not None and back.id == start + 2 and back.rolled_back_from == (before.id if before else None)
    assert back.body == (before.body if before else DEFAULT_RULES.read_text(encoding="utf-8"))
