"""The rules file's observation settings (issue 25): ``observation_days`` and ``checks_per_day`` on a colour
rule, the ``[observation]`` table; a wrong one refused naming the setting."""

from __future__ import annotations

import tomllib

import pytest

from gis.errors import ConfigurationError
from matching.rules import ObservationSettings, load_rules, parse_rules, rule_problems

RULE = '[[rule]]\nid = "y"\ncolour = "yellow"\nkeywords = ["a"]\ndays = 14\n'


def test_the_shipped_file_observes_yellow_key_area_only_and_has_the_fever_rule():
    rules = load_rules()
    observed = {r.id: (r.observation_days, r.checks_per_day) for r in rules.rules if r.observation_days}
    assert observed == {"yellow-key-area": (14, 2)}
    assert rules.observation == ObservationSettings()
    ids = [r.id for r in rules.ranked()]
    fever = next(r for r in rules.rules if r.id == "red-follow-up-fever")
    assert fever.colour == "red" and fever.days == 14 and fever.observation_days is None
    assert ids.index("red-follow-up-fever") == max(i for i, r in enumerate(rules.ranked()) if r.colour == "red")


def test_a_rule_may_leave_checks_per_day_out():
    rules = parse_rules(RULE + "observation_days = 10\n", "t")
    assert (rules.rules[0].observation_days, rules.rules[0].checks_per_day) == (10, 2)
    rules = parse_rules('[observation]\ncheck_times = ["09:00"]\n' + RULE + "checks_per_day = 1\n", "t")
    assert (rules.rules[0].observation_days, rules.rules[0].checks_per_day) == (14, 1)
    assert rules.observation.check_times == (540,)


@pytest.mark.parametrize("body,field,words", [
    (RULE + "observation_days = 0\n", "observation_days", "observation_days must be"),
    (RULE + "observation_days = 400\n", "observation_days", "observation_days must be"),
    (RULE + "checks_per_day = 3\n", "checks_per_day", "from 1 to 2"),
    ('[[rule]]\nid = "t"\ntask = "verification"\nkeywords = ["a"]\ndays = 1\nobservation_days = 5\n',
     "observation_days", "only a colour rule"),
    ('[observation]\ncheck_times = ["20:00", "08:00"]\n' + RULE, "observation.check_times", "in order"),
    ('[observation]\ncheck_times = ["8:00"]\n' + RULE, "observation.check_times", "HH:MM"),
    ('[observation]\ncheck_times = ["24:00"]\n' + RULE, "observation.check_times", "HH:MM"),
    ('[observation]\ncheck_times = []\n' + RULE, "observation.check_times", "HH:MM"),
    ('[observation]\ngrace_minutes = 0\n' + RULE, "observation.grace_minutes", "from 1 to 720"),
    ('[observation]\ngrace_minutes = "2h"\n' + RULE, "observation.grace_minutes", "whole number"),
    ('[observation]\nfever_at = 50\n' + RULE, "observation.fever_at", "temperature"),
    ('[observation]\nfever_at = true\n' + RULE, "observation.fever_at", "temperature"),
    ('[observation]\nmissed_in_a_row_for_visit = 0\n' + RULE, "observation.missed_in_a_row_for_visit", "from 1"),
    ('[observation]\nlost_after_hours = 0\n' + RULE, "observation.lost_after_hours", "from 1"),
    ('[observation]\nwhen = 1\n' + RULE, "observation.when", "unknown observation setting"),
    ('observation = 3\n' + RULE, "observation", "must be a table"),
    # 08:00 and 12:00 with 240 + 120 minutes around each: a report could count for both
    ('[observation]\ncheck_times = ["08:00", "12:00"]\n' + RULE, "observation.grace_minutes", "less than the time"),
])
def test_a_wrong_observation_setting_is_refused_naming_it(body, field, words):
    problems = rule_problems(tomllib.loads(body))
    assert problems and problems[0].field == field and words in problems[0].reason
    with pytest.raises(ConfigurationError, match=words):
        parse_rules(body, "t")
