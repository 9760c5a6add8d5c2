"""Figures per Beijing day: the reports page's trend and the one-click daily report (日报).

- :func:`trend` — for each day of a range: the persons who turned red or yellow that day (from
  ``risk_code_history``: a change to the colour from another or from none), the tasks opened (created) and
  closed that day, and the on-time share of the day's closures;
- :func:`daily` — the 日报 of one day in a fixed layout: persons by colour per unit of the actor's scope (the
  towns of the district, the communities of a town, the grids of a community) with the unplaced row and the
  total, the persons turned red or yellow that day, the tasks opened, closed and closed on time that day, the
  open overdue ones and the on-time rate as the wall counts it (closed on time today / (closed today + open
  overdue), and the day's follow-ups (随访: checks due that day done and missed, the completion rate, the
  persons lost to follow-up at the day's end or now; :attr:`Daily.follow_ups`, the unit rows' figures, also on
  the unplaced and total rows).

For a reporter, person counts of 1 to 4 are suppressed as on the page: the persons by colour are
:func:`evaluation.indicators.report`'s (his pattern over the whole scope); the persons turned red or yellow per
unit, with their total, get a pattern of their own (:func:`evaluation.disclosure.hidden_cells`); a day's count in
the trend is a lone figure, hidden when 1 to 4. Task counts are never suppressed (they count work).

>>> [d.isoformat() for d in days(date(2025, 3, 30), date(2025, 4, 1))]
['2025-03-30', '2025-03-31', '2025-04-01']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from accounts.actor import REPORTER, Actor
from evaluation.disclosure import SUPPRESS_BELOW, hidden_cells
from evaluation.indicators import (
    COLOURS,
    FOLLOW_UP_COLUMNS,
    LEVELS,
    Period,
    has_unplaced_row,
    report,
    scope_unit,
    unplaced_row,
)
from tasks.repository import OPEN_SQL

TREND_COLUMNS = ("day", "new_red", "new_yellow", "opened", "closed", "closed_on_time", "on_time_rate")
NEW_COLOURS = ("red", "yellow")
WORK = ("opened", "closed", "closed_on_time", "open", "open_overdue")
BELOW = {"district": "town", "town": "community", "community": "grid", "grid": "grid"}


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _small(value: int) -> bool:
    return 0 < value < SUPPRESS_BELOW


def _filters(actor: Actor, area: str | None, grid: str, code: str) -> tuple[str, dict[str, Any]]:
    """The scope and area conditions on a grid id column ``grid`` and a grid code column ``code``."""
    scope = actor.aggregate_scope()
    clauses = ([f"{grid} = ANY(:scope)"] if scope is not None else []) + \
        ([f"{code} LIKE :area || '%'"] if area else [])
    return (" AND " + " AND ".join(clauses)) if clauses else "", {"scope": scope, "area": area}


def trend(conn: Connection, actor: Actor, period: Period, area: str | None = None) -> list[dict[str, Any]]:
    """One row per Beijing day of ``period`` (columns :data:`TREND_COLUMNS`), in the actor's scope and under
    ``area``. ``on_time_rate`` is closed on time / closed that day (None without closures)."""
    person_filter, params = _filters(actor, area, "p.grid_id", "g.code")
    task_filter, _ = _filters(actor, area, "t.grid_id", "t.grid_code")
    # a district-wide reader with no area counts every person and task, those in no grid too (as the wall)
    person_join = "" if not person_filter else "JOIN persons p ON p.person_key = h.person_key " \
        "JOIN grids g ON g.id = p.grid_id"
    rows = conn.execute(text(f"""
        WITH d AS (
            SELECT CAST(generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS date) AS day
        ), codes AS (
            SELECT CAST(h.changed_at AT TIME ZONE 'Asia/Shanghai' AS date) AS day,
                   count(DISTINCT h.person_key) FILTER (WHERE h.colour = 'red') AS new_red,
                   count(DISTINCT h.person_key) FILTER (WHERE h.colour = 'yellow') AS new_yellow
            FROM risk_code_history h {person_join}
            WHERE h.changed_at >= :since AND h.changed_at < :until AND h.colour IN ('red', 'yellow')
              AND h.previous_colour IS DISTINCT FROM h.colour {person_filter}
            GROUP BY 1
        ), opened AS (
            SELECT CAST(t.created_at AT TIME ZONE 'Asia/Shanghai' AS date) AS day, count(*) AS opened
            FROM tasks t WHERE t.created_at >= :since AND t.created_at < :until {task_filter} GROUP BY 1
        ), closed AS (
            SELECT CAST(t.closed_at AT TIME ZONE 'Asia/Shanghai' AS date) AS day, count(*) AS closed,
                   count(*) FILTER (WHERE t.closed_at <= t.due_at) AS closed_on_time
            FROM tasks t WHERE t.status = 'closed' AND t.closed_at >= :since AND t.closed_at < :until {task_filter}
            GROUP BY 1
        )
        SELECT d.day, coalesce(codes.new_red, 0) AS new_red, coalesce(codes.new_yellow, 0) AS new_yellow,
               coalesce(opened.opened, 0) AS opened, coalesce(closed.closed, 0) AS closed,
               coalesce(closed.closed_on_time, 0) AS closed_on_time
        FROM d LEFT JOIN codes ON codes.day = d.day LEFT JOIN opened ON opened.day = d.day
        LEFT JOIN closed ON closed.day = d.day ORDER BY d.day"""),
        {**params, "first": period.since.date(), "last": (period.until - timedelta(days=1)).date(),
         "since": period.since, "until": period.until}).mappings().all()
    suppress = actor.role == REPORTER
    found = []
    for r in rows:
        row: dict[str, Any] = {k: int(r[k]) for k in TREND_COLUMNS if k not in ("day", "on_time_rate")}
        row["day"] = r["day"].isoformat()
        row["on_time_rate"] = round(row["closed_on_time"] / row["closed"], 4) if row["closed"] else None
        for colour in NEW_COLOURS:
            if suppress and _small(row[f"new_{colour}"]):
                row[f"new_{colour}"] = None
        found.append(row)
    return found


@dataclass(frozen=True)
class Daily:
    """The 日报 of one day: what covers it, and its sections' rows (each a dict of plain values)."""

    day: date
    as_of: datetime
    scope: dict[str, str]  # level, code, name of the unit reported on
    level: str  # the level of the unit rows
    units: list[dict[str, Any]]  # code, name, persons_<colour>, new_red, new_yellow, opened, closed, ...
    total: dict[str, Any]
    unplaced: dict[str, Any] | None
    follow_ups: list[dict[str, Any]] | None  # per unit: FOLLOW_UP_COLUMNS (None: a report without follow-ups)


def _day_work(conn: Connection, actor: Actor, level: str, day: Period, as_of: datetime,
              scope_code: str | None) -> dict[str | None, dict[str, int]]:
    """Per unit code (None: in no grid, for a district-wide reader): tasks opened, closed, closed on time that
    day, open and overdue at ``as_of``, persons turned red and yellow that day."""
    _, code, _ = LEVELS[level]
    scope = actor.aggregate_scope()
    area = None if scope_code is None or len(scope_code) <= 6 else scope_code
    grid_filter = ("AND g.id = ANY(:scope) " if scope is not None else "") + \
        ("AND g.code LIKE :area || '%' " if area else "")
    everywhere = scope is None and area is None
    unit_join = "LEFT JOIN" if everywhere else "JOIN"
    rows = conn.execute(text(f"""
        WITH u AS (
            SELECT g.id AS grid_id, {code} COLLATE "C" AS code
            FROM grids g JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id
            JOIN districts d ON d.code = tw.district_code WHERE true {grid_filter}
        ), work AS (
            SELECT coalesce(u.code, '') AS code,
                   count(*) FILTER (WHERE t.created_at >= :since AND t.created_at < :until) AS opened,
                   count(*) FILTER (WHERE t.status = 'closed' AND t.closed_at >= :since AND t.closed_at < :until)
                       AS closed,
                   count(*) FILTER (WHERE t.status = 'closed' AND t.closed_at >= :since AND t.closed_at < :until
                                    AND t.closed_at <= t.due_at) AS closed_on_time,
                   count(*) FILTER (WHERE t.status IN {OPEN_SQL} AND t.created_at < :as_of) AS open,
                   count(*) FILTER (WHERE t.status IN {OPEN_SQL} AND t.due_at < :as_of) AS open_overdue
            FROM tasks t {unit_join} u ON u.grid_id = t.grid_id
            WHERE (t.created_at >= :since AND t.created_at < :until) OR t.status IN {OPEN_SQL}
               OR (t.status = 'closed' AND t.closed_at >= :since AND t.closed_at < :until)
            GROUP BY 1
        ), codes AS (
            SELECT coalesce(u.code, '') AS code,
                   count(DISTINCT h.person_key) FILTER (WHERE h.colour = 'red') AS new_red,
                   count(DISTINCT h.person_key) FILTER (WHERE h.colour = 'yellow') AS new_yellow
            FROM risk_code_history h JOIN persons p ON p.person_key = h.person_key
            {unit_join} u ON u.grid_id = p.grid_id
            WHERE h.changed_at >= :since AND h.changed_at < :until AND h.colour IN ('red', 'yellow')
              AND h.previous_colour IS DISTINCT FROM h.colour
            GROUP BY 1
        )
        SELECT coalesce(work.code, codes.code) AS code, work.opened, work.closed, work.closed_on_time, work.open,
               work.open_overdue, codes.new_red, codes.new_yellow
        FROM work FULL JOIN codes ON codes.code = work.code"""),
        {"scope": scope, "area": area, "since": day.since, "until": day.until, "as_of": as_of}).mappings().all()
    return {r["code"] or None: {k: int(r[k] or 0) for k in (*WORK, "new_red", "new_yellow")} for r in rows}


def _on_time(row: dict[str, Any]) -> float | None:
    judged = row["closed"] + row["open_overdue"]
    return round(row["closed_on_time"] / judged, 4) if judged else None



def daily(conn: Connection, actor: Actor, day: date, now: datetime) -> Daily:
    """The 日报 of Beijing day ``day`` in the actor's scope (see the module's notes). The persons by colour are
    today's (the platform keeps no past counts per unit); the day's figures are the day's, up to ``now``."""
    period = Period.of_days(day, day)
    as_of = min(period.until, now)
    scope = scope_unit(conn, actor)
    level = BELOW[scope["level"]]
    area = None if scope["level"] == "district" else scope["code"]
    persons = {r["code"]: r for r in report(conn, actor, level, period, now, area)}
    whole = report(conn, actor, scope["level"], period, now, area)
    work = _day_work(conn, actor, level, period, as_of, area)
    units = []
    for code, r in persons.items():
        figures = work.get(code, dict.fromkeys((*WORK, "new_red", "new_yellow"), 0))
        units.append({"code": code, "name": r["name"], **{f"persons_{c}": r[f"persons_{c}"] for c in COLOURS},
                      **figures, **{c: r[c] for c in FOLLOW_UP_COLUMNS}})
    unplaced = None
    if has_unplaced_row(actor, area):
        u = unplaced_row(conn, period, now)
        unplaced = {"code": "", "name": "", **{f"persons_{c}": u[f"persons_{c}"] for c in COLOURS},
                    **work.get(None, dict.fromkeys((*WORK, "new_red", "new_yellow"), 0)),
                    **{c: u[c] for c in FOLLOW_UP_COLUMNS}}
    parts = units + ([unplaced] if unplaced else [])
    total: dict[str, Any] = {"code": scope["code"], "name": scope["name"]}
    for column in (*WORK, "new_red", "new_yellow"):
        total[column] = sum(p[column] for p in parts)
    for colour in COLOURS:
        total[f"persons_{colour}"] = whole[0][f"persons_{colour}"] if whole else 0
        if unplaced is not None and total[f"persons_{colour}"] is not None:
            total[f"persons_{colour}"] += unplaced[f"persons_{colour}"]
    # the follow-ups' total: the scope unit's own row (suppressed by the same pattern as its parts), with the
    # unplaced row's figures added
    for column in FOLLOW_UP_COLUMNS:
        total[column] = whole[0][column] if whole else 0
        if unplaced is not None and total[column] is not None and column != "follow_up_rate":
            total[column] += unplaced[column]
    if total["checks_done"] is not None and total["checks_missed"] is not None:
        judged = total["checks_done"] + total["checks_missed"]
        total["follow_up_rate"] = round(total["checks_done"] / judged, 4) if judged else None
    if actor.role == REPORTER:  # the day's new persons per unit and their total: a pattern of their own
        children = {scope["code"]: [u["code"] for u in units]}
        for colour in NEW_COLOURS:
            counts = {u["code"]: u[f"new_{colour}"] for u in units}
            counts[scope["code"]] = total[f"new_{colour}"]
            hidden = hidden_cells(children, counts)
            for row in (*units, total):
                if row["code"] in hidden:
                    row[f"new_{colour}"] = None
    for row in parts + [total]:
        row["on_time_rate"] = _on_time(row)
    return Daily(day, as_of, scope, level, units, total, unplaced,
                 [{k: u[k] for k in ("code", "name", *FOLLOW_UP_COLUMNS)} for u in units])

