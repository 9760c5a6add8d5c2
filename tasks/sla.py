"""The SLA clock: overdue open tasks are escalated, first to the community's supervisor, then to the town.

Level 1 is reached as soon as an open task passes its due time; level 2 when
it stays open for one more full SLA period. Each level reached appends one
``escalate`` event (a task found late for both gets both, in order). An
escalation does not change the task's state or version, so a worker's
pending update is not made stale by it.

>>> from datetime import datetime, timedelta, timezone
>>> due = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> escalation_level(due, 60, due + timedelta(minutes=30)), escalation_level(due, 60, due + timedelta(hours=2))
(1, 2)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from tasks.repository import OPEN_SQL

LEVEL_NAMES = {1: "社区网格长", 2: "镇街"}


def escalation_level(due_at: datetime, sla_minutes: int, now: datetime) -> int:
    """0 before the due time, 1 once overdue, 2 once overdue by one more SLA period."""
    if now <= due_at:
        return 0
    return 2 if now > due_at + timedelta(minutes=sla_minutes) else 1


def escalate_overdue(conn: Connection, now: datetime) -> int:
    """Escalate every open overdue task to the level its lateness calls for; returns the events added.

    Set-based (one statement), and ``SKIP LOCKED`` so that a task being
    updated right now is escalated on the next round instead of waiting.
    """
    return conn.execute(text(f"""
        WITH due AS (
            SELECT t.id, t.status, t.escalation_level AS old,
                   CASE WHEN :now > t.due_at + make_interval(mins => t.sla_minutes) THEN 2 ELSE 1 END AS level
            FROM tasks t
            WHERE t.status IN {OPEN_SQL} AND t.due_at < :now AND t.escalation_level < 2
            FOR UPDATE SKIP LOCKED
        ), raised AS (
            UPDATE tasks t SET escalation_level = due.level FROM due
            WHERE t.id = due.id AND due.level > due.old
            RETURNING t.id, t.grid_id, t.due_at, due.status, due.old, due.level
        ), steps AS (
            SELECT r.*, s.step, (SELECT coalesce(max(e.seq), 0) FROM task_events e WHERE e.task_id = r.id) AS last_seq
            FROM raised r CROSS JOIN LATERAL generate_series(r.old + 1, r.level) AS s(step)
        ), added AS (
            INSERT INTO task_events (task_id, seq, action, from_status, to_status, actor, actor_role, at, note, detail)
            SELECT s.id, s.last_seq + s.step - s.old, 'escalate', s.status, s.status, 'system', 'system', :now,
                   CASE s.step WHEN 1 THEN '超时，已上报社区网格长 ' || coalesce(c.name, '')
                               ELSE '严重超时，已上报镇街 ' || coalesce(tw.name, '') END,
                   jsonb_build_object('level', s.step, 'due_at', s.due_at,
                                      'to', CASE s.step WHEN 1 THEN 'community' ELSE 'town' END,
                                      'to_code', CASE s.step WHEN 1 THEN c.code ELSE tw.code END,
                                      'supervisors', CASE s.step WHEN 1 THEN (
                                          SELECT coalesce(jsonb_agg(u.username ORDER BY u.username), '[]'::jsonb)
                                          FROM users u WHERE u.role = 'supervisor' AND u.active
                                          AND u.community_id = c.id) END)
            FROM steps s LEFT JOIN grids g ON g.id = s.grid_id LEFT JOIN communities c ON c.id = g.community_id
            LEFT JOIN towns tw ON tw.id = c.town_id
            RETURNING 1
        )
        SELECT count(*) FROM added"""), {"now": now}).scalar_one()
