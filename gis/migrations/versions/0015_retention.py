"""Retention: the nightly purge of personal data past its time (``matching.retention``) runs as a background job.

- ``job_progress.kind`` may also be ``purge``: the job the worker defers every night at 03:30 Beijing time
  (procrastinate's periodic tasks: ``jobs.queue``) records its progress and result, the rows removed per table,
  like the other jobs.

The purge itself needs no new column or table: a task it keeps loses its person (``person_key`` NULL, the name
out of its title), a scan's person becomes the tombstone ``purged``, and what it removed is written to the audit
log.

Revision ID: 0015
Revises: 0014
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("job_progress_kind_known", "job_progress", type_="check")
    op.create_check_constraint("job_progress_kind_known", "job_progress",
                               "kind IN ('feed_import','rematch','feed_withdraw','purge')")


def downgrade() -> None:
    op.execute("DELETE FROM job_progress WHERE kind = 'purge'")
    op.drop_constraint("job_progress_kind_known", "job_progress", type_="check")
    op.create_check_constraint("job_progress_kind_known", "job_progress",
                               "kind IN ('feed_import','rematch','feed_withdraw')")
