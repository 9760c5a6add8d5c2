"""Versions of the colour rules and of the task kinds' time limits and priorities, saved by administrators.

Both are TOML texts of the shape of their shipped files (``matching/rules.toml``, ``tasks/kinds.toml``). Every
saved version is kept (``rule_versions``, append-only) with who saved it, when and why; the newest of each is
the one in force, and with none stored the files are (a new install). A rollback saves a new version whose text
is an older one's. Saving and rolling back are for administrators, and audited (``rules.save``,
``rules.rollback``).

Before a text is saved it is checked (:func:`check`: every problem with its line, rule or kind, field and
reason) and can be previewed (:func:`preview`): for colour rules, the stored source records evaluated with the
proposed rules against the persons' stored colours, counted as the matcher's own change detection counts them
(:func:`matching.changes.compare`): colours before and after, code changes and new task requests; for task kinds,
which kinds' fields change and how many open tasks each has (they keep the limits they were created with).

>>> problem, = check(COLOUR_RULES, '[[rule]]\\nid = "r"\\ncolour = "red"\\nkeywords = ["确诊"]\\ndays = 0\\n')
>>> problem.feature, problem.reason.split(" / ")[1]
('第 5 行 / line 5 · 规则 r / rule r · days', 'days must be a positive whole number, at most 366')
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine

from accounts.actor import ADMIN, Actor
from accounts.repository import record_read
from gis.db import sql
from gis.errors import ImportRejected, InvalidRequest, NotFound
from matching import repository
from matching.changes import compare
from matching.privacy import load_vault
from matching.record_linking import record_births
from matching.rules import COLOURS, RuleSet, assess, default_rules_path, load_rules, parse_rules, rule_problems
from tasks import kinds as task_kinds
from tasks.kinds import FIELDS, TaskKind, file_kinds, file_kinds_text, kind_problems, parse_kinds, shipped_codes
from tasks.lifecycle import OPEN

COLOUR_RULES, TASK_KINDS = "colour_rules", "task_kinds"
WHATS = (COLOUR_RULES, TASK_KINDS)
WHAT_NAMES = {COLOUR_RULES: "颜色规则 / colour rules", TASK_KINDS: "任务时限与优先级 / task time limits and priorities"}
MAX_BODY = 100_000  # characters of one text
MAX_NOTE = 500
_SYNTAX_LINE = re.compile(r"at line (\d+)")


# -- checking a text -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One problem of a rules or kinds text, as :class:`ImportRejected` lists them (``severity``, ``feature``,
    ``reason``): its line (when it has one), the rule or kind, the field."""

    line: int | None
    item: str | None
    field: str | None
    reason: str
    severity: str = "error"

    @property
    def feature(self) -> str:
        parts = [f"第 {self.line} 行 / line {self.line}"] if self.line else []
        if self.item:
            parts.append(self.item)
        if self.field:
            parts.append(self.field)
        return " · ".join(parts) or "全文 / the text"

    def __str__(self) -> str:
        return f"{self.feature}: {self.reason}"


def _what(what: str) -> str:
    if what not in WHATS:
        raise InvalidRequest(f"未知类别 {what}，可选：{', '.join(WHATS)} / unknown kind of version {what!r}", "what")
    return what


def _blocks(lines: list[str], header: re.Pattern[str]) -> list[tuple[str, int, int]]:
    """The tables of a TOML text whose header matches ``header``: (the header's group 1, first line, last line),
    lines 1-based; a table ends where the next header of any table begins."""
    any_header = re.compile(r"^\s*\[")
    starts = [i for i, line in enumerate(lines, start=1) if any_header.match(line)]
    found = []
    for i, line in enumerate(lines, start=1):
        matched = header.match(line)
        if matched:
            following = [s for s in starts if s > i]
            found.append((matched.group(1), i, (following[0] - 1) if following else len(lines)))
    return found


def _field_line(lines: list[str], first: int, last: int, name: str | None) -> int | None:
    if name is None:
        return None
    key = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=")
    return next((i for i in range(first, last + 1) if key.match(lines[i - 1])), None)


def _syntax(body: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        return tomllib.loads(body), []
    except tomllib.TOMLDecodeError as exc:
        at = _SYNTAX_LINE.search(str(exc))
        line = int(at.group(1)) if at else (max(len(body.splitlines()), 1) if "end of document" in str(exc) else None)
        return None, [Problem(line, None, None, f"TOML 语法错误 / TOML syntax error: {exc}")]


def _rule_problems(body: str, raw: dict[str, Any]) -> list[Problem]:
    lines = body.splitlines()
    rules = _blocks(lines, re.compile(r"^\s*(\[\[\s*rule\s*\]\])"))
    top_end = next((i - 1 for i, line in enumerate(lines, start=1) if line.lstrip().startswith("[")), len(lines))
    problems = []
    for p in rule_problems(raw):
        if p.number is None:
            line = _field_line(lines, 1, top_end, p.field) if p.field != "rule" else None
            problems.append(Problem(line, None, p.field, p.reason))
            continue
        block = rules[p.number - 1] if p.number <= len(rules) else None
        line = (_field_line(lines, block[1], block[2], p.field) or block[1]) if block else None
        name = f"规则 {p.rule} / rule {p.rule}" if p.rule else f"第 {p.number} 条规则 / rule #{p.number}"
        problems.append(Problem(line, name, p.field, p.reason))
    return problems


def _kind_problems(body: str, raw: dict[str, Any]) -> list[Problem]:
    lines = body.splitlines()
    tables = {code: (first, last) for code, first, last in
              _blocks(lines, re.compile(r"^\s*\[\s*[\"']?([A-Za-z0-9_\-]+)[\"']?\s*\]"))}
    problems = []
    for p in kind_problems(raw, shipped_codes()):
        first, last = tables.get(p.code or "", (None, None))
        line = (_field_line(lines, first, last, p.field) or first) if first is not None and last is not None else None
        problems.append(Problem(line, f"任务类型 / kind {p.code}" if p.code else None, p.field, p.reason))
    return problems


def check(what: str, body: str) -> list[Problem]:
    """Every problem of the text ``body`` of ``what`` (empty: it can be saved), in the order of the text."""
    _what(what)
    if not body.strip():
        return [Problem(None, None, None, "内容为空 / the text is empty")]
    if len(body) > MAX_BODY:
        return [Problem(None, None, None, f"内容超过 {MAX_BODY} 字 / the text is over {MAX_BODY} characters")]
    raw, problems = _syntax(body)
    if raw is None:
        return problems
    problems = _rule_problems(body, raw) if what == COLOUR_RULES else _kind_problems(body, raw)
    return sorted(problems, key=lambda p: p.line or 0)


def _checked(what: str, body: str) -> None:
    problems = check(what, body)
    if problems:
        raise ImportRejected(f"{WHAT_NAMES[what]}有 {len(problems)} 处错误，未保存 / {len(problems)} problems: "
                             "nothing was saved", problems)


# -- the versions stored ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    """One saved version."""

    id: int
    what: str
    body: str
    saved_by: str
    saved_at: datetime
    note: str | None
    rolled_back_from: int | None
    in_force: bool = field(default=False)


_COLUMNS = "id, what, body, saved_by, saved_at, note, rolled_back_from"


def _version(row: Any, newest: dict[str, int]) -> Version:
    return Version(row.id, row.what, row.body, row.saved_by, row.saved_at, row.note, row.rolled_back_from,
                   newest.get(row.what) == row.id)


def _newest_ids(conn: Connection) -> dict[str, int]:
    return {row.what: row.id for row in conn.execute(sql("SELECT what, max(id) AS id FROM rule_versions "
                                                         "GROUP BY what"))}


def newest(conn: Connection, what: str) -> Version | None:
    """The version of ``what`` in force, None when none is stored (the file is in force)."""
    row = conn.execute(sql(f"SELECT {_COLUMNS} FROM rule_versions WHERE what = :what ORDER BY id DESC LIMIT 1"),
                       {"what": _what(what)}).first()
    return None if row is None else _version(row, {what: row.id})


def default_body(what: str) -> str:
    """The text of the files of ``what``: what is in force while no version is stored."""
    if _what(what) == COLOUR_RULES:
        return default_rules_path().read_text(encoding="utf-8")
    return file_kinds_text()


def current_body(conn: Connection, what: str) -> tuple[str, int | None]:
    """The text of ``what`` in force and its version's id (None: the file's text)."""
    found = newest(conn, what)
    return (found.body, found.id) if found else (default_body(what), None)


def current_rules(conn: Connection) -> RuleSet:
    """The colour rules in force: the newest stored version, else the rules file (``NANHAI_RULES``, or
    ``matching/rules.toml``)."""
    found = newest(conn, COLOUR_RULES)
    return parse_rules(found.body, f"版本 #{found.id} / version #{found.id}") if found else load_rules()


def rules_as_of(conn: Connection, moment: datetime) -> RuleSet:
    """The colour rules that were in force at ``moment``: the newest version saved by then, else the rules file
    (a replay of a day before any version was saved)."""
    row = conn.execute(sql("SELECT id, body FROM rule_versions WHERE what = 'colour_rules' AND saved_at <= :at "
                           "ORDER BY id DESC LIMIT 1"), {"at": moment}).first()
    return parse_rules(row.body, f"版本 #{row.id} / version #{row.id}") if row else load_rules()


def current_kinds(conn: Connection) -> dict[str, TaskKind]:
    """The task kinds in force in this database: the newest stored version, else the files."""
    found = newest(conn, TASK_KINDS)
    return parse_kinds(found.body, f"#{found.id}") if found else file_kinds()


def newest_kinds(conn: Connection, known: int | None) -> tuple[int | None, str | None]:
    """The newest stored task kinds version's id, and its text unless its id is ``known`` (one indexed look-up
    when nothing changed): what :func:`tasks.kinds.load_kinds` follows."""
    version = conn.execute(sql("SELECT max(id) FROM rule_versions WHERE what = 'task_kinds'")).scalar()
    if version is None or version == known:
        return version, None
    return version, conn.execute(sql("SELECT body FROM rule_versions WHERE id = :id"), {"id": version}).scalar_one()


def follow_versions(engine: Engine | None) -> None:
    """Make this process's task workflow use the task kinds in force in ``engine``'s database (None: the
    files); see :mod:`tasks.kinds`. The matcher reads the colour rules in force at each run itself."""
    task_kinds.follow(engine, newest_kinds if engine is not None else None)


def list_versions(conn: Connection, actor: Actor, what: str | None = None, limit: int = 200) -> list[Version]:
    """The saved versions, newest first (of ``what``, or of both)."""
    actor.require_role(ADMIN)
    where = "" if what is None else "WHERE what = :what"
    rows = conn.execute(sql(f"SELECT {_COLUMNS} FROM rule_versions {where} ORDER BY id DESC LIMIT :limit"),
                        {"what": what and _what(what), "limit": limit})
    newest_ids = _newest_ids(conn)
    return [_version(row, newest_ids) for row in rows]


def get_version(conn: Connection, actor: Actor, version_id: int) -> Version:
    """One saved version; NotFound when there is none of that id."""
    actor.require_role(ADMIN)
    row = conn.execute(sql(f"SELECT {_COLUMNS} FROM rule_versions WHERE id = :id"), {"id": version_id}).first()
    if row is None:
        raise NotFound(f"没有版本 #{version_id} / no version #{version_id}")
    return _version(row, _newest_ids(conn))


def _note(note: str | None, required: bool) -> str | None:
    note = (note or "").strip()
    if required and not note:
        raise InvalidRequest("请写明修改原因 / say why in the note", "note")
    if len(note) > MAX_NOTE:
        raise InvalidRequest(f"说明不超过 {MAX_NOTE} 字 / the note is at most {MAX_NOTE} characters", "note")
    return note or None


def _store(conn: Connection, actor: Actor, what: str, body: str, note: str | None, rolled_back_from: int | None,
           action: str, client: str | None) -> Version:
    conn.execute(sql("SELECT pg_advisory_xact_lock(hashtext('rule_versions'), hashtext(:what))"), {"what": what})
    in_force, _ = current_body(conn, what)
    if body == in_force:
        raise InvalidRequest("与当前生效的版本相同，无需保存 / the same as the version in force: nothing to save",
                             "body")
    row = conn.execute(sql(f"INSERT INTO rule_versions (what, body, saved_by, note, rolled_back_from) "
                           f"VALUES (:what, :body, :by, :note, :back) RETURNING {_COLUMNS}"),
                       {"what": what, "body": body, "by": actor.username, "note": note, "back": rolled_back_from}
                       ).one()
    record_read(conn, actor, action, f"{what} #{row.id}", note, client)
    if what == TASK_KINDS:
        task_kinds.look_again()
    return _version(row, {what: row.id})


def save_version(conn: Connection, actor: Actor, what: str, body: str, note: str | None,
                 client: str | None = None) -> Version:
    """Check ``body`` and save it as the new version of ``what`` in force (administrators only; audited
    ``rules.save`` with the note). Refused with every problem of the text (:class:`ImportRejected`), without a
    note, or when it is the text in force already. Saved colour rules apply at the next match (the caller
    queues one: :func:`jobs.queue.enqueue_rematch`); task kinds to the tasks created from then on."""
    actor.require_role(ADMIN)
    _checked(_what(what), body)
    return _store(conn, actor, what, body, _note(note, required=True), None, "rules.save", client)


def rollback(conn: Connection, actor: Actor, version_id: int, note: str | None = None,
             client: str | None = None) -> Version:
    """Bring back version ``version_id``: save a new version with its text (administrators only; audited
    ``rules.rollback``). Refused when that text is the one in force already."""
    old = get_version(conn, actor, version_id)
    _checked(old.what, old.body)  # the rules of today still accept it (a field added since would refuse it)
    reason = f"回滚到 #{old.id} / rolled back to #{old.id}"
    extra = _note(note, required=False)
    return _store(conn, actor, old.what, old.body, f"{reason}: {extra}" if extra else reason, old.id,
                  "rules.rollback", client)


def rollback_to_file(conn: Connection, actor: Actor, what: str, note: str | None = None,
                     client: str | None = None) -> Version:
    """Bring back the shipped file's text of ``what`` (the default of a new install): save it as a new version
    (administrators only; audited ``rules.rollback``). Refused when it is the text in force already."""
    actor.require_role(ADMIN)
    body = default_body(_what(what))
    _checked(what, body)
    reason = "回滚到默认文件 / rolled back to the shipped file"
    extra = _note(note, required=False)
    return _store(conn, actor, what, body, f"{reason}: {extra}" if extra else reason, None, "rules.rollback",
                  client)


# -- previews --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColourPreview:
    """What matching everyone with proposed colour rules would change, counted as the matcher counts it."""

    before: dict[str, int]  # persons per colour now (as stored)
    after: dict[str, int]  # persons per colour after a match with the proposed rules
    recoloured: int  # stored persons whose colour would change
    new_persons: int  # persons of the records not matched yet (a match adds them whatever the rules)
    removed: int  # stored persons with no record any more (a match removes them whatever the rules)
    code_changes: int  # lines of code history a match would write
    task_requests: int  # new task requests: new or raised red and yellow codes, and the tasks rules newly ask for

    def rows(self) -> list[dict[str, Any]]:
        """One row per colour: colour, now, after, change (signed, ``+0`` for none)."""
        return [{"colour": c, "now": self.before[c], "after": self.after[c],
                 "change": f"{self.after[c] - self.before[c]:+d}"} for c in COLOURS]


@dataclass(frozen=True)
class KindChange:
    code: str
    name: str
    field: str
    before: object
    after: object
    open_tasks: int  # open tasks of this kind: they keep the limit and priority they were created with


@dataclass(frozen=True)
class KindsPreview:
    """Which kinds' fields a version of the task kinds would change, and the open tasks of those kinds."""

    changes: list[KindChange]
    open_tasks: int  # open tasks of the kinds that change


def preview_rules(conn: Connection, actor: Actor, body: str, now: pd.Timestamp) -> ColourPreview:
    """Evaluate the stored source records (and overrides) with the rules ``body`` at ``now`` and compare with the
    stored persons, as a match would: :func:`matching.rules.evaluate` and :func:`matching.changes.compare`."""
    actor.require_role(ADMIN)
    _checked(COLOUR_RULES, body)
    rules = parse_rules(body, "preview")
    records = repository.load_records(conn)
    overrides = repository.load_overrides(conn)
    stored = repository.load_stored_persons(conn)
    flags = repository.load_flags(conn)
    before = {c: int(n) for c, n in stored["colour"].value_counts().items()}
    if records.empty:  # nobody to code: a match would remove whoever is stored
        return ColourPreview({c: before.get(c, 0) for c in COLOURS}, dict.fromkeys(COLOURS, 0), 0, 0, len(stored),
                             0, 0)
    if rules.reads("age"):
        records = records.assign(birth=record_births(records, repository.load_sealed(conn), load_vault()))
    assessment = assess(records, rules, now, overrides)
    codes = assessment.codes
    # each person as a match would write him: his stored place and masks (a match recomputes them, but the
    # rules change neither), his code from the proposed rules
    run = stored.set_index("person_key").reindex(codes.index)
    for column in ("colour", "reason", "rule_id", "sources", "set_at", "expires_at", "explanation"):
        if column in codes:
            run[column] = codes[column]
    run = run.reset_index()
    changes = compare(run, stored, flags, now)
    known = stored.set_index("person_key")["colour"].reindex(codes.index)
    after = codes["colour"].value_counts()
    return ColourPreview(before={c: before.get(c, 0) for c in COLOURS},
                         after={c: int(after.get(c, 0)) for c in COLOURS},
                         recoloured=int((known.notna() & (known != codes["colour"])).sum()),
                         new_persons=int(known.isna().sum()), removed=len(changes.removed),
                         code_changes=len(changes.history),
                         task_requests=len(changes.requests) + _new_holds(conn, assessment.requests))


def _new_holds(conn: Connection, requests: pd.DataFrame) -> int:
    """How many of a run's rule task requests would be new: the person and rule pairs that do not hold now
    (:func:`matching.repository.store_rule_requests` requests only those)."""
    held = {(row.person_key, row.rule_id) for row in conn.execute(sql("SELECT person_key, rule_id FROM rule_holds"))}
    return sum((key, rule) not in held for key, rule in zip(requests["person_key"], requests["rule_id"], strict=True))


def preview_kinds(conn: Connection, actor: Actor, body: str) -> KindsPreview:
    """The fields of each kind that ``body`` changes against the kinds in force, with each kind's open tasks."""
    actor.require_role(ADMIN)
    _checked(TASK_KINDS, body)
    proposed, in_force = parse_kinds(body, "preview"), current_kinds(conn)
    open_tasks = {row.kind: row.n for row in conn.execute(
        sql("SELECT kind, count(*) AS n FROM tasks WHERE status = ANY(:open) GROUP BY kind"), {"open": list(OPEN)})}
    changes = [KindChange(code, kind.name, name, getattr(in_force[code], name), getattr(kind, name),
                          open_tasks.get(code, 0))
               for code, kind in proposed.items() for name in FIELDS
               if code in in_force and getattr(in_force[code], name) != getattr(kind, name)]
    return KindsPreview(changes, sum(open_tasks.get(code, 0) for code in {c.code for c in changes}))


def preview(conn: Connection, actor: Actor, what: str, body: str, now: datetime) -> ColourPreview | KindsPreview:
    """The preview of saving ``body`` as the version of ``what`` in force (see the module's doc)."""
    if _what(what) == COLOUR_RULES:
        return preview_rules(conn, actor, body, pd.Timestamp(now))
    return preview_kinds(conn, actor, body)
