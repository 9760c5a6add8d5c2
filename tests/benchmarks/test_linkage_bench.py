"""The linkage benchmark's generator draws what benchmarks/RESULTS.md says it draws, and a small run meets a floor.

Speed is measured by ``gridctl bench linkage`` (1,000,000 records), not here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein

from benchmarks.linkage import RATES, generate, linkage_benchmark

# The rates RESULTS.md states (issue 21's minimums: 10 % phones, 5 % names, 30 % without birth, 15 % families).
STATED = {"phone_typo": 0.10, "phone_other": 0.01, "name_wrong_char": 0.05, "name_missing_char": 0.01,
          "birth_missing": 0.30, "birth_typo": 0.02, "address_typo": 0.03, "phone_only": 0.05,
          "address_missing": 0.40, "not_in_set": 0.10, "family_share": 0.15}


@pytest.fixture(scope="module")
def drawn():
    return generate(20_000, seed=3)


def test_the_rates_are_those_stated(drawn):
    for key, share in STATED.items():
        assert RATES[key] == share
        assert share <= drawn.rates[key] < share + 0.002, key       # exact counts, rounded up
    assert 0.05 < drawn.rates["sibling_share"] < drawn.rates["family_share"]


def test_the_noise_is_what_it_says(drawn):
    """The typos are one edit away from the truth: a wrong, dropped or swapped digit, a wrong or missing character."""
    rec = drawn.records.assign(person=drawn.person)
    truth = rec[rec["identified"]].drop_duplicates("person").set_index("person")
    noisy = rec[~rec["identified"] & rec["person"].isin(truth.index)]
    phones = noisy.join(truth["phone"].rename("true_phone"), on="person").dropna(subset=["phone", "true_phone"])
    changed = phones[phones["phone"] != phones["true_phone"]]
    one_digit = [DamerauLevenshtein.distance(a, b) == 1
                 for a, b in zip(changed["phone"], changed["true_phone"], strict=True)]
    names = noisy[noisy["name"] != ""].join(truth["name"].rename("true_name"), on="person")
    changed_names = names[names["name"] != names["true_name"]]
    one_char = [Levenshtein.distance(a, b) == 1
                for a, b in zip(changed_names["name"], changed_names["true_name"], strict=True)]
    # a tenth of the phones one digit off (and a few other numbers, or an identified record's older one)
    assert 0.09 < sum(one_digit) / len(phones) < 0.11 and np.mean(one_digit) > 0.8
    assert 0.055 < sum(one_char) / len(names) < 0.065 and all(one_char)


def test_siblings_differ_by_one_character_and_share_phone_and_home(drawn):
    rec = drawn.records[drawn.records["identified"]]
    family = drawn.family[drawn.person[rec.index.to_numpy()]]
    checked = 0
    for _, group in rec.assign(family=family)[family >= 0].groupby("family"):
        if group["phone"].nunique() == 1 and len(group["name"].unique()) >= 2:
            names = group["name"].unique().tolist()
            same_length = [n for n in names if len(n) == len(names[0])]
            if len(same_length) >= 2 and Levenshtein.distance(same_length[0], same_length[1]) == 1:
                checked += 1
    assert checked > 20


def test_a_small_run_meets_a_floor():
    lines: list[str] = []
    figures = linkage_benchmark(5_000, seed=11, echo=lines.append)
    json.dumps(figures)
    assert figures["records"] == 5_000 and figures["unidentified_records"] == 1_000
    assert figures["precision"] >= 0.99 and figures["recall"] >= 0.96 and figures["review_share"] <= 0.03
    assert figures["exact_join_recall"] == 0.0 and figures["exact_fields_recall"] < figures["recall"]
    assert figures["not_in_set_kept_apart"] >= 0.9
    assert {"train_seconds", "link_seconds", "seconds", "upper", "lower"} <= set(figures)
    assert any("precision" in line for line in lines)
