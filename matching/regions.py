"""China's administrative regions: the province, prefecture or county a rule names, an ID number's region code,
and where a free text from a travel list lies.

The table is the NBS 2023 edition of provinces (31), prefecture-level units (342) and county-level units (2,978)
shipped in ``matching/reference/china_divisions_nbs2023/``. Their codes are the first 2, 4 and 6 digits of an
18-digit ID number, so a region *holds* every code that starts with its own. An ID number keeps the code of where
and when it was issued: a county merged since is absent from the table and is read at its prefecture or province,
and a short hand-made table (``reference/former_divisions.csv``) gives former names and codes still in use:

=========  ======================================================================================================
change     what a former name means
=========  ======================================================================================================
renamed    the same code under a new name (襄樊市 → 襄阳市, 4206): the former name is today's region
recoded    the same land under a new code (郧县 420321 → 郧阳区 420304): the former name is today's region,
           which also holds the old code (an ID 420321… lies in 郧阳区, in 十堰市, in 湖北省); the former region
           the old code lay in holds the new one (莱城区 371202 → 莱芜区 370116: 370116… lies in 莱芜市, 3712)
merged     merged into another (莱芜市 3712 → 济南市): the former name is a region of its own with the old code,
           and the region it went into also holds the old code (an ID 371202… lies in 济南市)
abolished  split up (巢湖市 3414): the former name is a region of its own with the old code
=========  ======================================================================================================

How names are read. Every region is known by its full name (湖北省, 恩施土家族苗族自治州, 夷陵区) and its short
forms: without the last character (湖北, 宜昌, 夷陵 — only when two characters or more are left), without the
peoples of an autonomous unit (恩施, 恩施州; 白沙, 白沙县), and the five autonomous regions by their usual names
(内蒙古, 广西, 西藏, 宁夏, 新疆). Placeholder prefectures (市辖区, 县, 省直辖县级行政区划) are not names. When one name
fits several regions, the first that applies wins:

1. today's full names, then former full names, then short forms (today's, then former ones);
2. a region inside another that bears the name gives way (长沙 is 长沙市, not 长沙县 in it; 吉林 is the province);
3. among short forms, a province comes first (海南 is the province, not 青海's 海南州), then prefectures and the
   districts of the four municipalities, then the other counties (西安 is 西安市, not 辽源's 西安区);
4. what is still left is ambiguous: 朝阳 (辽宁's 朝阳市 and 北京's 朝阳区), 朝阳区 (北京's and 长春's), 鼓楼.

So today's names come first: 巢湖市 is today's county-level city (340181), the former prefecture is 3414 by code.
The regions that rules 1 to 3 set aside are kept as second choices: when the rest of the text rules out the first
ones (青海海南: 海南州; 长春朝阳: 长春's 朝阳区), they are tried. Names agree when one region lies in the other,
by code or by the old code of its land (山东省莱芜市莱城区, an old address, is 济南市莱芜区).

Texts are read left to right, at each place the longest name first (长沙县 is not read as 长沙 then 县), after
NFKC folding (full-width characters) and without white space. :meth:`Divisions.region` wants the whole text made
of names that agree (湖北省宜昌市 is 宜昌市) and refuses an ambiguous one, naming the candidates.
:meth:`Divisions.place` reads a travel text (来自湖北武汉, 武汉（途经长沙）) and never refuses: it gives the most
specific region that every name read agrees with. A name that agrees with none of the places named before it
(武汉-长沙) starts another place: it and the rest are left out, so a route is placed at its first place — the origin,
which is what 出发地 / 来自 asks. A short county name with several candidates (鼓楼) is used only where the names
before it leave exactly one, and a county name that is a common word (城区, 郊区, 矿区, 东区, 西区) only where a
prefecture or province was named before it. Several candidates left at the end (朝阳 alone) give the region they
share if they lie in one province, else nothing.

>>> from matching.regions import divisions
>>> d = divisions()
>>> d.region("恩施州").full_name
'湖北省恩施土家族苗族自治州'
>>> d.region("420500").name, d.region("襄樊市").code
('宜昌市', '4206')
>>> d.place("来自湖北宜昌"), d.place("武汉（途经长沙）"), d.place("朝阳")
('4205', '4201', None)
>>> d.name_of("420506"), d.name_of("371202")
('湖北省宜昌市夷陵区', '山东省莱芜市莱城区（已撤销，今属济南市莱芜区）')
>>> d.within(["420506", "42", None], d.region("宜昌")).tolist(), d.within(["371202"], d.region("济南")).tolist()
([True, False, False], [True])
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gis.errors import ConfigurationError

LEVELS = ("province", "prefecture", "county")
CHANGES = ("renamed", "recoded", "merged", "abolished")
REFERENCE = Path(__file__).resolve().parent / "reference"
TABLE = REFERENCE / "china_divisions_nbs2023"
FORMER = REFERENCE / "former_divisions.csv"

# Prefecture-level rows that group counties without being a place (municipalities' districts, counties ruled
# directly by the province): no one names them, and a full name leaves them out (北京市朝阳区, 湖北省仙桃市).
PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
# The autonomous regions by the names everyone uses.
PROVINCE_SHORT = {"内蒙古自治区": "内蒙古", "广西壮族自治区": "广西", "西藏自治区": "西藏", "宁夏回族自治区": "宁夏",
                  "新疆维吾尔自治区": "新疆"}
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})  # 北京, 天津, 上海, 重庆: their districts rank with prefectures
# County names that are also common words: read only after a prefecture or province that holds them.
GENERIC = frozenset({"城区", "郊区", "矿区", "东区", "西区"})
# The peoples of China as autonomous units name them (族 is often left out: 伊犁哈萨克自治州).
PEOPLES = ("蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白", "土家", "哈尼",
           "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡", "纳西", "景颇", "柯尔克孜", "土",
           "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒",
           "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴",
           "珞巴", "基诺", "各")  # 各族: 龙胜各族自治县
# One people at the end of a name: a one-character people only with 族 (回族, not the 回 of a place name).
_PEOPLE_AT_END = re.compile("(?:" + "|".join(sorted((p + "族" if len(p) == 1 else p + "族?" for p in PEOPLES),
                                                    key=len, reverse=True)) + ")$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Region:
    """A province, prefecture or county of the table, or a former one.

    ``code`` is 2, 4 or 6 digits: the prefix of the ID region codes it holds. ``name`` is its official full name
    (a former name for a former region) and ``full_name`` the same with its parents (湖北省宜昌市夷陵区).
    ``other_codes`` are the other prefixes its ID numbers may carry, from former_divisions: the old codes of what
    went into it (济南市 holds 莱芜市's 3712, 郧阳区 郧县's 420321), and for a former region today's code of what
    it became (莱芜市 holds 莱芜区, 370116, once 莱城区 371202), so an ID issued before or after the change is in.
    """

    code: str
    name: str
    level: str
    full_name: str
    other_codes: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """Every prefix an ID region code in it may start with: its own code and the other ones."""
        return (self.code, *self.other_codes)


@dataclass(frozen=True)
class _Former:
    """A row of former_divisions.csv."""

    code: str
    name: str
    level: str
    became: str
    year: int
    change: str
    note: str


@dataclass(frozen=True)
class _Name:
    """What one name may mean: its first choices, the second ones, and how far it is to be trusted."""

    first: tuple[str, ...]
    second: tuple[str, ...]
    weak: bool  # only county short names: used only where context leaves one candidate
    needs_context: bool  # a common word: used only after a province or prefecture that holds it


def _standing(code: str) -> int:
    """How widely a region is known by its short name: 0 a province, 1 a prefecture or a district of one of the
    four municipalities (北京朝阳区 is as much a city as 辽宁's 朝阳市), 2 another county."""
    if len(code) == 2:
        return 0
    return 1 if len(code) == 4 or code[:2] in MUNICIPALITIES else 2


def _fold(text: str) -> str:
    """The text as names are looked up: NFKC (full-width forms folded) and without white space."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text))


def _stem_of_autonomous(stem: str) -> str:
    """The place name before the peoples of an autonomous unit: 恩施土家族苗族 → 恩施, 鄂伦春 → 鄂伦春."""
    while True:
        found = _PEOPLE_AT_END.search(stem)
        if found is None or found.start() < 2:
            # A name that is only a people (鄂温克族自治旗) keeps it, without 族.
            return stem.removesuffix("族") if found is not None and found.start() == 0 else stem
        stem = stem[:found.start()]


def short_forms(name: str, level: str) -> list[str]:
    """The short forms a region's official name is also written as (two characters or more).

    >>> short_forms("恩施土家族苗族自治州", "prefecture")
    ['恩施', '恩施州']
    >>> short_forms("赵县", "county"), short_forms("广西壮族自治区", "province")
    ([], ['广西'])
    """
    if level == "province":
        forms = [PROVINCE_SHORT[name]] if name in PROVINCE_SHORT else [name[:-1]]
    elif name.endswith(("自治州", "自治县", "自治旗")):
        stem = _stem_of_autonomous(name[:-3])
        forms = [stem, stem + name[-1]]
    elif name.endswith(("地区", "新区", "林区", "特区")):
        forms = [name[:-2]]
    elif name.endswith(("省", "市", "区", "县", "旗", "盟")):
        forms = [name[:-1]]
    else:
        forms = []
    return [form for form in dict.fromkeys(forms) if len(form) >= 2 and form != name]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _common_prefix(codes: Iterable[str]) -> str:
    codes = list(codes)
    first, last = min(codes), max(codes)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _strings(values: Any) -> pa.Array:
    """A column (list, numpy array, pandas Series, pyarrow array) as one pyarrow string array, nulls kept."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # mixed objects: read each as text
            values = pa.array([None if v is None or v != v else str(v) for v in values], type=pa.string())
    # a pandas column of several Arrow chunks (a large load) converts to a chunked array: one array, here
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), type=pa.string())
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


class Divisions:
    """The regions of China (NBS 2023) and the former ones still met, read from the package data.

    Use :func:`divisions`, which loads them once per process.
    """

    def __init__(self, table: Path = TABLE, former: Path = FORMER) -> None:
        self._regions: dict[str, Region] = {}
        self._former: dict[str, _Former] = {}
        self._placeholders: set[str] = set()
        self._was: dict[str, list[str]] = {}  # today's code of a recoded region → its old codes (same land)
        self._load(table, former)
        self._names = self._index()
        # At each first two characters, the lengths of the names that start with them, longest first.
        lengths: dict[str, set[int]] = {}
        for name in self._names:
            lengths.setdefault(name[:2], set()).add(len(name))
        self._lengths = {head: tuple(sorted(sizes, reverse=True)) for head, sizes in lengths.items()}
        self._place = functools.lru_cache(maxsize=1 << 16)(self._place_folded)

    # -- loading ------------------------------------------------------------------------------------------------

    def _load(self, table: Path, former: Path) -> None:
        provinces = {row["code"]: row["name"] for row in _read_csv(table / "provinces.csv")}
        prefectures = {row["code"]: row["name"] for row in _read_csv(table / "cities.csv")}
        counties = {row["code"]: row["name"] for row in _read_csv(table / "counties.csv")}
        self._placeholders = {code for code, name in prefectures.items() if name in PLACEHOLDERS}
        for code, name in provinces.items():
            self._regions[code] = Region(code, name, "province", name)
        for code, name in prefectures.items():
            self._regions[code] = Region(code, name, "prefecture", provinces[code[:2]] + name)
        for code, name in counties.items():
            if code.endswith("00"):  # 东莞市 441900: a prefecture without counties, listed again as its own county
                continue
            self._regions[code] = Region(code, name, "county", self._parents(code, name) + name)
        rows = [_Former(row["code"], row["name"], row["level"], row["became"], int(row["year"]), row["change"],
                        row["note"]) for row in _read_csv(former)]
        for row in sorted(rows, key=lambda row: len(row.code)):  # prefectures first: their counties name them
            self._former[row.code] = row
            if row.change != "renamed":
                self._regions[row.code] = Region(row.code, row.name, row.level,
                                                 self._parents(row.code, row.name) + row.name)
        held: dict[str, set[str]] = {}
        for row in rows:
            if row.change not in ("recoded", "merged"):
                continue
            for size in (2, 4, 6):  # the region it went into, and the regions above that, hold its old code
                if size <= len(row.became) and not row.code.startswith(row.became[:size]):
                    held.setdefault(row.became[:size], set()).add(row.code)
            if row.change == "recoded":  # the same land: the old code lies where it lay, the new one with it
                self._was.setdefault(row.became, []).append(row.code)
                for size in (4, 6):  # the former regions it lay in (and itself) hold its new code
                    old = row.code[:size]
                    if size <= len(row.code) and old in self._regions and old in self._former and \
                            not row.became.startswith(old):
                        held.setdefault(old, set()).add(row.became)
        for code, others in held.items():
            kept = tuple(sorted(c for c in others if not any(c != other and c.startswith(other) for other in others)))
            region = self._regions[code]
            self._regions[code] = Region(region.code, region.name, region.level, region.full_name, kept)

    def _parents(self, code: str, name: str) -> str:
        """The names of the province and prefecture region ``name`` (code ``code``) lies in, as a full name starts.

        Placeholders are left out (北京市朝阳区), and so is a prefecture of the same name (甘肃省嘉峪关市, whose one
        county-level unit is 嘉峪关市 again).
        """
        parents = ""
        for size in (2, 4):
            parent = self._regions.get(code[:size]) if len(code) > size else None
            if parent is not None and parent.name != name and code[:size] not in self._placeholders:
                parents += parent.name
        return parents

    def _index(self) -> dict[str, _Name]:
        """Every name and short form with what it may mean (see the module's docstring for the order)."""
        # tier: 0 today's full name, 1 a former full name, 2 today's short form, 3 a former short form
        meanings: dict[str, dict[str, int]] = {}

        def add(name: str, code: str, tier: int) -> None:
            name = _fold(name)
            if len(name) >= 2:
                known = meanings.setdefault(name, {})
                known[code] = min(tier, known.get(code, tier))

        for code, region in self._regions.items():
            if code in self._placeholders or (code in self._former and self._former[code].change != "renamed"):
                continue  # placeholders are no names; former regions are indexed from their rows below
            add(region.name, code, 0)
            for form in short_forms(region.name, region.level):
                add(form, code, 2)
        for row in self._former.values():
            meant = row.code if row.change in ("merged", "abolished") else row.became
            add(row.name, meant, 1)
            for form in short_forms(row.name, row.level):
                add(form, meant, 3)
        return {name: self._meaning(name, tiers) for name, tiers in meanings.items()}

    def _lies_in(self, code: str, other: str) -> bool:
        """Whether region ``code`` lies in (or is) region ``other``, by its code or the old code of its land.

        莱芜区 (370116, once 莱城区 371202) lies in the former 莱芜市 (3712).
        """
        return code.startswith(other) or any(old.startswith(other) for old in self._was.get(code, ()))

    def _inside(self, code: str, other: str) -> bool:
        return code != other and self._lies_in(code, other)

    def _meaning(self, name: str, tiers: dict[str, int]) -> _Name:
        best = min(tiers.values())
        first = [code for code, tier in tiers.items() if tier == best]
        # The broadest region (长沙 is 长沙市, not 长沙县 in it; 嘉峪关市 the prefecture, not its one county).
        first = [code for code in first if not any(self._inside(code, other) for other in first)]
        if best >= 2:  # short forms: a province first (海南), then a prefecture or a municipality's district (西安)
            rank = min(_standing(code) for code in first)
            first = [code for code in first if _standing(code) == rank]
        second = sorted(code for code in tiers if code not in first)
        weak = best >= 2 and all(self._regions[code].level == "county" for code in first)
        return _Name(tuple(sorted(first)), tuple(second), weak and len(first) > 1, name in GENERIC)

    # -- reading names --------------------------------------------------------------------------------------------

    def _scan(self, text: str) -> tuple[list[tuple[str, _Name]], int]:
        """The names in a folded text, left to right and longest first, and how many characters were not read."""
        found: list[tuple[str, _Name]] = []
        at, skipped = 0, 0
        while at < len(text):
            for size in self._lengths.get(text[at:at + 2], ()):
                name = text[at:at + size]
                if len(name) == size and name in self._names:
                    found.append((name, self._names[name]))
                    at += size
                    break
            else:
                at += 1
                skipped += 1
        return found, skipped

    def _agree(self, states: set[str], codes: Iterable[str]) -> set[str]:
        """The deepest codes where one of ``states`` and one of ``codes`` lie one in the other."""
        found: set[str] = set()
        for code in codes:
            for state in states:
                if self._lies_in(code, state):
                    found.add(code)
                elif self._lies_in(state, code):
                    found.add(state)
        return found

    def _narrow(self, states: set[str], meaning: _Name, strict: bool = True) -> set[str]:
        """The readings left after one more name: its first choices, else its second ones; empty if neither.

        ``strict``: a common word (城区) with nothing named before it is no reading at all.
        """
        if strict and meaning.needs_context and states == {""}:
            return set()
        for codes in (meaning.first, meaning.second):
            found = self._agree(states, codes)
            if found:
                return found
        return set()

    def region(self, text: str) -> Region:
        """The region a rule names: a full, short or former name, names qualified by their parents, or a code.

        ``420100`` and ``420000`` are 武汉市 and 湖北省 (trailing 00 pairs drop); a former name of a renamed or
        recoded region is today's region (襄樊市 is 襄阳市), that of a merged or abolished one the former region
        (莱芜市, 3712). Raises :class:`~gis.errors.ConfigurationError` for an unknown name or code, names that do
        not lie in one another (湖北省长沙市), and a name of several regions (朝阳区: 北京市朝阳区 and
        吉林省长春市朝阳区), naming the candidates.

        >>> divisions().region("湖北省 宜昌市").code
        '4205'
        """
        folded = _fold(str(text))
        if folded.isascii() and folded.isdigit():
            return self._region_of_code(folded, text)
        mentions, skipped = self._scan(folded)
        if not folded or skipped or not mentions:
            raise ConfigurationError(f"未知的行政区划「{text}」，请写省、市、县的名称或代码 / unknown region "
                                     f"{text!r}: write the name of a province, prefecture or county, or its code")
        states = {""}
        for _name, meaning in mentions:
            narrowed = self._narrow(states, meaning, strict=False)
            if not narrowed:
                raise ConfigurationError(f"「{text}」中的地名不相属 / the names in {text!r} do not lie in one another")
            states = narrowed
        if len(states) > 1:
            listed = self._listed(states)
            raise ConfigurationError(f"「{text}」可指多个地区：{listed}，请写明省份或代码 / {text!r} names several "
                                     f"regions: {listed}; write the province too, or the code")
        return self._regions[states.pop()]

    def _listed(self, codes: Iterable[str], most: int = 12) -> str:
        names = [f"{self._regions[code].full_name}（{code}）" for code in sorted(codes)]
        more = f" 等 {len(names)} 个" if len(names) > most else ""
        return "、".join(names[:most]) + more

    def _region_of_code(self, code: str, text: str) -> Region:
        while len(code) > 2 and code.endswith("00"):
            code = code[:-2]
        region = self._regions.get(code) if len(code) in (2, 4, 6) else None
        if region is None:
            # A longer number may be an ID number: it is not repeated in the message (it may be logged).
            shown = f"「{text}」" if len(code) <= 6 else f"（{len(code)} 位数字 / {len(code)} digits）"
            raise ConfigurationError(f"未知的行政区划代码{shown} / unknown region code {shown}: write 2, 4 or 6 "
                                     f"digits of the 2023 national table (42, 4205, 420506)")
        return region

    def name_of(self, code: str) -> str:
        """The full name of an ID region code, at the most specific level known ("" when not even the province is).

        The county when the table has it; a former county when former_divisions lists it; else the prefecture
        (placeholders such as 北京市市辖区 skipped), a former one, the province. The first six characters are read,
        so a whole ID number may be given.

        >>> divisions().name_of("341421"), divisions().name_of("990000")
        ('安徽省巢湖市（已撤销）', '')
        """
        code = str(code or "")[:6]
        if not (code.isascii() and code.isdigit()):
            return ""
        for size in (6, 4, 2):
            part = code[:size]
            if len(part) < size or part in self._placeholders:
                continue
            if part in self._former and self._former[part].change != "renamed":
                return self._former_label(self._former[part])
            region = self._regions.get(part)
            if region is not None:
                return region.full_name
        return ""

    def _former_label(self, row: _Former) -> str:
        label = self._regions[row.code].full_name
        became = self._regions.get(row.became)
        if became is None:
            return f"{label}（已撤销）"
        now = became.full_name
        province = self._regions[row.became[:2]].name
        if row.code[:2] == row.became[:2] and now != province:
            now = now.removeprefix(province)
        return f"{label}（已撤销，今属{now}）"

    # -- travel texts ---------------------------------------------------------------------------------------------

    def place(self, text: str | None) -> str | None:
        """Where a travel text lies: the code of the most specific region every name read in it agrees with.

        ``湖北宜昌`` and ``宜昌`` are 4205, ``武汉市江岸区`` 420102, ``湖北`` 42, ``襄樊`` 4206. A route
        (``武汉-长沙``, ``武汉（途经长沙）``) is placed at its first place, the origin; candidates left in several
        provinces (``朝阳`` alone) give None, in one province the region they share; nothing recognised gives None.

        >>> divisions().place("湖北省武汉市汉口火车站"), divisions().place("北京朝阳")
        ('4201', '110105')
        """
        if not text or not isinstance(text, str):
            return None
        return self._place(_fold(text))

    def _place_folded(self, text: str) -> str | None:
        mentions, _skipped = self._scan(text)
        states = {""}
        for _name, meaning in mentions:
            narrowed = self._narrow(states, meaning)
            if meaning.weak or meaning.needs_context:
                if len(narrowed) == 1 and narrowed != states:
                    states = narrowed
                continue  # a short county name the context does not settle, or a common word out of context
            if not narrowed:
                break  # another place (a route): keep the first
            states = narrowed
        if states == {""}:
            return None
        code = _common_prefix(states)
        code = code[:6 if len(code) >= 6 else 4 if len(code) >= 4 else 2 if len(code) >= 2 else 0]
        if len(states) > 1 and len(code) < 2:
            return None
        while code and code not in self._regions:  # a former prefecture's counties share a code of its own
            code = code[:-2]
        return code or None

    def place_all(self, texts: Any) -> np.ndarray:
        """:meth:`place` of a whole column (list, numpy array, pandas Series, pyarrow array): codes or None.

        Each distinct text is read once: a million records come from a few thousand places.

        >>> divisions().place_all(["湖北宜昌", None, "", "湖北宜昌", "北京"]).tolist()
        ['4205', None, None, '4205', '11']
        """
        values = _strings(texts)
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary.to_pylist()
        codes = np.empty(len(distinct) + 1, dtype=object)
        codes[:-1] = [self.place(text) for text in distinct]
        codes[-1] = None
        positions = pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False)
        return codes[positions]

    def within(self, codes: Any, region: Region) -> np.ndarray:
        """Whether each code (2–6 digits, an ID's region code or a :meth:`place` result; None) lies in ``region``.

        A code lies in a region when it starts with the region's code or one of its former codes; a coarser code
        does not (湖北, 42, is not in 宜昌市), nor does None.

        >>> divisions().within(["110103", "110105"], divisions().region("东城区")).tolist()
        [True, False]
        """
        values = _strings(codes)
        inside = pc.starts_with(values, pattern=region.code)
        for former in region.other_codes:
            inside = pc.or_(inside, pc.starts_with(values, pattern=former))
        return pc.fill_null(inside, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)

    def regions(self, level: str | None = None) -> Sequence[Region]:
        """Today's regions and the former ones (renamed ones are today's), at one level or all, by code."""
        if level is not None and level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        return [region for code, region in sorted(self._regions.items())
                if level is None or region.level == level]


@functools.cache
def divisions() -> Divisions:
    """The divisions of China from the package data, loaded once per process."""
    return Divisions()
