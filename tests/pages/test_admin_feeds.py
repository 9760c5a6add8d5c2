"""The data imports page: only administrators open it, post its callbacks or download a rejection report; an
administrator's import and withdrawal through its callbacks (no browser); then the whole story in a real headless
Chromium with a job worker beside it: upload a feed with bad rows, watch the progress bar move, read the balance,
download the rejection report, withdraw the import."""

import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from demo.accounts import create_demo_accounts
from jobs.progress import read_progress
from jobs.worker import run_worker
from tests.browser import LiveServer, chromium, close, log_in, screenshot, waiting
from tests.conftest import DEMO_PASSWORD, signed_in
from tests.matching.feedfiles import HEADER, valid_id

PROJECT = Path(__file__).resolve().parents[2]
TODAY = datetime.now().strftime("%Y-%m-%d 09:00")
PAGE = "/admin/feeds/"
NOT_ADMINS = ("demo_worker", "demo_supervisor", "demo_commander", "demo_reporter")


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    with pytest.MonkeyPatch.context() as patch:
        # the page, the worker thread and the worker process must seal and key alike
        patch.setenv("NANHAI_PERSON_KEY_SECRET", "feeds-page-test-secret")
        patch.setenv("NANHAI_FERNET_KEY", Fernet.generate_key().decode())
        engine = database_factory("nanhai_feeds_page", copy_of=seeded_engine)
        with engine.begin() as conn:
            create_demo_accounts(conn, DEMO_PASSWORD)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        yield engine


@pytest.fixture(scope="module")
def server(engine):
    return create_app(engine).server


def url_of(engine):
    return engine.url.render_as_string(hide_password=False)


def work(engine):
    """Run the queued jobs here, as `gridctl jobs worker --once` does."""
    run_worker(url_of(engine), once=True, niceness=0, install_signal_handlers=False)


def scalar(engine, statement, **params):
    with engine.connect() as conn:
        return conn.execute(text(statement), params).scalar_one()


def feed_bytes(first, good=3, lon_bad=1, id_and_phone_bad=1):
    """A police feed: ``good`` confirmed cases, then rows with unparseable coordinates (stored without a point,
    with a field warning), then rows with a wrong check digit and a malformed phone (rejected, with both reasons).
    A title row, the header, data from row 3."""
    out = io.StringIO()
    out.write("南海区排查名单\n" + ",".join(HEADER) + "\n")
    serial = first
    for _ in range(good):
        out.write(f"{serial},张小明,{valid_id(serial)},13812345678,,113.15,23.03,WGS84,确诊,{TODAY}\n")
        serial += 1
    for _ in range(lon_bad):
        out.write(f"{serial},张小明,{valid_id(serial)},13812345678,,东经,23.03,WGS84,确诊,{TODAY}\n")
        serial += 1
    for _ in range(id_and_phone_bad):
        wrong = valid_id(serial)[:-1] + ("0" if valid_id(serial)[-1] != "0" else "1")
        out.write(f"{serial},张小明,{wrong},12345,,113.15,23.03,WGS84,确诊,{TODAY}\n")
        serial += 1
    return out.getvalue().encode("utf-8")


# -- Dash callbacks posted as the browser posts them ------------------------------------------------------
def _dependencies(client):
    return client.get(f"{PAGE}_dash-dependencies").get_json()


def _callback(client, first_output, inputs, state=(), triggered=None):
    """Post the page's callback whose first output is ``first_output`` (``id.property``) with ``inputs`` and
    ``state`` as (id, property, value) in the callback's order."""
    found = [dep for dep in _dependencies(client)
             if dep["output"].lstrip(".").split("...")[0].split("@")[0] == first_output]
    assert found, first_output
    dep = found[0]
    outputs = []
    for item in dep["output"].strip(".").split("..."):
        ident, prop = item.rsplit(".", 1)
        outputs.append({"id": ident, "property": prop})

    def listed(values):
        return [[{"id": i, "property": p, "value": v} for i, p, v in value] if isinstance(value, list)
                else {"id": value[0], "property": value[1], "value": value[2]} for value in values]

    body = {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": listed(inputs), "state": listed(state),
            "changedPropIds": [triggered or f"{inputs[0][0]}.{inputs[0][1]}"]}
    return client.post(f"{PAGE}_dash-update-component", json=body)


def start(client, upload, source="公安", crs="wgs84"):
    return _callback(client, "feeds-job.data",
                     [("feeds-upload", "data", upload), ("feeds-start", "n_clicks", None)],
                     [("feeds-source", "value", source), ("feeds-crs", "value", crs), ("feeds-lang", "data", "en")])


def poll(client, job_id=None, withdraw_id=None):
    return _callback(client, "feeds-progress.children",
                     [("feeds-tick", "n_intervals", 1), ("feeds-job", "data", job_id),
                      ("feeds-withdraw-job", "data", withdraw_id)],
                     [("feeds-changed", "data", 0), ("feeds-lang", "data", "en")])


def history(client):
    return _callback(client, "feeds-history.children", [("feeds-changed", "data", 1)],
                     [("feeds-lang", "data", "en")])


def pick(client, feed_id):
    ident = json.dumps({"id": feed_id, "type": "feeds-withdraw"}, separators=(",", ":"))
    return _callback(client, "feeds-withdraw-target.data",
                     [[({"type": "feeds-withdraw", "id": feed_id}, "n_clicks", 1)],
                      ("feeds-withdraw-cancel", "n_clicks", None)],
                     [("feeds-lang", "data", "en")], triggered=f"{ident}.n_clicks")


def withdraw(client, feed_id, reason):
    return _callback(client, "feeds-withdraw-job.data", [("feeds-withdraw-confirm", "n_clicks", 1)],
                     [("feeds-withdraw-target", "data", feed_id), ("feeds-withdraw-reason", "value", reason),
                      ("feeds-lang", "data", "en")])


def upload(client, name, content):
    csrf = client.get("/api/v1/session").get_json()["csrf_token"]
    answer = client.post("/admin/uploads", data={"purpose": "feed", "file": (io.BytesIO(content), name)},
                         headers={"X-CSRF-Token": csrf}, content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def answer_of(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return json.dumps(response.get_json()["response"], ensure_ascii=False)


def test_only_an_administrator_opens_the_page_posts_its_callbacks_or_downloads_a_report(engine, server):
    admin = signed_in(server.test_client(), "demo_admin")
    sent = upload(admin, "roles.csv", feed_bytes(900, good=1))
    answer_of(start(admin, sent, source="角色测试"))  # queued, not run: enough to have a job
    job_id = scalar(engine, "SELECT max(job_id) FROM job_progress WHERE kind = 'feed_import'")
    with engine.begin() as conn:  # an import with a rejection and a field warning, to ask a report of
        feed_id = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, rows_warned, "
            "default_crs, imported_by) VALUES ('角色', 'r.csv', repeat('a', 64), 2, 1, 1, 1, 'wgs84', 'demo_admin') "
            "RETURNING id")).scalar_one()
        conn.execute(text("INSERT INTO feed_rejections VALUES (:f, 4, '姓名为空 / name is empty')"), {"f": feed_id})
        conn.execute(text("INSERT INTO feed_field_warnings VALUES "
                          "(:f, 3, 'phone', '手机号格式错误 / phone malformed')"), {"f": feed_id})

    layout = json.dumps(admin.get(f"{PAGE}_dash-layout").get_json(), ensure_ascii=False)
    assert "feeds-history" in layout and "feeds-source" in layout and "page-refusal" not in layout
    assert "r.csv" in layout and "角色" in layout, "the history and the known sources are drawn"
    report = admin.get(f"/admin/feeds/{feed_id}/rejections.xlsx")
    assert report.status_code == 200 and report.mimetype.endswith("spreadsheetml.sheet")
    lines = list(load_workbook(io.BytesIO(report.data)).active.iter_rows(values_only=True))
    assert lines == [("行号", "字段", "原因", "类别"), (3, "手机号", "手机号格式错误", "字段警告"),
                     (4, "姓名", "姓名为空", "拒收")], "the report in the reader's language: Chinese by default"
    admin.get("/lang/en")
    english = admin.get(f"/admin/feeds/{feed_id}/rejections.xlsx")
    lines = list(load_workbook(io.BytesIO(english.data)).active.iter_rows(values_only=True))
    assert lines == [("Row", "Field", "Reason", "Kind"), (3, "phone", "phone malformed", "Field warning"),
                     (4, "name", "name is empty", "Rejected")]
    admin.get("/lang/zh")
    assert admin.get("/admin/feeds/999999/rejections.xlsx").status_code == 404

    for username in (*NOT_ADMINS, None):
        client = server.test_client()
        if username:
            signed_in(client, username)
            refused = json.dumps(client.get(f"{PAGE}_dash-layout").get_json(), ensure_ascii=False)
            assert "page-refusal" in refused and "feeds-history" not in refused, username
        else:
            assert "login" in json.dumps(client.get(f"{PAGE}_dash-layout").get_json())
        assert client.get(f"/admin/feeds/{feed_id}/rejections.xlsx").status_code == 403, username
        for response in (start(client, sent), poll(client, job_id), history(client), pick(client, feed_id),
                         withdraw(client, feed_id, "不该成功")):
            assert response.status_code == 204, (username, response.get_data(as_text=True)[:200])
    assert scalar(engine, "SELECT count(*) FROM job_progress WHERE kind = 'feed_import'") == 1
    assert scalar(engine, "SELECT count(*) FROM job_progress WHERE kind = 'feed_withdraw'") == 0
    assert scalar(engine, "SELECT withdrawn_at IS NULL FROM feed_files WHERE id = :f", f=feed_id)
    with engine.begin() as conn:  # leave nothing queued for the next tests' workers
        conn.execute(text("DELETE FROM procrastinate_jobs WHERE id = :j"), {"j": job_id})
        conn.execute(text("DELETE FROM job_progress WHERE job_id = :j"), {"j": job_id})
        conn.execute(text("DELETE FROM feed_files WHERE id = :f"), {"f": feed_id})


def test_an_import_and_its_withdrawal_through_the_callbacks(engine, server):
    admin = signed_in(server.test_client(), "demo_admin")
    refused = answer_of(start(admin, None))
    assert "Upload a file first" in refused
    sent = upload(admin, "callbacks.csv", feed_bytes(800, good=2))
    assert "Name the source department" in answer_of(start(admin, sent, source="  "))
    assert "too big" in answer_of(start(admin, {"error": "InvalidRequest", "message": "too big"}))
    queued = start(admin, sent, source="公安", crs="gcj02").get_json()["response"]
    job_id = queued["feeds-job"]["data"]
    assert "Queued as job" in json.dumps(queued["feeds-message"], ensure_ascii=False)
    assert read_progress(engine, job_id).params["crs"] == "gcj02"
    waiting_panel = poll(admin, job_id).get_json()["response"]
    assert waiting_panel["feeds-tick"]["disabled"] is False
    assert "Queued, waiting for the job worker" in json.dumps(waiting_panel, ensure_ascii=False)

    work(engine)
    done = poll(admin, job_id).get_json()["response"]
    shown = json.dumps(done, ensure_ascii=False)
    assert done["feeds-tick"]["disabled"] is True
    assert "Read 4 = stored 3 + rejected 1" in shown
    assert "ID-card check digit wrong" in shown and "身份证校验位错误" not in shown and '"phone"' in shown
    assert "Rows with field warnings: 1 (stored, without the malformed field)" in shown
    assert "coordinates unparseable" in shown and "坐标无法解析" not in shown  # the page's language only
    feed_id = scalar(engine, "SELECT id FROM feed_files WHERE job_id = :j", j=job_id)
    assert f"/admin/feeds/{feed_id}/rejections.xlsx" in shown
    assert scalar(engine, "SELECT imported_by FROM feed_files WHERE id = :f", f=feed_id) == "demo_admin"
    listed = answer_of(history(admin))
    assert "callbacks.csv" in listed and "demo_admin" in listed and "4 = 3 + 1" in listed
    assert "rows with field warnings: 1" in listed

    confirm = pick(admin, feed_id).get_json()["response"]
    assert confirm["feeds-withdraw-target"]["data"] == feed_id
    assert confirm["feeds-confirm"]["style"] == {"display": "block"}
    assert "callbacks.csv" in confirm["feeds-confirm-text"]["children"]
    assert "原因" in answer_of(withdraw(admin, feed_id, " "))  # a refusal in the page's language: Chinese
    queued = withdraw(admin, feed_id, "测试撤回 / a test").get_json()["response"]
    withdraw_id = queued["feeds-withdraw-job"]["data"]
    assert queued["feeds-confirm"]["style"] == {"display": "none"}
    assert "Being withdrawn" in answer_of(history(admin))
    work(engine)
    over = answer_of(poll(admin, None, withdraw_id))
    assert "Withdrawn: 3 records removed" in over
    listed = answer_of(history(admin))
    assert "Withdrawn" in listed and "a test" in listed and "测试撤回" not in listed  # the reason in English only
    again = answer_of(withdraw(admin, feed_id, "again"))  # a refusal, in the page's language (the cookie's: zh)
    assert "已于" in again and "撤回已在进行" not in again and "nh-error" in again
    audit = scalar(engine, "SELECT username FROM audit_log WHERE action = 'feed.withdraw' AND subject = :s",
                   s=f"feed_file:{feed_id}")
    assert audit == "demo_admin"


# -- the story in a real browser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    driver = chromium(1500, 1000)
    yield driver
    close(driver)


def _worker_process(engine):
    """`gridctl jobs worker` against the test database, as `gridctl serve` runs one beside the web server."""
    env = {**os.environ, "DATABASE_URL": url_of(engine)}
    return subprocess.Popen([sys.executable, "-m", "gridctl", "jobs", "worker"], cwd=PROJECT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _jobs_waiting(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")).scalar()


def _stage_states(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#feeds-progress .nh-stage'))"
        ".map(function (li) { return li.getAttribute('data-stage') + ':' + li.getAttribute('data-state'); });")


@pytest.mark.browser
def test_an_administrator_imports_a_feed_watches_it_downloads_the_rejections_and_withdraws_it(
        engine, server, browser, tmp_path):
    path = tmp_path / "公安-每日.csv"
    path.write_bytes(feed_bytes(700, good=3, lon_bad=1, id_and_phone_bad=2))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    worker = _worker_process(engine)
    seen = []
    try:
        with LiveServer(server) as live, engine.connect() as blocker:
            log_in(browser, live.url, "demo_admin", PAGE)
            wait = waiting(browser, 60)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#feeds-file input[type=file]"))
            browser.find_element(By.ID, "feeds-source").send_keys("公安")
            browser.find_element(By.CSS_SELECTOR, "#feeds-file input[type=file]").send_keys(str(path))
            # the worker's own start-up jobs (today's observation checks, the sweep, which reads persons) first
            wait.until(lambda d: _jobs_waiting(engine) == 0)
            # the match waits for this lock: the job is held mid-run, after its rows are stored
            blocker.execute(text("LOCK TABLE persons IN ACCESS EXCLUSIVE MODE"))
            browser.find_element(By.ID, "feeds-send").click()
            wait.until(lambda d: "matching:now" in (states := _stage_states(d)) and seen.append(states) is None)
            assert seen[-1][:4] == ["reading:done", "storing:done", "storing:done", "storing:done"]
            bar = browser.find_element(By.CSS_SELECTOR, "#feeds-bar-feed_import .nh-bar-fill")
            width = float(bar.value_of_css_property("width").rstrip("px"))
            screenshot(browser, "admin_feeds_running")
            blocker.rollback()  # the match goes on
            wait.until(lambda d: d.find_elements(By.ID, "feeds-balance"))
            assert browser.find_element(By.ID, "feeds-balance").text == "读取 6 行 = 入库 4 + 拒收 2"
            assert browser.find_element(By.ID, "feeds-warned").text.startswith("字段警告 1 行")
            assert all(state.endswith(":done") for state in _stage_states(browser))
            full = float(browser.find_element(By.CSS_SELECTOR, "#feeds-bar-feed_import .nh-bar-fill")
                         .value_of_css_property("width").rstrip("px"))
            assert 0 < width < full, "the bar moved on"

            browser.find_element(By.ID, "feeds-report-link").click()
            deadline = time.monotonic() + 30
            while not (files := [f for f in downloads.iterdir() if f.suffix == ".xlsx"]) and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            assert files, "the rejection report was not downloaded"
            sheet = load_workbook(files[0]).active
            lines = [tuple(row) for row in sheet.iter_rows(values_only=True)]
            assert lines[0] == ("行号", "字段", "原因", "类别"), "the page's language: Chinese"
            warned, rejected = "字段警告", "拒收"
            assert lines[1:] == [
                (6, "经度、纬度", "坐标无法解析", warned),
                (7, "身份证号", "身份证校验位错误", rejected),
                (7, "手机号", "手机号格式错误", rejected),
                (8, "身份证号", "身份证校验位错误", rejected),
                (8, "手机号", "手机号格式错误", rejected)]

            feed_id = scalar(engine, "SELECT id FROM feed_files WHERE file_name = '公安-每日.csv'")
            row = f"#feeds-row-{feed_id}"
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"{row}.nh-feeds-active .nh-feeds-withdraw"))
            assert "demo_admin" in browser.find_element(By.CSS_SELECTOR, row).text
            browser.find_element(By.CSS_SELECTOR, f"{row} .nh-feeds-withdraw").click()
            wait.until(lambda d: d.find_element(By.ID, "feeds-confirm").is_displayed())
            assert "公安-每日.csv" in browser.find_element(By.ID, "feeds-confirm-text").text
            browser.find_element(By.ID, "feeds-withdraw-reason").send_keys("批次重复 / a duplicate batch")
            browser.find_element(By.ID, "feeds-withdraw-confirm").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"{row}.nh-feeds-withdrawn"))
            assert "批次重复" in browser.find_element(By.CSS_SELECTOR, row).text
            wait.until(lambda d: d.find_elements(By.ID, "feeds-withdraw-result"))
            screenshot(browser, "admin_feeds_withdrawn")
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    assert scalar(engine, "SELECT count(*) FROM source_records WHERE feed_file_id = :f", f=feed_id) == 0
    assert scalar(engine, "SELECT withdrawn_by FROM feed_files WHERE id = :f", f=feed_id) == "demo_admin"
