"""Observation plans follow persons' codes: made, extended and closed from the codes in force, set-based.

A person whose code's rule asks for observation (``observation_days`` in the rules file; a manual code of a
colour follows the first such rule of that colour) has one active plan: in his grid, from the moment it is made
until ``observation_days`` after the date his code's days count from (its expiry − the rule's days +
``observation_days``; a manual code: ``observation_days`` from when it was set, at most until it expires), with
the rule's check times. A later, longer code extends the plan (never shortens it); a code that no longer asks
for observation (another colour, another rule, an expired or withdrawn code) closes it with the reason, and so
does the end of its period. Every change is an ``observation_events`` row (``created``, ``extended``,
``closed``): the plan's audit, read by the person's and the grid's timelines.

:func:`sync_plans` runs in the matcher's transaction after it stores a run (a manual override reaches a code
only through that re-match), and in the daily job, so that plans end on time between matches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from observation.policy import ObservationPolicy, observation_policy
from observation.schedule import beijing_day, insert_checks

NEEDED = "observation_needed"
BEIJING_TEXT = "to_char({} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')"

# The persons whose code asks for observation now, each with his grid, the rule, the plan's end and check times.
ANALYZE_AFTER = 10_000  # plans made or extended in one run past which their tables' statistics are taken afresh
_NEEDED_SQL = f"""
CREATE TEMPORARY TABLE {NEEDED} ON COMMIT DROP AS
WITH rules AS (
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:colours AS text[]), CAST(:code_days AS int[]),
                         CAST(:observation_days AS int[]), CAST(:minutes AS text[]), CAST(:manual AS boolean[]))
        AS r(rule_id, colour, code_days, observation_days, minutes, manual)
)
SELECT person_key, grid_id, rule_id, check_minutes, ends_at FROM (
    SELECT p.person_key, p.grid_id, r.rule_id, CAST(r.minutes AS smallint[]) AS check_minutes,
           CASE WHEN p.rule_id = 'override' THEN least(p.expires_at, p.set_at + r.observation_days * interval '1 day')
                ELSE p.expires_at + (r.observation_days - r.code_days) * interval '1 day' END AS ends_at
    FROM persons p JOIN rules r ON p.colour = r.colour AND (p.rule_id = r.rule_id OR (p.rule_id = 'override'
                                                                                        AND r.manual))
    WHERE p.expires_at > :now
) n WHERE ends_at > :now
"""

_EXTEND_SQL = f"""
WITH extended AS (
    UPDATE observation_plans pl SET ends_at = n.ends_at, rule_id = n.rule_id, check_minutes = n.check_minutes,
                                    updated_at = :now
    FROM {NEEDED} n, observation_plans was
    WHERE pl.status = 'active' AND pl.person_key = n.person_key AND n.ends_at > pl.ends_at AND was.id = pl.id
    RETURNING pl.id, pl.person_key, pl.rule_id, pl.ends_at, was.ends_at AS was_until
), logged AS (
    INSERT INTO observation_events (plan_id, person_key, kind, at, detail)
    SELECT id, person_key, 'extended', :now,
           '观察延长至 ' || {BEIJING_TEXT.format("ends_at")} || '（原至 ' || {BEIJING_TEXT.format("was_until")} ||
           '，' || rule_id || '） / observation extended until ' || {BEIJING_TEXT.format("ends_at")} || ' (was '
           || {BEIJING_TEXT.format("was_until")} || ', ' || rule_id || ')'
    FROM extended
)
SELECT id FROM extended
"""

_MOVE_SQL = f"""
UPDATE observation_plans pl SET grid_id = n.grid_id, updated_at = :now FROM {NEEDED} n
WHERE pl.status = 'active' AND pl.person_key = n.person_key AND pl.grid_id IS DISTINCT FROM n.grid_id
"""

_CLOSE_SQL = f"""
WITH closing AS (
    SELECT pl.id, CASE
        WHEN pl.ends_at <= :now THEN '观察期满 / observation period completed'
        WHEN p.person_key IS NULL THEN '人员已不在册（记录撤回或清除） / the person is no longer on record'
        WHEN p.expires_at <= :now THEN '赋码已到期，不再居家观察 / the code has expired: no more home observation'
        ELSE '赋码已变为 ' || p.colour || coalesce('（' || p.rule_id || '）', '') || '，不再居家观察 / the code is now '
             || p.colour || coalesce(' (' || p.rule_id || ')', '') || ', no more home observation: ' || p.reason
        END AS reason
    FROM observation_plans pl LEFT JOIN {NEEDED} n USING (person_key) LEFT JOIN persons p USING (person_key)
    WHERE pl.status = 'active' AND (n.person_key IS NULL OR pl.ends_at <= :now)
), closed AS (
    UPDATE observation_plans pl SET status = 'closed', closed_at = :now, close_reason = c.reason, updated_at = :now
    FROM closing c WHERE pl.id = c.id
    RETURNING pl.id, pl.person_key, pl.close_reason
), logged AS (
    INSERT INTO observation_events (plan_id, person_key, kind, at, detail)
    SELECT id, person_key, 'closed', :now, close_reason FROM closed
), unneeded AS (  -- the checks not yet missed are no longer asked for
    DELETE FROM observation_checks c USING closed WHERE c.plan_id = closed.id AND c.status = 'due'
                                                    AND c.due_at >= :not_missed_since
)
SELECT count(*) FROM closed
"""

# Those who have a plan already, taken out before the INSERT: a NOT EXISTS inside it, planned from the statistics
# of a table still empty, scanned the table once per new plan, the rows the statement itself inserted included
# (invisible, but read): quadratic, minutes for a district's first 200,000 plans.
_HAVE_PLAN_SQL = f"""
DELETE FROM {NEEDED} n USING observation_plans pl WHERE pl.person_key = n.person_key AND pl.status = 'active'
"""

_CREATE_SQL = f"""
WITH made AS (
    INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, token_nonce,
                                   created_at, updated_at)
    SELECT n.person_key, n.grid_id, n.rule_id, :now, n.ends_at, n.check_minutes,
           replace(CAST(gen_random_uuid() AS text), '-', ''), :now, :now
    FROM {NEEDED} n
    ON CONFLICT (person_key) WHERE status = 'active' DO NOTHING
    RETURNING id, person_key, rule_id, ends_at, check_minutes
), logged AS (
    INSERT INTO observation_events (plan_id, person_key, kind, at, detail)
    SELECT id, person_key, 'created', :now,
           '居家观察至 ' || {BEIJING_TEXT.format("ends_at")} || '，每日 ' || cardinality(check_minutes) || ' 次（' ||
           rule_id || '） / home observation until ' || {BEIJING_TEXT.format("ends_at")} || ', '
           || cardinality(check_minutes) || ' checks a day (' || rule_id || ')'
    FROM made
)
SELECT id FROM made
"""


def _rule_params(policy: ObservationPolicy) -> dict[str, Any]:
    """The rules asking for observation, as the parallel arrays :data:`_NEEDED_SQL` unnests."""
    ids = list(policy.rules_days)
    manual = {policy.colour_rule(colour) for colour in set(policy.rule_colours.values())}
    return {"ids": ids, "colours": [policy.rule_colours[r] for r in ids],
            "code_days": [policy.code_days[r] for r in ids],
            "observation_days": [policy.rules_days[r][0] for r in ids],
            "minutes": ["{" + ",".join(str(m) for m in policy.check_minutes(r)) + "}" for r in ids],
            "manual": [r in manual for r in ids]}


def sync_plans(conn: Connection, now: datetime, policy: ObservationPolicy | None = None) -> dict[str, int]:
    """Make, extend and close the plans from the persons' current codes at ``now`` (see the module); the new
    and extended plans get their checks of the rest of the Beijing day at once. Returns the counts
    ``created``, ``extended``, ``closed`` and ``moved`` (plans whose person moved to another grid)."""
    policy = policy or observation_policy()
    conn.execute(text(f"DROP TABLE IF EXISTS {NEEDED}"))  # a second call in one transaction
    conn.execute(text(_NEEDED_SQL), {**_rule_params(policy), "now": now})
    conn.execute(text(f"ANALYZE {NEEDED}"))  # its size known, the joins below hash it rather than loop over it
    extended = list(conn.execute(text(_EXTEND_SQL), {"now": now}).scalars())
    moved = conn.execute(text(_MOVE_SQL), {"now": now}).rowcount
    closed = int(conn.execute(text(_CLOSE_SQL), {"now": now, "not_missed_since": now - policy.grace}).scalar_one())
    conn.execute(text(_HAVE_PLAN_SQL))
    created = list(conn.execute(text(_CREATE_SQL), {"now": now}).scalars())
    conn.execute(text(f"DROP TABLE {NEEDED}"))
    if created or extended:
        insert_checks(conn, beijing_day(now), [*created, *extended], not_before=now)
    if len(created) + len(extended) > ANALYZE_AFTER:  # a district's first plans: the desks' queries plan from them
        conn.execute(text("ANALYZE observation_plans, observation_checks"))
    return {"created": len(created), "extended": len(extended), "closed": closed, "moved": moved}
