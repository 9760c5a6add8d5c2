"""The worker's "today's follow-ups" (今日随访): the persons in observation in his grids, each with his next check.

One answer for the phone: per active plan in the actor's scope the person (masked), his grid, the day of the plan
(day n of N), today's checks (Beijing day) with their states, the next check still to report (a check past its
time but inside its grace period is ``late``; with none left today, the next time on the plan's schedule), the
last report, and whether the last settled check was missed (the first miss shows here before it raises a visit).

Two statements whatever the number of plans (the plans with their next and last checks through LATERAL joins on
the (plan, due) index, then today's checks of those plans): the benchmark holds it to 200 ms of server time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, WORKER, Actor
from observation.policy import ObservationPolicy, observation_policy
from tasks.overview import BEIJING

READERS = (WORKER, SUPERVISOR, COMMANDER, ADMIN)
LIMIT = 500  # a commander's whole district is the desk's table, not a phone's list

PLANS = """
SELECT p.id, p.person_key, p.starts_at, p.ends_at, p.check_minutes, g.code AS grid_code, g.name AS grid_name,
       per.name_masked, per.id_masked, per.colour,
       nx.id AS next_id, nx.due_at AS next_due,
       ls.reported_at AS last_at, ls.temperature AS last_temperature, ls.symptoms AS last_symptoms,
       ls.channel AS last_channel, st.status AS last_settled
FROM observation_plans p
LEFT JOIN grids g ON g.id = p.grid_id
LEFT JOIN persons per ON per.person_key = p.person_key
LEFT JOIN LATERAL (SELECT c.id, c.due_at FROM observation_checks c WHERE c.plan_id = p.id AND c.status = 'due'
                   ORDER BY c.due_at LIMIT 1) nx ON true
LEFT JOIN LATERAL (SELECT c.reported_at, c.temperature, c.symptoms, c.channel FROM observation_checks c
                   WHERE c.plan_id = p.id AND c.status = 'done' ORDER BY c.reported_at DESC LIMIT 1) ls ON true
LEFT JOIN LATERAL (SELECT c.status FROM observation_checks c WHERE c.plan_id = p.id AND c.status <> 'due'
                   AND c.due_at <= :now ORDER BY c.due_at DESC LIMIT 1) st ON true
WHERE p.status = 'active' AND p.ends_at > :now AND p.starts_at <= :now
  AND (CAST(:all AS boolean) OR p.grid_id = ANY(CAST(:grids AS integer[])))
ORDER BY p.id
LIMIT :limit
"""

TODAY = """
SELECT plan_id, id, due_at, status, reported_at, temperature, symptoms, channel
FROM observation_checks WHERE plan_id = ANY(CAST(:ids AS bigint[])) AND due_at >= :since AND due_at < :until
ORDER BY plan_id, due_at
"""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _degrees(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def beijing_day(moment: datetime) -> tuple[datetime, datetime]:
    """The Beijing day holding ``moment``, as [start, end) instants."""
    day = moment.astimezone(BEIJING).date()
    start = datetime.combine(day, time(), BEIJING)
    return start, datetime.combine(day + timedelta(days=1), time(), BEIJING)


def next_scheduled(check_minutes: list[int], now: datetime, ends_at: datetime) -> datetime | None:
    """The first time on a plan's schedule after ``now`` (Beijing minutes after midnight), before its end.

    >>> from datetime import UTC
    >>> next_scheduled([480, 1200], datetime(2026, 12, 3, 13, 0, tzinfo=UTC), datetime(2026, 12, 9, tzinfo=UTC))
    datetime.datetime(2026, 12, 4, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='Asia/Shanghai'))
    """
    day: date = now.astimezone(BEIJING).date()
    for offset in range(3):
        for minutes in sorted(check_minutes):
            moment = datetime.combine(day + timedelta(days=offset), time(), BEIJING) + timedelta(minutes=minutes)
            if moment > now:
                return moment if moment < ends_at else None
    return None


def _abnormal(temperature: float | None, symptoms: list[str], fever_at: float) -> bool:
    """A fever (at or above ``fever_at``) or a symptom other than none: what the phone shows in red."""
    return (temperature is not None and temperature >= fever_at) or any(s != "none" for s in symptoms)


def follow_ups(conn: Connection, actor: Actor, now: datetime, limit: int = LIMIT,
               policy: ObservationPolicy | None = None) -> list[dict[str, Any]]:
    """The persons in observation in the actor's grids with today's checks and the next one, those whose last
    check was missed first, then by the next check's time. 403 for a reporter (rows), a worker his grids."""
    actor.require_role(*READERS)
    fever_at = (policy or observation_policy()).fever_at
    scope = actor.grid_scope()
    rows = conn.execute(text(PLANS), {"now": now, "all": scope is None, "grids": scope or [],
                                      "limit": limit}).all()
    since, until = beijing_day(now)
    checks: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
    if rows:
        for check in conn.execute(text(TODAY), {"ids": list(checks), "since": since, "until": until}):
            degrees, symptoms = _degrees(check.temperature), list(check.symptoms or [])
            checks[check.plan_id].append({
                "id": check.id, "due_at": _iso(check.due_at), "status": check.status,
                "reported_at": _iso(check.reported_at), "temperature": degrees, "symptoms": symptoms,
                "channel": check.channel, "abnormal": _abnormal(degrees, symptoms, fever_at)})
    today = now.astimezone(BEIJING).date()
    answer: list[dict[str, Any]] = []
    nexts: list[datetime | None] = []
    for row in rows:
        days = max(1, round((row.ends_at - row.starts_at).total_seconds() / 86400))
        day = min(days, (today - row.starts_at.astimezone(BEIJING).date()).days + 1)
        if row.next_due is not None:
            next_at, state = row.next_due, "late" if row.next_due <= now else "due"
        else:
            next_at, state = next_scheduled(list(row.check_minutes or []), now, row.ends_at), "scheduled"
        last = None if row.last_at is None else {
            "reported_at": _iso(row.last_at), "temperature": _degrees(row.last_temperature),
            "symptoms": list(row.last_symptoms or []), "channel": row.last_channel,
            "abnormal": _abnormal(_degrees(row.last_temperature), list(row.last_symptoms or []), fever_at)}
        mine = checks[row.id]
        nexts.append(next_at)
        answer.append({
            "plan_id": row.id, "person_key": row.person_key, "name_masked": row.name_masked,
            "id_masked": row.id_masked, "colour": row.colour, "grid_code": row.grid_code, "grid_name": row.grid_name,
            "day": day, "days": days, "ends_at": _iso(row.ends_at), "next_check_id": row.next_id,
            "next_check_at": _iso(next_at), "next_state": state if next_at is not None else None,
            "checks_today": mine, "done_today": sum(c["status"] == "done" for c in mine),
            "missed_today": sum(c["status"] == "missed" for c in mine),
            "last_missed": row.last_settled == "missed", "last_report": last})
    far = datetime.max.replace(tzinfo=BEIJING)
    order = {item["plan_id"]: (not item["last_missed"], when or far, item["plan_id"])
             for item, when in zip(answer, nexts, strict=True)}
    answer.sort(key=lambda item: order[item["plan_id"]])
    return answer
