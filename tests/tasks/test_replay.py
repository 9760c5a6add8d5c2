"""After-action replay: the wall at past moments, rebuilt from the code history and the task events, written
here through the real match store and task lifecycle."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import load_actor
from matching.repository import store_match
from tasks.overview import BEIJING, wall_summary
from tasks.replay import DAYS, DayCache, day_bounds, wall_summary_at
from tasks.repository import NewTask, create_task, transition

DAY = datetime(2026, 11, 20, tzinfo=BEIJING)  # the day replayed (Beijing midnight)
GRID_A, GRID_B = "440605011001003", "440605011001004"


def at(hours: float, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hours)


def _match(conn, persons: dict[str, tuple[str, str]], when: datetime) -> None:
    """One match run storing ``persons`` (key → (colour, grid code)): persons, code history and flags."""
    grids = dict(conn.execute(text("SELECT code, id FROM grids WHERE code = ANY(:c)"),
                              {"c": [g for _, g in persons.values()]}).all())
    rows = [{"person_key": key, "id_masked": "440605********0000", "name_masked": "测*", "phone_masked": None,
             "colour": colour, "reason": f"{colour} / {colour}", "rule_id": None if colour == "green" else "test",
             "sources": "测试", "set_at": pd.Timestamp(when), "expires_at": pd.NaT, "method": "point",
             "confidence": 1.0, "grid_id": grids[grid], "unplaced_reason": None, "record_feed_file_id": np.nan,
             "record_row_number": np.nan, "provisional": False, "explanation": None, "lon": 113.1, "lat": 23.0}
            for key, (colour, grid) in persons.items()]
    frame = pd.DataFrame(rows)
    frame["set_at"] = pd.to_datetime(frame["set_at"], utc=True)
    frame["expires_at"] = pd.to_datetime(frame["expires_at"], utc=True)
    store_match(conn, [frame], pd.Timestamp(when))


def _act(conn, task: dict, action: str, when: datetime, **payload) -> dict:
    actor = load_actor(conn, task["assignee_id"]) if action in ("accept", "start", "handle", "request_extension") \
        else Actor.system()
    return transition(conn, actor, task["id"], action, task["version"], payload, when)["task"]


@pytest.fixture(scope="module")
def history(database_factory, seeded_engine):
    """A copy of the reference district with two days of codes and work, written as the platform writes them."""
    engine = database_factory("nanhai_replay", copy_of=seeded_engine)
    k = {name: name * 64 for name in "abcde"}
    everyone = {k["a"]: ("red", GRID_A), k["b"]: ("yellow", GRID_A), k["c"]: ("green", GRID_B),
                k["d"]: ("blue", GRID_B)}
    with engine.begin() as conn:  # one match per transaction, as the pipeline runs them
        assert conn.execute(text("SELECT count(*) FROM tasks")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM persons")).scalar_one() == 0
        _match(conn, everyone, at(12, day=-1))
    with engine.begin() as conn:
        # the task open when the day begins, already late: a lead (2 h) created at 20:00 the day before
        late = create_task(conn, Actor.system(), NewTask("lead_verification", GRID_A, "昨晚线索"), at(-4))
        # created at 8:00 with a 2-hour limit, extended at 9:30 to 14:00, closed on time at 13:00
        home = create_task(conn, Actor.system(), NewTask("lead_verification", GRID_B, "入户"), at(8))
        home = _act(conn, home, "accept", at(8.5))
        home = _act(conn, home, "start", at(8.6))
    with engine.begin() as conn:
        everyone.update({k["a"]: ("yellow", GRID_A), k["c"]: ("red", GRID_B), k["e"]: ("red", GRID_B)})
        _match(conn, everyone, at(9))
    with engine.begin() as conn:
        home = _act(conn, home, "request_extension", at(9), until=at(14).isoformat(), reason="不在家")
        late = _act(conn, late, "accept", at(9.5))
        home = _act(conn, home, "grant_extension", at(9.5))
        late = _act(conn, late, "start", at(9.6))
        late = _act(conn, late, "handle", at(9.8), result="已核实")
        _act(conn, late, "close", at(10))
        sweep = create_task(conn, Actor.system(), NewTask("lead_verification", GRID_B, "撤销"), at(11))
        _act(conn, sweep, "cancel", at(12), reason="重复")
        home = _act(conn, home, "handle", at(12.5), result="已入户", temperature=36.5)
        _act(conn, home, "close", at(13))
    with engine.begin() as conn:
        everyone.update({k["b"]: ("green", GRID_A), k["e"]: ("yellow", GRID_B)})
        _match(conn, everyone, at(15))
    DAYS.clear()
    yield engine
    DAYS.clear()


def _at(engine, moment: datetime) -> dict:
    with engine.connect() as conn:
        return wall_summary_at(conn, moment)


def test_the_day_begins_as_the_night_before_left_it(history):
    summary = _at(history, at(0.5))
    assert {c: summary["counters"][c] for c in ("red", "yellow", "blue", "green")} == \
        {"red": 1, "yellow": 1, "blue": 1, "green": 1}
    assert summary["counters"]["open"] == 1 and summary["counters"]["overdue"] == 1
    assert summary["counters"]["closed_today"] == 0 and summary["counters"]["on_time_rate"] == 0.0
    assert summary["grids"] == {GRID_A: [1, 1, 1, 1]}
    assert [line["action"] for line in summary["ticker"]][:2] == ["dispatch", "create"]
    assert summary["as_of"] == at(0.5).isoformat() and summary["feed_at"] is None and summary["feed_stale"]


def test_a_code_change_shows_from_its_minute_and_the_extension_moves_the_limit(history):
    before, on, extended = _at(history, at(8.99)), _at(history, at(9)), _at(history, at(11))
    assert before["counters"]["red"] == 1 and before["grids"][GRID_B] == [0, 0, 1, 0]
    assert on["counters"] == {**on["counters"], "red": 2, "yellow": 2, "green": 0, "blue": 1}
    assert on["grids"][GRID_A][:2] == [0, 2] and on["grids"][GRID_B][:2] == [2, 0]
    # at 10:30 the home visit is past its first limit (10:00) but the extension (granted at 9:30) holds
    assert _at(history, at(10.5))["grids"][GRID_B] == [2, 0, 1, 0]
    assert extended["counters"]["closed_today"] == 1 and extended["counters"]["on_time_rate"] == 0.0
    assert extended["counters"]["open"] == 2  # the home visit, and the sweep created at 11:00


def test_the_evening_after_all_the_work(history):
    evening = _at(history, at(16))
    assert evening["counters"]["open"] == 0 and evening["counters"]["overdue"] == 0
    assert evening["counters"]["closed_today"] == 2 and evening["counters"]["on_time_rate"] == 0.5
    assert {c: evening["counters"][c] for c in ("red", "yellow", "blue", "green")} == \
        {"red": 1, "yellow": 2, "blue": 1, "green": 1}
    assert evening["grids"] == {GRID_A: [0, 1, 0, 0], GRID_B: [1, 1, 0, 0]}
    assert [(e["action"], e["at"]) for e in evening["ticker"][:3]] == \
        [("close", "13:00"), ("handle", "12:30"), ("cancel", "12:00")]


def test_now_it_answers_what_the_live_wall_answers(history):
    with history.connect() as conn:
        ids = conn.execute(text("SELECT id FROM grids WHERE code = ANY(:c)"), {"c": [GRID_B]}).scalars().all()
        for moment in (at(16), at(23.99)):
            assert wall_summary_at(conn, moment) == wall_summary(conn, moment)
            assert wall_summary_at(conn, moment, list(ids)) == wall_summary(conn, moment, list(ids))


def test_a_day_is_loaded_once_and_again_when_its_rows_grow(history):
    cache = DayCache(size=2)
    with history.connect() as conn:
        first = cache.day(conn, at(10), None)
        assert cache.day(conn, at(17), None) is first
        assert first.start == day_bounds(at(10))[0]
    with history.begin() as conn:  # a back-dated task of that day arrives
        create_task(conn, Actor.system(), NewTask("area_sweep", GRID_A, "补录"), at(20))
    with history.connect() as conn:
        again = cache.day(conn, at(21), None)
        assert again is not first and again.summary(at(21))["counters"]["open"] == 1
        cache.day(conn, at(10, day=-1), None)
        cache.day(conn, at(10, day=-2), None)
        assert cache.day(conn, at(21), None) is not again, "the least recently used day left the cache"
