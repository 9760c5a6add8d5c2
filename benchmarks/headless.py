"""A real headless Chromium (Debian's chromium + chromium-driver) and a loopback server: for the browser tests
and the page benchmarks (`gridctl bench wall`)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class LiveServer:
    """Serve a Flask app on a free loopback port in a background thread."""

    def __init__(self, flask_app: WSGIApplication) -> None:
        self.server = make_server("127.0.0.1", 0, flask_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


class _Chromium(webdriver.Chrome):
    profile_dir = ""  # its throw-away profile, removed by close()


def chromium(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    """Start headless Chromium; fails loudly (never skips) when it is not installed."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise RuntimeError(f"{path} is missing: run `make setup` (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="nanhai-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--lang=zh-CN"):
        options.add_argument(flag)
    driver = _Chromium(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    return driver


def close(driver: webdriver.Chrome) -> None:
    driver.quit()
    shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)
