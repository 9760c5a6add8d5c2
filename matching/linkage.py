"""Probabilistic record linkage: records without an ID number linked to people, on Splink (Fellegi–Sunter).

A record that carries a valid ID number *is* its person (the HMAC of the number is the person key); it is never
re-linked. A record without one is compared with the identified records and with the other ID-less records on
name, phone, date of birth and home address, each pair scored by a Fellegi–Sunter model on Splink's in-process
DuckDB backend, and then, per ID-less record:

- its candidates are the identified people it was compared with; a person's score is his best record's, and the
  candidates compete: the probability that the record is person *j* is ``odds_j / (1 + sum of the odds)``, so a
  phone shared by a family picks none of them alone;
- at or above ``upper``: band ``auto``, linked to the best candidate;
- between ``lower`` and ``upper``: band ``review``, with a pair for each of its best candidates (up to three) for
  a reviewer, and meanwhile a provisional person, so that the record never drops out of the net;
- below ``lower``: band ``new``, a provisional person;
- a reviewer's decision overrides the score: ``same`` (band ``decided``) links the record to whoever the other
  record belongs to; ``different`` keeps it away from that person, or that provisional person, at any score.

ID-less records not linked to an identified person are clustered among themselves (pairs at or above ``upper``,
never across a ``different``); a cluster takes the provisional key of its oldest (smallest) record id, so the key
stays the same from one run to the next.

**The comparisons.** Names exactly or with one wrong or missing character (Chinese names have two to four, so
this is counted in characters, not bytes); dates of birth exactly or with one wrong digit; phones exactly or with
one wrong, dropped, extra or swapped digit; addresses exactly, by building (the room left out, or the same house
number and ending) or with one wrong character, after the province, city, district and town written in front
are taken off. Phone and address are one comparison ("household"): a family shares both, and adding them up as
independent evidence would make a brother's record look like his sibling's twice over.

**The weights are trained on the records** (:func:`train_model`, or :func:`link_records` without ``settings``):
u by random sampling of pairs of distinct identified people (known to be different people), m by expectation
maximisation on the ID-less records and their candidates, each comparison on the pairs that the two others make
near-certain matches (on phone alone, families would teach EM that a sibling is the same person with a typo).
Only the prior and the thresholds are chosen, on the benchmark (``benchmarks/linkage.py``, RESULTS.md): the prior
that an ID-less record is one given identified person is ``PRIOR_PEOPLE`` over their number.

**Candidates, near-linear.** Each ID-less record meets the records sharing one of the keys of ``BLOCKING_KEYS``
(two fields each, so that one typo in each of two fields still leaves a pair of keys intact), hashed into one
integer per rule; identified records sharing none are left out before Splink sees them, and no pair of two
identified records is ever formed. A phone-only record whose number nobody has meets the numbers one digit away.

>>> address_key("广东省佛山市南海区狮山镇罗村社区罗村一路35号6座502房")
'罗村社区罗村一路35号6座502房'
>>> building_key("罗村社区罗村一路35号6座502房")
'罗村社区罗村一路35号'

Nothing personal is logged: Splink's logger is kept at ERROR and its SQL never reaches a log.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from matching.addresses import FORMER_TOWNS, PREFIX_LEVELS

UPPER = 0.97
LOWER = 0.30
# The prior, chosen (Splink's EM does not save one): the probability that an ID-less record is one given
# identified person is PRIOR_PEOPLE over the number of identified people. Taken per call, from the records at hand;
# with it, the thresholds above were set on the benchmark (benchmarks/linkage.py, benchmarks/RESULTS.md).
PRIOR_PEOPLE = 100.0
# Random pairs of distinct identified people (known non-matches) for the u probabilities: twenty per person,
# within these bounds; the seed makes training repeatable. Five times as many pairs (and five times the EM sample
# below) gave the same precision and recall at 1M, for about twice the training time (benchmarks/RESULTS.md). With
# fewer than MIN_U_PEOPLE identified people (no pair of them), pairs of any records.
U_PAIRS_PER_PERSON = 20
U_MIN_PAIRS, U_MAX_PAIRS = 1e6, 4e6
MIN_U_PEOPLE = 2
TRAIN_SEED = 21
# EM on more ID-less records than this samples them (their identified candidates follow them).
TRAIN_MAX_UNIDENTIFIED = 20_000
# Each comparison's m is learnt by EM on the pairs that two other fields make near-certain matches: blocking on
# phone alone would mix families in, and EM would take a sibling for the same person with a typo in his name and
# in his date of birth. Fewer pairs than MIN_EM_PAIRS teach nothing.
EM_RULES = ((("phone", "birth"), "name"), (("phone", "name"), "birth"), (("name", "birth"), "household"))
MIN_EM_PAIRS = 200
# The m probabilities (the share of true matches at each level, best level first) that EM learnt on the
# benchmark's synthetic population (benchmarks/linkage.py, 1,000,000 records): used for a comparison only while
# the records are too few to learn its own, e.g. the first small list; such a model is not reported as trained,
# so the next match trains again. (The u probabilities are always learnt from the records at hand.)
FALLBACK_M = {
    "name": (0.93836, 0.06135, 0.00029),
    "birth": (0.97882, 0.021, 0.00018),
    "household": (0.46906, 0.30227, 0.0903, 0.09583, 0.03223, 0.0103),
}
REVIEW_CANDIDATES = 3
FIELDS = ("name", "phone", "birth", "address")
COMPARED = (*FIELDS, "address_building", "house_number", "phone_head", "phone_tail")
TOWNS = ("桂城", "九江", "西樵", "丹灶", "狮山", "大沥", "里水", *FORMER_TOWNS)

# Address keys (the same patterns in Python and in DuckDB's RE2): the province, city and district in front, then
# the town (today's or a former one, full or short), are taken off; the building key stops at the first 号 or 栋.
PREFIX_PATTERN = "^" + "".join(f"(?:{'|'.join(level)})?" for level in PREFIX_LEVELS)
# A town written short is taken off only when no community suffix follows it (沙头社区 is a community; 大沥大镇社区
# is 大镇社区 in 大沥): the character after it is put back (the replacement is group 1).
TOWN_PATTERN = "^(?:(?:" + "|".join(TOWNS) + ")(?:街道|镇)|(?:" + "|".join(TOWNS) + ")([^社村居委]))"
BUILDING_PATTERN = "^(.*?[号栋])"

logging.getLogger("splink").setLevel(logging.ERROR)


@dataclass
class LinkResult:
    """What :func:`link_records` found for the ID-less records.

    ``links``: one row per ID-less record: ``record_id``, ``person_key`` (an identified person's key, or the
    provisional key of its cluster), ``band`` ('auto' | 'decided' | 'review' | 'new'), ``score`` (the probability
    that the record is its best identified candidate, NaN when it has none), ``agreeing`` (the fields that agreed
    with that candidate, e.g. "phone,name").
    ``pairs``: the review queue: ``record_id``, ``other_record_id``, ``other_person_key``, ``score``,
    ``agreeing``, ``disagreeing``.
    ``settings``: the model (a JSON-able dict: Splink's settings with the learnt m and u), to store and pass back
    next time.
    ``trained``: whether this call trained it, fully: False when ``settings`` was given and used, and also when the
    records were too few to learn every m (a first small list: the model then borrows FALLBACK_M; not worth
    storing, the next match trains again).
    """

    links: pd.DataFrame
    pairs: pd.DataFrame
    settings: dict
    trained: bool


# -- the model -----------------------------------------------------------------------------------------------
# The costly distances are guarded by cheap tests they imply, so that the random pairs of training pass quickly:
# one wrong, dropped or swapped digit keeps the first six or the last four digits of a mobile number; one wrong or
# missing character keeps the first or the last character of a name, the first three or the last three of an
# address of six or more; one wrong digit keeps the year or the month and day of a date.
PHONE_TYPO = ("(phone_head_l = phone_head_r or phone_tail_l = phone_tail_r) "
              "and damerau_levenshtein(phone_l, phone_r) = 1")
NAME_TYPO = ("(left(name_l, 1) = left(name_r, 1) or right(name_l, 1) = right(name_r, 1)) "
             "and one_char_apart(name_l, name_r)")
BIRTH_TYPO = ("(left(birth_l, 4) = left(birth_r, 4) or right(birth_l, 5) = right(birth_r, 5)) "
              "and damerau_levenshtein(birth_l, birth_r) = 1")
ADDRESS_NEAR = ("(address_building_l = address_building_r "
                "or (house_number_l = house_number_r and right(address_l, 6) = right(address_r, 6)) "
                "or (abs(length(address_l) - length(address_r)) <= 1 "
                "and (left(address_l, 3) = left(address_r, 3) or right(address_l, 3) = right(address_r, 3)) "
                "and one_char_apart(address_l, address_r)))")
# DuckDB's levenshtein counts bytes (a wrong Chinese character is three), so one wrong, missing or extra
# character is tested on characters, by this macro (registered on every connection the model runs on).
ONE_CHAR_APART = """
create or replace macro one_char_apart(a, b) as (
  case when length(a) = length(b) then
         len(list_filter(range(1, length(a) + 1), lambda i: substr(a, i, 1) <> substr(b, i, 1))) = 1
       when length(a) = length(b) + 1 then
         list_bool_or(list_transform(range(1, length(a) + 1),
                                     lambda i: concat(substr(a, 1, i - 1), substr(a, i + 1)) = b))
       when length(b) = length(a) + 1 then
         list_bool_or(list_transform(range(1, length(b) + 1),
                                     lambda i: concat(substr(b, 1, i - 1), substr(b, i + 1)) = a))
       else false end)
"""
# Per field, on the columns Splink compares (name_l, name_r…): when it agrees (exactly or at a lower level), and
# when it cannot be compared (null on either side). The agreeing and disagreeing fields of a pair come from these.
AGREES = {
    "name": f"(name_l = name_r or ({NAME_TYPO}))",
    "phone": f"(phone_l = phone_r or ({PHONE_TYPO}))",
    "birth": f"(birth_l = birth_r or ({BIRTH_TYPO}))",
    "address": f"(address_l = address_r or {ADDRESS_NEAR})",
}
NULL = {field: f"({field}_l is null or {field}_r is null)" for field in FIELDS}


def _level(sql: str, label: str, null: bool = False) -> dict[str, Any]:
    level: dict[str, Any] = {"sql_condition": sql, "label_for_charts": label}
    if null:
        level["is_null_level"] = True
    return level


def _comparisons() -> list[dict[str, Any]]:
    """Name, birth, and phone with address together (see the module's docstring)."""
    phone_exact, phone_typo = "phone_l = phone_r", f"({PHONE_TYPO})"
    address_exact, address_near = "address_l = address_r", ADDRESS_NEAR
    return [
        {"output_column_name": "name", "comparison_description": "name: exact, one character wrong or missing",
         "comparison_levels": [
             _level(NULL["name"], "null", True),
             _level("name_l = name_r", "exact"),
             _level(NAME_TYPO, "one character"),
             _level("ELSE", "else")]},
        {"output_column_name": "birth", "comparison_description": "date of birth: exact, one digit wrong",
         "comparison_levels": [
             _level(NULL["birth"], "null", True),
             _level("birth_l = birth_r", "exact"),
             _level(BIRTH_TYPO, "one digit"),
             _level("ELSE", "else")]},
        {"output_column_name": "household", "comparison_description": "phone and address together",
         "comparison_levels": [
             _level(f"{NULL['phone']} and {NULL['address']}", "null", True),
             _level(f"{phone_exact} and ({address_exact} or {address_near})", "phone exact, address agrees"),
             _level(phone_exact, "phone exact"),
             _level(phone_typo, "phone one digit"),
             _level(address_exact, "address exact"),
             _level(address_near, "address near"),
             _level("ELSE", "else")]},
    ]


# Candidate pairs: each rule is an equi-join on its keys (near-linear), never between two identified records. A
# field with one typo still shares a key with its record: a phone keeps its first six or last four digits, a name
# its surname or the rest, an address its building once the room is dropped; each rule pairs two fields so that
# one typo in each of two fields is still found through the other two.
BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("phone",),
    ("name", "birth_year"),
    ("name", "house_number"),
    ("name", "phone_head"),
    ("name", "phone_tail"),
    ("birth", "name_head"),
    ("birth", "name_ends"),
    ("birth", "name_rest"),
    ("birth", "short_surname"),
    ("birth", "house_number"),
    ("birth", "phone_head"),
    ("birth", "phone_tail"),
    ("address_building", "surname"),
    ("address_building", "name_rest"),
    ("address_building", "phone_head"),
    ("address_building", "phone_tail"),
)
NOT_BOTH_IDENTIFIED = "not (l.identified and r.identified)"


def _rule(keys: tuple[str, ...]) -> str:
    return " and ".join([*(f"l.{k} = r.{k}" for k in keys), NOT_BOTH_IDENTIFIED])


# Blocking keys that are not compared as such, from the compared columns (a name's surname, the rest of it, its
# first two characters, its first and last; a two-character name's surname; the year of birth).
DERIVED_KEYS = {
    "surname": "left(name, 1)",
    "name_rest": "case when length(name) > 1 then substr(name, 2) end",
    "name_head": "case when length(name) > 2 then left(name, 2) end",
    "name_ends": "case when length(name) > 2 then left(name, 1) || right(name, 1) end",
    "short_surname": "case when length(name) = 2 then left(name, 1) end",
    "birth_year": "left(birth, 4)",
}


def _block_columns() -> str:
    """Each blocking rule's keys hashed into one integer column (``block_0``…), null when a key is: joining on one
    integer is several times faster than on two strings, and a hash collision only adds a pair, which is scored."""
    def key(name: str) -> str:
        return DERIVED_KEYS.get(name, name)

    return ", ".join(f"case when {' and '.join(f'{key(k)} is not null' for k in keys)} "
                     f"then hash({', '.join(key(k) for k in keys)}) end as block_{i}"
                     for i, keys in enumerate(BLOCKING_KEYS))


def _prediction_rules() -> list[dict[str, str]]:
    """The blocking rules as Splink would state them (kept in the settings to say how pairs are made; the pairs
    themselves are built by :func:`_block`, which also joins the phone variants)."""
    return [{"blocking_rule": f"l.block_{i} = r.block_{i} and {NOT_BOTH_IDENTIFIED}", "sql_dialect": "duckdb"}
            for i in range(len(BLOCKING_KEYS))]


def default_settings(prior: float = 1e-4) -> dict[str, Any]:
    """The model before training: comparisons, blocking rules, the prior."""
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "record_id",
        "probability_two_random_records_match": prior,
        "blocking_rules_to_generate_predictions": _prediction_rules(),
        "comparisons": _comparisons(),
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "em_convergence": 0.0001,
        "max_iterations": 25,
    }


# -- preparing the records -----------------------------------------------------------------------------------
def address_key(address: str) -> str:
    """The address without the province, city, district and town in front (written or not, alike)."""
    return re.sub(TOWN_PATTERN, r"\1", re.sub(PREFIX_PATTERN, "", address, count=1), count=1)


def building_key(key: str) -> str:
    """An address key up to its house or building number (the room left out)."""
    found = re.match(BUILDING_PATTERN, key)
    return found.group(1) if found else key


def _load(con: duckdb.DuckDBPyConnection, records: pd.DataFrame) -> None:
    """``__records``: the input and the keys the model compares and blocks on, computed in DuckDB (in parallel,
    no Python loop); empty strings become nulls."""
    columns = ["record_id", "identified", "person_key", *FIELDS]
    # through Arrow: pandas' Arrow-backed strings pass without a copy into Python objects
    con.register("__records_in", pa.Table.from_pandas(records[columns], preserve_index=False))
    con.execute(f"""
        create or replace temp table __records as
        with raw as (
            select cast(record_id as bigint) as record_id, cast(identified as boolean) as identified,
                   cast(person_key as varchar) as person_key,
                   nullif(cast(name as varchar), '') as name, nullif(cast(phone as varchar), '') as phone,
                   nullif(cast(birth as varchar), '') as birth,
                   nullif(regexp_replace(regexp_replace(cast(address as varchar), '{PREFIX_PATTERN}', ''),
                                         '{TOWN_PATTERN}', '\\1'), '') as address
            from __records_in),
        keyed as (
            select *,
                   left(address, least(coalesce(nullif(instr(address, '号'), 0), 100000),
                                       coalesce(nullif(instr(address, '栋'), 0), 100000))) as address_building
            from raw),
        compared as (
            select *,
                   nullif(regexp_extract(address_building, '([0-9]+)[号栋]', 1), '') as house_number,
                   case when length(phone) >= 8 then left(phone, 6) end as phone_head,
                   case when length(phone) >= 8 then right(phone, 4) end as phone_tail
            from keyed)
        select *, {_block_columns()} from compared
    """)
    con.unregister("__records_in")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection set up for the model: all cores, the macro its comparisons use."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    # without it DuckDB writes every table on one thread, in order (10x slower here); no result depends on order
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    con.execute(ONE_CHAR_APART)
    return con


def _linker(con: duckdb.DuckDBPyConnection, table: str, settings: dict[str, Any], blocked: str | None = None) -> Any:
    """A Splink linker on ``table`` with ``settings``, quiet, scoring the ``blocked`` pairs when given."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(table), settings, log_level=None, validate_settings=False)
    if blocked:
        linker.table_management.register_blocked_pairs_for_predict(db_api.register(blocked))
    return linker


def _phone_variants(con: duckdb.DuckDBPyConnection) -> None:
    """``__phone_variants``: for the ID-less records without a name (an operator's phone-only list) whose number
    no identified record has, every number one wrong, missing, extra or swapped digit away, so that a phone-only
    record with a typo still meets its person. (With a name, the name and half the number find him instead; and a
    number someone has exactly is his, not a neighbour's one digit away.)"""
    con.execute("""
        create or replace temp table __phone_variants as
        with u as (select record_id, phone from __records where not identified and name is null
                   and phone is not null and length(phone) between 8 and 13
                   and phone not in (select phone from __records where identified and phone is not null)),
        pos as (select unnest(range(1, 15)) as i),
        dig as (select cast(unnest(range(0, 10)) as varchar) as d),
        variants as (
            select record_id, phone, left(phone, i - 1) || d || substr(phone, i + 1) as variant
            from u, pos, dig where i <= length(phone)
            union all
            select record_id, phone, left(phone, i - 1) || d || substr(phone, i) from u, pos, dig
            where i <= length(phone) + 1
            union all
            select record_id, phone, left(phone, i - 1) || substr(phone, i + 1) from u, pos where i <= length(phone)
            union all
            select record_id, phone, left(phone, i - 1) || substr(phone, i + 1, 1) || substr(phone, i, 1)
                                     || substr(phone, i + 2)
            from u, pos where i < length(phone))
        select record_id, variant from variants where variant <> phone
    """)


def _select_candidates(con: duckdb.DuckDBPyConnection, source: str, target: str) -> None:
    """``target``: the ID-less records of ``source`` and the identified ones sharing a blocking key with one of
    them (the others can never be compared, so Splink never sees them)."""
    semi = "\n union all \n".join(
        [f"select i.record_id from {source} i semi join (select distinct block_{k} from {source} "
         f"where not identified and block_{k} is not null) u on i.block_{k} = u.block_{k} where i.identified"
         for k in range(len(BLOCKING_KEYS))]
        + [f"select i.record_id from {source} i semi join __phone_variants v on i.phone = v.variant "
           f"where i.identified"])
    con.execute(f"create or replace temp table __kept as select distinct record_id from ({semi})")
    con.execute(f"create or replace temp table {target} as select * from {source} where not identified union all "
                f"select s.* from {source} s semi join __kept k on s.record_id = k.record_id")


def _block(con: duckdb.DuckDBPyConnection) -> None:
    """``__blocked``: the candidate pairs (Splink's blocked-pairs table: match_key, join_key_l < join_key_r), each
    ID-less record with the identified candidates and the other ID-less records sharing a key with it, and the
    phone-only records with the numbers one digit away. Built here rather than by Splink's blocking so that no
    pair of two identified records is ever formed, and the phone variants can join."""
    con.execute("create or replace temp table __cu as select * from __candidates where not identified")
    parts = [f"select {k} as k, least(a.record_id, b.record_id) as l, greatest(a.record_id, b.record_id) as r "
             f"from __cu a join __candidates b on a.block_{k} = b.block_{k} "
             f"where b.identified or a.record_id < b.record_id" for k in range(len(BLOCKING_KEYS))]
    parts.append(f"select {len(BLOCKING_KEYS)} as k, least(v.record_id, b.record_id) as l, "
                 f"greatest(v.record_id, b.record_id) as r "
                 f"from __phone_variants v join __candidates b on b.phone = v.variant")
    con.execute(f"""
        create or replace temp table __blocked as
        select cast(min(k) as varchar) as match_key, l as join_key_l, r as join_key_r
        from ({' union all '.join(parts)}) group by l, r
    """)


# -- training --------------------------------------------------------------------------------------------------
def train_model(records: pd.DataFrame) -> dict[str, Any]:
    """Train the model on ``records`` (the columns of :func:`link_records`) and return it, ready to store and to
    pass to :func:`link_records` as ``settings``."""
    con = connect()
    try:
        _load(con, records)
        _phone_variants(con)
        _select_candidates(con, "__records", "__candidates")
        return _train(con)[0]
    finally:
        con.close()


def _train(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any], bool]:
    """u by random sampling among distinct identified people (pairs known to be different people); then m by EM on
    the pairs of ID-less records (sampled when many) with their candidates, each comparison on pairs the two
    others make near-certain matches (see EM_RULES). Returns the model and whether every m was learnt here (a
    comparison with too few pairs to learn from keeps FALLBACK_M)."""
    from splink.internals.exceptions import EMTrainingException

    # One record per identified person: pairs of them are known to be different people. (With fewer than two
    # identified people there is no such pair: every record then.)
    con.execute("create or replace temp table __u_source as select * from __records where identified "
                "qualify row_number() over (partition by person_key order by record_id) = 1")
    people = _count(con, "__u_source")
    if people < MIN_U_PEOPLE:
        con.execute("create or replace temp table __u_source as select * from __records")
        people = _count(con, "__u_source")
    linker = _linker(con, "__u_source", default_settings())
    sampled = min(U_MAX_PAIRS, max(U_MIN_PAIRS, U_PAIRS_PER_PERSON * people))
    linker.training.estimate_u_using_random_sampling(max_pairs=sampled, seed=TRAIN_SEED)
    with_u = linker.misc.save_model_to_json()
    # A level no sampled pair fell in (a one-digit phone typo between two people is that rare) gets the bound the
    # sample gives: at most one in the number of pairs drawn (at least a thousand: a handful of records bound
    # nothing).
    drawn = max(1000, min(sampled, people * (people - 1) // 2))
    for comparison in with_u["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level") and level.get("u_probability") is None:
                level["u_probability"] = 1.0 / drawn

    unidentified = _count(con, "__candidates", "not identified")
    table = "__candidates"
    if unidentified > TRAIN_MAX_UNIDENTIFIED:
        share = int(TRAIN_MAX_UNIDENTIFIED / unidentified * 1_000_000)
        con.execute(f"create or replace temp table __train_source as select * from __records "
                    f"where identified or hash(record_id + {TRAIN_SEED}) % 1000000 < {share}")
        _select_candidates(con, "__train_source", "__train")     # the phone variants add a few extra
        table = "__train"
    linker = _linker(con, table, with_u)
    learnt: dict[str, int] = {}       # comparison -> the pairs its m was learnt on
    for keys, comparison in EM_RULES:
        pairs = _count(con, f"{table} l join {table} r on l.record_id < r.record_id and {_rule(keys)}")
        if pairs < MIN_EM_PAIRS:
            continue
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(_rule(keys))
        except EMTrainingException:
            continue
        learnt[comparison] = pairs
    settings = dict(linker.misc.save_model_to_json())
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        for level, fallback in zip(levels, FALLBACK_M[name], strict=True):
            if name not in learnt:
                level["m_probability"] = fallback
            elif level.get("m_probability") is None:
                # a level no match fell in (a wholly different name where phone and birth agree): at most one in
                # the pairs EM saw, as for u
                level["m_probability"] = 1.0 / learnt[name]
    return settings, set(learnt) == {comparison for _, comparison in EM_RULES}


def _for_prediction(settings: dict[str, Any], people: int) -> dict[str, Any]:
    """The trained model with this code's blocking rules (the candidates were selected by them) and the prior for
    ``people`` identified people."""
    return dict(settings, probability_two_random_records_match=min(0.5, PRIOR_PEOPLE / max(1, people)),
                blocking_rules_to_generate_predictions=_prediction_rules())


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> int:
    row = con.execute(f"select count(*) from {table} where {where}").fetchone()
    return int(row[0]) if row else 0


# -- linking ---------------------------------------------------------------------------------------------------
def link_records(records: pd.DataFrame, decisions: pd.DataFrame | None = None, settings: dict | None = None,
                 upper: float = UPPER, lower: float = LOWER) -> LinkResult:
    """Link the ID-less records of ``records`` to identified people, send the uncertain to review, cluster the
    rest into provisional people; train the model first unless ``settings`` (a trained model) is given (with no
    ID-less record there is nothing to link nor to train on: ``trained`` stays False).

    ``records``: record_id (int64, unique, smaller = older), identified (bool), person_key (the person's key, or
    the record's provisional key), name, phone (digits), birth ('YYYY-MM-DD'), address (None or '' when missing).
    ``decisions``: record_id, other_record_id, decision ('same' | 'different'), the newest per pair; they
    override the scores. Identified records are never re-linked.
    """
    con = connect()
    try:
        _load(con, records)
        unidentified = con.execute("select record_id, person_key from __records where not identified "
                                   "order by record_id").df()
        trained = False
        if unidentified.empty:          # nothing to link (nor to train on)
            candidates, among = _no_candidates(), pd.DataFrame({"a": [], "b": [], "probability": []})
            settings = dict(settings or {})
        else:
            _phone_variants(con)
            _select_candidates(con, "__records", "__candidates")
            if not settings:
                settings, trained = _train(con)
            people = _count(con, "(select distinct person_key from __records where identified)")
            candidates, among = _scored_pairs(con, _predict(con, settings, people), upper)
    finally:
        con.close()
    links, pairs = assign(unidentified, candidates, among, _decisions(decisions, records), upper, lower)
    return LinkResult(links, pairs, settings, trained)


def _predict(con: duckdb.DuckDBPyConnection, settings: dict[str, Any], people: int) -> str:
    """Score the candidate pairs with the model (Splink's predict on the pairs of :func:`_block`); the name of
    the table of scored pairs."""
    _block(con)
    linker = _linker(con, "__candidates", _for_prediction(settings, people), blocked="__blocked")
    return str(linker.inference.predict(warning_mode="never").physical_name)


def _flag(field: str) -> str:
    return f"case when {NULL[field]} then null when {AGREES[field]} then 1 else 0 end"


def _scored_pairs(con: duckdb.DuckDBPyConnection, predicted: str, upper: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From Splink's scored pairs: each ID-less record's best record per identified person (the oldest among
    equals), with its match weight and the fields that agree (1), disagree (0) or cannot be compared (null); and
    the pairs of ID-less records at or above ``upper``."""
    sides = ", ".join(f"{s}.{c} as {c}_{s}" for c in COMPARED for s in "lr")
    flags = ", ".join(f"{_flag(f)} as {f}" for f in FIELDS)
    candidates = con.execute(f"""
        with oriented as (
            select case when a.identified then b.record_id else a.record_id end as record_id,
                   case when a.identified then a.record_id else b.record_id end as other_record_id,
                   case when a.identified then a.person_key else b.person_key end as other_person_key,
                   p.match_weight as weight
            from {predicted} p
            join __candidates a on a.record_id = p.record_id_l
            join __candidates b on b.record_id = p.record_id_r
            where a.identified <> b.identified),
        best as (
            select * from oriented
            qualify row_number() over (partition by record_id, other_person_key
                                       order by weight desc, other_record_id) = 1),
        compared as (
            select best.*, {sides} from best
            join __candidates l on l.record_id = best.record_id
            join __candidates r on r.record_id = best.other_record_id)
        select record_id, other_record_id, other_person_key, weight, {flags} from compared
        order by record_id, other_person_key
    """).df()
    among = con.execute(f"""
        select p.record_id_l as a, p.record_id_r as b, p.match_probability as probability
        from {predicted} p
        join __candidates l on l.record_id = p.record_id_l
        join __candidates r on r.record_id = p.record_id_r
        where not l.identified and not r.identified and p.match_probability >= {float(upper)}
    """).df()
    return candidates, among


def _no_candidates() -> pd.DataFrame:
    return pd.DataFrame({"record_id": pd.Series(dtype="int64"), "other_record_id": pd.Series(dtype="int64"),
                         "other_person_key": pd.Series(dtype=object), "weight": pd.Series(dtype=float),
                         **{f: pd.Series(dtype=float) for f in FIELDS}})


def _decisions(decisions: pd.DataFrame | None, records: pd.DataFrame) -> pd.DataFrame:
    """The decisions about ID-less records, between known records, with the other record's side: identified (and
    its person) or not."""
    columns = {"record_id": "int64", "other_record_id": "int64", "decision": object, "other_identified": bool,
               "other_person_key": object}
    if decisions is None or decisions.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    known = records.set_index("record_id")[["identified", "person_key"]]
    kept = decisions.loc[decisions["record_id"].isin(known.index) & decisions["other_record_id"].isin(known.index)
                         & decisions["decision"].isin(("same", "different")),
                         ["record_id", "other_record_id", "decision"]]
    kept = kept.astype({"record_id": "int64", "other_record_id": "int64"})
    other = known.reindex(kept["other_record_id"].to_numpy())
    kept["other_identified"] = other["identified"].to_numpy(dtype=bool)
    kept["other_person_key"] = other["person_key"].to_numpy(dtype=object)
    mine = known.reindex(kept["record_id"].to_numpy())["identified"].to_numpy(dtype=bool)
    return kept[~mine].reset_index(drop=True)


def posterior(candidates: pd.DataFrame) -> np.ndarray:
    """The probability that each record is each of its candidate people: ``odds_j / (1 + sum_k odds_k)`` over
    the record's candidates, from the match weights (log2 odds, prior included), computed stably. With one
    candidate it is Splink's match probability; a phone shared by two identified people gives each at most 1/2.

    >>> frame = pd.DataFrame({"record_id": [1, 1, 2], "weight": [10.0, 10.0, 10.0]})
    >>> posterior(frame).round(4).tolist()
    [0.4998, 0.4998, 0.999]
    """
    if candidates.empty:
        return np.array([], dtype=float)
    weight = candidates["weight"].to_numpy(dtype=float)
    top = candidates.groupby("record_id")["weight"].transform("max").to_numpy(dtype=float)
    relative = np.exp2(weight - top)
    total = pd.Series(relative).groupby(candidates["record_id"].to_numpy()).transform("sum").to_numpy()
    return relative / (np.exp2(-top) + total)


def _field_names(frame: pd.DataFrame, value: int) -> np.ndarray:
    """Per row, the comma-separated fields whose flag is ``value`` (1: agree, 0: disagree)."""
    out = np.full(len(frame), "", dtype=object)
    for field in ("phone", "name", "birth", "address"):
        hit = frame[field].to_numpy(dtype=float) == value
        out[hit] = np.where(out[hit] == "", field, out[hit] + "," + field)
    return out


def assign(unidentified: pd.DataFrame, candidates: pd.DataFrame, among: pd.DataFrame, decisions: pd.DataFrame,
           upper: float = UPPER, lower: float = LOWER) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bands, people and the review queue from the scored candidates: the part of :func:`link_records` after
    Splink. ``unidentified``: record_id, person_key (provisional); ``candidates``: record_id, other_record_id,
    other_person_key, weight, and per field 1 / 0 / null; ``among``: a, b, probability (pairs of ID-less records
    at or above ``upper``); ``decisions``: as :func:`_decisions` gives them. Returns ``links`` and ``pairs``."""
    ids = unidentified["record_id"].to_numpy(dtype=np.int64)
    different = decisions[decisions["decision"] == "different"]
    same = decisions[decisions["decision"] == "same"]
    # 'different' from an identified record bars its person; from an ID-less one, its cluster and its person.
    barred = set(zip(different.loc[different["other_identified"], "record_id"].tolist(),
                     different.loc[different["other_identified"], "other_person_key"].tolist(), strict=True))
    apart = list(zip(different.loc[~different["other_identified"], "record_id"].tolist(),
                     different.loc[~different["other_identified"], "other_record_id"].tolist(), strict=True))
    # 'same': the identified person of the other record, or whoever the other ID-less record belongs to.
    follows = {int(r): (bool(i), k, int(o)) for r, i, k, o in zip(
        same["record_id"], same["other_identified"], same["other_person_key"], same["other_record_id"], strict=True)}
    followers = np.array(list(follows), dtype=np.int64)
    for _ in range(len(apart) + 1):
        kept = candidates
        if barred:
            pair = pd.MultiIndex.from_arrays([candidates["record_id"], candidates["other_person_key"]])
            kept = candidates[~pair.isin(list(barred))]
        kept = kept.assign(score=posterior(kept))
        # the best candidate of each record; among equals the first (candidates come sorted by person key)
        best = kept.loc[kept.groupby("record_id", sort=False)["score"].idxmax()].set_index("record_id").reindex(ids)
        score = best["score"].to_numpy(dtype=float)
        band = np.where(score >= upper, "auto", np.where(score >= lower, "review", "new")).astype(object)
        linked = (band == "auto") & ~np.isin(ids, followers)
        person = dict(zip(ids[linked].tolist(), best["other_person_key"].to_numpy(dtype=object)[linked].tolist(),
                          strict=True))
        for _round in range(len(follows) + 1):      # chains of 'same', to a fixed point
            changed = False
            for rid, (identified, key, other) in follows.items():
                target = key if identified else person.get(other)
                if target is not None and person.get(rid) != target:
                    person[rid], changed = target, True
            if not changed:
                break
        # a 'different' between two ID-less records: the record may not follow the other to its person either
        new = {(rid, person[rid]) for rid, other in apart
               if rid in person and rid not in follows and person.get(other) == person[rid]} - barred
        if not new:
            break
        barred |= new
    decided = np.isin(ids, followers)
    band[decided] = "decided"
    # Provisional people: the records not linked to an identified person, clustered.
    free = ~np.isin(ids, np.array(list(person), dtype=np.int64))
    forced = [(rid, other) for rid, (identified, _, other) in follows.items() if not identified]
    smallest = _clusters(ids[free], among, forced, apart)
    provisional = dict(zip(ids.tolist(), unidentified["person_key"].tolist(), strict=True))
    keys = np.array([person[r] if r in person else provisional[smallest[r]] for r in ids.tolist()], dtype=object)
    # A decided record shows the score and fields of the person it was decided to (when he was a candidate).
    chosen = best.reset_index()
    if decided.any():
        target = pd.DataFrame({"record_id": ids[decided], "other_person_key": [person.get(int(r)) for r in
                                                                                ids[decided]]})
        found = target.merge(kept, on=["record_id", "other_person_key"], how="left")
        chosen.loc[decided, found.columns] = found.to_numpy()
    links = pd.DataFrame({"record_id": ids, "person_key": keys, "band": band,
                          "score": chosen["score"].to_numpy(dtype=float),
                          "agreeing": _field_names(chosen, 1)})
    queue = kept[kept["record_id"].isin(ids[band == "review"]) & (kept["score"] >= lower)]
    queue = queue.sort_values(["record_id", "score"], ascending=[True, False], kind="stable")
    queue = queue.groupby("record_id", sort=False).head(REVIEW_CANDIDATES).reset_index(drop=True)
    pairs = pd.DataFrame({"record_id": queue["record_id"].to_numpy(dtype=np.int64),
                          "other_record_id": queue["other_record_id"].to_numpy(dtype=np.int64),
                          "other_person_key": queue["other_person_key"].to_numpy(dtype=object),
                          "score": queue["score"].to_numpy(dtype=float),
                          "agreeing": _field_names(queue, 1), "disagreeing": _field_names(queue, 0)})
    return links, pairs


def _clusters(ids: np.ndarray, among: pd.DataFrame, forced: list[tuple[int, int]],
              apart: list[tuple[int, int]]) -> dict[int, int]:
    """Each of ``ids`` mapped to the smallest id of its cluster: the connected components of the strong pairs
    (``among``) and the 'same' decisions (``forced``) between them; a component that holds a 'different'
    decision (``apart``) is rebuilt greedily instead, decisions first and then the strongest pairs, never joining
    two groups across a 'different'."""
    if len(ids) == 0:
        return {}
    index = pd.Series(np.arange(len(ids)), index=ids)
    inside = among[among["a"].isin(index.index) & among["b"].isin(index.index)]
    forced = [(x, y) for x, y in forced if x in index.index and y in index.index]
    a = np.concatenate([index[inside["a"].to_numpy()].to_numpy(), [index[x] for x, _ in forced]]).astype(np.int64)
    b = np.concatenate([index[inside["b"].to_numpy()].to_numpy(), [index[y] for _, y in forced]]).astype(np.int64)
    strength = np.concatenate([inside["probability"].to_numpy(dtype=float), np.full(len(forced), 2.0)])
    n = len(ids)
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    enemies = [(int(index[x]), int(index[y])) for x, y in apart if x in index.index and y in index.index]
    conflicted = {int(label[x]) for x, y in enemies if label[x] == label[y]}
    if conflicted:
        parent = list(range(n))
        against: dict[int, set[int]] = {}
        for x, y in enemies:
            against.setdefault(x, set()).add(y)
            against.setdefault(y, set()).add(x)

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for k in np.argsort(-strength, kind="stable"):
            x, y = int(a[k]), int(b[k])
            if int(label[x]) not in conflicted:
                continue
            rx, ry = find(x), find(y)
            if rx == ry or any(find(e) == ry for e in against.get(rx, ())):
                continue
            parent[ry] = rx
            against.setdefault(rx, set()).update(against.get(ry, set()))
        label = label.copy()
        base = int(label.max()) + 1
        for i in range(n):
            if int(label[i]) in conflicted:
                label[i] = base + find(i)
    smallest = pd.Series(ids).groupby(label).transform("min").to_numpy()
    return dict(zip(ids.tolist(), smallest.tolist(), strict=True))
