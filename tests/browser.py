"""The browser tests' helpers: the headless Chromium and loopback server of :mod:`pages.headless`, and screenshots."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver

from pages.headless import LiveServer, chromium, close

__all__ = ["LiveServer", "chromium", "close", "screenshot"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save a screenshot into the git-ignored tests/screenshots folder."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
