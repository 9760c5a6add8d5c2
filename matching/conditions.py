"""The conditions of a risk rule, as the epidemic office writes them: on any field of a record or of its person,
combined with ``all`` / ``any`` / ``not``.

A condition is one TOML inline table with one key (the rules file, :mod:`matching.rules`):

==========================  ==============================================================  ==========
key                         holds when                                                      about
==========================  ==============================================================  ==========
``category = [..]``         the record's 类别 contains one of the keywords (any case)       the record
``source = [..]``           the department that sent the record contains one of the texts   the record
``origin = [..]``           where the record says he came from (出发地 / 来自 / 途经地) lies    the record
                            in one of the regions or named area lists
``arrived_within_days = N`` the record's arrival date is less than N days before now        the record
``arrived_after = D``       … is on or after the date D (a TOML date: 2020-01-10)           the record
``arrived_before = D``      … is before the date D                                         the record
``id_region = [..]``        the region code of his ID number (its first six digits: where   the person
                            it was issued) lies in one of the regions or area lists
``age_at_least = N``        his age now, from his date of birth, is at least N              the person
``age_below = N``           … is below N                                                   the person
``travel = true/false``     some record of his has (true) / none has (false) an origin or   the person
                            an arrival date
``rule = "id"``             the rule ``id`` holds for him now (its own conditions and days) the person
``all = [..]``              every condition of the list holds on the record                 —
``any = [..]``              at least one holds                                              —
``not = {..}``              the condition does not hold                                     —
==========================  ==============================================================  ==========

Conditions about the person hold on every record of his. Everything is computed on whole columns (numpy,
pandas, pyarrow): no Python runs per record, except to word the explanation of the persons a rule coded.

A region is named as :meth:`matching.regions.Divisions.region` reads it (湖北省, 湖北, 武汉市, 420500, a former
name); an area list is a name the rules file's ``[areas]`` table gives to a list of regions (``重点地区``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis.errors import ConfigurationError

LOCAL_ZONE = "Asia/Shanghai"  # an arrival date is a day of the district's calendar
TEXT_LISTS = ("category", "source")
REGION_LISTS = ("origin", "id_region")
DAY_COUNTS = ("arrived_within_days", "age_at_least", "age_below")
DATES = ("arrived_after", "arrived_before")
GROUPS = ("all", "any")
LEAVES = (*TEXT_LISTS, *REGION_LISTS, *DAY_COUNTS, *DATES, "travel", "rule")
KINDS = (*LEAVES, *GROUPS, "not")
MAX_AGE = 150
MAX_WITHIN_DAYS = 366
MAX_DEPTH = 8


# What each condition asks, with an example, for the rules page (key, example, Chinese, English).
HELP = (
    ("category", 'category = ["确诊", "密接"]', "类别含任一关键词", "the category contains a keyword"),
    ("source", 'source = ["卫健"]', "来源部门名称含任一文字", "the sending department contains a text"),
    ("origin", 'origin = ["重点地区", "温州市"]', "出发地（来自、途经地）在所列地区或地区清单内",
     "the origin lies in a region or area list"),
    ("arrived_within_days", "arrived_within_days = 14", "抵达日期在 N 天内", "arrived less than N days ago"),
    ("arrived_after", "arrived_after = 2020-01-10", "在该日及以后抵达（arrived_before：该日以前）",
     "arrived on or after the date (arrived_before: before it)"),
    ("id_region", 'id_region = ["湖北省", "420500"]', "身份证号地区码（籍贯）在所列地区内，按省、市、县任一级",
     "the ID number's region (native place) lies in the regions, at any level"),
    ("age_at_least", "age_at_least = 60", "年满 N 岁（age_below：未满 N 岁）", "aged N or over (age_below: under N)"),
    ("travel", "travel = false", "有（true）或无（false）出发地、抵达日期记录",
     "some record gives (true) or none gives (false) an origin or arrival date"),
    ("rule", 'rule = "red-confirmed"', "另一条规则对此人成立", "another rule holds for the person"),
    ("all / any / not", 'any = [{ origin = ["湖北"] }, { category = ["湖北"] }]',
     "全部成立 / 任一成立 / 不成立，可嵌套", "every one / at least one / not: nest them"),
)


@dataclass(frozen=True)
class Condition:
    """One node of a rule's condition tree: a leaf (``kind`` in :data:`LEAVES`, its ``value``) or a group
    (``all``, ``any``: ``children``; ``not``: one child). Regions come resolved, each with the label the rule
    wrote for it (an area list's name, or the region as written)."""

    kind: str
    value: Any = None
    children: tuple[Condition, ...] = ()

    def leaves(self) -> list[Condition]:
        """Every leaf of the tree."""
        if self.kind in LEAVES:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]

    def rules(self) -> set[str]:
        """The ids of the rules this tree refers to (``rule = "id"``)."""
        return {leaf.value for leaf in self.leaves() if leaf.kind == "rule"}


@dataclass(frozen=True)
class ConditionProblem:
    """Why a condition cannot be read: where it is in the rule (``all 第 2 项 / item 2 of all``) and why."""

    where: str
    reason: str


def parse_condition(raw: object, areas: dict[str, tuple[Any, ...]], resolve: Callable[[str], Any],
                    where: str, problems: list[ConditionProblem], depth: int = 0) -> Condition | None:
    """The condition of one inline table ``raw`` (see the module's table), or None with its problems appended.

    ``areas`` maps an area list's name to its resolved regions; ``resolve`` reads one region (raising
    :class:`ConfigurationError` with the reason when it cannot)."""
    def problem(reason: str) -> None:
        problems.append(ConditionProblem(where, reason))

    if depth > MAX_DEPTH:
        problem(f"条件嵌套超过 {MAX_DEPTH} 层 / conditions nested more than {MAX_DEPTH} deep")
        return None
    if not isinstance(raw, dict) or len(raw) != 1:
        problem("条件须是只有一个键的表，如 { category = [\"确诊\"] } / a condition is a table of one key, such as "
                "{ category = [\"confirmed\"] }")
        return None
    ((kind, value),) = raw.items()
    if kind not in KINDS:
        problem(f"未知条件 {kind}，可选：{', '.join(KINDS)} / unknown condition {kind!r}")
        return None
    if kind in GROUPS:
        if not isinstance(value, list) or not value:
            problem(f"{kind} 须为非空的条件列表 / {kind} must be a non-empty list of conditions")
            return None
        children = [parse_condition(item, areas, resolve, f"{where} · {kind}[{i}]", problems, depth + 1)
                    for i, item in enumerate(value, start=1)]
        return Condition(kind, children=tuple(children)) if all(children) else None  # type: ignore[arg-type]
    if kind == "not":
        child = parse_condition(value, areas, resolve, f"{where} · not", problems, depth + 1)
        return Condition("not", children=(child,)) if child else None
    if kind in TEXT_LISTS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            problem(f"{kind} 须为非空文字的非空列表 / {kind} must be a non-empty list of non-empty texts")
            return None
        return Condition(kind, tuple(v.strip().lower() for v in value))
    if kind in REGION_LISTS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            problem(f"{kind} 须为地区名、地区代码或地区清单名的非空列表 / {kind} must be a non-empty list of region "
                    "names, region codes or area list names")
            return None
        regions: list[tuple[str, Any]] = []
        for label in (v.strip() for v in value):
            if label in areas:
                regions.extend((label, region) for region in areas[label])
                continue
            try:
                regions.append((label, resolve(label)))
            except ConfigurationError as exc:
                problem(str(exc))
                return None
        return Condition(kind, tuple(regions))
    if kind in DAY_COUNTS:
        top = MAX_WITHIN_DAYS if kind == "arrived_within_days" else MAX_AGE
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= top:
            problem(f"{kind} 须为 1 到 {top} 的整数 / {kind} must be a whole number from 1 to {top}")
            return None
        return Condition(kind, value)
    if kind in DATES:
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            problem(f"{kind} 须为日期，如 2020-01-10（不加引号） / {kind} must be a date such as 2020-01-10 (no "
                    "quotes)")
            return None
        return Condition(kind, value)
    if kind == "travel":
        if not isinstance(value, bool):
            problem("travel 须为 true 或 false / travel must be true or false")
            return None
        return Condition(kind, value)
    if not isinstance(value, str) or not value.strip():  # rule
        problem("rule 须为另一条规则的 id / rule must be the id of another rule")
        return None
    return Condition(kind, value.strip())


# -- describing (the rules page, and a `not` in an explanation) ------------------------------------------------
def describe(condition: Condition) -> tuple[str, str]:
    """What a condition asks, in words (Chinese, English), without any record's values."""
    kind, value = condition.kind, condition.value
    if kind in GROUPS:
        zh, en = zip(*(describe(c) for c in condition.children), strict=True)
        joiner = ("且", " and ") if kind == "all" else ("或", " or ")
        return f"（{joiner[0].join(zh)}）", f"({joiner[1].join(en)})"
    if kind == "not":
        zh_child, en_child = describe(condition.children[0])
        return f"非{zh_child}", f"not {en_child}"
    if kind in REGION_LISTS:
        labels = "、".join(dict.fromkeys(label for label, _ in value))
        return ({"origin": "出发地在", "id_region": "身份证地区在"}[kind] + labels,
                {"origin": "origin in ", "id_region": "ID region in "}[kind] + labels.replace("、", ", "))
    if kind in TEXT_LISTS:
        word = {"category": ("类别含", "category contains "), "source": ("来源含", "source contains ")}[kind]
        return word[0] + "、".join(value), word[1] + ", ".join(value)
    words = {
        "arrived_within_days": (f"{value} 天内抵达", f"arrived within {value} days"),
        "arrived_after": (f"{value} 及以后抵达", f"arrived on or after {value}"),
        "arrived_before": (f"{value} 以前抵达", f"arrived before {value}"),
        "age_at_least": (f"年满 {value} 岁", f"aged {value} or over"),
        "age_below": (f"未满 {value} 岁", f"aged under {value}"),
        "travel": (("有出行记录", "has a travel record") if value else ("无出行记录", "no travel record")),
        "rule": (f"符合规则 {value}", f"under rule {value}"),
    }
    return words[kind]


# -- evaluating ------------------------------------------------------------------------------------------------
class Facts:
    """The columns conditions read, computed once per evaluation and only when a condition asks for them.

    ``records``: person_key, source, category, reported_at, and as far as the rules read them ``origin``,
    ``arrived_at`` (UTC time of the arrival day's local midnight, NaT when none), ``id_masked`` and
    ``identified`` (the ID region is the masked number's first six digits), ``birth`` (datetime64, NaT when
    unknown). ``person`` gives each record's person (a position among ``people`` persons). ``held`` holds,
    per rule id already evaluated, whether it holds for each person.
    """

    def __init__(self, records: pd.DataFrame, person: np.ndarray, people: int, now: pd.Timestamp,
                 divisions: Any) -> None:
        self.records, self.person, self.people, self.now, self.divisions = records, person, people, now, divisions
        self.held: dict[str, np.ndarray] = {}
        self._cache: dict[str, Any] = {}

    def cached(self, name: str, make: Callable[[], Any]) -> Any:
        """``make()``, made once per evaluation under ``name``."""
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    def text(self, column: str) -> pd.Series:
        """A text column in lower case, "" where missing."""
        return self.cached(f"text:{column}", lambda: self.records[column].fillna("").str.lower())

    def per_person(self, values: np.ndarray) -> np.ndarray:
        """A person's value on each of his records."""
        return values[self.person]

    def any_record(self, mask: np.ndarray) -> np.ndarray:
        """Per person: whether any of his records is in ``mask``."""
        return np.bincount(self.person[mask], minlength=self.people) > 0

    def origin_codes(self) -> np.ndarray:
        """Each record's origin as a region code (None when none is named or recognised)."""
        def make() -> np.ndarray:
            if "origin" not in self.records:
                return np.full(len(self.records), None, dtype=object)
            return np.asarray(self.divisions.place_all(self.records["origin"]), dtype=object)
        return self.cached("origin", make)

    def id_regions(self) -> np.ndarray:
        """Each person's ID region code (six digits; None for a person known by no ID number), per person."""
        def make() -> np.ndarray:
            codes = np.full(self.people, None, dtype=object)
            if "id_masked" not in self.records:  # records known by no ID number
                return codes
            masked = pa.array(self.records["id_masked"], type=pa.string(), from_pandas=True)
            head = pc.utf8_slice_codeunits(masked, 0, 6)
            digits = pc.match_substring_regex(head, r"^\d{6}$")
            identified = self.records["identified"].to_numpy(dtype=bool) if "identified" in self.records else \
                np.ones(len(self.records), dtype=bool)
            usable = pc.fill_null(digits, False).to_numpy(zero_copy_only=False) & identified
            codes[self.person[usable]] = head.to_numpy(zero_copy_only=False)[usable]
            return codes
        return self.cached("id_region", make)

    def ages(self) -> np.ndarray:
        """Each person's age in whole years at ``now`` (-1 when his date of birth is unknown), per person."""
        def make() -> np.ndarray:
            if "birth" not in self.records:
                raise ValueError("rules with an age condition need the records' dates of birth (column 'birth')")
            birth = pd.to_datetime(self.records["birth"], errors="coerce")
            known = birth.notna().to_numpy()
            today = self.now.tz_convert(LOCAL_ZONE) if self.now.tzinfo else self.now
            years = np.full(len(birth), -1, dtype=np.int64)
            b = birth[known]
            before_birthday = (b.dt.month.to_numpy() * 100 + b.dt.day.to_numpy()) > today.month * 100 + today.day
            years[known] = today.year - b.dt.year.to_numpy() - before_birthday
            ages = np.full(self.people, -1, dtype=np.int64)
            np.maximum.at(ages, self.person[known], years[known])
            return ages
        return self.cached("age", make)

    def arrived(self) -> pd.Series:
        """Each record's arrival (UTC time of the day's local midnight; NaT when none)."""
        def make() -> pd.Series:
            if "arrived_at" not in self.records:
                return pd.Series(pd.NaT, index=self.records.index, dtype="datetime64[us, UTC]")
            return pd.to_datetime(self.records["arrived_at"], utc=True)
        return self.cached("arrived", make)

    def travels(self) -> np.ndarray:
        """Per person: whether any record of his has an origin or an arrival date."""
        def make() -> np.ndarray:
            has = self.arrived().notna().to_numpy()
            if "origin" in self.records:
                has = has | (self.text("origin") != "").to_numpy()
            return self.any_record(has)
        return self.cached("travel", make)


def _local_midnight(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize(LOCAL_ZONE).tz_convert("UTC")


def _within(divisions: Any, codes: np.ndarray, regions: tuple[tuple[str, Any], ...]) -> np.ndarray:
    found = np.zeros(len(codes), dtype=bool)
    for _label, region in regions:
        found |= np.asarray(divisions.within(codes, region), dtype=bool)
    return found


def holds(condition: Condition, facts: Facts) -> np.ndarray:
    """Whether ``condition`` holds on each record (a bool array over ``facts.records``); computed once per
    evaluation (explaining asks again)."""
    return facts.cached(f"holds:{id(condition)}", lambda: _holds(condition, facts))


def _holds(condition: Condition, facts: Facts) -> np.ndarray:
    kind, value = condition.kind, condition.value
    if kind == "all":
        result = np.ones(len(facts.records), dtype=bool)
        for child in condition.children:
            result &= holds(child, facts)
        return result
    if kind == "any":
        result = np.zeros(len(facts.records), dtype=bool)
        for child in condition.children:
            result |= holds(child, facts)
        return result
    if kind == "not":
        return ~holds(condition.children[0], facts)
    if kind in TEXT_LISTS:
        import re

        return facts.text(kind).str.contains("|".join(map(re.escape, value)), regex=True).to_numpy(dtype=bool)
    if kind == "origin":
        return _within(facts.divisions, facts.origin_codes(), value)
    if kind == "id_region":
        return facts.per_person(_within(facts.divisions, facts.id_regions(), value))
    if kind == "arrived_within_days":
        arrived = facts.arrived()
        return ((arrived > facts.now - pd.Timedelta(days=value)) & (arrived <= facts.now)).to_numpy(dtype=bool)
    if kind == "arrived_after":
        return (facts.arrived() >= _local_midnight(value)).to_numpy(dtype=bool)
    if kind == "arrived_before":
        return (facts.arrived() < _local_midnight(value)).to_numpy(dtype=bool)
    if kind == "age_at_least":
        return facts.per_person(facts.ages() >= value)
    if kind == "age_below":
        ages = facts.ages()
        return facts.per_person((ages >= 0) & (ages < value))
    if kind == "travel":
        travels = facts.travels()
        return facts.per_person(travels if value else ~travels)
    return facts.per_person(facts.held[value])  # rule


# -- explaining ------------------------------------------------------------------------------------------------
def explain(condition: Condition, facts: Facts, rows: np.ndarray) -> tuple[list[str], list[str]]:
    """For the records at ``rows`` (on which ``condition`` holds), the conditions that held there and the values
    that made them hold, in Chinese and in English: one text per record. Personal values are not shown: an ID
    region is named by its region, an age by its years."""
    zh, en = _explained(condition, facts, rows)
    return ["；".join(parts) for parts in zh], ["; ".join(parts) for parts in en]


def _explained(condition: Condition, facts: Facts, rows: np.ndarray) -> tuple[list[list[str]], list[list[str]]]:
    kind = condition.kind
    if kind in GROUPS:
        zh: list[list[str]] = [[] for _ in rows]
        en: list[list[str]] = [[] for _ in rows]
        for child in condition.children:
            if kind == "any":
                held = holds(child, facts)[rows]
                child_zh, child_en = _explained(child, facts, rows[held])
                for at, i in enumerate(np.flatnonzero(held)):
                    zh[i].extend(child_zh[at])
                    en[i].extend(child_en[at])
                continue
            child_zh, child_en = _explained(child, facts, rows)
            for row in range(len(rows)):
                zh[row].extend(child_zh[row])
                en[row].extend(child_en[row])
        return zh, en
    if kind == "not":
        words_zh, words_en = describe(condition)
        return [[words_zh] for _ in rows], [[words_en] for _ in rows]
    values_zh, values_en = _values(condition, facts, rows)
    return [[v] for v in values_zh], [[v] for v in values_en]


def _region_label(divisions: Any, code: str | None, regions: tuple[tuple[str, Any], ...]) -> tuple[str, str]:
    """The region a code names and the label (area list or region) that it lies in."""
    label = next((label for label, region in regions
                  if code is not None and bool(divisions.within(np.array([code], dtype=object), region)[0])), "")
    name = divisions.region(code).full_name if code is not None and len(code) < 6 else divisions.name_of(code or "")
    return name or (code or ""), label


def _values(condition: Condition, facts: Facts, rows: np.ndarray) -> tuple[list[str], list[str]]:
    kind, value = condition.kind, condition.value
    if kind in TEXT_LISTS:
        texts = facts.records[kind].iloc[rows].to_numpy(dtype=object)
        shown = [str(t)[:30] for t in texts]
        word = {"category": ("类别", "category"), "source": ("来源", "source")}[kind]
        return [f"{word[0]}「{t}」" for t in shown], [f"{word[1]} “{t}”" for t in shown]
    if kind in REGION_LISTS:
        codes = facts.origin_codes()[rows] if kind == "origin" else facts.id_regions()[facts.person[rows]]
        word = {"origin": ("出发地", "origin"), "id_region": ("身份证地区", "ID region")}[kind]
        # a region named once per distinct code (a million records come from a few thousand places)
        distinct: dict[str | None, tuple[str, str]] = {}
        named = [distinct.get(code) or distinct.setdefault(code, _region_label(facts.divisions, code, value))
                 for code in codes]
        return ([f"{word[0]} {name}（属{label}）" if label != name else f"{word[0]} {name}" for name, label in named],
                [f"{word[1]} {name} (in {label})" if label != name else f"{word[1]} {name}" for name, label in named])
    if kind in ("arrived_within_days", *DATES):
        days = facts.arrived().iloc[rows].dt.tz_convert(LOCAL_ZONE).dt.strftime("%Y-%m-%d").tolist()
        return [f"抵达日期 {d}" for d in days], [f"arrived {d}" for d in days]
    if kind in ("age_at_least", "age_below"):
        ages = facts.ages()[facts.person[rows]]
        return [f"年龄 {a} 岁" for a in ages], [f"aged {a}" for a in ages]
    words = describe(condition)
    return [words[0]] * len(rows), [words[1]] * len(rows)
