"""Code overrides and appeals from the browser; audited look-ups by ID number or phone; the audit log read.

- ``source_record_phones``: each source record's phone key — a keyed hash of its normalised phone, digits only
  (the first 8 bytes of a BLAKE2b MAC under a key derived from the person-key secret, as a signed BIGINT) — with
  the record's feed file and row. The hotline finds a person by phone without any phone stored in clear or read
  back. A table of its own, ordered by key (its primary key), rather than an indexed column of
  ``source_records``: an import stores its keys sorted, at the end, which costs the server far less than a
  B-tree on ``source_records`` updated at random for every row (1,000,000 rows on the 2-core machine: a sorted
  insert 1.4 s; a B-tree on ``source_records`` 2.3 s at best, 3-5 s typically). A statement trigger removes
  the keys of deleted records (a withdrawn feed's). Two phones sharing a key is a 1-in-10^19 chance per pair
  and would only show a second person, in scope. Records stored before this
  revision have no key until ``gridctl people backfill-phones``.
- ``code_appeals``: a supervisor's request to change a person's code (colour, reason, until when), pending
  until a commander or administrator approves it (which creates the ``risk_overrides`` row it names) or
  rejects it, each with who, when and a note. At most one pending appeal per person.
- Indexes for the look-up's and the audit page's reads: ``tasks.person_key`` (a person's tasks),
  ``audit_log`` by time, by user and time, and by subject (who read whom).

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

KEY = sa.String(64, collation="C")
COLOURS = "('red','yellow','blue','green')"
STATUSES = "('pending','approved','rejected')"
# the phone keys of deleted source records go with them (once per statement: a withdrawal deletes a whole feed)
DROP_PHONES = """
CREATE FUNCTION nanhai_drop_record_phones() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM source_record_phones p USING gone g
    WHERE p.feed_file_id = g.feed_file_id AND p.row_number = g.row_number;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "source_record_phones",
        sa.Column("phone_key", sa.BigInteger(), primary_key=True),
        sa.Column("feed_file_id", sa.Integer(), primary_key=True),
        sa.Column("row_number", sa.Integer(), primary_key=True),
    )
    op.execute(DROP_PHONES)
    op.execute("CREATE TRIGGER source_records_drop_phones AFTER DELETE ON source_records "
               "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION nanhai_drop_record_phones()")
    op.create_table(
        "code_appeals",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("person_key", KEY, nullable=False),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("status", sa.String(8), server_default="pending", nullable=False),
        sa.Column("decided_by", sa.Text()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_note", sa.Text()),
        sa.Column("override_id", sa.Integer(), sa.ForeignKey("risk_overrides.id", ondelete="SET NULL")),
        sa.CheckConstraint(f"colour IN {COLOURS}", name="code_appeals_colour_known"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="code_appeals_status_known"),
        sa.CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="code_appeals_decided_when"),
    )
    op.create_index("ix_code_appeals_person_key", "code_appeals", ["person_key"])
    op.create_index("ux_code_appeals_one_pending", "code_appeals", ["person_key"], unique=True,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_tasks_person_key", "tasks", ["person_key"], postgresql_where=sa.text("person_key IS NOT NULL"))
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_username_at", "audit_log", ["username", "at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])


def downgrade() -> None:
    for name, table in (("ix_audit_log_subject", "audit_log"), ("ix_audit_log_username_at", "audit_log"),
                        ("ix_audit_log_at", "audit_log"), ("ix_tasks_person_key", "tasks")):
        op.drop_index(name, table_name=table)
    op.drop_table("code_appeals")
    op.execute("DROP TRIGGER source_records_drop_phones ON source_records")
    op.execute("DROP FUNCTION nanhai_drop_record_phones()")
    op.drop_table("source_record_phones")
