"""The day's checks of every plan, and the sweep that marks the unreported ones missed and raises home visits.

- :func:`make_checks` makes a Beijing day's checks for every active plan, one statement (run at 00:05 Beijing
  time and when the job worker starts: :mod:`jobs.tasks`); a plan made or extended during the day gets the rest
  of that day's checks from :func:`observation.plans.sync_plans`.
- :func:`sweep_missed` (every 5 minutes) marks ``missed`` each check still ``due`` once its grace period is
  over. The convention at the edge: a check due at ``due`` is missed when ``now > due + grace``; at
  ``due + grace`` exactly it is not yet missed, and a report then still counts for it (the report window
  ``[due - opens, due + grace]`` is closed at both ends). Its ``missed_at`` is ``due + grace``, the moment it
  became missed, whenever the sweep ran. A plan whose last ``missed_in_a_row_for_visit`` decided checks
  (reported or missed; a check still due does not count) are all missed, with no home visit of its own still
  open, gets a ``home_visit`` task in its grid through the task workflow (time limit, dispatch, escalation as
  for any task), and a ``visit_task`` event linking it.

>>> from datetime import date
>>> beijing_midnight(date(2026, 12, 3)).isoformat()
'2026-12-02T16:00:00+00:00'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from accounts.actor import Actor
from gis.errors import GridError
from observation.policy import ObservationPolicy, observation_policy
from tasks.repository import OPEN_SQL, NewTask, create_task

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
VISIT_KIND = "home_visit"
VISIT_SOURCE = "follow_up"  # tasks.source of the work follow-up raises (tasks.repository.SOURCES, migration 0023)
VISIT_TITLE = "居家观察漏报入户走访"  # "kind：masked name", as the other system-made tasks (retention keeps the kind)

_INSERT_CHECKS = """
INSERT INTO observation_checks (plan_id, due_at)
SELECT pl.id, d.due_at FROM observation_plans pl
CROSS JOIN LATERAL (SELECT CAST(:midnight AS timestamptz) + m * interval '1 minute' AS due_at
                    FROM unnest(pl.check_minutes) m) d
WHERE pl.status = 'active' AND pl.starts_at < :next_midnight AND pl.ends_at > :midnight
  AND d.due_at >= greatest(pl.starts_at, CAST(:not_before AS timestamptz)) AND d.due_at < pl.ends_at {plans}
ON CONFLICT (plan_id, due_at) DO NOTHING
"""

_MARK_MISSED = """
WITH marked AS (
    UPDATE observation_checks c SET status = 'missed', missed_at = c.due_at + :grace
    FROM observation_plans pl
    WHERE c.status = 'due' AND c.due_at < :cutoff AND pl.id = c.plan_id
    RETURNING c.plan_id, pl.person_key, c.due_at, c.missed_at
), logged AS (
    INSERT INTO observation_events (plan_id, person_key, kind, at, detail)
    SELECT plan_id, person_key, 'missed', missed_at,
           '漏报：' || to_char(due_at AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI') || ' 的检查无报告 / missed: no '
           || 'report for the check of ' || to_char(due_at AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI')
    FROM marked
)
SELECT plan_id FROM marked
"""

_STREAKS = """
SELECT m.id, last.newest
FROM unnest(CAST(:plans AS bigint[])) AS m(id)
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.status = 'missed') AS missed, count(*) AS decided, max(r.due_at) AS newest
    FROM (SELECT c.status, c.due_at FROM observation_checks c WHERE c.plan_id = m.id AND c.status <> 'due'
          ORDER BY c.due_at DESC LIMIT :n) r
) last
WHERE last.missed = :n AND last.decided = :n
"""

_VISITS_DUE = f"""
SELECT pl.id, pl.person_key, g.code AS grid_code, p.name_masked, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
FROM observation_plans pl
LEFT JOIN grids g ON g.id = pl.grid_id
LEFT JOIN persons p ON p.person_key = pl.person_key
WHERE pl.id = ANY(CAST(:plans AS bigint[])) AND pl.status = 'active'
  AND NOT EXISTS (SELECT FROM observation_events e JOIN tasks t ON t.id = e.task_id
                  WHERE e.plan_id = pl.id AND e.kind = 'visit_task' AND t.status IN {OPEN_SQL})
ORDER BY pl.id
"""


# the visit_task events of one sweep's home visits, in the order they were raised
_VISIT_EVENTS = """
INSERT INTO observation_events (plan_id, person_key, kind, at, detail, task_id)
SELECT v.plan_id, v.person_key, 'visit_task', :now, v.detail, v.task_id
FROM unnest(CAST(:plans AS bigint[]), CAST(:persons AS text[]), CAST(:details AS text[]), CAST(:tasks AS bigint[]))
     WITH ORDINALITY AS v(plan_id, person_key, detail, task_id, ord)
ORDER BY v.ord
"""


def beijing_day(moment: datetime) -> date:
    """The Beijing calendar day of ``moment``."""
    return moment.astimezone(BEIJING).date()


def beijing_midnight(day: date) -> datetime:
    """The start of the Beijing day ``day``, in UTC (China keeps no summer time: always 16:00 UTC the day
    before)."""
    return datetime.combine(day, time(), BEIJING).astimezone(UTC)


def insert_checks(conn: Connection, day: date, plans: Sequence[int] | None = None,
                  not_before: datetime | None = None) -> int:
    """Insert the checks of the Beijing day ``day`` of the active plans (``plans``: of those only), each at a
    plan's check time within ``[starts_at, ends_at)`` (and from ``not_before`` on, if given); existing ones are
    kept. Returns how many were made."""
    midnight = beijing_midnight(day)
    # a semi-join, not "= ANY(array)": the first match of a district passes 100,000 new plans
    only = "AND pl.id IN (SELECT unnest(CAST(:plans AS bigint[])))" if plans is not None else ""
    return conn.execute(text(_INSERT_CHECKS.format(plans=only)),
                        {"midnight": midnight, "next_midnight": midnight + timedelta(days=1),
                         "not_before": not_before, "plans": list(plans or [])}).rowcount


def make_checks(conn: Connection, day: date, policy: ObservationPolicy | None = None, *,
                not_before: datetime | None = None) -> int:
    """Make the Beijing day ``day``'s checks of every active plan (INSERT … SELECT … ON CONFLICT DO NOTHING: run
    twice, it makes nothing more); returns how many were made. The times are each plan's own
    (``check_minutes``, from the policy when the plan was made or extended): ``policy`` is not read.

    ``not_before``: make none due before it. The job passes ``now - grace``: a worker started late in the day
    (the 00:05 run missed) makes no check that nobody could still report for, which the sweep would count
    missed at once."""
    return insert_checks(conn, day, not_before=not_before)


def _policy(conn: Connection, policy: ObservationPolicy | None) -> ObservationPolicy:
    """``policy``, else that of the rules in force in this database (the newest saved version, else the file)."""
    if policy is not None:
        return policy
    from matching.rule_versions import current_rules

    return observation_policy(current_rules(conn))


def sweep_missed(conn: Connection, now: datetime, policy: ObservationPolicy | None = None) -> dict[str, int]:
    """Mark missed the checks past their grace at ``now`` (an event each), and raise a home visit for each plan
    whose last ``missed_in_a_row_for_visit`` checks are now all missed (see the module). Returns the counts
    ``missed`` (checks), ``visits`` (tasks raised), ``unplaced`` (a visit due, but the plan has no grid) and
    ``failed`` (a visit the task workflow refused: logged, tried again at the plan's next miss)."""
    policy = _policy(conn, policy)
    marked = conn.execute(text(_MARK_MISSED), {"grace": policy.grace, "cutoff": now - policy.grace}).scalars().all()
    counts = {"missed": len(marked), "visits": 0, "unplaced": 0, "failed": 0}
    if not marked:
        return counts
    plans = sorted(set(marked))
    n = policy.missed_in_a_row_for_visit
    # the plans whose last n decided checks are all missed (a few of those just marked), then their details
    newest: dict[int, datetime] = {row.id: row.newest for row in conn.execute(text(_STREAKS),
                                                                              {"plans": plans, "n": n})}
    rows = conn.execute(text(_VISITS_DUE), {"plans": sorted(newest)}).all() if newest else []
    raised: list[tuple[Any, int, str]] = []  # (plan row, task id, detail): their visit_task events, one statement
    for row in rows:
        if row.grid_code is None:
            counts["unplaced"] += 1
            continue
        try:
            with conn.begin_nested():
                task_id, detail = _raise_visit(conn, row, newest[row.id], n, now)
        except GridError as exc:  # the grid gone, say: said in the log (no personal data), the sweep goes on
            log.warning("home visit for plan %s not raised: %s", row.id, type(exc).__name__)
            counts["failed"] += 1
            continue
        raised.append((row, task_id, detail))
        counts["visits"] += 1
        log.info("plan %s: %s checks missed in a row, home visit task %s", row.id, n, task_id)
    if raised:
        conn.execute(text(_VISIT_EVENTS), {"plans": [r.id for r, _, _ in raised],
                                           "persons": [r.person_key for r, _, _ in raised],
                                           "details": [d for _, _, d in raised], "tasks": [t for _, t, _ in raised],
                                           "now": now})
    return counts


def _raise_visit(conn: Connection, row: Any, last_due: datetime, n: int, now: datetime) -> tuple[int, str]:
    """Create the home visit of one plan (its last missed check due ``last_due``) through the task workflow;
    returns its id and the detail of its ``visit_task`` event (written by the caller with the others)."""
    newest = last_due.astimezone(BEIJING).strftime("%m-%d %H:%M")
    detail = (f"居家观察连续 {n} 次未报体温（最近应报于 {newest}），请入户测温 / {n} checks missed in a row during "
              f"home observation (the last due {newest} Beijing time): visit and take the temperature")
    task = create_task(conn, Actor.system(), NewTask(
        kind=VISIT_KIND, grid_code=row.grid_code, source=VISIT_SOURCE, person_key=row.person_key,
        title=f"{VISIT_TITLE}：{row.name_masked or ''}", detail=detail,
        point=(row.lon, row.lat) if row.lon is not None else None), now)
    return int(task["id"]), detail
