"""``gridctl bench linkage``: people with ID numbers, noisy records without them, and how many the linkage finds.

A synthetic population of Nanhai residents (common Chinese surnames, given names of one or two characters, mobile
numbers, homes in the real towns and communities of the district) is drawn with a known truth. Most people are in
the **identified set**: a police-style list keyed by ID number (one record each, a tenth of them a second one from
another feed), with name, the date of birth read from the ID number, phone and address. **Records without an ID
number** (an operator's phone list, tip-offs, screening lists) are drawn from these people and from people who are
*not* in the identified set (they must become new people), at the fixed rates of :data:`RATES`, each an exact
share (rounded up):

- 5 % carry a phone and nothing else; of the others 15 % have no phone; 30 % of all have no date of birth, 40 %
  no address;
- 10 % of their phones have one wrong, dropped or adjacent-swapped digit (a third each), 1 % are another number;
- 5 % of their names have one wrong character, 1 % one missing character (three-character names);
- 2 % of their dates of birth have one wrong digit; 3 % of their addresses one wrong character; addresses are
  written in several styles (with or without 广东省佛山市南海区, the town in full, short or left out, the room
  left out);
- 10 % of them belong to people who are not in the identified set;
- 15 % of the people live in families sharing one phone and one home (couples, parents and children, siblings);
  siblings' given names differ by one character (欧阳嘉豪 / 欧阳嘉伟): they are different people, and an ID-less
  record of one linked to another counts as a wrong link;
- identified records: 2 % without a phone, 1 % with an older number, 2 % without an address.

The records go to :func:`matching.linkage.link_records` as the import would hand them over (record ids
``feed << 32 | row``, identified records keyed by an HMAC-like hex key, ID-less ones by a provisional key): first
:func:`matching.linkage.train_model`, then ``link_records`` with the trained settings (what every later match
pays, and what is timed as ``link_seconds``).

Figures, over the ID-less records (a record's person *is in the set* when he has an identified record):

- ``precision``: correct automatic links / all automatic links (band ``auto``);
- ``recall``: correct automatic links / ID-less records whose person is in the identified set;
- ``review_share``: records sent to review / all ID-less records; ``review_shows_true_person``: the share of them
  whose true person is among the candidates the reviewer is shown;
- ``exact_join_recall``: the recall of the exact ID-number join the matcher had before, on the same records: 0,
  since none of them carries an ID number (each would have been rejected);
- ``exact_fields_precision`` / ``exact_fields_recall``: a deterministic baseline linking a record when exactly one
  identified person agrees exactly on phone, or on name and birth, or on name and address;
- ``unlinkable_share``: the records of people in the set that share no identity with any of their person's
  identified records (no phone within a digit, no name within a character together with a birth or an address);
  ``recall_of_linkable``: the recall among the others;
- ``not_in_set_kept_apart``: the share of the records of people not in the set that are not linked; and the
  pairwise precision and recall of the provisional people formed among the records left unlinked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import grids
from matching import linkage

RATES: dict[str, float] = {
    "identified_share": 0.80,          # of all records, those with an ID number
    "identified_twice": 0.10,          # identified people with a second identified record (another feed)
    "not_in_set": 0.10,                # ID-less records whose person has no identified record
    "family_share": 0.15,              # people sharing a family phone and address
    "phone_typo": 0.10,                # ID-less phones with one wrong, dropped or swapped digit
    "phone_other": 0.01,               # ID-less phones that are another number altogether
    "name_wrong_char": 0.05,           # ID-less names with one wrong character
    "name_missing_char": 0.01,         # ID-less three-character names with one character missing
    "birth_missing": 0.30,             # ID-less records without a date of birth
    "birth_typo": 0.02,                # ID-less dates of birth with one wrong digit
    "phone_only": 0.05,                # ID-less records with a phone and nothing else (an operator's list)
    "phone_missing": 0.15,             # ID-less records without a phone (when a name with birth or address remains)
    "address_missing": 0.40,           # ID-less records without an address (the phone-only ones included)
    "address_typo": 0.03,              # ID-less addresses with one wrong character
    "identified_phone_missing": 0.02,  # identified records without a phone
    "identified_phone_old": 0.01,      # identified records with another (older) number
    "identified_address_missing": 0.02,  # identified records without an address
}

# The hundred commonest surnames, roughly by frequency in Guangdong (陈 李 黄 … first): drawn Zipf-like.
SURNAMES = ("陈李黄张梁林刘吴罗何郑王周谢杨赵冯邓许朱曾叶彭苏卢蔡潘麦钟徐胡余郭马孙高关区江廖方萧谭邱严霍"
            "莫袁杜温蒋韩唐欧古汤龙傅曹沈黎钱姚邝谢崔吕丁任孔石程范宋魏田董汪陆金毛戴龚伍赖洪易邹杜贺柯"
            "简庞岑甘詹")
# Characters of given names, commonest first (drawn Zipf-like; a generation character is one of them too).
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯健俊帆帅旭宁龙林欣佳子"
         "梓涵轩晨怡思雨博嘉婷雪琳晶颖倩慧鑫鹏飞峰波海亮志永春燕金国荣成东德家小晓振少锦耀泽冠铭荣炳"
         "坚展鸿达伦彬卓棠尧焕添发权祥钊灿培锐骏豪星朗诗韵晴彤雯琪珊蕾妍楠婉柔淑惠美玲燕凤秋月梅莉"
         "嘉永志伟俊文家浩明宏智")
GIVEN = "".join(dict.fromkeys(GIVEN))
MOBILE_HEADS = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                "156", "158", "159", "176", "177", "180", "181", "186", "187", "188", "189", "199")
PREFIXES = ("广东省佛山市南海区", "佛山市南海区", "南海区", "佛山南海", "")
ROADS = ("一路", "二路", "三路", "大道", "北路", "南路", "东街", "西街", "大街", "新村")
ROOMS = ("{}座{}房", "{}栋{}室", "{}座{}")
SEED = 2026


@dataclass
class LinkageSet:
    """The records handed to ``link_records`` and their truth."""

    records: pd.DataFrame      # the link_records input
    person: np.ndarray         # true person index of each record (aligned with ``records``)
    family: np.ndarray         # family index of each person (-1: lives alone)
    key_of: np.ndarray         # identified person key of each person ('' when not in the identified set)
    rates: dict[str, float]    # the rates as drawn (shares over the ID-less records)


def _zipf(rng: np.random.Generator, n: int, size: int, s: float = 1.0) -> np.ndarray:
    """``size`` indices in ``range(n)``, index ``i`` drawn with weight ``1 / (i + 1) ** s``."""
    weights = 1.0 / np.arange(1, n + 1) ** s
    return rng.choice(n, size=size, p=weights / weights.sum())


def _communities() -> pd.DataFrame:
    units = pd.read_csv(Path(grids.__file__).resolve().parent / "reference" / "nanhai_villages_nbs2023.csv",
                        dtype=str)
    units = units[units["park_community"] == "0"].reset_index(drop=True)
    units["stem"] = units["name_short"].str.replace(r"(社区|村)$", "", regex=True)
    units["town_short"] = units["town_name"].str.replace(r"(街道|镇)$", "", regex=True)
    return units


def _dates(rng: np.random.Generator, start: str, end: str, size: int) -> np.ndarray:
    lo, hi = np.datetime64(start), np.datetime64(end)
    days = rng.integers(0, int((hi - lo).astype(int)) + 1, size=size)
    return lo + days.astype("timedelta64[D]")


def _phones(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` distinct mobile numbers."""
    out: set[str] = set()
    result: list[str] = []
    while len(result) < size:
        heads = rng.choice(np.array(MOBILE_HEADS), size=size)
        tails = rng.integers(0, 10**8, size=size)
        for head, tail in zip(heads, tails, strict=True):
            phone = f"{head}{tail:08d}"
            if phone not in out:
                out.add(phone)
                result.append(phone)
    return np.array(result[:size], dtype=object)


def _people(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """``count`` people: names, births, phones, home addresses; 15 % of them in families sharing phone and home."""
    surname = np.array(list(SURNAMES), dtype=object)[_zipf(rng, len(SURNAMES), count, 0.9)]
    chars = np.array(list(GIVEN), dtype=object)
    one_char = rng.random(count) < 0.25
    g1 = chars[_zipf(rng, len(GIVEN), count, 0.7)]
    g2 = chars[_zipf(rng, len(GIVEN), count, 0.7)]
    g2[one_char] = ""
    birth = _dates(rng, "1940-01-01", "2015-12-31", count)
    family = np.full(count, -1, dtype=np.int64)

    # Families: sizes 2-4 (mean 3), together FAMILY_SHARE of the people. Members take consecutive indices (the
    # people are shuffled afterwards): a couple (the wife keeps her surname) or a single parent, then siblings.
    in_families = int(np.ceil(count * RATES["family_share"]))
    sizes = rng.choice([2, 3, 4], size=max(1, in_families // 2 + 1), p=[0.3, 0.4, 0.3])
    sizes = sizes[:int(np.searchsorted(np.cumsum(sizes), in_families)) + 1]   # at least the share
    while sizes.sum() > count:
        sizes = sizes[:-1]
    sibling = np.zeros(count, dtype=bool)
    at = 0
    for f, size in enumerate(sizes):
        members = range(at, at + int(size))
        kind = rng.random()
        parents = 2 if size == 4 or (size in (2, 3) and kind < 0.5) else 1
        if size == 2 and parents == 1:
            parents = 0                          # two siblings living together
        head = at
        for i in members:
            family[i] = f
        for j, i in enumerate(members):
            if j < parents:
                birth[i] = _dates(rng, "1950-01-01", "1985-12-31", 1)[0]
                if j == 1:
                    birth[i] = birth[head] + np.timedelta64(int(rng.integers(-1500, 1500)), "D")
            else:
                if j > 0:
                    surname[i] = surname[head]
                base = birth[head] if parents else _dates(rng, "1970-01-01", "2000-12-31", 1)[0]
                birth[i] = base + np.timedelta64(int(rng.integers(22 * 365, 35 * 365)) if parents
                                                 else int(rng.integers(0, 8 * 365)), "D")
        children = list(members)[parents:]
        if len(children) >= 2:
            sibling[children] = True
            # Siblings: the same generation character, the other one differs (one-character names: differ).
            generation = chars[_zipf(rng, len(GIVEN), 1, 0.7)][0]
            used: set[str] = set()
            for i in children:
                while True:
                    other = chars[_zipf(rng, len(GIVEN), 1, 0.7)][0]
                    if other != generation and other not in used:
                        break
                used.add(other)
                if one_char[children[0]]:
                    g1[i], g2[i] = other, ""
                else:
                    g1[i], g2[i] = generation, other
            later = np.sort(birth[children])
            for k, i in enumerate(children):                  # at least a year apart: no twins
                birth[i] = min(later[k] + np.timedelta64(400 * k, "D"), np.datetime64("2015-12-31"))
        at += int(size)
    birth = np.minimum(birth, np.datetime64("2015-12-31"))

    phone = _phones(rng, count)
    units = _communities()
    unit = rng.integers(0, len(units), size=count)
    road = np.array(ROADS, dtype=object)[rng.integers(0, len(ROADS), size=count)]
    number = rng.integers(1, 300, size=count)
    has_room = rng.random(count) < 0.7
    room = np.array([ROOMS[int(k)].format(int(b), int(r)) if h else ""
                     for k, b, r, h in zip(rng.integers(0, len(ROOMS), count), rng.integers(1, 12, count),
                                           rng.integers(101, 3300, count), has_room, strict=True)], dtype=object)
    # Family members share the head's phone and home.
    heads = np.where(family >= 0)[0]
    if len(heads):
        first = pd.Series(heads).groupby(family[heads]).transform("min").to_numpy()
        for column in (phone, unit, road, number, room):
            column[heads] = column[first]
    order = rng.permutation(count)
    family_ids = family[order]
    stem = units["stem"].to_numpy(dtype=object)
    return {
        "surname": surname[order], "given1": g1[order], "given2": g2[order],
        "birth": np.datetime_as_string(birth[order], unit="D").astype(object),
        "phone": phone[order], "family": family_ids, "sibling": sibling[order],
        "town": units["town_name"].to_numpy(dtype=object)[unit[order]],
        "town_short": units["town_short"].to_numpy(dtype=object)[unit[order]],
        "community": units["name_short"].to_numpy(dtype=object)[unit[order]],
        "street": (stem[unit] + road + number.astype(str).astype(object) + "号")[order],
        "room": room[order],
    }


def _write_addresses(rng: np.random.Generator, people: dict[str, np.ndarray], who: np.ndarray) -> np.ndarray:
    """The home addresses of people ``who`` as officials write them: prefix, town full/short/none, room or not."""
    n = len(who)
    prefix = np.array(PREFIXES, dtype=object)[rng.integers(0, len(PREFIXES), n)]
    style = rng.random(n)
    town = np.where(style < 0.6, people["town"][who], np.where(style < 0.8, people["town_short"][who], ""))
    room = np.where(rng.random(n) < 0.8, people["room"][who], "")
    return prefix + town + people["community"][who] + people["street"][who] + room


def _pick(rng: np.random.Generator, eligible: np.ndarray, rate: float, base: int | None = None) -> np.ndarray:
    """Exactly ``ceil(rate * base)`` of the ``eligible`` positions (``base``: how many are eligible, unless told),
    drawn at random, as a mask."""
    where = np.flatnonzero(eligible)
    count = min(len(where), int(np.ceil(rate * (len(where) if base is None else base) - 1e-9)))
    mask = np.zeros(len(eligible), dtype=bool)
    mask[rng.choice(where, size=count, replace=False)] = True
    return mask


def _one_char_wrong(rng: np.random.Generator, texts: np.ndarray, alphabet: str) -> np.ndarray:
    out = texts.copy()
    for k, text in enumerate(texts):
        i = int(rng.integers(len(text)))
        while True:
            c = alphabet[int(rng.integers(len(alphabet)))]
            if c != text[i]:
                break
        out[k] = text[:i] + c + text[i + 1:]
    return out


def _phone_typos(rng: np.random.Generator, phones: np.ndarray) -> np.ndarray:
    """One wrong, dropped or adjacent-swapped digit, a third each (a swap of two equal digits is moved on)."""
    out = phones.copy()
    for k, phone in enumerate(phones):
        kind = int(rng.integers(3))
        if kind == 0:
            out[k] = _one_char_wrong(rng, np.array([phone], dtype=object), "0123456789")[0]
        elif kind == 1:
            i = int(rng.integers(len(phone)))
            out[k] = phone[:i] + phone[i + 1:]
        else:
            starts = [i for i in range(len(phone) - 1) if phone[i] != phone[i + 1]]
            i = starts[int(rng.integers(len(starts)))]
            out[k] = phone[:i] + phone[i + 1] + phone[i] + phone[i + 2:]
    return out


def generate(records: int, seed: int = SEED) -> LinkageSet:
    """Draw ``records`` records (identified and ID-less, at :data:`RATES`) with their true people."""
    rng = np.random.default_rng(seed)
    n_unidentified = max(1, int(round(records * (1 - RATES["identified_share"]))))
    n_identified = records - n_unidentified
    people_in = max(1, int(round(n_identified / (1 + RATES["identified_twice"]))))
    people_out = max(1, int(round(n_unidentified * RATES["not_in_set"] * 0.8)))
    people = _people(rng, people_in + people_out)
    in_set = np.zeros(people_in + people_out, dtype=bool)
    in_set[:people_in] = True           # _people shuffled them: family members fall on both sides
    key_of = np.array([f"{i:016x}{(i * 2654435761) % 2**32:08x}" if in_set[i] else ""
                       for i in range(len(in_set))], dtype=object)
    name_of = people["surname"] + people["given1"] + people["given2"]

    # Identified records: every person in the set once, a tenth twice (same person, another feed).
    twice = rng.choice(people_in, size=n_identified - people_in, replace=False)
    ident = np.concatenate([np.arange(people_in), twice])
    ident_phone = people["phone"][ident].copy()
    older = rng.random(len(ident)) < RATES["identified_phone_old"]
    ident_phone[older] = _phones(rng, int(older.sum()) + 1)[:int(older.sum())]
    ident_phone[rng.random(len(ident)) < RATES["identified_phone_missing"]] = None
    ident_address = _write_addresses(rng, people, ident)
    ident_address[rng.random(len(ident)) < RATES["identified_address_missing"]] = None

    # ID-less records: from people in the set, and (a tenth) from people who are not. Each rate is an exact
    # share: of the records, or of the fields present.
    everyone = np.ones(n_unidentified, dtype=bool)
    outside = _pick(rng, everyone, RATES["not_in_set"])
    who = np.where(outside, people_in + rng.integers(0, people_out, n_unidentified),
                   rng.integers(0, people_in, n_unidentified))
    no_name = _pick(rng, everyone, RATES["phone_only"])
    no_phone = _pick(rng, ~no_name, RATES["phone_missing"], base=n_unidentified)
    no_birth = no_name | _pick(rng, ~no_name, RATES["birth_missing"] - RATES["phone_only"], base=n_unidentified)
    no_address = no_name | _pick(rng, ~no_name, RATES["address_missing"] - RATES["phone_only"], base=n_unidentified)
    # A record needs an identity (the import rejects it otherwise): a phone, or a name with birth or address.
    no_phone &= ~(no_birth & no_address)

    name = name_of[who].copy()
    wrong = _pick(rng, ~no_name, RATES["name_wrong_char"])
    name[wrong] = _one_char_wrong(rng, name[wrong], GIVEN + SURNAMES)
    three = np.array([len(x) == 3 for x in name], dtype=bool)
    missing = _pick(rng, ~no_name & three & ~wrong, RATES["name_missing_char"], base=int((~no_name).sum()))
    name[missing] = np.array([x[:i] + x[i + 1:] for x, i in zip(name[missing], rng.integers(0, 3, missing.sum()),
                                                                     strict=True)], dtype=object)
    name[no_name] = ""
    phone = people["phone"][who].copy()
    typo = _pick(rng, ~no_phone, RATES["phone_typo"])
    phone[typo] = _phone_typos(rng, phone[typo])
    other = _pick(rng, ~no_phone & ~typo, RATES["phone_other"], base=int((~no_phone).sum()))
    phone[other] = _phones(rng, int(other.sum()) + 1)[:int(other.sum())]
    phone[no_phone] = None
    birth = people["birth"][who].copy()
    birth_typo = _pick(rng, ~no_birth, RATES["birth_typo"])
    birth[birth_typo] = np.array([b[:i] + str((int(b[i]) + int(d)) % 10) + b[i + 1:]
                                  for b, i, d in zip(birth[birth_typo], rng.choice([6, 8, 9], birth_typo.sum()),
                                                     rng.integers(1, 9, birth_typo.sum()), strict=True)],
                                 dtype=object)
    birth[no_birth] = None
    address = _write_addresses(rng, people, who)
    a_typo = _pick(rng, ~no_address, RATES["address_typo"])
    address[a_typo] = _one_char_wrong(rng, address[a_typo], GIVEN)
    address[no_address] = None

    n_ident = len(ident)
    ident_ids = (np.int64(1) << 32) * (1 + (np.arange(n_ident) >= people_in)) + np.arange(n_ident)
    u_ids = (np.int64(3) << 32) + np.arange(n_unidentified)
    frame = pd.DataFrame({
        "record_id": np.concatenate([ident_ids, u_ids]).astype(np.int64),
        "identified": np.concatenate([np.ones(n_ident, bool), np.zeros(n_unidentified, bool)]),
        "person_key": np.concatenate([key_of[ident], np.array([f"~3-{i}" for i in range(n_unidentified)],
                                                               dtype=object)]),
        "name": np.concatenate([name_of[ident], name]),
        "phone": np.concatenate([ident_phone, phone]),
        "birth": np.concatenate([people["birth"][ident], birth]),
        "address": np.concatenate([ident_address, address]),
    })
    phones, names = int((~no_phone).sum()), int((~no_name).sum())
    drawn = {
        "not_in_set": float(outside.mean()),
        "phone_typo": float(typo.sum() / max(1, phones)),
        "phone_other": float(other.sum() / max(1, phones)),
        "name_wrong_char": float(wrong.sum() / max(1, names)),
        "name_missing_char": float(missing.sum() / max(1, names)),
        "birth_missing": float(no_birth.mean()),
        "birth_typo": float(birth_typo.sum() / max(1, int((~no_birth).sum()))),
        "address_typo": float(a_typo.sum() / max(1, int((~no_address).sum()))),
        "phone_only": float(no_name.mean()),
        "phone_missing": float(no_phone.mean()),
        "address_missing": float(no_address.mean()),
        "family_share": float((people["family"] >= 0).mean()),
        "sibling_share": float(people["sibling"].mean()),
        "family_share_of_records": float((people["family"][who] >= 0).mean()),
        "sibling_share_of_records": float(people["sibling"][who].mean()),
    }
    return LinkageSet(frame, np.concatenate([ident, who]), people["family"], key_of, drawn)


def _exact_fields_baseline(drawn: LinkageSet) -> tuple[float, float]:
    """A deterministic join: a record linked when exactly one identified person agrees exactly on phone, or on
    name and birth, or on name and address (its key); (precision, recall)."""
    rec = drawn.records
    key = rec["address"].fillna("").astype(str).str.replace(linkage.PREFIX_PATTERN, "", n=1, regex=True) \
        .str.replace(linkage.TOWN_PATTERN, r"\1", n=1, regex=True)
    frame = pd.DataFrame({"record_id": rec["record_id"], "identified": rec["identified"], "key": rec["person_key"],
                          "phone": rec["phone"], "name": rec["name"].where(rec["name"] != ""),
                          "birth": rec["birth"], "address": key.where(key != "")})
    ident, unid = frame[frame["identified"]], frame[~frame["identified"]]
    found = []
    for columns in (["phone"], ["name", "birth"], ["name", "address"]):
        left = unid.dropna(subset=columns)[["record_id", *columns]]
        right = ident.dropna(subset=columns)[[*columns, "key"]].drop_duplicates()
        found.append(left.merge(right, on=columns)[["record_id", "key"]])
    links = pd.concat(found).drop_duplicates()
    people = links.groupby("record_id")["key"].nunique()
    single = links[links["record_id"].isin(people[people == 1].index)].drop_duplicates("record_id")
    truth = pd.Series(drawn.key_of[drawn.person[~rec["identified"].to_numpy()]], index=unid["record_id"].to_numpy())
    right = (single["key"].to_numpy() == truth.reindex(single["record_id"].to_numpy()).to_numpy()).sum()
    return float(right / max(1, len(single))), float(right / max(1, (truth != "").sum()))


def _linkable(drawn: LinkageSet) -> np.ndarray:
    """Per ID-less record, whether it shares an identity with one of its person's identified records, as the
    model compares fields: phone (exact or one digit), or name (exact or one character) with birth or address."""
    rec = drawn.records
    unidentified = ~rec["identified"].to_numpy()
    con = linkage.connect()
    try:
        linkage._load(con, rec)                    # noqa: SLF001 - the model's own keys, on the same records
        con.register("__truth", pd.DataFrame({"record_id": rec["record_id"].to_numpy(), "person": drawn.person}))
        agrees = {f: linkage.AGREES[f] for f in linkage.FIELDS}
        sides = ", ".join(f"{s}.{c} as {c}_{s}" for c in linkage.COMPARED for s in "lr")
        found = con.execute(f"""
            select distinct record_id_l as record_id from (
                select l.record_id as record_id_l, {sides}
                from __records l join __truth tl on tl.record_id = l.record_id
                join __truth tr on tr.person = tl.person
                join __records r on r.record_id = tr.record_id
                where not l.identified and r.identified)
            where coalesce({agrees['phone']}, false)
               or (coalesce({agrees['name']}, false)
                   and (coalesce({agrees['birth']}, false) or coalesce({agrees['address']}, false)))
        """).df()
    finally:
        con.close()
    return np.isin(rec["record_id"].to_numpy()[unidentified], found["record_id"].to_numpy())


def _pairs_within(groups: pd.Series) -> int:
    sizes = groups.value_counts().to_numpy(dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def linkage_benchmark(records: int, seed: int = SEED, echo: Callable[[str], None] = print,
                      upper: float = linkage.UPPER, lower: float = linkage.LOWER) -> dict[str, Any]:
    """Draw ``records`` records, train the model on them, link them with it; the figures (see the module's
    docstring). The CLI prints them as JSON on the last line."""
    started = time.perf_counter()
    drawn = generate(records, seed)
    generate_s = time.perf_counter() - started
    rec = drawn.records
    unidentified = ~rec["identified"].to_numpy()
    echo(f"生成 {len(rec):,} 条记录（{int(unidentified.sum()):,} 条无身份证号）/ drew {len(rec):,} records "
         f"({int(unidentified.sum()):,} without an ID number) in {generate_s:.1f} s")

    started = time.perf_counter()
    settings = linkage.train_model(rec)
    train_s = time.perf_counter() - started
    echo(f"训练 / trained the model in {train_s:.1f} s")
    started = time.perf_counter()
    result = linkage.link_records(rec, settings=settings, upper=upper, lower=lower)
    link_s = time.perf_counter() - started
    echo(f"关联 / linked in {link_s:.1f} s (trained settings given)")

    links = result.links.set_index("record_id").reindex(rec["record_id"].to_numpy()[unidentified])
    truth = drawn.key_of[drawn.person[unidentified]]
    in_set = truth != ""
    band = links["band"].to_numpy(dtype=object)
    auto = band == "auto"
    right = auto & (links["person_key"].to_numpy(dtype=object) == truth)
    family = drawn.family[drawn.person[unidentified]]
    key_family = pd.Series(drawn.family[drawn.person[~unidentified]], index=rec["person_key"][~unidentified]) \
        .groupby(level=0).first()
    linked_family = key_family.reindex(links["person_key"].to_numpy()).to_numpy()
    wrong = auto & ~right
    family_wrong = wrong & (family >= 0) & (linked_family == family)
    linkable = _linkable(drawn)
    exact_precision, exact_recall = _exact_fields_baseline(drawn)
    # provisional people: pairs of unlinked records put together, against pairs of the same person
    free = np.isin(band, ("review", "new"))
    clusters = pd.Series(links["person_key"].to_numpy()[free])
    people = pd.Series(drawn.person[unidentified][free])
    together = _pairs_within(clusters)
    same = _pairs_within(people)
    both = _pairs_within(clusters + "|" + people.astype(str))
    # in review: whether the reviewer is shown the record's true person among its candidates
    in_review = pd.Series(truth[band == "review"], index=links.index[band == "review"])
    shown = result.pairs.assign(truth=in_review.reindex(result.pairs["record_id"].to_numpy()).to_numpy())
    shown_right = shown.loc[shown["other_person_key"] == shown["truth"], "record_id"].unique()
    review_right = np.isin(in_review.index.to_numpy(), shown_right)
    figures: dict[str, Any] = {
        "records": int(len(rec)),
        "identified_records": int((~unidentified).sum()),
        "unidentified_records": int(unidentified.sum()),
        "precision": round(float(right.sum() / max(1, auto.sum())), 5),
        "recall": round(float(right.sum() / max(1, in_set.sum())), 5),
        "review_share": round(float((band == "review").mean()), 5),
        "auto_share": round(float(auto.mean()), 5),
        "new_share": round(float((band == "new").mean()), 5),
        "exact_join_recall": 0.0,
        "exact_fields_precision": round(exact_precision, 5),
        "exact_fields_recall": round(exact_recall, 5),
        "unlinkable_share": round(float((in_set & ~linkable).sum() / max(1, in_set.sum())), 5),
        "recall_of_linkable": round(float((right & linkable).sum() / max(1, (in_set & linkable).sum())), 5),
        "wrong_links": int(wrong.sum()),
        "wrong_links_not_in_set": int((wrong & ~in_set).sum()),
        "wrong_links_to_family": int(family_wrong.sum()),
        "not_in_set_kept_apart": round(float((~auto[~in_set]).mean()) if (~in_set).any() else 1.0, 5),
        "review_shows_true_person": round(float(review_right.mean()) if len(review_right) else 1.0, 5),
        "review_of_people_in_set": round(float(in_set[band == "review"].mean()) if (band == "review").any() else 1.0,
                                         5),
        "provisional_pair_precision": round(both / together, 5) if together else 1.0,
        "provisional_pair_recall": round(both / same, 5) if same else 1.0,
        "upper": upper,
        "lower": lower,
        "prior_people": linkage.PRIOR_PEOPLE,
        "rates": {**RATES, **{f"drawn_{k}": round(v, 5) for k, v in drawn.rates.items()}},
        "seed": seed,
        "train_seconds": round(train_s, 2),
        "link_seconds": round(link_s, 2),
        "seconds": round(train_s + link_s, 2),
        "generate_seconds": round(generate_s, 2),
        "cpus": os.cpu_count(),
    }
    echo(f"精确率 / precision {figures['precision']:.4f}, 召回率 / recall {figures['recall']:.4f}, "
         f"待审 / review {figures['review_share']:.2%}; exact ID join recall 0 (none of these records has an ID "
         f"number); exact fields: precision {exact_precision:.4f}, recall {exact_recall:.4f}")
    return figures
