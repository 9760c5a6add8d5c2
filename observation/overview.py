"""What the desks read of home observation: the wall's four counters, a grid's follow-up table, the list of
persons lost to follow-up, per-grid follow-up figures for the statistics, and plan events for the timelines.

Shared definitions (every figure below uses them, so the wall, the console and the statistics agree):

- a plan is **in force at** a moment ``t`` when ``starts_at <= t < ends_at`` and it was not closed by ``t``
  (``closed_at`` empty or later): a person in observation;
- a person is **lost to follow-up** at ``t`` when his plan is in force and nothing was reported for it (no
  ``done`` check reported by ``t``) for ``lost_after`` (24 h by default): counted from his last report, or
  from the plan's start when he never reported;
- a check is judged once ``done`` or ``missed``; the **completion rate** of a period is done / (done + missed)
  over the checks *due* in it (a check still ``due`` is not judged yet);
- a **fever** is a reported temperature ≥ ``fever_at`` (37.3 ℃ by default); the wall counts the persons with
  one reported today (Beijing day).

Row reads (the console's) check the actor's data scope here, as every repository does: a worker his grids, a
supervisor his community, the command centre all, a reporter nothing (aggregates only); a grid out of scope is
NotFound. No ID number, name or phone is read: persons are shown masked, as stored on ``persons``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection

from accounts.actor import Actor
from gis.db import sql
from gis.errors import NotFound
from matching.rule_versions import current_rules
from observation.policy import ObservationPolicy, observation_policy
from tasks.overview import BEIJING

DUE_WINDOW = timedelta(hours=1)  # the wall's "checks due in the next hour"
WALL_COUNTERS = ("observed", "checks_due_soon", "checks_missed_today", "fevers_today")
# A plan in force at :at (the shared definition above), on the alias p.
IN_FORCE = "p.starts_at <= :at AND p.ends_at > :at AND (p.closed_at IS NULL OR p.closed_at > :at)"
# Each plan's last report by :at (a plan never reported on has no row).
LAST_REPORT = ("SELECT plan_id, max(reported_at) AS at FROM observation_checks WHERE status = 'done' "
               "AND reported_at <= :at GROUP BY plan_id")
# The same for one plan p (LATERAL): its checks through the (plan_id, due_at) index.
PLAN_LAST_REPORT = ("SELECT max(x.reported_at) AS at FROM observation_checks x WHERE x.plan_id = p.id "
                    "AND x.status = 'done' AND x.reported_at <= :at")
# A report for plan p after :cut, by :at (the reports' index finds a day's of them).
REPORTED_SINCE_CUT = ("SELECT FROM observation_checks x WHERE x.plan_id = p.id AND x.status = 'done' "
                      "AND x.reported_at > :cut AND x.reported_at <= :at")


def _policy(conn: Connection | None) -> ObservationPolicy:
    """The observation settings of the rules in force: the newest saved version in the database (as the sweep
    reads them), else the rules file."""
    return observation_policy(current_rules(conn) if conn is not None else None)


def _fever_at(fever_at: float | None, conn: Connection | None = None) -> float:
    """The fever threshold: the caller's, else the rules' in force (37.3 ℃ as shipped)."""
    return fever_at if fever_at is not None else float(_policy(conn).fever_at)


def _lost_after(lost_after: timedelta | None, conn: Connection | None = None) -> timedelta:
    """How long without a report makes a person lost to follow-up: the caller's, else the rules' (24 h)."""
    return lost_after if lost_after is not None else _policy(conn).lost_after


def lost_after_hours(conn: Connection | None = None) -> int:
    """The hours without a report that make a person lost to follow-up (for a heading: "no report for 24 h")."""
    return round(_lost_after(None, conn).total_seconds() / 3600)


def beijing_midnight(now: datetime) -> datetime:
    """The start of ``now``'s Beijing day."""
    return datetime.combine(now.astimezone(BEIJING).date(), time(), BEIJING)


# -- the wall ------------------------------------------------------------------------------------------------
def wall_counters(conn: Connection, now: datetime, scope: list[int] | None = None,
                  fever_at: float | None = None) -> dict[str, int]:
    """The wall's four follow-up counters (of the plans of ``scope``'s grids when given: a town's wall).

    ``observed``: persons whose plan is in force now; ``checks_due_soon``: checks still due whose time falls in
    the next hour (from now, now included); ``checks_missed_today``: checks due today (Beijing) that were
    missed; ``fevers_today``: persons who reported a fever today. Aggregates only: any role may read them.
    """
    params = {"at": now, "soon": now + DUE_WINDOW, "today": beijing_midnight(now), "fever": _fever_at(fever_at, conn),
              "scope": scope}
    in_scope = "" if scope is None else "AND p.grid_id = ANY(:scope) "
    row = conn.execute(sql(
        f"SELECT (SELECT count(*) FROM observation_plans p WHERE {IN_FORCE} {in_scope}) AS observed, "
        "(SELECT count(*) FROM observation_checks c JOIN observation_plans p ON p.id = c.plan_id "
        f"WHERE c.status = 'due' AND c.due_at >= :at AND c.due_at < :soon AND {IN_FORCE} {in_scope}) AS soon, "
        "(SELECT count(*) FROM observation_checks c JOIN observation_plans p ON p.id = c.plan_id "
        f"WHERE c.status = 'missed' AND c.due_at >= :today AND c.due_at < :today + interval '1 day' {in_scope}) "
        "AS missed, "
        "(SELECT count(DISTINCT c.plan_id) FROM observation_checks c JOIN observation_plans p ON p.id = c.plan_id "
        "WHERE c.reported_at >= :today AND c.reported_at <= :at AND c.temperature >= :fever "
        f"{in_scope}) AS fevers"), params).one()
    return {"observed": int(row.observed), "checks_due_soon": int(row.soon), "checks_missed_today": int(row.missed),
            "fevers_today": int(row.fevers)}


def wall_stamp(conn: Connection, now: datetime) -> str:
    """Changes whenever the follow-up counters may have: a plan event (created, closed, a check recorded or
    missed …), new checks, a check entering or leaving the next hour, a new Beijing day. A handful of index
    look-ups, asked with :func:`tasks.overview.version_stamp` every few seconds."""
    row = conn.execute(sql(
        "SELECT (SELECT coalesce(max(id), 0) FROM observation_events), "
        "(SELECT coalesce(max(id), 0) FROM observation_checks), "
        "(SELECT min(due_at) FROM observation_checks WHERE status = 'due' AND due_at >= :now), "
        "(SELECT min(due_at) FROM observation_checks WHERE status = 'due' AND due_at >= :soon)"),
        {"now": now, "soon": now + DUE_WINDOW}).one()
    due = "/".join(v.isoformat() if v else "-" for v in (row[2], row[3]))
    return f"{row[0]}.{row[1]}.{due}.{now.astimezone(BEIJING).date().isoformat()}"


# -- the console: a grid's follow-ups and the lost list --------------------------------------------------------
def _grid_in_scope(conn: Connection, actor: Actor, grid_code: str) -> int:
    actor.require_rows()
    grid_id = conn.execute(sql("SELECT id FROM grids WHERE code = :c"), {"c": grid_code}).scalar()
    if grid_id is None or not actor.sees_grid(grid_id):
        raise NotFound(f"网格 {grid_code} 不存在或不在您的范围内 / no grid {grid_code} in your scope")
    return int(grid_id)


def _in_a_row(statuses: Iterable[str] | None) -> int:
    """Misses in a row at the end of a plan's judged checks (newest first)."""
    count = 0
    for status in statuses or ():
        if status != "missed":
            break
        count += 1
    return count


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


PLAN_ROWS = f"""
    SELECT p.id, p.person_key, p.grid_id, g.code AS grid_code, g.name AS grid_name, p.rule_id, p.starts_at,
           p.ends_at, s.name_masked, s.id_masked, c.last_at, c.last_temperature, c.last_symptoms, c.missed,
           c.judged, c.next_due
    FROM observation_plans p LEFT JOIN grids g ON g.id = p.grid_id LEFT JOIN persons s ON s.person_key = p.person_key
    LEFT JOIN LATERAL (
        SELECT max(x.reported_at) FILTER (WHERE x.status = 'done') AS last_at,
               (array_agg(x.temperature ORDER BY x.reported_at DESC)
                    FILTER (WHERE x.status = 'done' AND x.temperature IS NOT NULL))[1] AS last_temperature,
               (array_agg(array_to_string(x.symptoms, ',') ORDER BY x.reported_at DESC)
                    FILTER (WHERE x.status = 'done'))[1] AS last_symptoms,
               count(*) FILTER (WHERE x.status = 'missed') AS missed,
               array_agg(x.status ORDER BY x.due_at DESC) FILTER (WHERE x.status <> 'due'
                                                                   AND x.due_at <= :at) AS judged,
               min(x.due_at) FILTER (WHERE x.status = 'due' AND x.due_at >= :at) AS next_due
        FROM observation_checks x WHERE x.plan_id = p.id AND (x.reported_at IS NULL OR x.reported_at <= :at)
    ) c ON true
    WHERE {IN_FORCE}"""


def _plan_view(r: Any, now: datetime, lost_after: timedelta, fever_at: float) -> dict[str, Any]:
    # N: the plan's length in days (rounded up); n: the Beijing calendar day of it (the start's day is day 1)
    days = max(1, -(-(r.ends_at - r.starts_at) // timedelta(days=1)))
    day = min(days, max(1, (now.astimezone(BEIJING).date() - r.starts_at.astimezone(BEIJING).date()).days + 1))
    since = r.last_at or r.starts_at
    temperature = float(r.last_temperature) if r.last_temperature is not None else None
    return {"plan_id": r.id, "person_key": r.person_key, "name_masked": r.name_masked, "id_masked": r.id_masked,
            "grid_code": r.grid_code, "grid_name": r.grid_name, "rule_id": r.rule_id,
            "starts_at": _iso(r.starts_at), "ends_at": _iso(r.ends_at), "day": int(day), "days": int(days),
            "last_report_at": _iso(r.last_at), "last_temperature": temperature,
            "last_symptoms": [s for s in (r.last_symptoms or "").split(",") if s],
            "fever": temperature is not None and temperature >= fever_at,
            "missed": int(r.missed or 0), "missed_in_a_row": _in_a_row(r.judged), "next_due_at": _iso(r.next_due),
            "silent_hours": round((now - since).total_seconds() / 3600, 1),
            "lost": since <= now - lost_after}


def grid_follow_ups(conn: Connection, actor: Actor, grid_code: str, now: datetime,
                    lost_after: timedelta | None = None, fever_at: float | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    """The persons in observation in a grid of the actor's scope (masked), the ones needing attention first
    (lost to follow-up, then most misses in a row, then most misses): day n of N, last report and temperature,
    misses, next check, and whether he is lost to follow-up. NotFound for a grid out of scope."""
    grid_id = _grid_in_scope(conn, actor, grid_code)
    lost, fever = _lost_after(lost_after, conn), _fever_at(fever_at, conn)
    rows = conn.execute(sql(PLAN_ROWS + " AND p.grid_id = :g ORDER BY p.starts_at, p.id LIMIT :limit"),
                        {"at": now, "g": grid_id, "limit": limit}).all()
    plans = [_plan_view(r, now, lost, fever) for r in rows]
    return sorted(plans, key=lambda p: (not p["lost"], -p["missed_in_a_row"], -p["missed"], p["plan_id"]))


def lost_to_follow_up(conn: Connection, actor: Actor, now: datetime, lost_after: timedelta | None = None,
                      fever_at: float | None = None, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """The persons in observation in the actor's scope who reported nothing for ``lost_after`` (24 h), longest
    silent first (at most ``limit``, masked), and how many there are in all."""
    scope = actor.grid_scope()  # a reporter is refused here: rows, not aggregates
    lost, fever = _lost_after(lost_after, conn), _fever_at(fever_at, conn)
    in_scope = "" if scope is None else " AND p.grid_id = ANY(:scope)"
    params: dict[str, Any] = {"at": now, "scope": scope, "limit": limit, "cut": now - lost}
    # a desk's own plans one by one through the index; the whole district's checks at once (grouped)
    last = f"LATERAL ({PLAN_LAST_REPORT}) r ON true" if scope is not None else f"({LAST_REPORT}) r ON r.plan_id = p.id"
    found = conn.execute(sql(
        f"SELECT p.id, count(*) OVER () AS total FROM observation_plans p LEFT JOIN {last} "
        f"WHERE {IN_FORCE}{in_scope} AND coalesce(r.at, p.starts_at) <= :cut "
        "ORDER BY coalesce(r.at, p.starts_at), p.id LIMIT :limit"), params).all()
    if not found:
        return [], 0
    rows = conn.execute(sql(PLAN_ROWS + " AND p.id = ANY(:ids)"), {**params, "ids": [r.id for r in found]}).all()
    plans = sorted((_plan_view(r, now, lost, fever) for r in rows),
                   key=lambda p: (p["last_report_at"] or p["starts_at"], p["plan_id"]))
    return plans, int(found[0].total)


# -- the statistics ------------------------------------------------------------------------------------------
FOLLOW_UP_COUNTS = ("checks_done", "checks_missed", "observed", "lost")


def grid_follow_up_counts(conn: Connection, since: datetime, until: datetime, as_of: datetime,
                          scope: list[int] | None = None, lost_after: timedelta | None = None,
                          unplaced: bool = False) -> dict[int | None, dict[str, int]]:
    """Per grid id (None: plans with no grid): checks done and missed among those due in ``[since, min(until,
    as_of))``, the persons with a judged check in that time (``observed``), and the persons lost to follow-up
    at ``as_of``. ``unplaced``: of the plans with no grid only. Aggregates: the statistics sum and suppress them
    per unit."""
    end = min(until, as_of)
    in_scope = " AND p.grid_id IS NULL" if unplaced else "" if scope is None else " AND p.grid_id = ANY(:scope)"
    params = {"since": since, "end": end, "at": as_of, "cut": as_of - _lost_after(lost_after, conn), "scope": scope}
    found: dict[int | None, dict[str, int]] = {}
    # The whole district: per plan first (a hash aggregate on an integer), then per grid (a distinct count over
    # the period's checks sorted every one of them: a second at 100,000 persons); no filter on the status, which
    # the counts' FILTERs apply anyway, cheaper than a second test on every row. A part of it: its plans first,
    # their checks through the (plan_id, due_at) index.
    checks = ("(SELECT plan_id, count(*) FILTER (WHERE status = 'done') AS done, "
              "count(*) FILTER (WHERE status = 'missed') AS missed FROM observation_checks "
              "WHERE due_at >= :since AND due_at < :end GROUP BY plan_id) c "
              "JOIN observation_plans p ON p.id = c.plan_id") if not in_scope else \
        ("observation_plans p CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE x.status = 'done') AS done, "
         "count(*) FILTER (WHERE x.status = 'missed') AS missed FROM observation_checks x WHERE x.plan_id = p.id "
         "AND x.due_at >= :since AND x.due_at < :end AND x.status IN ('done', 'missed')) c")
    for grid_id, done, missed, observed in conn.execute(sql(
            f"SELECT p.grid_id, sum(c.done), sum(c.missed), count(DISTINCT p.person_key) FROM {checks} "
            f"WHERE c.done + c.missed > 0{in_scope} GROUP BY p.grid_id"), params):
        found[grid_id] = {"checks_done": int(done), "checks_missed": int(missed), "observed": int(observed),
                          "lost": 0}
    # lost: in force, begun by the cut, and no report since it (the same as "the last report, else the start, by
    # the cut", reports being made after a plan starts); the reports since the cut are a day's, found through
    # their index, where each plan's last report meant aggregating every check ever reported
    for grid_id, lost in conn.execute(sql(
            f"SELECT p.grid_id, count(*) FROM observation_plans p WHERE {IN_FORCE}{in_scope} "
            f"AND p.starts_at <= :cut AND NOT EXISTS ({REPORTED_SINCE_CUT}) GROUP BY p.grid_id"), params):
        found.setdefault(grid_id, {"checks_done": 0, "checks_missed": 0, "observed": 0, "lost": 0})["lost"] = int(lost)
    return found


# -- the timelines -------------------------------------------------------------------------------------------
EVENT_KINDS = ("created", "extended", "closed", "missed", "fever", "visit_task", "fever_task", "check", "link")


def _events(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"id": r.id, "plan_id": r.plan_id, "person_key": r.person_key, "kind": r.kind, "at": r.at.isoformat(),
             "detail": r.detail, "task_id": r.task_id, "actor_name": r.actor_name, "name_masked": r.name_masked,
             "plan": True} for r in rows]


EVENT_SELECT = ("SELECT e.id, e.plan_id, e.person_key, e.kind, e.at, e.detail, e.task_id, "
                "coalesce(u.display_name, u.username) AS actor_name, s.name_masked, p.grid_id "
                "FROM observation_events e JOIN observation_plans p ON p.id = e.plan_id "
                "LEFT JOIN users u ON u.id = e.actor_id LEFT JOIN persons s ON s.person_key = e.person_key ")


def person_plan_events(conn: Connection, actor: Actor, person_key: str, limit: int = 100) -> list[dict[str, Any]]:
    """A person's plan events, newest first, of the plans in the actor's scope (a plan of another grid is left
    out, as the caller cannot tell which)."""
    actor.require_rows()
    rows = conn.execute(sql(EVENT_SELECT + "WHERE e.person_key = :k ORDER BY e.at DESC, e.id DESC LIMIT :n"),
                        {"k": person_key, "n": limit}).all()
    return _events(r for r in rows if actor.sees_grid(r.grid_id))


def grid_plan_events(conn: Connection, actor: Actor, grid_code: str, limit: int = 30) -> list[dict[str, Any]]:
    """The newest plan events of a grid in scope (NotFound otherwise), newest first."""
    grid_id = _grid_in_scope(conn, actor, grid_code)
    rows = conn.execute(sql(EVENT_SELECT + "WHERE p.grid_id = :g ORDER BY e.at DESC, e.id DESC LIMIT :n"),
                        {"g": grid_id, "n": limit}).all()
    return _events(rows)
