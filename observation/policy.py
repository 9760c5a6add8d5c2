"""What home observation asks, read from the rules file: which codes call for a plan, its checks, and when a
check is missed, a temperature a fever, a run of misses a home visit, a silence lost to follow-up.

The rules file holds it all (``matching/rules.toml``: ``observation_days`` and ``checks_per_day`` on a colour
rule, the ``[observation]`` table for every plan), so that a change goes through the rules page's versions like
any other rule. Times of day are Beijing time, as minutes after midnight.

>>> policy = observation_policy()
>>> policy.check_times, policy.grace.total_seconds() / 60, policy.rules_days["yellow-key-area"]
((480, 1200), 120.0, (14, 2))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from matching.rules import RuleSet, load_rules


@dataclass(frozen=True)
class ObservationPolicy:
    """The observation settings in force.

    ``rules_days``: each colour rule that asks for observation, by id → (observation days, checks per day);
    ``rule_colours`` and ``code_days``: the colour and the code's own ``days`` of those rules (a plan ends
    ``observation days`` after the date the code's days count from: its expiry − days + observation days).
    """

    check_times: tuple[int, ...] = (8 * 60, 20 * 60)
    grace: timedelta = timedelta(minutes=120)
    opens: timedelta = timedelta(minutes=240)
    fever_at: float = 37.3
    missed_in_a_row_for_visit: int = 2
    lost_after: timedelta = timedelta(hours=24)
    rules_days: dict[str, tuple[int, int]] = field(default_factory=dict)
    rule_colours: dict[str, str] = field(default_factory=dict)
    code_days: dict[str, int] = field(default_factory=dict)

    def check_minutes(self, rule_id: str) -> tuple[int, ...]:
        """The check times of a plan of ``rule_id``: the first ``checks_per_day`` of :attr:`check_times`."""
        return self.check_times[:self.rules_days[rule_id][1]]

    def colour_rule(self, colour: str) -> str | None:
        """The first rule (in file order) of ``colour`` that asks for observation: what a manual code of that
        colour follows (None: a manual code of that colour asks for none)."""
        return next((rule for rule, c in self.rule_colours.items() if c == colour), None)


def observation_policy(rules: RuleSet | None = None) -> ObservationPolicy:
    """The policy of ``rules`` (None: the rules file in force, ``NANHAI_RULES`` else ``matching/rules.toml``; a
    caller with a database connection passes :func:`matching.rule_versions.current_rules` to follow the saved
    versions)."""
    rules = rules if rules is not None else load_rules()
    settings = rules.observation
    observed = [r for r in rules.rules if r.colour and r.observation_days and r.checks_per_day]
    return ObservationPolicy(
        check_times=settings.check_times, grace=timedelta(minutes=settings.grace_minutes),
        opens=timedelta(minutes=settings.opens_minutes), fever_at=settings.fever_at,
        missed_in_a_row_for_visit=settings.missed_in_a_row_for_visit,
        lost_after=timedelta(hours=settings.lost_after_hours),
        rules_days={r.id: (int(r.observation_days or 0), int(r.checks_per_day or 0)) for r in observed},
        rule_colours={r.id: str(r.colour) for r in observed}, code_days={r.id: r.days for r in observed})
