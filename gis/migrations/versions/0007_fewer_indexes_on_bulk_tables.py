"""Two indexes that every million-row import and match paid for, and that almost nothing read, are gone.

- ``source_records (person_key)``: a B-tree over random 64-character keys, so every row of a bulk COPY
  went to a random page of it (figures in benchmarks/RESULTS.md). Its only reader was the unmasking of
  one person, which looked for his latest record. A person now points to the record that his masked
  fields come from (``persons.record_feed_file_id``, ``record_row_number``, written by each match). Unmasking reads that
  record through the primary key, and shows the same record's clear data as the masked fields show.
- ``persons (grid_id, colour)``: a million entries written by every first match run. Counts
  per grid come from ``grid_colour_counts`` (0004). Unplacing the persons of grids that are going away is
  rare and scans the table. The check that a grid has no persons left before it goes reads those counts
  too: they are kept in the same transaction as the persons, so the check sees what it saw before.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

GRID_KEEPS_PERSONS = """
CREATE OR REPLACE FUNCTION nanhai_grid_keeps_persons() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id)
       AND EXISTS (SELECT 1 FROM {table} WHERE grid_id = OLD.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('网格 %s 仍有已落位的人员，请先取消其落位（导入新边界会这样做）'
                             '/ grid %s still has persons placed in it: unplace them first '
                             '(importing new boundaries does)', OLD.code, OLD.code);
    END IF;
    RETURN NULL;
END $$;
"""

# Each person's latest record, in the order the matcher reads them (matching.pipeline): oldest first by report
# time (the import time where a row has none), then by file and row.
LATEST_RECORDS = """
UPDATE persons p SET record_feed_file_id = l.feed_file_id, record_row_number = l.row_number
FROM (SELECT DISTINCT ON (r.person_key) r.person_key, r.feed_file_id, r.row_number
      FROM source_records r JOIN feed_files f ON f.id = r.feed_file_id
      ORDER BY r.person_key, coalesce(r.reported_at, f.imported_at) DESC, r.feed_file_id DESC, r.row_number DESC) l
WHERE l.person_key = p.person_key
"""


def upgrade() -> None:
    op.add_column("persons", sa.Column("record_feed_file_id", sa.Integer()))
    op.add_column("persons", sa.Column("record_row_number", sa.Integer()))
    op.execute(LATEST_RECORDS)
    op.drop_index("ix_source_records_person_key", "source_records")
    op.drop_index("ix_persons_grid_colour", "persons")
    op.execute(GRID_KEEPS_PERSONS.format(table="grid_colour_counts"))


def downgrade() -> None:
    op.execute(GRID_KEEPS_PERSONS.format(table="persons"))
    op.create_index("ix_persons_grid_colour", "persons", ["grid_id", "colour"])
    op.create_index("ix_source_records_person_key", "source_records", ["person_key"])
    op.drop_column("persons", "record_row_number")
    op.drop_column("persons", "record_feed_file_id")
