"""The wall as it stood at any past moment (after-action replay), rebuilt from the append-only history.

:func:`wall_summary_at` answers what :func:`tasks.overview.wall_summary` answers, for a past ``moment``:
the colour counters and per-grid figures from ``risk_code_history``, open and overdue work from
``task_events``, the ticker (:func:`tasks.overview.ticker` up to the moment) and the feed time as they stood
then.

How a moment is reconstructed:

- **A person's colour** at a moment is the colour of his latest code-history line at or before it; before his
  first line, that line's ``previous_colour`` (none: he was not known yet). A person with no history at all
  (a new green person: the match writes no line for him) keeps his stored colour throughout. His grid is the
  grid he is placed in *now*: the history records codes, not places (a person who moved is counted in his
  present grid), and a person removed since (a withdrawal, retention) is not in the replay.
- **A task** is open from its ``create`` event until its ``closed``/``cancelled`` event (the status after the
  latest event at or before the moment). Its time limit as it stood: a granted extension's event records the
  limit before (``previous_due_at``) and after (``due_at``); a ``regrid`` event the grid before and after.
  Overdue: open, with the limit then in force passed.

A day is loaded once (the state at its start, its code changes and its stretches of open work, as numpy
arrays) and kept, per database, day and scope, in a small LRU; any minute of it is then answered by applying
the changes up to that minute (a binary search and a few ``bincount``\\ s: well under a millisecond for 5,000
events). A day is loaded again when rows dated before its end have been added since (today's, as work goes
on; a back-dated import): three index-only ``max(id)`` look-ups when nothing was added, as the wall's version
stamp, and a look at the added rows only when something was. Figures: ``gridctl bench replay``.

>>> from datetime import datetime
>>> day_bounds(datetime(2026, 12, 2, 1, 30, tzinfo=BEIJING))[0].isoformat()
'2026-12-02T00:00:00+08:00'
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection

from gis.db import sql
from tasks.lifecycle import FINAL
from tasks.overview import BEIJING, ticker
from tasks.repository import OPEN_SQL

COLOURS = ("red", "yellow", "blue", "green")
COLOUR_INDEX = {c: i for i, c in enumerate(COLOURS)}
CACHED_DAYS = 8  # (database, day, scope) entries kept: a few commanders replaying a few days each
FEED_STALE = timedelta(hours=24)
NEVER = np.iinfo(np.int64).max  # the end of work still open
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECONDS = "(extract(epoch FROM {}) * 1000000)::int8"  # a time as whole microseconds since 1970, in SQL
CHANGES = "('grant_extension', 'regrid')"  # the events that move a task's time limit or grid


def day_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The district's day (midnight to midnight, Asia/Shanghai) that holds ``moment``."""
    start = datetime.combine(moment.astimezone(BEIJING).date(), time(), BEIJING)
    return start, datetime.combine(start.date() + timedelta(days=1), time(), BEIJING)


def _us(moment: datetime) -> int:
    """A time as whole microseconds since 1970 (UTC): PostgreSQL's precision, compared as integers."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso_us(value: str | None) -> int | None:
    return None if value is None else _us(datetime.fromisoformat(value))


@dataclass
class ReplayDay:
    """One day of one scope, loaded: the state at its start and what changed during it, in time order.

    Times are microseconds since 1970 (:func:`_us`). ``codes`` names the grid of each grid index (the
    district's grids, then any grid code only the history knows); colour counts have one more column, the
    persons placed in no grid.
    """

    start: datetime
    end: datetime
    scoped: bool
    codes: list[str]
    colours_at_start: np.ndarray  # (4, grids + 1) persons by colour and grid at the day's start
    change_at: np.ndarray  # code changes during the day, sorted by time
    change_grid: np.ndarray
    change_from: np.ndarray  # colour index, -1: the person was not known before
    change_to: np.ndarray
    work_start: np.ndarray  # stretches of open work with one grid and one time limit: [start, end)
    work_end: np.ndarray
    work_grid: np.ndarray
    work_due: np.ndarray
    close_at: np.ndarray  # closures during the day, sorted by time, and whether each was on time
    close_on_time: np.ndarray
    feeds: list[datetime]  # feed import times, sorted
    seen: tuple[int, int, int]  # the largest task event, code history and feed ids when loaded
    grid_index: dict[str, int] = field(default_factory=dict)

    def summary(self, moment: datetime) -> dict:
        """The wall as it stood at ``moment`` (inside this day): :func:`tasks.overview.wall_summary`'s shape but
        the ticker (left empty: :func:`wall_summary_at` asks :func:`tasks.overview.ticker` for it)."""
        t = _us(moment)
        size = len(self.codes)
        counts = self.colours_at_start.copy()
        k = int(np.searchsorted(self.change_at, t, side="right"))
        if k:
            known = self.change_from[:k] >= 0
            np.subtract.at(counts, (self.change_from[:k][known], self.change_grid[:k][known]), 1)
            np.add.at(counts, (self.change_to[:k], self.change_grid[:k]), 1)
        open_ = (self.work_start <= t) & (t < self.work_end)
        late = open_ & (self.work_due < t)
        open_by_grid = np.bincount(self.work_grid[open_], minlength=size)
        late_by_grid = np.bincount(self.work_grid[late], minlength=size)
        closed = int(np.searchsorted(self.close_at, t, side="right"))
        on_time = int(self.close_on_time[:closed].sum())
        overdue = int(late.sum())
        judged = closed + overdue
        totals = counts.sum(axis=1) if not self.scoped else counts[:, :size].sum(axis=1)
        counters = {**{c: int(totals[i]) for i, c in enumerate(COLOURS)}, "open": int(open_.sum()),
                    "overdue": overdue, "closed_today": closed,
                    "on_time_rate": round(on_time / judged, 4) if judged else None}
        red, yellow = counts[0, :size], counts[1, :size]
        shown = np.flatnonzero((red > 0) | (yellow > 0) | (open_by_grid > 0))
        grids = {self.codes[i]: [int(red[i]), int(yellow[i]), int(open_by_grid[i]), int(late_by_grid[i])]
                 for i in shown}
        fed_at = bisect_right(self.feeds, moment)
        fed = self.feeds[fed_at - 1] if fed_at else None
        return {"counters": counters, "grids": grids, "ticker": [],
                "feed_at": fed.isoformat() if fed else None, "as_of": moment.isoformat(),
                "feed_stale": fed is None or moment - fed > FEED_STALE}

    def index_of(self, code: str) -> int:
        """The grid index of ``code``, a new one for a code only the history knows (a grid since replaced)."""
        if code not in self.grid_index:
            self.grid_index[code] = len(self.codes)
            self.codes.append(code)
        return self.grid_index[code]


def _seen(conn: Connection) -> tuple[int, int, int]:
    row = conn.execute(sql(
        "SELECT (SELECT coalesce(max(id), 0) FROM task_events), (SELECT coalesce(max(id), 0) FROM risk_code_history), "
        "(SELECT coalesce(max(id), 0) FROM feed_files)")).one()
    return int(row[0]), int(row[1]), int(row[2])


def _outdated(conn: Connection, day: ReplayDay) -> bool:
    """Whether rows dated before the day's end were added since it was loaded (today's new work; a back-dated
    import). Nothing added (three index-only look-ups, as the wall's version stamp) is the usual answer; rows
    added later than the day are noted, so that the next question is as cheap again."""
    seen = _seen(conn)
    if seen == day.seen:
        return False
    events, history, feeds = day.seen
    # each subquery reads the new rows only, in id order (the LIMIT keeps the planner on the primary key)
    outdated = bool(conn.execute(sql(
        "SELECT EXISTS (SELECT 1 FROM (SELECT at FROM task_events WHERE id > :e ORDER BY id LIMIT 1000000) n "
        "WHERE n.at < :end) "
        "OR EXISTS (SELECT 1 FROM (SELECT changed_at FROM risk_code_history WHERE id > :h ORDER BY id "
        "LIMIT 1000000) n WHERE n.changed_at < :end) "
        "OR EXISTS (SELECT 1 FROM feed_files WHERE id > :f AND imported_at < :end)"),
        {"e": events, "h": history, "f": feeds, "end": day.end}).scalar())
    if not outdated:
        day.seen = seen
    return outdated


def _grids(conn: Connection) -> tuple[list[str], dict[str, int], dict[int, int]]:
    """The district's grid codes (index order), code → index, grid id → index."""
    rows = conn.execute(sql("SELECT id, code FROM grids ORDER BY code")).all()
    codes = [r.code for r in rows]
    return codes, {c: i for i, c in enumerate(codes)}, {r.id: i for i, r in enumerate(rows)}


def _colours(conn: Connection, day: ReplayDay, by_id: dict[int, int], scope: list[int] | None) -> None:
    """Persons by colour and grid at the day's start, and the day's code changes.

    Start from today's counts and undo, person by person, every code change since the day began: only the
    persons whose code changed since are read, not the whole register."""
    unplaced = len(day.codes)
    counts = np.zeros((len(COLOURS), unplaced + 1), dtype=np.int64)
    in_scope = "" if scope is None else "WHERE grid_id = ANY(:scope)"
    for grid_id, colour, persons in conn.execute(sql(
            f"SELECT grid_id, colour, persons FROM grid_colour_counts {in_scope}"), {"scope": scope}):
        if grid_id in by_id and colour in COLOUR_INDEX:
            counts[COLOUR_INDEX[colour], by_id[grid_id]] += persons
    if scope is None:
        for colour, persons in conn.execute(sql(
                "SELECT colour, count(*) FROM persons WHERE grid_id IS NULL GROUP BY colour")):
            counts[COLOUR_INDEX[colour], unplaced] += persons
    rows = conn.execute(sql(
        f"SELECT h.person_key, {MICROSECONDS.format('h.changed_at')} AS changed_at, h.colour, h.previous_colour, "
        "p.grid_id, p.colour AS colour_now, "
        "(SELECT b.colour FROM risk_code_history b WHERE b.person_key = h.person_key AND b.changed_at <= :start "
        " ORDER BY b.changed_at DESC, b.id DESC LIMIT 1) AS colour_before "
        # his present grid and colour by key, one index look-up per change (OFFSET 0 keeps it a look-up: joined,
        # the planner reads the whole register to hash it, for a few hundred changes)
        "FROM risk_code_history h JOIN LATERAL (SELECT grid_id, colour FROM persons WHERE person_key = h.person_key "
        "OFFSET 0) p ON true "
        f"WHERE h.changed_at > :start {'' if scope is None else 'AND p.grid_id = ANY(:scope)'} "
        "ORDER BY h.person_key, h.changed_at, h.id"), {"start": day.start, "scope": scope}).all()
    end = _us(day.end)
    changes: list[tuple[int, int, int, int]] = []
    person, state = None, -1
    for row in rows:
        grid = unplaced if row.grid_id is None else by_id.get(row.grid_id, unplaced)
        if row.person_key != person:  # his first change since the day began: what was he then?
            person = row.person_key
            before = row.colour_before if row.colour_before is not None else row.previous_colour
            counts[COLOUR_INDEX[row.colour_now], grid] -= 1
            state = COLOUR_INDEX.get(before, -1) if before is not None else -1
            if state >= 0:
                counts[state, grid] += 1
        to = COLOUR_INDEX[row.colour]
        at = row.changed_at
        if at < end and to != state:
            changes.append((at, grid, state, to))
        state = to
    changes.sort()
    table = np.array(changes, dtype=np.int64).reshape(-1, 4)
    day.colours_at_start = counts
    day.change_at, day.change_grid, day.change_from, day.change_to = (np.ascontiguousarray(table[:, i])
                                                                      for i in range(4))


def _work(conn: Connection, day: ReplayDay, scope: list[int] | None) -> None:
    """The day's stretches of open work and its closures, from the events of every task that was open at
    some moment of the day (found through the tasks' present state: a task closed before the day began, or
    created after it, has nothing to show).

    A task is open from its first event (``create``) to its first ``closed`` or ``cancelled`` one (both final);
    the database says when, per task. Only the few tasks whose limit or grid moved (a granted extension, a
    ``regrid``) are walked event by event, to cut their open time where it moved."""
    start, end = _us(day.start), _us(day.end)
    in_scope = "" if scope is None else "AND t.grid_id = ANY(:scope) "
    us = MICROSECONDS.format
    final = "('" + "','".join(FINAL) + "')"
    tasks = conn.execute(sql(
        f"WITH candidates AS (SELECT t.id, t.grid_code, t.due_at FROM tasks t WHERE t.created_at < :end "
        f"AND (t.status IN {OPEN_SQL} OR t.closed_at >= :start OR t.cancelled_at >= :start) {in_scope}) "
        f"SELECT c.id, c.grid_code, {us('c.due_at')} AS due, min({us('e.at')}) AS opened, "
        f"min({us('e.at')}) FILTER (WHERE e.to_status IN {final}) AS ended, "
        "bool_or(e.to_status = 'closed') AS closed, "
        f"count(*) FILTER (WHERE e.action IN {CHANGES}) AS changes "
        "FROM candidates c JOIN task_events e ON e.task_id = c.id GROUP BY c.id, c.grid_code, c.due_at"),
        {"start": day.start, "end": day.end, "scope": scope}).all()
    moved = [t.id for t in tasks if t.changes]
    changes: dict[int, list[Any]] = {}
    for e in conn.execute(sql(
            f"SELECT e.task_id, {us('e.at')} AS at, e.action, e.detail->>'due_at' AS due, "
            "e.detail->>'previous_due_at' AS previous_due, e.detail->>'from_grid' AS from_grid, "
            f"e.detail->>'to_grid' AS to_grid FROM task_events e WHERE e.task_id = ANY(:ids) "
            f"AND e.action IN {CHANGES} ORDER BY e.task_id, e.seq"), {"ids": moved}) if moved else ():
        changes.setdefault(e.task_id, []).append(e)
    stretches: list[tuple[int, int, int, int]] = []
    closures: list[tuple[int, bool]] = []
    for task in tasks:
        ended = int(NEVER) if task.ended is None else task.ended
        if ended <= start:
            continue
        steps = changes.get(task.id, [])
        grants = [e for e in steps if e.action == "grant_extension" and e.previous_due]
        moves = [e for e in steps if e.action == "regrid" and e.from_grid]
        first = _iso_us(grants[0].previous_due) if grants else None
        due = first if first is not None else task.due
        grid = day.index_of(moves[0].from_grid if moves else task.grid_code)
        opened = task.opened
        for e in steps:  # the limit or the grid changes here: a new stretch
            if not opened <= e.at < ended:
                continue
            stretches.append((opened, e.at, grid, due))
            opened = e.at
            if e.action == "grant_extension" and e.due:
                due = _us(datetime.fromisoformat(e.due))
            elif e.action == "regrid" and e.to_grid:
                grid = day.index_of(e.to_grid)
        stretches.append((opened, ended, grid, due))
        if task.closed and task.ended is not None and task.ended >= start:
            closures.append((task.ended, task.ended <= due))
    kept = [s for s in stretches if s[1] > start and s[0] < end]
    table = np.array(kept, dtype=np.int64).reshape(-1, 4)
    day.work_start, day.work_end, day.work_grid, day.work_due = (np.ascontiguousarray(table[:, i]) for i in range(4))
    closures.sort()
    day.close_at = np.array([c[0] for c in closures], dtype=np.int64)
    day.close_on_time = np.array([c[1] for c in closures], dtype=bool)


def load_day(conn: Connection, moment: datetime, scope: list[int] | None = None) -> ReplayDay:
    """Load the day that holds ``moment`` for ``scope`` (grid ids; None: the district), in one snapshot."""
    start, end = day_bounds(moment)
    seen = _seen(conn)  # first: a row added while loading makes the next look-up reload, never hides one
    codes, index, by_id = _grids(conn)
    empty = np.zeros(0, dtype=np.int64)
    day = ReplayDay(start=start, end=end, scoped=scope is not None, codes=codes,
                    colours_at_start=np.zeros((len(COLOURS), len(codes) + 1), dtype=np.int64),
                    change_at=empty, change_grid=empty, change_from=empty, change_to=empty, work_start=empty,
                    work_end=empty, work_grid=empty, work_due=empty, close_at=empty,
                    close_on_time=np.zeros(0, dtype=bool), feeds=[], seen=seen,
                    grid_index=index)
    _colours(conn, day, by_id, scope)
    _work(conn, day, scope)
    day.feeds = list(conn.execute(sql("SELECT imported_at FROM feed_files WHERE imported_at < :end "
                                      "ORDER BY imported_at"), {"end": end}).scalars())
    return day


class DayCache:
    """The last few loaded days, least recently used first out; safe to share between request threads."""

    def __init__(self, size: int = CACHED_DAYS) -> None:
        self.size = size
        self._days: OrderedDict[tuple, ReplayDay] = OrderedDict()
        self._lock = threading.Lock()

    def day(self, conn: Connection, moment: datetime, scope: list[int] | None) -> ReplayDay:
        """The loaded day of ``moment`` for ``scope``: from the cache unless rows of it were added since."""
        key = (conn.engine.url.render_as_string(hide_password=True), day_bounds(moment)[0].date(),
               None if scope is None else tuple(sorted(scope)))
        with self._lock:
            found = self._days.get(key)
            if found is not None:
                self._days.move_to_end(key)
        if found is not None and not _outdated(conn, found):
            return found
        loaded = load_day(conn, moment, scope)
        with self._lock:
            self._days[key] = loaded
            self._days.move_to_end(key)
            while len(self._days) > self.size:
                self._days.popitem(last=False)
        return loaded

    def clear(self) -> None:
        with self._lock:
            self._days.clear()


DAYS = DayCache()


def wall_summary_at(conn: Connection, moment: datetime, scope: list[int] | None = None) -> dict:
    """What the wall showed at ``moment`` (of the grids in ``scope`` when given): the same shape as
    :func:`tasks.overview.wall_summary`, rebuilt from the code history and the task events.

    The first moment of a day loads that day (tens to hundreds of milliseconds); every other moment of it is
    answered from memory."""
    if moment.tzinfo is None:
        raise ValueError("moment needs a time zone")
    summary = DAYS.day(conn, moment, scope).summary(moment)
    summary["ticker"] = ticker(conn, scope, until=moment)
    return summary

