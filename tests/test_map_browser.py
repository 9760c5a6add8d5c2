"""The district map in a real headless Chromium."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app import create_app
from tests.browser import LiveServer, chromium, close, screenshot


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    close(driver)


def test_the_map_draws_all_1042_grids(seeded_engine, browser):
    with LiveServer(create_app(seeded_engine).server) as live:
        browser.get(live.url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".leaflet-overlay-pane path")) >= 1042)
        shapes = browser.find_elements(By.CSS_SELECTOR, ".leaflet-overlay-pane path")
        assert len(shapes) == 1042
        assert "1042 个网格" in browser.find_element(By.ID, "grid-count").text
        # Styled by the nanhai.grids.style function from assets/, not Leaflet's default blue 3 px.
        assert shapes[0].get_attribute("stroke-width") == "0.8"
        requested = browser.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
        assert requested and all(url.startswith(live.url) for url in requested)
        screenshot(browser, "district_map")
