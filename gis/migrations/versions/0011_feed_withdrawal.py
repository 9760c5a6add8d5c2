"""Withdrawing a feed import (admin feeds page): the import history, and the withdrawals kept in it.

- ``feed_files.imported_by`` (who imported it: a username, or ``gridctl``), ``job_id`` (the background job
  that imported it, when one did: its progress and result are in ``job_progress``), ``import_ms`` (how long
  reading, checking, sealing and storing took).
- ``feed_files.withdrawn_at``, ``withdrawn_by``, ``withdraw_reason``: a withdrawn import keeps its row, its
  balance (``rows_read = rows_stored + rows_rejected``, still checked) and its rejections; its source
  records are removed. All three are set together, or none (``feed_files_withdrawn_with_reason``).
- The same file from the same source was refused a second time by the unique constraint
  ``feed_files_once_per_source``; it is now a unique index over the files not withdrawn
  (``ux_feed_files_once_per_source``), so a withdrawn file may be imported again.
- ``job_progress.kind`` may also be ``feed_withdraw`` (the withdrawal runs as a background job).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WITHDRAWN_TOGETHER = ("(withdrawn_at IS NULL AND withdrawn_by IS NULL AND withdraw_reason IS NULL) OR "
                      "(withdrawn_at IS NOT NULL AND withdrawn_by IS NOT NULL AND withdraw_reason IS NOT NULL)")


def upgrade() -> None:
    op.add_column("feed_files", sa.Column("imported_by", sa.Text()))
    op.add_column("feed_files", sa.Column("job_id", sa.BigInteger()))
    op.add_column("feed_files", sa.Column("import_ms", sa.Integer()))
    op.add_column("feed_files", sa.Column("withdrawn_at", sa.DateTime(timezone=True)))
    op.add_column("feed_files", sa.Column("withdrawn_by", sa.Text()))
    op.add_column("feed_files", sa.Column("withdraw_reason", sa.Text()))
    op.create_check_constraint("feed_files_withdrawn_with_reason", "feed_files", WITHDRAWN_TOGETHER)
    op.drop_constraint("feed_files_once_per_source", "feed_files", type_="unique")
    op.create_index("ux_feed_files_once_per_source", "feed_files", ["source", "sha256"], unique=True,
                    postgresql_where=sa.text("withdrawn_at IS NULL"))
    op.create_index("ix_feed_files_imported_at", "feed_files", ["imported_at"])
    op.drop_constraint("job_progress_kind_known", "job_progress", type_="check")
    op.create_check_constraint("job_progress_kind_known", "job_progress",
                               "kind IN ('feed_import','rematch','feed_withdraw')")


def downgrade() -> None:
    op.execute("DELETE FROM job_progress WHERE kind = 'feed_withdraw'")
    op.drop_constraint("job_progress_kind_known", "job_progress", type_="check")
    op.create_check_constraint("job_progress_kind_known", "job_progress", "kind IN ('feed_import','rematch')")
    # the old constraint allows one row per file and source: the withdrawn imports (their records are gone
    # already) leave the history
    op.execute("DELETE FROM feed_files WHERE withdrawn_at IS NOT NULL")
    op.drop_index("ix_feed_files_imported_at", table_name="feed_files")
    op.drop_index("ux_feed_files_once_per_source", table_name="feed_files")
    op.create_unique_constraint("feed_files_once_per_source", "feed_files", ["source", "sha256"])
    op.drop_constraint("feed_files_withdrawn_with_reason", "feed_files", type_="check")
    for column in ("withdraw_reason", "withdrawn_by", "withdrawn_at", "import_ms", "job_id", "imported_by"):
        op.drop_column("feed_files", column)
