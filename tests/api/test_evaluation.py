"""The evaluation indicators on a hand-made set of tasks, checked to the last digit, as JSON and as CSV."""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from accounts.actor import Actor
from tasks.repository import NewTask, create_task, transition

BEIJING = ZoneInfo("Asia/Shanghai")
DAY1 = datetime(2025, 3, 1, 9, 0, tzinfo=BEIJING)
SUPERVISOR = Actor.system()


def _walk(conn, task: dict, steps: list[tuple[str, dict, datetime]]) -> dict:
    for action, payload, at in steps:
        actor = SUPERVISOR if action in ("close", "rework", "cancel", "grant_extension") else \
            Actor(task["assignee_id"], task["assignee"], "worker")
        task = transition(conn, actor, task["id"], action, task["version"], payload, at)["task"]
    return task


def _handle(at: datetime) -> list[tuple[str, dict, datetime]]:
    return [("accept", {}, at), ("start", {}, at), ("handle", {"result": "已核实"}, at)]


@pytest.fixture(scope="module")
def hand_made(work_engine) -> str:
    """Seven tasks in one 九江 grid on 1–2 March 2025 (see the expected figures below)."""
    with work_engine.connect() as conn:
        grid = conn.execute(text("SELECT min(code) FROM grids WHERE code LIKE '440605121%'")).scalar_one()

    def new(kind: str, at: datetime) -> dict:
        return create_task(conn, SUPERVISOR, NewTask(kind, grid, f"评估 {kind}"), at)

    h = timedelta(hours=1)
    with work_engine.begin() as conn:
        _walk(conn, new("lead_verification", DAY1), _handle(DAY1 + 0.5 * h) + [("close", {}, DAY1 + h)])
        _walk(conn, new("lead_verification", DAY1), _handle(DAY1 + 1.5 * h) + [("close", {}, DAY1 + 3 * h)])
        new("lead_verification", DAY1)  # left open: overdue by the end of the period
        new("area_sweep", datetime(2025, 3, 2, 23, 30, tzinfo=BEIJING))  # open, due only on 3 March
        _walk(conn, new("area_sweep", DAY1), [("cancel", {"reason": "重复"}, DAY1 + h)])
        _walk(conn, new("lead_verification", DAY1), _handle(DAY1 + 0.5 * h) + [
            ("rework", {"reason": "补充"}, DAY1 + 0.75 * h), ("handle", {"result": "已补充"}, DAY1 + h),
            ("close", {}, DAY1 + 1.5 * h)])
        extended = new("lead_verification", DAY1)
        _walk(conn, extended, [
            ("request_extension", {"until": (DAY1 + 6 * h).isoformat(), "reason": "住户外出"}, DAY1 + 0.1 * h),
            ("grant_extension", {}, DAY1 + 0.2 * h)] + _handle(DAY1 + 3 * h) + [("close", {}, DAY1 + 4 * h)])
    return grid


EXPECTED = {"tasks": 6, "cancelled": 1, "closed": 4, "closed_on_time": 3, "open_overdue": 1, "handled": 4,
            "reworked": 1, "extended": 1, "closure_rate": 0.6667, "on_time_rate": 0.6, "rework_rate": 0.25,
            "extension_rate": 0.1667, "median_handling_hours": 2.25, "p90_handling_hours": 3.7}
QUERY = "level={level}&area={area}&from=2025-03-01&to=2025-03-02"


def test_the_indicators_to_the_last_digit(as_role, hand_made):
    rows = as_role("commander").get("/stats?" + QUERY.format(level="grid", area=hand_made)).json()["rows"]
    assert len(rows) == 1 and rows[0]["code"] == hand_made
    assert {k: rows[0][k] for k in EXPECTED} == EXPECTED


def test_the_same_figures_roll_up_and_export_as_csv(as_role, hand_made):
    community = as_role("reporter").get("/stats?" + QUERY.format(level="community", area=hand_made[:12])).json()
    assert [{k: r[k] for k in EXPECTED} for r in community["rows"]] == [EXPECTED]
    assert community["as_of"] == "2025-03-03T00:00:00+08:00"
    exported = as_role("reporter").get("/stats?" + QUERY.format(level="grid", area=hand_made),
                                       headers={"Accept": "text/csv"})
    assert exported.headers["Content-Type"].startswith("text/csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("# 数据时间 2025-03-03T00:00:00+08:00") and "area=" + hand_made in lines[0]
    row = next(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    assert {k: row[k] for k in EXPECTED} == {k: str(v) for k, v in EXPECTED.items()}


def test_a_period_without_tasks_has_no_rates(as_role, hand_made):
    rows = as_role("commander").get(f"/stats?level=grid&area={hand_made}&from=2024-01-01&to=2024-01-31").json()["rows"]
    assert rows[0]["tasks"] == 0 and rows[0]["closure_rate"] is None and rows[0]["median_handling_hours"] is None


def test_bad_stats_requests_are_explained(as_role):
    commander = as_role("commander")
    assert commander.get("/stats?level=street").json()["field"] == "level"
    assert commander.get("/stats?from=2025-13-01").json()["field"] == "from"
    assert commander.get("/stats?from=2025-03-05&to=2025-03-01").json()["field"] == "to"
