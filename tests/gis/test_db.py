"""The engine helpers: psycopg-direct statements for hot paths, custom plans for analytical ones."""

from __future__ import annotations

from sqlalchemy import text

from gis.db import _driver_form, custom_plans, run


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
