"""One language at a time: every page of every role, in Chinese and in English, shows no string of the other
language (names of places and people, usernames and codes aside), in a real headless Chromium.

One server and one browser for the module; each role logs in once, and the language is switched by the
``nanhai_lang`` cookie that /lang/<code> sets. The district has matched persons, one with a task, so that the
pages show kinds, statuses, reasons and roles, not only empty lists."""

from __future__ import annotations

import doctest
import time

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import Engine

import tests.language
from app import create_app
from tests.browser import LiveServer, chromium, close, log_in, screenshot
from tests.language import foreign_text
from tests.matching.test_lookup import people_district

# (who logs in, the page): anonymous pages first, then each role's pages, so each role logs in once
PAGES = [
    (None, "/login"), (None, "/activate"), (None, "/leads/new"),
    ("demo_worker", "/field/"), ("demo_worker", "/checkpoint/"),
    ("demo_reporter", "/reports/"),
    ("demo_supervisor", "/dispatch/"), ("demo_supervisor", "/people/"), ("demo_supervisor", "/review/"),
    ("demo_commander", "/wall/"), ("demo_commander", "/admin/audit/"),
    ("demo_admin", "/admin/users/"), ("demo_admin", "/admin/feeds/"), ("demo_admin", "/admin/boundaries/"),
    ("demo_admin", "/admin/rules/"),
]
SETTLED = """
const root = document.getElementById("react-entry-point");
if (document.readyState !== "complete") return false;
if (document.body && document.body.dataset.field === "loading") return false;  // the field app's first list
if (!root) return true;  // a plain page
return root.innerText.trim().length > 0 && !document.querySelector("._dash-loading, [data-dash-is-loading='true']");
"""


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory) -> Engine:
    return people_district(database_factory, seeded_engine, "nanhai_language", tmp_path_factory.mktemp("language"))


@pytest.fixture(scope="module")
def site(engine):
    """(the browser, the server's address, who is logged in): one of each for the module."""
    with LiveServer(create_app(engine).server) as live:
        driver = chromium(1440, 900)
        try:
            yield {"driver": driver, "base": live.url, "user": None}
        finally:
            close(driver)


def _settle(driver: WebDriver, timeout: float = 8) -> None:
    """Wait until a Dash page has drawn and no callback is pending, twice in a row (a callback's answer may
    start another)."""
    end, calm = time.monotonic() + timeout, 0
    while time.monotonic() < end and calm < 2:
        calm = calm + 1 if driver.execute_script(SETTLED) else 0
        time.sleep(0.15)


def _open(site: dict, user: str | None, path: str, lang: str) -> WebDriver:
    driver, base = site["driver"], site["base"]
    if site["user"] != user:
        driver.delete_all_cookies()
        if user is not None:
            log_in(driver, base, user, "/lang/zh")
            _settle(driver)
        site["user"] = user
    driver.get(f"{base}/lang/{lang}?next={path}")
    _settle(driver)
    return driver


def test_the_checker_judges_strings_as_documented():
    assert doctest.testmod(tests.language).failed == 0


@pytest.mark.browser
@pytest.mark.parametrize(("user", "path"), PAGES, ids=[f"{user or 'anonymous'}:{path}" for user, path in PAGES])
def test_the_page_shows_one_language(site, user, path):
    shown = {}
    for lang in ("zh", "en"):
        driver = _open(site, user, path, lang)
        shown[lang] = foreign_text(driver, lang)
        if shown[lang]:
            screenshot(driver, f"language-{lang}-{(user or 'anonymous')}-{path.strip('/').replace('/', '-')}")
    assert shown == {"zh": [], "en": []}
