"""Risk rules: turn a person's source records into one explainable four-colour code.

Rules are a TOML text: the versions saved from the rules page
(:mod:`matching.rule_versions`, the newest in force), else the file
``matching/rules.toml`` (``NANHAI_RULES`` to use another). Evaluation runs on
whole record tables at once (pandas), so no Python runs per person.

Every code carries its colour, reason, the rule id, the sources whose records
triggered it, when it was set (the earliest triggering report) and when it
expires (the latest triggering report + the rule's days). A manual override
(:class:`Override`) holds until it expires, whatever the rules say.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gis.errors import ConfigurationError

COLOURS = ("red", "yellow", "blue", "green")
RANK = {colour: rank for rank, colour in enumerate(COLOURS)}
DEFAULT_RULES = Path(__file__).resolve().parent / "rules.toml"


@dataclass(frozen=True)
class Rule:
    id: str
    colour: str
    keywords: tuple[str, ...]
    days: int
    reason: str


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default_reason: str
    source: str

    def ranked(self) -> list[Rule]:
        """Rules in precedence order: colour first, then file order."""
        return sorted(self.rules, key=lambda r: RANK[r.colour])


RULE_FIELDS = ("id", "colour", "keywords", "days", "reason")
TOP_FIELDS = ("default_reason", "rule")
MAX_DAYS = 366


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rules text: the rule (its place, 1-based, and id) and field, and why."""

    number: int | None  # None: the text as a whole (its syntax, a top-level key)
    rule: str | None
    field: str | None
    reason: str


def rule_problems(raw: dict) -> list[RuleProblem]:
    """Every problem of a parsed rules table, in the order of the text (empty when the rules are usable).

    >>> rule_problems({"rule": [{"id": "r", "colour": "purple", "keywords": ["a"], "days": 0}]})[0].reason
    '颜色须为 red、yellow 或 blue / colour must be red, yellow or blue'
    """
    problems: list[RuleProblem] = []
    for key in raw:
        if key not in TOP_FIELDS:
            problems.append(RuleProblem(None, None, key, f"未知设置 {key} / unknown setting {key!r}"))
    if "default_reason" in raw and not (isinstance(raw["default_reason"], str) and raw["default_reason"].strip()):
        problems.append(RuleProblem(None, None, "default_reason", "default_reason 须为非空文字 / default_reason "
                                                                  "must be a non-empty text"))
    items = raw.get("rule", [])
    if not isinstance(items, list) or not items:
        problems.append(RuleProblem(None, None, "rule", "至少需要一条 [[rule]]（否则人人绿码）/ at least one [[rule]] "
                                                        "is needed (without one everyone is green)"))
        return problems
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(RuleProblem(number, None, None, "规则须写成 [[rule]] 表 / a rule must be a [[rule]] table"))
            continue
        rule_id = item.get("id") if isinstance(item.get("id"), str) else None

        def problem(field: str, reason: str, number: int = number, rule_id: str | None = rule_id) -> None:
            problems.append(RuleProblem(number, rule_id, field, reason))

        for key in item:
            if key not in RULE_FIELDS:
                problem(key, f"未知字段 {key} / unknown field {key!r}")
        if not rule_id or not rule_id.strip():
            problem("id", "规则 id 缺失 / id missing")
        elif rule_id in seen:
            problem("id", f"规则 id {rule_id} 重复 / id repeated")
        if item.get("colour") not in ("red", "yellow", "blue"):
            problem("colour", "颜色须为 red、yellow 或 blue / colour must be red, yellow or blue")
        keywords = item.get("keywords")
        if not isinstance(keywords, list) or not keywords or \
                not all(isinstance(k, str) and k.strip() for k in keywords):
            problem("keywords", "keywords 须为非空文字的非空列表 / keywords must be a non-empty list of non-empty "
                                "texts")
        days = item.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= MAX_DAYS:
            problem("days", f"days 须为 1 到 {MAX_DAYS} 的整数 / days must be a positive whole number, at most "
                            f"{MAX_DAYS}")
        if "reason" in item and not (isinstance(item["reason"], str) and item["reason"].strip()):
            problem("reason", "reason 须为非空文字 / reason must be a non-empty text")
        if rule_id:
            seen.add(rule_id)
    return problems


def rules_from_table(raw: dict, source: str) -> RuleSet:
    """The rule set of a parsed rules table whose :func:`rule_problems` are none."""
    rules = tuple(Rule(item["id"], item["colour"], tuple(str(k).lower() for k in item["keywords"]), item["days"],
                       item.get("reason") or item["id"]) for item in raw["rule"])
    return RuleSet(rules, raw.get("default_reason", "no risk record in force"), source)


def parse_rules(body: str, source: str) -> RuleSet:
    """Read and check a rules text (the TOML of ``rules.toml``); a wrong one gives one message naming the first
    problem's rule and field. ``source`` names the text in messages (a file name, a stored version)."""
    try:
        raw = tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"规则无法读取 / cannot read rules {source}: {exc}") from exc
    problems = rule_problems(raw)
    if problems:
        first = problems[0]
        where = source if first.number is None else \
            f"{source} 第 {first.number} 条规则 / rule #{first.number} ({first.rule or '?'})"
        raise ConfigurationError(f"{where}: {first.reason}")
    return rules_from_table(raw, source)


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


def evaluate(records: pd.DataFrame, rules: RuleSet, now: pd.Timestamp,
             overrides: pd.DataFrame | None = None, people: pd.Index | None = None) -> pd.DataFrame:
    """One code per person.

    Parameters
    ----------
    records : columns ``person_key``, ``source``, ``category``, ``reported_at`` (UTC timestamps).
    overrides : columns ``person_key``, ``colour``, ``reason``, ``set_by``, ``set_at``, ``expires_at``.
    people : the distinct person keys of ``records``, in the order the result lists them; by default in
        the order of their first record. A caller that has factorised the keys already passes its own.

    Returns
    -------
    DataFrame indexed by person_key: ``colour``, ``reason``, ``rule_id``, ``sources`` (sorted,
    ``;``-joined), ``set_at``, ``expires_at`` (NaT for green).
    """
    if people is None:
        # factorize, not unique(): one hash pass over a million pyarrow-string keys (unique() hashes them alone)
        people = pd.Index(pd.factorize(records["person_key"])[1], name="person_key")
    category = records["category"].fillna("").str.lower()
    best_rank = np.full(len(records), len(rules.rules), dtype=np.int64)
    ranked = rules.ranked()
    for rank, rule in reversed(list(enumerate(ranked))):
        pattern = "|".join(map(_escape, rule.keywords))
        active = records["reported_at"] + pd.Timedelta(days=rule.days) > now
        best_rank[(category.str.contains(pattern, regex=True) & active).to_numpy()] = rank
    hits = records.assign(rank=best_rank)
    hits = hits[hits["rank"] < len(ranked)]
    never = pd.Series(pd.NaT, index=people, dtype="datetime64[us, UTC]")
    result = pd.DataFrame({"colour": "green", "reason": rules.default_reason, "rule_id": None, "sources": "",
                           "set_at": never.copy(), "expires_at": never.copy()}, index=people)
    if len(hits):
        top = hits.groupby("person_key")["rank"].transform("min")
        winners = hits[hits["rank"] == top]
        days = np.array([r.days for r in ranked])[winners["rank"].to_numpy()]
        winners = winners.assign(expires=winners["reported_at"] + pd.to_timedelta(days, unit="D"))
        grouped = winners.groupby("person_key")
        summary = pd.DataFrame({"rank": grouped["rank"].first(), "sources": _sources(winners),
                                "set_at": grouped["reported_at"].min(), "expires_at": grouped["expires"].max()})
        rank = summary["rank"].to_numpy()
        _assign(result, result.index.get_indexer(summary.index), {
            "colour": np.array([r.colour for r in ranked], dtype=object)[rank],
            "reason": np.array([r.reason for r in ranked], dtype=object)[rank],
            "rule_id": np.array([r.id for r in ranked], dtype=object)[rank],
            "sources": summary["sources"], "set_at": summary["set_at"], "expires_at": summary["expires_at"]})
    if overrides is not None and len(overrides):
        # get_indexer, not isin(result.index): pandas' isin over pyarrow strings walks all million keys in Python
        known = result.index.get_indexer(overrides["person_key"]) >= 0
        active = overrides[(overrides["expires_at"] > now).to_numpy() & known]
        active = active.sort_values("set_at").groupby("person_key").last()
        manual = {"colour": active["colour"], "rule_id": "override", "sources": "override",
                  "reason": "人工调整 / manual override: " + active["reason"] + "（" + active["set_by"] + "）",
                  "set_at": active["set_at"], "expires_at": active["expires_at"]}
        _assign(result, result.index.get_indexer(active.index), manual)
    return result


def _assign(result: pd.DataFrame, rows: np.ndarray, values: dict) -> None:
    """Set columns of the rows at positions ``rows``, values given in the same order (label look-ups in a
    million-person index would be repeated for every column)."""
    for column, value in values.items():
        value = value.to_numpy() if isinstance(value, pd.Series) else value
        result.iloc[rows, result.columns.get_loc(column)] = value


def _sources(winners: pd.DataFrame) -> pd.Series:
    """Each person's sources behind his code, sorted and ``;``-joined. Most persons have one, taken as it is;
    only the others go through the (Python-level) join."""
    pairs = winners[["person_key", "source"]].drop_duplicates().sort_values(["person_key", "source"])
    several = pairs["person_key"].duplicated(keep=False)
    one = pairs[~several].set_index("person_key")["source"]
    return pd.concat([one, pairs[several].groupby("person_key")["source"].agg(";".join)])


def _escape(keyword: str) -> str:
    import re

    return re.escape(keyword)
