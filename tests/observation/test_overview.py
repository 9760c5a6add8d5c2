"""The desks' follow-up figures (observation.overview) against hand-computed values and against plain SQL: the
wall's four counters (district and a town's scope), a grid's follow-up table (day n of N, last temperature,
misses in a row, lost), the lost-to-follow-up list, per-grid figures for the statistics, plan events on the
timelines; and the scope of every row read (a worker his grid, a supervisor his community, a reporter none)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from accounts.actor import Actor
from evaluation.daily import daily
from evaluation.export import HEADER_ROW, SUPPRESSED_TEXT, Stamp, daily_blocks, report_sheet
from evaluation.indicators import REPORT_COLUMNS, UNPLACED, Period, report_rows
from gis.errors import NotFound, PermissionDenied
from observation.overview import (
    grid_follow_up_counts,
    grid_follow_ups,
    grid_plan_events,
    lost_to_follow_up,
    person_plan_events,
    wall_counters,
    wall_stamp,
)
from tasks.overview import BEIJING
from tests.persons import flag_person

GRID_A = "440605011001001"  # demo_worker's grid
GRID_B = "440605011001002"  # the same community
GRID_C = "440605011004001"  # another community
NOW = datetime(2026, 12, 3, 10, 30, tzinfo=BEIJING)
LOST = timedelta(hours=24)
FEVER = 37.3


def bj(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BEIJING)


def add_plan(conn, key: str, grid: str, starts: datetime, days: int = 14, closed: datetime | None = None,
             checks: tuple = ()) -> int:
    """A plan of ``key`` in ``grid`` with its checks: (due, status, reported_at, temperature)."""
    plan_id = conn.execute(text(
        "INSERT INTO observation_plans (person_key, grid_id, rule_id, starts_at, ends_at, check_minutes, status, "
        "closed_at, close_reason, token_nonce) SELECT :k, id, 'yellow-key-area', :s, :e, ARRAY[480, 1200], "
        ":status, :closed, :why, :nonce FROM grids WHERE code = :g RETURNING id"),
        {"k": key, "nonce": key[-32:], "g": grid, "s": starts, "e": starts + timedelta(days=days),
         "status": "closed" if closed else "active", "closed": closed, "why": "override" if closed else None}
    ).scalar_one()
    for due, status, reported, temperature in checks:
        conn.execute(text(
            "INSERT INTO observation_checks (plan_id, due_at, status, reported_at, temperature, symptoms, channel, "
            "missed_at) VALUES (:p, :due, :st, :rep, :t, :sym, :ch, :missed)"),
            {"p": plan_id, "due": due, "st": status, "rep": reported, "t": temperature,
             "sym": ["none"] if status == "done" else None, "ch": "worker" if status == "done" else None,
             "missed": due + timedelta(hours=2) if status == "missed" else None})
    conn.execute(text("INSERT INTO observation_events (plan_id, person_key, kind, at, detail) "
                      "VALUES (:p, :k, 'created', :s, '居家观察 14 天 / home observation, 14 days')"),
                 {"p": plan_id, "k": key, "s": starts})
    return plan_id


def build(engine: Engine) -> dict[str, int]:
    """Seven plans around NOW (2026-12-03 10:30 Beijing); see each line for what it is there for."""
    keys = {}
    for n, grid in enumerate((GRID_A, GRID_A, GRID_B, GRID_C, GRID_C, GRID_A, GRID_B), start=1):
        keys[n] = flag_person(engine, f"obs-overview-{n}", grid, colour="yellow", name=f"观*{n}")
    with engine.begin() as conn:
        return {
            # lost: last report 12-02 07:50, then two misses in a row; day 6 of 14
            "p1": add_plan(conn, keys[1], GRID_A, bj(28, 9, month=11), checks=(
                (bj(2, 8), "done", bj(2, 7, 50), 36.5), (bj(2, 20), "missed", None, None),
                (bj(3, 8), "missed", None, None), (bj(3, 20), "due", None, None))),
            # a fever this morning, a check due at 11:00 (within the hour)
            "p2": add_plan(conn, keys[2], GRID_A, bj(1, 12), checks=(
                (bj(3, 8), "done", bj(3, 8, 10), 38.1), (bj(3, 11), "due", None, None),
                (bj(3, 20), "due", None, None))),
            # started this morning: silent 1.5 h only; a check due at 11:20
            "p3": add_plan(conn, keys[3], GRID_B, bj(3, 9), checks=((bj(3, 11, 20), "due", None, None),)),
            # closed on 12-01: no longer in observation
            "p4": add_plan(conn, keys[4], GRID_C, bj(20, 8, month=11), closed=bj(1, 9), checks=(
                (bj(30, 8, month=11), "done", bj(30, 8, month=11), 36.4),)),
            # reported last night, missed this morning
            "p5": add_plan(conn, keys[5], GRID_C, bj(30, 8, month=11), checks=(
                (bj(2, 8), "done", bj(2, 8, 1), 36.6), (bj(2, 20), "done", bj(2, 20, 5), 37.0),
                (bj(3, 8), "missed", None, None))),
            # starts tomorrow
            "p6": add_plan(conn, keys[6], GRID_A, bj(4, 9), checks=((bj(4, 20), "due", None, None),)),
            # a fever yesterday, normal this morning (reported early, inside the window)
            "p7": add_plan(conn, keys[7], GRID_B, bj(1, 9), checks=(
                (bj(2, 20), "done", bj(2, 20, 10), 38.5), (bj(3, 8), "done", bj(3, 7, 30), 36.8))),
        }


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    engine = database_factory("nanhai_obs_overview", copy_of=seeded_engine)
    engine.plans = build(engine)
    return engine


def grid_ids(engine, prefix: str) -> frozenset[int]:
    with engine.connect() as conn:
        return frozenset(conn.execute(text("SELECT id FROM grids WHERE code LIKE :p || '%'"),
                                      {"p": prefix}).scalars())


@pytest.fixture(scope="module")
def actors(engine) -> dict[str, Actor]:
    community = grid_ids(engine, GRID_A[:12])
    town = grid_ids(engine, GRID_A[:9])
    return {"worker": Actor(901, "w", "worker", community_id=1, grid_ids=grid_ids(engine, GRID_A)),
            "supervisor": Actor(902, "s", "supervisor", community_id=1, grid_ids=community),
            "commander": Actor(903, "c", "commander"),
            "town": Actor(904, "t", "commander", grid_ids=town, town_id=1),
            "reporter": Actor(905, "r", "reporter")}


def direct(conn, now: datetime, scope: list[int] | None = None) -> dict[str, int]:
    """The four counters written plainly, one question each, from the rows in Python."""
    plans = {r.id: r for r in conn.execute(text("SELECT * FROM observation_plans"))
             if scope is None or r.grid_id in scope}

    def in_force(p) -> bool:
        return p.starts_at <= now < p.ends_at and (p.closed_at is None or p.closed_at > now)

    checks = [c for c in conn.execute(text("SELECT * FROM observation_checks")) if c.plan_id in plans]
    today = now.astimezone(BEIJING).date()
    return {"observed": sum(1 for p in plans.values() if in_force(p)),
            "checks_due_soon": sum(1 for c in checks if c.status == "due" and now <= c.due_at < now + timedelta(hours=1)
                                   and in_force(plans[c.plan_id])),
            "checks_missed_today": sum(1 for c in checks if c.status == "missed"
                                       and c.due_at.astimezone(BEIJING).date() == today),
            "fevers_today": len({c.plan_id for c in checks if c.reported_at is not None and c.reported_at <= now
                                 and c.reported_at.astimezone(BEIJING).date() == today
                                 and c.temperature is not None and float(c.temperature) >= FEVER})}


def test_the_wall_counters_are_the_hand_computed_ones_and_equal_plain_sql(engine, actors):
    with engine.connect() as conn:
        assert wall_counters(conn, NOW, fever_at=FEVER) == {
            "observed": 5, "checks_due_soon": 2, "checks_missed_today": 2, "fevers_today": 1}
        grid_a = sorted(grid_ids(engine, GRID_A))
        assert wall_counters(conn, NOW, grid_a, fever_at=FEVER) == {
            "observed": 2, "checks_due_soon": 1, "checks_missed_today": 1, "fevers_today": 1}
        town = sorted(actors["town"].grid_ids)
        for moment in (NOW, NOW + timedelta(hours=9, minutes=45), bj(4, 0, 5), bj(29, 7, month=11)):
            assert wall_counters(conn, moment, fever_at=FEVER) == direct(conn, moment)
            assert wall_counters(conn, moment, town, fever_at=FEVER) == direct(conn, moment, town)


def test_the_wall_stamp_changes_with_an_event_and_with_the_hour(engine):
    with engine.connect() as conn:
        first = wall_stamp(conn, NOW)
        assert wall_stamp(conn, NOW + timedelta(minutes=1)) == first  # nothing entered or left the hour
        assert wall_stamp(conn, bj(3, 11, 5)) != first  # the 11:00 check left the hour
        conn.execute(text("INSERT INTO observation_events (plan_id, person_key, kind, at) "
                          "SELECT id, person_key, 'check', :at FROM observation_plans WHERE id = :p"),
                     {"p": engine.plans["p3"], "at": NOW})
        assert wall_stamp(conn, NOW) != first
        conn.rollback()


def test_a_grids_follow_up_table(engine, actors):
    with engine.connect() as conn:
        rows = grid_follow_ups(conn, actors["worker"], GRID_A, NOW, LOST, FEVER)
    assert [r["plan_id"] for r in rows] == [engine.plans["p1"], engine.plans["p2"]]  # the lost one first
    lost, fever = rows
    assert (lost["day"], lost["days"], lost["missed"], lost["missed_in_a_row"], lost["lost"]) == (6, 14, 2, 2, True)
    assert lost["last_temperature"] == 36.5 and lost["name_masked"] == "观*1"
    assert datetime.fromisoformat(lost["last_report_at"]) == bj(2, 7, 50)
    assert datetime.fromisoformat(lost["next_due_at"]) == bj(3, 20)
    assert (fever["day"], fever["last_temperature"], fever["fever"], fever["lost"]) == (3, 38.1, True, False)
    assert fever["missed"] == 0 and datetime.fromisoformat(fever["next_due_at"]) == bj(3, 11)
    assert "id_number" not in lost and all("phone" not in k for k in lost)


def test_the_grid_table_is_scoped(engine, actors):
    with engine.connect() as conn:
        assert len(grid_follow_ups(conn, actors["supervisor"], GRID_B, NOW, LOST, FEVER)) == 2
        with pytest.raises(NotFound):
            grid_follow_ups(conn, actors["worker"], GRID_B, NOW, LOST, FEVER)
        with pytest.raises(NotFound):
            grid_follow_ups(conn, actors["supervisor"], GRID_C, NOW, LOST, FEVER)
        with pytest.raises(PermissionDenied):
            grid_follow_ups(conn, actors["reporter"], GRID_A, NOW, LOST, FEVER)
        assert len(grid_follow_ups(conn, actors["commander"], GRID_C, NOW, LOST, FEVER)) == 1


def test_the_lost_to_follow_up_list(engine, actors):
    with engine.connect() as conn:
        shown, total = lost_to_follow_up(conn, actors["commander"], NOW, LOST, FEVER)
        assert total == 1 and [r["plan_id"] for r in shown] == [engine.plans["p1"]]
        assert shown[0]["silent_hours"] == 26.7 and shown[0]["grid_code"] == GRID_A
        # at 08:30 the next day, the one who missed this morning (last report 12-02 20:05), the one who
        # reported at 07:30 and the fever of 08:10 are lost too (not the one who started at 09:00: 23.5 h);
        # longest silent first
        later = NOW + timedelta(hours=22)
        shown, total = lost_to_follow_up(conn, actors["commander"], later, LOST, FEVER)
        assert total == 4 and [r["plan_id"] for r in shown] == [engine.plans[p] for p in ("p1", "p5", "p7", "p2")]
        assert lost_to_follow_up(conn, actors["supervisor"], later, LOST, FEVER)[1] == 3
        assert lost_to_follow_up(conn, actors["worker"], later, LOST, FEVER)[1] == 2
        shown, total = lost_to_follow_up(conn, actors["commander"], later, LOST, FEVER, limit=1)
        assert total == 4 and len(shown) == 1
        with pytest.raises(PermissionDenied):
            lost_to_follow_up(conn, actors["reporter"], NOW, LOST, FEVER)


def test_per_grid_figures_for_the_statistics(engine):
    with engine.connect() as conn:
        ids = {code: next(iter(grid_ids(engine, code))) for code in (GRID_A, GRID_B, GRID_C)}
        counts = grid_follow_up_counts(conn, bj(2, 0), bj(4, 0), NOW, lost_after=LOST)
        assert counts == {
            ids[GRID_A]: {"checks_done": 2, "checks_missed": 2, "observed": 2, "lost": 1},
            ids[GRID_B]: {"checks_done": 2, "checks_missed": 0, "observed": 1, "lost": 0},
            ids[GRID_C]: {"checks_done": 2, "checks_missed": 1, "observed": 1, "lost": 0}}
        scoped = grid_follow_up_counts(conn, bj(2, 0), bj(4, 0), NOW, [ids[GRID_B]], lost_after=LOST)
        assert list(scoped) == [ids[GRID_B]]
        # plain SQL: done / missed among the checks due in the period, by grid
        plain = dict(conn.execute(text(
            "SELECT p.grid_id, count(*) FILTER (WHERE c.status = 'done') FROM observation_checks c "
            "JOIN observation_plans p ON p.id = c.plan_id WHERE c.due_at >= :a AND c.due_at < :b "
            "AND c.status <> 'due' GROUP BY 1"), {"a": bj(2, 0), "b": NOW}).all())
        assert {g: c["checks_done"] for g, c in counts.items()} == plain


def test_plan_events_on_the_timelines_are_scoped(engine, actors):
    with engine.connect() as conn:
        events = grid_plan_events(conn, actors["worker"], GRID_A)
        assert {e["plan_id"] for e in events} == {engine.plans[p] for p in ("p1", "p2", "p6")}
        assert all(e["kind"] == "created" and e["plan"] for e in events)
        assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
        key = "obs-overview-5"
        assert [e["plan_id"] for e in person_plan_events(conn, actors["commander"], key)] == [engine.plans["p5"]]
        assert person_plan_events(conn, actors["supervisor"], key) == []  # another community's plan
        with pytest.raises(NotFound):
            grid_plan_events(conn, actors["worker"], GRID_C)
        with pytest.raises(PermissionDenied):
            person_plan_events(conn, actors["reporter"], key)


def test_the_statistics_give_the_completion_rate_and_the_lost_per_unit_suppressed_for_the_reporter(engine, actors):
    period = Period.of_days(date(2026, 12, 2), date(2026, 12, 3))
    with engine.connect() as conn:
        grids = {r["code"]: r for r in report_rows(conn, actors["commander"], "grid", period, NOW, GRID_A[:12])}
        district = report_rows(conn, actors["commander"], "district", period, NOW)
        reporter = {r["code"]: r for r in report_rows(conn, actors["reporter"], "community", period, NOW)}
        supervisor = report_rows(conn, actors["supervisor"], "community", period, NOW)
        day = daily(conn, actors["commander"], date(2026, 12, 3), NOW)
    a = grids[GRID_A]
    assert (a["follow_up_persons"], a["checks_done"], a["checks_missed"], a["follow_up_rate"],
            a["lost_to_follow_up"]) == (2, 2, 2, 0.5, 1)
    assert (grids[GRID_B]["checks_done"], grids[GRID_B]["follow_up_rate"], grids[GRID_B]["lost_to_follow_up"]) == \
        (2, 1.0, 0)
    whole = district[0]
    assert (whole["follow_up_persons"], whole["checks_done"], whole["checks_missed"], whole["lost_to_follow_up"]) \
        == (4, 6, 3, 1) and whole["follow_up_rate"] == round(6 / 9, 4)
    assert district[-1]["level"] == UNPLACED and district[-1]["checks_done"] == 0
    assert supervisor[0]["follow_up_persons"] == 3, "a supervisor reads his own figures in full"
    # the reporter: 3 persons followed and 1 lost in the community are hidden, with their checks and rate
    mine = reporter[GRID_A[:12]]
    assert all(mine[c] is None for c in ("follow_up_persons", "checks_done", "checks_missed", "follow_up_rate",
                                         "lost_to_follow_up"))
    quiet = next(code for code in reporter if code not in (GRID_A[:12], GRID_C[:12]))
    assert reporter[quiet]["follow_up_persons"] == 0 and reporter[quiet]["lost_to_follow_up"] == 0, "a 0 is shown"
    cells = report_sheet(list(reporter.values()), REPORT_COLUMNS, Stamp(NOW, "/reports/?x"), "南海区", lambda k: k)
    row = next(r for r in cells if r[1] == GRID_A[:12])
    assert row[REPORT_COLUMNS.index("follow_up_persons")] == SUPPRESSED_TEXT
    assert row[REPORT_COLUMNS.index("lost_to_follow_up")] == SUPPRESSED_TEXT
    assert cells[HEADER_ROW - 1][REPORT_COLUMNS.index("follow_up_rate")] == "col.follow_up_ratecol.percent"
    shown = report_sheet(list(grids.values()), REPORT_COLUMNS, Stamp(NOW, "/reports/?x"), "桂城", lambda k: k)
    assert next(r for r in shown if r[1] == GRID_A)[REPORT_COLUMNS.index("follow_up_rate")] == 50
    # the 日报 of 12-03: the checks due that day by 10:30 (two done, two missed) and the lost at 10:30
    assert (day.total["checks_done"], day.total["checks_missed"], day.total["follow_up_rate"],
            day.total["lost_to_follow_up"]) == (2, 2, 0.5, 1)
    _, _, blocks = daily_blocks(day, Stamp(NOW, "/reports/daily.xlsx"), lambda k: k)
    follow = blocks[-1]
    assert follow.heading == "daily.follow_ups" and follow.note is None
    assert follow.rows[-1][2:] == [4, 2, 2, 50, 1], "the total: persons, done, missed, rate in %, lost"


def test_the_persons_card_shows_his_plan_events_in_scope(engine, actors):
    import json

    import plotly.utils

    from matching.lookup import person_card
    from matching.person_repository import persons_in_scope
    from pages.people import person_card as card_page

    key = "obs-overview-5"
    with engine.connect() as conn:
        person = persons_in_scope(conn, actors["commander"], [key])[0]
        card = person_card(conn, actors["commander"], person, NOW)
        town = person_card(conn, actors["supervisor"], person, NOW)  # a plan of another community: left out
    plan = [e for e in card["timeline"] if e["kind"] == "plan"]
    assert [(e["event"], datetime.fromisoformat(e["at"])) for e in plan] == [("created", bj(30, 8, month=11))]
    assert not [e for e in town["timeline"] if e["kind"] == "plan"]
    for lang, said in (("zh", "建立居家观察"), ("en", "Observation plan created")):
        shown = json.dumps(card_page(card, lang, False), cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
        assert said in shown and "nh-people-at-plan" in shown
