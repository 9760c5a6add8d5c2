"""The hotline's daily question: who is this ID number, or this phone? — answered in the actor's scope, audited.

A person is found by his ID number (its person key, :meth:`matching.privacy.Vault.person_key`) or by a phone
any of his records gave: its phone key (:func:`phone_key`, a keyed hash) is stored for each source record in
``source_record_phones`` since migration 0013 (records stored before it: :func:`backfill_phone_keys`). What
comes back is masked: his code with its reason, rule, sources and expiry, the history of his code, the
overrides and appeals about him, his grid and the tasks about him — and only when his grid is in the actor's
scope. A person outside it is not found, in the same words as one who does not exist, so the answer never tells
that he exists.

Every look-up writes one audit line per person found (``person.lookup``, the person key, the reason the
user typed), or one line for a search that found nobody (the person key of the ID number, or the masked
phone); a reason is required, as for unmasking.

>>> phone_digits("+86 138-1234-5678"), phone_digits("0757-8628 1234")
('13812345678', '075786281234')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, Actor
from accounts.repository import record_read
from gis.errors import InvalidRequest, NotFound
from matching.appeals import appeals_of
from matching.identity import (
    LANDLINE,
    MOBILE,
    id_number_problem,
    mask_id,
    mask_phone,
    normalise_id_number,
    normalise_phone,
)
from matching.person_repository import persons_in_scope
from matching.privacy import Vault
from observation.overview import person_plan_events

PHONE_PURPOSE = "person_phone"  # the tag's purpose: a resident's phone key is not a staff account's
LOOKUP_ROLES = (SUPERVISOR, COMMANDER, ADMIN)
NOT_FOUND = "人员不存在或不在您的范围内 / no such person in your scope"
MOST_PERSONS = 20  # a phone shared by a family, a care home's switchboard: the first 20 persons in scope
HISTORY_LIMIT = 100
TASK_LIMIT = 50


# -- phone keys -----------------------------------------------------------------------------------------------
def phone_digits(phone: object) -> str:
    """A phone as its key is made from: normalised (:func:`matching.identity.normalise_phone`), digits only."""
    return normalise_phone(phone).replace("-", "")


def _mac_key(vault: Vault) -> bytes:
    """The phone keys' own secret: 16 bytes derived from the vault's person-key secret (an HMAC of a fixed
    label), so that a phone key is nothing without the secrets file, like a person key."""
    return bytes.fromhex(vault.tag(PHONE_PURPOSE, "blake2b-key"))


def phone_key(vault: Vault, phone: str) -> int:
    """The phone key of a phone, digits only: the first 8 bytes of its keyed BLAKE2b MAC, as a signed BIGINT."""
    return int.from_bytes(blake2b(phone.encode(), key=_mac_key(vault), digest_size=8).digest(), "big", signed=True)


def phone_keys(vault: Vault, phones: Iterable[str | None]) -> pd.Series:
    """The phone keys of many phones as the import normalised them (a landline may keep its hyphen), as a
    nullable Int64 column, missing where a record has no phone. One keyed BLAKE2b per phone (~1 µs: a third
    less than an HMAC-SHA256), the keys then read from the joined digests at once."""
    key = _mac_key(vault)
    digits = [p.replace("-", "") if p else "" for p in phones]
    raw = b"".join(blake2b(p.encode(), key=key, digest_size=8).digest() if p else bytes(8) for p in digits)
    keys = np.frombuffer(raw, dtype=">i8").astype(np.int64)
    missing = np.fromiter((not p for p in digits), dtype=bool, count=len(digits))
    return pd.Series(pd.arrays.IntegerArray(keys, missing))


def phone_key_rows(vault: Vault, phones: Iterable[str | None], rows: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """(phone keys, row numbers) of the records that have a phone: what an import stores for the look-up."""
    keys = phone_keys(vault, phones)
    given = ~keys.isna().to_numpy()
    return keys.to_numpy(dtype=np.int64, na_value=0)[given], np.asarray(rows, dtype=np.int64)[given]


def backfill_phone_keys(engine: Engine, vault: Vault, batch: int = 20_000) -> int:
    """Give the records stored before migration 0013 their phone key (each one's phone unsealed in memory only,
    nothing written but the key); returns how many keys were added. Safe to run again, and to stop: a record
    keyed already is left as it is. Reads every record with a phone, in key order, a batch per transaction."""
    done, after = 0, (0, 0)
    while True:
        with engine.begin() as conn:
            rows = conn.execute(text(
                "SELECT feed_file_id, row_number, sealed FROM source_records "
                "WHERE (feed_file_id, row_number) > (:f, :r) AND phone_masked IS NOT NULL "
                "ORDER BY feed_file_id, row_number LIMIT :n"), {"f": after[0], "r": after[1], "n": batch}).all()
            if not rows:
                return done
            keys = phone_keys(vault, [vault.open(r.sealed)["phone"] for r in rows])
            given = [(int(k), r.feed_file_id, r.row_number) for k, r in zip(keys, rows, strict=True) if not pd.isna(k)]
            done += conn.execute(text(
                "INSERT INTO source_record_phones (phone_key, feed_file_id, row_number) "
                "SELECT * FROM unnest(CAST(:k AS bigint[]), CAST(:f AS int[]), CAST(:r AS int[])) "
                "ON CONFLICT DO NOTHING"),
                {"k": [g[0] for g in given], "f": [g[1] for g in given], "r": [g[2] for g in given]}).rowcount
            after = (rows[-1].feed_file_id, rows[-1].row_number)


# -- the query ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """What the user typed, as the database is searched by: an ID number's person key, or a phone's key; and
    how the audit log names a search that found nobody (never the number in clear)."""

    kind: str  # "id" or "phone"
    person_key: str | None
    phone_key: int | None
    masked: str


def parse_query(value: object, vault: Vault) -> Query:
    """An ID number (18 characters, or 15 digits) or a phone (mobile or landline), normalised and keyed."""
    typed = "" if value is None else str(value)
    phone = phone_digits(typed)
    if MOBILE.match(phone) or LANDLINE.match(phone):
        return Query("phone", None, phone_key(vault, phone), mask_phone(phone))
    problem = id_number_problem(typed)
    if problem:
        raise InvalidRequest(f"请输入身份证号或手机号（{problem}）/ type an ID number or a phone ({problem})",
                             "query")
    id_number = normalise_id_number(typed)
    return Query("id", vault.person_key(id_number), None, mask_id(id_number))


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or len(reason.strip()) < 2:
        raise InvalidRequest("查询人员须说明理由（如：热线来电）/ a reason is required to look a person up "
                             "(e.g. a hotline call)", "reason")
    return reason.strip()[:500]


def look_up(conn: Connection, actor: Actor, query: str, reason: str, vault: Vault, client: str | None,
            now: datetime) -> list[dict[str, Any]]:
    """The persons an ID number or phone finds in the actor's scope (an ID number finds one at most), each as a
    card (:func:`person_card`); an empty list when none. Audited in the caller's transaction, found or not:
    the caller commits, then says :data:`NOT_FOUND` when the list is empty (:func:`require_found`)."""
    actor.require_role(*LOOKUP_ROLES)
    why = _reason(reason)
    found = parse_query(query, vault)
    if found.person_key is not None:
        keys = [found.person_key]
    else:
        keys = list(conn.execute(text(
            "SELECT DISTINCT r.person_key FROM source_record_phones p JOIN source_records r "
            "ON r.feed_file_id = p.feed_file_id AND r.row_number = p.row_number WHERE p.phone_key = :k "
            "ORDER BY r.person_key"), {"k": found.phone_key}).scalars())
    persons = persons_in_scope(conn, actor, keys)[:MOST_PERSONS]
    for person in persons:
        record_read(conn, actor, "person.lookup", person["person_key"], why, client)
    if not persons:
        subject = found.person_key if found.person_key is not None else f"手机 / phone {found.masked}"
        record_read(conn, actor, "person.lookup", subject, why, client)
    return [person_card(conn, actor, person, now) for person in persons]


def require_found(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``cards``, or :class:`NotFound` in the words of a person out of scope when there is none."""
    if not cards:
        raise NotFound(NOT_FOUND)
    return cards


def card_of(conn: Connection, actor: Actor, person_key: str, now: datetime) -> dict[str, Any]:
    """The card of a person already found (after an override or an appeal): the same scope, no new audit line."""
    actor.require_role(*LOOKUP_ROLES)
    persons = persons_in_scope(conn, actor, [person_key])
    if not persons:
        raise NotFound(NOT_FOUND)
    return person_card(conn, actor, persons[0], now)


# -- the card -----------------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def person_card(conn: Connection, actor: Actor, person: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A person in scope (masked, as :func:`matching.person_repository.persons_in_scope` gives him) with his grid,
    the history of his code, the overrides and appeals about him, his tasks in scope, and one timeline of
    all of it, newest first."""
    key = person["person_key"]
    grid = None
    if person["grid_code"]:
        row = conn.execute(text("SELECT g.code, g.name, c.code AS community_code, c.name AS community "
                                "FROM grids g JOIN communities c ON c.id = g.community_id WHERE g.code = :c"),
                           {"c": person["grid_code"]}).one_or_none()
        grid = dict(row._mapping) if row else None
    history = [{"previous_colour": r.previous_colour, "colour": r.colour, "reason": r.reason, "rule_id": r.rule_id,
                "sources": r.sources, "set_at": _iso(r.set_at), "expires_at": _iso(r.expires_at),
                "changed_at": _iso(r.changed_at)}
               for r in conn.execute(text(
                   "SELECT previous_colour, colour, reason, rule_id, sources, set_at, expires_at, changed_at "
                   "FROM risk_code_history WHERE person_key = :k ORDER BY changed_at DESC, id DESC LIMIT :n"),
                   {"k": key, "n": HISTORY_LIMIT})]
    overrides = [{"id": r.id, "colour": r.colour, "reason": r.reason, "set_by": r.set_by, "set_at": _iso(r.set_at),
                  "expires_at": _iso(r.expires_at), "active": r.expires_at > now}
                 for r in conn.execute(text(
                     "SELECT id, colour, reason, set_by, set_at, expires_at FROM risk_overrides "
                     "WHERE person_key = :k ORDER BY set_at DESC, id DESC"), {"k": key})]
    tasks = [{"id": r.id, "kind": r.kind, "status": r.status, "title": r.title, "grid_code": r.grid_code,
              "due_at": _iso(r.due_at), "created_at": _iso(r.created_at)}
             for r in conn.execute(text(
                 "SELECT id, kind, status, title, grid_id, grid_code, assignee_id, due_at, created_at FROM tasks "
                 "WHERE person_key = :k ORDER BY created_at DESC, id DESC LIMIT :n"), {"k": key, "n": TASK_LIMIT})
             if actor.sees_task(r.grid_id, r.assignee_id)]
    appeals = appeals_of(conn, key)
    plans = person_plan_events(conn, actor, key, limit=HISTORY_LIMIT)
    return {"person": person, "grid": grid, "history": history, "overrides": overrides, "appeals": appeals,
            "tasks": tasks, "timeline": timeline(history, overrides, appeals, plans)}


def timeline(history: list[dict[str, Any]], overrides: list[dict[str, Any]],
             appeals: list[dict[str, Any]], plans: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One list of what happened to a person's code, newest first: each code change (an override's included,
    once a match applied it), each override set, each appeal filed and each decided. Each entry has ``at``,
    ``kind`` (``code``, ``override``, ``appeal``, ``decision``), ``colour`` and what that kind says: a code
    change its ``previous_colour`` and ``reason``; an override its ``by``, ``until`` and ``reason``; an appeal
    its ``id``, ``by`` and ``reason``; a decision its ``id``, ``by``, ``status`` and ``note``. ``plans``: his
    home-observation plan events (:func:`observation.overview.person_plan_events`), kind ``plan`` with the
    event's ``event`` (created, check, missed, fever …), ``by``, ``detail`` and ``task_id``."""
    entries = [{"at": h["changed_at"], "kind": "code", "colour": h["colour"], "previous_colour": h["previous_colour"],
                "reason": h["reason"]} for h in history]
    entries += [{"at": o["set_at"], "kind": "override", "colour": o["colour"], "by": o["set_by"],
                 "until": o["expires_at"], "reason": o["reason"]} for o in overrides]
    for a in appeals:
        entries.append({"at": a["requested_at"], "kind": "appeal", "colour": a["colour"], "id": a["id"],
                        "by": a["requested_by"], "until": a["expires_at"], "reason": a["reason"]})
        if a["decided_at"]:
            entries.append({"at": a["decided_at"], "kind": "decision", "colour": a["colour"], "id": a["id"],
                            "by": a["decided_by"], "status": a["status"], "note": a["decision_note"]})
    entries += [{"at": p["at"], "kind": "plan", "colour": None, "event": p["kind"], "by": p["actor_name"],
                 "detail": p["detail"], "task_id": p["task_id"]} for p in plans or []]
    # ISO times of one session's time zone: their text sorts as the times do
    return sorted(entries, key=lambda e: e["at"] or "", reverse=True)
