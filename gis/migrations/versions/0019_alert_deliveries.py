"""Alerts (issue 23): the indexes that keep the dispatch page's alert question cheap, and the deliveries of alerts
to the office's group-chat robots (WeCom / DingTalk webhooks).

- ``ix_lead_reports_received_at``: the lead reports of a time window (``tasks.alerts``); the only index on
  ``received_at`` so far led with the client.
- ``ix_task_events_extension_requests``: the extension requests of a time window, a partial index over the few
  events that are requests (``task_events`` is append-only, so it only grows).
- ``alert_webhooks``: one row per configured robot, keyed by the SHA-256 of its URL (the URL carries the robot's
  key or access token, so it is never stored in clear), with its kind, host and ``delivered_until``: every alert up
  to that moment has reached it. It moves only when a message is delivered.
- ``alert_deliveries``: each message posted or to be posted to a robot — the window of alerts it carries
  ``(window_from, window_to]``, their count, the text (kinds, grid names and codes, times: nothing personal), its
  status (``pending`` while being posted, ``sent``, ``failed`` awaiting its retry at ``next_attempt_at``), attempts
  and the last error (an HTTP status or the robot's errcode, never the URL).

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_index("ix_lead_reports_received_at", "lead_reports", ["received_at"])
    op.create_index("ix_task_events_extension_requests", "task_events", ["at"],
                    postgresql_where=sa.text("action = 'request_extension'"))
    op.create_table(
        "alert_webhooks",
        sa.Column("url_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("delivered_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("kind IN ('wecom','dingtalk')", name="alert_webhooks_kind_known"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("url_hash", sa.String(64), sa.ForeignKey("alert_webhooks.url_hash", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending','sent','failed')", name="alert_deliveries_status_known"),
        sa.CheckConstraint("window_from < window_to", name="alert_deliveries_window"),
    )
    op.create_index("ix_alert_deliveries_webhook", "alert_deliveries", ["url_hash", "id"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_webhook", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_webhooks")
    op.drop_index("ix_task_events_extension_requests", table_name="task_events")
    op.drop_index("ix_lead_reports_received_at", table_name="lead_reports")
