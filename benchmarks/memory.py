"""Peak memory of this process and every process it started (a Spark driver's JVM, its workers and executors),
sampled from /proc: what a run needs of a machine, which ``ru_maxrss`` (this process alone) does not say."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss(pid: int) -> int:
    """Resident bytes of one process (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int | None = None) -> int:
    """Resident bytes of ``root`` (default: this process) and all its descendants, now."""
    total, todo, seen = 0, [root or os.getpid()], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss(pid)
        todo += _children(pid)
    return total


class PeakMemory:
    """The largest :func:`tree_rss` seen while sampling (every ``interval`` seconds)."""

    def __init__(self) -> None:
        self.peak = 0


@contextmanager
def peak_memory(interval: float = 0.2) -> Iterator[PeakMemory]:
    """Sample this process tree's memory in a thread for the ``with`` block; ``.peak`` in bytes."""
    result, done = PeakMemory(), threading.Event()

    def sample() -> None:
        while True:
            result.peak = max(result.peak, tree_rss())
            if done.wait(interval):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result.peak = max(result.peak, tree_rss())
