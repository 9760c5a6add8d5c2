"""The periodic round of the task workflow: take the matcher's requests, escalate overdue work, purge.

``gridctl serve`` runs it every minute in a background thread; ``gridctl
tasks sweep`` runs it once (for cron, or right after an import).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from accounts.repository import purge_expired
from gis.runtime import beat
from tasks.intake import take_requests
from tasks.sla import escalate_overdue

log = logging.getLogger(__name__)


def sweep(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """One round in one transaction; returns the tasks created, requests left unplaced, escalations and purges."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        counts = take_requests(conn, now)
        counts["escalations"] = escalate_overdue(conn, now)
        counts["purged"] = purge_expired(conn, now)
    return counts


class Sweeper(threading.Thread):
    """Run :func:`sweep` every ``interval`` seconds until stopped; a failed round is logged, not fatal."""

    def __init__(self, engine: Engine, interval: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(name="nanhai-sweeper", daemon=True)
        self.engine, self.interval, self.clock = engine, interval, clock
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                counts = sweep(self.engine, self.clock())
                beat("sweeper")  # /healthz: the age of the last round that went through (under gridctl serve)
                if any(counts.values()):
                    log.info("sweep: %s", counts)
            except Exception:  # noqa: BLE001 - the next round retries; the server must keep serving
                log.exception("sweep failed; retrying in %.0f s", self.interval)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
