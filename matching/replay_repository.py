"""Database access for match runs and named replays: the codes of a past moment, kept apart from today's.

Every match run is recorded (``match_runs``) with the moment its codes are as of; an as-of run (``gridctl match
--as-of``) stores its persons as a named replay (``replays``, ``replay_persons``, migration 0017), which can be
listed and exported. Nothing here writes persons, flags, links or task requests.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gis.errors import InvalidRequest, NotFound
from grids.repository import copy_frame
from matching.repository import run_counts

REPLAY_COLUMNS = ("person_key", "id_masked", "name_masked", "colour", "reason", "rule_id", "sources", "set_at",
                  "expires_at", "grid_id", "unplaced_reason", "provisional", "explanation")
MAX_NAME = 100


def require_new_name(conn: Connection, name: str) -> None:
    """Refuse an empty, overlong or taken replay name before any work is done."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidRequest(f"回放名称须为 1–{MAX_NAME} 个字 / a replay's name must have 1 to {MAX_NAME} characters",
                             "name")
    if conn.execute(text("SELECT 1 FROM replays WHERE name = :n"), {"n": name}).first():
        raise InvalidRequest(f"回放“{name}”已存在，请换一个名称或先删除 / a replay named {name!r} exists: choose "
                             f"another name, or delete it first (gridctl replay delete)", "name")


def record_run(conn: Connection, started_at: datetime, as_of: datetime, replay_id: int | None,
               stats: dict[str, Any]) -> int:
    """Record one match run: when it started, the moment its codes are as of, its replay (if one) and counts."""
    return conn.execute(text("INSERT INTO match_runs (started_at, as_of, replay_id, stats) "
                             "VALUES (:s, :a, :r, CAST(:j AS jsonb)) RETURNING id"),
                        {"s": started_at, "a": as_of, "r": replay_id, "j": json.dumps(stats)}).scalar_one()


def store_replay(conn: Connection, name: str, as_of: datetime, created_by: str | None, persons: pd.DataFrame,
                 started_at: datetime, extra: dict[str, int] | None = None) -> dict[str, int]:
    """Store an as-of run's persons as the replay ``name`` and record the run; return its counts as a match's."""
    require_new_name(conn, name)
    stats = {**run_counts(persons), **(extra or {})}
    replay_id = conn.execute(text("INSERT INTO replays (name, as_of, created_by, stats) "
                                  "VALUES (:n, :a, :b, CAST(:s AS jsonb)) RETURNING id"),
                             {"n": name, "a": as_of, "b": created_by, "s": json.dumps(stats)}).scalar_one()
    copy_frame(conn, "replay_persons", persons[list(REPLAY_COLUMNS)].assign(replay_id=replay_id))
    record_run(conn, started_at, as_of, replay_id, stats)
    return {**stats, "replay_id": replay_id}


def list_replays(conn: Connection) -> list[dict[str, Any]]:
    """The stored replays, newest first: name, as-of moment, who made it and when, counts."""
    return [dict(row) for row in conn.execute(text(
        "SELECT id, name, as_of, created_at, created_by, stats FROM replays ORDER BY created_at DESC, id DESC")
    ).mappings()]


def replay_rows(conn: Connection, name: str) -> pd.DataFrame:
    """A replay's risk-coded persons (red, yellow, blue), masked, with grid, community and town, reddest first."""
    replay_id = conn.execute(text("SELECT id FROM replays WHERE name = :n"), {"n": name}).scalar_one_or_none()
    if replay_id is None:
        raise NotFound(f"没有名为“{name}”的回放 / no replay named {name!r}")
    return pd.read_sql(text(
        "SELECT p.person_key, p.id_masked AS masked_id, p.name_masked AS name, g.code AS grid_code, "
        "  c.name AS community, t.name AS town, p.colour, p.reason, p.explanation, p.rule_id, p.sources, p.set_at, "
        "  p.expires_at, "
        "  p.unplaced_reason, p.provisional "
        "FROM replay_persons p LEFT JOIN grids g ON g.id = p.grid_id LEFT JOIN communities c ON c.id = g.community_id "
        "LEFT JOIN towns t ON t.id = c.town_id WHERE p.replay_id = :r AND p.colour <> 'green' "
        "ORDER BY CASE p.colour WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 ELSE 2 END, g.code NULLS LAST, p.person_key"),
        conn, params={"r": replay_id})


def delete_replay(conn: Connection, name: str) -> bool:
    """Delete a replay (its persons go with it; its run stays recorded, without it)."""
    return conn.execute(text("DELETE FROM replays WHERE name = :n"), {"n": name}).rowcount > 0
