"""`gridctl bench field`: the field app on a phone on a poor network, in headless Chromium.

For each of ``loads`` cold first loads (a new browser profile: no HTTP cache, no service worker, nothing kept),
a worker with ``tasks`` tasks opens /field/ at 400 kbps down and up with a 400 ms round trip (CDP
``Network.emulateNetworkConditions``), after logging in at full speed:

- bytes transferred: the sum of ``encodedDataLength`` of the page's ``Network.loadingFinished`` events (the
  performance log), what the phone's radio carried for the page; and the bytes of every answer body the server
  sent meanwhile, the service worker's own fetches of the app's files included. Target: ≤ 200 KB.
- time to the first task card: from navigation start to the moment the app drew its first card
  (``performance.now()`` then, kept by the app). Target: ≤ 5 s.
- offline: once the service worker holds the app, the server is stopped (its port closed and its open
  connections cut: really offline) and the page reloaded: the cached tasks must show. The server is then started
  again on the same port.

Figures are medians over the loads; the last line of the command is JSON.
"""

from __future__ import annotations

import json
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text
from werkzeug.serving import ThreadedWSGIServer

from accounts.actor import Actor
from accounts.repository import save_user
from tasks.repository import NewTask, create_task

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from selenium import webdriver

BENCH_USER = "bench_field_worker"
BENCH_GRID = "440605011001001"
KBPS = 400
LATENCY_MS = 400
TARGET_BYTES = 200 * 1024
TARGET_FIRST_CARD_MS = 5000
Echo = Callable[[str], None]


class _Tracked(ThreadedWSGIServer):
    """Werkzeug's threaded server that remembers its open connections, so that stopping it can cut them."""

    def __init__(self, port: int, app: WSGIApplication) -> None:
        super().__init__("127.0.0.1", port, app)
        self.connections: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        self.connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)


class Counted:
    """A WSGI wrapper counting the bytes of the answer bodies it passes on (after the app's compression)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.sent = 0
        self.encodings: set[str] = set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self.encodings.update(value for name, value in headers if name.lower() == "content-encoding")
            return start_response(status, headers, exc_info)

        answer = self.app(environ, start)
        try:
            for chunk in answer:
                self.sent += len(chunk)
                yield chunk
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()


class StoppableServer:
    """The app on a loopback port that can be stopped (really offline: the port closed, open connections cut) and
    started again on the same port, so that the phone's origin, its service worker and its storage stay."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = Counted(app)
        self.port = 0
        self.server: _Tracked | None = None
        self.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = _Tracked(self.port, self.app)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in list(server.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def __enter__(self) -> StoppableServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def prepare(engine: Engine, tasks: int) -> str:
    """The benchmark's worker (a fresh random password, returned) on the demo grid, holding ``tasks`` open tasks."""
    password = secrets.token_urlsafe(12) + "-Aa1"
    with engine.begin() as conn:
        grid = conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": BENCH_GRID}).scalar_one()
        user = save_user(conn, BENCH_USER, "worker", password, "压测网格员", grid_ids=[grid])
        held = conn.execute(text("SELECT count(*) FROM tasks WHERE assignee_id = :u AND status IN "
                                 "('dispatched', 'accepted', 'in_progress')"), {"u": user}).scalar_one()
        for number in range(held, tasks):
            create_task(conn, Actor.system(), NewTask("home_visit" if number % 2 else "area_sweep", BENCH_GRID,
                                                      f"压测任务 {number + 1}：入户走访测温",
                                                      detail="桂城街道某小区 3 座，居家观察第 2 天",
                                                      assignee_id=user), datetime.now(UTC))
    return password


def phone(log: bool = True) -> webdriver.Chrome:
    """Headless Chromium as a 390 x 844 touch phone in a new profile, with the performance log when ``log``."""
    from selenium import webdriver as web
    from selenium.webdriver.chrome.service import Service

    from benchmarks.headless import CHROMEDRIVER, CHROMIUM, _Chromium

    profile = tempfile.mkdtemp(prefix="nanhai-field-")
    options = web.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=390,844", "--lang=zh-CN"):
        options.add_argument(flag)
    if log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = _Chromium(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2,
                                                                  "mobile": True})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    return driver


def slow_network(driver: webdriver.Chrome, kbps: int = KBPS, latency_ms: int = LATENCY_MS) -> None:
    """``kbps`` down and up with a ``latency_ms`` round trip (0 kbps: no limit, no added latency)."""
    driver.execute_cdp_cmd("Network.enable", {})
    rate = kbps * 1000 / 8 if kbps else -1
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                                "downloadThroughput": rate, "uploadThroughput": rate})


def page_bytes(entries: Iterable[dict[str, Any]]) -> int:
    """The sum of ``encodedDataLength`` of the ``Network.loadingFinished`` events of a performance log."""
    total = 0
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.loadingFinished":
            total += int(message["params"].get("encodedDataLength", 0))
    return total


def log_in(driver: webdriver.Chrome, base: str, username: str, password: str) -> None:
    """Log in through the API from the login page, landing nowhere: the field page's first load stays cold."""
    driver.get(f"{base}/login")
    status = driver.execute_async_script(
        "var done = arguments[2]; fetch('/api/v1/session', {method: 'POST', headers: {'Content-Type': "
        "'application/json'}, body: JSON.stringify({username: arguments[0], password: arguments[1]})})"
        ".then(function (r) { done(r.status); }, function () { done(0); });", username, password)
    if status != 201:
        raise RuntimeError(f"the benchmark's worker could not log in ({status})")


def until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll ``check`` until it gives something true; fail loudly after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {seconds:.0f} s")


CARDS = "return document.querySelectorAll('#field-tasks .nh-field-card').length"
SW_READY = ("return !!(navigator.serviceWorker && navigator.serviceWorker.controller) && "
            "document.getElementById('field-outbox') !== null")


def one_load(server: StoppableServer, password: str, tasks: int, echo: Echo) -> dict[str, Any]:
    """One cold first load at 400 kbps / 400 ms, then a reload with the server stopped."""
    from benchmarks.headless import close

    driver = phone()
    try:
        log_in(driver, server.url, BENCH_USER, password)
        driver.get_log("performance")  # the login's events: not part of the field page's load
        slow_network(driver)
        sent_before = server.app.sent
        driver.get(f"{server.url}/field/")
        first_card = until(lambda: driver.execute_script("return window.nanhai && window.nanhai.field && "
                                                         "window.nanhai.field.timing().firstCardAt"), 60,
                           "the first card")
        until(lambda: driver.execute_script(CARDS) >= tasks, 30, "every card")
        until(lambda: driver.execute_script(SW_READY), 60, "the service worker")
        time.sleep(1.5)  # the service worker's last fetches and the page's settle
        loaded = page_bytes(driver.get_log("performance"))
        served = server.app.sent - sent_before

        server.stop()
        started = time.monotonic()
        try:
            driver.refresh()
            shown = until(lambda: driver.execute_script(CARDS), 30, "the cards offline")
            offline_ms = (time.monotonic() - started) * 1000
            banner = driver.execute_script("var n = document.getElementById('field-net'); return n && !n.hidden")
        finally:
            server.start()
        result = {"page_bytes": loaded, "served_bytes": served, "first_card_ms": round(float(first_card)),
                  "offline_cards": int(shown), "offline_banner": bool(banner), "offline_open_ms": round(offline_ms)}
        echo(f"  冷启动 / cold load: {loaded / 1024:.1f} KB (page), {served / 1024:.1f} KB (server), first card "
             f"{first_card / 1000:.2f} s; offline: {shown} cards in {offline_ms / 1000:.2f} s")
        return result
    finally:
        close(driver)


def field_benchmark(engine: Engine, tasks: int = 20, loads: int = 3, echo: Echo = print) -> dict[str, Any]:
    """Run the benchmark (see the module); returns its figures."""
    from app import create_app

    password = prepare(engine, tasks)
    echo(f"字段应用基准 / field app benchmark: {tasks} tasks, {loads} cold loads at {KBPS} kbps, {LATENCY_MS} ms RTT")
    runs = []
    with StoppableServer(create_app(engine).server) as server:
        for _ in range(loads):
            runs.append(one_load(server, password, tasks, echo))
        encodings = sorted(server.app.encodings)
    median = {key: statistics.median(run[key] for run in runs)
              for key in ("page_bytes", "served_bytes", "first_card_ms", "offline_open_ms")}
    return {"tasks": tasks, "loads": loads, "kbps": KBPS, "latency_ms": LATENCY_MS,
            "cold_load_kb": round(median["page_bytes"] / 1024, 1),
            "served_kb": round(median["served_bytes"] / 1024, 1),
            "first_card_s": round(median["first_card_ms"] / 1000, 2),
            "offline_cards": min(run["offline_cards"] for run in runs),
            "offline_ok": all(run["offline_cards"] >= tasks and run["offline_banner"] for run in runs),
            "offline_open_s": round(median["offline_open_ms"] / 1000, 2),
            "content_encodings": encodings,
            "target_kb": TARGET_BYTES // 1024, "target_first_card_s": TARGET_FIRST_CARD_MS / 1000,
            "within_targets": median["page_bytes"] <= TARGET_BYTES
            and median["first_card_ms"] <= TARGET_FIRST_CARD_MS,
            "runs": runs}
