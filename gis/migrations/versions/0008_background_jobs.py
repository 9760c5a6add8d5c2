"""Background jobs queued in PostgreSQL itself: procrastinate's schema, and the progress the pages read.

- procrastinate's tables, types, functions and triggers (``procrastinate_jobs``, ``procrastinate_workers``,
  ``procrastinate_events``, ``procrastinate_periodic_defers``), from the schema SQL that the package ships
  (``procrastinate/sql/schema.sql``), for the exact version pinned in pyproject.toml. A revision must create
  the same schema whenever it runs, so this one refuses another version of the package: moving to a newer
  procrastinate means freezing this one's SQL (a copy of 3.10.0's ``schema.sql`` beside it) and a new revision
  applying procrastinate's own migration files (``procrastinate/sql/migrations``) from 3.10.0 on.
- ``job_progress``: one row per job of ours (feed imports, re-matches): its kind, its state (queued, running,
  succeeded, failed), its stage (reading, storing, matching, sweeping, done), the fraction of that stage, the
  history of stages and interruptions, what it was asked (file name, source) and by whom, the process running
  it, and its result or error. Rows stay when procrastinate deletes finished jobs: they are the jobs' record.

Revision ID: 0008
Revises: 0007
"""
from importlib import metadata, resources

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from gis.db import driver_connection

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PROCRASTINATE_VERSION = "3.10.0"
NOW = sa.func.now()
KINDS = "('feed_import','rematch')"
STATES = "('queued','running','succeeded','failed')"
STAGES = "('queued','reading','storing','matching','sweeping','done')"

# Every procrastinate object in the current schema: tables first (with their triggers), then the functions
# and types they used. By name, so it removes what any 3.x schema created.
DROP_PROCRASTINATE = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
                     procrastinate_workers CASCADE;
DO $$
DECLARE
    found record;
BEGIN
    FOR found IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                 WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || found.signature || ' CASCADE';
    END LOOP;
    FOR found IN SELECT t.typname FROM pg_type t
                 WHERE t.typnamespace = current_schema()::regnamespace AND t.typname LIKE 'procrastinate\\_%'
                   AND t.typtype IN ('e', 'c')
    LOOP
        EXECUTE format('DROP TYPE %I CASCADE', found.typname);
    END LOOP;
END $$;
"""


def _procrastinate_schema() -> str:
    installed = metadata.version("procrastinate")
    if installed != PROCRASTINATE_VERSION:
        raise RuntimeError(
            f"迁移 0008 针对 procrastinate {PROCRASTINATE_VERSION} 的结构，当前安装的是 {installed}：请安装 "
            f"pyproject.toml 固定的版本 / revision 0008 creates the schema of procrastinate {PROCRASTINATE_VERSION}, "
            f"but {installed} is installed: install the version pinned in pyproject.toml")
    return resources.files("procrastinate.sql").joinpath("schema.sql").read_text(encoding="utf-8")


def _run_script(script: str) -> None:
    """Run a whole SQL script, its own ``%`` signs included, in the migration's transaction."""
    driver_connection(op.get_bind()).execute(script)


def upgrade() -> None:
    _run_script(_procrastinate_schema())
    op.create_table(
        "job_progress",
        sa.Column("job_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("stage", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("step", sa.Text()),
        sa.Column("fraction", sa.Float(), nullable=False, server_default="0"),
        sa.Column("history", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("params", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("requested_by", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("worker", sa.Text()),
        sa.Column("message", sa.Text()),
        sa.Column("result", JSONB()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"kind IN {KINDS}", name="job_progress_kind_known"),
        sa.CheckConstraint(f"state IN {STATES}", name="job_progress_state_known"),
        sa.CheckConstraint(f"stage IN {STAGES}", name="job_progress_stage_known"),
        sa.CheckConstraint("fraction BETWEEN 0 AND 1", name="job_progress_fraction_0_1"),
        sa.CheckConstraint("(state IN ('succeeded','failed')) = (finished_at IS NOT NULL)",
                           name="job_progress_finished_when_ended"),
    )
    op.create_index("ix_job_progress_created_at", "job_progress", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_job_progress_created_at", table_name="job_progress")
    op.drop_table("job_progress")
    _run_script(DROP_PROCRASTINATE)
