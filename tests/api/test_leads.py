"""Leads: the public form and the API, validation, merging by address or distance, rate limit, triage."""

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import text

from app import create_app
from tests.api.client import ApiClient
from tests.browser import LiveServer
from tests.conftest import Clock


@pytest.fixture(scope="module")
def lead_server(work_engine):
    """A server whose clock stands in its own week, so that other tests' reports do not count against it."""
    clock = Clock()  # weeks ahead of the real one, but never behind it: a browser drops a cookie past its expiry
    clock.moment = (clock.moment + timedelta(days=18)).replace(hour=2, minute=0, second=0)
    with LiveServer(create_app(work_engine, clock).server) as server:
        yield server, clock


@pytest.fixture(scope="module")
def spot(work_engine) -> tuple[float, float]:
    with work_engine.connect() as conn:
        return tuple(conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                       "WHERE code = '440605011001006') x")).one())


def _report(server, **body) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/leads", json=body)


def test_reports_of_the_same_place_merge_and_every_report_is_kept(lead_server, spot, work_engine):
    server, clock = lead_server
    lon, lat = spot
    first = _report(server, description="楼下有人发热咳嗽", location={"lon": lon, "lat": lat}, contact="13800138000")
    assert first.status_code == 201 and first.json()["merged"] is False and first.json()["placed"] is True
    near = _report(server, description="同一栋楼有人发烧", location={"lon": lon + 0.0003, "lat": lat})  # ~30 m east
    far = _report(server, description="另一处聚集", location={"lon": lon + 0.002, "lat": lat})  # ~200 m
    assert near.json()["id"] == first.json()["id"] and near.json()["report_count"] == 2
    assert far.json()["id"] != first.json()["id"] and far.json()["merged"] is False
    clock.advance(minutes=11)
    by_text = _report(server, description="地址同上", address="佛山市南海区桂城街道 海五路２８号")
    same_text = _report(server, description="再报一次", address="桂城街道海五路28号")
    assert same_text.json()["id"] == by_text.json()["id"] and same_text.json()["merged"] is True
    clock.advance(hours=25)
    later = _report(server, description="一天后又见", location={"lon": lon, "lat": lat})
    assert later.json()["id"] != first.json()["id"], "outside the merge window a report starts a new lead"
    with work_engine.connect() as conn:
        stored = conn.execute(text("SELECT description, contact_sealed, contact_masked FROM lead_reports "
                                   "WHERE lead_id = :l ORDER BY id"), {"l": first.json()["id"]}).all()
    assert [r.description for r in stored] == ["楼下有人发热咳嗽", "同一栋楼有人发烧"]
    assert stored[0].contact_masked == "138****8000" and "13800138000" not in stored[0].contact_sealed


@pytest.mark.parametrize(("body", "field"), [
    ({"address": "桂城街道海五路28号"}, "description"),
    ({"description": "有情况"}, "address"),
    ({"description": "有情况", "location": {"lon": "东经", "lat": 23}}, "location.lon"),
    ({"description": "有情况", "location": {"lon": 116.4, "lat": 39.9}}, "location"),
    ({"description": "x" * 1001, "address": "桂城"}, "description"),
    ({"description": "有情况", "location": {"lon": 113.1, "lat": 23.0}, "crs": "no-such-crs"}, "crs"),
])
def test_bad_reports_are_refused_with_the_field(lead_server, body, field):
    response = _report(lead_server[0], **body)
    assert response.status_code == 422 and response.json()["field"] == field


def test_the_public_is_rate_limited_per_client(lead_server):
    server, clock = lead_server
    clock.advance(days=3)
    answers = [_report(server, description=f"第 {i} 条", address=f"大沥镇黄岐社区{i}号") for i in range(6)]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) == 600


def test_phones_behind_one_address_are_limited_each_by_its_device_token(lead_server):
    server, clock = lead_server
    clock.advance(days=3)
    answers = {device: [requests.post(f"{server.url}/api/v1/leads", headers={"X-Device-Token": device * 24},
                                      json={"description": f"第 {i} 条", "address": f"九江镇沙口社区{device}{i}号"})
                        for i in range(6)]
               for device in ("a", "b")}
    assert {device: [a.status_code for a in sent] for device, sent in answers.items()} == {
        "a": [201] * 5 + [429], "b": [201] * 5 + [429]}, "each phone has its own five, whatever the address"


def test_the_public_form_works_without_login_and_javascript(lead_server, spot):
    server, clock = lead_server
    clock.advance(days=3)
    browser = requests.Session()
    form = browser.get(f"{server.url}/leads/new")
    assert form.status_code == 200 and 'name="description"' in form.text and "https://" not in form.text
    token = re.search(r'name="form_token" value="([^"]+)"', form.text).group(1)
    empty = browser.post(f"{server.url}/leads/new", data={"form_token": token, "description": ""})
    assert empty.status_code == 422 and "description" in empty.text
    sent = browser.post(f"{server.url}/leads/new", data={"form_token": token, "description": "小区门口有人咳嗽",
                                                         "lon": f"{spot[0]:.6f}", "lat": f"{spot[1]:.6f}"})
    assert sent.status_code == 201 and re.search(r'id="lead-id">\d+<', sent.text)


def test_a_supervisor_triages_a_lead_into_a_two_hour_verification(lead_server, spot):
    server, clock = lead_server
    clock.advance(days=3)
    lead = _report(server, description="疑似有人隔离期外出", location={"lon": spot[0], "lat": spot[1]}).json()
    supervisor = ApiClient(server.url, "demo_supervisor")
    listed = supervisor.get("/leads").json()["leads"]
    assert lead["id"] in {item["id"] for item in listed}
    shown = supervisor.get(f"/leads/{lead['id']}").json()
    assert shown["grid_code"] == "440605011001006" and len(shown["reports"]) == 1
    task = supervisor.post(f"/leads/{lead['id']}/triage", {})
    assert task.status_code == 201, task.text
    assert task.json()["kind"] == "lead_verification" and task.json()["sla_minutes"] == 120
    assert task.json()["lead_id"] == lead["id"] and task.json()["status"] == "dispatched"
    again = supervisor.post(f"/leads/{lead['id']}/triage", {})
    assert again.status_code == 409 and again.json()["error"] == "lead_not_open"
    assert ApiClient(server.url, "demo_worker").post(f"/leads/{lead['id']}/triage", {}).status_code == 403
