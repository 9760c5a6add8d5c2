"""The running server's own folder: heartbeats of its background processes, and its metrics files.

``gridctl serve`` makes one fresh folder per run (under systemd's ``RuntimeDirectory``, else the system's
temporary folder), names it in ``NANHAI_RUN_DIR`` before it forks anything, and removes it when it stops.
Every process of that server (the HTTP workers, the task sweeper, the job worker) inherits the variable:

- a background process calls :func:`beat` after each round; ``/healthz`` and ``/metrics`` read the age of the
  last one (:func:`last_beat`). A beat is a file rewritten whole (write, then rename), so a reader never sees
  half of one;
- ``metrics/`` holds prometheus-client's files of every process (its multiprocess mode,
  ``PROMETHEUS_MULTIPROC_DIR``), so that ``/metrics`` adds up all the workers, and keeps what a worker that
  died had counted.

Outside ``gridctl serve`` (tests, a command run once) there is no such folder: :func:`beat` does nothing and
nothing has a heartbeat.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     beat("sweeper", 1000.0, Path(folder)); last_beat("sweeper", Path(folder)), last_beat("jobs", Path(folder))
(1000.0, None)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

RUN_DIR_VARIABLE = "NANHAI_RUN_DIR"
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def run_dir() -> Path | None:
    """The folder of the server this process belongs to, or None outside ``gridctl serve``."""
    named = os.environ.get(RUN_DIR_VARIABLE)
    return Path(named) if named else None


def open_run_dir() -> Path:
    """Make this run's folder (mode 700) and name it, and its metrics folder, in the environment: call it in the
    server's main process before anything is forked, and before anything imports prometheus_client.

    Under systemd the folder is made in ``$RUNTIME_DIRECTORY`` (the unit's ``RuntimeDirectory=``, on tmpfs and
    removed with the service), else in the temporary folder. A fresh folder each run: prometheus-client's
    files of a previous run must not be added to this one's.
    """
    parent = (os.environ.get("RUNTIME_DIRECTORY") or "").split(":")[0] or None
    folder = Path(tempfile.mkdtemp(prefix="nanhai-grid-", dir=parent))
    (folder / "metrics").mkdir(mode=0o700)
    os.environ[RUN_DIR_VARIABLE] = str(folder)
    os.environ[METRICS_VARIABLE] = str(folder / "metrics")
    return folder


def close_run_dir(folder: Path) -> None:
    """Remove the run's folder (the server has stopped) and forget it in the environment."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    for variable in (RUN_DIR_VARIABLE, METRICS_VARIABLE):
        if os.environ.get(variable, "").startswith(str(folder)):
            del os.environ[variable]


def _beat_file(folder: Path, component: str) -> Path:
    return folder / f"{component}.heartbeat"


def beat(component: str, moment: float | None = None, folder: Path | None = None) -> None:
    """Record that ``component`` (``sweeper``, …) is alive now (or at ``moment``, seconds since the epoch);
    nothing outside ``gridctl serve``."""
    folder = folder or run_dir()
    if folder is None:
        return
    target = _beat_file(folder, component)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(json.dumps({"at": time.time() if moment is None else moment, "pid": os.getpid()}))
    os.replace(partial, target)


def last_beat(component: str, folder: Path | None = None) -> float | None:
    """When ``component`` last recorded a heartbeat (seconds since the epoch), or None: never, or no server."""
    folder = folder or run_dir()
    if folder is None:
        return None
    try:
        return float(json.loads(_beat_file(folder, component).read_text())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
