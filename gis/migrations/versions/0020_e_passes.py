"""E-passes (issue 24): the signed pass a person shows at a checkpoint as a QR code, or printed on paper.

- ``e_passes``: one row per pass issued — the person key it stands for, a random ``nonce`` (the token is
  ``NHP1.<id>.<nonce>.<HMAC>``, the HMAC under a key derived from the platform's person-key secret, so the
  nonce alone forges nothing and lets the pass be printed again), who issued it and when, and who revoked
  it, when and why. No ID number, name or phone is stored here.
- ``ux_e_passes_live``: at most one pass in force per person (issuing a new one revokes the previous one in
  the same transaction).

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "e_passes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        # no foreign key: a pass outlives a person's risk record (retention may purge it; the pass then stands
        # for a person with no record, who passes green)
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("issued_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("reason", sa.Text()),
        sa.CheckConstraint("(revoked_at IS NULL) = (reason IS NULL)", name="e_passes_revocation_has_reason"),
    )
    op.create_index("ux_e_passes_live", "e_passes", ["person_key"], unique=True,
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_index("ix_e_passes_person", "e_passes", ["person_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_e_passes_person", table_name="e_passes")
    op.drop_index("ux_e_passes_live", table_name="e_passes")
    op.drop_table("e_passes")
