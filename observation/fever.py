"""A fever or a symptom during home observation: an escort for a medical assessment at once, the person's code
changed as the rules say, and his code put up for review.

:func:`escalate` does, in the check-in's transaction:

1. **A source record of its own** (source ``随访``, category ``发热`` for a temperature at or above ``fever_at``,
   else ``症状``), under the day's follow-up feed file (one ``feed_files`` row per Beijing day, its balance kept).
   Its personal fields are copies of the person's own record (sealed and masked as stored: nothing is opened), so
   the matcher keys it to him. Every later ``gridctl match`` then reads it like any department's record, and the
   rule it meets (``red-follow-up-fever`` in the shipped rules: source 随访, category 发热 or 症状, 14 days) keeps
   the code it justifies instead of undoing it.
2. **The code, right away.** The rules in force are run (:func:`matching.rules.assess`, the matcher's own code) on
   his follow-up records; where the code they give outranks his stored one (or is the same rule, now expiring
   later), his ``persons`` row, his flag and a ``risk_code_history`` line (with the rule's reason and explanation)
   are written as a match would write them, so the next match finds nothing to change. A manual override in force
   wins, as in a match; a rules file with no rule for follow-up records changes nothing.
3. **An escort task** (kind ``escort``, 转运集中医学观察) in the plan's grid through
   :func:`tasks.repository.create_task`, dispatched like any other, unless one is open for him already.
4. **A code review**: a pending code appeal (:mod:`matching.appeals`, the queue supervisors follow and commanders
   decide) filed by the system. When the rules raised him, it proposes his previous colour: approve it once the
   assessment clears him. When they did not (another rule, or none), it proposes red: approve it to raise him by
   hand. Nothing is filed when he is red already or an appeal about him is waiting.

Each step is an ``observation_events`` line (``fever``, ``fever_task``) and the whole an audit line
(``observation.fever``). The caller holds the matcher's lock (:func:`matching.repository.lock_match`), so no match
writes between the code read here and the one written.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from accounts.actor import Actor
from accounts.repository import record_read
from matching.rules import RANK, assess
from observation.checks import CheckReport, _event, describe
from observation.policy import ObservationPolicy
from tasks import lifecycle
from tasks.repository import SOURCES, NewTask, create_task

FOLLOW_UP = "随访"  # the source of follow-up records, as the rules file names it
FEVER, SYMPTOM = "发热", "症状"
ESCORT = "escort"
# the tasks a follow-up raises; "follow_up" once the task sources know it, "manual" (by the system) until then
TASK_SOURCE = "follow_up" if "follow_up" in SOURCES else "manual"
SYSTEM_NAME = "system"
OPEN = list(lifecycle.OPEN)
COLOUR_NAMES = {"red": "红码", "yellow": "黄码", "blue": "蓝码", "green": "绿码"}


def category(report: CheckReport, policy: ObservationPolicy) -> str:
    """The follow-up record's category: 发热 for a fever, else 症状 (a symptom)."""
    return FEVER if report.feverish(policy.fever_at) else SYMPTOM


def escalate(conn: Connection, plan: Any, check_id: int, report: CheckReport, now: datetime, actor: Actor | None,
             policy: ObservationPolicy) -> dict[str, Any]:
    """Everything a feverish or symptomatic check-in sets off (see the module's text), for the plan's row ``plan``
    (id, person_key, grid_id) locked by the caller. Returns task_ids (the escort raised, or none when one was
    open), record (feed_file_id, row_number of the follow-up record, None when the person has no record to key
    it by), code (previous and new colour when it changed, else None) and appeal_id (None when none was filed)."""
    what = describe(report)
    record = store_follow_up_record(conn, plan.person_key, category(report, policy), now)
    code = apply_code(conn, plan.person_key, now) if record is not None else None
    task_id = _escort(conn, plan, what, now)
    appeal_id = _review(conn, plan.person_key, code, what, now)
    moved = f"；赋码 / code {code['previous']} → {code['colour']}（{code['rule_id']}）" if code else ""
    review = f"；复核申诉 / code review #{appeal_id}" if appeal_id else ""
    _event(conn, plan, "fever", now, f"{what}（检查 / check #{check_id}）{moved}{review}", actor)
    if task_id is not None:
        _event(conn, plan, "fever_task", now, f"转运集中医学观察 / escort #{task_id}", actor, task_id)
    record_read(conn, actor or Actor.system(), "observation.fever", plan.person_key,
                f"计划 / plan #{plan.id} 检查 / check #{check_id}：{what}{moved}{review}", None)
    return {"task_ids": [task_id] if task_id is not None else [], "record": record, "code": code,
            "appeal_id": appeal_id}


def _day_file(conn: Connection, now: datetime) -> int:
    """The day's follow-up feed file (Beijing day of ``now``), made when missing, locked: its records are numbered
    in turn and its balance kept as each is added."""
    from tasks.overview import BEIJING

    day = now.astimezone(BEIJING).date().isoformat()
    digest = hashlib.sha256(f"nanhai follow-up records {day}".encode()).hexdigest()
    conn.execute(text(
        "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs, "
        "imported_by) VALUES (:s, :f, :h, 0, 0, 0, 'wgs84', :b) "
        "ON CONFLICT (source, sha256) WHERE withdrawn_at IS NULL DO NOTHING"),
        {"s": FOLLOW_UP, "f": f"居家观察随访 {day} / home observation follow-up", "h": digest, "b": SYSTEM_NAME})
    return int(conn.execute(text("SELECT id FROM feed_files WHERE source = :s AND sha256 = :h AND withdrawn_at IS NULL "
                                 "FOR UPDATE"), {"s": FOLLOW_UP, "h": digest}).scalar_one())


def store_follow_up_record(conn: Connection, person_key: str, what: str, now: datetime) -> tuple[int, int] | None:
    """Store a follow-up source record (category ``what``) for the person, its personal fields copied from the
    record his masked fields come from. Returns (feed_file_id, row_number); None when he has no stored record (his
    records withdrawn): the matcher could not key one to him."""
    model = conn.execute(text(
        "SELECT r.sealed, r.id_masked, r.name_masked, r.phone_masked, r.identified FROM persons p "
        "JOIN source_records r ON r.feed_file_id = p.record_feed_file_id AND r.row_number = p.record_row_number "
        "WHERE p.person_key = :k"), {"k": person_key}).one_or_none()
    if model is None:
        return None
    feed_id = _day_file(conn, now)
    row_number = int(conn.execute(text(
        "UPDATE feed_files SET rows_read = rows_read + 1, rows_stored = rows_stored + 1 WHERE id = :f "
        "RETURNING rows_stored"), {"f": feed_id}).scalar_one())
    conn.execute(text(
        "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, name_masked, "
        "phone_masked, category, reported_at, identified) VALUES (:f, :n, :s, :k, :sealed, :i, :name, :phone, :c, "
        ":at, :ident)"),
        {"f": feed_id, "n": row_number, "s": FOLLOW_UP, "k": person_key, "sealed": model.sealed,
         "i": model.id_masked, "name": model.name_masked, "phone": model.phone_masked, "c": what, "at": now,
         "ident": model.identified})
    return feed_id, row_number


def _follow_up_records(conn: Connection, person_key: str, birth: bool) -> pd.DataFrame:
    """The person's follow-up records standing, with the columns the rules read (as
    :func:`matching.repository.load_records` gives them)."""
    rows = conn.execute(text(
        "SELECT r.person_key, r.source, coalesce(r.category, '') AS category, "
        "coalesce(r.reported_at, f.imported_at) AS reported_at, r.lon, r.lat, '' AS address_sealed, r.id_masked, "
        "r.name_masked, r.phone_masked, r.feed_file_id, r.row_number, r.identified, r.origin, "
        "(r.arrived_on::timestamp AT TIME ZONE 'Asia/Shanghai') AS arrived_at "
        "FROM feed_files f JOIN source_records r ON r.feed_file_id = f.id "
        "WHERE f.source = :s AND f.withdrawn_at IS NULL AND r.person_key = :k ORDER BY r.feed_file_id, r.row_number"),
        {"s": FOLLOW_UP, "k": person_key}).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows])
    for column in ("reported_at", "arrived_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    frame["identified"] = frame["identified"].astype(bool)
    if birth:  # dates of birth stay sealed here: an age condition does not hold on a follow-up record alone
        frame["birth"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    return frame


def _precedence(rule_id: str | None, colour: str, order: dict[str, int]) -> tuple[int, int]:
    """A code's place in the rules' precedence (smaller wins): its colour, then its rule's place in the file."""
    return RANK.get(colour, len(RANK)), order.get(rule_id or "", len(order))


def apply_code(conn: Connection, person_key: str, now: datetime) -> dict[str, Any] | None:
    """Change the person's code at once as the rules in force say of his follow-up records (see the module's text);
    returns previous and new colour, rule_id, expires_at when it changed, else None."""
    from matching.rule_versions import current_rules

    stored = conn.execute(text(
        "SELECT colour, rule_id, expires_at, grid_id, unplaced_reason FROM persons WHERE person_key = :k FOR UPDATE"),
        {"k": person_key}).one_or_none()
    if stored is None:
        return None
    overridden = conn.execute(text("SELECT EXISTS (SELECT FROM risk_overrides WHERE person_key = :k "
                                   "AND expires_at > :now)"), {"k": person_key, "now": now}).scalar_one()
    if overridden:  # a manual code holds whatever the rules say
        return None
    rules = current_rules(conn)
    records = _follow_up_records(conn, person_key, rules.reads("age"))
    if records.empty:
        return None
    code = assess(records, rules, pd.Timestamp(now)).codes.loc[person_key]
    if code["rule_id"] is None or code["colour"] == "green":
        return None
    order = {rule.id: place for place, rule in enumerate(rules.ranked())}
    expires = pd.Timestamp(code["expires_at"]).to_pydatetime()
    new, old = (_precedence(code["rule_id"], code["colour"], order),
                _precedence(stored.rule_id, stored.colour, order))
    extends = code["rule_id"] == stored.rule_id and (stored.expires_at is None or expires > stored.expires_at)
    if not (new < old or extends):
        return None
    values = {"k": person_key, "colour": code["colour"], "reason": code["reason"], "rule": code["rule_id"],
              "sources": code["sources"], "set_at": pd.Timestamp(code["set_at"]).to_pydatetime(), "expires": expires,
              "explanation": code["explanation"], "now": now, "previous": stored.colour}
    conn.execute(text("UPDATE persons SET colour = :colour, reason = :reason, rule_id = :rule, sources = :sources, "
                      "set_at = :set_at, expires_at = :expires, explanation = :explanation, updated_at = :now "
                      "WHERE person_key = :k"), values)
    conn.execute(text(
        "INSERT INTO risk_code_history (person_key, previous_colour, colour, reason, rule_id, sources, set_at, "
        "expires_at, changed_at, explanation) VALUES (:k, :previous, :colour, :reason, :rule, :sources, :set_at, "
        ":expires, :now, :explanation)"), values)
    conn.execute(text(
        "INSERT INTO flags (person_key, colour, grid_id, unplaced_reason, flagged_at, updated_at) "
        "VALUES (:k, :colour, :grid, :unplaced, :now, :now) ON CONFLICT (person_key) DO UPDATE "
        "SET colour = EXCLUDED.colour, updated_at = EXCLUDED.updated_at"),
        {**values, "grid": stored.grid_id, "unplaced": stored.unplaced_reason})
    return {"previous": stored.colour, "colour": code["colour"], "rule_id": code["rule_id"],
            "expires_at": expires, "previous_expires_at": stored.expires_at}


def _escort(conn: Connection, plan: Any, what: str, now: datetime) -> int | None:
    """An escort task for a medical assessment in the plan's grid (the person's when the plan has none), unless
    one for him is open already or no grid holds him; its id."""
    person = conn.execute(text(
        "SELECT p.name_masked, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, g.code AS grid_code "
        "FROM (SELECT 1) one LEFT JOIN persons p ON p.person_key = :k "
        "LEFT JOIN grids g ON g.id = coalesce(:grid, p.grid_id)"),
        {"k": plan.person_key, "grid": plan.grid_id}).one()
    if person.grid_code is None:
        return None
    open_task = conn.execute(text("SELECT id FROM tasks WHERE person_key = :k AND kind = :kind "
                                  "AND status = ANY(:open) LIMIT 1"),
                             {"k": plan.person_key, "kind": ESCORT, "open": OPEN}).scalar_one_or_none()
    if open_task is not None:
        return None
    task = create_task(conn, Actor.system(), NewTask(
        kind=ESCORT, grid_code=person.grid_code, source=TASK_SOURCE, person_key=plan.person_key,
        title=f"居家观察发热/症状，医学评估：{person.name_masked or ''}",
        detail=f"居家观察随访：{what}，请转运集中医学观察评估 / home observation follow-up: {what}; escort to a "
               f"medical assessment (观察计划 / plan #{plan.id})",
        point=(person.lon, person.lat) if person.lon is not None else None), now)
    return int(task["id"])


def _review(conn: Connection, person_key: str, code: dict[str, Any] | None, what: str, now: datetime) -> int | None:
    """File the code review (a pending appeal by the system; see the module's text); its id, or None."""
    current = conn.execute(text("SELECT colour FROM persons WHERE person_key = :k"),
                           {"k": person_key}).one_or_none()
    if current is None:
        return None
    if code is not None and code["previous"] == code["colour"]:  # a later fever, the code's days counted anew
        return None
    if code is not None:  # raised by the rules: approving the review gives him back his previous colour
        colour = code["previous"]
        reason = (f"居家观察随访{what}，已按规则赋{COLOUR_NAMES[code['colour']]}待医学评估；评估排除后批准本申诉恢复"
                  f"{COLOUR_NAMES[colour]} / "
                  f"follow-up: {what}; coded {code['colour']} by the rules pending assessment: approve to restore "
                  f"{colour} once cleared")
        until = code["expires_at"]
    elif current.colour != "red":  # the rules did not raise him: approving raises him by hand
        colour = "red"
        reason = (f"居家观察随访{what}，规则未调整赋码；如需转红码请批准本申诉 / follow-up: {what}; the rules left his "
                  "code as it was: approve to make it red")
        until = now + timedelta(days=14)
    else:
        return None
    if until <= now + timedelta(hours=2):  # an appeal must hold a while to be approved
        until = now + timedelta(days=1)
    appeal_id = conn.execute(text(  # one appeal waits at a time: one waiting already is the review
        "INSERT INTO code_appeals (person_key, colour, reason, expires_at, requested_by, requested_at) "
        "VALUES (:k, :c, :r, :e, :b, :now) ON CONFLICT (person_key) WHERE status = 'pending' DO NOTHING "
        "RETURNING id"),
        {"k": person_key, "c": colour, "r": reason[:500], "e": until, "b": SYSTEM_NAME, "now": now}
    ).scalar_one_or_none()
    return None if appeal_id is None else int(appeal_id)

