"""Feeds, source records, persons with their risk codes, flags and task requests; the address table.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLOUR = "colour IN ('red','yellow','blue','green')"
# Person keys are hex: byte-wise ("C") comparison is right for them and much faster to index than a locale's.
KEY = sa.String(64, collation="C")


def upgrade() -> None:
    op.create_table(
        "feed_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_stored", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("default_crs", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("source", "sha256", name="feed_files_once_per_source"),
        sa.CheckConstraint("rows_read = rows_stored + rows_rejected", name="feed_files_rows_balance"),
    )
    op.create_table(
        "source_records",
        sa.Column("feed_file_id", sa.Integer(), sa.ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_number", sa.Integer(), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("person_key", KEY, nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),  # a Fernet token (base64)
        sa.Column("id_masked", sa.Text(), nullable=False),
        sa.Column("name_masked", sa.Text(), nullable=False),
        sa.Column("phone_masked", sa.Text()),
        sa.Column("address", sa.Text()),
        sa.Column("lon", sa.Float()),
        sa.Column("lat", sa.Float()),
        sa.Column("crs", sa.Text()),
        sa.Column("category", sa.Text()),
        sa.Column("reported_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_source_records_person_key", "source_records", ["person_key"])
    op.create_table(
        "feed_rejections",
        sa.Column("feed_file_id", sa.Integer(), sa.ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_number", sa.Integer(), primary_key=True),
        sa.Column("reasons", sa.Text(), nullable=False),
    )
    op.create_geospatial_table(
        "addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.UniqueConstraint("community_id", "text", name="addresses_unique_text"),
    )
    op.create_geospatial_index("idx_addresses_geom", "addresses", ["geom"], unique=False,
                               postgresql_using="gist", postgresql_ops={})
    op.create_geospatial_table(
        "persons",
        sa.Column("person_key", KEY, primary_key=True),
        sa.Column("id_masked", sa.Text(), nullable=False),
        sa.Column("name_masked", sa.Text(), nullable=False),
        sa.Column("phone_masked", sa.Text()),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text()),
        sa.Column("sources", sa.Text()),
        sa.Column("set_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("method", sa.Text()),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("unplaced_reason", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(COLOUR, name="persons_colour_known"),
        sa.CheckConstraint("(grid_id IS NULL) = (unplaced_reason IS NOT NULL)", name="persons_placed_or_why"),
    )
    # No GiST index on persons.geom: persons are read by grid; a million index entries per run cost more.
    op.create_index("ix_persons_grid_colour", "persons", ["grid_id", "colour"])
    op.create_table(
        "risk_code_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("person_key", KEY, nullable=False, index=True),
        sa.Column("previous_colour", sa.String(6)),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text()),
        sa.Column("sources", sa.Text()),
        sa.Column("set_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "risk_overrides",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_key", KEY, nullable=False, index=True),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(COLOUR, name="risk_overrides_colour_known"),
        sa.CheckConstraint("expires_at > set_at", name="risk_overrides_expire_later"),
    )
    op.create_table(
        "flags",
        sa.Column("person_key", KEY, sa.ForeignKey("persons.person_key", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL"), index=True),
        sa.Column("unplaced_reason", sa.Text()),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("colour IN ('red','yellow','blue')", name="flags_risk_colour"),
    )
    op.create_table(
        "task_requests",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("person_key", KEY, nullable=False, index=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("previous_colour", sa.String(6)),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    )


def downgrade() -> None:
    for table in ("task_requests", "flags", "risk_overrides", "risk_code_history"):
        op.drop_table(table)
    op.drop_geospatial_table("persons")
    op.drop_geospatial_index("idx_addresses_geom", table_name="addresses", column_name="geom")
    op.drop_geospatial_table("addresses")
    for table in ("feed_rejections", "source_records", "feed_files"):
        op.drop_table(table)
