"""The observation policy as the rules file sets it: the shipped defaults, a file of its own, and a manual
code's colour following the first observed rule of that colour."""

from __future__ import annotations

from datetime import timedelta

from matching.rules import parse_rules
from observation.policy import ObservationPolicy, observation_policy

RULES = """
[observation]
check_times = ["07:30", "12:00", "19:00"]
grace_minutes = 90
opens_minutes = 60
fever_at = 37.5
missed_in_a_row_for_visit = 3
lost_after_hours = 36

[[rule]]
id = "red-x"
colour = "red"
keywords = ["确诊"]
days = 28

[[rule]]
id = "yellow-one"
colour = "yellow"
keywords = ["返乡"]
days = 10
observation_days = 7
checks_per_day = 1

[[rule]]
id = "yellow-two"
colour = "yellow"
keywords = ["重点"]
days = 14
observation_days = 14

[[rule]]
id = "blue-x"
colour = "blue"
keywords = ["返岗"]
days = 14
"""


def test_the_shipped_rules_observe_yellow_key_area_twice_a_day_for_14_days():
    policy = observation_policy()
    assert policy == ObservationPolicy(rules_days={"yellow-key-area": (14, 2)},
                                       rule_colours={"yellow-key-area": "yellow"},
                                       code_days={"yellow-key-area": 14})
    assert policy.check_times == (480, 1200) and policy.grace == timedelta(hours=2)
    assert policy.opens == timedelta(hours=4) and policy.fever_at == 37.3
    assert policy.missed_in_a_row_for_visit == 2 and policy.lost_after == timedelta(hours=24)
    assert policy.check_minutes("yellow-key-area") == (480, 1200)
    assert policy.colour_rule("yellow") == "yellow-key-area" and policy.colour_rule("blue") is None


def test_a_rules_text_of_its_own_sets_every_figure():
    policy = observation_policy(parse_rules(RULES, "test"))
    assert policy.check_times == (450, 720, 1140)
    assert (policy.grace, policy.opens, policy.lost_after) == (timedelta(minutes=90), timedelta(hours=1),
                                                                timedelta(hours=36))
    assert policy.fever_at == 37.5 and policy.missed_in_a_row_for_visit == 3
    # checks_per_day left out: 2 (the first two times)
    assert policy.rules_days == {"yellow-one": (7, 1), "yellow-two": (14, 2)}
    assert policy.check_minutes("yellow-one") == (450,) and policy.check_minutes("yellow-two") == (450, 720)
    assert policy.code_days == {"yellow-one": 10, "yellow-two": 14}
    assert policy.colour_rule("yellow") == "yellow-one"  # file order: a manual yellow follows the first


def test_without_an_observation_table_the_defaults_hold_and_no_rule_observes():
    policy = observation_policy(parse_rules('[[rule]]\nid = "r"\ncolour = "red"\nkeywords = ["a"]\ndays = 1\n',
                                            "bare"))
    assert policy.check_times == (480, 1200) and policy.rules_days == {}
