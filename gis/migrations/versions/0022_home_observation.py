"""Home observation (issue 25): follow-up plans, their twice-daily checks, and what happened to them.

- ``observation_plans``: one plan per person told to stay home by a code whose rule asks for observation
  (``observation_days``, ``checks_per_day`` in the rules file): the grid responsible, the rule, its start and
  end, the check times (minutes after midnight, Beijing time), and its closing (when and why). At most one
  plan in force per person (``ux_observation_plans_active``). ``token_nonce`` is the self-report link's
  nonce: the link is ``NHO1.<plan id>.<nonce>.<HMAC>``, and a new nonce revokes every link given before.
- ``observation_checks``: one row per check a plan calls for (made a day at a time), ``due`` until a report
  comes (``done``: temperature, symptoms, by whom and how) or its grace period runs out (``missed``).
- ``observation_events``: what happened to a plan, in order (created, extended, closed, missed, fever, a task
  raised): the person's and the grid's timelines read it. No ID number, name or phone is stored in any of the
  three.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

KEY = sa.String(64, collation="C")
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "observation_plans",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("person_key", KEY, nullable=False),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("check_minutes", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, server_default="active"),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("close_reason", sa.Text()),
        sa.Column("token_nonce", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("status IN ('active', 'closed')", name="observation_plans_status_known"),
        sa.CheckConstraint("ends_at > starts_at", name="observation_plans_ends_after_start"),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="observation_plans_closed_when"),
    )
    op.create_index("ux_observation_plans_active", "observation_plans", ["person_key"], unique=True,
                    postgresql_where=sa.text("status = 'active'"))
    op.create_index("ix_observation_plans_person", "observation_plans", ["person_key", "id"])
    op.create_index("ix_observation_plans_grid_active", "observation_plans", ["grid_id"],
                    postgresql_where=sa.text("status = 'active'"))
    op.create_table(
        "observation_checks",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("plan_id", sa.BigInteger(), sa.ForeignKey("observation_plans.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, server_default="due"),
        sa.Column("reported_at", sa.DateTime(timezone=True)),
        sa.Column("temperature", sa.Numeric(3, 1)),
        sa.Column("symptoms", postgresql.ARRAY(sa.Text())),
        sa.Column("channel", sa.String(8)),
        sa.Column("recorded_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("missed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('due', 'done', 'missed')", name="observation_checks_status_known"),
        sa.CheckConstraint("channel IS NULL OR channel IN ('worker', 'self')", name="observation_checks_channel"),
        sa.CheckConstraint("(status = 'done') = (reported_at IS NOT NULL)", name="observation_checks_done_when"),
        sa.UniqueConstraint("plan_id", "due_at", name="uq_observation_checks_plan_due"),
    )
    op.create_index("ix_observation_checks_due", "observation_checks", ["due_at"],
                    postgresql_where=sa.text("status = 'due'"))
    op.create_index("ix_observation_checks_reported", "observation_checks", ["reported_at"],
                    postgresql_where=sa.text("reported_at IS NOT NULL"))
    op.create_table(
        "observation_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("plan_id", sa.BigInteger(), sa.ForeignKey("observation_plans.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("person_key", KEY, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("task_id", sa.BigInteger(), sa.ForeignKey("tasks.id", ondelete="SET NULL")),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
    )
    op.create_index("ix_observation_events_plan", "observation_events", ["plan_id", "id"])
    op.create_index("ix_observation_events_person", "observation_events", ["person_key", "id"])


def downgrade() -> None:
    op.drop_table("observation_events")
    op.drop_table("observation_checks")
    op.drop_table("observation_plans")
