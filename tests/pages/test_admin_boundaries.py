"""The boundaries page: only administrators open it and only they get an answer from its callbacks (every one
checks who is acting); then, in headless Chromium, demo_admin uploads a file with errors (highlighted in the
table and on the map, nothing to apply), then the scenario of :mod:`tests.grids.test_changes` (its preview),
and applies it: the open tasks move in the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from demo.accounts import create_demo_accounts
from grids.changes import preview_change
from grids.importing import read_grid_file
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import DEMO_PASSWORD, signed_in
from tests.grids.test_changes import NEW, G, admin, build_scenario, community_frame, fingerprint, grown, write_gpkg
from web.uploads import save_upload

PAGE = "/admin/boundaries/"
OTHERS = ("demo_worker", "demo_supervisor", "demo_commander", "demo_reporter")


@pytest.fixture(scope="module")
def page_scenario(database_factory, seeded_engine, tmp_path_factory):
    engine = database_factory("nanhai_boundaries_page", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    folder = tmp_path_factory.mktemp("boundaries_page")
    scenario = build_scenario(engine, folder)
    bad = grown(community_frame(engine), G[3], 0.001)
    return engine, scenario, write_gpkg(bad, folder / "overlapping.gpkg")


@pytest.fixture(scope="module")
def app_server(page_scenario):
    return create_app(page_scenario[0]).server


def uploaded(engine, path: Path) -> dict[str, Any]:
    """The upload box's answer for ``path``, sent as demo_admin (what the browser's XHR gets back)."""
    with engine.connect() as conn:
        actor = admin(conn)
    with path.open("rb") as stream:
        upload = save_upload(stream, path.name, "boundary", actor)
    return {"id": upload.id, "name": upload.name, "bytes": upload.bytes, "sha256": upload.sha256}


def call(client, trigger: str, values: dict[str, Any]):
    """Post the callback that ``trigger`` (``id.property``) fires, as the browser would, with ``values`` for its
    inputs and states (by ``id.property``)."""
    dependencies = client.get(f"{PAGE}_dash-dependencies").get_json()
    found = next(d for d in dependencies if d["inputs"] and f"{d['inputs'][0]['id']}.{d['inputs'][0]['property']}"
                 == trigger and not d.get("clientside_function"))
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
               for part in found["output"].strip(".").split("...")]
    body = {"output": found["output"], "outputs": outputs if found["output"].startswith("..") else outputs[0],
            "inputs": [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in found["inputs"]],
            "state": [{**s, "value": values.get(f"{s['id']}.{s['property']}")} for s in found["state"]],
            "changedPropIds": [trigger]}
    return client.post(f"{PAGE}_dash-update-component", json=body)


def show(client, upload: dict[str, Any]):
    return call(client, "boundaries-upload.data", {"boundaries-upload.data": upload, "boundaries-crs.value": "",
                                                   "boundaries-lang.data": "en"})


def test_only_administrators_open_the_page_and_use_its_callbacks(page_scenario, app_server):
    engine, scenario, bad_file = page_scenario
    clients = {name: signed_in(app_server.test_client(), name) for name in (*OTHERS, "demo_admin")}
    stranger = app_server.test_client()
    for name in OTHERS:
        layout = json.dumps(clients[name].get(f"{PAGE}_dash-layout").get_json(), ensure_ascii=False)
        assert "page-refusal" in layout and "boundaries-crs" not in layout, name
    assert "boundaries-crs" in json.dumps(clients["demo_admin"].get(f"{PAGE}_dash-layout").get_json())

    good = uploaded(engine, scenario.file)
    with engine.connect() as conn:
        stamp = preview_change(conn, read_grid_file(scenario.file)).stamp
    store = {"upload": good["id"], "crs": "", "layer": "", "stamp": stamp, "name": scenario.file.name}
    before = fingerprint(engine)
    for client in (*[clients[n] for n in OTHERS], stranger):
        assert show(client, good).status_code == 204, "a forged callback reads nothing"
        assert call(client, "boundaries-apply.n_clicks", {"boundaries-apply.n_clicks": 1,
                                                          "boundaries-preview.data": store,
                                                          "boundaries-lang.data": "en"}).status_code == 204
        assert call(client, "boundaries-cancel.n_clicks", {"boundaries-cancel.n_clicks": 1,
                                                           "boundaries-lang.data": "en"}).status_code == 204
    assert fingerprint(engine) == before, "nobody but an administrator changed anything"

    answer = show(clients["demo_admin"], good)
    assert answer.status_code == 200
    response = answer.get_json()["response"]
    shown = json.dumps(response, ensure_ascii=False)
    assert "boundaries-check-ok" in shown and "boundaries-counts" in shown and NEW in shown
    assert response["boundaries-preview"]["data"]["stamp"] == stamp
    assert response["boundaries-actions"]["style"] == {"display": "flex"}
    assert f"#{scenario.tasks['strip']}" in shown and "Dispatched again" in shown

    refused = show(clients["demo_admin"], uploaded(engine, bad_file))
    response = refused.get_json()["response"]
    shown = json.dumps(response, ensure_ascii=False)
    assert "nh-row-error" in shown and "overlap" in shown and "boundaries-blocked" in shown
    assert response["boundaries-preview"]["data"] is None and response["boundaries-actions"]["style"] == \
        {"display": "none"}

    stale = call(clients["demo_admin"], "boundaries-apply.n_clicks", {
        "boundaries-apply.n_clicks": 1, "boundaries-preview.data": {**store, "stamp": "0:0/feedfacefeedface"},
        "boundaries-lang.data": "en"})
    assert "请重新预览" in json.dumps(stale.get_json(), ensure_ascii=False)  # the cookie's language: Chinese
    assert fingerprint(engine) == before


@pytest.fixture(scope="module")
def browser():
    driver = chromium(1400, 1000)
    yield driver
    close(driver)


def _send(browser, path: Path) -> None:
    browser.find_element(By.CSS_SELECTOR, "#boundaries-file input[type=file]").send_keys(str(path))
    browser.find_element(By.ID, "boundaries-send").click()


@pytest.mark.browser
def test_an_administrator_previews_a_boundary_change_and_applies_it(page_scenario, app_server, browser):
    engine, scenario, bad_file = page_scenario
    with LiveServer(app_server) as live:
        log_in(browser, live.url, "demo_admin", PAGE)
        wait = waiting(browser, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#boundaries-file input[type=file]"))

        # a file with an overlap: the errors in the table and on the map, and nothing to apply
        _send(browser, bad_file)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#boundaries-problems tr.nh-row-error"))
        assert "重叠" in browser.find_element(By.ID, "boundaries-problems").text
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#boundaries-map path.nh-boundary-error"))
        assert browser.find_element(By.ID, "boundaries-blocked").is_displayed()
        assert not browser.find_element(By.ID, "boundaries-apply").is_displayed()
        screenshot(browser, "admin_boundaries_errors")

        # the real change: a clean check, the map, the preview with the tasks that move
        _send(browser, scenario.file)
        wait.until(lambda d: d.find_elements(By.ID, "boundaries-check-ok"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#boundaries-map path.nh-boundary-reshaped")) == 3)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#boundaries-map path.nh-boundary-added")) == 1
        assert len(browser.find_elements(By.CSS_SELECTOR, "#boundaries-map path.nh-boundary-removed")) == 1
        assert not browser.find_elements(By.CSS_SELECTOR, "#boundaries-map path.nh-boundary-error")
        counts = browser.find_element(By.ID, "boundaries-counts").text
        assert "换网格的人员 5" in counts and "换网格的未结任务 5" in counts
        tasks_table = browser.find_element(By.ID, "boundaries-tasks").text
        for name in ("strip", "west", "sweep", "lead", "handled"):
            assert f"#{scenario.tasks[name]} " in tasks_table, name
        assert G[8] in browser.find_element(By.ID, "boundaries-workers").text
        screenshot(browser, "admin_boundaries_preview")

        browser.find_element(By.ID, "boundaries-apply").click()
        wait.until(lambda d: d.find_elements(By.ID, "boundaries-applied"))
        assert "任务移动 5" in browser.find_element(By.ID, "boundaries-applied").text  # the page is in Chinese
        assert not browser.find_element(By.ID, "boundaries-apply").is_displayed()
        wait.until(lambda d: "community_change.gpkg" in d.find_element(By.ID, "boundaries-history-table").text)
        screenshot(browser, "admin_boundaries_applied")

    with engine.connect() as conn:
        moved = dict(conn.execute(text("SELECT id, grid_code FROM tasks WHERE id = ANY(:ids)"),
                                  {"ids": list(scenario.tasks.values())}).all())
        regrid = conn.execute(text("SELECT count(*) FROM task_events WHERE action = 'regrid'")).scalar_one()
    t = scenario.tasks
    assert (moved[t["strip"]], moved[t["west"]], moved[t["lead"]], moved[t["handled"]]) == (G[1], NEW, G[1], G[6])
    assert moved[t["sweep"]] == scenario.expected_successor and moved[t["g2"]] == G[2]
    assert regrid == 5
