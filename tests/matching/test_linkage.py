"""Probabilistic record linkage (issue 21, point 2), as a pure module: no database.

The model is trained once, on a small population drawn by the benchmark's generator (its weights are learnt, not
set here). Each test then adds a few people of its own to that population, with names, phones and addresses
nobody in it has, and links the lot with the trained model, as every match after the first does.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.linkage import GIVEN, SURNAMES, generate
from matching.linkage import LOWER, UPPER, address_key, building_key, link_records, posterior

IDENTIFIED_FEED, UNIDENTIFIED_FEED = 90, 91

# Test people: compound surnames and mobile numbers (170…) that the generated population never has.
A = {"name": "司马骐骥", "phone": "17000000001", "birth": "1980-02-03",
     "address": "南海区桂城街道试验社区试验一路1号1座101房"}
B = {"name": "上官琬瑜", "phone": "17000000002", "birth": "1975-06-07", "address": "里水镇测绘社区测绘大道8号2座202房"}
# two parents sharing the family phone and home
MOTHER = {"name": "东方丽华", "phone": "17000000004", "birth": "1962-03-04", "address": "丹灶镇样板村样板东街5号"}
FATHER = {"name": "诸葛明哲", "phone": "17000000004", "birth": "1960-08-09", "address": "丹灶镇样板村样板东街5号"}
# siblings: the same generation character, one character apart, the family phone and home
ELDER = {"name": "欧阳嘉豪", "phone": "17000000003", "birth": "1990-01-01", "address": "狮山镇演示村演示南路9号"}
YOUNGER = {"name": "欧阳嘉伟", "phone": "17000000003", "birth": "1993-05-05", "address": "狮山镇演示村演示南路9号"}


@pytest.fixture(scope="module")
def background() -> pd.DataFrame:
    return generate(3_000, seed=5).records


@pytest.fixture(scope="module")
def first(background):
    """The first match: no stored model, so link_records trains one on the records."""
    return link_records(background)


@pytest.fixture(scope="module")
def model(first) -> dict:
    return first.settings


def identified(*people: dict) -> list[dict]:
    return [{"record_id": (IDENTIFIED_FEED << 32) + i, "identified": True, "person_key": f"key-{p['name']}", **p}
            for i, p in enumerate(people)]


def unidentified(*rows: dict) -> list[dict]:
    blank = {"name": "", "phone": None, "birth": None, "address": None}
    return [{"record_id": (UNIDENTIFIED_FEED << 32) + i, "identified": False,
             "person_key": f"~{UNIDENTIFIED_FEED}-{i}", **blank, **row} for i, row in enumerate(rows)]


def link(background, model, people: list[dict], rows: list[dict], decisions=None):
    records = pd.concat([background, pd.DataFrame(people + rows)], ignore_index=True)
    result = link_records(records, decisions=decisions, settings=model)
    mine = {row["record_id"] for row in rows}
    links = result.links[result.links["record_id"].isin(mine)].set_index("record_id")
    pairs = result.pairs[result.pairs["record_id"].isin(mine)]
    return links, pairs, result


def rid(n: int) -> int:
    return (UNIDENTIFIED_FEED << 32) + n


def iid(n: int) -> int:
    return (IDENTIFIED_FEED << 32) + n


def test_the_test_people_are_not_in_the_generated_population(background):
    for person in (A, B, MOTHER, FATHER, ELDER, YOUNGER):
        assert person["name"] not in set(background["name"])
        assert person["phone"] not in set(background["phone"].dropna())
    assert not set("司上东诸") & set(SURNAMES) and "骐" not in GIVEN


def test_the_first_match_trains_the_model_and_it_is_json(first, background):
    assert first.trained
    comparisons = {c["output_column_name"]: c for c in first.settings["comparisons"]}
    assert set(comparisons) == {"name", "birth", "household"}
    for comparison in comparisons.values():
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                assert 0 < level["m_probability"] <= 1 and 0 < level["u_probability"] <= 1
    json.loads(json.dumps(first.settings))
    # one row per ID-less record, none for the identified ones (never re-linked)
    assert sorted(first.links["record_id"]) == sorted(background.loc[~background["identified"], "record_id"])


def test_a_given_model_is_used_not_retrained(background, model):
    links, _, result = link(background, model, identified(A), unidentified({"phone": A["phone"]}))
    assert not result.trained and result.settings == model


@pytest.mark.parametrize("row", [
    {"phone": A["phone"]},                                            # an operator's list: the phone alone
    {"name": A["name"], "birth": A["birth"]},                         # name and date of birth
    {"name": A["name"], "address": "佛山市南海区试验社区试验一路1号"},       # name and address (written otherwise)
    {"name": A["name"], "phone": A["phone"]},                         # a tip-off: name and phone
    {"name": A["name"], "phone": A["phone"][:-1]},                    # … its phone one digit short
    {"name": "司马骐骏", "phone": A["phone"], "birth": A["birth"]},      # … a wrong character in the name
    {"phone": "17000000010"},                                          # the phone alone, one digit wrong
], ids=["phone", "name+birth", "name+address", "name+phone", "phone-short", "name-typo", "phone-typo"])
def test_each_identity_links_to_the_right_person(background, model, row):
    links, pairs, _ = link(background, model, identified(A, B), unidentified(row))
    got = links.loc[rid(0)]
    assert got["band"] == "auto" and got["person_key"] == f"key-{A['name']}"
    assert UPPER <= got["score"] <= 1 and pairs.empty


def test_the_fields_that_agreed_are_given(background, model):
    links, _, _ = link(background, model, identified(A), unidentified({"name": A["name"], "phone": A["phone"]}))
    assert links.loc[rid(0), "agreeing"] == "phone,name"


def test_a_phone_shared_by_a_family_goes_to_review_with_each_candidate(background, model):
    links, pairs, _ = link(background, model, identified(MOTHER, FATHER), unidentified({"phone": MOTHER["phone"]}))
    got = links.loc[rid(0)]
    assert got["band"] == "review" and LOWER <= got["score"] < UPPER
    # meanwhile a provisional person of its own: it stays in the net
    assert got["person_key"] == f"~{UNIDENTIFIED_FEED}-0"
    assert set(pairs["other_record_id"]) == {iid(0), iid(1)}
    assert set(pairs["other_person_key"]) == {f"key-{MOTHER['name']}", f"key-{FATHER['name']}"}
    assert (pairs["agreeing"] == "phone,address").all() or (pairs["agreeing"] == "phone").all()
    assert np.allclose(pairs["score"], pairs["score"].iloc[0])


def test_a_record_nobody_matches_is_a_new_person(background, model):
    links, pairs, _ = link(background, model, identified(A), unidentified({"name": "皇甫无名", "phone": "17099999999"}))
    got = links.loc[rid(0)]
    assert got["band"] == "new" and math.isnan(got["score"]) and got["agreeing"] == ""
    assert got["person_key"] == f"~{UNIDENTIFIED_FEED}-0" and pairs.empty


def test_a_weak_candidate_leaves_the_record_new(background, model):
    # only a name one character off, nothing else: not enough to review, let alone link
    links, _, _ = link(background, model, identified(A), unidentified({"name": "司马骐驹", "phone": "17099999998"}))
    assert links.loc[rid(0), "band"] == "new"


def test_a_same_decision_links_a_review_pair(background, model):
    decisions = pd.DataFrame({"record_id": [rid(0)], "other_record_id": [iid(1)], "decision": ["same"]})
    links, pairs, _ = link(background, model, identified(MOTHER, FATHER), unidentified({"phone": MOTHER["phone"]}),
                           decisions)
    got = links.loc[rid(0)]
    assert got["band"] == "decided" and got["person_key"] == f"key-{FATHER['name']}"
    assert pairs.empty and got["score"] >= LOWER and "phone" in got["agreeing"]


def test_a_different_decision_splits_even_a_perfect_match(background, model):
    row = {"name": A["name"], "phone": A["phone"], "birth": A["birth"], "address": A["address"]}
    links, _, _ = link(background, model, identified(A), unidentified(row))
    assert links.loc[rid(0), "person_key"] == f"key-{A['name']}"
    decisions = pd.DataFrame({"record_id": [rid(0)], "other_record_id": [iid(0)], "decision": ["different"]})
    links, pairs, _ = link(background, model, identified(A), unidentified(row), decisions)
    got = links.loc[rid(0)]
    assert got["person_key"] == f"~{UNIDENTIFIED_FEED}-0" and got["band"] == "new" and pairs.empty


def test_two_records_of_a_person_nobody_identified_make_one_provisional_person(background, model):
    row = {"name": B["name"], "phone": B["phone"], "birth": B["birth"]}
    links, _, _ = link(background, model, identified(A), unidentified(row, {**row, "birth": None}))
    assert (links["band"] == "new").all()
    assert set(links["person_key"]) == {f"~{UNIDENTIFIED_FEED}-0"}      # the older record's key
    # a reviewer said they are different people: two provisional people
    decisions = pd.DataFrame({"record_id": [rid(1)], "other_record_id": [rid(0)], "decision": ["different"]})
    links, _, _ = link(background, model, identified(A), unidentified(row, {**row, "birth": None}), decisions)
    assert links.loc[rid(0), "person_key"] == f"~{UNIDENTIFIED_FEED}-0"
    assert links.loc[rid(1), "person_key"] == f"~{UNIDENTIFIED_FEED}-1"


def test_a_same_decision_follows_the_other_record_to_its_person(background, model):
    rows = unidentified({"name": A["name"], "phone": A["phone"]}, {"name": "皇甫无名", "phone": "17099999999"})
    decisions = pd.DataFrame({"record_id": [rid(1)], "other_record_id": [rid(0)], "decision": ["same"]})
    links, _, _ = link(background, model, identified(A), rows, decisions)
    assert links.loc[rid(0), "band"] == "auto"
    assert links.loc[rid(1), "band"] == "decided" and links.loc[rid(1), "person_key"] == f"key-{A['name']}"


def test_a_sibling_is_not_linked_to_his_brother(background, model):
    # Only the elder brother is identified; the younger's record shares the family phone and home, his name is one
    # character off the brother's, his date of birth is his own.
    row = {"name": YOUNGER["name"], "phone": YOUNGER["phone"], "birth": YOUNGER["birth"],
           "address": YOUNGER["address"]}
    links, _, _ = link(background, model, identified(ELDER), unidentified(row))
    assert links.loc[rid(0), "band"] != "auto"
    assert links.loc[rid(0), "person_key"] != f"key-{ELDER['name']}"


def test_with_both_siblings_identified_a_record_goes_to_the_right_one(background, model):
    row = {"name": YOUNGER["name"], "phone": YOUNGER["phone"], "address": YOUNGER["address"]}   # no birth
    links, _, _ = link(background, model, identified(ELDER, YOUNGER), unidentified(row))
    assert links.loc[rid(0), "band"] == "auto"
    assert links.loc[rid(0), "person_key"] == f"key-{YOUNGER['name']}"


def test_nothing_to_link_trains_nothing(background):
    result = link_records(background[background["identified"]])
    assert result.links.empty and result.pairs.empty and not result.trained and result.settings == {}


def test_too_few_records_to_learn_from_still_link_but_do_not_count_as_trained():
    records = pd.DataFrame(identified(A, B) + unidentified({"name": A["name"], "phone": A["phone"]},
                                                           {"name": B["name"], "birth": B["birth"]}))
    result = link_records(records)
    assert not result.trained
    assert result.links.set_index("record_id")["person_key"].to_dict() == {
        rid(0): f"key-{A['name']}", rid(1): f"key-{B['name']}"}


def test_candidates_compete():
    frame = pd.DataFrame({"record_id": [1, 1, 2], "weight": [20.0, 20.0, 20.0]})
    assert posterior(frame).round(3).tolist() == [0.5, 0.5, 1.0]


def test_address_keys_drop_what_is_written_in_front():
    key = "沙头社区沙头一路176号"
    for written in ("广东省佛山市南海区九江镇沙头社区沙头一路176号", "佛山南海九江沙头社区沙头一路176号",
                    "沙头社区沙头一路176号"):
        assert address_key(written) == key          # 沙头 is also a former town: kept before 社区
    assert address_key("大沥大镇社区大镇南路148号") == "大镇社区大镇南路148号"
    assert building_key("沙头社区沙头一路176号11座1702") == key
