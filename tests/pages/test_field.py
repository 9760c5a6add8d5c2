"""The field app without a browser: the shell, its manifest, service worker and files; the field endpoints' answers
(lists, addresses and their audit, distances) and who may have them."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import save_user
from app import create_app
from grids.proximity import FAR_FROM_GRID_M
from matching.privacy import load_vault
from pages.field import FILES, asset_url
from tasks.repository import NewTask, create_task, transition
from tests.conftest import DEMO_PASSWORD, signed_in

GRID = "440605011001001"  # demo_worker's grid
OTHER_GRID = "440605011001002"


def worker_id(engine, username: str = "demo_worker") -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()


def worker_task(engine, title: str, kind: str = "area_sweep", grid: str = GRID, assignee: str = "demo_worker",
                person_key: str | None = None, lead_id: int | None = None) -> int:
    """A task dispatched to ``assignee`` (made by the system, as the matcher or a lead would)."""
    with engine.begin() as conn:
        task = create_task(conn, Actor.system(), NewTask(kind, grid, title, person_key=person_key, lead_id=lead_id,
                                                          assignee_id=worker_id(engine, assignee)), datetime.now(UTC))
    assert task["status"] == "dispatched"
    return task["id"]


def walk(engine, task_id: int, *actions: str) -> None:
    """Move a task through ``actions`` as its worker (a handle with a result)."""
    with engine.begin() as conn:
        actor = Actor(worker_id(engine), "demo_worker", "worker")
        for action in actions:
            version = conn.execute(text("SELECT version FROM tasks WHERE id = :t"), {"t": task_id}).scalar_one()
            payload = {"result": "已处置"} if action == "handle" else {}
            transition(conn, actor, task_id, action, version, payload, datetime.now(UTC))


def person_with_home(engine, address: str, phone: str = "13912345678") -> str:
    """A yellow person in the demo grid whose sealed record holds a phone and a home address; returns his key."""
    vault = load_vault()
    id_number = f"44060519720815{secrets.randbelow(1000):03d}"
    key = vault.person_key(id_number)
    sealed = vault.key_and_seal([id_number], ["李小红"], [phone])[1][0]
    with engine.begin() as conn:
        feed = conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs) "
            "VALUES ('卫健', 'field.csv', :sha, 1, 1, 0, 'wgs84') RETURNING id"), {"sha": secrets.token_hex(32)}
        ).scalar_one()
        conn.execute(text(
            "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, name_masked, "
            "phone_masked, address_sealed) VALUES (:feed, 1, '卫健', :key, :sealed, '440605********0015', '李*', "
            "'139****5678', :home)"), {"feed": feed, "key": key, "sealed": sealed,
                                       "home": vault.seal_texts([address])[0]})
        conn.execute(text(
            "INSERT INTO persons (person_key, id_masked, name_masked, phone_masked, colour, reason, confidence, "
            "grid_id, record_feed_file_id, record_row_number) SELECT :key, '440605********0015', '李*', "
            "'139****5678', 'yellow', '密切接触者 / close contact', 1.0, id, :feed, 1 FROM grids WHERE code = :grid"),
            {"key": key, "feed": feed, "grid": GRID})
    return key


def lead_at(engine, address: str) -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO leads (status, summary, address, report_count, first_reported_at, last_reported_at) "
            "VALUES ('triaged', '外地返回人员', :a, 1, now(), now()) RETURNING id"), {"a": address}).scalar_one()


@pytest.fixture(scope="module")
def other_worker(work_engine) -> str:
    """A second worker, of the neighbouring grid."""
    with work_engine.begin() as conn:
        grid = conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": OTHER_GRID}).scalar_one()
        save_user(conn, "field_other_worker", "worker", DEMO_PASSWORD, "邻格网格员", grid_ids=[grid])
    return "field_other_worker"


@pytest.fixture(scope="module")
def app(work_engine):
    return create_app(work_engine)


def client(app, username: str | None):
    made = app.server.test_client()
    return signed_in(made, username) if username else made


def inside_and_far(engine) -> tuple[tuple[float, float], tuple[float, float]]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT ST_X(p) AS lon, ST_Y(p) AS lat, ST_YMax(geom) AS top FROM "
                                "(SELECT geom, ST_PointOnSurface(geom) AS p FROM grids WHERE code = :c) g"),
                           {"c": GRID}).one()
    return (row.lon, row.lat), (row.lon, row.top + 0.02)  # about 2.2 km north of the grid's northern edge


def test_the_shell_is_for_a_worker_and_names_nobody(app):
    worker = client(app, "demo_worker")
    page = worker.get("/field/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "demo_worker" not in html and "演示" not in html, "the shell is cached offline: it names nobody"
    assert "_dash" not in html and "leaflet" not in html.lower() and "react" not in html.lower()
    assert "我的任务" in html and 'rel="manifest"' in html
    for name in ("app.js", "app.css"):
        assert asset_url(name) in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["Cache-Control"] == "no-cache" and page.headers.get("ETag")
    assert worker.get("/field/", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304
    worker.set_cookie("nanhai_lang", "en")
    english = worker.get("/field/").get_data(as_text=True)
    assert "My tasks" in english and "我的任务" not in english

    anonymous = client(app, None).get("/field/")
    assert anonymous.status_code == 303 and anonymous.headers["Location"].endswith("/login?next=/field/")
    refused = client(app, "demo_supervisor").get("/field/")
    assert refused.status_code == 403 and "page-refusal" in refused.get_data(as_text=True)


def test_the_shell_has_todays_follow_ups_and_the_check_in_sheet(app):
    """Issue 25: a third tab for the follow-ups and, in the sheet, a temperature and the four symptoms; the script
    is given the tab's strings in the page's language."""
    html = client(app, "demo_worker").get("/field/").get_data(as_text=True)
    assert 'id="field-tab-follow"' in html and ">今日随访 <" in html and 'id="field-follow"' in html
    assert 'id="field-check-temperature"' in html
    assert [f'id="field-check-symptom-{s}"' in html for s in ("none", "cough", "fever", "other")] == [True] * 4
    config = json.loads(html.split('id="field-config">', 1)[1].split("</script>", 1)[0])
    assert (config["strings"]["tab_follow"], config["strings"]["check"]) == ("今日随访", "记录体温")


def test_the_manifest_service_worker_and_files(app):
    anyone = client(app, None)
    manifest = anyone.get("/field/manifest.webmanifest")
    body = json.loads(manifest.get_data(as_text=True))
    assert manifest.mimetype == "application/manifest+json"
    assert (body["name"], body["start_url"], body["display"]) == ("南海网格", "/field/", "standalone")
    assert {icon["sizes"] for icon in body["icons"]} >= {"192x192", "512x512"}
    for icon in body["icons"]:
        assert anyone.get(icon["src"]).status_code == 200
    worker = anyone.get("/field/sw.js")
    source = worker.get_data(as_text=True)
    assert worker.mimetype == "text/javascript" and worker.headers["Service-Worker-Allowed"] == "/field/"
    assert "__FILES__" not in source and all(asset_url(name) in source for name in FILES)
    assert "/api/" not in source.split("*/", 1)[1], "the service worker keeps no API answer"
    script = anyone.get(asset_url("app.js"))
    assert script.status_code == 200 and "immutable" in script.headers["Cache-Control"]
    assert "no-cache" in anyone.get("/field/app.js").headers["Cache-Control"], "an unversioned URL is revalidated"
    assert anyone.get("/field/secrets.txt").status_code == 404


def test_the_lists_give_tasks_in_hand_and_done_with_their_places(app, work_engine, other_worker):
    home = "桂城街道南桂东路 8 号 3 座 502"
    key = person_with_home(work_engine, home)
    visit = worker_task(work_engine, "入户走访 · 地址", kind="home_visit", person_key=key)
    lead = worker_task(work_engine, "核实线索 · 地址", lead_id=lead_at(work_engine, "桂城街道桂一一路 149 号"))
    handled = worker_task(work_engine, "已反馈的任务")
    walk(work_engine, handled, "accept", "start", "handle")
    elsewhere = worker_task(work_engine, "别人的任务", grid=OTHER_GRID, assignee=other_worker)

    answer = client(app, "demo_worker").get("/api/v1/field/tasks")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    in_hand = {t["id"]: t for t in body["tasks"]}
    done = {t["id"]: t for t in body["done"]}
    assert visit in in_hand and lead in in_hand and handled in done and handled not in in_hand
    assert elsewhere not in in_hand and elsewhere not in done
    assert in_hand[visit]["address"] == home and in_hand[lead]["address"] == "桂城街道桂一一路 149 号"
    assert in_hand[visit]["person"]["name_masked"] == "李*" and "13912345678" not in answer.get_data(as_text=True)
    assert in_hand[visit]["needs_temperature"] is True and in_hand[visit]["target"]["lon"] > 113
    assert body["session_expires_at"] > body["as_of"] and body["csrf_token"] and body["far_from_m"] == FAR_FROM_GRID_M
    dues = [t["due_at"] for t in body["tasks"]]
    assert dues == sorted(dues), "the most urgent first"

    client(app, "demo_worker").get("/api/v1/field/tasks")  # a refresh: the address is not audited twice
    with work_engine.connect() as conn:
        audited = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'read_task_address' "
                                    "AND subject = :s AND username = 'demo_worker'"), {"s": f"task:{visit}"}).scalar()
    assert audited == 1


def test_a_closed_task_older_than_a_week_leaves_the_done_list(app, work_engine):
    old = worker_task(work_engine, "上周结案")
    walk(work_engine, old, "accept", "start", "handle")
    with work_engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET status = 'closed', closed_at = :at, handled_at = :at WHERE id = :t"),
                     {"at": datetime.now(UTC) - timedelta(days=8), "t": old})
    body = client(app, "demo_worker").get("/api/v1/field/tasks").get_json()
    assert old not in {t["id"] for t in body["done"] + body["tasks"]}


def test_the_distance_says_inside_near_or_far(app, work_engine):
    task_id = worker_task(work_engine, "距离")
    inside, far = inside_and_far(work_engine)
    worker = client(app, "demo_worker")
    there = worker.get(f"/api/v1/field/tasks/{task_id}/distance?lon={inside[0]}&lat={inside[1]}").get_json()
    assert there == {"task_id": task_id, "distance_m": 0, "inside": True, "far": False, "far_from_m": FAR_FROM_GRID_M}
    away = worker.get(f"/api/v1/field/tasks/{task_id}/distance?lon={far[0]}&lat={far[1]}").get_json()
    assert away["far"] is True and FAR_FROM_GRID_M < away["distance_m"] < 5000
    bad = worker.get(f"/api/v1/field/tasks/{task_id}/distance?lon=500&lat=23")
    assert bad.status_code == 422 and bad.get_json()["field"] == "lon"


def test_every_field_endpoint_checks_the_role_and_the_task(app, work_engine, other_worker):
    mine = worker_task(work_engine, "我的任务")
    theirs = worker_task(work_engine, "邻格的任务", grid=OTHER_GRID, assignee=other_worker)
    with work_engine.begin() as conn:  # a task of his own grid left with nobody: not his either
        nobodys = create_task(conn, Actor.system(), NewTask("area_sweep", GRID, "未派遣", dispatch=False),
                              datetime.now(UTC))["id"]
    distance = "/api/v1/field/tasks/{}/distance?lon=113.15&lat=23.05"
    for path in ("/api/v1/field/tasks", distance.format(mine)):
        assert client(app, None).get(path).status_code == 401, path
        for role in ("demo_supervisor", "demo_commander", "demo_admin", "demo_reporter"):
            assert client(app, role).get(path).status_code == 403, (path, role)
    assert client(app, "demo_worker").get(distance.format(theirs)).status_code == 404
    assert client(app, "demo_worker").get(distance.format(nobodys)).status_code == 404
    assert client(app, "demo_worker").get(distance.format(999_999_999)).status_code == 404
