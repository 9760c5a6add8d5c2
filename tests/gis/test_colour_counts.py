"""The per-grid colour counts that statistics read are kept right by the database through every kind of write."""

import pytest
from sqlalchemy import text


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    return database_factory("nanhai_counts", copy_of=seeded_engine)


def _counts(conn) -> tuple[dict, dict]:
    kept = {(g, c): n for g, c, n in conn.execute(text("SELECT grid_id, colour, persons FROM grid_colour_counts"))}
    direct = {(g, c): n for g, c, n in conn.execute(text(
        "SELECT grid_id, colour, count(*) FROM persons WHERE grid_id IS NOT NULL GROUP BY grid_id, colour"))}
    return kept, direct


def test_inserts_updates_deletes_and_truncate_keep_the_counts(engine):
    steps = [
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id) "
        "SELECT md5(i::text) || md5((i + 1)::text), 'x', 'x', (ARRAY['red','yellow','blue','green'])[1 + i % 4], "
        "'r', 1, "
        "(SELECT min(id) FROM grids) + i % 7 FROM generate_series(1, 500) i",
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, unplaced_reason) "
        "SELECT md5(i::text) || md5((i + 2)::text), 'x', 'x', 'red', 'r', 0, 'no_location' "
        "FROM generate_series(1, 20) i",
        "UPDATE persons SET colour = 'red' WHERE colour = 'blue'",
        "UPDATE persons SET grid_id = grid_id + 100 WHERE colour = 'yellow' AND grid_id IS NOT NULL",
        "UPDATE persons SET reason = 'unchanged colour and grid'",
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id) "
        "SELECT md5(i::text) || md5((i + 1)::text), 'x', 'x', 'green', 'again', 1, (SELECT min(id) FROM grids) "
        "FROM generate_series(1, 300) i ON CONFLICT (person_key) DO UPDATE SET colour = EXCLUDED.colour, "
        "grid_id = EXCLUDED.grid_id",
        "DELETE FROM persons WHERE colour = 'red' AND grid_id IS NOT NULL AND person_key < '8'",
    ]
    for step in steps:
        with engine.begin() as conn:
            conn.execute(text(step))
        with engine.connect() as conn:
            kept, direct = _counts(conn)
        assert kept == direct, step
    assert sum(direct.values()) > 0 and 0 not in kept.values()
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE persons CASCADE"))
    with engine.connect() as conn:
        assert _counts(conn) == ({}, {})
