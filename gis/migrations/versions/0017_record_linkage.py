"""Record linkage and codes as of any time (issue 21).

A row without an ID number is stored when it carries enough to link (a phone; or a name with a date of birth or an
address) and is then linked to a person by :mod:`matching.linkage` (Splink, Fellegi–Sunter):

- ``source_records.identified``: false for a record stored without an ID number. Its ``person_key`` is first its
  own provisional key (``~<feed file>-<row>``) and becomes, at each match, the key of the person it is linked to
  (an identified person, or the provisional person of its cluster), so every query by person key finds it.
- ``persons.provisional``: a person known by no ID number yet (his key is a provisional key); an ID number that
  links to him later ends it.
- ``record_links``: how each unidentified record was linked at the last match — the person, the band (``auto``:
  above the upper threshold; ``decided``: a reviewer said "same person"; ``review``: waiting in the queue, a
  provisional person meanwhile; ``new``: below the lower threshold), the score and the fields that agreed.
- ``linkage_pairs``: the review queue, one row per (unidentified record, candidate record) pair in the band
  between the thresholds, with score and agreeing and disagreeing fields; ``status`` open, decided or gone (no
  longer a candidate at a later match).
- ``linkage_decisions``: every reviewer's decision (``same`` or ``different``; ``kind`` review or split) on a pair
  of records, append-only; the newest for a pair holds at every later match.
- ``linkage_models``: the trained match weights (Splink's settings, JSON), each with when, on how many records.
- No foreign key points at ``source_records`` (a withdrawal deletes a million records; row-by-row cascades would
  cost more than the import, see migration 0006): ``record_links`` is rewritten whole by each match, a pair whose
  record is gone is marked gone by the next match, and a decision about a record that is gone matches nothing.
- ``match_runs``: each match run, with the time its codes are as of (``as_of``) and, for a replay, its name.
- ``replays`` and ``replay_persons``: a named as-of run's result, written apart from today's picture.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

KEY = sa.String(64, collation="C")
RECORD = ("feed_file_id", "row_number")


def _record(prefix: str) -> list[sa.Column]:
    return [sa.Column(f"{prefix}feed_file_id", sa.Integer(), nullable=False),
            sa.Column(f"{prefix}row_number", sa.Integer(), nullable=False)]


def upgrade() -> None:
    op.add_column("source_records", sa.Column("identified", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("persons", sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "record_links",
        *_record(""),
        sa.Column("person_key", KEY, nullable=False),
        sa.Column("band", sa.Text(), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("agreeing", sa.Text()),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*RECORD),
        sa.CheckConstraint("band IN ('auto','decided','review','new')", name="record_links_band_known"),
    )
    op.create_index("ix_record_links_person_key", "record_links", ["person_key"])
    op.create_table(
        "linkage_pairs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        *_record("record_"), *_record("other_"),
        sa.Column("other_person_key", KEY, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("agreeing", sa.Text()),
        sa.Column("disagreeing", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False, server_default="open"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("record_feed_file_id", "record_row_number", "other_feed_file_id", "other_row_number",
                            name="linkage_pairs_records_unique"),
        sa.CheckConstraint("status IN ('open','decided','gone')", name="linkage_pairs_status_known"),
    )
    op.create_index("ix_linkage_pairs_open", "linkage_pairs", ["status", "score"])
    op.create_index("ix_linkage_pairs_other", "linkage_pairs", ["other_feed_file_id", "other_row_number"])
    op.create_table(
        "linkage_decisions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        *_record("record_"), *_record("other_"),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, server_default="review"),
        sa.Column("pair_id", sa.BigInteger(), sa.ForeignKey("linkage_pairs.id", ondelete="SET NULL")),
        sa.Column("person_key", KEY),  # the person the record belonged to when decided (a split names him)
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint("decision IN ('same','different')", name="linkage_decisions_decision_known"),
        sa.CheckConstraint("kind IN ('review','split')", name="linkage_decisions_kind_known"),
    )
    op.create_index("ix_linkage_decisions_record", "linkage_decisions", ["record_feed_file_id", "record_row_number"])
    op.create_index("ix_linkage_decisions_other", "linkage_decisions", ["other_feed_file_id", "other_row_number"])
    op.create_table(
        "linkage_models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("settings", JSONB(), nullable=False),
    )
    op.create_table(
        "replays",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text()),
        sa.Column("stats", JSONB(), nullable=False, server_default="{}"),
    )
    op.create_table(
        "replay_persons",
        sa.Column("replay_id", sa.Integer(), sa.ForeignKey("replays.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("person_key", KEY, primary_key=True),
        sa.Column("id_masked", sa.Text(), nullable=False),
        sa.Column("name_masked", sa.Text(), nullable=False),
        sa.Column("colour", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text()),
        sa.Column("sources", sa.Text()),
        sa.Column("set_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("grid_id", sa.Integer()),
        sa.Column("unplaced_reason", sa.Text()),
        sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "match_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replay_id", sa.Integer(), sa.ForeignKey("replays.id", ondelete="SET NULL")),
        sa.Column("stats", JSONB(), nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    for table in ("match_runs", "replay_persons", "replays", "linkage_models", "linkage_decisions", "linkage_pairs",
                  "record_links"):
        op.drop_table(table)
    op.drop_column("persons", "provisional")
    op.drop_column("source_records", "identified")
