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
the reporter role counts from 1 to 4 are suppressed (they could point at a person), and with them the counts
that would let him compute one from the sums (complementary suppression, :mod:`evaluation.disclosure`). So that
every figure is a whole unit's, ``area`` must be a real unit's code, and rows are never of a level above it
(level ``town`` under a community's code gives that community's row).

Tasks by status (:func:`tasks_by_status`) count the same tasks by their status today. They are *not*
suppressed for the reporter: a task count measures work, not residents, and the evaluation rows already show
the task counts in full (``closed`` and ``cancelled`` equal their status columns, the statuses other than
cancelled add up to ``tasks``), so hiding small status counts would protect nothing. Only persons are.

Home observation (随访), in :func:`report`'s rows (:data:`FOLLOW_UP_COLUMNS`), from
:func:`observation.overview.grid_follow_up_counts`: the checks due in the period (up to the evaluation time) that
were done and missed, the completion rate done / (done + missed), the persons they were about
(``follow_up_persons``), and the persons lost to follow-up at the evaluation time (no report for 24 h). For the
reporter, ``follow_up_persons`` and ``lost_to_follow_up`` are person counts, suppressed as the persons by colour
(1 to 4 and their complements, each with its own pattern over his whole scope); a unit whose
``follow_up_persons`` is hidden has its checks and rate hidden too (they would tell one person's compliance).

Scope: a supervisor sees his community's grids, a worker his grids; the others the whole district.
:func:`scope_unit` names the unit a report covers (a supervisor's community, not the district), and
:func:`report_rows` — what the reports page and its files show — never gives a scoped reader a row above his
unit, and adds for a district-wide reader other than the reporter the row of the persons in no grid and the
tasks whose grid is gone (:func:`unplaced_row`), so that the rows add up to the wall's counters.

>>> Period.of_days(date(2025, 3, 1), date(2025, 3, 2)).until.isoformat()
'2025-03-03T00:00:00+08:00'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, SupportsFloat
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from accounts.actor import REPORTER, SUPERVISOR, WORKER, Actor
from evaluation.disclosure import hidden_cells
from gis.db import custom_plans
from gis.errors import InvalidRequest
from observation.overview import grid_follow_up_counts
from tasks.lifecycle import STATUSES
from tasks.repository import OPEN_SQL

BEIJING = ZoneInfo("Asia/Shanghai")
LEVELS = {  # level: (an integer key of the unit, its code, its name)
    "district": ("CAST(d.code AS int)", "d.code", "d.name"),
    "town": ("tw.id", "tw.code", "tw.name"),
    "community": ("c.id", "c.code", "c.name"),
    "grid": ("g.id", "g.code", "g.name"),
}
COLOURS = ("red", "yellow", "blue", "green")
COLUMNS = ("level", "code", "name", "tasks", "cancelled", "closed", "closed_on_time", "open_overdue", "handled",
           "reworked", "extended", "closure_rate", "on_time_rate", "rework_rate", "extension_rate",
           "median_handling_hours", "p90_handling_hours", *(f"persons_{c}" for c in COLOURS))
_COUNTS = ("tasks", "cancelled", "closed", "closed_on_time", "open_overdue", "handled", "reworked", "extended")
STATUS_COLUMNS = tuple(f"status_{s}" for s in STATUSES)
FOLLOW_UP_COLUMNS = ("follow_up_persons", "checks_done", "checks_missed", "follow_up_rate", "lost_to_follow_up")
FOLLOW_UP_PERSONS = ("follow_up_persons", "lost_to_follow_up")  # person counts: suppressed for the reporter
REPORT_COLUMNS = (*COLUMNS, *STATUS_COLUMNS, *FOLLOW_UP_COLUMNS)
AREA_PATTERN = re.compile(r"\d{1,15}")


@dataclass(frozen=True)
class Period:
    """The half-open time range ``[since, until)`` of the tasks evaluated (by their creation time)."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise InvalidRequest("结束日期须晚于开始日期 / 'to' must be after 'from'", "to")

    @classmethod
    def of_days(cls, first: date, last: date) -> Period:
        """Beijing days ``first`` to ``last``, both included."""
        if last < first:
            raise InvalidRequest("结束日期须晚于开始日期 / 'to' must be after 'from'", "to")
        return cls(datetime.combine(first, time(), BEIJING),
                   datetime.combine(last + timedelta(days=1), time(), BEIJING))


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _hours(value: SupportsFloat | None) -> float | None:
    return None if value is None else round(float(value) / 3600.0, 2)


def _scope(actor: Actor) -> list[int] | None:
    """The grid ids the actor's figures cover, None for the whole district (a reporter reads all aggregates, a
    reporter of one town that town's)."""
    return actor.aggregate_scope()


UNIT_TABLES = {"district": "districts", "town": "towns", "community": "communities", "grid": "grids"}


def _level_of(conn: Connection, level: str, area: str | None) -> str:
    """The level the rows are given at: ``level``, or the area's own level when that is below it (a town's row
    under a community's code would count only that community, and be no town's figure)."""
    if level not in LEVELS:
        raise InvalidRequest(f"level 须为 {'、'.join(LEVELS)} 之一 / level must be one of {', '.join(LEVELS)}",
                             "level")
    if area is None:
        return level
    if not AREA_PATTERN.fullmatch(area):
        raise InvalidRequest("area 须为区域代码（1–15 位数字）/ area must be an area code (1-15 digits)", "area")
    found = conn.execute(text(" UNION ALL ".join(
        f"SELECT '{name}' FROM {table} WHERE code = :area" for name, table in UNIT_TABLES.items())),
        {"area": area}).scalar()
    if found is None:
        raise InvalidRequest(f"area 须为区、镇街、村（社区）或网格的代码，没有代码为 {area} 的单位 / area must be "
                             f"the code of the district, a town, a community or a grid: there is no unit {area}",
                             "area")
    order = list(LEVELS)
    return found if order.index(found) > order.index(level) else level


def _hidden(conn: Connection, scope: list[int] | None) -> dict[str, set[str]]:
    """Per colour, the codes of the units whose person count a reporter may not see, over his whole scope (one
    pattern for every query he can make: :mod:`evaluation.disclosure`)."""
    rows = conn.execute(text(f"""
        SELECT d.code AS district, tw.code AS town, c.code AS community, g.code AS grid,
               {", ".join(f"coalesce(sum(p.persons) FILTER (WHERE p.colour = '{c}'), 0) AS {c}" for c in COLOURS)}
        FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id
        JOIN districts d ON d.code = tw.district_code LEFT JOIN grid_colour_counts p ON p.grid_id = g.id
        WHERE CAST(:scope AS int[]) IS NULL OR g.id = ANY(:scope)
        GROUP BY 1, 2, 3, 4"""), {"scope": scope}).mappings().all()
    kids: dict[str, dict[str, None]] = {}  # each unit's children, in order, once each (a dict as an ordered set)
    for r in rows:
        for parent, child in ((r["district"], r["town"]), (r["town"], r["community"]), (r["community"], r["grid"])):
            kids.setdefault(parent, {})[child] = None
    children = {parent: list(units) for parent, units in kids.items()}
    hidden = {}
    for colour in COLOURS:
        counts: dict[str, int] = {}
        for r in rows:
            for unit in (r["district"], r["town"], r["community"], r["grid"]):
                counts[unit] = counts.get(unit, 0) + int(r[colour])
        hidden[colour] = hidden_cells(children, counts)
    return hidden


def _units(level: str, area: str | None, scope: list[int] | None) -> str:
    """The ``unit`` CTE: every grid in scope (and under ``area``) with the code and name of its unit.

    Only the filters that apply are written: an ``:x IS NULL OR …`` filter makes a generic plan expect one
    unit, and the task aggregate then ran once per unit (1042 times at grid level).
    """
    key, code, name = LEVELS[level]
    filters = (["g.id = ANY(:scope)"] if scope is not None else []) + \
        (["g.code LIKE :area || '%'"] if area is not None else [])
    return f"""unit AS (
            SELECT g.id AS grid_id, {key} AS unit_id, {code} COLLATE "C" AS code, {name} AS name
            FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id
            JOIN districts d ON d.code = tw.district_code
            WHERE {" AND ".join(filters) or "true"}
        )"""


def evaluate(conn: Connection, actor: Actor, level: str, period: Period, now: datetime,
             area: str | None = None) -> list[dict[str, Any]]:
    """One row per unit of ``level`` in the actor's scope (and under ``area``, a code prefix when given).

    Columns: :data:`COLUMNS`; rates are None without a denominator, persons 1–4 (and their complements) None
    for a reporter.
    """
    return _evaluate(conn, actor, level, period, now, area, ())


def _evaluate(conn: Connection, actor: Actor, level: str, period: Period, now: datetime, area: str | None,
              statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    """:func:`evaluate`'s rows, with a ``status_<s>`` count for each of ``statuses``, from the same scan."""
    level = _level_of(conn, level, area)
    units = _units(level, area, _scope(actor))
    counts = (*_COUNTS, *(f"status_{s}" for s in statuses))
    as_of = min(period.until, now)
    # Counted per grid first (a parallel hash aggregate on an integer) and then summed per unit; the
    # percentiles over the closed tasks alone, read in grid and time order from ix_tasks_closed_handling,
    # joined to the units only above grid level. Grouping all the period's rows by unit code (text) instead
    # sorted every task of the period (see benchmarks/RESULTS.md).
    closed_unit, closed_join = ("t.grid_id", "") if level == "grid" else \
        ("u.unit_id", "JOIN unit u ON u.grid_id = t.grid_id")
    with custom_plans(conn):
        rows = conn.execute(text(f"""
        WITH {units}, per_grid AS (
            SELECT t.grid_id, count(*) FILTER (WHERE t.status <> 'cancelled') AS tasks,
                   count(*) FILTER (WHERE t.status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE t.status = 'closed') AS closed,
                   count(*) FILTER (WHERE t.status = 'closed' AND t.closed_at <= t.due_at) AS closed_on_time,
                   count(*) FILTER (WHERE t.status IN {OPEN_SQL} AND t.due_at < :as_of) AS open_overdue,
                   count(*) FILTER (WHERE t.status <> 'cancelled' AND t.handled_at IS NOT NULL) AS handled,
                   count(*) FILTER (WHERE t.status <> 'cancelled' AND t.rework_count > 0) AS reworked,
                   count(*) FILTER (WHERE t.status <> 'cancelled' AND t.extension_count > 0) AS extended
                   {"".join(f", count(*) FILTER (WHERE t.status = '{s}') AS status_{s}" for s in statuses)}
            FROM tasks t WHERE t.created_at >= :since AND t.created_at < :until GROUP BY t.grid_id
        ), work AS (
            SELECT u.unit_id, {", ".join(f"sum(w.{c}) AS {c}" for c in counts)}
            FROM per_grid w JOIN unit u ON u.grid_id = w.grid_id GROUP BY u.unit_id
        ), handling AS (
            SELECT {closed_unit} AS unit_id, percentile_cont(ARRAY[0.5, 0.9])
                   WITHIN GROUP (ORDER BY date_part('epoch', t.closed_at - t.created_at)) AS seconds
            FROM tasks t {closed_join}
            WHERE t.created_at >= :since AND t.created_at < :until AND t.status = 'closed' GROUP BY 1
        ), people AS (
            SELECT u.unit_id, {", ".join(f"sum(p.persons) FILTER (WHERE p.colour = '{c}') AS {c}" for c in COLOURS)}
            FROM grid_colour_counts p JOIN unit u ON u.grid_id = p.grid_id GROUP BY u.unit_id
        )
        SELECT units.code, units.name, {", ".join(f"work.{c}" for c in counts)}, handling.seconds[1] AS median_s,
               handling.seconds[2] AS p90_s, {", ".join(f"people.{c}" for c in COLOURS)}
        FROM (SELECT DISTINCT unit_id, code, name FROM unit) units
        LEFT JOIN work ON work.unit_id = units.unit_id LEFT JOIN handling ON handling.unit_id = units.unit_id
        LEFT JOIN people ON people.unit_id = units.unit_id
        ORDER BY units.code"""),
            {"scope": _scope(actor), "area": area, "since": period.since, "until": period.until,
             "as_of": as_of}).mappings().all()
    hidden = _hidden(conn, _scope(actor)) if actor.role == REPORTER else None
    return [{**_row(level, r, hidden),
             **{f"status_{s}": int(r[f"status_{s}"] or 0) for s in statuses}} for r in rows]


def _row(level: str, r: Mapping[Any, Any], hidden: dict[str, set[str]] | None) -> dict[str, Any]:
    count = {k: int(r[k] or 0) for k in _COUNTS}
    row = {"level": level, "code": r["code"], "name": r["name"], **count,
           "closure_rate": _rate(count["closed"], count["tasks"]),
           "on_time_rate": _rate(count["closed_on_time"], count["closed"] + count["open_overdue"]),
           "rework_rate": _rate(count["reworked"], count["handled"]),
           "extension_rate": _rate(count["extended"], count["tasks"]),
           "median_handling_hours": _hours(r["median_s"]), "p90_handling_hours": _hours(r["p90_s"])}
    for colour in COLOURS:
        n = int(r[colour] or 0)
        row[f"persons_{colour}"] = None if hidden is not None and r["code"] in hidden[colour] else n
    return row


def tasks_by_status(conn: Connection, actor: Actor, level: str, period: Period,
                    area: str | None = None) -> list[dict[str, Any]]:
    """One row per unit (as :func:`evaluate`): the tasks created in the period by their status today.

    Columns: ``level``, ``code``, ``name`` and :data:`STATUS_COLUMNS` (``status_created`` …
    ``status_cancelled``); not suppressed for any role (see the module's notes).
    """
    return [{k: row[k] for k in ("level", "code", "name", *STATUS_COLUMNS)}
            for row in report(conn, actor, level, period, period.until, area)]


def report(conn: Connection, actor: Actor, level: str, period: Period, now: datetime,
           area: str | None = None) -> list[dict[str, Any]]:
    """The rows of :func:`evaluate`, each with its unit's tasks by status and its follow-up figures added
    (columns :data:`REPORT_COLUMNS`).

    One statement for the tasks: the status counts come from the same per-grid pass over the tasks (a second
    pass, grouped by unit code, would read and sort the period's tasks again).
    """
    rows = _evaluate(conn, actor, level, period, now, area, STATUSES)
    follow_ups = _follow_ups(conn, actor, period, now)
    empty = _follow_up_row({"checks_done": 0, "checks_missed": 0, "observed": 0, "lost": 0}, False, False)
    return [{**row, **follow_ups.get(row["code"], empty)} for row in rows]


def _follow_up_row(counts: Mapping[str, int], hide_persons: bool, hide_lost: bool) -> dict[str, Any]:
    done, missed = counts["checks_done"], counts["checks_missed"]
    return {"follow_up_persons": None if hide_persons else counts["observed"],
            "checks_done": None if hide_persons else done, "checks_missed": None if hide_persons else missed,
            "follow_up_rate": None if hide_persons else _rate(done, done + missed),
            "lost_to_follow_up": None if hide_lost else counts["lost"]}


def _follow_ups(conn: Connection, actor: Actor, period: Period, now: datetime) -> dict[str, dict[str, Any]]:
    """Per unit code, of every level in the actor's scope: the follow-up columns (:data:`FOLLOW_UP_COLUMNS`),
    summed from the grids', suppressed for the reporter (see the module's notes)."""
    scope = _scope(actor)
    per_grid = grid_follow_up_counts(conn, period.since, period.until, min(period.until, now), scope)
    if not per_grid:  # nothing to count: every unit's figures are 0, and a 0 hides nothing
        return {}
    rows = conn.execute(text(
        "SELECT g.id, d.code AS district, tw.code AS town, c.code AS community, g.code AS grid "
        "FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id "
        "JOIN districts d ON d.code = tw.district_code "
        "WHERE CAST(:scope AS int[]) IS NULL OR g.id = ANY(:scope)"), {"scope": scope}).mappings().all()
    zero = {"checks_done": 0, "checks_missed": 0, "observed": 0, "lost": 0}
    sums: dict[str, dict[str, int]] = {}
    kids: dict[str, dict[str, None]] = {}
    for r in rows:
        units = (r["district"], r["town"], r["community"], r["grid"])
        for parent, child in zip(units, units[1:], strict=False):
            kids.setdefault(parent, {})[child] = None
        counts = per_grid.get(r["id"], zero)
        for unit in units:
            total = sums.setdefault(unit, dict(zero))
            for key in zero:
                total[key] += counts[key]
    hidden_persons: set[str] = set()
    hidden_lost: set[str] = set()
    if actor.role == REPORTER:
        children = {parent: list(units) for parent, units in kids.items()}
        hidden_persons = hidden_cells(children, {u: c["observed"] for u, c in sums.items()})
        hidden_lost = hidden_cells(children, {u: c["lost"] for u, c in sums.items()})
    return {unit: _follow_up_row(counts, unit in hidden_persons, unit in hidden_lost) for unit, counts in sums.items()}


def areas(conn: Connection, actor: Actor) -> list[dict[str, Any]]:
    """The towns and communities the actor's figures cover, for an area picker: ``level``, ``code``, ``name``."""
    rows = conn.execute(text("""
        SELECT DISTINCT tw.code AS town_code, tw.name AS town_name, c.code AS community_code, c.name AS community_name
        FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id
        WHERE CAST(:scope AS int[]) IS NULL OR g.id = ANY(:scope)
        ORDER BY tw.code, c.code"""), {"scope": _scope(actor)}).mappings()
    found: list[dict[str, Any]] = []
    towns: set[str] = set()
    for r in rows:
        if r["town_code"] not in towns:
            towns.add(r["town_code"])
            found.append({"level": "town", "code": r["town_code"], "name": r["town_name"]})
        found.append({"level": "community", "code": r["community_code"], "name": r["community_name"]})
    return found


UNPLACED = "unplaced"  # the level of the row of persons and tasks in no grid
_SCOPE_LEVELS = {12: "community", 9: "town"}


def scope_unit(conn: Connection, actor: Actor, area: str | None = None) -> dict[str, str]:
    """The unit a report covers, to name it (``level``, ``code``, ``name``): ``area`` when given, narrowed to the
    actor's own unit — a supervisor's community, the town of a town's commander or reporter — else the district.

    So a supervisor's report says his community, not 南海区, even when he picks his community's town.
    """
    own: str | None = None
    if actor.role in (SUPERVISOR, WORKER) and actor.community_id is not None:
        own = conn.execute(text("SELECT code FROM communities WHERE id = :id"), {"id": actor.community_id}).scalar()
    elif actor.town_id is not None:
        own = conn.execute(text("SELECT code FROM towns WHERE id = :id"), {"id": actor.town_id}).scalar()
    code = own if own is not None and (area is None or own.startswith(area)) else area
    if code is None:
        row = conn.execute(text("SELECT code, name FROM districts ORDER BY code LIMIT 1")).one()
        return {"level": "district", "code": row.code, "name": row.name}
    for level, table in UNIT_TABLES.items():
        name = conn.execute(text(f"SELECT name FROM {table} WHERE code = :c"), {"c": code}).scalar()
        if name is not None:
            return {"level": level, "code": code, "name": name}
    raise InvalidRequest(f"没有代码为 {code} 的单位 / there is no unit {code}", "area")


def has_unplaced_row(actor: Actor, area: str | None) -> bool:
    """Whether a report carries the row of the persons and tasks placed in no grid: for a reader of the whole
    district (not a reporter: his figures are suppressed and follow the units' sums) with no area picked."""
    return actor.role != REPORTER and actor.aggregate_scope() is None and area is None


def unplaced_row(conn: Connection, period: Period, now: datetime) -> dict[str, Any]:
    """The row of the persons placed in no grid (today's codes) and of the tasks of the period whose grid is
    gone, with the columns of :func:`report` (``level`` :data:`UNPLACED`, empty code and name): with it, the rows
    of a district-wide report add up to the wall's counters."""
    as_of = min(period.until, now)
    r = conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE status <> 'cancelled') AS tasks,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE status = 'closed') AS closed,
               count(*) FILTER (WHERE status = 'closed' AND closed_at <= due_at) AS closed_on_time,
               count(*) FILTER (WHERE status IN {OPEN_SQL} AND due_at < :as_of) AS open_overdue,
               count(*) FILTER (WHERE status <> 'cancelled' AND handled_at IS NOT NULL) AS handled,
               count(*) FILTER (WHERE status <> 'cancelled' AND rework_count > 0) AS reworked,
               count(*) FILTER (WHERE status <> 'cancelled' AND extension_count > 0) AS extended,
               {", ".join(f"count(*) FILTER (WHERE status = '{s}') AS status_{s}" for s in STATUSES)},
               percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', closed_at - created_at))
                   FILTER (WHERE status = 'closed') AS median_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY date_part('epoch', closed_at - created_at))
                   FILTER (WHERE status = 'closed') AS p90_s,
               min(p.red) AS red, min(p.yellow) AS yellow, min(p.blue) AS blue, min(p.green) AS green
        FROM (SELECT {", ".join(f"count(*) FILTER (WHERE colour = '{c}') AS {c}" for c in COLOURS)}
              FROM persons WHERE grid_id IS NULL) p  -- one pass over the persons, as the wall's counters
        LEFT JOIN tasks ON tasks.grid_id IS NULL AND tasks.created_at >= :since AND tasks.created_at < :until"""),
        {"since": period.since, "until": period.until, "as_of": as_of}).mappings().one()
    row = _row(UNPLACED, {**r, "code": "", "name": ""}, None)
    zero = {"checks_done": 0, "checks_missed": 0, "observed": 0, "lost": 0}
    follow_ups = grid_follow_up_counts(conn, period.since, period.until, as_of, unplaced=True).get(None, zero)
    return {**row, **{f"status_{s}": int(r[f"status_{s}"] or 0) for s in STATUSES},
            **_follow_up_row(follow_ups, False, False)}


def report_rows(conn: Connection, actor: Actor, level: str, period: Period, now: datetime,
                area: str | None = None) -> list[dict[str, Any]]:
    """What the reports page and its files show: :func:`report`'s rows (never of a level above the actor's own
    unit: :func:`scope_unit`), then the unplaced row where :func:`has_unplaced_row` says so."""
    if actor.aggregate_scope() is not None:
        # a reader of one community or town: rows never of a unit above his (a district or town row would
        # carry that unit's name over his community's figures)
        own = scope_unit(conn, actor, area)
        area = None if own["level"] == "district" else own["code"]
    rows = report(conn, actor, level, period, now, area)
    return rows + ([unplaced_row(conn, period, now)] if has_unplaced_row(actor, area) else [])
