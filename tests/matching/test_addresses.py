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
