"""The gate's verdict (通行判定) from a person's colour: 允许通行, 临时通行 or 不予通行.

Why here and not in ``matching/rules.toml``: the rules decide a person's *colour* (versioned, edited and replayed
through :mod:`matching.rule_versions`, each version hashed over the whole file); what a colour means at a gate is
the district's checkpoint policy, fixed by the 通行 notice and the same for every rule version. Putting it in the
rules file would make every gate policy change a new rule version (and a re-colouring replay) and every rule edit a
possible change of the gate. So the mapping is this module's table, one line per colour:

- green, and a person with no risk record (unknown to the platform): 允许通行 (pass);
- blue and yellow: 临时通行 (temporary pass: let through, noted; yellow raises a checkpoint-alert task);
- red: 不予通行 (refused; raises a checkpoint-alert task).

>>> verdict_of("red"), verdict_of("blue"), verdict_of(None)
('refuse', 'temporary', 'pass')
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from accounts.actor import Actor
from checkpoints.repository import record_person_scan
from matching.privacy import Vault

PASS, TEMPORARY, REFUSE = "pass", "temporary", "refuse"
VERDICTS = (PASS, TEMPORARY, REFUSE)
BY_COLOUR: dict[str | None, str] = {"green": PASS, "blue": TEMPORARY, "yellow": TEMPORARY, "red": REFUSE,
                                    None: PASS}
LABELS = {PASS: "允许通行 / Pass", TEMPORARY: "临时通行 / Temporary pass", REFUSE: "不予通行 / Refused"}


def verdict_of(colour: str | None) -> str:
    """The verdict for a person's colour (None: no risk record, green). An unknown colour is refused: a colour
    the table does not know must not open the gate."""
    return BY_COLOUR.get(colour, REFUSE)


def gate_scan(conn: Connection, actor: Actor, payload: dict[str, Any], vault: Vault, now: datetime) -> dict[str, Any]:
    """Record a scan at a gate (the scans API's domain path: the same alert tasks) and answer its verdict with the
    person's masked name (None for a person with no risk record)."""
    scan, name = record_person_scan(conn, actor, payload, vault, now)
    verdict = verdict_of(scan["colour"])
    return {**scan, "verdict": verdict, "label": LABELS[verdict], "name_masked": name}
