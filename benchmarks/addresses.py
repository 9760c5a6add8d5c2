"""``gridctl bench addresses``: messy addresses with known answers, and how many the address matcher places right.

Each address is generated from one community of the seeded district and one entry of its standard address table
(``addresses``), written the ways officials write them, independently along five dimensions:

- **prefix**: 广东省佛山市南海区 / 佛山市南海区 / 南海区 / 佛山南海 / none;
- **town**: its full name (狮山镇), short name (狮山), a former town merged into it (官窑, alone or after the
  current name: 狮山镇官窑), today's name in brackets after the community (沙头社区（狮山镇）) or none. The
  generator does not know which communities each former town covered, so it pairs a former town with any
  community of the town it was merged into;
- **community**: the official short name (沙头社区, 良登村), the registered name (沙头社区居委会, 良登村委会), a
  variant (沙头村, 沙头居委会, 沙头居委, 沙头村委会, …), the name with one wrong or missing character in its
  proper-noun part (沙斗社区, 沙社区), or none;
- **street**: a standard address (沙头一路35号), one with a room or floor after it (…35号502房), an estate
  written without the community's name in front (沙头社区金色家园3栋, only where the community is named), one
  with one wrong or missing character, or none;
- **width**: half-width, full-width digits (３５号), or spaces between the parts.

One typo at most per address. Each address carries its true community code and the standard address it names
(if any). Whether the text *settles* its community is decided by :meth:`AddressSet.settled_by`, which reads what
the generator wrote (not the text): the communities of the named town (else all), those whose name is within the
typo written of the name written (the official name of exactly one of them wins), then those holding the standard
address closest to the street written. An address is kept only when that leaves its own community alone. Drawn
again: a typo that spells another real name, town or standard address, and parts that read differently once
joined (大沥 + 镇社区, 大镇社区 less 大, reads 大沥镇 + 社区). A few **controls** do not settle their community on
purpose (a town alone; a community name found in two towns, without town or street): the right answer for them is
no placement, and placing them is a guess.

The generator and the matcher were written together (issue 21): the set holds the cases the matcher's rules are
for, so its figure is a floor for those cases, not a forecast for a client's real addresses.

Figures: among the addresses that name their community, the shares placed in the right community, in a wrong one
and not placed (by reason), per dimension; the share placed at the right standard address (when named without a
typo); the controls placed anyway; the matcher's time per address.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein
from sqlalchemy import Engine

from gis.errors import NotFound
from matching.addresses import FORMER_TOWNS, PREFIX_LEVELS, SUFFIXES, AddressMatcher, Placement
from matching.repository import load_places

PREFIXES = ("广东省佛山市南海区", "佛山市南海区", "南海区", "佛山南海", "")
VARIANTS = {"社区": ("村", "居委会", "居委", "社区居委会", "村委会", "社区居民委员会"),
            "村": ("村委会", "村委", "村民委员会", "社区", "居委会")}
ROOMS = ("502房", "3楼", "之一", "201室", "首层", "2座1203")
# Characters a typo puts in a name or street: common ones that are not part of a community suffix, a town name, a
# prefix or a house number (a wrong digit is drawn from the digits).
TYPO_CHARS = "".join(dict.fromkeys(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多"
    "天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身"
    "些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门"
    "相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万眼体别处总才场师书比住员九笑性通目华报立"
    "马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共"
    "风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元术结六功指思非流每青管夫连远资队跟带花快条"
    "院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深即求品士转量空甚众技轻程告江语英基派满式李息写"
    "呢识极令黄德收脸钱党倒未持音送酸斗投沟汀坝埔圳岭塘滘涌洲"))
_EXCLUDED = set("社区村居委会民员镇街道省市佛山南海广东号栋路") | set("0123456789")
TYPO_CHARS = "".join(ch for ch in TYPO_CHARS if ch not in _EXCLUDED)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
CONTROL_SHARE = 0.02
FOCUS_SHARE = 0.2
ATTEMPTS = 40


class Matcher(Protocol):
    """What the benchmark measures: anything that places a free-text address (the domain's AddressMatcher)."""

    def place(self, address: str) -> Placement: ...


@dataclass(frozen=True)
class GeneratedAddress:
    """One messy address and its known answer."""

    text: str
    community_code: str
    standard_text: str | None           # the standard address it names (None: no street, or a typo in it)
    names_community: bool               # False for the controls: the text does not settle the community
    names_town: bool
    styles: dict[str, str] = field(default_factory=dict)   # dimension -> value


@dataclass(frozen=True)
class _Community:
    code: str
    town_code: str
    stem: str
    name: str
    name_short: str
    entries: tuple[str, ...]


@dataclass
class _Written:
    """What the generator wrote, part by part (what :func:`settled_by` reads)."""

    town_code: str | None = None
    stem: str | None = None              # the community's proper name as written (None: no community name)
    suffix: str = ""
    stem_typo: bool = False
    street: str | None = None            # the street as written, without a room part
    street_typo: bool = False
    estate_short: bool = False


def _stem(name_short: str) -> str:
    return re.sub(r"(社区|村)$", "", name_short)


class AddressSet:
    """The district's communities, towns and standard addresses, read once; draws messy addresses from them."""

    def __init__(self, towns: pd.DataFrame, communities: pd.DataFrame, book: pd.DataFrame) -> None:
        entries: dict[str, list[str]] = defaultdict(list)
        for row in book.itertuples():
            entries[row.community_code].append(row.text)
        self.communities = {c.code: _Community(c.code, c.town_code, _stem(c.name_short), c.name, c.name_short,
                                               tuple(sorted(entries.get(c.code, ()))))
                            for c in communities.itertuples()}
        self.town_names = {t.code: t.name for t in towns.itertuples()}
        self.formers: dict[str, list[str]] = defaultdict(list)
        for former, town in FORMER_TOWNS.items():
            self.formers[town].append(former)
        self.by_town: dict[str, list[_Community]] = defaultdict(list)
        for c in self.communities.values():
            self.by_town[c.town_code].append(c)
        stems = Counter(c.stem for c in self.communities.values())
        self.stems = set(stems)
        self.all_entries = {text for c in self.communities.values() for text in c.entries}
        # the hard cases: a name found in two towns, or a community named like a former town
        self.focus = [c for c in self.communities.values() if stems[c.stem] > 1 or c.stem in FORMER_TOWNS]
        self.duplicated = {c.stem for c in self.communities.values() if stems[c.stem] > 1}
        self.plain = [c for c in self.communities.values() if c.entries]
        # the controls' names: the same official name in two towns (沙头社区; not 西岸社区, whose twin is 西岸村)
        official = Counter(c.name_short for c in self.communities.values())
        self.twins = [c for c in self.communities.values() if official[c.name_short] > 1]
        self.stem_lengths = sorted({len(stem) for stem in self.stems}, reverse=True)
        self.words = tuple(sorted({*(name for level in PREFIX_LEVELS for name in level), *self.town_names.values(),
                             *(re.sub(r"(街道|镇)$", "", name) for name in self.town_names.values()),
                             *FORMER_TOWNS}, key=len, reverse=True))

    # -- what an address settles -----------------------------------------------------------------------------
    def settled_by(self, written: _Written) -> set[str]:
        """The communities consistent with what was written (one: the address settles its community)."""
        scope = self.by_town[written.town_code] if written.town_code else list(self.communities.values())
        pool = scope
        if written.stem is not None:
            tolerance = 1 if written.stem_typo else 0
            pool = [c for c in scope if Levenshtein.distance(c.stem, written.stem, score_cutoff=tolerance)
                    <= tolerance]
            if not written.stem_typo:
                official = [c for c in pool if written.stem + written.suffix in (c.name, c.name_short)]
                if len(official) == 1:
                    pool = official
        if len(pool) <= 1 or written.street is None:
            return {c.code for c in pool}
        best, owners = -1.0, set()
        for c in pool:
            # an estate written without the community's name is read with the name in front, as a reader would
            with_name = c.stem + written.street if written.estate_short else written.street
            for entry in c.entries:
                score = fuzz.ratio(with_name, entry)
                if score > best:
                    best, owners = score, {c.code}
                elif score == best:
                    owners.add(c.code)
        return owners

    # -- drawing ---------------------------------------------------------------------------------------------
    def draw(self, count: int, seed: int) -> list[GeneratedAddress]:
        """``count`` addresses (about 2 % of them controls), the same for the same seed."""
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            if rng.random() < CONTROL_SHARE:
                out.append(self._control(rng))
                continue
            pool = self.focus if rng.random() < FOCUS_SHARE else self.plain
            community = rng.choice(pool)
            for _attempt in range(ATTEMPTS):
                drawn = self._one(rng, community)
                if drawn is not None:
                    out.append(drawn)
                    break
            else:  # pragma: no cover - a community with no settling form at all would be a bug in the set
                raise RuntimeError(f"no settling address drawn for {community.code}")
        return out

    def _one(self, rng: random.Random, c: _Community) -> GeneratedAddress | None:
        styles: dict[str, str] = {}
        written = _Written()
        prefix = rng.choice(PREFIXES)
        styles["prefix"] = prefix or "none"

        town_form = rng.choices(("full", "short", "former", "after", "none"), (32, 20, 12, 6, 30))[0]
        if town_form == "former" and not self.formers[c.town_code]:
            town_form = "full"
        town_name = self.town_names[c.town_code]
        short = re.sub(r"(街道|镇)$", "", town_name)
        town_text = {"full": town_name, "short": short, "none": ""}.get(town_form, "")
        if town_form == "former":
            town_text = rng.choice(("", town_name, short)) + rng.choice(self.formers[c.town_code])
        after = ""
        if town_form == "after":   # after the community, in brackets: 沙头社区（狮山镇）
            after = f"（{rng.choice((town_name, short))}）"
        styles["town"] = town_form
        written.town_code = c.town_code if town_form != "none" else None

        name_form = rng.choices(("official", "registered", "variant", "typo", "none"), (30, 10, 25, 12, 23))[0]
        street_form = rng.choices(("standard", "room", "estate_short", "typo", "none"), (45, 12, 8, 15, 20))[0]
        if name_form == "none" and street_form in ("none", "estate_short"):
            street_form = "standard"
        if name_form == "none" and town_form == "after":
            return None
        if name_form == "typo" and street_form == "typo":  # one typo per address
            street_form = rng.choice(("standard", "room", "none"))
        if not c.entries and street_form != "none":
            street_form = "none"
            if name_form == "none":
                name_form = "official"

        name_text = ""
        if name_form != "none":
            kind = "村" if c.name_short.endswith("村") and not c.name_short.endswith("社区") else "社区"
            suffix = {"official": kind, "registered": c.name[len(c.stem):]}.get(name_form, "")
            if name_form in ("variant", "typo"):
                suffix = rng.choice((kind, *VARIANTS[kind]) if name_form == "typo" else VARIANTS[kind])
            stem = c.stem
            if name_form == "typo":
                stem = _typo(rng, stem)
                if stem in self.stems or (stem + suffix).startswith(self.words):
                    return None   # spelt another community or a town (罗行村 less 行 is 罗村): not a typo to undo
            written.stem, written.suffix, written.stem_typo = stem, suffix, name_form == "typo"
            name_text = stem + suffix
        styles["community"] = name_form

        street_text, standard = "", None
        if street_form != "none":
            entry = rng.choice(c.entries)
            written.street = entry
            if street_form == "typo":
                written.street = _typo(rng, entry)
                written.street_typo = True
                if written.street in self.all_entries:   # spelt another standard address
                    return None
            elif street_form == "estate_short":
                estates = [e for e in c.entries if e.endswith("栋")]
                if not estates:
                    return None
                entry = rng.choice(estates)
                written.street, written.estate_short = entry[len(c.stem):], True
            standard = None if street_form == "typo" else entry
            street_text = written.street
            if street_form == "room":
                street_text += rng.choice(ROOMS)
        styles["street"] = street_form

        if self.settled_by(written) != {c.code}:
            return None

        parts = [p for p in (prefix, town_text, name_text, after, street_text) if p]
        if self._runs_together(parts):
            return None
        width = rng.choices(("half", "full_width", "spaces"), (70, 15, 15))[0]
        text = "".join(parts)
        if width == "full_width":
            text = text.translate(FULL_WIDTH)
        elif width == "spaces":
            text = " ".join(parts)
        styles["width"] = width
        if c.stem in self.duplicated:
            styles["focus"] = "name in two towns"
        elif c.stem in FORMER_TOWNS:
            styles["focus"] = "named like a former town"
        return GeneratedAddress(text, c.code, standard, True, town_form != "none", styles)

    def _runs_together(self, parts: list[str]) -> bool:
        """Whether a prefix, a town or a community name (with its suffix) reads across two parts: 大沥 + 镇社区
        (大镇社区 less 大) reads 大沥镇 + 社区, 和顺 + 村社区 (洲村社区 less 洲) reads 和顺村 + 社区. A typo that
        makes the parts read differently is not the typo it was meant to be."""
        text = "".join(parts)
        bounds, at = set(), 0
        for part in parts[:-1]:
            at += len(part)
            bounds.add(at)
        for start in range(len(text)):
            for word in self.words:
                if text.startswith(word, start) and any(start < b < start + len(word) for b in bounds):
                    return True
            for length in self.stem_lengths:
                stem = text[start:start + length]
                if stem in self.stems:
                    for suffix in SUFFIXES:
                        end = start + length + len(suffix)
                        if text.startswith(suffix, start + length) and any(start < b < end for b in bounds):
                            return True
        return False

    def _control(self, rng: random.Random) -> GeneratedAddress:
        """An address that does not settle its community: a town alone, or a name found in two towns alone."""
        if rng.random() < 0.5:
            c = rng.choice(self.plain)
            town = self.town_names[c.town_code]
            text = rng.choice(PREFIXES) + rng.choice((town, re.sub(r"(街道|镇)$", "", town)))
            return GeneratedAddress(text, c.code, None, False, True, {"control": "town alone"})
        c = rng.choice(self.twins)
        suffix = rng.choice(("社区", "社区居委会", *VARIANTS["社区"]))
        if self.settled_by(_Written(stem=c.stem, suffix=suffix)) == {c.code}:  # pragma: no cover - by construction
            raise RuntimeError(f"{c.stem}{suffix} names one community: not a control")
        return GeneratedAddress(rng.choice(PREFIXES) + c.stem + suffix, c.code, None, False, False,
                                {"control": "name in two towns, alone"})


def _typo(rng: random.Random, text: str) -> str:
    """``text`` with one character wrong or missing (a wrong digit stays a digit)."""
    i = rng.randrange(len(text))
    if len(text) > 1 and rng.random() < 0.4:
        return text[:i] + text[i + 1:]
    if text[i].isdigit():
        wrong = rng.choice([d for d in "0123456789" if d != text[i]])
    else:
        wrong = rng.choice([ch for ch in TYPO_CHARS if ch != text[i]])
    return text[:i] + wrong + text[i + 1:]


# -- measuring ---------------------------------------------------------------------------------------------------
def _reason(placement: Placement) -> str:
    """The English half of an unplaced reason, as a short label."""
    text = placement.unplaced_reason or "unplaced"
    return text.split(" / ")[-1]


@dataclass
class _Tally:
    count: int = 0
    right: int = 0
    wrong: int = 0

    def add(self, outcome: str) -> None:
        self.count += 1
        self.right += outcome == "right"
        self.wrong += outcome == "wrong"

    def row(self, label: str) -> str:
        unplaced = self.count - self.right - self.wrong
        return (f"  {label:<34} {self.count:>7} {self.right / self.count:>8.2%} {self.wrong / self.count:>7.2%} "
                f"{unplaced / self.count:>9.2%}")


def measure(matcher: Matcher, addresses: list[GeneratedAddress], book: pd.DataFrame,
            echo: Callable[[str], None] = print, examples: int = 3) -> dict[str, Any]:
    """Place every address once (the pipeline places each distinct address once) and score the placements."""
    points = {(r.community_code, r.text): (r.lon, r.lat) for r in book.itertuples()}
    distinct = list(dict.fromkeys(a.text for a in addresses))
    started = time.perf_counter()
    placed = {text: matcher.place(text) for text in distinct}
    seconds = time.perf_counter() - started

    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    failures: Counter[str] = Counter()
    shown: dict[str, list[str]] = defaultdict(list)
    named = [a for a in addresses if a.names_community]
    town_wrong = standard_named = standard_right = 0
    for a in named:
        p = placed[a.text]
        outcome = ("right" if p.community_code == a.community_code
                   else "wrong" if p.community_code is not None else "unplaced")
        for dimension, value in (("all", "all"), *a.styles.items()):
            tallies[(dimension, value)].add(outcome)
        if outcome != "right":
            reason = "wrong community" if outcome == "wrong" else _reason(p)
            failures[reason] += 1
            if len(shown[reason]) < examples:
                shown[reason].append(a.text)
            town_wrong += outcome == "wrong" and a.names_town
        if a.standard_text is not None:
            standard_named += 1
            standard_right += (p.method == "address" and p.community_code == a.community_code
                               and (p.lon, p.lat) == points[(a.community_code, a.standard_text)])
    controls = [a for a in addresses if not a.names_community]
    guessed = [a for a in controls if placed[a.text].community_code is not None]
    for a in controls:
        tallies[("control", a.styles["control"])].add(
            "right" if placed[a.text].community_code is None else "wrong")

    echo(f"{len(addresses)} 个地址（{len(named)} 个指明社区，{len(controls)} 个对照） / {len(addresses)} addresses "
         f"({len(named)} name their community, {len(controls)} controls); {len(distinct)} distinct, placed in "
         f"{seconds:.2f} s ({seconds / len(distinct) * 1e6:.0f} µs an address)")
    echo(f"  {'style':<34} {'n':>7} {'right':>8} {'wrong':>7} {'unplaced':>9}")
    order = ("all", "prefix", "town", "community", "street", "width", "focus")
    for dimension in order:
        for (dim, value), tally in sorted(tallies.items()):
            if dim == dimension:
                echo(tally.row(f"{dim}={value}" if dim != "all" else "all that name their community"))
    echo("  controls (right = left unplaced, wrong = placed anyway):")
    for (dim, value), tally in sorted(tallies.items()):
        if dim == "control":
            echo(tally.row(value))
    echo("未正确定位，按原因 / not placed right, by reason:" if failures else "全部正确 / all placed right")
    for reason, n in failures.most_common():
        echo(f"  {reason}: {n} ({n / len(named):.2%}) e.g. {' | '.join(shown[reason])}")
    total = len(named) or 1
    return {
        "addresses": len(addresses),
        "naming_community": len(named),
        "placed_right_share": round(tallies[("all", "all")].right / total, 5),
        "wrong_share": round(tallies[("all", "all")].wrong / total, 5),
        "unplaced_share": round((len(named) - tallies[("all", "all")].right - tallies[("all", "all")].wrong)
                                / total, 5),
        "wrong_when_town_named": town_wrong,
        "standard_address_right_share": round(standard_right / (standard_named or 1), 5),
        "controls": len(controls),
        "controls_placed": len(guessed),
        "failures": dict(failures.most_common()),
        "seconds": round(seconds, 3),
        "per_address_us": round(seconds / max(len(distinct), 1) * 1e6, 1),
    }


def addresses_benchmark(engine: Engine, count: int, seed: int, echo: Callable[[str], None] = print,
                        matcher_class: type = AddressMatcher) -> dict[str, Any]:
    """Draw ``count`` addresses from the seeded district and measure the matcher on them (the CLI prints JSON)."""
    with engine.connect() as conn:
        towns, communities, book = load_places(conn)
    if communities.empty or book.empty:
        raise NotFound("没有社区或标准地址表（先运行 gridctl seed nanhai） / no communities or standard address table "
                       "(run gridctl seed nanhai first)")
    started = time.perf_counter()
    matcher = matcher_class(towns, communities, book)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    addresses = AddressSet(towns, communities, book).draw(count, seed)
    echo(f"生成 {count} 个地址（种子 {seed}）/ drew {count} addresses (seed {seed}) in "
         f"{time.perf_counter() - started:.1f} s; matcher built in {build_s:.2f} s")
    result = measure(matcher, addresses, book, echo=echo)
    return {**result, "seed": seed, "build_seconds": round(build_s, 3)}
