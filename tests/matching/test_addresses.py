import numpy as np
import pytest

from grids.nanhai import load_communities
from matching import repository
from matching.addresses import ELSEWHERE, FORMER_TOWNS, AddressMatcher


@pytest.fixture(scope="module")
def matcher(seeded_engine):
    with seeded_engine.connect() as conn:
        towns, communities, book = repository.load_places(conn)
    return AddressMatcher(towns, communities, book), book


def test_former_town_mappings_hold_in_the_real_village_list():
    units = load_communities(include_parks=True)
    for former, town in FORMER_TOWNS.items():
        named = units[units["name_short"] == f"{former}社区"]
        if len(named):
            assert town in set(named["town_code"]), former


def test_street_address_is_placed_with_confidence(matcher):
    match, book = matcher
    entry = book.iloc[100]
    community = entry["community_code"]
    placement = match.place(f"广东省佛山市南海区{entry['text']}")
    assert placement.method == "address" and placement.community_code == community
    assert (placement.lon, placement.lat) == (entry["lon"], entry["lat"]) and placement.confidence == 1.0
    typo = entry["text"].replace("号", "")
    assert match.place(typo).method in ("address", None)


def test_community_found_in_two_towns(matcher):
    match, _ = matcher
    ambiguous = match.place("沙头社区")
    assert ambiguous.method is None and "ambiguous" in ambiguous.unplaced_reason
    jiujiang = match.place("九江镇沙头社区")
    shishan = match.place("南海区狮山镇沙头社区")
    assert jiujiang.method == "community" and jiujiang.community_code.startswith("440605121")
    assert shishan.method == "community" and shishan.community_code.startswith("440605124")
    assert match.place("沙头沙头社区").community_code.startswith("440605121")  # former town 沙头 is in 九江


def test_former_town_names_narrow_the_community(matcher):
    match, _ = matcher
    placed = match.place("盐步盐步社区")
    assert placed.method == "community" and placed.community_code.startswith("440605125")
    only_town = match.place("黄岐")
    assert only_town.method is None and "only a town" in only_town.unplaced_reason


def test_nothing_to_go_on(matcher):
    match, _ = matcher
    assert "no location" in match.place("  ").unplaced_reason
    assert "not recognised" in match.place("火星基地 1 号").unplaced_reason


@pytest.mark.parametrize("address", ["上海市浦东新区张江路 1 号", "湖北省武汉市江汉区新华路 8 号",
                                     "广州市天河区体育西路", "广东省佛山市顺德区大良街道", "佛山禅城区祖庙路 2 号",
                                     "广西南宁市"])
def test_an_address_in_another_place_is_outside_the_district(matcher, address):
    match, _ = matcher
    placement = match.place(address)
    assert placement.method is None and placement.unplaced_reason == ELSEWHERE


@pytest.mark.parametrize("address", ["碧水小区 3 栋", "市场路 5 号", "华润万家超市旁", "中山路 5 号", "南海市桂城街道"])
def test_a_place_name_that_is_not_another_city_is_not_called_elsewhere(matcher, address):
    match, _ = matcher
    assert match.place(address).unplaced_reason != ELSEWHERE


# -- issue 21 (5): harder addresses ------------------------------------------------------------------------------
TWINS = {"沙头": ("九江镇", "狮山镇"), "太平": ("西樵镇", "大沥镇"), "江滨": ("桂城街道", "九江镇")}


@pytest.fixture(scope="module")
def places(seeded_engine):
    with seeded_engine.connect() as conn:
        towns, communities, book = repository.load_places(conn)
    town_codes = dict(zip(towns["name"], towns["code"], strict=True))
    return AddressMatcher(towns, communities, book), communities, book, town_codes


def _community(communities, name_short: str, town_code: str | None = None) -> str:
    rows = communities[communities["name_short"] == name_short]
    if town_code is not None:
        rows = rows[rows["town_code"] == town_code]
    assert len(rows) == 1, (name_short, town_code)
    return rows["code"].iloc[0]


def _entries(book, code: str) -> list[str]:
    return sorted(book.loc[book["community_code"] == code, "text"])


def _point(book, code: str, entry: str) -> tuple[float, float]:
    row = book[(book["community_code"] == code) & (book["text"] == entry)].iloc[0]
    return row["lon"], row["lat"]


@pytest.mark.parametrize("stem", sorted(TWINS))
def test_a_town_settles_a_community_name_found_in_two_towns(places, stem):
    match, communities, book, towns = places
    for town in TWINS[stem]:
        code = _community(communities, f"{stem}社区", towns[town])
        short = town.removesuffix("镇").removesuffix("街道")
        for written in (f"{town}{stem}社区", f"南海区{short}{stem}居委会", f"广东省佛山市南海区 {town} {stem}村"):
            placed = match.place(written)
            assert (placed.method, placed.community_code) == ("community", code), written
        # with a street of its own: the road 沙头一路 is not the former town 沙头
        entry = _entries(book, code)[5]
        placed = match.place(f"佛山市南海区{town}{stem}社区{entry}")
        assert placed.method == "address" and placed.community_code == code
        assert (placed.lon, placed.lat) == _point(book, code, entry)
    alone = match.place(f"{stem}社区")
    assert alone.method is None and "ambiguous" in alone.unplaced_reason


def test_the_street_settles_a_community_name_found_in_two_towns(places):
    match, communities, book, towns = places
    for town in TWINS["沙头"]:
        code = _community(communities, "沙头社区", towns[town])
        other = set(_entries(book, _community(communities, "沙头社区", towns[next(t for t in TWINS["沙头"]
                                                                                if t != town)])))
        entry = next(e for e in _entries(book, code) if e not in other)
        assert match.place(f"沙头社区{entry}").community_code == code


@pytest.mark.parametrize("former", ["沙头", "盐步", "黄岐", "官窑", "小塘", "罗村", "和顺", "松岗"])
def test_a_former_town_named_like_a_community_does_not_make_the_address_ambiguous(places, former):
    match, communities, book, towns = places
    town = FORMER_TOWNS[former]
    code = _community(communities, f"{former}社区", town)
    town_name = next(name for name, c in towns.items() if c == town)
    entry = _entries(book, code)[3]
    alone = () if former == "沙头" else (f"{former}社区",)   # 沙头社区 alone is in two towns
    for written in (*alone, f"{town_name}{former}社区", f"{former}{former}社区",
                    f"南海区{town_name}{former}居委会{entry}"):
        assert match.place(written).community_code == code, written
    # the road of the community that carries the former town's name, with or without a town in front
    for written in (entry, f"{town_name}{entry}", f"{former}{entry}", f"佛山市南海区{town_name}{former}{entry}"):
        placed = match.place(written)
        assert placed.method == "address" and placed.community_code == code, written
        assert (placed.lon, placed.lat) == _point(book, code, entry)


def test_a_former_town_narrows_a_community_of_its_town(places):
    match, communities, book, towns = places
    hedong = _community(communities, "河东社区", towns["大沥镇"])
    assert match.place("南海区盐步河东社区").community_code == hedong
    assert match.place(f"大沥镇黄岐{_entries(book, hedong)[0]}").community_code == hedong
    # 沙头 the former town is in 九江: it settles 沙头社区 there, but not against 狮山镇 named in full
    shishan = _community(communities, "沙头社区", towns["狮山镇"])
    assert match.place(f"狮山镇沙头{_entries(book, shishan)[1]}").community_code == shishan


@pytest.mark.parametrize("suffix", ["社区", "村", "居委会", "居委", "村委会", "村委", "社区居委会", "社区居民委员会",
                                    "村民委员会"])
def test_every_way_of_writing_a_community_names_it(places, suffix):
    match, communities, _, towns = places
    dengu = _community(communities, "灯湖社区")
    liangdeng = _community(communities, "良登村")
    assert match.place(f"桂城街道灯湖{suffix}").community_code == dengu
    assert match.place(f"灯湖{suffix}").community_code == dengu
    assert match.place(f"丹灶镇良登{suffix}").community_code == liangdeng
    shatou = _community(communities, "沙头社区", towns["九江镇"])
    assert match.place(f"九江沙头{suffix}").community_code == shatou


def test_the_official_name_tells_a_community_from_a_village_of_the_same_name(places):
    match, communities, _, towns = places
    xiqiao = _community(communities, "西岸社区", towns["西樵镇"])
    danzao = _community(communities, "西岸村", towns["丹灶镇"])
    assert match.place("西岸社区").community_code == xiqiao
    assert match.place("西岸村委会").community_code == danzao
    assert "ambiguous" in match.place("西岸居委").unplaced_reason   # neither's official name
    # the town named wins over the kind written: 西岸 in 丹灶 is a 村, whatever it is called
    assert match.place("丹灶镇西岸社区").community_code == danzao
    assert match.place("西樵镇西岸村").community_code == xiqiao


def test_one_wrong_or_missing_character_in_a_community_name(places):
    match, communities, book, towns = places
    shatou = _community(communities, "沙头社区", towns["九江镇"])
    entry = _entries(book, shatou)[7]
    for written in (f"九江镇沙斗社区{entry}", f"九江镇沙社区{entry}", f"九江镇头社区居委会{entry}",
                    f"南海区九江沙x头社区{entry}"):
        placed = match.place(written)
        assert placed.method == "address" and placed.community_code == shatou, written
    # no street: placed at the community when one name of the town is one edit away, with less confidence
    dengu = _community(communities, "灯湖社区")
    placed = match.place("桂城街道灯胡社区")
    assert (placed.method, placed.community_code, placed.confidence) == ("community", dengu, 0.4)
    # 沙斗 is one edit from 沙头, 沙口 and 沙咀, all in 九江: with no street that is not guessed
    assert "ambiguous" in match.place("九江镇沙斗社区").unplaced_reason
    # a typo read against the town: no community of 桂城 is one edit from 沙斗
    assert match.place("桂城街道沙斗社区").method is None


def test_one_wrong_or_missing_character_in_the_street(places):
    match, communities, book, _ = places
    code = _community(communities, "灯湖社区")
    for entry in _entries(book, code)[:6]:
        wrong = entry[:2] + "x" + entry[3:]
        missing = entry[:1] + entry[2:]
        for written in (f"桂城街道{wrong}", f"桂城街道{missing}", f"灯湖社区{wrong}", missing):
            placed = match.place(written)
            assert placed.method == "address" and placed.community_code == code, written


def test_full_width_digits_spaces_and_a_room_after_the_number(places):
    match, communities, book, _ = places
    code = _community(communities, "灯湖社区")
    entry = next(e for e in _entries(book, code) if e.endswith("号"))
    wide = entry.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for written in (f"广东省 佛山市 南海区 桂城街道 灯湖社区 {wide}", f"桂城街道{entry}502房", f"{entry}之一"):
        placed = match.place(written)
        assert placed.method == "address" and placed.community_code == code, written
        assert (placed.lon, placed.lat) == _point(book, code, entry)


def test_an_estate_written_without_the_community_name(places):
    match, communities, book, towns = places
    code = _community(communities, "沙头社区", towns["狮山镇"])
    entry = next(e for e in _entries(book, code) if e.endswith("栋"))
    placed = match.place(f"狮山镇沙头社区{entry.removeprefix('沙头')}")
    assert placed.method == "address" and (placed.lon, placed.lat) == _point(book, code, entry)


def test_the_street_index_finds_what_comparing_every_address_finds(places):
    """The character bound prunes, never changes the answer: the best ratio and every row reaching it."""
    from rapidfuzz import fuzz

    match, _, _, towns = places
    texts, index = match.texts, match.index
    rng = np.random.default_rng(5)
    queries = [texts[i] for i in rng.integers(0, len(texts), 60)]
    queries += [q[:k] + "华" + q[k + 1:] for q, k in zip(queries[:40], rng.integers(0, 6, 40), strict=True)]
    queries += [q[:k] + q[k + 1:] for q, k in zip(queries[:40], rng.integers(0, 6, 40), strict=True)]
    queries += ["一路3号", "金色家园3栋", "海五路28号", "沙头", "火星基地1号"]
    mask = match.town_rows[towns["九江镇"]]
    for query in queries:
        for rows_mask in (None, mask):
            scores = np.array([fuzz.ratio(query, t) for t in texts])
            if rows_mask is not None:
                scores = np.where(rows_mask, scores, -1.0)
            best, winners = index.best(query, 80.0, rows_mask)
            if scores.max() < 80.0:
                assert winners == [], query
            else:
                assert best == pytest.approx(scores.max()), query
                assert sorted(winners) == sorted(np.flatnonzero(np.isclose(scores, scores.max())).tolist()), query


def test_a_town_in_brackets_after_the_community(places):
    match, communities, book, towns = places
    shishan = _community(communities, "沙头社区", towns["狮山镇"])
    jiujiang = _community(communities, "沙头社区", towns["九江镇"])
    assert match.place("沙头社区（狮山镇）").community_code == shishan
    assert match.place("沙头社区【九江】").community_code == jiujiang
    assert match.place("沙头社区九江镇").community_code == jiujiang
    entry = _entries(book, shishan)[2]
    placed = match.place(f"南海区沙头社区 (狮山) {entry}")
    assert placed.method == "address" and (placed.lon, placed.lat) == _point(book, shishan, entry)
    # unbracketed, a short name after the community is its road, not a town: 西樵一路 is a road of 西樵社区
    xiqiao = _community(communities, "西樵社区")
    road = next(e for e in _entries(book, xiqiao) if e.startswith("西樵一路"))
    assert match.place(f"西樵社区{road}").method == "address"
