"""The tables (SQLAlchemy 2 ORM): area hierarchy, staff, checkpoints, and the matcher's tables.

Table and column names are a public contract: outside tools read ``towns``,
``communities``, ``grids`` (``code``, ``geom``), ``grid_cells`` and
``checkpoints`` directly. Geometries are EPSG:4326 with GiST indexes. The
Alembic migrations in ``gis/migrations`` create exactly these tables; a test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("commander", "supervisor", "worker", "reporter", "admin")
COLOUR_VALUES = "('red','yellow','blue','green')"
PERSON_KEY = String(64, collation="C")


class Base(DeclarativeBase):
    pass


class District(Base):
    __tablename__ = "districts"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    source: Mapped[str] = mapped_column(Text)
    seed: Mapped[int | None] = mapped_column(Integer)
    generator: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Town(Base):
    __tablename__ = "towns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code", ondelete="CASCADE"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{9}$'", name="towns_code_9_digits"),)


class Community(Base):
    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_short: Mapped[str] = mapped_column(Text)
    unit_type: Mapped[str] = mapped_column(Text)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id", ondelete="CASCADE"), index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True))
    population: Mapped[int | None] = mapped_column(Integer)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{12}$'", name="communities_code_12_digits"),)


class Grid(Base):
    __tablename__ = "grids"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(Text)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"), index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    area_m2: Mapped[float] = mapped_column(Float)
    population: Mapped[int | None] = mapped_column(Integer)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(Text)
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{15}$'", name="grids_code_15_digits"),)


class GridCell(Base):
    __tablename__ = "grid_cells"
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True, index=True)
    resolution: Mapped[int] = mapped_column(SmallInteger)
    interior: Mapped[bool] = mapped_column(Boolean)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(Text)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"), index=True)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id", ondelete="SET NULL"))
    password_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (CheckConstraint("role IN ('commander','supervisor','worker','reporter','admin')",
                                      name="users_role_known"),)


class UserGrid(Base):
    """A grid a worker owns or a supervisor oversees."""

    __tablename__ = "user_grids"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True, index=True)


# -- the matcher's tables (migration 0002) ---------------------------------------------------------
class FeedFile(Base):
    __tablename__ = "feed_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_stored: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    default_crs: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (UniqueConstraint("source", "sha256", name="feed_files_once_per_source"),
                      CheckConstraint("rows_read = rows_stored + rows_rejected", name="feed_files_rows_balance"))


class SourceRecord(Base):
    """One accepted row of a feed; personal fields only as a Fernet token (``sealed``) and masked."""

    __tablename__ = "source_records"
    feed_file_id: Mapped[int] = mapped_column(ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    sealed: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(Text)
    name_masked: Mapped[str] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    crs: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FeedRejection(Base):
    __tablename__ = "feed_rejections"
    feed_file_id: Mapped[int] = mapped_column(ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    reasons: Mapped[str] = mapped_column(Text)


class Address(Base):
    """The standard address table (generated, and marked synthetic, for the reference district)."""

    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=true())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    __table_args__ = (UniqueConstraint("community_id", "text", name="addresses_unique_text"),)


class Person(Base):
    __tablename__ = "persons"
    person_key: Mapped[str] = mapped_column(PERSON_KEY, primary_key=True)
    id_masked: Mapped[str] = mapped_column(Text)
    name_masked: Mapped[str] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(Text)
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[str | None] = mapped_column(Text)
    set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    method: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    unplaced_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (CheckConstraint(f"colour IN {COLOUR_VALUES}", name="persons_colour_known"),
                      CheckConstraint("(grid_id IS NULL) = (unplaced_reason IS NOT NULL)",
                                      name="persons_placed_or_why"),
                      Index("ix_persons_grid_colour", "grid_id", "colour"))


class RiskCodeHistory(Base):
    __tablename__ = "risk_code_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    previous_colour: Mapped[str | None] = mapped_column(String(6))
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[str | None] = mapped_column(Text)
    set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RiskOverride(Base):
    __tablename__ = "risk_overrides"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint(f"colour IN {COLOUR_VALUES}", name="risk_overrides_colour_known"),
                      CheckConstraint("expires_at > set_at", name="risk_overrides_expire_later"))


class Flag(Base):
    __tablename__ = "flags"
    person_key: Mapped[str] = mapped_column(PERSON_KEY, ForeignKey("persons.person_key", ondelete="CASCADE"),
                                            primary_key=True)
    colour: Mapped[str] = mapped_column(String(6))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"), index=True)
    unplaced_reason: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("colour IN ('red','yellow','blue')", name="flags_risk_colour"),)


class TaskRequest(Base):
    """A new or raised red/yellow code asking the task workflow for field work."""

    __tablename__ = "task_requests"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    previous_colour: Mapped[str | None] = mapped_column(String(6))
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
