"""Field warnings (issue 21): a row whose identity is valid is stored even when its phone, point or registration
time is malformed; that field is ignored and a warning kept.

- ``feed_field_warnings``: one row per ignored field of a stored row — the feed file, the row number as the
  department sees it, the field (``phone``, ``lon, lat``, ``crs``, ``reported_at``) and the reason, worded as a
  rejection's. No personal data, like ``feed_rejections``; it goes with its feed file.
- ``feed_files.rows_warned``: the stored rows with at least one field warning, counted apart from the balance
  (``rows_read = rows_stored + rows_rejected`` still holds) and never more than the rows stored
  (``feed_files_rows_warned_stored``). Imports made before count 0: their malformed rows were rejected.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feed_files", sa.Column("rows_warned", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint("feed_files_rows_warned_stored", "feed_files",
                               "rows_warned >= 0 AND rows_warned <= rows_stored")
    op.create_table(
        "feed_field_warnings",
        sa.Column("feed_file_id", sa.Integer(), sa.ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_number", sa.Integer(), primary_key=True),
        sa.Column("field", sa.Text(), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_field_warnings")
    op.drop_constraint("feed_files_rows_warned_stored", "feed_files", type_="check")
    op.drop_column("feed_files", "rows_warned")
