"""The public lead form: without JavaScript it is a plain form; with it, "use my position" fills the point
and a tap on the small map (the district's own outlines, no tile server) drops the pin. Each phone gets a
device token: two phones behind one address are limited apart."""

from __future__ import annotations

import re

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from sqlalchemy import text

from app import create_app
from leads.reports import RATE_WINDOW, REPORTS_PER_DEVICE
from pages.plain import DEVICE_COOKIE
from tests.browser import LiveServer, close, phone_chromium, place, screenshot, waiting
from tests.conftest import Clock


@pytest.fixture(scope="module")
def form_engine(database_factory, pristine_district):
    return database_factory("nanhai_lead_form", copy_of=pristine_district)


@pytest.fixture(scope="module")
def served(form_engine):
    clock = Clock()
    with LiveServer(create_app(form_engine, clock).server) as server:
        yield server, clock


@pytest.fixture(scope="module")
def spot(form_engine) -> tuple[float, float]:
    with form_engine.connect() as conn:
        return tuple(conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                       "WHERE code = '440605011001006') x")).one())


def _token(page: requests.Response) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found, "the form carries its token"
    return found.group(1)


def test_the_form_works_without_javascript(served, spot):
    server, clock = served
    clock.advance(days=1)
    phone = requests.Session()
    form = phone.get(f"{server.url}/leads/new")
    assert form.status_code == 200 and DEVICE_COOKIE in phone.cookies, "the phone gets its device token"
    assert "/assets/nanhai.js" not in form.text and "https://" not in form.text
    scripts = re.findall(r'<script src="([^"]+)"', form.text)
    assert scripts and all(phone.get(f"{server.url}{src}").status_code == 200 for src in scripts)
    assert "script-src 'self'" in form.headers["Content-Security-Policy"]
    sent = phone.post(f"{server.url}/leads/new", data={"form_token": _token(form), "description": "小区门口有人咳嗽",
                                                       "lon": f"{spot[0]:.6f}", "lat": f"{spot[1]:.6f}"})
    assert sent.status_code == 201 and re.search(r'id="lead-id">\d+<', sent.text)
    bad = phone.post(f"{server.url}/leads/new", data={"form_token": _token(form), "description": "有情况",
                                                      "lon": "东经", "lat": "23"})
    assert bad.status_code == 422 and 'value="东经"' in bad.text, "a refusal keeps what was typed"


def test_the_outline_is_public_wgs84_and_names_no_one(served, form_engine):
    outline = requests.get(f"{served[0].url}/leads/outline.geojson")
    assert outline.status_code == 200 and outline.headers["Content-Type"].startswith("application/geo+json")
    features = outline.json()["features"]
    assert {f["properties"]["level"] for f in features} == {"towns", "communities"}
    assert set().union(*(f["properties"] for f in features)) == {"code", "name", "label", "level"}
    with form_engine.connect() as conn:
        west, south, east, north = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM towns) x")).one()
    lon, lat = features[-1]["properties"]["label"]
    assert west <= lon <= east and south <= lat <= north, "in WGS84, as the stored towns"


def test_two_phones_behind_one_address_are_limited_apart(served):
    server, clock = served
    clock.advance(days=1)
    first, second = requests.Session(), requests.Session()
    forms = {id(phone): phone.get(f"{server.url}/leads/new") for phone in (first, second)}

    def report(phone: requests.Session, i: int) -> requests.Response:
        return phone.post(f"{server.url}/leads/new", data={
            "form_token": _token(forms[id(phone)]), "description": f"第 {i} 条", "address": f"大沥镇黄岐社区{i}号"})

    assert [report(first, i).status_code for i in range(REPORTS_PER_DEVICE)] == [201] * REPORTS_PER_DEVICE
    refused = report(first, 99)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == int(RATE_WINDOW.total_seconds())
    assert 'role="alert"' in refused.text
    assert [report(second, i).status_code for i in range(REPORTS_PER_DEVICE)] == [201] * REPORTS_PER_DEVICE, \
        "the other phone behind the same address is not blocked"
    clock.advance(seconds=RATE_WINDOW.total_seconds() + 1)
    assert report(first, 100).status_code == 201, "the window passes"


def test_my_position_and_the_pin_on_a_phone(served, spot):
    server, clock = served
    clock.advance(days=1)
    lon, lat = spot
    driver = phone_chromium()
    try:
        place(driver, server.url, lon, lat)
        driver.get(f"{server.url}/leads/new")
        wait = waiting(driver, 30)
        wait.until(lambda d: d.execute_script("return !!(window.nanhai && window.nanhai.leadForm && "
                                              "window.nanhai.leadForm.map())"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lead-map .leaflet-overlay-pane path"))
        assert driver.find_element(By.ID, "lead-map").size["height"] > 150

        driver.find_element(By.ID, "locate").click()
        wait.until(lambda d: d.find_element(By.ID, "lon").get_attribute("value"))
        assert float(driver.find_element(By.ID, "lon").get_attribute("value")) == pytest.approx(lon, abs=1e-6)
        assert float(driver.find_element(By.ID, "lat").get_attribute("value")) == pytest.approx(lat, abs=1e-6)
        assert driver.execute_script("return window.nanhai.leadForm.pin()") == pytest.approx([lon, lat], abs=1e-6)
        assert driver.find_element(By.ID, "lead-status").text
        assert driver.find_elements(By.CSS_SELECTOR, ".lead-label-communities"), "zoomed in: the communities' names"

        # a tap on the map, off its centre (where the position put the pin): the pin and the inputs follow
        # (Selenium 4.2 offsets from the element's top-left corner)
        box = driver.find_element(By.ID, "lead-map")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        width, height = box.size["width"], box.size["height"]
        expected = driver.execute_script(
            "var map = window.nanhai.leadForm.map(), at = map.containerPointToLatLng([arguments[0], arguments[1]]);"
            "return [at.lng, at.lat];", width * 0.25, height * 0.75)
        ActionChains(driver).move_to_element_with_offset(box, width * 0.25, height * 0.75).click().perform()
        wait.until(lambda d: abs(float(d.find_element(By.ID, "lon").get_attribute("value")) - lon) > 1e-5)
        tapped = [float(driver.find_element(By.ID, name).get_attribute("value")) for name in ("lon", "lat")]
        assert tapped == pytest.approx(expected, abs=2e-4)  # within a pixel or two at this zoom
        assert driver.execute_script("return window.nanhai.leadForm.pin()") == pytest.approx(tapped, abs=1e-6)
        screenshot(driver, "lead_form_pin")

        driver.find_element(By.ID, "description").send_keys("这里有人聚集")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.find_elements(By.ID, "lead-id"))
    finally:
        close(driver)
