"""Tasks raised by home observation (issue 25): ``tasks.source`` may be ``follow_up``.

Two missed checks in a row raise a home visit, and a fever an escort, through the task workflow like any other
task; their source says where they came from (``follow_up``, beside ``matcher``, ``lead``, ``checkpoint``,
``manual``), so that a withdrawal of a feed, which cancels the matcher's tasks it no longer justifies, leaves
them alone. The downgrade refuses while such a task exists rather than lose what raised it.

Revision ID: 0023
Revises: 0022
"""
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("tasks_source_known", "tasks", type_="check")
    op.create_check_constraint("tasks_source_known", "tasks",
                               "source IN ('matcher','lead','checkpoint','manual','follow_up')")


def downgrade() -> None:
    op.drop_constraint("tasks_source_known", "tasks", type_="check")
    op.create_check_constraint("tasks_source_known", "tasks", "source IN ('matcher','lead','checkpoint','manual')")
