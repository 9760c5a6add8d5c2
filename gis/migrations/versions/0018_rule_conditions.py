"""Risk rules as the epidemic office writes them (issue 22): travel fields on the records, explained codes, and
rules that request a task of a named kind.

- ``source_records.origin`` (出发地 / 来自 / 途经地: where the person came from, as the list writes it) and
  ``source_records.arrived_on`` (抵达日期 / 返回日期: the day he arrived). Neither identifies anyone; both are read by
  the rules. Records imported before have neither.
- ``explanation`` on ``persons``, ``risk_code_history``, ``replay_persons`` and ``task_requests``: the rule, the
  conditions that held and the values that made them hold, masked where personal, and the date the code's days
  count from.
- ``task_requests.kind`` and ``rule_id``: a rule's own request for a task of a named kind (a verification, say),
  besides the requests a raised colour makes (``kind`` null: the colour's kind, as before).
- ``rule_holds``: which task-requesting rule holds for whom, since when and why (its explanation, kept current),
  so that a rule requests its task once per person while it holds, and again only after it stopped holding; the
  flags export lists them.

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

KEY = sa.String(64, collation="C")
EXPLAINED = ("persons", "risk_code_history", "replay_persons", "task_requests")


def upgrade() -> None:
    op.add_column("source_records", sa.Column("origin", sa.Text()))
    op.add_column("source_records", sa.Column("arrived_on", sa.Date()))
    for table in EXPLAINED:
        op.add_column(table, sa.Column("explanation", sa.Text()))
    op.add_column("task_requests", sa.Column("kind", sa.Text()))
    op.add_column("task_requests", sa.Column("rule_id", sa.Text()))
    op.create_table(
        "rule_holds",
        sa.Column("person_key", KEY, primary_key=True),
        sa.Column("rule_id", sa.Text(), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("explanation", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("rule_holds")
    op.drop_column("task_requests", "rule_id")
    op.drop_column("task_requests", "kind")
    for table in reversed(EXPLAINED):
        op.drop_column(table, "explanation")
    op.drop_column("source_records", "arrived_on")
    op.drop_column("source_records", "origin")
