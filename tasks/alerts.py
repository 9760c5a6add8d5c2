"""What the dispatch desk is alerted to: a new tip-off, a task that became overdue, an extension request.

An :class:`Alert` names the event's kind, its moment, and the grid it belongs to (code and name) with the task
or lead it concerns — never a person: no name, ID number, phone, address or description, so that an alert may
be shown on any desk of the grid's scope and posted to the office's group chat (:mod:`jobs.webhook`).

:func:`pending_alerts` answers "what happened in ``(since, now]``" in one statement over three small index
ranges (migration 0019 adds the two that were missing), so the dispatch page can ask it on every refresh:

- ``lead``: every lead report received in the window — a new lead or a report merged into an open one; its
  grid is the lead's (a lead not yet placed has an empty ``grid_code``: only the whole district sees it);
- ``overdue``: every open task whose ``due_at`` falls in the window (it became overdue then, and still is);
- ``extension``: every extension request made in the window that is still waiting (the task's latest request,
  neither granted nor refused, the task still open).

The window is half-open: asking again from the ``now`` of the previous answer never repeats an alert and never
skips one (for the ``overdue`` kind exactly; for the others, as long as the writer's clock stamped the row before
it committed, which is why the periodic delivery asks a few seconds behind the clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from gis.db import sql
from tasks.repository import OPEN_SQL

AlertKind = Literal["lead", "overdue", "extension"]
KINDS: tuple[AlertKind, ...] = ("lead", "overdue", "extension")


@dataclass(frozen=True)
class Alert:
    """One event a desk is alerted to; nothing in it names or identifies a person.

    >>> from datetime import UTC
    >>> Alert("overdue", datetime(2026, 12, 3, 6, 0, tzinfo=UTC), "440605001001001", "桂城第1网格", 12, None).kind
    'overdue'
    """

    kind: str  # "lead" | "overdue" | "extension"
    at: datetime  # when the report arrived, the task fell due, or the extension was asked
    grid_code: str  # "" for a lead not placed in any grid
    grid_name: str | None
    task_id: int | None  # the overdue task, or the task whose extension is asked
    lead_id: int | None  # the lead the report made or was merged into


_LEADS = """
SELECT 'lead' AS kind, r.received_at AS at, coalesce(g.code, '') AS grid_code, g.name AS grid_name,
       NULL::bigint AS task_id, r.lead_id AS lead_id, r.id AS row_id
FROM lead_reports r JOIN leads l ON l.id = r.lead_id LEFT JOIN grids g ON g.id = l.grid_id
WHERE r.received_at > :since AND r.received_at <= :now {scope_leads}"""

_OVERDUE = f"""
SELECT 'overdue', t.due_at, t.grid_code, g.name, t.id, NULL::bigint, t.id
FROM tasks t LEFT JOIN grids g ON g.id = t.grid_id
WHERE t.status IN {OPEN_SQL} AND t.due_at > :since AND t.due_at <= :now {{scope_tasks}}"""

# A task has at most one request waiting (tasks.lifecycle refuses a second), and it is the latest one: an earlier
# request was decided, or cleared by a reassignment, before the next could be made.
_EXTENSIONS = f"""
SELECT 'extension', e.at, t.grid_code, g.name, t.id, NULL::bigint, e.id
FROM task_events e JOIN tasks t ON t.id = e.task_id LEFT JOIN grids g ON g.id = t.grid_id
WHERE e.action = 'request_extension' AND e.at > :since AND e.at <= :now
  AND t.extension_requested_until IS NOT NULL AND t.status IN {OPEN_SQL} {{scope_tasks}}
  AND NOT EXISTS (SELECT 1 FROM task_events later WHERE later.task_id = e.task_id AND later.seq > e.seq
                  AND later.action = 'request_extension')"""


def _statement(scoped: bool) -> str:
    # The scope filter is written only when there is one: under a generic plan an ":x IS NULL OR …" filter is
    # planned for both cases at once (see tasks.overview.grid_figures).
    scope_leads = "AND l.grid_id = ANY(:scope)" if scoped else ""
    scope_tasks = "AND t.grid_id = ANY(:scope)" if scoped else ""
    return (_LEADS.format(scope_leads=scope_leads) + "\nUNION ALL" + _OVERDUE.format(scope_tasks=scope_tasks)
            + "\nUNION ALL" + _EXTENSIONS.format(scope_tasks=scope_tasks)
            + "\nORDER BY at DESC, kind, row_id DESC")


_SCOPED, _WHOLE = sql(_statement(True)), sql(_statement(False))


def pending_alerts(conn: Connection, grid_ids: list[int] | None, since: datetime, now: datetime) -> list[Alert]:
    """The alerts of ``(since, now]`` in the grids ``grid_ids`` (None: the whole district, with the leads not yet
    placed), newest first: new lead reports, tasks that became overdue and are still open, extension requests
    still waiting. A desk that asks again from this ``now`` gets only what is new.

    Example: ``pending_alerts(conn, actor_grid_ids, last_seen, datetime.now(UTC))`` on each refresh of the
    dispatch page, the badge showing ``len(...)``.
    """
    if grid_ids is not None and not grid_ids:
        return []
    statement = _WHOLE if grid_ids is None else _SCOPED
    rows = conn.execute(statement, {"since": since, "now": now, "scope": grid_ids})
    return [Alert(kind=r.kind, at=r.at, grid_code=r.grid_code, grid_name=r.grid_name, task_id=r.task_id,
                  lead_id=r.lead_id) for r in rows]
