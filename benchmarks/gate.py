"""`gridctl bench gate`: the checkpoint page's verdict latency on loopback while other clients send 200 scans/s.

What is measured: the time from a scan to its verdict painted on the gate page (``assets/gate.js`` notes
``performance.now()`` when the scan starts — the typed number submitted, or the camera frame the QR code was
decoded from — and again in the animation frame after the verdict is on screen), in headless Chromium as a
390 × 844 phone, against the app served by granian (``gridctl serve``: the production server, 2 workers) on
loopback over the benchmark's own database. Meanwhile load processes, each with keep-alive connections of their
own (:mod:`benchmarks.wire`), send ``POST /api/v1/gate/scans`` at a fixed total rate (default 200 scans/s; random
unknown people, and one red person every 50th scan, which joins his open alert task), logged in as another staff
member. Two paths are timed:

- ``typed``: an ID number typed and submitted (N scans, one after the other, each after the previous verdict);
- ``camera``: a QR code e-pass fed to the page's camera through Chromium's fake video capture (a y4m file made
  here with segno and numpy), decode (jsQR) included; every verdict painted during the window is counted.

Printed: median, p95 and max per path, the load's achieved rate and its own median and p95; target 300 ms. The
last line is JSON. The machine's two cores are shared by the server, the load and the browser: figures are of
this machine, under that load.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, text

if TYPE_CHECKING:
    from selenium import webdriver

TARGET_MS = 300.0
GATE = "KK44060501100101"  # demo_supervisor's community
GATE_GRID = "440605011001003"
FRAME = 360  # the fake camera's frames are FRAME x FRAME pixels


# -- the fake camera ------------------------------------------------------------------------------------------
def qr_image(data: str, size: int = FRAME) -> np.ndarray:
    """A QR code of ``data`` centred on a white ``size`` × ``size`` grey image (uint8), as a camera would see it."""
    import segno

    matrix = np.array(segno.make(data, error="m", micro=False).matrix, dtype=np.uint8)
    scale = max(1, (size - 40) // (matrix.shape[0] + 8))
    code = np.kron(np.where(matrix > 0, 0, 255).astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
    frame = np.full((size, size), 255, dtype=np.uint8)
    top = (size - code.shape[0]) // 2
    frame[top:top + code.shape[0], top:top + code.shape[1]] = code
    return frame


def write_y4m(path: Path, images: Sequence[np.ndarray], frames_each: int, fps: int = 10) -> Path:
    """A y4m video (4:2:0, grey) showing each of ``images`` for ``frames_each`` frames: Chromium's fake camera
    (``--use-file-for-fake-video-capture``) plays it in a loop."""
    height, width = images[0].shape
    chroma = bytes([128]) * ((width // 2) * (height // 2) * 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in images:
            frame = b"FRAME\n" + image.tobytes() + chroma
            for _ in range(frames_each):
                out.write(frame)
    return path


def gate_chromium(camera: Path | None = None) -> webdriver.Chrome:
    """Headless Chromium as a 390 × 844 touch phone; with ``camera``, its fake camera plays that y4m file and the
    page may use it without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from benchmarks.headless import CHROMEDRIVER, CHROMIUM

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise RuntimeError(f"{path} is missing: run `make setup` (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="nanhai-gate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=390,844", "--lang=zh-CN",
             "--autoplay-policy=no-user-gesture-required"]
    if camera is not None:
        flags += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera}"]
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile  # type: ignore[attr-defined]  # removed by benchmarks.headless.close
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2,
                                                                  "mobile": True})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    return driver


# -- the benchmark's people -----------------------------------------------------------------------------------
def id_number(serial: int, born: str = "19660606") -> str:
    """A made-up ID number with a valid GB 11643 check digit."""
    from matching.identity import normalise_id_number

    body = f"440605{born}{serial:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return normalise_id_number(body + check)


def _prepare(engine: Engine, password: str) -> dict[str, str]:
    """Demo accounts (password ``password``), a red and a blue person known by ID numbers, an e-pass each; returns
    the red one's ID number and person key, and both pass tokens (the camera alternates them: the page counts the
    same code held in front of it once every few seconds)."""
    from accounts.repository import load_actor
    from checkpoints.passes import issue_pass
    from demo.accounts import create_demo_accounts
    from matching.privacy import load_vault

    vault, found = load_vault(), {}
    with engine.begin() as conn:
        create_demo_accounts(conn, password)
        supervisor = load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = 'demo_supervisor'"))
                                .scalar_one())
        for serial, colour in ((1, "red"), (2, "blue")):
            number = id_number(serial)
            key = vault.person_key(number)
            conn.execute(text(
                "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id) "
                "SELECT :k, '440605********0011', '孙*', :c, '确诊 / confirmed', 1.0, id FROM grids WHERE code = :g "
                "ON CONFLICT (person_key) DO UPDATE SET colour = :c"), {"k": key, "c": colour, "g": GATE_GRID})
            token = issue_pass(conn, supervisor, key, vault, datetime.now(UTC))["token"]
            found[colour] = {"id_number": number, "person_key": key, "token": token}
    return {**found["red"], "token": found["red"]["token"], "other_token": found["blue"]["token"]}


# -- the load ---------------------------------------------------------------------------------------------------
def _session(wire: Any, username: str, password: str) -> tuple[str, str]:
    """(Cookie header, CSRF token) of a fresh login over ``wire``."""
    body = json.dumps({"username": username, "password": password}).encode()
    wire.request("POST", "/api/v1/session", body, {"Content-Type": "application/json"})
    status, headers, answer = wire.getresponse()
    if status != 201:
        raise RuntimeError(f"login {status}: {answer[:200]!r}")
    return "; ".join(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")), json.loads(answer)["csrf_token"]


def _load(port: int, username: str, password: str, rate: float, seconds: float, red_key: str, connections: int,
          results: Any) -> None:
    """One load process: ``connections`` threads, each on a keep-alive connection of its own and one login, POST
    scans at ``rate`` per second in all for ``seconds`` (paced, each thread at its share of the rate)."""
    import threading

    from benchmarks.wire import Wire

    try:
        wires = [Wire("127.0.0.1", port, timeout=30) for _ in range(connections)]
        logins = [_session(wire, username, password) for wire in wires]
    except (OSError, RuntimeError) as exc:
        results.put({"error": str(exc)})
        return
    share = rate / connections
    tallies: list[dict[str, Any]] = []
    begin = time.perf_counter() + 0.2

    def run(index: int) -> None:
        wire, (cookie, csrf) = wires[index], logins[index]
        sent, latencies, failures = 0, [], 0
        start = begin + index / rate  # the threads' sends interleave
        while True:
            due = start + sent / share
            if due - start >= seconds:
                break
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            key = red_key if sent % 50 == 49 else secrets.token_hex(32)
            payload = json.dumps({"checkpoint": GATE, "person_key": key, "direction": "in"}).encode()
            sent_at = time.perf_counter()
            try:
                wire.request("POST", "/api/v1/gate/scans", payload, {
                    "Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": csrf,
                    "Idempotency-Key": secrets.token_hex(16)})
                status, _headers, _answer = wire.getresponse()
                if status == 201:
                    latencies.append((time.perf_counter() - sent_at) * 1000)
                else:
                    failures += 1
            except OSError:
                failures += 1
            sent += 1
        tallies.append({"sent": sent, "latencies": latencies, "failures": failures})

    def guarded(index: int) -> None:
        try:
            run(index)
        except Exception as exc:  # noqa: BLE001  (reported with the figures, not lost in a thread)
            tallies.append({"sent": 0, "latencies": [], "failures": 1, "error": repr(exc)})

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [ms for t in tallies for ms in t["latencies"]]
    broken = [t["error"] for t in tallies if "error" in t]
    if broken:
        results.put({"error": broken[0]})
        return
    results.put({"sent": sum(t["sent"] for t in tallies), "ok": len(latencies),
                 "failures": sum(t["failures"] for t in tallies), "latencies": latencies,
                 "seconds": time.perf_counter() - begin})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    """``gridctl serve`` (granian, 2 workers) over the benchmark's database on ``port``; waits until it answers."""
    import requests

    env = {**os.environ, "DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "gridctl", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"gridctl serve stopped (status {server.returncode})")
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError("gridctl serve did not answer within 120 s")


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """Count, median, p95 and max (ms, one decimal) of ``values``."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "median_ms": round(statistics.median(ordered), 1), "p95_ms": round(p95, 1),
            "max_ms": round(ordered[-1], 1)}


# -- the browser side ---------------------------------------------------------------------------------------------
def _open_gate(driver: webdriver.Chrome, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/login?next=/checkpoint/")
    driver.find_element(By.ID, "username").send_keys("demo_supervisor")
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return !!(window.nanhai && window.nanhai.gate && window.nanhai.gate.flush)"))
    driver.execute_script("document.getElementById('gate-checkpoint').value = arguments[0];", GATE)


def _typed(driver: webdriver.Chrome, number: str, scans: int) -> list[float]:
    """``scans`` typed scans one after the other; the painted verdicts' latencies."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    field = driver.find_element(By.ID, "gate-id")
    for _ in range(scans):
        seen = len(driver.execute_script("return window.nanhai.gate.timings"))
        field.send_keys(number)
        driver.find_element(By.ID, "gate-check").click()
        WebDriverWait(driver, 30).until(
            lambda d, n=seen: len(d.execute_script("return window.nanhai.gate.timings")) > n)
        driver.find_element(By.ID, "gate-verdict").click()  # a tap closes the verdict, as the gate staff do
        WebDriverWait(driver, 10).until(lambda d: not d.find_element(By.ID, "gate-verdict").is_displayed())
    timings = driver.execute_script("return window.nanhai.gate.timings")
    return [t["ms"] for t in timings if t["source"] == "typed"]


def gate_benchmark(engine: Engine, scans: int = 40, rate: float = 200.0, camera_seconds: float = 20.0,
                   load_processes: int = 2, connections: int = 8,
                   echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark on ``engine``'s database (seeded district; demo accounts are reset); returns the figures."""
    from benchmarks.headless import close

    password = secrets.token_urlsafe(12)
    people = _prepare(engine, password)
    url = engine.url.render_as_string(hide_password=False)
    port = _free_port()
    echo(f"启动服务 / starting gridctl serve on 127.0.0.1:{port}")
    server = _serve(url, port)
    base = f"http://127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="nanhai-gate-bench-"))
    load_seconds = 30 + camera_seconds + scans * 1.0
    results: Any = multiprocessing.get_context("spawn").Queue()
    loaders = [multiprocessing.get_context("spawn").Process(
        target=_load, args=(port, "demo_commander", password, rate / load_processes, load_seconds,
                            people["person_key"], connections, results)) for _ in range(load_processes)]
    typed: list[float] = []
    camera: list[float] = []
    try:
        blank = np.full((FRAME, FRAME), 255, dtype=np.uint8)
        camera_file = write_y4m(folder / "pass.y4m", [qr_image(people["token"]), blank,
                                                      qr_image(people["other_token"]), blank], 10)
        phone = gate_chromium()
        try:
            _open_gate(phone, base, password)
            phone.execute_script("window.nanhai.gate.timings = []")
            for loader in loaders:
                loader.start()
            time.sleep(3)  # the load at full rate first
            echo(f"负载 {rate:.0f} 次/秒，手输核验 {scans} 次 / load {rate:.0f} scans/s; {scans} typed scans")
            typed = _typed(phone, people["id_number"], scans)
        finally:
            close(phone)
        echo(f"摄像头扫码 {camera_seconds:.0f} 秒 / camera scans for {camera_seconds:.0f} s")
        viewer = gate_chromium(camera_file)
        try:
            _open_gate(viewer, base, password)
            viewer.execute_script("window.nanhai.gate.timings = []")
            time.sleep(camera_seconds)
            camera = [t["ms"] for t in viewer.execute_script("return window.nanhai.gate.timings")
                      if t["source"] == "qr"]
        finally:
            close(viewer)
        loads = [results.get(timeout=load_seconds + 60) for _ in loaders]
    finally:
        for loader in loaders:
            loader.join(timeout=load_seconds + 60)
            if loader.is_alive():
                loader.terminate()
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    errors = [r["error"] for r in loads if "error" in r]
    if errors:
        raise RuntimeError(f"the load could not run: {errors[0]}")
    ok = sum(r["ok"] for r in loads)
    load_time = max(r["seconds"] for r in loads)
    result: dict[str, Any] = {"target_ms": TARGET_MS, "typed": summary(typed), "camera": summary(camera),
              "load": {"rate_asked": rate, "rate_achieved": round(ok / load_time, 1),
                       "failures": sum(r["failures"] for r in loads),
                       **summary([ms for r in loads for ms in r["latencies"]])}}
    for path in ("typed", "camera"):
        figures = result[path]
        if figures.get("n"):
            echo(f"{path}: 中位 / median {figures['median_ms']} ms, p95 {figures['p95_ms']} ms, "
                 f"最大 / max {figures['max_ms']} ms (n={figures['n']}; 目标 / target {TARGET_MS:.0f} ms)")
    echo(f"负载 / load: {result['load']['rate_achieved']} scans/s achieved of {rate:.0f}, "
         f"median {result['load'].get('median_ms')} ms, p95 {result['load'].get('p95_ms')} ms")
    return result
