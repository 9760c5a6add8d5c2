import pandas as pd
import pytest

from gis.errors import ConfigurationError
from matching.rules import evaluate, load_rules

NOW = pd.Timestamp("2026-11-25 12:00", tz="UTC")


def records(*rows):
    frame = pd.DataFrame(rows, columns=["person_key", "source", "category", "reported_at"])
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    return frame


def test_precedence_red_over_yellow_over_blue_and_sources_listed():
    codes = evaluate(records(("a", "通信", "重点地区返回", "2026-11-24"), ("a", "公安", "密切接触者", "2026-11-23"),
                             ("a", "卫健", "密接", "2026-11-22"), ("b", "人社", "返岗人员", "2026-11-24"),
                             ("b", "通信", "湖北返回", "2026-11-24"), ("c", "人社", "返岗人员", "2026-11-24"),
                             ("d", "公安", "", "2026-11-24")), load_rules(), NOW)
    assert codes.loc["a", "colour"] == "red" and codes.loc["a", "rule_id"] == "red-close-contact"
    assert codes.loc["a", "sources"] == "公安;卫健"
    assert codes.loc["a", "set_at"] == pd.Timestamp("2026-11-22", tz="UTC")
    assert codes.loc["a", "expires_at"] == pd.Timestamp("2026-12-07", tz="UTC")
    assert codes.loc["b", "colour"] == "yellow" and codes.loc["c", "colour"] == "blue"
    assert (codes.loc["b", "sources"], codes.loc["c", "sources"], codes.loc["d", "sources"]) == ("通信", "人社", "")
    assert codes.loc["d", "colour"] == "green" and pd.isna(codes.loc["d", "expires_at"])


def test_persons_are_listed_by_first_record_or_in_the_order_given():
    recs = records(("b", "人社", "返岗人员", "2026-11-24"), ("a", "卫健", "确诊", "2026-11-24"),
                   ("b", "公安", "密切接触者", "2026-11-23"), ("c", "公安", "", "2026-11-24"))
    codes = evaluate(recs, load_rules(), NOW)
    assert list(codes.index) == ["b", "a", "c"] and list(codes["colour"]) == ["red", "red", "green"]
    given = evaluate(recs, load_rules(), NOW, people=pd.Index(["c", "a", "b"], name="person_key"))
    pd.testing.assert_frame_equal(given, codes.loc[["c", "a", "b"]])


def test_a_code_expires_with_its_rule():
    codes = evaluate(records(("a", "卫健", "确诊", "2026-10-01"), ("b", "卫健", "确诊", "2026-11-01"),
                             ("c", "通信", "湖北返回", "2026-11-10"), ("d", "通信", "湖北返回", "2026-11-12")),
                     load_rules(), NOW)
    assert list(codes.loc[["a", "b", "c", "d"], "colour"]) == ["green", "red", "green", "yellow"]


def test_an_override_holds_until_it_expires_whatever_the_rules_say():
    recs = records(("a", "卫健", "确诊", "2026-11-24"), ("b", "公安", "", "2026-11-24"))
    overrides = pd.DataFrame({
        "person_key": ["a", "b"], "colour": ["green", "red"], "reason": ["核酸阴性", "警方通报"],
        "set_by": ["张主任", "李所长"],
        "set_at": pd.to_datetime(["2026-11-25 08:00", "2026-11-20 00:00"], utc=True),
        "expires_at": pd.to_datetime(["2026-11-26", "2026-11-24"], utc=True)})
    codes = evaluate(recs, load_rules(), NOW, overrides)
    assert codes.loc["a", "colour"] == "green" and codes.loc["a", "rule_id"] == "override"
    assert "核酸阴性" in codes.loc["a", "reason"] and "张主任" in codes.loc["a", "reason"]
    assert codes.loc["b", "colour"] == "green" and codes.loc["b", "rule_id"] is None  # expired override
    later = evaluate(recs, load_rules(), pd.Timestamp("2026-11-27", tz="UTC"), overrides)
    assert later.loc["a", "colour"] == "red"


def test_changing_the_rules_recomputes(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nid = "y-all-returners"\ncolour = "yellow"\nkeywords = ["返岗"]\ndays = 30\n'
                     'reason = "返岗一律居家观察"\n', encoding="utf-8")
    codes = evaluate(records(("a", "人社", "返岗人员", "2026-11-10")), load_rules(rules), NOW)
    assert codes.loc["a", "colour"] == "yellow" and codes.loc["a", "reason"] == "返岗一律居家观察"


@pytest.mark.parametrize("body,words", [
    ('[[rule]]\nid = "x"\ncolour = "purple"\nkeywords = ["a"]\ndays = 1\n', "colour must be"),
    ('[[rule]]\nid = "x"\ncolour = "red"\nkeywords = []\ndays = 1\n', "keywords"),
    ('[[rule]]\nid = "x"\ncolour = "red"\nkeywords = ["a"]\ndays = 0\n', "days"),
    ('[[rule]]\nid = "x"\ncolour = "red"\nkeywords = ["a"]\ndays = 1\n' * 2, "repeated"),
    ("[[rule]\n", "cannot read"),
])
def test_a_wrong_rules_file_is_named(tmp_path, body, words):
    path = tmp_path / "rules.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=words):
        load_rules(path)
