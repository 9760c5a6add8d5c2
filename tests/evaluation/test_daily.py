"""The daily trend, the 日报's figures, the scope's name and the unplaced row against the wall, on hand-made data."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import load_actor
from evaluation.daily import daily, days, trend
from evaluation.indicators import COLOURS, STATUS_COLUMNS, UNPLACED, Period, report_rows, scope_unit
from tasks.lifecycle import STATUSES
from tasks.overview import wall_summary
from tests.evaluation.test_export import BEIJING, NOW, PERIOD, hand_made_tasks

TURNED = datetime(2025, 4, 1, 10, 0, tzinfo=BEIJING)
OPEN = tuple(f"status_{s}" for s in STATUSES if s not in ("closed", "cancelled"))


@pytest.fixture(scope="module")
def actors(work_engine) -> dict[str, Actor]:
    with work_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT role, id FROM users WHERE username LIKE 'demo_%'")).all())
        return {role: load_actor(conn, user_id) for role, user_id in ids.items()}


@pytest.fixture(scope="module")
def made(work_engine) -> tuple[str, str, str]:
    """The hand-made tasks and persons, the 3 red persons of grid G turned red on 1 April (two of them twice: a
    person counts once a day), and one unplaced yellow person."""
    community, grid, grid2 = hand_made_tasks(work_engine)
    with work_engine.begin() as conn:
        if not conn.execute(text("SELECT count(*) FROM risk_code_history WHERE reason = '日报测试'")).scalar_one():
            for i, extra in ((0, 1), (1, 1), (2, 0)):
                for n in range(1 + extra):
                    conn.execute(text(
                        "INSERT INTO risk_code_history (person_key, previous_colour, colour, reason, changed_at) "
                        "VALUES (:k, :before, 'red', '日报测试', :at)"),
                        {"k": f"stats-export-red-{i}", "before": None if n == 0 else "green",
                         "at": TURNED + timedelta(minutes=n)})
            conn.execute(text(
                "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id, "
                "unplaced_reason) VALUES ('daily-unplaced-1', '4406**********0001', '测*', 'yellow', '日报测试', 1.0, "
                "NULL, '地址无法定位') ON CONFLICT DO NOTHING"))
    return community, grid, grid2


def test_the_trend_counts_each_day_of_the_range(work_engine, made, actors):
    community = made[0]
    with work_engine.connect() as conn:
        rows = trend(conn, actors["commander"], PERIOD, community)
        reporter = trend(conn, actors["reporter"], PERIOD, community)
        closed_on_time_2 = conn.execute(text(
            "SELECT count(*) FROM tasks WHERE title = '统计导出测试' AND closed_at <= due_at "
            "AND closed_at >= '2025-04-02T00:00+08:00' AND closed_at < '2025-04-03T00:00+08:00'")).scalar_one()
    assert [r["day"] for r in rows] == ["2025-04-01", "2025-04-02"] == [d.isoformat() for d in
                                                                        days(date(2025, 4, 1), date(2025, 4, 2))]
    first, second = rows
    assert (first["new_red"], first["new_yellow"], first["opened"], first["closed"], first["closed_on_time"],
            first["on_time_rate"]) == (3, 0, 10, 2, 2, 1.0), "3 persons turned red, each once"
    assert (second["new_red"], second["opened"], second["closed"], second["closed_on_time"]) == \
        (0, 1, 1, closed_on_time_2)
    assert reporter[0]["new_red"] is None, "3 persons: suppressed for the reporter"
    assert reporter[0]["opened"] == 10, "tasks count work: never suppressed"


def test_the_daily_report_of_a_community(work_engine, made, actors):
    community, grid, _ = made
    with work_engine.connect() as conn:
        grid_id = conn.execute(text("SELECT id FROM grids WHERE code = :g"), {"g": grid}).scalar_one()
        ids = conn.execute(text("SELECT id FROM grids WHERE code LIKE :c || '%'"), {"c": community}).scalars().all()
        community_id = conn.execute(text("SELECT id FROM communities WHERE code = :c"), {"c": community}).scalar_one()
        supervisor = Actor(10**6, "daily_supervisor", "supervisor", community_id=community_id, grid_ids=frozenset(ids))
        report = daily(conn, supervisor, date(2025, 4, 1), NOW)
    assert report.scope["code"] == community and report.level == "grid" and report.unplaced is None
    g = next(u for u in report.units if u["code"] == grid)
    assert (g["opened"], g["closed"], g["closed_on_time"], g["new_red"], g["persons_red"]) == (10, 2, 2, 3, 3)
    assert report.total["opened"] == sum(u["opened"] for u in report.units) >= 10
    assert [f["code"] for f in report.follow_ups] == [u["code"] for u in report.units]
    assert report.total["checks_done"] == 0 and report.total["follow_up_rate"] is None
    assert grid_id in supervisor.grid_ids


def test_the_reporters_daily_report_hides_small_counts(work_engine, made, actors):
    with work_engine.connect() as conn:
        report = daily(conn, actors["reporter"], date(2025, 4, 1), NOW)
        commander = daily(conn, actors["commander"], date(2025, 4, 1), NOW)
    town = next(u for u in report.units if u["code"] == "440605124")
    assert next(u for u in commander.units if u["code"] == "440605124")["new_red"] == 3
    assert town["new_red"] is None and report.total["new_red"] is None, "3 of 3: the town and its complement"
    assert town["opened"] >= 10 and report.unplaced is None and commander.unplaced is not None
    assert commander.total["persons_yellow"] == sum(u["persons_yellow"] for u in commander.units) + \
        commander.unplaced["persons_yellow"], "the unplaced yellow person is in the district's total"


def test_the_scope_is_named_for_the_reader(work_engine, actors):
    with work_engine.connect() as conn:
        supervisor = scope_unit(conn, actors["supervisor"])
        his_town = scope_unit(conn, actors["supervisor"], "440605011")
        district = scope_unit(conn, actors["commander"])
        town = scope_unit(conn, actors["commander"], "440605011")
    assert (supervisor["level"], supervisor["code"]) == ("community", "440605011001")
    assert his_town == supervisor, "picking his community's town still names his community"
    assert district == {"level": "district", "code": "440605", "name": "南海区"}
    assert town["level"] == "town" and town["code"] == "440605011"


def test_a_supervisors_rows_are_never_of_a_unit_above_his_community(work_engine, actors):
    with work_engine.connect() as conn:
        rows = report_rows(conn, actors["supervisor"], "district", PERIOD, NOW)
        town = report_rows(conn, actors["supervisor"], "town", PERIOD, NOW, "440605011")
    assert [(r["level"], r["code"], r["name"]) for r in rows] == [("community", "440605011001", "桂一社区居委会")]
    assert [r["code"] for r in town] == ["440605011001"]


def _totals(rows: list[dict]) -> dict[str, int]:
    figures = {c: sum(r[f"persons_{c}"] for r in rows) for c in COLOURS}
    return {**figures, "open": sum(r[s] for r in rows for s in OPEN), "overdue": sum(r["open_overdue"] for r in rows)}


def test_every_role_but_the_reporter_adds_up_to_the_wall(work_engine, made, actors):
    with work_engine.connect() as conn:
        # the shared work database holds other modules' tasks too, some made on the real clock, after NOW: the
        # report and the wall are compared at a moment after every task, over every day up to it
        latest = conn.execute(text("SELECT max(created_at) FROM tasks")).scalar_one()
        now = max(NOW, latest) + timedelta(minutes=1)
        everything = Period.of_days(date(2000, 1, 1), now.astimezone(BEIJING).date())
        town_ids = conn.execute(text("SELECT g.id FROM grids g JOIN communities c ON c.id = g.community_id "
                                     "JOIN towns t ON t.id = c.town_id WHERE t.code = '440605124'")).scalars().all()
        town_id = conn.execute(text("SELECT id FROM towns WHERE code = '440605124'")).scalar_one()
        town = Actor(10**6 + 1, "daily_town", "commander", grid_ids=frozenset(town_ids), town_id=town_id)
        unplaced = conn.execute(text("SELECT count(*) FROM persons WHERE grid_id IS NULL")).scalar_one()
        for actor, level in ((actors["commander"], "town"), (actors["admin"], "grid"), (actors["supervisor"], "grid"),
                             (town, "community")):
            rows = report_rows(conn, actor, level, everything, now)
            wall = wall_summary(conn, now, actor.grid_scope())["counters"]
            assert _totals(rows) == {k: wall[k] for k in (*COLOURS, "open", "overdue")}, actor.username
            assert (rows[-1]["level"] == UNPLACED) == (actor.grid_scope() is None), actor.username
        assert unplaced >= 1 and rows[0]["level"] == "community"
        reporter = report_rows(conn, actors["reporter"], "town", everything, now)
    assert all(r["level"] != UNPLACED for r in reporter), "the reporter's rows are the units' alone"
    assert all(c in reporter[0] for c in STATUS_COLUMNS)
