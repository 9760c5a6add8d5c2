"""The public form's limit per device (issue 24): ``lead_reports.device``.

A village behind one shared address (NAT) must not be blocked as one client: the form gives each phone a random
long-lived device token (a cookie; the API also takes it as a header), and each report keeps a keyed hash of it
(never the token itself, like ``client`` for the address). The limit counts a device's reports by
``ix_lead_reports_device_at``; reports without a token (NULL) are counted per address as before.

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lead_reports", sa.Column("device", sa.String(64)))
    op.create_index("ix_lead_reports_device_at", "lead_reports", ["device", "received_at"],
                    postgresql_where=sa.text("device IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_lead_reports_device_at", table_name="lead_reports")
    op.drop_column("lead_reports", "device")
