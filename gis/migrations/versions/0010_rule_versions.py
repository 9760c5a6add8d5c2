"""Rule and time-limit versions kept in the database (admin rules page).

``rule_versions``: every saved version of the colour rules (``what = 'colour_rules'``) and of the task kinds'
time limits and priorities (``'task_kinds'``), as the TOML text that was saved, with who saved it, when, why
(``note``), and, for a rollback, the version it brought back (``rolled_back_from``). The newest version of
each is the one in force; with none stored, the TOML files shipped with the code are (a new install). The
table is history: the database refuses to change or remove a line of it (``nanhai_append_only``, 0003).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("saved_by", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("rolled_back_from", sa.Integer(), sa.ForeignKey("rule_versions.id")),
        sa.CheckConstraint("what IN ('colour_rules','task_kinds')", name="rule_versions_what_known"),
    )
    op.create_index("ix_rule_versions_what_id", "rule_versions", ["what", "id"])
    op.execute("CREATE TRIGGER rule_versions_no_update_delete BEFORE UPDATE OR DELETE ON rule_versions "
               "FOR EACH ROW EXECUTE FUNCTION nanhai_append_only()")
    op.execute("CREATE TRIGGER rule_versions_no_truncate BEFORE TRUNCATE ON rule_versions "
               "FOR EACH STATEMENT EXECUTE FUNCTION nanhai_append_only()")


def downgrade() -> None:
    op.drop_index("ix_rule_versions_what_id", table_name="rule_versions")
    op.drop_table("rule_versions")
