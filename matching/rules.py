"""Risk rules: turn a person's source records into one explainable four-colour code, and the verification
tasks the office asks for.

Rules are a TOML text: the versions saved from the rules page
(:mod:`matching.rule_versions`, the newest in force), else the file
``matching/rules.toml`` (``NANHAI_RULES`` to use another). Evaluation runs on
whole record tables at once (pandas), so no Python runs per person, except to
word the explanation of the persons a rule coded.

A rule holds on a record when its conditions (:mod:`matching.conditions`: the
category, the source, the person's age, his ID number's region, where he came
from and when, another rule's result; combined with all / any / not) hold on it
and its days have not run out: counted from the record's arrival date when the
rule says ``clock = "arrival"`` and the record has one, else from when the
record was registered. A rule may set a colour, request a task of a named kind
for the person's grid (once while it holds: :mod:`matching.repository`), or both.

Every code carries its colour, reason, the rule id, the sources whose records
triggered it, when it was set (the earliest triggering date) and when it
expires (the latest triggering date + the rule's days), and an explanation: the
conditions that held, the values that made them hold, and the date its days
count from. A manual override (:class:`Override`) holds until it expires,
whatever the rules say; it changes the colour, not the tasks a rule requests.

A colour rule may also ask for home observation (``observation_days``,
``checks_per_day``), with the checks set by the ``[observation]`` table
(:class:`ObservationSettings`): what :mod:`observation.policy` reads.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gis.errors import ConfigurationError
from matching.conditions import Condition, ConditionProblem, Facts, explain, holds, parse_condition

COLOURS = ("red", "yellow", "blue", "green")
RANK = {colour: rank for rank, colour in enumerate(COLOURS)}
DEFAULT_RULES = Path(__file__).resolve().parent / "rules.toml"
CLOCKS = ("registration", "arrival")
CONDITION_FIELDS = ("keywords", "all", "any")


@dataclass(frozen=True)
class Rule:
    """One rule: what must hold (``condition``), for how many ``days`` from which date (``clock``), and what it
    does: a ``colour``, a ``task`` (a task kind's code), or both."""

    id: str
    colour: str | None
    condition: Condition
    days: int
    reason: str
    clock: str = "registration"
    task: str | None = None
    observation_days: int | None = None  # a colour rule's home observation (:mod:`observation`): its length
    checks_per_day: int | None = None  # and the first N of ``[observation] check_times`` each day


@dataclass(frozen=True)
class ObservationSettings:
    """The ``[observation]`` table: the check times (minutes after Beijing midnight), the grace after a check's
    time before it is missed, how early a report counts for it, the fever threshold, the misses in a row that
    raise a home visit, and the silence after which a person is lost to follow-up (:mod:`observation.policy`)."""

    check_times: tuple[int, ...] = (8 * 60, 20 * 60)
    grace_minutes: int = 120
    opens_minutes: int = 240
    fever_at: float = 37.3
    missed_in_a_row_for_visit: int = 2
    lost_after_hours: int = 24


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default_reason: str
    source: str
    areas: dict[str, tuple[str, ...]] = field(default_factory=dict)  # an area list's name -> its regions
    observation: ObservationSettings = field(default_factory=ObservationSettings)

    def ranked(self) -> list[Rule]:
        """The colour rules in precedence order: colour first, then file order."""
        return sorted((r for r in self.rules if r.colour), key=lambda r: RANK[r.colour or "green"])

    def ordered(self) -> list[Rule]:
        """Every rule, each after the rules its conditions refer to (``rule = "id"``; the file is refused with a
        cycle)."""
        by_id = {r.id: r for r in self.rules}
        done: dict[str, Rule] = {}

        def visit(rule: Rule) -> None:
            if rule.id not in done:
                for other in sorted(rule.condition.rules()):
                    visit(by_id[other])
                done[rule.id] = rule

        for rule in self.rules:
            visit(rule)
        return list(done.values())

    def reads(self, kind: str) -> bool:
        """Whether a condition of some rule is of ``kind`` (the matcher opens dates of birth only for ``age_*``)."""
        return any(leaf.kind.startswith(kind) for r in self.rules for leaf in r.condition.leaves())


RULE_FIELDS = ("id", "colour", "task", *CONDITION_FIELDS, "days", "clock", "reason", "observation_days",
               "checks_per_day")
TOP_FIELDS = ("default_reason", "areas", "observation", "rule")
MAX_DAYS = 366
# [observation]'s settings: (lowest, highest) of each whole-number one, in the unit its name says
OBSERVATION_LIMITS = {"grace_minutes": (1, 720), "opens_minutes": (0, 720), "missed_in_a_row_for_visit": (1, 28),
                      "lost_after_hours": (1, 720)}
OBSERVATION_FIELDS = ("check_times", "fever_at", *OBSERVATION_LIMITS)
FEVER_LIMITS = (35.0, 42.0)


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rules text: the rule (its place, 1-based, and id) and field, and why."""

    number: int | None  # None: the text as a whole (its syntax, a top-level key)
    rule: str | None
    field: str | None
    reason: str


def _resolve(text: str) -> Any:
    from matching.regions import divisions

    return divisions().region(text)


def _task_codes() -> tuple[str, ...]:
    from tasks.kinds import shipped_codes

    return shipped_codes()


def _areas(raw: object, problems: list[RuleProblem]) -> dict[str, tuple[Any, ...]]:
    """The ``[areas]`` table: each name with its regions resolved (problems appended for the others)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(RuleProblem(None, None, "areas", "[areas] 须为“清单名 = [地区, …]”的表 / [areas] must be a "
                                                         "table of name = [regions, …]"))
        return {}
    areas: dict[str, tuple[Any, ...]] = {}
    for name, regions in raw.items():
        if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r.strip() for r in regions):
            problems.append(RuleProblem(None, None, "areas", f"地区清单 {name} 须为非空的地区名列表 / area list "
                                                             f"{name!r} must be a non-empty list of region names"))
            continue
        try:
            _resolve(name)
        except ConfigurationError:
            pass
        else:
            problems.append(RuleProblem(None, None, "areas", f"地区清单名 {name} 与地区同名，请换一个名字 / the area "
                                                             f"list {name!r} is named like a region: rename it"))
            continue
        resolved = []
        for text in regions:
            try:
                resolved.append(_resolve(text.strip()))
            except ConfigurationError as exc:
                problems.append(RuleProblem(None, None, "areas", f"地区清单 / area list {name}: {exc}"))
        areas[name] = tuple(resolved)
    return areas


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_time(text: object) -> int | None:
    """Minutes after midnight of an "HH:MM" text (None when it is not one)."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        return None
    hours, minutes = int(text[:2]), int(text[3:])
    return hours * 60 + minutes if hours < 24 and minutes < 60 else None


def _observation(raw: object, problems: list[RuleProblem]) -> ObservationSettings:
    """The ``[observation]`` table (the defaults of :class:`ObservationSettings` for what it leaves out); problems
    appended, naming the setting."""
    if raw is None:
        return ObservationSettings()

    def problem(name: str, reason: str) -> None:
        problems.append(RuleProblem(None, None, f"observation.{name}" if name else "observation", reason))

    if not isinstance(raw, dict):
        problem("", "[observation] 须为设置表 / [observation] must be a table of settings")
        return ObservationSettings()
    for key in raw:
        if key not in OBSERVATION_FIELDS:
            problem(key, f"未知观察设置 {key} / unknown observation setting {key!r}")
    values: dict[str, Any] = {}
    if "check_times" in raw:
        times = raw["check_times"]
        minutes = [_check_time(t) for t in times] if isinstance(times, list) else [None]
        if not minutes or None in minutes or minutes != sorted(set(m for m in minutes if m is not None)):
            problem("check_times", 'check_times 须为按时间先后、不重复的 "HH:MM"（北京时间）列表 / check_times must be '
                                   'a list of "HH:MM" (Beijing time), in order, none repeated')
        else:
            values["check_times"] = tuple(m for m in minutes if m is not None)
    for name, (low, high) in OBSERVATION_LIMITS.items():
        if name in raw:
            if not _whole(raw[name]) or not low <= raw[name] <= high:
                problem(name, f"{name} 须为 {low} 到 {high} 的整数 / {name} must be a whole number from {low} to "
                              f"{high}")
            else:
                values[name] = raw[name]
    if "fever_at" in raw:
        fever = raw["fever_at"]
        if isinstance(fever, bool) or not isinstance(fever, int | float) or \
                not FEVER_LIMITS[0] <= fever <= FEVER_LIMITS[1]:
            problem("fever_at", f"fever_at 须为 {FEVER_LIMITS[0]} 到 {FEVER_LIMITS[1]} 之间的体温（℃） / fever_at "
                                f"must be a temperature from {FEVER_LIMITS[0]} to {FEVER_LIMITS[1]} ℃")
        else:
            values["fever_at"] = float(fever)
    settings = ObservationSettings(**values)
    times = settings.check_times
    if times:  # a report may count for one check only: the windows of two checks (or days) must not meet
        gaps = [later - earlier for earlier, later in zip(times, (*times[1:], times[0] + 24 * 60), strict=True)]
        if settings.opens_minutes + settings.grace_minutes >= min(gaps):
            problem("grace_minutes", "opens_minutes 与 grace_minutes 之和须小于两次检查的间隔 / opens_minutes + "
                                     "grace_minutes must be less than the time between two checks")
    return settings


def _parse_table(raw: dict, source: str) -> tuple[RuleSet | None, list[RuleProblem]]:
    """The rule set of a parsed rules table and every problem of it, in the order of the text (the set is None
    when there is any)."""
    problems: list[RuleProblem] = []
    for key in raw:
        if key not in TOP_FIELDS:
            problems.append(RuleProblem(None, None, key, f"未知设置 {key} / unknown setting {key!r}"))
    if "default_reason" in raw and not (isinstance(raw["default_reason"], str) and raw["default_reason"].strip()):
        problems.append(RuleProblem(None, None, "default_reason", "default_reason 须为非空文字 / default_reason "
                                                                  "must be a non-empty text"))
    areas = _areas(raw.get("areas"), problems)
    observation = _observation(raw.get("observation"), problems)
    items = raw.get("rule", [])
    if not isinstance(items, list) or not items:
        problems.append(RuleProblem(None, None, "rule", "至少需要一条 [[rule]]（否则人人绿码） / at least one [[rule]] "
                                                        "is needed (without one everyone is green)"))
        return None, problems
    rules: list[Rule] = []
    numbers: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(RuleProblem(number, None, None, "规则须写成 [[rule]] 表 / a rule must be a [[rule]] table"))
            continue
        rule = _parse_rule(number, item, areas, set(numbers), problems, len(observation.check_times))
        if isinstance(item.get("id"), str) and item["id"].strip():
            numbers.setdefault(item["id"], number)
        if rule:
            rules.append(rule)
    problems.extend(_reference_problems(rules, numbers))
    if problems:
        return None, problems
    return RuleSet(tuple(rules), raw.get("default_reason", "no risk record in force"), source,
                   {name: tuple(raw["areas"][name]) for name in areas}, observation), []


def _parse_rule(number: int, item: dict, areas: dict[str, tuple[Any, ...]], seen: set[str],
                problems: list[RuleProblem], check_times: int = 2) -> Rule | None:
    rule_id = item.get("id") if isinstance(item.get("id"), str) else None
    before = len(problems)

    def problem(field: str, reason: str) -> None:
        problems.append(RuleProblem(number, rule_id, field, reason))

    for key in item:
        if key not in RULE_FIELDS:
            problem(key, f"未知字段 {key} / unknown field {key!r}")
    if not rule_id or not rule_id.strip():
        problem("id", "规则 id 缺失 / id missing")
    elif rule_id in seen:
        problem("id", f"规则 id {rule_id} 重复 / id repeated")
    colour, task = item.get("colour"), item.get("task")
    if colour is None and task is None:
        problem("colour", "规则须设颜色（colour）或任务（task），或两者 / a rule sets a colour, a task, or both")
    if colour is not None and colour not in ("red", "yellow", "blue"):
        problem("colour", "颜色须为 red、yellow 或 blue / colour must be red, yellow or blue")
    if task is not None and task not in _task_codes():
        problem("task", f"任务类型须为其一：{', '.join(_task_codes())} / task must be a task kind: "
                        f"{', '.join(_task_codes())}")
    given = [key for key in CONDITION_FIELDS if key in item]
    condition: Condition | None = None
    if len(given) != 1:
        problem(given[1] if len(given) > 1 else "keywords",
                "须有且只有一个 keywords、all 或 any / a rule needs exactly one of keywords, all or any")
    elif given[0] == "keywords":
        keywords = item["keywords"]
        if not isinstance(keywords, list) or not keywords or \
                not all(isinstance(k, str) and k.strip() for k in keywords):
            problem("keywords", "keywords 须为非空文字的非空列表 / keywords must be a non-empty list of non-empty "
                                "texts")
        else:
            condition = Condition("category", tuple(str(k).strip().lower() for k in keywords))
    else:
        found: list[ConditionProblem] = []
        condition = parse_condition({given[0]: item[given[0]]}, areas, _resolve, given[0], found)
        for p in found:
            problem(given[0], f"{p.where}: {p.reason}")
    days = item.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= MAX_DAYS:
        problem("days", f"days 须为 1 到 {MAX_DAYS} 的整数 / days must be a positive whole number, at most "
                        f"{MAX_DAYS}")
    clock = item.get("clock", "registration")
    if clock not in CLOCKS:
        problem("clock", "clock 须为 registration（登记时间）或 arrival（抵达日期，无则登记时间） / clock must be "
                         "registration or arrival (the arrival date, else the registration)")
    if "reason" in item and not (isinstance(item["reason"], str) and item["reason"].strip()):
        problem("reason", "reason 须为非空文字 / reason must be a non-empty text")
    observation_days, checks_per_day = item.get("observation_days"), item.get("checks_per_day")
    if observation_days is not None or checks_per_day is not None:
        if colour is None:
            problem("observation_days", "居家观察须由设颜色的规则要求 / only a colour rule can require observation")
        if observation_days is None:
            observation_days = 14
        elif not _whole(observation_days) or not 0 < observation_days <= MAX_DAYS:
            problem("observation_days", f"observation_days 须为 1 到 {MAX_DAYS} 的整数 / observation_days must be "
                                        f"a whole number from 1 to {MAX_DAYS}")
        if checks_per_day is None:
            checks_per_day = min(2, check_times)
        elif not _whole(checks_per_day) or not 0 < checks_per_day <= check_times:
            problem("checks_per_day", f"checks_per_day 须为 1 到 {check_times} 的整数（[observation] check_times 的"
                                      f"个数） / checks_per_day must be a whole number from 1 to {check_times} (the "
                                      "check_times of [observation])")
    if len(problems) > before or condition is None or rule_id is None or not isinstance(days, int):
        return None
    return Rule(rule_id, colour, condition, days, item.get("reason") or rule_id, clock, task, observation_days,
                checks_per_day)


def _reference_problems(rules: list[Rule], numbers: dict[str, int]) -> list[RuleProblem]:
    """Conditions ``rule = "id"`` naming no rule, or going round in a circle."""
    problems = []
    by_id = {r.id: r for r in rules}
    for rule in rules:
        for other in sorted(rule.condition.rules()):
            if other not in numbers:
                problems.append(RuleProblem(numbers[rule.id], rule.id, "rule", f"条件中的规则 {other} 不存在 / the "
                                                                               f"condition names no rule {other!r}"))
    for rule in rules:  # a cycle: following the references from a rule comes back to it
        stack, seen = list(rule.condition.rules()), set()
        while stack:
            other = stack.pop()
            if other == rule.id:
                problems.append(RuleProblem(numbers[rule.id], rule.id, "rule", "规则循环引用自身 / the rule refers "
                                                                               "back to itself"))
                break
            if other in by_id and other not in seen:
                seen.add(other)
                stack.extend(by_id[other].condition.rules())
    return problems


def rule_problems(raw: dict) -> list[RuleProblem]:
    """Every problem of a parsed rules table, in the order of the text (empty when the rules are usable).

    >>> rule_problems({"rule": [{"id": "r", "colour": "purple", "keywords": ["a"], "days": 1}]})[0].reason
    '颜色须为 red、yellow 或 blue / colour must be red, yellow or blue'
    """
    return _parse_table(raw, "")[1]


def rules_from_table(raw: dict, source: str) -> RuleSet:
    """The rule set of a parsed rules table whose :func:`rule_problems` are none."""
    rules, problems = _parse_table(raw, source)
    if rules is None:
        raise ConfigurationError(f"{source}: {problems[0].reason}")
    return rules


def parse_rules(body: str, source: str) -> RuleSet:
    """Read and check a rules text (the TOML of ``rules.toml``); a wrong one gives one message naming the first
    problem's rule and field. ``source`` names the text in messages (a file name, a stored version)."""
    try:
        raw = tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"规则无法读取 / cannot read rules {source}: {exc}") from exc
    rules, problems = _parse_table(raw, source)
    if rules is None:
        first = problems[0]
        where = source if first.number is None else \
            f"{source} 第 {first.number} 条规则 / rule #{first.number} ({first.rule or '?'})"
        field = f" · {first.field}" if first.field else ""
        raise ConfigurationError(f"{where}{field}: {first.reason}")
    return rules


def default_rules_path() -> Path:
    """The rules file in force when no version is stored: ``NANHAI_RULES``, else ``matching/rules.toml``."""
    return Path(os.environ.get("NANHAI_RULES") or DEFAULT_RULES)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and check a rules file; a wrong file gives one message naming the rule and field."""
    path = Path(path) if path else default_rules_path()
    try:
        body = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"规则文件无法读取 / cannot read rules file {path}: {exc}") from exc
    try:
        return parse_rules(body, path.name)
    except ConfigurationError as exc:
        if isinstance(exc.__cause__, tomllib.TOMLDecodeError):
            raise ConfigurationError(f"规则文件无法读取 / cannot read rules file {path}: {exc.__cause__}") from exc
        raise


@dataclass(frozen=True)
class Override:
    person_key: str
    colour: str
    reason: str
    set_by: str
    set_at: pd.Timestamp
    expires_at: pd.Timestamp


@dataclass(frozen=True)
class Assessment:
    """What the rules say of everyone: one code per person (``codes``, see :func:`evaluate`) and the tasks the
    task-requesting rules ask for (``requests``: person_key, rule_id, kind, reason, explanation, since — one row
    per person and rule that holds now)."""

    codes: pd.DataFrame
    requests: pd.DataFrame


REQUEST_COLUMNS = ("person_key", "rule_id", "kind", "reason", "explanation", "since")


def evaluate(records: pd.DataFrame, rules: RuleSet, now: pd.Timestamp,
             overrides: pd.DataFrame | None = None, people: pd.Index | None = None) -> pd.DataFrame:
    """One code per person: the codes of :func:`assess`.

    Parameters
    ----------
    records : columns ``person_key``, ``source``, ``category``, ``reported_at`` (UTC timestamps), and the columns
        the rules' conditions read (:class:`matching.conditions.Facts`).
    overrides : columns ``person_key``, ``colour``, ``reason``, ``set_by``, ``set_at``, ``expires_at``.
    people : the distinct person keys of ``records``, in the order the result lists them; by default in
        the order of their first record. A caller that has factorised the keys already passes its own.

    Returns
    -------
    DataFrame indexed by person_key: ``colour``, ``reason``, ``rule_id``, ``sources`` (sorted,
    ``;``-joined), ``set_at``, ``expires_at`` (NaT for green), ``explanation`` (None for green).
    """
    return assess(records, rules, now, overrides, people).codes


def assess(records: pd.DataFrame, rules: RuleSet, now: pd.Timestamp, overrides: pd.DataFrame | None = None,
           people: pd.Index | None = None, person: np.ndarray | None = None) -> Assessment:
    """Every rule on every record at ``now``: each person's code (the highest-ranked colour rule that holds for
    him; an override in force before all) and the task requests of the rules that ask for one.

    ``person``: each record's position in ``people``, when the caller has it (it factorised the keys)."""
    if people is None or person is None:
        codes, uniques = pd.factorize(records["person_key"])
        if people is None:
            people, person = pd.Index(uniques, name="person_key"), codes
        else:
            person = people.get_indexer(records["person_key"])
    person = np.asarray(person, dtype=np.int64)
    facts = Facts(records, person, len(people), now, _divisions_if(rules))
    reported = _micros(records["reported_at"])
    arrived = _micros(facts.arrived()) if any(r.clock == "arrival" for r in rules.rules) else None
    now_us = pd.Timestamp(now).value // 1000  # .value is in nanoseconds whatever the unit
    masks: dict[str, np.ndarray] = {}
    clocks: dict[str, np.ndarray] = {}
    for rule in rules.ordered():
        clock = reported if rule.clock == "registration" or arrived is None else \
            np.where(arrived == np.iinfo(np.int64).min, reported, arrived)
        active = clock + rule.days * 86_400_000_000 > now_us
        mask = holds(rule.condition, facts) & active
        masks[rule.id], clocks[rule.id] = mask, clock
        facts.held[rule.id] = facts.any_record(mask)
    result = _codes(records, rules, facts, masks, clocks, people)
    if overrides is not None and len(overrides):
        # get_indexer, not isin(result.index): pandas' isin over pyarrow strings walks all million keys in Python
        known = result.index.get_indexer(overrides["person_key"]) >= 0
        active = overrides[(overrides["expires_at"] > now).to_numpy() & known]
        active = active.sort_values("set_at").groupby("person_key").last()
        manual = {"colour": active["colour"], "rule_id": "override", "sources": "override",
                  "reason": "人工调整 / manual override: " + active["reason"] + "（" + active["set_by"] + "）",
                  "set_at": active["set_at"], "expires_at": active["expires_at"], "explanation": None}
        _assign(result, result.index.get_indexer(active.index), manual)
    return Assessment(result, _requests(rules, facts, masks, clocks, people))


def _micros(times: pd.Series) -> np.ndarray:
    """Times as whole microseconds since 1970 (NaT as the smallest int64), whatever unit they came in."""
    return pd.to_datetime(times, utc=True).array.as_unit("us").asi8


def _divisions_if(rules: RuleSet) -> Any:
    """The region table, when some condition names regions (it is read once per process)."""
    if rules.reads("origin") or rules.reads("id_region"):
        from matching.regions import divisions

        return divisions()
    return None


def _codes(records: pd.DataFrame, rules: RuleSet, facts: Facts, masks: dict[str, np.ndarray],
           clocks: dict[str, np.ndarray], people: pd.Index) -> pd.DataFrame:
    """Each person's code from the colour rules that hold (see :func:`assess`)."""
    ranked = rules.ranked()
    best_rank = np.full(len(records), len(ranked), dtype=np.int64)
    best_clock = np.zeros(len(records), dtype=np.int64)
    for rank, rule in reversed(list(enumerate(ranked))):
        best_rank[masks[rule.id]] = rank
        best_clock[masks[rule.id]] = clocks[rule.id][masks[rule.id]]
    never = pd.Series(pd.NaT, index=people, dtype="datetime64[us, UTC]")
    result = pd.DataFrame({"colour": "green", "reason": rules.default_reason, "rule_id": None, "sources": "",
                           "set_at": never.copy(), "expires_at": never.copy(), "explanation": None}, index=people)
    rows = np.flatnonzero(best_rank < len(ranked))
    if not len(rows):
        return result
    hits = pd.DataFrame({"person": facts.person[rows], "rank": best_rank[rows], "clock": best_clock[rows],
                         "row": rows, "source": records["source"].to_numpy(dtype=object)[rows]})
    hits = hits[hits["rank"] == hits.groupby("person")["rank"].transform("min")]
    days = np.array([r.days for r in ranked])[hits["rank"].to_numpy()]
    hits = hits.assign(expires=hits["clock"].to_numpy() + days * 86_400_000_000)
    grouped = hits.groupby("person")
    summary = pd.DataFrame({"rank": grouped["rank"].first(), "set_at": grouped["clock"].min(),
                            "expires_at": grouped["expires"].max(), "sources": _sources(hits)})
    # the record whose date the code's expiry counts from explains it
    latest = hits.sort_values(["person", "clock", "row"]).groupby("person")["row"].last()
    explanation = pd.Series(None, index=summary.index, dtype=object)
    for rank, rule in enumerate(ranked):
        chosen = latest[summary["rank"] == rank]
        if len(chosen):
            explanation[chosen.index] = _explanations(rule, facts, chosen.to_numpy(), clocks[rule.id])
    rank = summary["rank"].to_numpy()
    _assign(result, summary.index.to_numpy(), {
        "colour": np.array([r.colour for r in ranked], dtype=object)[rank],
        "reason": np.array([r.reason for r in ranked], dtype=object)[rank],
        "rule_id": np.array([r.id for r in ranked], dtype=object)[rank],
        "sources": summary["sources"], "set_at": pd.to_datetime(summary["set_at"].to_numpy(), unit="us", utc=True),
        "expires_at": pd.to_datetime(summary["expires_at"].to_numpy(), unit="us", utc=True),
        "explanation": explanation})
    return result


def _explanations(rule: Rule, facts: Facts, rows: np.ndarray, clock: np.ndarray) -> list[str]:
    """The explanation of ``rule`` on the records at ``rows``: its id, the conditions that held with their values,
    and the date its days count from ("中文 / English")."""
    zh, en = explain(rule.condition, facts, rows)
    arrived = _micros(facts.arrived())[rows] if rule.clock == "arrival" else None
    days = _local_days(clock[rows])
    texts = []
    for i, day in enumerate(days):
        by_arrival = arrived is not None and arrived[i] == clock[rows[i]]
        since_zh, since_en = ("抵达日期", "arrival on") if by_arrival else ("登记时间", "registration on")
        texts.append(f"{rule.id}：{zh[i]}；自{since_zh} {day} 起 {rule.days} 天 / {rule.id}: {en[i]}; "
                     f"{rule.days} days from {since_en} {day}")
    return texts


def _local_days(micros: np.ndarray) -> list[str]:
    """Times (microseconds since 1970, UTC) as the district's calendar days, 'YYYY-MM-DD' (no daylight saving in
    China: a fixed offset of eight hours)."""
    days = ((micros + 8 * 3_600_000_000) // 86_400_000_000).astype("datetime64[D]")
    return np.datetime_as_string(days, unit="D").tolist()


def _requests(rules: RuleSet, facts: Facts, masks: dict[str, np.ndarray], clocks: dict[str, np.ndarray],
              people: pd.Index) -> pd.DataFrame:
    """One row per person and task-requesting rule that holds for him (see :class:`Assessment`)."""
    frames = []
    for rule in rules.rules:
        if rule.task is None or not masks[rule.id].any():
            continue
        rows = np.flatnonzero(masks[rule.id])
        hits = pd.DataFrame({"person": facts.person[rows], "clock": clocks[rule.id][rows], "row": rows})
        grouped = hits.sort_values(["person", "clock", "row"]).groupby("person")
        chosen, since = grouped["row"].last(), grouped["clock"].min()
        frames.append(pd.DataFrame({
            "person_key": people[chosen.index.to_numpy()].to_numpy(dtype=object), "rule_id": rule.id,
            "kind": rule.task, "reason": rule.reason,
            "explanation": _explanations(rule, facts, chosen.to_numpy(), clocks[rule.id]),
            "since": pd.to_datetime(since.to_numpy(), unit="us", utc=True)}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[us, UTC]" if c == "since" else object)
                             for c in REQUEST_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _assign(result: pd.DataFrame, rows: np.ndarray, values: dict) -> None:
    """Set columns of the rows at positions ``rows``, values given in the same order (label look-ups in a
    million-person index would be repeated for every column)."""
    for column, value in values.items():
        value = value.to_numpy() if isinstance(value, pd.Series) else value
        result.iloc[rows, result.columns.get_loc(column)] = value


def _sources(winners: pd.DataFrame) -> pd.Series:
    """Each person's sources behind his code, sorted and ``;``-joined. Most persons have one, taken as it is;
    only the others go through the (Python-level) join."""
    pairs = winners[["person", "source"]].drop_duplicates().sort_values(["person", "source"])
    several = pairs["person"].duplicated(keep=False)
    one = pairs[~several].set_index("person")["source"]
    return pd.concat([one, pairs[several].groupby("person")["source"].agg(";".join)])
