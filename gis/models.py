"""The tables (SQLAlchemy 2 ORM): area hierarchy, staff, checkpoints, and the matcher's tables.

Table and column names are a public contract: outside tools read ``towns``,
``communities``, ``grids`` (``code``, ``geom``), ``grid_cells`` and
``checkpoints`` directly. Geometries are EPSG:4326 with GiST indexes. The
Alembic migrations in ``gis/migrations`` create exactly these tables; a test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id", ondelete="SET NULL"), index=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    on_duty: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # staff accounts (migration 0009): the phone as personal data, activation, disabling, a town's scope
    phone_key: Mapped[str | None] = mapped_column(String(64))
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(Text)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id", ondelete="SET NULL"), index=True)
    must_set_password: Mapped[bool] = mapped_column(Boolean, server_default=false())
    activation_hash: Mapped[str | None] = mapped_column(String(64))
    activation_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_by: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (CheckConstraint("role IN ('commander','supervisor','worker','reporter','admin')",
                                      name="users_role_known"),
                      CheckConstraint("town_id IS NULL OR role IN ('commander', 'reporter')", name="users_town_scope"),
                      Index("ux_users_phone_key", "phone_key", unique=True))


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
    # stored rows with a field ignored (migration 0016): apart from the balance, at most the rows stored
    rows_warned: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    default_crs: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    # who imported it, the job that did, how long it took; a withdrawal (migration 0011) keeps the row
    imported_by: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    import_ms: Mapped[int | None] = mapped_column(Integer)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[str | None] = mapped_column(Text)
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ux_feed_files_once_per_source", "source", "sha256", unique=True,
                            postgresql_where=text("withdrawn_at IS NULL")),
                      CheckConstraint("rows_read = rows_stored + rows_rejected", name="feed_files_rows_balance"),
                      CheckConstraint("rows_warned >= 0 AND rows_warned <= rows_stored",
                                      name="feed_files_rows_warned_stored"),
                      CheckConstraint("(withdrawn_at IS NULL AND withdrawn_by IS NULL AND withdraw_reason IS NULL) OR "
                                      "(withdrawn_at IS NOT NULL AND withdrawn_by IS NOT NULL AND "
                                      "withdraw_reason IS NOT NULL)", name="feed_files_withdrawn_with_reason"))


class SourceRecord(Base):
    """One accepted row of a feed; personal fields only as Fernet tokens (``sealed``, ``address_sealed``) and
    masked."""

    __tablename__ = "source_records"
    # a feed file of ``feed_files`` (its records go with it), checked once per statement by triggers (migration 0006)
    feed_file_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    # not indexed (migration 0007): a person reaches his record through persons.record_feed_file_id/_row_number
    person_key: Mapped[str] = mapped_column(PERSON_KEY)
    sealed: Mapped[str] = mapped_column(Text)
    id_masked: Mapped[str] = mapped_column(Text)
    name_masked: Mapped[str] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(Text)
    address_sealed: Mapped[str | None] = mapped_column(Text)  # the home address, a Fernet token (migration 0014)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    crs: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # false: stored without an ID number, its person_key set by linkage (migration 0017)
    identified: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # where the person came from and the day he arrived, as travel lists give them (migration 0018)
    origin: Mapped[str | None] = mapped_column(Text)
    arrived_on: Mapped[date | None] = mapped_column(Date)


class FeedRejection(Base):
    __tablename__ = "feed_rejections"
    feed_file_id: Mapped[int] = mapped_column(ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    reasons: Mapped[str] = mapped_column(Text)


class FeedFieldWarning(Base):
    """A field of a stored row that was ignored (stored as missing) and why (migration 0016): ``field`` is
    ``phone``, ``lon, lat``, ``crs`` or ``reported_at``, ``reason`` worded as a rejection's."""

    __tablename__ = "feed_field_warnings"
    feed_file_id: Mapped[int] = mapped_column(ForeignKey("feed_files.id", ondelete="CASCADE"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)


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
    # a grid of ``grids`` (not deleted while persons are placed in it), checked once per statement by triggers
    # (migration 0006)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    unplaced_reason: Mapped[str | None] = mapped_column(Text)
    # the source record his masked fields come from (the latest), whose sealed data unmasking opens
    record_feed_file_id: Mapped[int | None] = mapped_column(Integer)
    record_row_number: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    provisional: Mapped[bool] = mapped_column(Boolean, server_default=false())  # known by no ID number yet (0017)
    explanation: Mapped[str | None] = mapped_column(Text)  # why his code: the rule's conditions and values (0018)
    # no index on grid_id (migration 0007): counts per grid are in grid_colour_counts
    __table_args__ = (CheckConstraint(f"colour IN {COLOUR_VALUES}", name="persons_colour_known"),
                      CheckConstraint("(grid_id IS NULL) = (unplaced_reason IS NOT NULL)",
                                      name="persons_placed_or_why"))


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
    explanation: Mapped[str | None] = mapped_column(Text)


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
    """A new or raised red/yellow code, or a rule's own request (``kind``, ``rule_id``: migration 0018), asking the
    task workflow for field work."""

    __tablename__ = "task_requests"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    previous_colour: Mapped[str | None] = mapped_column(String(6))
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="pending", index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    explanation: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(Text)


class RuleHold(Base):
    """A task-requesting rule holding for a person, since when and why: its task is requested once while it holds
    (migration 0018)."""

    __tablename__ = "rule_holds"
    person_key: Mapped[str] = mapped_column(PERSON_KEY, primary_key=True)
    rule_id: Mapped[str] = mapped_column(Text, primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    explanation: Mapped[str | None] = mapped_column(Text)



# -- accounts, tasks, leads and scans (migration 0003) ---------------------------------------------
TASK_STATUS_VALUES = "('created','dispatched','accepted','declined','in_progress','handled','closed','cancelled')"


class UserSession(Base):
    """A login: the cookie carries a random token, the table only its SHA-256."""

    __tablename__ = "user_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(Text)
    client: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_login_failures_username_at", "username", "failed_at"),)


class AuditEntry(Base):
    """One read of unmasked personal data (append-only: a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(String(64))


class Lead(Base):
    """A tip-off (线索): one or more reports about the same place, merged."""

    __tablename__ = "leads"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    summary: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    address_norm: Mapped[str | None] = mapped_column(Text, index=True)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"), index=True)
    report_count: Mapped[int] = mapped_column(Integer)
    first_reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("status IN ('open','triaged','dismissed')", name="leads_status_known"),)


class LeadReport(Base):
    __tablename__ = "lead_reports"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    contact_sealed: Mapped[str | None] = mapped_column(Text)
    contact_masked: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    reported_by: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(64))  # a keyed hash of the phone's token (0021)
    __table_args__ = (Index("ix_lead_reports_client_at", "client", "received_at"),
                      Index("ix_lead_reports_received_at", "received_at"),  # the alerts of a window (0019)
                      Index("ix_lead_reports_device_at", "device", "received_at",
                            postgresql_where=text("device IS NOT NULL")))


class Task(Base):
    """Field work on one grid; ``version`` grows with every state change (optimistic concurrency)."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    grid_code: Mapped[str] = mapped_column(String(15))
    person_key: Mapped[str | None] = mapped_column(PERSON_KEY)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoints.id", ondelete="SET NULL"))
    request_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_minutes: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalation_level: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    extension_count: Mapped[int] = mapped_column(Integer, server_default="0")
    extension_requested_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __table_args__ = (CheckConstraint(f"status IN {TASK_STATUS_VALUES}", name="tasks_status_known"),
                      CheckConstraint("source IN ('matcher','lead','checkpoint','manual','follow_up')",
                                      name="tasks_source_known"),
                      CheckConstraint("escalation_level BETWEEN 0 AND 2", name="tasks_escalation_level"),
                      Index("ix_tasks_grid_status", "grid_id", "status"),
                      Index("ix_tasks_assignee_status", "assignee_id", "status"),
                      Index("ix_tasks_status_due", "status", "due_at"),
                      # the statistics' handling-time percentiles, read in order (migration 0005)
                      Index("ix_tasks_closed_handling", "grid_id", text("date_part('epoch', closed_at - created_at)"),
                            postgresql_include=["created_at", "closed_at"],
                            postgresql_where=text("status = 'closed'")))


class TaskEvent(Base):
    """One line of a task's timeline (append-only: a trigger refuses UPDATE, DELETE and TRUNCATE)."""

    __tablename__ = "task_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(Text)
    actor_role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    __table_args__ = (UniqueConstraint("task_id", "seq", name="task_events_one_per_seq"),
                      # the extension requests of a window, for the alerts (migration 0019)
                      Index("ix_task_events_extension_requests", "at",
                            postgresql_where=text("action = 'request_extension'")))


class TaskPhoto(Base):
    __tablename__ = "task_photos"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("task_events.id", ondelete="RESTRICT"))
    uploaded_by: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    content_type: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotencyKey(Base):
    """The first answer to a request sent with an Idempotency-Key, replayed to its retries."""

    __tablename__ = "idempotency_keys"
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


class Scan(Base):
    __tablename__ = "scans"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"))
    person_key: Mapped[str] = mapped_column(PERSON_KEY)
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    direction: Mapped[str] = mapped_column(String(3))
    colour: Mapped[str | None] = mapped_column(String(6))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    recorded_by: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (CheckConstraint("direction IN ('in','out')", name="scans_direction_known"),
                      Index("ix_scans_checkpoint_at", "checkpoint_id", "scanned_at"))


class EPass(Base):
    """An e-pass (电子通行证, :mod:`checkpoints.passes`): the person key it stands for, the nonce its signed token
    carries, who issued it and when, and its revocation (who, when, why). No ID number, name or phone."""

    __tablename__ = "e_passes"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_key: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(32))
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        CheckConstraint("(revoked_at IS NULL) = (reason IS NULL)", name="e_passes_revocation_has_reason"),
        Index("ux_e_passes_live", "person_key", unique=True, postgresql_where=text("revoked_at IS NULL")),
        Index("ix_e_passes_person", "person_key", "id"))


class ObservationPlan(Base):
    """A person's home-observation plan (:mod:`observation`): grid, rule, start and end, check times (minutes
    after midnight, Beijing), closing; ``token_nonce`` the self-report link's (a new one revokes old links)."""

    __tablename__ = "observation_plans"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    rule_id: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    check_minutes: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    status: Mapped[str] = mapped_column(String(8), server_default="active")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(Text)
    token_nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        CheckConstraint("status IN ('active', 'closed')", name="observation_plans_status_known"),
        CheckConstraint("ends_at > starts_at", name="observation_plans_ends_after_start"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="observation_plans_closed_when"),
        Index("ux_observation_plans_active", "person_key", unique=True, postgresql_where=text("status = 'active'")),
        Index("ix_observation_plans_person", "person_key", "id"),
        Index("ix_observation_plans_grid_active", "grid_id", postgresql_where=text("status = 'active'")))


class ObservationCheck(Base):
    """One check a plan calls for: ``due`` until reported (``done``) or past its grace period (``missed``)."""

    __tablename__ = "observation_checks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("observation_plans.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(8), server_default="due")
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    temperature: Mapped[Decimal | None] = mapped_column(Numeric(3, 1))
    symptoms: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    channel: Mapped[str | None] = mapped_column(String(8))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    missed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint("status IN ('due', 'done', 'missed')", name="observation_checks_status_known"),
        CheckConstraint("channel IS NULL OR channel IN ('worker', 'self')", name="observation_checks_channel"),
        CheckConstraint("(status = 'done') = (reported_at IS NOT NULL)", name="observation_checks_done_when"),
        UniqueConstraint("plan_id", "due_at", name="uq_observation_checks_plan_due"),
        Index("ix_observation_checks_due", "due_at", postgresql_where=text("status = 'due'")),
        Index("ix_observation_checks_reported", "reported_at", postgresql_where=text("reported_at IS NOT NULL")))


class ObservationEvent(Base):
    """What happened to a plan (created, extended, closed, missed, fever, a task raised): the timelines."""

    __tablename__ = "observation_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("observation_plans.id", ondelete="CASCADE"))
    person_key: Mapped[str] = mapped_column(PERSON_KEY)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    __table_args__ = (Index("ix_observation_events_plan", "plan_id", "id"),
                      Index("ix_observation_events_person", "person_key", "id"))


class GridColourCount(Base):
    """Persons per grid and colour, kept by triggers on ``persons`` (migration 0004): what statistics read."""

    __tablename__ = "grid_colour_counts"
    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    colour: Mapped[str] = mapped_column(String(8), primary_key=True)
    persons: Mapped[int] = mapped_column(BigInteger, nullable=False)


class JobProgress(Base):
    """What a background job (jobs/) is doing, for the pages and ``gridctl jobs``; procrastinate's own tables
    (``procrastinate_*``, migration 0008) hold the queue itself and are not mapped here."""

    __tablename__ = "job_progress"
    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), server_default="queued")
    stage: Mapped[str] = mapped_column(String(16), server_default="queued")
    step: Mapped[str | None] = mapped_column(Text)
    fraction: Mapped[float] = mapped_column(Float, server_default="0")
    history: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    params: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    requested_by: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    worker: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_job_progress_created_at", "created_at"),)


# -- rule and time-limit versions (migration 0010) --------------------------------------------------
class RuleVersion(Base):
    """A saved version of the colour rules or the task kinds (their TOML text), append-only: the newest of each
    ``what`` is in force; with none stored, the TOML files are (matching/rule_versions.py)."""

    __tablename__ = "rule_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    what: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    saved_by: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str | None] = mapped_column(Text)
    rolled_back_from: Mapped[int | None] = mapped_column(ForeignKey("rule_versions.id"))
    __table_args__ = (CheckConstraint("what IN ('colour_rules','task_kinds')", name="rule_versions_what_known"),
                      Index("ix_rule_versions_what_id", "what", "id"))



# -- feed withdrawal (migration 0011) ----------------------------------------------------------------
# FeedFile's own columns above: imported_by, job_id, import_ms, withdrawn_at, withdrawn_by, withdraw_reason, and the
# unique index ux_feed_files_once_per_source over the files not withdrawn.


# -- boundary changes (migration 0012) ---------------------------------------------------------------


# -- code overrides and appeals from the browser (migration 0013) ------------------------------------
class SourceRecordPhone(Base):
    """A source record's phone key (a keyed hash of its normalised phone), ordered by key: the hotline's look-up by
    phone, nothing in clear. A trigger removes the keys of deleted records."""

    __tablename__ = "source_record_phones"
    phone_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    feed_file_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class CodeAppeal(Base):
    """A supervisor's request to change a person's code, until a commander or administrator decides it; an
    approved one names the override it created."""

    __tablename__ = "code_appeals"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(String(8), server_default="pending")
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
    override_id: Mapped[int | None] = mapped_column(ForeignKey("risk_overrides.id", ondelete="SET NULL"))
    __table_args__ = (CheckConstraint(f"colour IN {COLOUR_VALUES}", name="code_appeals_colour_known"),
                      CheckConstraint("status IN ('pending','approved','rejected')", name="code_appeals_status_known"),
                      CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="code_appeals_decided_when"),
                      Index("ux_code_appeals_one_pending", "person_key", unique=True,
                            postgresql_where=text("status = 'pending'")))


# -- record linkage and replays (migration 0017) ------------------------------------------------------------------
class RecordLink(Base):
    """How an unidentified source record was linked at the last match: to which person, in which band, with which
    score and agreeing fields. No foreign key to ``source_records`` (see the migration): rewritten by each match."""

    __tablename__ = "record_links"
    feed_file_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, index=True)
    band: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    agreeing: Mapped[str | None] = mapped_column(Text)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("band IN ('auto','decided','review','new')", name="record_links_band_known"),)


class LinkagePair(Base):
    """A pair of records in the review band: the unidentified record and a candidate's record."""

    __tablename__ = "linkage_pairs"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_feed_file_id: Mapped[int] = mapped_column(Integer)
    record_row_number: Mapped[int] = mapped_column(Integer)
    other_feed_file_id: Mapped[int] = mapped_column(Integer)
    other_row_number: Mapped[int] = mapped_column(Integer)
    other_person_key: Mapped[str] = mapped_column(PERSON_KEY)
    score: Mapped[float] = mapped_column(Float)
    agreeing: Mapped[str | None] = mapped_column(Text)
    disagreeing: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (UniqueConstraint("record_feed_file_id", "record_row_number", "other_feed_file_id",
                                       "other_row_number", name="linkage_pairs_records_unique"),
                      CheckConstraint("status IN ('open','decided','gone')", name="linkage_pairs_status_known"),
                      Index("ix_linkage_pairs_open", "status", "score"),
                      Index("ix_linkage_pairs_other", "other_feed_file_id", "other_row_number"))


class LinkageDecision(Base):
    """A reviewer's decision on a pair of records (append-only; the newest for a pair holds at every match)."""

    __tablename__ = "linkage_decisions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_feed_file_id: Mapped[int] = mapped_column(Integer)
    record_row_number: Mapped[int] = mapped_column(Integer)
    other_feed_file_id: Mapped[int] = mapped_column(Integer)
    other_row_number: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="review")
    pair_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_pairs.id", ondelete="SET NULL"))
    person_key: Mapped[str | None] = mapped_column(PERSON_KEY)
    decided_by: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reason: Mapped[str] = mapped_column(Text, server_default="")
    __table_args__ = (CheckConstraint("decision IN ('same','different')", name="linkage_decisions_decision_known"),
                      CheckConstraint("kind IN ('review','split')", name="linkage_decisions_kind_known"),
                      Index("ix_linkage_decisions_record", "record_feed_file_id", "record_row_number"),
                      Index("ix_linkage_decisions_other", "other_feed_file_id", "other_row_number"))


class LinkageModel(Base):
    """Match weights trained on the data (Splink's settings as JSON)."""

    __tablename__ = "linkage_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    records: Mapped[int] = mapped_column(Integer)
    settings = mapped_column(JSONB, nullable=False)


class Replay(Base):
    """A named as-of run: the codes as they stood at ``as_of``, kept apart from today's picture."""

    __tablename__ = "replays"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(Text)
    stats = mapped_column(JSONB, nullable=False, server_default="{}")


class ReplayPerson(Base):
    __tablename__ = "replay_persons"
    replay_id: Mapped[int] = mapped_column(ForeignKey("replays.id", ondelete="CASCADE"), primary_key=True)
    person_key: Mapped[str] = mapped_column(PERSON_KEY, primary_key=True)
    id_masked: Mapped[str] = mapped_column(Text)
    name_masked: Mapped[str] = mapped_column(Text)
    colour: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[str | None] = mapped_column(Text)
    set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    grid_id: Mapped[int | None] = mapped_column(Integer)
    unplaced_reason: Mapped[str | None] = mapped_column(Text)
    provisional: Mapped[bool] = mapped_column(Boolean, server_default=false())
    explanation: Mapped[str | None] = mapped_column(Text)


class MatchRun(Base):
    """One match run and the time its codes are as of (a replay's names the replay)."""

    __tablename__ = "match_runs"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replay_id: Mapped[int | None] = mapped_column(ForeignKey("replays.id", ondelete="SET NULL"))
    stats = mapped_column(JSONB, nullable=False, server_default="{}")


# a person's tasks (the look-up), and the audit log read by time, by user and by subject (migration 0013)
Index("ix_tasks_person_key", Task.person_key, postgresql_where=text("person_key IS NOT NULL"))
Index("ix_audit_log_at", AuditEntry.at)
Index("ix_audit_log_username_at", AuditEntry.username, AuditEntry.at)
Index("ix_audit_log_subject", AuditEntry.subject)


class AlertWebhook(Base):
    """A group-chat robot the alerts are posted to (migration 0019), known by its URL's SHA-256 (the URL holds
    the robot's key), with the moment up to which every alert has reached it."""

    __tablename__ = "alert_webhooks"
    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(Text)
    delivered_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (CheckConstraint("kind IN ('wecom','dingtalk')", name="alert_webhooks_kind_known"),)


class AlertDelivery(Base):
    """One message of alerts for a robot (``jobs.webhook``): pending while posted, sent, or failed awaiting its
    retry; its text names kinds, grids and times only."""

    __tablename__ = "alert_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    url_hash: Mapped[str] = mapped_column(String(64), ForeignKey("alert_webhooks.url_hash", ondelete="CASCADE"))
    window_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    alerts: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint("status IN ('pending','sent','failed')", name="alert_deliveries_status_known"),
                      CheckConstraint("window_from < window_to", name="alert_deliveries_window"),
                      Index("ix_alert_deliveries_webhook", "url_hash", "id"))
