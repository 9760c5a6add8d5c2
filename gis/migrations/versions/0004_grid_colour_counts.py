"""Persons per grid and colour, kept by the database itself: statistics read 4 rows per grid, not every person.

Statement-level triggers with transition tables fold each INSERT, UPDATE,
DELETE (bulk COPY and upserts included) into one upsert of the changed
(grid, colour) counts, taken in key order so that concurrent writers cannot
deadlock; TRUNCATE clears the counts.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COUNT = """
CREATE OR REPLACE FUNCTION nanhai_count_colours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO grid_colour_counts AS c (grid_id, colour, persons)
        SELECT grid_id, colour, count(*) FROM new_rows WHERE grid_id IS NOT NULL
        GROUP BY grid_id, colour ORDER BY grid_id, colour
        ON CONFLICT (grid_id, colour) DO UPDATE SET persons = c.persons + EXCLUDED.persons;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO grid_colour_counts AS c (grid_id, colour, persons)
        SELECT grid_id, colour, -count(*) FROM old_rows WHERE grid_id IS NOT NULL
        GROUP BY grid_id, colour ORDER BY grid_id, colour
        ON CONFLICT (grid_id, colour) DO UPDATE SET persons = c.persons + EXCLUDED.persons;
    ELSE
        INSERT INTO grid_colour_counts AS c (grid_id, colour, persons)
        SELECT grid_id, colour, sum(n) FROM (
            SELECT grid_id, colour, -1 AS n FROM old_rows WHERE grid_id IS NOT NULL
            UNION ALL SELECT grid_id, colour, 1 FROM new_rows WHERE grid_id IS NOT NULL) changed
        GROUP BY grid_id, colour HAVING sum(n) <> 0 ORDER BY grid_id, colour
        ON CONFLICT (grid_id, colour) DO UPDATE SET persons = c.persons + EXCLUDED.persons;
    END IF;
    DELETE FROM grid_colour_counts WHERE persons = 0;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION nanhai_clear_colour_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM grid_colour_counts;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "grid_colour_counts",
        sa.Column("grid_id", sa.Integer(), primary_key=True),
        sa.Column("colour", sa.String(8), primary_key=True),
        sa.Column("persons", sa.BigInteger(), nullable=False),
    )
    op.execute(COUNT)
    op.execute("CREATE TRIGGER persons_count_insert AFTER INSERT ON persons REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION nanhai_count_colours()")
    op.execute("CREATE TRIGGER persons_count_update AFTER UPDATE ON persons REFERENCING OLD TABLE AS old_rows "
               "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION nanhai_count_colours()")
    op.execute("CREATE TRIGGER persons_count_delete AFTER DELETE ON persons REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION nanhai_count_colours()")
    op.execute("CREATE TRIGGER persons_count_truncate AFTER TRUNCATE ON persons "
               "FOR EACH STATEMENT EXECUTE FUNCTION nanhai_clear_colour_counts()")
    op.execute("INSERT INTO grid_colour_counts (grid_id, colour, persons) SELECT grid_id, colour, count(*) "
               "FROM persons WHERE grid_id IS NOT NULL GROUP BY grid_id, colour")


def downgrade() -> None:
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER persons_count_{event} ON persons")
    op.drop_table("grid_colour_counts")
    op.execute("DROP FUNCTION nanhai_count_colours(); DROP FUNCTION nanhai_clear_colour_counts()")
