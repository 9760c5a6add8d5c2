"""The rules' conditions, clocks, actions and explanations (issue 22), evaluated on small record tables."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.errors import ConfigurationError
from matching.rules import assess, evaluate, load_rules, parse_rules, rule_problems

NOW = pd.Timestamp("2026-12-03 04:00", tz="UTC")  # 12:00 in Nanhai
HUBEI_ID = "420506********1234"   # 宜昌市夷陵区
NANHAI_ID = "440605********5678"
COLUMNS = ["person_key", "source", "category", "reported_at", "origin", "arrived_at", "id_masked", "identified",
           "birth"]


def records(*rows: tuple) -> pd.DataFrame:
    """Rows of (person, source, category, reported, origin, arrived (a local date), masked ID, birth); missing
    trailing values are None."""
    full = [tuple(row) + (None,) * (8 - len(row)) for row in rows]
    frame = pd.DataFrame([(p, s, c, r, o, a, i, i is not None and "*" in i, b) for p, s, c, r, o, a, i, b in full],
                         columns=COLUMNS)
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    frame["arrived_at"] = pd.to_datetime(frame["arrived_at"]).dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
    frame["birth"] = pd.to_datetime(frame["birth"])
    frame["id_masked"] = frame["id_masked"].fillna("—")
    return frame


def rules(body: str):
    return parse_rules(body, "test")


def one_rule(conditions: str, colour: str = "yellow", days: int = 14, clock: str = "registration") -> object:
    return rules(f'[areas]\n"重点地区" = ["湖北省", "温州市"]\n[[rule]]\nid = "r"\ncolour = "{colour}"\n'
                 f'clock = "{clock}"\ndays = {days}\n{conditions}\n')


def coded(conditions: str, recs: pd.DataFrame, **kwargs) -> dict[str, str]:
    codes = evaluate(recs, one_rule(conditions, **kwargs), NOW)
    return dict(zip(codes.index, codes["colour"], strict=True))


# -- each condition kind ---------------------------------------------------------------------------------------
def test_category_and_source_conditions_match_texts_in_any_case():
    recs = records(("a", "南海区卫健局", "确诊病例", "2026-12-01"), ("b", "公安", "Confirmed", "2026-12-01"),
                   ("c", "卫健", "普通", "2026-12-01"))
    assert coded('all = [{ category = ["确诊", "confirmed"] }]', recs) == {"a": "yellow", "b": "yellow",
                                                                            "c": "green"}
    assert coded('all = [{ source = ["卫健"] }]', recs) == {"a": "yellow", "b": "green", "c": "yellow"}


def test_origin_matches_regions_at_every_level_and_area_lists():
    recs = records(("a", "s", "", "2026-12-01", "湖北省宜昌市"), ("b", "s", "", "2026-12-01", "武汉"),
                   ("c", "s", "", "2026-12-01", "浙江温州"), ("d", "s", "", "2026-12-01", "广州市"),
                   ("e", "s", "", "2026-12-01", None), ("f", "s", "", "2026-12-01", "宜昌市夷陵区"))
    assert coded('all = [{ origin = ["重点地区"] }]', recs) == {
        "a": "yellow", "b": "yellow", "c": "yellow", "d": "green", "e": "green", "f": "yellow"}
    assert coded('all = [{ origin = ["宜昌市"] }]', recs) == {
        "a": "yellow", "b": "green", "c": "green", "d": "green", "e": "green", "f": "yellow"}
    assert coded('all = [{ origin = ["420506"] }]', recs) == {
        "a": "green", "b": "green", "c": "green", "d": "green", "e": "green", "f": "yellow"}
    assert coded('all = [{ origin = ["4201"] }]', recs)["b"] == "yellow"


def test_id_region_is_the_persons_and_holds_on_his_records_without_an_id_number():
    recs = records(("a", "公安", "", "2026-12-01", None, None, HUBEI_ID),
                   ("a", "通信", "", "2026-12-02"),                    # the same person, a record with no ID
                   ("b", "公安", "", "2026-12-01", None, None, NANHAI_ID),
                   ("c", "通信", "", "2026-12-01"))
    assert coded('all = [{ id_region = ["湖北"] }]', recs) == {"a": "yellow", "b": "green", "c": "green"}
    assert coded('all = [{ id_region = ["佛山市"] }]', recs) == {"a": "green", "b": "yellow", "c": "green"}
    # a person-level condition holds on his newest record too: the code counts from it
    codes = evaluate(recs, one_rule('all = [{ id_region = ["湖北"] }]'), NOW)
    assert codes.loc["a", "expires_at"] == pd.Timestamp("2026-12-16", tz="UTC")


def test_renamed_and_merged_regions_in_conditions():
    recs = records(("a", "s", "", "2026-12-01", None, None, "420602********0001"),   # 襄阳 (襄樊 before 2010)
                   ("b", "s", "", "2026-12-01", None, None, "371202********0002"),   # 莱芜 (merged into 济南 2019)
                   ("c", "s", "", "2026-12-01", None, None, "370102********0003"))   # 济南
    assert coded('all = [{ id_region = ["襄樊市"] }]', recs) == {"a": "yellow", "b": "green", "c": "green"}
    assert coded('all = [{ id_region = ["莱芜市"] }]', recs) == {"a": "green", "b": "yellow", "c": "green"}
    assert coded('all = [{ id_region = ["山东省"] }]', recs) == {"a": "green", "b": "yellow", "c": "yellow"}


def test_age_from_the_date_of_birth_on_the_day():
    recs = records(("a", "s", "", "2026-12-01", None, None, None, "1966-12-03"),   # 60 today (Beijing time)
                   ("b", "s", "", "2026-12-01", None, None, None, "1966-12-04"),   # 60 tomorrow
                   ("c", "s", "", "2026-12-01", None, None, None, "2020-01-01"),
                   ("d", "s", "", "2026-12-01"))                                  # unknown: neither
    assert coded("all = [{ age_at_least = 60 }]", recs) == {"a": "yellow", "b": "green", "c": "green", "d": "green"}
    assert coded("all = [{ age_below = 14 }]", recs) == {"a": "green", "b": "green", "c": "yellow", "d": "green"}


def test_age_rules_need_the_dates_of_birth():
    with pytest.raises(ValueError, match="birth"):
        evaluate(records(("a", "s", "", "2026-12-01")).drop(columns="birth"),
                 one_rule("all = [{ age_at_least = 60 }]"), NOW)


def test_arrival_conditions():
    recs = records(("a", "s", "", "2026-12-01", "武汉", "2026-11-30"),
                   ("b", "s", "", "2026-12-01", "武汉", "2026-11-10"),
                   ("c", "s", "", "2026-12-01", "武汉"))
    assert coded("all = [{ arrived_within_days = 14 }]", recs) == {"a": "yellow", "b": "green", "c": "green"}
    assert coded("all = [{ arrived_after = 2026-11-10 }]", recs) == {"a": "yellow", "b": "yellow", "c": "green"}
    assert coded("all = [{ arrived_before = 2026-11-10 }]", recs) == {"a": "green", "b": "green", "c": "green"}
    assert coded("all = [{ arrived_before = 2026-11-11 }]", recs) == {"a": "green", "b": "yellow", "c": "green"}


def test_travel_is_any_record_of_the_person():
    recs = records(("a", "s", "", "2026-12-01", None, None, HUBEI_ID), ("a", "s", "", "2026-12-01", "长沙"),
                   ("b", "s", "", "2026-12-01", None, None, HUBEI_ID), ("c", "s", "", "2026-12-01", None, "2026-12-01"))
    assert coded("all = [{ travel = false }]", recs) == {"a": "green", "b": "yellow", "c": "green"}
    assert coded("all = [{ travel = true }]", recs) == {"a": "yellow", "b": "green", "c": "yellow"}


def test_all_any_not_and_another_rules_result():
    body = ('[[rule]]\nid = "blue-old-returner"\ncolour = "blue"\ndays = 14\n'
            'all = [{ rule = "returner" }, { any = [{ age_at_least = 60 }, { source = ["人社"] }] }]\n'
            '[[rule]]\nid = "returner"\ntask = "verification"\ndays = 14\nkeywords = ["返岗"]\n'
            '[[rule]]\nid = "yellow-not-returner"\ncolour = "yellow"\ndays = 14\n'
            'all = [{ category = ["外地"] }, { not = { rule = "returner" } }]\n')
    recs = records(("a", "公安", "返岗", "2026-12-01", None, None, None, "1950-01-01"),
                   ("b", "人社", "返岗", "2026-12-01", None, None, None, "2000-01-01"),
                   ("c", "公安", "返岗", "2026-12-01", None, None, None, "2000-01-01"),
                   ("d", "公安", "外地", "2026-12-01"), ("e", "公安", "外地返岗", "2026-12-01"))
    assessed = assess(recs, rules(body), NOW)
    assert dict(assessed.codes["colour"]) == {"a": "blue", "b": "blue", "c": "green", "d": "yellow", "e": "green"}
    assert sorted(assessed.requests["person_key"]) == ["a", "b", "c", "e"]


# -- the clock: arrival, else registration -----------------------------------------------------------------------
def test_an_arrival_code_counts_from_the_arrival_day_hand_computed():
    key_area = 'clock = "arrival"\nany = [{ origin = ["重点地区"] }]'
    recs = records(("near", "s", "", "2026-12-02 10:00", "湖北省宜昌市", "2026-11-30"),   # three days ago
                   ("far", "s", "", "2026-12-02 10:00", "湖北省宜昌市", "2026-11-13"),    # twenty days ago
                   ("undated", "s", "", "2026-11-25 10:00", "湖北省宜昌市"))            # registration counts
    codes = evaluate(recs, one_rule(key_area.replace('clock = "arrival"\n', ""), clock="arrival"), NOW)
    assert codes.loc["near", "colour"] == "yellow" and codes.loc["far", "colour"] == "green"
    # 2026-11-30 00:00 in Nanhai is 2026-11-29 16:00 UTC; 14 days later
    assert codes.loc["near", "set_at"] == pd.Timestamp("2026-11-29 16:00", tz="UTC")
    assert codes.loc["near", "expires_at"] == pd.Timestamp("2026-12-13 16:00", tz="UTC")
    assert codes.loc["undated", "expires_at"] == pd.Timestamp("2026-12-09 10:00", tz="UTC")
    assert "自抵达日期 2026-11-30 起 14 天" in codes.loc["near", "explanation"]
    assert "14 days from arrival on 2026-11-30" in codes.loc["near", "explanation"]
    assert "自登记时间 2026-11-25 起 14 天" in codes.loc["undated", "explanation"]
    # the day the code runs out, it is gone; the day before, it holds
    last_day = evaluate(recs, one_rule("any = [{ origin = [\"重点地区\"] }]", clock="arrival"),
                        pd.Timestamp("2026-12-13 15:59", tz="UTC"))
    after = evaluate(recs, one_rule("any = [{ origin = [\"重点地区\"] }]", clock="arrival"),
                     pd.Timestamp("2026-12-13 16:00", tz="UTC"))
    assert last_day.loc["near", "colour"] == "yellow" and after.loc["near", "colour"] == "green"


def test_the_registration_clock_ignores_the_arrival_date():
    recs = records(("a", "s", "", "2026-12-01", "武汉", "2026-11-01"))
    assert coded('all = [{ origin = ["湖北"] }]', recs) == {"a": "yellow"}


# -- the shipped rules ---------------------------------------------------------------------------------------------
def test_shipped_rules_say_what_2020_did():
    recs = records(("arrived", "卫健", "", "2026-12-02", "湖北省宜昌市", "2026-11-30", NANHAI_ID),
                   ("long-ago", "卫健", "", "2026-12-02", "湖北省宜昌市", "2026-11-13", NANHAI_ID),
                   ("native", "公安", "常住人口", "2026-12-01", None, None, HUBEI_ID),
                   ("native-travelled", "公安", "常住人口", "2026-12-01", None, None, HUBEI_ID),
                   ("native-travelled", "通信", "", "2026-12-01", "长沙"),
                   ("local", "公安", "常住人口", "2026-12-01", None, None, NANHAI_ID),
                   ("confirmed", "卫健", "确诊病例", "2026-12-01", None, None, HUBEI_ID),
                   ("worker", "人社", "返岗人员", "2026-12-01", None, None, NANHAI_ID))
    assessed = assess(recs, load_rules(), NOW)
    colours = dict(assessed.codes["colour"])
    assert colours == {"arrived": "yellow", "long-ago": "green", "native": "green", "native-travelled": "green",
                       "local": "green", "confirmed": "red", "worker": "blue"}
    requests = assessed.requests.set_index("person_key")
    # the native of a key area with no travel record is verified; the confirmed case too (his ID is Hubei's)
    assert sorted(requests.index) == ["confirmed", "native"]
    assert requests.loc["native", "kind"] == "verification" and requests.loc["native", "rule_id"] == \
        "verify-native-place"
    assert "身份证地区 湖北省宜昌市夷陵区（属重点地区）" in requests.loc["native", "explanation"]
    assert "no travel record" in requests.loc["native", "explanation"]
    explanation = assessed.codes.loc["arrived", "explanation"]
    assert explanation.startswith("yellow-key-area：出发地 湖北省宜昌市（属重点地区）；自抵达日期 2026-11-30 起 14 天")
    assert pd.isna(assessed.codes.loc["local", "explanation"])


def test_an_override_changes_the_colour_not_the_requests():
    recs = records(("a", "s", "", "2026-12-02", "武汉", "2026-12-01", HUBEI_ID),
                   ("b", "公安", "", "2026-12-01", None, None, HUBEI_ID))
    overrides = pd.DataFrame({
        "person_key": ["a", "b"], "colour": ["green", "red"], "reason": ["核酸阴性", "警方通报"],
        "set_by": ["张主任", "李所长"], "set_at": pd.to_datetime(["2026-12-02", "2026-12-02"], utc=True),
        "expires_at": pd.to_datetime(["2026-12-10", "2026-12-10"], utc=True)})
    assessed = assess(recs, load_rules(), NOW, overrides)
    assert dict(assessed.codes["colour"]) == {"a": "green", "b": "red"}
    assert set(assessed.codes["rule_id"]) == {"override"} and assessed.codes["explanation"].isna().all()
    assert list(assessed.requests["person_key"]) == ["b"]


def test_explanations_mask_personal_values():
    recs = records(("a", "s", "", "2026-12-01", None, None, HUBEI_ID, "1950-05-05"))
    codes = evaluate(recs, one_rule('all = [{ id_region = ["重点地区"] }, { age_at_least = 60 }]'), NOW)
    explanation = codes.loc["a", "explanation"]
    assert "年龄 76 岁" in explanation and "1950" not in explanation and "1234" not in explanation


# -- reading the rules -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditions,field,words", [
    ('all = [{ origin = ["朝阳区"] }]', "all", "朝阳"),
    ('all = [{ origin = ["火星"] }]', "all", "火星"),
    ('all = [{ age_at_least = 0 }]', "all", "age_at_least"),
    ('all = [{ arrived_after = "2020-01-10" }]', "all", "date"),
    ('all = [{ colour = ["red"] }]', "all", "unknown condition"),
    ('all = [{ rule = "nobody" }]', "rule", "nobody"),
    ('all = []', "all", "non-empty"),
    ('keywords = ["a"]\nany = [{ travel = true }]', "any", "exactly one"),
    ('all = [{ travel = "no" }]', "all", "true or false"),
])
def test_a_wrong_condition_is_named_with_its_rule_and_field(conditions, field, words):
    body = f'[[rule]]\nid = "r"\ncolour = "yellow"\ndays = 14\n{conditions}\n'
    import tomllib

    problems = rule_problems(tomllib.loads(body))
    assert problems and problems[0].rule == "r" and problems[0].field == field and words in problems[0].reason
    with pytest.raises(ConfigurationError, match=f"rule #1 \\(r\\) · {field}"):
        parse_rules(body, "test")


def test_rules_referring_to_each_other_in_a_circle_are_refused():
    body = ('[[rule]]\nid = "a"\ncolour = "red"\ndays = 1\nall = [{ rule = "b" }]\n'
            '[[rule]]\nid = "b"\ntask = "verification"\ndays = 1\nall = [{ rule = "a" }]\n')
    with pytest.raises(ConfigurationError, match="refers back to itself"):
        parse_rules(body, "test")


def test_a_rule_sets_a_colour_or_a_task_of_a_known_kind():
    with pytest.raises(ConfigurationError, match="colour, a task, or both"):
        parse_rules('[[rule]]\nid = "r"\ndays = 1\nkeywords = ["a"]\n', "test")
    with pytest.raises(ConfigurationError, match="task must be a task kind"):
        parse_rules('[[rule]]\nid = "r"\ntask = "coffee"\ndays = 1\nkeywords = ["a"]\n', "test")


def test_area_lists_resolve_and_are_not_named_like_regions():
    rule = '[[rule]]\nid = "r"\ncolour = "red"\ndays = 1\nkeywords = ["a"]\n'
    with pytest.raises(ConfigurationError, match="named like a region"):
        parse_rules('[areas]\n"湖北" = ["湖北省"]\n' + rule, "t")
    with pytest.raises(ConfigurationError, match="火星"):
        parse_rules('[areas]\n"重点" = ["火星"]\n' + rule, "t")


LEAF = st.one_of(
    st.fixed_dictionaries({"category": st.lists(st.text(max_size=4), max_size=2)}),
    st.fixed_dictionaries({"origin": st.lists(st.sampled_from(["湖北", "朝阳区", "重点地区", "", "42", "99"]),
                                              max_size=2)}),
    st.fixed_dictionaries({"age_at_least": st.one_of(st.integers(-5, 200), st.text(max_size=2))}),
    st.fixed_dictionaries({"travel": st.one_of(st.booleans(), st.integers())}),
    st.fixed_dictionaries({"rule": st.sampled_from(["r0", "r1", "x"])}),
    st.fixed_dictionaries({"arrived_after": st.one_of(st.dates(), st.text(max_size=3))}),
    st.dictionaries(st.sampled_from(["bogus", "all", "not"]), st.integers(), max_size=2),
)
CONDITION = st.recursive(LEAF, lambda inner: st.one_of(
    st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}),
    st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}),
    st.fixed_dictionaries({"not": inner})), max_leaves=6)
RULE = st.fixed_dictionaries(
    {"id": st.sampled_from(["r0", "r1", ""]), "days": st.one_of(st.integers(-1, 400), st.just("x"))},
    optional={"colour": st.sampled_from(["red", "yellow", "purple"]), "task": st.sampled_from(["verification", "x"]),
              "clock": st.sampled_from(["arrival", "registration", "noon"]),
              "all": st.lists(CONDITION, max_size=3), "any": st.lists(CONDITION, max_size=3),
              "keywords": st.lists(st.text(max_size=3), max_size=2)})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({"rule": st.lists(RULE, min_size=1, max_size=3)},
                             optional={"areas": st.dictionaries(st.sampled_from(["重点地区", "湖北"]),
                                                                st.lists(st.sampled_from(["湖北省", "火星"]),
                                                                         max_size=2))}))
def test_a_rules_table_loads_or_is_refused_naming_the_rule_and_field(table):
    """Whatever the table, reading it either gives rules that evaluate, or problems each naming its rule (by
    place) and field — never another error."""
    problems = rule_problems(table)
    if not problems:
        from matching.rules import rules_from_table

        ruleset = rules_from_table(table, "t")
        recs = records(("a", "s", "x", "2026-12-01", "湖北", "2026-12-01", HUBEI_ID, "1950-01-01"))
        assert set(evaluate(recs, ruleset, NOW)["colour"]) <= {"red", "yellow", "blue", "green"}
        return
    for problem in problems:
        assert problem.reason and " / " in problem.reason
        if problem.number is not None:
            assert 1 <= problem.number <= len(table["rule"]) and problem.field


def test_conditions_run_on_whole_columns():
    """200,000 records: every kind of condition at once, on whole columns (an answer check, not a timing)."""
    n = 200_000
    rng = np.random.default_rng(22)
    recs = pd.DataFrame({
        "person_key": np.char.mod("p%06d", rng.integers(0, n // 2, n)).astype(object), "source": "卫健",
        "category": rng.choice(np.array(["确诊", "返岗", "", "湖北返回"], dtype=object), n),
        "reported_at": pd.Timestamp("2026-12-01", tz="UTC"),
        "origin": rng.choice(np.array(["湖北省宜昌市", None, "广州", "武汉"], dtype=object), n),
        "arrived_at": pd.Series(pd.Timestamp("2026-11-30 16:00", tz="UTC"), index=range(n)).where(
            rng.random(n) < 0.3), "id_masked": rng.choice(np.array([HUBEI_ID, NANHAI_ID, "—"], dtype=object), n)})
    recs["identified"] = recs["id_masked"] != "—"
    assessed = assess(recs, load_rules(), NOW)
    assert len(assessed.codes) == recs["person_key"].nunique()
    red = recs.loc[recs["category"] == "确诊", "person_key"].unique()
    assert (assessed.codes.loc[red, "colour"] == "red").all()
    assert dt.date(2026, 12, 1) <= assessed.requests["since"].min().date()
