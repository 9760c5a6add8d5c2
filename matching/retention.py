"""Retention: a person's data is kept while he is coded and for DAYS after, then removed (``gridctl purge``, and
the job worker every night at 03:30 Beijing time: :mod:`jobs.queue`).

**When a person's last code ended.** A person's code is what the last match stored on him (``persons.colour``,
``expires_at``); every change of it is a line of ``risk_code_history`` (colour, rule, expiry, when it changed);
a manual code (``risk_overrides``) holds until its expiry whatever the rules say. A risk code (red, yellow, blue)
ends at its expiry or at the next change of his code, whichever comes first; green is no code. So his last
code ended at the latest end of: his current risk code, each risk code of his history, and each of his manual
codes (of any colour: while one holds, the platform still decides about him). A code with no expiry never ends.

**Who is purged.** Everyone whose data no moment keeps: his last code ended more than DAYS ago, *and* his newest
source record (its report time, else its import's) is more than DAYS old — for someone never coded, that is
the only date — *and* so is his newest checkpoint scan and the last step of each of his tasks. Someone with an
open task, a pending task request or a pending appeal is kept whatever the dates say. People the platform
knows only from a scan or a task (no record any more) count the same way.

**What is removed.** His row in ``persons`` and ``flags``, his code history, manual codes, appeals, task
requests, his source records (sealed personal fields, sealed home address, masked fields, place, category)
and their phone keys, the photos of his tasks. **What is kept, naming no one.** ``task_events`` and
``audit_log`` are append-only (a trigger refuses UPDATE, DELETE and TRUNCATE: migration 0003); their rows
stay as they are, and what they point to becomes a tombstone: his tasks keep their grid, kind, status and
times, lose his key, his name in the title (``红码人员转运（已清除 / purged）``), the detail and his point; his
scans keep checkpoint, time, direction and colour, their person becomes ``purged``. An audit line that named him
keeps his person key (a keyed hash of his ID number) and resolves to nobody. Tip-off contacts go too, once
their lead is dealt with and its last report is DAYS old.

A purge is one transaction: cut short, it leaves everything as it was; run twice, the second finds nobody.
It writes what it removed — rows per table, never who — to the audit log (``retention.purge``).

>>> PurgeReport(28, datetime(2026, 11, 5, tzinfo=UTC), 2, {"persons": 2}, {"tasks": 1}, {"lead_reports": 0},
...             0.1).summary()
'people 2; removed persons 2; tombstoned tasks 1; cleared lead_reports 0'
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from accounts.actor import Actor
from accounts.repository import record_read
from gis.errors import ConfigurationError
from matching import retention_repository

DEFAULT_DAYS = 28  # the longest code of the shipped rules (a confirmed case: 28 days), once more
MAX_DAYS = 3650
DAYS_VARIABLE = "NANHAI_RETENTION_DAYS"
AUDIT_ACTION = "retention.purge"


def retention_days(days: int | None = None) -> int:
    """The days data is kept after a person's last code ended: ``days`` if given, else ``NANHAI_RETENTION_DAYS``,
    else :data:`DEFAULT_DAYS`; a whole number from 1 to :data:`MAX_DAYS`, else ConfigurationError."""
    if days is None:
        raw = os.environ.get(DAYS_VARIABLE, "").strip()
        if not raw:
            return DEFAULT_DAYS
        try:
            days = int(raw)
        except ValueError:
            days = 0
        where = f"{DAYS_VARIABLE}={raw!r}"
    else:
        where = f"days={days}"
    if not 1 <= days <= MAX_DAYS:
        raise ConfigurationError(f"保留天数须为 1 到 {MAX_DAYS} 的整数 / the retention days must be a whole number "
                                 f"from 1 to {MAX_DAYS}: {where}")
    return days


@dataclass(frozen=True)
class PurgeReport:
    """What one purge did: the days kept and the cutoff they give, how many people it purged, and the rows it
    removed, tombstoned (kept, naming no one) and cleared, per table; how long it took."""

    days: int
    cutoff: datetime
    people: int
    removed: dict[str, int]
    tombstoned: dict[str, int]
    cleared: dict[str, int]
    seconds: float

    def summary(self) -> str:
        """The counts in one line (the audit line's, with the days and the cutoff before it)."""
        parts = [f"people {self.people}"]
        for how, counts in (("removed", self.removed), ("tombstoned", self.tombstoned), ("cleared", self.cleared)):
            parts.append(f"{how} " + ", ".join(f"{table} {count}" for table, count in counts.items()))
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON values (a job's result)."""
        return {**asdict(self), "cutoff": self.cutoff.isoformat()}


def purge(engine: Engine, days: int | None = None, now: datetime | None = None, actor: Actor | None = None,
          client: str | None = None) -> PurgeReport:
    """Remove the personal data of everyone past retention at ``now`` (see the module): kept ``days`` days (by
    default :func:`retention_days`) after his last code ended, or after his last record. One transaction,
    audited in the name of ``actor`` (default: the system) with the counts."""
    started = time.monotonic()
    days = retention_days(days)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with engine.begin() as conn:
        people = retention_repository.gather_people(conn, cutoff)
        done = retention_repository.remove_people(conn, cutoff)
        report = PurgeReport(days, cutoff, people, done["removed"], done["tombstoned"], done["cleared"],
                             round(time.monotonic() - started, 3))
        stamp = f"{cutoff.astimezone(UTC):%Y-%m-%dT%H:%MZ}"
        record_read(conn, actor or Actor.system(), AUDIT_ACTION, f"retention:{days}d",
                    f"保留 {days} 天，截止 {stamp} / kept {days} days, cutoff {stamp}: {report.summary()}", client)
    return report
