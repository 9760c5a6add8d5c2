"""Evaluation of field work per district, town, community or grid over a date range (the standard indicators).

Over the tasks created in ``[since, until)`` (cancelled ones left out of every rate):

- closure rate (结案率) = closed / tasks;
- on-time closure rate (按期结案率) = closed by the due time / (closed + still open and overdue at the
  evaluation time) — open overdue work counts as late, open work not yet due is not judged;
- rework rate (返工率) = tasks sent back at least once / tasks handled at least once;
- extension rate (延期率) = tasks given at least one extension / tasks;
- handling time = closed_at − created_at of the closed tasks, in hours: median and 90th percentile
  (linear interpolation, as ``percentile_cont``).

The evaluation time is ``min(until, now)``. Every rate comes with its numerator and denominator, so an
export can be checked to the last digit. Persons by colour are today's, placed in the unit's grids; for
the reporter role counts from 1 to 4 are suppressed (they could point at a person).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from accounts.actor import REPORTER, Actor
from gis.errors import InvalidRequest
from tasks.repository import OPEN_SQL

LEVELS = {
    "district": ("d.code", "d.name"),
    "town": ("tw.code", "tw.name"),
    "community": ("c.code", "c.name"),
    "grid": ("g.code", "g.name"),
}
SUPPRESS_BELOW = 5
COLOURS = ("red", "yellow", "blue", "green")
COLUMNS = ("level", "code", "name", "tasks", "cancelled", "closed", "closed_on_time", "open_overdue", "handled",
           "reworked", "extended", "closure_rate", "on_time_rate", "rework_rate", "extension_rate",
           "median_handling_hours", "p90_handling_hours", *(f"persons_{c}" for c in COLOURS))


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise InvalidRequest("结束日期须晚于开始日期 / 'to' must be after 'from'", "to")


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _hours(value) -> float | None:
    return None if value is None else round(float(value) / 3600.0, 2)


def evaluate(conn: Connection, actor: Actor, level: str, period: Period, now: datetime,
             area: str | None = None) -> list[dict]:
    """One row per unit of ``level`` in the actor's scope (and under ``area``, a code prefix when given)."""
    if level not in LEVELS:
        raise InvalidRequest(f"level 须为 {'、'.join(LEVELS)} 之一 / level must be one of {', '.join(LEVELS)}",
                             "level")
    scope = None if actor.sees_everything or actor.role == REPORTER else sorted(actor.grid_ids)
    code, name = LEVELS[level]
    as_of = min(period.until, now)
    rows = conn.execute(text(f"""
        WITH unit AS (
            SELECT g.id AS grid_id, {code} AS code, {name} AS name
            FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id
            JOIN districts d ON d.code = tw.district_code
            WHERE (CAST(:scope AS int[]) IS NULL OR g.id = ANY(:scope))
              AND (CAST(:area AS text) IS NULL OR g.code LIKE :area || '%')
        ), work AS (
            SELECT u.code AS work_code, count(*) FILTER (WHERE t.status <> 'cancelled') AS tasks,
                   count(*) FILTER (WHERE t.status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE t.status = 'closed') AS closed,
                   count(*) FILTER (WHERE t.status = 'closed' AND t.closed_at <= t.due_at) AS closed_on_time,
                   count(*) FILTER (WHERE t.status IN {OPEN_SQL} AND t.due_at < :as_of) AS open_overdue,
                   count(*) FILTER (WHERE t.status <> 'cancelled' AND t.handled_at IS NOT NULL) AS handled,
                   count(*) FILTER (WHERE t.status <> 'cancelled' AND t.rework_count > 0) AS reworked,
                   count(*) FILTER (WHERE t.status <> 'cancelled' AND t.extension_count > 0) AS extended,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.closed_at - t.created_at))
                       FILTER (WHERE t.status = 'closed') AS median_s,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM t.closed_at - t.created_at))
                       FILTER (WHERE t.status = 'closed') AS p90_s
            FROM tasks t JOIN unit u ON u.grid_id = t.grid_id
            WHERE t.created_at >= :since AND t.created_at < :until
            GROUP BY u.code
        ), people AS (
            SELECT u.code, {", ".join(f"count(*) FILTER (WHERE p.colour = '{c}') AS {c}" for c in COLOURS)}
            FROM persons p JOIN unit u ON u.grid_id = p.grid_id GROUP BY u.code
        )
        SELECT units.code, units.name, work.*, {", ".join(f"people.{c}" for c in COLOURS)}
        FROM (SELECT DISTINCT code, name FROM unit) units LEFT JOIN work ON work.work_code = units.code
        LEFT JOIN people ON people.code = units.code ORDER BY units.code"""),
        {"scope": scope, "area": area, "since": period.since, "until": period.until, "as_of": as_of}).mappings()
    return [_row(level, r, suppress=actor.role == REPORTER) for r in rows]


def _row(level: str, r, suppress: bool) -> dict:
    count = {k: int(r[k] or 0) for k in ("tasks", "cancelled", "closed", "closed_on_time", "open_overdue",
                                         "handled", "reworked", "extended")}
    row = {"level": level, "code": r["code"], "name": r["name"], **count,
           "closure_rate": _rate(count["closed"], count["tasks"]),
           "on_time_rate": _rate(count["closed_on_time"], count["closed"] + count["open_overdue"]),
           "rework_rate": _rate(count["reworked"], count["handled"]),
           "extension_rate": _rate(count["extended"], count["tasks"]),
           "median_handling_hours": _hours(r["median_s"]), "p90_handling_hours": _hours(r["p90_s"])}
    for colour in COLOURS:
        n = int(r[colour] or 0)
        row[f"persons_{colour}"] = None if suppress and 0 < n < SUPPRESS_BELOW else n
    return row
