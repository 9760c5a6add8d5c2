"""China's administrative regions: names, codes, former divisions, travel texts and whole columns."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.errors import ConfigurationError
from matching.regions import CHANGES, FORMER, LEVELS, TABLE, Divisions, divisions, short_forms

D = divisions()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _rows(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# -- the data -------------------------------------------------------------------------------------------------------

def test_the_2023_table_ships_whole():
    assert len(_rows(TABLE / "provinces.csv")) == 31
    assert len(_rows(TABLE / "cities.csv")) == 342
    assert len(_rows(TABLE / "counties.csv")) == 2978
    assert (TABLE.parent / "SOURCES.md").is_file()


def test_every_former_division_is_checked_against_the_2023_table():
    today = {row["code"]: row["name"]
             for name in ("provinces", "cities", "counties") for row in _rows(TABLE / f"{name}.csv")}
    rows = _rows(FORMER)
    assert 10 <= len(rows) <= 30
    for row in rows:
        assert row["change"] in CHANGES and row["level"] in LEVELS, row
        assert len(row["code"]) == {"prefecture": 4, "county": 6}[row["level"]], row
        assert 1949 < int(row["year"]) <= 2023, row
        if row["change"] == "renamed":  # the same code, present under its new name
            assert row["became"] == row["code"] and today[row["code"]] != row["name"], row
        else:  # merged, recoded or abolished: the code is gone
            assert row["code"] not in today, row
            assert row["became"] == "" if row["change"] == "abolished" else row["became"] in today, row


def test_divisions_are_loaded_once():
    assert divisions() is divisions()


@pytest.mark.parametrize(("name", "level", "forms"), [
    ("湖北省", "province", ["湖北"]),
    ("内蒙古自治区", "province", ["内蒙古"]),
    ("新疆维吾尔自治区", "province", ["新疆"]),
    ("北京市", "province", ["北京"]),
    ("恩施土家族苗族自治州", "prefecture", ["恩施", "恩施州"]),
    ("克孜勒苏柯尔克孜自治州", "prefecture", ["克孜勒苏", "克孜勒苏州"]),
    ("大兴安岭地区", "prefecture", ["大兴安岭"]),
    ("兴安盟", "prefecture", ["兴安"]),
    ("龙胜各族自治县", "county", ["龙胜", "龙胜县"]),
    ("鄂温克族自治旗", "county", ["鄂温克", "鄂温克旗"]),
    ("互助土族自治县", "county", ["互助", "互助县"]),
    ("神农架林区", "county", ["神农架"]),
    ("夷陵区", "county", ["夷陵"]),
    ("赵县", "county", []),
    ("城区", "county", []),
])
def test_short_forms(name, level, forms):
    assert short_forms(name, level) == forms


# -- region(): what a rule names ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "code"), [
    # full names at each level
    ("湖北省", "42"), ("武汉市", "4201"), ("恩施土家族苗族自治州", "4228"), ("夷陵区", "420506"),
    ("内蒙古自治区", "15"), ("神农架林区", "429021"),
    # short names
    ("湖北", "42"), ("武汉", "4201"), ("恩施州", "4228"), ("恩施", "4228"), ("内蒙古", "15"), ("广西", "45"),
    ("夷陵", "420506"), ("西安", "6101"), ("中山", "4420"),
    # codes, with trailing 00 pairs
    ("42", "42"), ("4201", "4201"), ("420100", "4201"), ("420000", "42"), ("420500", "4205"), ("420506", "420506"),
    ("４２０５", "4205"),
    # qualified names resolve to the child
    ("湖北省宜昌市", "4205"), ("湖北 宜昌", "4205"), ("湖北省宜昌市夷陵区", "420506"), ("宜昌夷陵", "420506"),
    # a name inside another of the same name gives way; a province comes first among short names
    ("长沙", "4301"), ("长沙县", "430121"), ("吉林", "22"), ("吉林市", "2202"), ("海南", "46"), ("青海海南", "6325"),
    # municipalities
    ("北京市", "11"), ("北京", "11"), ("北京市朝阳区", "110105"), ("北京朝阳", "110105"), ("辽宁省朝阳市", "2113"),
    ("朝阳市", "2113"), ("长春朝阳", "220104"), ("重庆", "50"),
])
def test_region_names_and_codes(text, code):
    assert D.region(text).code == code


def test_a_region_carries_its_level_and_full_name():
    assert D.region("夷陵") == D.region("420506")
    county = D.region("420506")
    assert (county.name, county.level, county.full_name) == ("夷陵区", "county", "湖北省宜昌市夷陵区")
    assert (D.region("宜昌").level, D.region("湖北").level) == ("prefecture", "province")
    # placeholders (市辖区, 省直辖县级行政区划) are left out of full names, and so is a repeated name
    assert D.region("110105").full_name == "北京市朝阳区"
    assert D.region("仙桃").full_name == "湖北省仙桃市"
    assert D.region("620201").full_name == "甘肃省嘉峪关市"
    assert D.region("嘉峪关市").code == "6202"
    assert D.region("441900").code == "4419"  # 东莞市 listed again as its own county


@pytest.mark.parametrize(("text", "candidates"), [
    ("朝阳区", ["北京市朝阳区", "吉林省长春市朝阳区"]),
    ("鼓楼区", ["江苏省南京市鼓楼区", "江苏省徐州市鼓楼区", "福建省福州市鼓楼区", "河南省开封市鼓楼区"]),
    ("朝阳", ["北京市朝阳区", "辽宁省朝阳市"]),
    ("城区", ["山西省阳泉市城区", "山西省晋城市城区", "广东省汕尾市城区"]),
])
def test_a_name_of_several_regions_is_refused_with_its_candidates(text, candidates):
    with pytest.raises(ConfigurationError) as refused:
        D.region(text)
    message = str(refused.value)
    assert all(candidate in message for candidate in candidates), message
    assert "省份或代码" in message and "write the province" in message and text in message


@pytest.mark.parametrize("text", ["火星", "", "   ", "99", "4299", "420599", "湖北省火星市", "湖北省-宜昌市"])
def test_an_unknown_region_is_refused_by_name(text):
    with pytest.raises(ConfigurationError, match="unknown region") as refused:
        D.region(text)
    assert text.strip() in str(refused.value)


def test_a_long_number_is_refused_without_being_repeated():
    made_up_id = "42050619900101123X"[:17]  # digits only: read as a code
    with pytest.raises(ConfigurationError, match="unknown region code") as refused:
        D.region(made_up_id)
    assert made_up_id not in str(refused.value) and "17 digits" in str(refused.value)


def test_names_that_do_not_lie_in_one_another_are_refused():
    with pytest.raises(ConfigurationError, match="do not lie in one another"):
        D.region("湖北省长沙市")


# -- former divisions -----------------------------------------------------------------------------------------------

def test_a_renamed_prefecture_is_todays():
    old = D.region("襄樊市")
    assert (old.code, old.name) == ("4206", "襄阳市")
    assert D.region("襄樊") == old and D.region("思茅市").name == "普洱市" and D.region("荆沙市").code == "4210"
    assert D.within(["420602", "420506"], old).tolist() == [True, False]
    assert D.region("襄阳区").code == "420607"  # a renamed county: 襄州区 today


def test_a_merged_prefecture_is_a_region_of_its_own_and_its_ids_lie_in_what_it_went_into():
    laiwu = D.region("莱芜市")
    assert (laiwu.code, laiwu.name, laiwu.level, laiwu.full_name) == ("3712", "莱芜市", "prefecture", "山东省莱芜市")
    assert D.region("3712") == laiwu
    # IDs issued there before 2019 (371202…) and after (济南市莱芜区 370116…, 钢城区 370117…), not 济南's others
    assert D.within(["371202", "371203", "370116", "370117", "370102"], laiwu).tolist() == [True] * 4 + [False]
    assert laiwu.other_codes == ("370116", "370117")
    assert D.within(["371202", "370116", "370102"], D.region("济南市")).tolist() == [True, True, True]
    assert D.name_of("371202").startswith("山东省莱芜市") and "济南市莱芜区" in D.name_of("371202")
    assert D.name_of("371299").startswith("山东省莱芜市（已撤销")
    # today's 莱芜区 holds the old code of 莱城区 too
    assert D.within(["371202", "371203"], D.region("莱芜区")).tolist() == [True, False]


def test_an_abolished_prefecture_falls_back_to_its_province():
    assert D.region("3414").name == "巢湖市"
    assert D.name_of("341421") == "安徽省巢湖市（已撤销）"
    assert D.region("巢湖市").code == "340181"  # today's county-level 巢湖市 before the former prefecture
    assert D.within(["341402", "341421"], D.region("合肥市")).tolist() == [True, False]
    assert D.within(["341421", "340181", "340124"], D.region("3414")).tolist() == [True, True, False]


def test_a_recoded_county_is_todays_region_holding_its_old_code():
    yunyang = D.region("郧县")
    assert (yunyang.code, yunyang.name, yunyang.other_codes) == ("420304", "郧阳区", ("420321",))
    assert D.within(["420321", "420304", "420322"], yunyang).tolist() == [True, True, False]
    assert D.name_of("420321") == "湖北省十堰市郧县（已撤销，今属十堰市郧阳区）"
    nanhai = D.region("南海市")
    assert nanhai.code == "440605" and nanhai.codes == ("440605", "440682")
    assert D.region("崇文区").code == "110103" and D.within(["110103"], D.region("东城区")).tolist() == [True]


# -- name_of(): an ID region code -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "name"), [
    ("420506", "湖北省宜昌市夷陵区"),
    ("42050619900101123X", "湖北省宜昌市夷陵区"),  # a whole (made-up) ID number: its first six digits
    ("420599", "湖北省宜昌市"),  # a county the table lacks: its prefecture
    ("429999", "湖北省"),  # no such prefecture either: the province
    ("110199", "北京市"),  # the municipality's placeholder 市辖区 is skipped
    ("429004", "湖北省仙桃市"),
    ("441900", "广东省东莞市"),
    ("4205", "湖北省宜昌市"),
    ("990101", ""), ("", ""), ("abcdef", ""),
])
def test_name_of(code, name):
    assert D.name_of(code) == name


# -- place(): where a travel text lies ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "code"), [
    ("湖北省宜昌市", "4205"), ("湖北宜昌", "4205"), ("宜昌", "4205"), ("武汉市江岸区", "420102"), ("湖北", "42"),
    ("湖北省武汉市汉口火车站", "4201"), ("北京", "11"), ("北京市", "11"), ("广州", "4401"), ("襄樊", "4206"),
    ("长沙县", "430121"), ("湖南长沙县", "430121"), ("武汉江岸", "420102"),
    # messy texts
    ("  湖北省 宜昌市 ", "4205"), ("湖北省\u3000宜昌市", "4205"), ("湖北\n宜昌", "4205"), ("来自湖北武汉", "4201"),
    ("武汉（途经长沙）", "4201"), ("武汉-长沙", "4201"), ("武汉→长沙→广州", "4201"),
    # context settles a name of several regions, before or after it
    ("北京朝阳", "110105"), ("朝阳北京", "110105"), ("辽宁朝阳", "2113"), ("长春朝阳", "220104"),
    ("福州鼓楼", "350102"), ("阳泉城区", "140302"), ("青海海南", "6325"), ("海南海口", "4601"),
    # candidates in one province: the region they share
    ("桥西区", "13"),
    # former names
    ("莱芜市", "3712"), ("郧县", "420304"), ("上海闸北", "310108"),
    ("山东省莱芜市莱城区寨里镇", "370116"), ("莱城区莱芜市", "370116"),  # an old address: the land's code today
])
def test_place(text, code):
    assert D.place(text) == code


@pytest.mark.parametrize("text", [
    None, "", "   ", "哈哈", "12345", "朝阳", "朝阳区", "鼓楼", "城区", "市中区", "新华区",
])
def test_place_gives_none_for_nothing_or_several_provinces(text):
    assert D.place(text) is None


def test_a_short_county_name_needs_a_context_that_settles_it():
    assert D.place("鼓楼") is None and D.place("南京鼓楼") == "320106"
    assert D.place("湖北鼓楼") == "42"  # no 鼓楼 in 湖北: the name is passed over
    assert D.place("湖北武汉东方医院") == "4201"  # 东方 (海南) lies elsewhere: another place, left out


NAMES = sorted({form for region in D.regions() for name in (region.name, region.full_name)
                for form in (name, *short_forms(name, region.level))})


@st.composite
def _travel_texts(draw):
    names = draw(st.lists(st.sampled_from(NAMES), max_size=4))
    noise = draw(st.lists(st.text(max_size=4), min_size=len(names) + 1, max_size=len(names) + 1))
    return "".join(part for pair in zip(noise, [*names, ""], strict=True) for part in pair)


@FUZZ
@given(st.one_of(st.text(max_size=40), _travel_texts()))
def test_place_never_raises_and_gives_a_code_region_accepts(text):
    code = D.place(text)
    if code is not None:
        assert len(code) in (2, 4, 6) and code.isdigit()
        assert D.region(code).code == code


# -- whole columns --------------------------------------------------------------------------------------------------

TEXTS = ["湖北宜昌", None, "", "湖北宜昌", "北京朝阳", "朝阳", "来自湖北武汉"]
CODES = ["4205", None, None, "4205", "110105", None, "4201"]


@pytest.mark.parametrize("column", [
    TEXTS, np.array(TEXTS, dtype=object), pd.Series(TEXTS, dtype=object), pd.Series(TEXTS, dtype="str"),
    pa.array(TEXTS), pa.chunked_array([TEXTS[:3], TEXTS[3:]]), pa.array(TEXTS).dictionary_encode(),
])
def test_place_all_reads_any_column(column):
    placed = D.place_all(column)
    assert isinstance(placed, np.ndarray) and placed.dtype == object
    assert placed.tolist() == CODES


def test_place_all_of_nothing():
    assert D.place_all([]).tolist() == [] and D.place_all([None, None]).tolist() == [None, None]


def test_within_is_vectorised_and_none_is_outside():
    yichang = D.region("宜昌市")
    codes = ["420506", "4205", "42", None, "4201", "420506199001011234", "4206"]
    expected = [True, True, False, False, False, True, False]
    for column in (codes, np.array(codes, dtype=object), pd.Series(codes), pa.array(codes)):
        inside = D.within(column, yichang)
        assert inside.dtype == bool and inside.tolist() == expected
    assert D.within([], yichang).tolist() == []
    assert D.within(D.place_all(TEXTS), D.region("湖北")).tolist() == [True, False, False, True, False, False, True]


def test_divisions_read_from_given_files(tmp_path):
    former = tmp_path / "former.csv"
    former.write_text("code,name,level,became,year,change,note\n4206,襄樊市,prefecture,4206,2010,renamed,\n",
                      encoding="utf-8")
    own = Divisions(TABLE, former)
    assert own.region("襄樊").code == "4206"
    with pytest.raises(ConfigurationError):
        own.region("莱芜市")


def test_a_column_of_several_arrow_chunks_is_placed_whole():
    """A large load gives pandas columns of several Arrow chunks (the matcher's million records)."""
    import pyarrow as pa

    column = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([["湖北宜昌", None], ["北京"]])))
    assert list(divisions().place_all(column)) == ["4205", None, "11"]
