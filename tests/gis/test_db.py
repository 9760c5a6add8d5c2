"""The engine helpers: psycopg-direct statements for hot paths, custom plans for analytical ones, prepared
statements kept across reads."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis.db import _driver_form, changing, custom_plans, reading, roll_back, run
from gis.errors import NotFound


def test_named_parameters_become_psycopg_placeholders_and_the_rest_is_left_alone():
    statement = "SELECT x::int, :a, '{}', code LIKE :area || '%' FROM t WHERE y = ANY(:scope) AND z = :a"
    assert _driver_form(statement) == ("SELECT x::int, %(a)s, '{}', code LIKE %(area)s || '%%' FROM t "
                                       "WHERE y = ANY(%(scope)s) AND z = %(a)s")


def test_run_shares_the_transaction_of_the_sqlalchemy_connection(database_factory):
    engine = database_factory("nanhai_db_run")
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE scratch (id int, label text)"))
        conn.execute(text("INSERT INTO scratch VALUES (1, 'a%b')"))
        row = run(conn, "SELECT id, label, CAST(:n AS int) + 1 AS next FROM scratch WHERE label LIKE 'a%' AND id = :id",
                  {"id": 1, "n": 41}).fetchone()
        assert (row.id, row.label, row.next) == (1, "a%b", 42)
        conn.rollback()
        assert conn.execute(text("SELECT to_regclass('pg_temp.scratch')")).scalar() is None


def test_what_run_wrote_is_committed_by_the_connections_commit(database_factory):
    engine = database_factory("nanhai_db_commit")
    with engine.connect() as conn:
        run(conn, "CREATE TABLE kept (id int)", {})
        run(conn, "INSERT INTO kept VALUES (:id)", {"id": 7})
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM kept")).scalars().all() == [7]


def test_custom_plans_hold_inside_the_block_only(database_factory):
    engine = database_factory("nanhai_db_plans")
    with engine.connect() as conn:
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_generic_plan"
        with custom_plans(conn):
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_generic_plan"
        conn.rollback()
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_generic_plan"


PREPARED = ("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%scratch_marker%' "
            "AND statement NOT LIKE '%pg_prepared_statements%'")


def _prepared(conn) -> tuple[int, list[str]]:
    """(backend pid, this test's statements prepared on the connection)."""
    return (conn.execute(text("SELECT pg_backend_pid()")).scalar_one(),
            run(conn, PREPARED, {}).fetchall())


def test_run_prepares_on_the_first_run_others_on_the_sixth_and_a_string_of_several_never(database_factory):
    engine = database_factory("nanhai_db_prepare")
    with engine.connect() as conn:
        run(conn, "SELECT 1 AS scratch_marker WHERE :n > 0", {"n": 1}).fetchone()
        for n in range(5):
            conn.execute(text("SELECT 2 AS scratch_marker WHERE :n > 0"), {"n": n})
            conn.execute(text("SELECT 4 AS scratch_marker; SELECT 5 AS scratch_marker"))
        assert [r.statement for r in _prepared(conn)[1]] == ["SELECT 1 AS scratch_marker WHERE $1 > 0"]
        conn.execute(text("SELECT 2 AS scratch_marker WHERE :n > 0"), {"n": 5})
        assert sorted(r.statement for r in _prepared(conn)[1]) == ["SELECT 1 AS scratch_marker WHERE $1 > 0",
                                                                  "SELECT 2 AS scratch_marker WHERE $1 > 0"]
        conn.commit()


def test_reading_commits_so_the_prepared_statements_survive_even_when_the_block_raises(database_factory):
    engine = database_factory("nanhai_db_reading")
    engine.dispose()  # one pooled connection, reused by each block below
    with reading(engine) as conn:
        run(conn, "SELECT 2 AS scratch_marker WHERE :n > 0", {"n": 1}).fetchone()
        pid, before = _prepared(conn)
    with pytest.raises(LookupError), reading(engine) as conn:
        raise LookupError("a refusal, such as Dash's PreventUpdate")
    with reading(engine) as conn:
        assert _prepared(conn) == (pid, before) and len(before) == 1
    # what reading avoids: SQLAlchemy ends an unfinished transaction with ROLLBACK, and psycopg forgets them all
    with engine.connect() as conn:
        assert _prepared(conn)[0] == pid
    with engine.connect() as conn:
        assert _prepared(conn) == (pid, [])


def test_reading_refuses_writes_and_keeps_nothing(database_factory):
    engine = database_factory("nanhai_db_read_only")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE kept_out (id int)"))
    with pytest.raises(DBAPIError, match="read-only transaction"), reading(engine) as conn:
        conn.execute(text("INSERT INTO kept_out VALUES (1)"))
    with reading(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM kept_out")).scalar_one() == 0


def test_roll_back_undoes_the_transaction_and_keeps_the_prepared_statements(database_factory):
    engine = database_factory("nanhai_db_roll_back")
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE undone (id int)"))
    with pytest.raises(LookupError), engine.begin() as conn:
        run(conn, "INSERT INTO undone SELECT 1 AS scratch_marker WHERE :n > 0", {"n": 1})
        pid, before = _prepared(conn)
        roll_back(conn)
        raise LookupError("a refused request")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM undone")).scalar_one() == 0
        assert _prepared(conn) == (pid, before) and len(before) == 1
        conn.commit()


def test_changing_commits_and_a_refusal_undoes_everything_but_keeps_the_prepared_statements(database_factory):
    engine = database_factory("nanhai_db_changing")
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE changed (id int)"))
    insert = "INSERT INTO changed SELECT :n AS scratch_marker"
    with changing(engine) as conn:
        run(conn, insert, {"n": 1})
        pid, before = _prepared(conn)
    with pytest.raises(NotFound), changing(engine) as conn:
        run(conn, insert, {"n": 2})
        raise NotFound("a refused request")
    with pytest.raises(LookupError), changing(engine) as conn:
        assert _prepared(conn) == (pid, before) and len(before) == 1
        run(conn, insert, {"n": 3})
        raise LookupError("not a refusal: rolled back the usual way, the statements forgotten")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM changed")).scalars().all() == [1]
        assert _prepared(conn) == (pid, [])
        conn.commit()
