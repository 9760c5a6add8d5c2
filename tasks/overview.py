"""What the command centre's wall shows: district counters, per-grid figures, the latest events — no personal data.

:func:`version_stamp` is the cheap question the wall asks every few seconds
(a handful of index-only ``max(id)`` look-ups); only when it changes does the
wall ask for :func:`wall_summary`.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from gis.db import sql
from tasks.repository import OPEN_SQL

BEIJING = ZoneInfo("Asia/Shanghai")
TICKER_LENGTH = 12


def version_stamp(conn: Connection) -> str:
    """Changes whenever a task event, a code change, a feed, a scan or a lead report is added."""
    row = conn.execute(sql(
        "SELECT (SELECT coalesce(max(id), 0) FROM task_events), (SELECT coalesce(max(id), 0) FROM risk_code_history), "
        "(SELECT coalesce(max(id), 0) FROM feed_files), (SELECT coalesce(max(id), 0) FROM scans), "
        "(SELECT coalesce(max(id), 0) FROM lead_reports)")).one()
    return ".".join(str(v) for v in row)


def _counters(conn: Connection, now: datetime, scope: list[int] | None = None) -> dict:
    # a town's wall (``scope``: its grid ids) counts the persons placed in its grids and their tasks
    colours: dict[str, int] = dict(conn.execute(sql(
        "SELECT colour, count(*) FROM persons GROUP BY colour" if scope is None else
        "SELECT colour, sum(persons) FROM grid_colour_counts WHERE grid_id = ANY(:scope) GROUP BY colour"),
        {"scope": scope}).all())
    today = datetime.combine(now.astimezone(BEIJING).date(), time(), BEIJING)
    in_scope = "" if scope is None else "AND grid_id = ANY(:scope) "
    work = conn.execute(sql(
        f"SELECT count(*) FILTER (WHERE status IN {OPEN_SQL}) AS open, "
        f"count(*) FILTER (WHERE status IN {OPEN_SQL} AND due_at < :now) AS overdue, "
        "count(*) FILTER (WHERE status = 'closed' AND closed_at >= :today) AS closed_today, "
        "count(*) FILTER (WHERE status = 'closed' AND closed_at >= :today AND closed_at <= due_at) AS on_time_today "
        f"FROM tasks WHERE (status IN {OPEN_SQL} OR (status = 'closed' AND closed_at >= :today)) {in_scope}"),
        {"now": now, "today": today, "scope": scope}).one()
    judged = work.closed_today + work.overdue
    return {"red": int(colours.get("red", 0)), "yellow": int(colours.get("yellow", 0)),
            "blue": int(colours.get("blue", 0)), "green": int(colours.get("green", 0)), "open": work.open,
            "overdue": work.overdue,
            "closed_today": work.closed_today,
            "on_time_rate": round(work.on_time_today / judged, 4) if judged else None}


def grid_figures(conn: Connection, now: datetime, scope: list[int] | None = None) -> dict[str, list[int]]:
    """{grid code: [red, yellow, open tasks, overdue tasks]} for grids with anything to show (in ``scope``'s grid
    ids when given): what a map colours its grids by."""
    values: dict[str, list[int]] = {}
    params = {"now": now, "scope": scope}
    # The scope filter is written only when there is one: under generic plans an ":x IS NULL OR …" filter
    # is planned for both cases at once and scanned every open task for a supervisor's few grids.
    in_scope = "AND {} = ANY(:scope)" if scope is not None else ""
    for code, red, yellow in conn.execute(sql(
            "SELECT g.code, count(*) FILTER (WHERE f.colour = 'red'), count(*) FILTER (WHERE f.colour = 'yellow') "
            "FROM flags f JOIN grids g ON g.id = f.grid_id WHERE f.colour IN ('red', 'yellow') "
            f"{in_scope.format('f.grid_id')} GROUP BY g.code"), params):
        values[code] = [red, yellow, 0, 0]
    for code, open_, overdue in conn.execute(sql(
            f"SELECT t.grid_code, count(*), count(*) FILTER (WHERE t.due_at < :now) FROM tasks t "
            f"WHERE t.status IN {OPEN_SQL} {in_scope.format('t.grid_id')} GROUP BY t.grid_code"), params):
        entry = values.setdefault(code, [0, 0, 0, 0])
        entry[2], entry[3] = open_, overdue
    return values


def ticker(conn: Connection, scope: list[int] | None = None, until: datetime | None = None) -> list[dict]:
    """The latest :data:`TICKER_LENGTH` task events (of the grids in ``scope`` when given), newest first; with
    ``until``, the latest up to that moment (the replay shows the ticker as it stood).

    Codes, not words: ``action`` (an event name, ``create`` included), ``status`` and ``kind`` are codes that
    the page names in its language; ``grid`` is the grid's name (its code when unnamed). No titles, no persons.
    """
    conditions = ([] if scope is None else ["t.grid_id = ANY(:scope)"]) + ([] if until is None else ["e.at <= :until"])
    # newest first by time when replaying (the index on at), by id when live (the same order, cheaper)
    order = "e.id DESC" if until is None else "e.at DESC, e.id DESC"
    rows = conn.execute(sql(
        "SELECT e.at, e.action, e.to_status, t.kind, t.grid_code, g.name AS grid_name FROM task_events e "
        "JOIN tasks t ON t.id = e.task_id LEFT JOIN grids g ON g.id = t.grid_id "
        + (f"WHERE {' AND '.join(conditions)} " if conditions else "")
        + f"ORDER BY {order} LIMIT :n"), {"n": TICKER_LENGTH, "scope": scope, "until": until})
    return [{"at": r.at.astimezone(BEIJING).strftime("%H:%M"), "time": r.at.isoformat(), "action": r.action,
             "status": r.to_status, "kind": r.kind, "grid": r.grid_name or r.grid_code, "grid_code": r.grid_code}
            for r in rows]


def wall_summary(conn: Connection, now: datetime, scope: list[int] | None = None) -> dict:
    """Everything the wall draws besides geometry, in one transaction (of the grids in ``scope`` when given: a
    town's commander)."""
    fed = conn.execute(sql("SELECT max(imported_at) FROM feed_files")).scalar()
    return {"counters": _counters(conn, now, scope), "grids": grid_figures(conn, now, scope),
            "ticker": ticker(conn, scope),
            "feed_at": fed.isoformat() if fed else None, "as_of": now.isoformat(),
            "feed_stale": fed is None or now - fed > timedelta(hours=24)}
