"""`gridctl bench wall`: the wall's idle refresh (server time) and its first paint in headless Chromium.

- Idle refresh: the wall's refresh callback posted as the browser posts it, with the version the page
  already holds, so nothing changed; timed inside the server (the WSGI call: Flask, Dash, session check,
  version stamp), median of ``repeat``. Target (DESIGN §6): ≤ 20 ms.
- First paint: from navigation start to the moment all 1042 grid shapes are drawn, in Debian's headless
  Chromium against the app served on loopback, median of 3 loads. Target: ≤ 2 s.
- The grid layer's gzipped size. Target: ≤ 150 KB.
"""

from __future__ import annotations

import gzip
import secrets
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from accounts.repository import save_user
from layers.grid_layer import GRID_LAYER_PBF_URL, GRID_LAYER_URL
from pages.wall import COUNTERS, WALL_PATH

if TYPE_CHECKING:
    from flask.testing import FlaskClient

BENCH_USER = "bench_commander"


def refresh_payload(known: str | None) -> dict:
    """The wall's refresh callback as the browser posts it, knowing the version ``known`` (None: a new page)."""
    outputs = [("wall-version", "data"), ("wall-grids", "hideout"), ("wall-density", "url"),
               *((f"wall-{key}", "children") for key in COUNTERS), ("wall-ticker", "children"),
               ("wall-as-of", "children"), ("wall-measure", "children"), ("wall-alarm", "children"),
               ("wall-last-ok", "data")]
    return {"output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": [{"id": "wall-tick", "property": "n_intervals", "value": 1},
                       {"id": "wall-url", "property": "search", "value": ""}],
            "changedPropIds": ["wall-tick.n_intervals"],
            "state": [{"id": "wall-version", "property": "data", "value": known},
                      {"id": "wall-lang", "property": "data", "value": "zh"},
                      {"id": "wall-replay-at", "property": "data", "value": None}]}  # live, not replaying


def _idle_refresh_ms(client: FlaskClient, repeat: int) -> tuple[float, str]:
    url = f"{WALL_PATH}_dash-update-component"
    first = client.post(url, json=refresh_payload(None))
    if first.status_code != 200:
        raise RuntimeError(f"wall refresh failed: {first.status_code} {first.get_data(as_text=True)[:200]}")
    known = first.get_json()["response"]["wall-version"]["data"]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.post(url, json=refresh_payload(known))
        times.append((time.perf_counter() - started) * 1000)
        if answer.get_json()["response"].get("wall-version") is not None:
            raise RuntimeError("the idle refresh resent figures: the version stamp moved during the benchmark")
    return statistics.median(times), known


def _first_paint_ms(base: str, password: str, loads: int = 3) -> list[float]:
    from selenium.webdriver.common.by import By

    from benchmarks.headless import chromium, close

    driver = chromium(1920, 1080)
    try:
        driver.get(f"{base}/login?next={WALL_PATH}")
        driver.find_element(By.ID, "username").send_keys(BENCH_USER)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        paints = []
        for _ in range(loads):
            driver.get(f"{base}{WALL_PATH}")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                drawn = driver.execute_script(
                    "return document.querySelectorAll('path.nh-wall-grid').length >= 1042 ? "
                    "performance.now() : null;")
                if drawn is not None:
                    paints.append(float(drawn))
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError("the wall did not draw its 1042 grids within 30 s")
        return paints
    finally:
        close(driver)


def wall_benchmark(engine: Engine, repeat: int = 50, echo: Callable[[str], None] = print) -> dict:
    """Measure the wall on ``engine``'s data; returns the figures (times in ms, sizes in bytes)."""
    from app import create_app
    from benchmarks.headless import LiveServer

    password = secrets.token_urlsafe(12)
    with engine.begin() as conn:
        save_user(conn, BENCH_USER, "commander", password, "压测指挥员")
    server = create_app(engine).server
    client = server.test_client()
    login = client.post("/api/v1/session", json={"username": BENCH_USER, "password": password})
    if login.status_code != 201:
        raise RuntimeError(f"cannot log in the bench account: {login.status_code}")
    layer = gzip.compress(client.get(GRID_LAYER_PBF_URL).get_data(), 6)
    geojson = gzip.compress(client.get(GRID_LAYER_URL).get_data(), 6)
    echo(f"空闲刷新 / idle refresh × {repeat}")
    idle_ms, _ = _idle_refresh_ms(client, repeat)
    echo("首屏 / first paint in headless Chromium × 3")
    with LiveServer(server) as live:
        paints = _first_paint_ms(live.url, password)
    return {"idle_refresh_ms": round(idle_ms, 2), "idle_target_ms": 20,
            "first_paint_ms": round(statistics.median(paints), 1), "first_paint_runs_ms": [round(p) for p in paints],
            "first_paint_target_ms": 2000, "grid_layer_gzip_bytes": len(layer), "grid_layer_target_bytes": 150 * 1024,
            "grid_layer_raw_bytes": len(client.get(GRID_LAYER_PBF_URL).get_data()),
            "grid_geojson_gzip_bytes": len(geojson)}
