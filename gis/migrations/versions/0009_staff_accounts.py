"""Accounts for real staff: phones kept as personal data, activation codes, disabling, town-scoped commanders.

- ``users.phone_key`` (HMAC-SHA256 of the normalised phone, unique: one account per phone, found without
  reading it), ``phone_sealed`` (the phone as a Fernet token), ``phone_masked`` (138****5678, for display) —
  the same treatment as residents' phones (``matching.privacy``).
- ``users.must_set_password`` with ``activation_hash`` (a keyed hash of a one-time code, never the code)
  and ``activation_expires_at``: a new or reset account can only be activated, never logged into.
- ``users.disabled_at`` and ``disabled_by`` beside ``active``: who switched an account off, and when.
- ``users.town_id``: a commander or reporter answering for one town only (NULL: the whole district).
  Only those two roles may have one (``users_town_scope``).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("phone_key", sa.String(64)))
    op.add_column("users", sa.Column("phone_sealed", sa.Text()))
    op.add_column("users", sa.Column("phone_masked", sa.Text()))
    op.add_column("users", sa.Column("town_id", sa.Integer(), sa.ForeignKey("towns.id", ondelete="SET NULL")))
    op.add_column("users", sa.Column("must_set_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("users", sa.Column("activation_hash", sa.String(64)))
    op.add_column("users", sa.Column("activation_expires_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("disabled_by", sa.Text()))
    op.create_index("ux_users_phone_key", "users", ["phone_key"], unique=True)
    op.create_index("ix_users_town_id", "users", ["town_id"])
    op.create_check_constraint("users_town_scope", "users", "town_id IS NULL OR role IN ('commander', 'reporter')")


def downgrade() -> None:
    op.drop_constraint("users_town_scope", "users", type_="check")
    op.drop_index("ix_users_town_id", "users")
    op.drop_index("ux_users_phone_key", "users")
    for column in ("disabled_by", "disabled_at", "activation_expires_at", "activation_hash", "must_set_password",
                   "town_id", "phone_masked", "phone_sealed", "phone_key"):
        op.drop_column("users", column)
