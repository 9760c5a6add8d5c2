"""Field tasks and their append-only events, leads, checkpoint scans; logins, sessions and the audit log.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = sa.String(64, collation="C")
STATUSES = "('created','dispatched','accepted','declined','in_progress','handled','closed','cancelled')"
NOW = sa.func.now()

# Events and the audit log are history: the database itself refuses to change or remove a line of them.
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION nanhai_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _append_only(table: str) -> None:
    op.execute(f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION nanhai_append_only()")
    op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
               f"FOR EACH STATEMENT EXECUTE FUNCTION nanhai_append_only()")


def upgrade() -> None:
    op.add_column("users", sa.Column("on_duty", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_index("ix_users_community_id", "users", ["community_id"])
    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "failed_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("client", sa.String(64)),
    )
    op.create_geospatial_table(
        "leads",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("address_norm", sa.Text()),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL"), index=True),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("first_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open','triaged','dismissed')", name="leads_status_known"),
    )
    op.create_geospatial_index("idx_leads_geom", "leads", ["geom"], unique=False,
                               postgresql_using="gist", postgresql_ops={})
    op.create_index("ix_leads_address_norm", "leads", ["address_norm"])
    op.create_geospatial_table(
        "lead_reports",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("lead_id", sa.BigInteger(), sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("contact_sealed", sa.Text()),
        sa.Column("contact_masked", sa.Text()),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("reported_by", sa.Integer()),
    )
    op.create_index("ix_lead_reports_client_at", "lead_reports", ["client", "received_at"])
    op.create_geospatial_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("grid_code", sa.String(15), nullable=False),
        sa.Column("person_key", KEY),
        sa.Column("lead_id", sa.BigInteger(), sa.ForeignKey("leads.id", ondelete="SET NULL")),
        sa.Column("checkpoint_id", sa.Integer(), sa.ForeignKey("checkpoints.id", ondelete="SET NULL")),
        sa.Column("request_id", sa.BigInteger(), unique=True),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("assignee_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("handled_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("sla_minutes", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalation_level", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("rework_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extension_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extension_requested_until", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="tasks_status_known"),
        sa.CheckConstraint("source IN ('matcher','lead','checkpoint','manual')", name="tasks_source_known"),
        sa.CheckConstraint("escalation_level BETWEEN 0 AND 2", name="tasks_escalation_level"),
    )
    op.create_index("ix_tasks_grid_status", "tasks", ["grid_id", "status"])
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee_id", "status"])
    op.create_index("ix_tasks_status_due", "tasks", ["status", "due_at"])
    op.create_index("ix_tasks_created_at", "tasks", ["created_at"])
    op.create_geospatial_table(
        "task_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("task_id", sa.BigInteger(), sa.ForeignKey("tasks.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer()),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("detail", sa.dialects.postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.UniqueConstraint("task_id", "seq", name="task_events_one_per_seq"),
    )
    op.create_index("ix_task_events_at", "task_events", ["at"])
    op.create_table(
        "task_photos",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("task_id", sa.BigInteger(), sa.ForeignKey("tasks.id", ondelete="RESTRICT"), nullable=False,
                  index=True),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("task_events.id", ondelete="RESTRICT")),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "scans",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("checkpoint_id", sa.Integer(), sa.ForeignKey("checkpoints.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("person_key", KEY, nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("colour", sa.String(6)),
        sa.Column("task_id", sa.BigInteger(), sa.ForeignKey("tasks.id", ondelete="SET NULL")),
        sa.Column("recorded_by", sa.Integer()),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("direction IN ('in','out')", name="scans_direction_known"),
    )
    op.create_index("ix_scans_checkpoint_at", "scans", ["checkpoint_id", "scanned_at"])
    op.add_column("task_requests", sa.Column("task_id", sa.BigInteger(),
                                             sa.ForeignKey("tasks.id", ondelete="SET NULL")))
    op.create_index("ix_task_requests_status", "task_requests", ["status"])
    op.execute(APPEND_ONLY)
    _append_only("task_events")
    _append_only("audit_log")


def downgrade() -> None:
    op.drop_index("ix_task_requests_status", table_name="task_requests")
    op.drop_column("task_requests", "task_id")
    for table in ("scans", "idempotency_keys", "task_photos"):
        op.drop_table(table)
    op.drop_geospatial_table("task_events")
    op.drop_geospatial_table("tasks")
    op.drop_geospatial_table("lead_reports")
    op.drop_geospatial_index("idx_leads_geom", table_name="leads", column_name="geom")
    op.drop_geospatial_table("leads")
    for table in ("audit_log", "login_failures", "user_sessions"):
        op.drop_table(table)
    op.execute("DROP FUNCTION nanhai_append_only()")
    op.drop_index("ix_users_community_id", table_name="users")
    op.drop_column("users", "on_duty")
