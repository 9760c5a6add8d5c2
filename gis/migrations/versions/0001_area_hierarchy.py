"""Area hierarchy, H3 cells, checkpoints, users and their grids.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _geom(kind: str, nullable: bool = True) -> sa.Column:
    return sa.Column("geom", Geometry(kind, srid=4326, spatial_index=False), nullable=nullable)


def _gist(table: str) -> None:
    op.create_geospatial_index(f"idx_{table}_geom", table, ["geom"], unique=False,
                               postgresql_using="gist", postgresql_ops={})


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "districts",
        sa.Column("code", sa.String(6), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        _geom("MULTIPOLYGON", nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("seed", sa.Integer()),
        sa.Column("generator", sa.Text()),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    _gist("districts")
    op.create_geospatial_table(
        "towns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(9), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("district_code", sa.String(6), sa.ForeignKey("districts.code", ondelete="CASCADE"), nullable=False),
        _geom("MULTIPOLYGON"),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.CheckConstraint("code ~ '^[0-9]{9}$'", name="towns_code_9_digits"),
    )
    _gist("towns")
    op.create_geospatial_table(
        "communities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(12), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_short", sa.Text(), nullable=False),
        sa.Column("unit_type", sa.Text(), nullable=False),
        sa.Column("town_id", sa.Integer(), sa.ForeignKey("towns.id", ondelete="CASCADE"), nullable=False),
        _geom("MULTIPOLYGON"),
        sa.Column("population", sa.Integer()),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name="communities_code_12_digits"),
    )
    _gist("communities")
    op.create_index("ix_communities_town_id", "communities", ["town_id"])
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(15), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id", ondelete="CASCADE"), nullable=False),
        _geom("MULTIPOLYGON", nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("population", sa.Integer()),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("source", sa.Text(), nullable=False),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name="grids_code_15_digits"),
    )
    _gist("grids")
    op.create_index("ix_grids_community_id", "grids", ["community_id"])
    op.create_table(
        "grid_cells",
        sa.Column("cell", sa.BigInteger(), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("interior", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_grid_cells_grid_id", "grid_cells", ["grid_id"])
    op.create_geospatial_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        _geom("POINT", nullable=False),
    )
    _gist("checkpoints")
    op.create_index("ix_checkpoints_community_id", "checkpoints", ["community_id"])
    op.create_index("ix_checkpoints_grid_id", "checkpoints", ["grid_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("community_id", sa.Integer(), sa.ForeignKey("communities.id", ondelete="SET NULL")),
        sa.Column("password_hash", sa.Text()),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role IN ('commander','supervisor','worker','reporter','admin')", name="users_role_known"),
    )
    op.create_table(
        "user_grids",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_user_grids_grid_id", "user_grids", ["grid_id"])


def downgrade() -> None:
    op.drop_table("user_grids")
    op.drop_table("users")
    for table in ("checkpoints",):
        op.drop_geospatial_index(f"idx_{table}_geom", table_name=table, column_name="geom")
        op.drop_geospatial_table(table)
    op.drop_table("grid_cells")
    for table in ("grids", "communities", "towns", "districts"):
        op.drop_geospatial_index(f"idx_{table}_geom", table_name=table, column_name="geom")
        op.drop_geospatial_table(table)
