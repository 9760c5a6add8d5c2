"""The browser tests' helpers: the headless Chromium and loopback server of :mod:`benchmarks.headless`, logging in
through the login page, and screenshots."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.headless import LiveServer, chromium, close
from tests.conftest import DEMO_PASSWORD

__all__ = ["LiveServer", "chromium", "close", "log_in", "phone_chromium", "place", "screenshot", "waiting"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def waiting(driver: webdriver.Chrome, seconds: float = 60) -> WebDriverWait:
    """A wait that polls through re-renders: Dash replaces elements while a test reads them, and an element
    found a moment ago and gone when read is a reason to look again, not a failure."""
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def log_in(driver: webdriver.Chrome, base: str, username: str, target: str = "/") -> None:
    """Log in as a demo user through the login page; lands on ``target`` (``/``: the user's own page)."""
    driver.get(f"{base}/login?next={target}")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(DEMO_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def phone_chromium() -> webdriver.Chrome:
    """Headless Chromium as a 390 x 844 phone (headless windows are at least 500 px wide: the screen is emulated)."""
    driver = chromium(390, 844)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2,
                                                                  "mobile": True})
    return driver


def place(driver: webdriver.Chrome, origin: str, lon: float, lat: float) -> None:
    """Let ``origin`` read the position and put the phone at (``lon``, ``lat``)."""
    driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["geolocation"], "origin": origin})
    driver.execute_cdp_cmd("Emulation.setGeolocationOverride", {"latitude": lat, "longitude": lon, "accuracy": 8})


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save a screenshot into the git-ignored tests/screenshots folder."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
