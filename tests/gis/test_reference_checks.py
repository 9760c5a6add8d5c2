"""A person's grid and a source record's feed file must exist, as foreign keys would ensure, though they are
checked once per statement (migration 0006): bad writes are refused whole, a grid with persons placed in it
cannot be deleted, a deleted feed file takes its records, also when the two sides race."""

import threading
from collections.abc import Callable

import pytest
from psycopg.errors import ForeignKeyViolation
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from grids.repository import copy_rows


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    return database_factory("nanhai_references", copy_of=seeded_engine)


def _insert(grid_sql: str, n: int = 3, tag: str = "a") -> str:
    return ("INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id) "
            f"SELECT md5('{tag}' || i) || md5(i::text), 'x', 'x', 'red', 'r', 1, {grid_sql} "
            f"FROM generate_series(1, {n}) i")


def _persons(engine, tag: str) -> int:
    """How many of the persons that :func:`_insert` makes under ``tag`` are stored."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM persons WHERE person_key IN "
                                 "(SELECT md5(:t || i) || md5(i::text) FROM generate_series(1, 3) i)"),
                            {"t": tag}).scalar_one()


def _spare_grid(engine) -> tuple[int, str]:
    """A grid that nothing else in these tests uses."""
    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT id, code FROM grids g WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.grid_id = g.id) "
            "ORDER BY id DESC LIMIT 1")).one())


def test_persons_in_existing_grids_or_unplaced_are_stored(engine):
    with engine.begin() as conn:
        conn.execute(text(_insert("(SELECT min(id) FROM grids) + i", tag="ok")))
        conn.execute(text("INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, "
                          "unplaced_reason) VALUES (md5('unplaced') || md5('x'), 'x', 'x', 'red', 'r', 0, "
                          "'no_location')"))
    assert _persons(engine, "ok") == 3


@pytest.mark.parametrize("statements", [
    [_insert("CASE WHEN i = 2 THEN -7 ELSE (SELECT min(id) FROM grids) END", tag="bad")],
    [_insert("(SELECT min(id) FROM grids)", tag="upd"),
     "UPDATE persons SET grid_id = (SELECT max(id) FROM grids) + 1 WHERE person_key = md5('upd1') || md5('1')"],
], ids=["insert", "update"])
def test_a_write_naming_a_missing_grid_is_refused_whole(engine, statements):
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*), count(DISTINCT grid_id) FROM persons")).one()
    with pytest.raises(IntegrityError) as refused, engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    assert isinstance(refused.value.orig, ForeignKeyViolation)
    assert "does not exist" in str(refused.value.orig)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), count(DISTINCT grid_id) FROM persons")).one() == before


def test_copy_is_checked_too(engine):
    with pytest.raises(ForeignKeyViolation), engine.begin() as conn:  # raised by psycopg's COPY itself
        copy_rows(conn, "persons", ("person_key", "id_masked", "name_masked", "colour", "reason", "confidence",
                                    "grid_id"),
                  [("c" * 64, "x", "x", "red", "r", 1.0, -1)])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM persons WHERE person_key = :k"), {"k": "c" * 64}).scalar() == 0


def test_a_grid_with_persons_placed_cannot_be_deleted_until_they_are_unplaced(engine):
    grid_id, code = _spare_grid(engine)
    with engine.begin() as conn:
        conn.execute(text(_insert(str(grid_id), tag="del")))
    with pytest.raises(IntegrityError) as refused, engine.begin() as conn:
        conn.execute(text("DELETE FROM grids WHERE id = :g"), {"g": grid_id})
    assert code in str(refused.value.orig) and "unplace them first" in str(refused.value.orig)
    with engine.begin() as conn:
        conn.execute(text("UPDATE persons SET grid_id = NULL, unplaced_reason = 'grid_removed' WHERE grid_id = :g"),
                     {"g": grid_id})
        conn.execute(text("DELETE FROM grids WHERE id = :g"), {"g": grid_id})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids WHERE id = :g"), {"g": grid_id}).scalar() == 0


def _race(engine, first: Callable[[Connection], object], second: Callable[[Connection], object]) -> list:
    """Run ``first`` in a transaction left open, then ``second`` in another, which must wait for the first to
    commit; returns how ``second`` ended: ``["done"]`` or ``[the error]``."""
    outcome: list = []

    def run_second():
        try:
            with engine.begin() as conn:
                second(conn)
            outcome.append("done")
        except (IntegrityError, ForeignKeyViolation) as exc:
            outcome.append(exc)
    with engine.connect() as conn:
        conn.begin()
        first(conn)
        thread = threading.Thread(target=run_second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the second transaction must wait for the first"
        conn.commit()
        thread.join(timeout=30)
    return outcome


def _delete(table: str, row_id: int) -> Callable[[Connection], object]:
    return lambda conn: conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})


def test_a_grid_deleted_while_persons_are_placed_in_it_waits_and_is_refused(engine):
    grid_id, _ = _spare_grid(engine)
    outcome = _race(engine, lambda conn: conn.execute(text(_insert(str(grid_id), tag="race1"))),
                    _delete("grids", grid_id))
    assert len(outcome) == 1 and isinstance(outcome[0], IntegrityError)
    assert _persons(engine, "race1") == 3


def test_persons_placed_in_a_grid_being_deleted_wait_and_are_refused(engine):
    grid_id, _ = _spare_grid(engine)
    outcome = _race(engine, _delete("grids", grid_id),
                    lambda conn: conn.execute(text(_insert(str(grid_id), tag="race2"))))
    assert len(outcome) == 1 and isinstance(outcome[0], IntegrityError)
    assert _persons(engine, "race2") == 0


RECORD_COLUMNS = ("feed_file_id", "row_number", "source", "person_key", "sealed", "id_masked", "name_masked")


def _feed_file(engine, name: str) -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs) "
            "VALUES ('test', :n, md5(:n) || md5(:n), 2, 2, 0, 'wgs84') RETURNING id"), {"n": name}).scalar_one()


def _records(feed_id: int, n: int = 2) -> list[tuple]:
    return [(feed_id, row, "test", "k" * 64, "token", "x", "x") for row in range(1, n + 1)]


def _stored_records(engine, feed_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM source_records WHERE feed_file_id = :f"),
                            {"f": feed_id}).scalar_one()


def test_records_of_a_missing_feed_file_are_refused_whole(engine):
    feed_id = _feed_file(engine, "refused")
    with pytest.raises(ForeignKeyViolation) as refused, engine.begin() as conn:
        copy_rows(conn, "source_records", RECORD_COLUMNS, _records(feed_id) + _records(feed_id + 1000)[:1])
    assert f"{feed_id + 1000}" in str(refused.value) and "does not exist" in str(refused.value)
    assert _stored_records(engine, feed_id) == 0


def test_deleting_a_feed_file_deletes_its_records(engine):
    kept, dropped = _feed_file(engine, "kept"), _feed_file(engine, "dropped")
    with engine.begin() as conn:
        copy_rows(conn, "source_records", RECORD_COLUMNS, _records(kept) + _records(dropped))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM feed_files WHERE id = :f"), {"f": dropped})
    assert (_stored_records(engine, kept), _stored_records(engine, dropped)) == (2, 0)


def test_a_feed_file_deleted_while_its_records_are_stored_takes_them_along(engine):
    feed_id = _feed_file(engine, "race3")
    outcome = _race(engine, lambda conn: copy_rows(conn, "source_records", RECORD_COLUMNS, _records(feed_id)),
                    _delete("feed_files", feed_id))
    assert outcome == ["done"] and _stored_records(engine, feed_id) == 0


def test_records_stored_for_a_feed_file_being_deleted_wait_and_are_refused(engine):
    feed_id = _feed_file(engine, "race4")
    outcome = _race(engine, _delete("feed_files", feed_id),
                    lambda conn: copy_rows(conn, "source_records", RECORD_COLUMNS, _records(feed_id)))
    assert len(outcome) == 1 and isinstance(outcome[0], ForeignKeyViolation)
    assert _stored_records(engine, feed_id) == 0
