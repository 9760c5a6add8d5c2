"""Task kinds with their default SLA and priority: the version in force, else ``kinds.toml`` (and an operator's
override file).

>>> kinds = load_kinds()
>>> kinds["lead_verification"].sla_minutes, kinds["home_visit"].needs_temperature
(120, True)

The administrators' rules page saves versions of the kinds (:mod:`matching.rule_versions`); the newest stored one
is in force. A process *follows* its database (:func:`follow`): :func:`load_kinds` then answers the kinds of the
newest stored version, checking for a newer one at most once every :data:`CHECK_EVERY` seconds (one indexed
look-up of the newest version's id; its text is read and parsed only when the id changes). A process that
follows no database, and every process before any version is stored, uses the files. A task keeps the time limit
and priority it was created with: a new version applies to the tasks created after it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gis.errors import ConfigurationError, InvalidRequest

log = logging.getLogger(__name__)

DEFAULT_FILE = Path(__file__).with_name("kinds.toml")
FIELDS = {"name": str, "name_en": str, "sla_minutes": int, "priority": int, "needs_temperature": bool}
MAX_SLA_MINUTES = 30 * 24 * 60  # thirty days
PRIORITIES = range(1, 6)  # 1 = most urgent
CHECK_EVERY = 1.0  # seconds between two look-ups of the newest stored version, per process


@dataclass(frozen=True)
class TaskKind:
    code: str
    name: str
    name_en: str
    sla_minutes: int
    priority: int
    needs_temperature: bool


@dataclass(frozen=True)
class KindProblem:
    """One thing wrong with a task kinds table: the kind and field, and why."""

    code: str | None
    field: str | None
    reason: str


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"任务类型文件无法读取 / cannot read the task kinds file {path}: {exc}") from exc


def kind_problems(table: dict[str, Any], known: Collection[str] | None = None) -> list[KindProblem]:
    """Every problem of a task kinds table (``[code]`` tables of :data:`FIELDS`), in the order of the text.

    With ``known`` (the codes of the shipped file), the table must name exactly those kinds: the workflow
    creates them by code, and tasks of every one of them exist.

    >>> kind_problems({"escort": {"name": "转运", "name_en": "Escort", "sla_minutes": 0, "priority": 1,
    ...                           "needs_temperature": True}})[0].reason
    '时限须为 1 到 43200 分钟 / sla_minutes must be 1 to 43200 minutes'
    """
    problems: list[KindProblem] = []
    for code, values in table.items():
        if known is not None and code not in known:
            problems.append(KindProblem(code, None, f"未知任务类型 {code}，可选：{', '.join(known)} / unknown task "
                                                    f"kind {code}"))
            continue
        if not isinstance(values, dict):
            problems.append(KindProblem(code, None, f"任务类型 {code} 须写成 [{code}] 表 / task kind {code} must be "
                                                    f"a [{code}] table"))
            continue
        for field in values:
            if field not in FIELDS:
                problems.append(KindProblem(code, field, f"未知字段 {field} / unknown field {field!r}"))
        for field, kind in FIELDS.items():
            value = values.get(field)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                problems.append(KindProblem(code, field, f"任务类型 {code} 的 {field} 缺失或类型错误 / task kind "
                                                         f"{code}: {field} missing or not {kind.__name__}"))
            elif isinstance(value, str) and not value.strip():
                problems.append(KindProblem(code, field, f"{field} 不能为空 / {field} must not be empty"))
            elif field == "sla_minutes" and isinstance(value, int) and not 0 < value <= MAX_SLA_MINUTES:
                problems.append(KindProblem(code, field, f"时限须为 1 到 {MAX_SLA_MINUTES} 分钟 / sla_minutes must "
                                                         f"be 1 to {MAX_SLA_MINUTES} minutes"))
            elif field == "priority" and value not in PRIORITIES:
                problems.append(KindProblem(code, field, f"优先级须为 {PRIORITIES.start} 到 {PRIORITIES.stop - 1}"
                                                         f"（1 最急）/ priority must be {PRIORITIES.start} to "
                                                         f"{PRIORITIES.stop - 1} (1 = most urgent)"))
    if known is not None:
        for code in known:
            if code not in table:
                problems.append(KindProblem(code, None, f"缺少任务类型 {code} / task kind {code} is missing"))
    return problems


def kinds_from_table(table: dict[str, Any]) -> dict[str, TaskKind]:
    """The kinds of a table whose :func:`kind_problems` are none."""
    return {code: TaskKind(code, **{f: values[f] for f in FIELDS}) for code, values in table.items()}


def parse_kinds(body: str, source: str) -> dict[str, TaskKind]:
    """Read and check a whole task kinds text (every shipped kind, each with every field); a wrong one gives one
    message naming the first problem. ``source`` names the text in messages (a stored version)."""
    try:
        table = tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"任务类型无法读取 / cannot read the task kinds {source}: {exc}") from exc
    problems = kind_problems(table, shipped_codes())
    if problems:
        raise ConfigurationError(f"{source}: {problems[0].reason}")
    return kinds_from_table(table)


def shipped_codes() -> tuple[str, ...]:
    """The codes of the kinds in ``kinds.toml``, in its order."""
    return tuple(_read(DEFAULT_FILE))


def file_kinds(override: str | None = None) -> dict[str, TaskKind]:
    """The kinds of the files: defaults, then the override file (``NANHAI_TASK_KINDS`` when not given).

    Read again when the override file changes (cached on its modification time).
    """
    override = override or os.environ.get("NANHAI_TASK_KINDS")
    stamp = None
    if override:
        try:
            stat = Path(override).stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError as exc:
            raise ConfigurationError(f"任务类型文件无法读取 / cannot read the task kinds file {override}: "
                                     f"{exc}") from exc
    return _load_kinds(override, stamp)


def file_kinds_text() -> str:
    """The task kinds of the files as a TOML text: ``kinds.toml`` itself, or, with ``NANHAI_TASK_KINDS``, the
    kinds it gives written out in the same shape (what a first saved version starts from)."""
    if not os.environ.get("NANHAI_TASK_KINDS"):
        return DEFAULT_FILE.read_text(encoding="utf-8")
    return kinds_text(file_kinds())


def kinds_text(kinds: dict[str, TaskKind]) -> str:
    """``kinds`` as the TOML text of a kinds file."""
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    blocks = [f"[{k.code}]\n" + "".join(f"{f} = {value(getattr(k, f))}\n" for f in FIELDS) for k in kinds.values()]
    return "# 任务类型 / task kinds: time limit (SLA, minutes) and priority (1 = most urgent).\n\n" + "\n".join(blocks)


@lru_cache(maxsize=8)
def _load_kinds(override: str | None, _stamp: tuple[int, int] | None) -> dict[str, TaskKind]:
    table = _read(DEFAULT_FILE)
    if override:
        for code, values in _read(Path(override)).items():
            if code not in table:
                raise ConfigurationError(f"未知任务类型 {code} / unknown task kind {code} in {override}")
            table[code] = {**table[code], **values}
    problems = kind_problems(table)
    if problems:
        raise ConfigurationError(problems[0].reason)
    return kinds_from_table(table)


# -- the version in force ------------------------------------------------------------------------------------
# newest(conn, known_id) -> (the newest stored version's id, its text unless that id is known_id); None, None: none
Newest = Callable[[Connection, int | None], tuple[int | None, str | None]]


class _Following:
    """The database a process follows, and the kinds of its newest stored version as last looked up."""

    def __init__(self, engine: Engine, newest: Newest) -> None:
        self.engine, self.newest = engine, newest
        self.lock = threading.Lock()
        self.checked = -math.inf
        self.version: int | None = None
        self.kinds: dict[str, TaskKind] | None = None

    def current(self) -> dict[str, TaskKind] | None:
        """The stored kinds in force (None: none stored), looked up again once :data:`CHECK_EVERY` has passed."""
        if time.monotonic() - self.checked >= CHECK_EVERY and self.lock.acquire(blocking=False):
            try:
                with self.engine.connect() as conn:
                    version, body = self.newest(conn, self.version)
                    conn.commit()
                if version != self.version:
                    self.kinds = None if body is None else parse_kinds(body, f"#{version}")
                    self.version = version
            except (SQLAlchemyError, ConfigurationError) as exc:  # the request's own statements will say so
                log.warning("task kinds in force not looked up (%s): keeping what was known", type(exc).__name__)
            finally:
                self.checked = time.monotonic()
                self.lock.release()
        return self.kinds


_FOLLOWING: list[_Following] = []  # the one database this process follows, if any


def follow(engine: Engine | None, newest: Newest | None = None) -> None:
    """Make :func:`load_kinds` answer the version in force in ``engine``'s database, looked up with ``newest``
    (``matching.rule_versions.follow_versions`` passes it); ``None``: follow no database, use the files."""
    _FOLLOWING.clear()
    if engine is not None and newest is not None:
        _FOLLOWING.append(_Following(engine, newest))


def look_again() -> None:
    """Look up the version in force at the next :func:`load_kinds` (a version was just saved here)."""
    for following in _FOLLOWING:
        following.checked = -math.inf


def load_kinds(override: str | None = None) -> dict[str, TaskKind]:
    """The task kinds in force: the followed database's newest stored version, else the files (an explicit
    ``override`` file: always the files)."""
    if override is None and _FOLLOWING:
        stored = _FOLLOWING[0].current()
        if stored is not None:
            return stored
    return file_kinds(override)


def task_kind(code: str) -> TaskKind:
    """The kind ``code``, or a clear error naming the known ones."""
    kinds = load_kinds()
    if code not in kinds:
        raise InvalidRequest(f"未知任务类型 {code}，可选：{', '.join(kinds)} / unknown task kind {code}", "kind")
    return kinds[code]
