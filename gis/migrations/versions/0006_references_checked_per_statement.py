"""The two references written a million at a time are checked once per statement, not once per row.

``source_records.feed_file_id`` and ``persons.grid_id`` were foreign keys. PostgreSQL checks a foreign key
row by row (an index probe and a row lock on the referenced table), a large share of a million-row import
and match (figures in benchmarks/RESULTS.md). Statement-level triggers see every written row in a transition
table, so each check becomes one lock of the referenced rows (``FOR KEY SHARE``, as the foreign key takes)
and one anti-join per statement. The guarantee is the same:

- a write naming a feed file or a grid that does not exist is refused whole (SQLSTATE 23503, as a foreign
  key would refuse it);
- on the referenced side, AFTER row triggers do what the keys did: deleting a feed file deletes its records
  (``ON DELETE CASCADE``); deleting or renumbering a grid that still has persons placed in it is refused
  (``replace_grids`` unplaces them first; the old ``SET NULL`` would have broken ``persons_placed_or_why``).
  They run after the row is gone, as the foreign key's own triggers do, so rows that a concurrent
  transaction committed meanwhile are seen, and the two sides cannot both pass in a race.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (table, column, referenced table, what a missing one is called in Chinese and in English)
REFERENCES = (("source_records", "feed_file_id", "feed_files", "数据文件", "feed file"),
              ("persons", "grid_id", "grids", "网格", "grid"))

EXISTS = """
CREATE FUNCTION nanhai_{table}_{column}_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    PERFORM 1 FROM {referenced} WHERE id IN (SELECT {column} FROM new_rows) ORDER BY id FOR KEY SHARE;
    SELECT n.{column} INTO missing FROM new_rows n
    WHERE n.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {referenced} r WHERE r.id = n.{column}) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('{zh} %s 不存在 / {table}.{column}: {en} %s does not exist', missing, missing);
    END IF;
    RETURN NULL;
END $$;
"""

REFERENCED_SIDE = """
CREATE FUNCTION nanhai_feed_file_takes_its_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM source_records WHERE feed_file_id = OLD.id;
    ELSIF NEW.id IS DISTINCT FROM OLD.id AND EXISTS (SELECT 1 FROM source_records WHERE feed_file_id = OLD.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('数据文件 %s 已有记录，不能改号 / feed file %s has records: its id cannot change',
                             OLD.id, OLD.id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION nanhai_grid_keeps_persons() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id)
       AND EXISTS (SELECT 1 FROM persons WHERE grid_id = OLD.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('网格 %s 仍有已落位的人员，请先取消其落位（导入新边界会这样做）'
                             '/ grid %s still has persons placed in it: unplace them first '
                             '(importing new boundaries does)', OLD.code, OLD.code);
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    for table, column, referenced, zh, en in REFERENCES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fkey")
        op.execute(EXISTS.format(table=table, column=column, referenced=referenced, zh=zh, en=en))
        for event in ("insert", "update"):
            op.execute(f"CREATE TRIGGER {table}_{column}_exists_{event} AFTER {event.upper()} ON {table} "
                       f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION nanhai_{table}_{column}_exists()")
    op.execute(REFERENCED_SIDE)
    op.execute("CREATE TRIGGER feed_files_take_records AFTER DELETE OR UPDATE OF id ON feed_files "
               "FOR EACH ROW EXECUTE FUNCTION nanhai_feed_file_takes_its_records()")
    op.execute("CREATE TRIGGER grids_keep_persons AFTER DELETE OR UPDATE OF id ON grids "
               "FOR EACH ROW EXECUTE FUNCTION nanhai_grid_keeps_persons()")


def downgrade() -> None:
    op.execute("DROP TRIGGER grids_keep_persons ON grids")
    op.execute("DROP TRIGGER feed_files_take_records ON feed_files")
    op.execute("DROP FUNCTION nanhai_grid_keeps_persons(); DROP FUNCTION nanhai_feed_file_takes_its_records()")
    actions = {"feed_files": "CASCADE", "grids": "SET NULL"}
    for table, column, referenced, *_ in REFERENCES:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_{column}_exists_{event} ON {table}")
        op.execute(f"DROP FUNCTION nanhai_{table}_{column}_exists()")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey FOREIGN KEY ({column}) "
                   f"REFERENCES {referenced} (id) ON DELETE {actions[referenced]}")
