"""The wall's figures from the database: the ticker names things by code, and stands as it was at any moment."""

from datetime import timedelta

from sqlalchemy import text

from accounts.actor import Actor
from tasks.overview import TICKER_LENGTH, ticker
from tasks.repository import NewTask, create_task
from tests.conftest import Clock


def test_the_ticker_gives_codes_and_stands_as_it_was_until_a_moment(work_engine):
    clock = Clock()
    clock.advance(days=-40)  # before anything the other tests add
    with work_engine.begin() as conn:
        grid_id, code, name = conn.execute(text("SELECT id, code, name FROM grids ORDER BY code OFFSET 700 "
                                                "LIMIT 1")).one()
        create_task(conn, Actor.system(), NewTask("home_visit", code, "走马灯之一"), clock())
        first = clock()
        clock.advance(hours=2)
        create_task(conn, Actor.system(), NewTask("escort", code, "走马灯之二"), clock())
    with work_engine.connect() as conn:
        now = ticker(conn, [grid_id])
        then = ticker(conn, [grid_id], until=first + timedelta(minutes=30))
        before = ticker(conn, [grid_id], until=first - timedelta(minutes=1))
        district = ticker(conn)
    assert [e["kind"] for e in now][:1] == ["escort"] and {e["kind"] for e in now} == {"home_visit", "escort"}
    assert {e["kind"] for e in then} == {"home_visit"} and before == []
    assert {e["action"] for e in now} <= {"create", "dispatch"} and "create" in {e["action"] for e in now}
    newest = now[0]
    assert newest["grid"] == name and newest["grid_code"] == code and newest["status"] in ("created", "dispatched")
    assert len(newest["at"]) == 5 and newest["time"].startswith(str(clock().year)), "HH:MM, and the full time"
    assert "走马灯" not in str(now), "no titles on the wall"
    assert 2 <= len(district) <= TICKER_LENGTH
