"""Task kinds with their default SLA and priority, from ``kinds.toml`` (and an operator's override file).

>>> kinds = load_kinds()
>>> kinds["lead_verification"].sla_minutes, kinds["home_visit"].needs_temperature
(120, True)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gis.errors import ConfigurationError, InvalidRequest

DEFAULT_FILE = Path(__file__).with_name("kinds.toml")
FIELDS = {"name": str, "name_en": str, "sla_minutes": int, "priority": int, "needs_temperature": bool}


@dataclass(frozen=True)
class TaskKind:
    code: str
    name: str
    name_en: str
    sla_minutes: int
    priority: int
    needs_temperature: bool


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"任务类型文件无法读取 / cannot read the task kinds file {path}: {exc}") from exc


def load_kinds(override: str | None = None) -> dict[str, TaskKind]:
    """The task kinds: defaults, then the override file (``NANHAI_TASK_KINDS`` when not given).

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


@lru_cache(maxsize=8)
def _load_kinds(override: str | None, _stamp: tuple[int, int] | None) -> dict[str, TaskKind]:
    table = _read(DEFAULT_FILE)
    if override:
        for code, values in _read(Path(override)).items():
            if code not in table:
                raise ConfigurationError(f"未知任务类型 {code} / unknown task kind {code} in {override}")
            table[code] = {**table[code], **values}
    kinds = {}
    for code, values in table.items():
        for field, kind in FIELDS.items():
            if not isinstance(values.get(field), kind):
                raise ConfigurationError(f"任务类型 {code} 的 {field} 缺失或类型错误 / task kind {code}: "
                                         f"{field} missing or not {kind.__name__}")
        if values["sla_minutes"] <= 0:
            raise ConfigurationError(f"任务类型 {code} 的时限必须为正 / task kind {code}: sla_minutes must be > 0")
        kinds[code] = TaskKind(code, **{f: values[f] for f in FIELDS})
    return kinds


def task_kind(code: str) -> TaskKind:
    """The kind ``code``, or a clear error naming the known ones."""
    kinds = load_kinds()
    if code not in kinds:
        raise InvalidRequest(f"未知任务类型 {code}，可选：{', '.join(kinds)} / unknown task kind {code}", "kind")
    return kinds[code]
