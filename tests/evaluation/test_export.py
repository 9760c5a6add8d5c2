"""Tasks by status on hand-made tasks, and the CSV and Excel files carrying exactly evaluate()'s figures."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from accounts.actor import Actor
from accounts.repository import load_actor
from evaluation.export import HEADER_ROW, SUPPRESSED_TEXT, Stamp, report_sheet, sheet_csv, sheet_xlsx, stats_csv
from evaluation.indicators import (
    COLUMNS,
    REPORT_COLUMNS,
    STATUS_COLUMNS,
    Period,
    areas,
    evaluate,
    report,
    tasks_by_status,
)
from tasks.repository import NewTask, create_task, transition

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2025, 4, 1, 9, 0, tzinfo=BEIJING)
PERIOD = Period.of_days(date(2025, 4, 1), date(2025, 4, 2))
MARK = "统计导出测试"
SYSTEM = Actor.system()
H = timedelta(hours=1)
# grid G on 1 April 2025, by status today: the figures every test below checks to the last digit
STATUSES_G = {"status_created": 1, "status_dispatched": 2, "status_accepted": 1, "status_declined": 1,
              "status_in_progress": 1, "status_handled": 1, "status_closed": 2, "status_cancelled": 1}
EXPECTED_G = {"tasks": 9, "cancelled": 1, "closed": 2, "closed_on_time": 2, "open_overdue": 7, "handled": 3,
              "reworked": 0, "extended": 0, "closure_rate": 0.2222, "on_time_rate": 0.2222, "rework_rate": 0.0,
              "extension_rate": 0.0, "median_handling_hours": 1.25, "p90_handling_hours": 1.45,
              "persons_red": 3, "persons_yellow": 7, "persons_blue": 0, "persons_green": 5}
PERSONS_G = {"red": 3, "yellow": 7, "green": 5}


def _walk(conn, task: dict, steps: list[tuple[str, dict, datetime]]) -> dict:
    for action, payload, at in steps:
        actor = SYSTEM if action in ("close", "cancel") else Actor(task["assignee_id"], task["assignee"], "worker")
        task = transition(conn, actor, task["id"], action, task["version"], payload, at)["task"]
    return task


def hand_made_tasks(engine) -> tuple[str, str, str]:
    """(community, grid G, grid G2): G holds the tasks of STATUSES_G and the persons of PERSONS_G, G2 one closed
    task; one more task in G lies after the period. Idempotent: every module of a run may ask for it."""
    with engine.connect() as conn:
        community = conn.execute(text(
            "SELECT left(code, 12) FROM grids WHERE code LIKE '440605124%' GROUP BY 1 HAVING count(*) >= 2 "
            "ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()
        grid, grid2 = conn.execute(text("SELECT code FROM grids WHERE code LIKE :c || '%' ORDER BY code DESC LIMIT 2"),
                                   {"c": community}).scalars().all()
        if conn.execute(text("SELECT count(*) FROM tasks WHERE title = :t"), {"t": MARK}).scalar_one():
            return community, grid, grid2

    def new(at: datetime, code: str = grid, dispatch: bool = True) -> dict:
        return create_task(conn, SYSTEM, NewTask("lead_verification", code, MARK, dispatch=dispatch), at)

    handle = [("accept", {}, DAY + 0.1 * H), ("start", {}, DAY + 0.2 * H),
              ("handle", {"result": "已核实"}, DAY + 0.5 * H)]
    with engine.begin() as conn:
        assert new(DAY, dispatch=False)["status"] == "created"
        assert new(DAY)["status"] == new(DAY)["status"] == "dispatched"
        _walk(conn, new(DAY), handle[:1])
        _walk(conn, new(DAY), [("decline", {"reason": "不在辖区"}, DAY + 0.1 * H)])
        _walk(conn, new(DAY), handle[:2])
        _walk(conn, new(DAY), handle)
        _walk(conn, new(DAY), handle + [("close", {}, DAY + H)])
        _walk(conn, new(DAY), handle + [("close", {}, DAY + 1.5 * H)])
        _walk(conn, new(DAY), [("cancel", {"reason": "重复"}, DAY + H)])
        _walk(conn, new(DAY + 25 * H, grid2), [("accept", {}, DAY + 26 * H), ("start", {}, DAY + 26 * H),
                                                ("handle", {"result": "已核实"}, DAY + 26 * H),
                                                ("close", {}, DAY + 27 * H)])
        new(DAY + 48 * H)  # 3 April: after the period
        grid_id = conn.execute(text("SELECT id FROM grids WHERE code = :g"), {"g": grid}).scalar_one()
        for colour, n in PERSONS_G.items():
            for i in range(n):
                conn.execute(text(
                    "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id) "
                    "VALUES (:k, '4406**********0000', '测*', :colour, '统计测试', 1.0, :grid)"),
                    {"k": f"stats-export-{colour}-{i}", "colour": colour, "grid": grid_id})
    return community, grid, grid2


@pytest.fixture(scope="module")
def made(work_engine) -> tuple[str, str, str]:
    return hand_made_tasks(work_engine)


@pytest.fixture(scope="module")
def actors(work_engine) -> dict[str, Actor]:
    with work_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT role, id FROM users WHERE username LIKE 'demo_%'")).all())
        return {role: load_actor(conn, user_id) for role, user_id in ids.items()}


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def as_the_reporter_sees(got: dict, expected: dict, hidden: object = None, form=lambda value: value) -> None:
    """``got`` is ``expected`` (each value written by ``form``) as a reporter reads it: every figure to the last
    digit, the 3 red persons hidden (``hidden``: 1 to 4), any other person count exact or hidden as a complement.
    Which counts are complements depends on the persons other test modules place in the district; the pattern
    itself is checked on a database of its own (tests/api/test_disclosure.py)."""
    for key, value in expected.items():
        if key == "persons_red":
            assert got[key] == hidden, "3 red persons: hidden"
        elif key.startswith("persons_") and value:
            assert got[key] in (form(value), hidden), key
        else:
            assert got[key] == form(value), key


def test_tasks_by_status_per_unit(work_engine, made, actors):
    community, grid, grid2 = made
    with work_engine.connect() as conn:
        grids = tasks_by_status(conn, actors["commander"], "grid", PERIOD, community)
        whole = tasks_by_status(conn, actors["reporter"], "community", PERIOD, community)
        evaluated = evaluate(conn, actors["commander"], "grid", PERIOD, NOW, community)
        later = tasks_by_status(conn, actors["commander"], "grid", Period.of_days(date(2025, 4, 3), date(2025, 4, 3)),
                                grid)
    by_code = {r["code"]: r for r in grids}
    assert {k: by_code[grid][k] for k in STATUS_COLUMNS} == STATUSES_G
    assert {k: by_code[grid2][k] for k in STATUS_COLUMNS} == {**dict.fromkeys(STATUS_COLUMNS, 0), "status_closed": 1}
    assert all(sum(r[k] for k in STATUS_COLUMNS) == 0 for code, r in by_code.items() if code not in (grid, grid2))
    assert [r["code"] for r in whole] == [community], "a community level row per community"
    assert {k: whole[0][k] for k in STATUS_COLUMNS} == {**STATUSES_G, "status_closed": 3}, \
        "the reporter sees status counts of 1 unsuppressed (they count work, not residents)"
    for row in evaluated:  # the statuses agree with the evaluation: closed, cancelled and the rest add up to tasks
        statuses = by_code[row["code"]]
        assert statuses["status_closed"] == row["closed"] and statuses["status_cancelled"] == row["cancelled"]
        assert sum(statuses[k] for k in STATUS_COLUMNS) - statuses["status_cancelled"] == row["tasks"]
    assert [sum(r[k] for k in STATUS_COLUMNS) for r in later] == [1], "3 April's task: only in its own period"


def test_evaluate_on_the_same_tasks_to_the_last_digit(work_engine, made, actors):
    _, grid, _ = made
    with work_engine.connect() as conn:
        commander = evaluate(conn, actors["commander"], "grid", PERIOD, NOW, grid)
        reporter = evaluate(conn, actors["reporter"], "grid", PERIOD, NOW, grid)
    assert {k: commander[0][k] for k in EXPECTED_G} == EXPECTED_G
    as_the_reporter_sees(reporter[0], EXPECTED_G)


def test_a_supervisor_sees_only_his_community(work_engine, made, actors):
    supervisor = actors["supervisor"]
    with work_engine.connect() as conn:
        rows = tasks_by_status(conn, supervisor, "grid", PERIOD)
        own = conn.execute(text("SELECT code FROM grids WHERE id = ANY(:ids) ORDER BY code"),
                           {"ids": sorted(supervisor.grid_ids)}).scalars().all()
        elsewhere = tasks_by_status(conn, supervisor, "grid", PERIOD, made[1])
        picker = areas(conn, supervisor)
        everything = areas(conn, actors["reporter"])
    assert [r["code"] for r in rows] == own and len(own) == 8
    assert elsewhere == [], "another community's grid is outside his scope"
    assert [(a["level"], a["code"]) for a in picker] == [("town", "440605011"), ("community", "440605011001")]
    assert sum(a["level"] == "town" for a in everything) == 7 and len(everything) > 200


def test_the_csv_carries_evaluate_to_the_last_digit_and_the_stamp(work_engine, made, actors):
    community = made[0]
    with work_engine.connect() as conn:
        rows = report(conn, actors["reporter"], "grid", PERIOD, NOW, community)
    stamp = Stamp(PERIOD.until, f"/reports/export.csv?level=grid&area={community}", NOW)
    lines = stats_csv(rows, stamp, REPORT_COLUMNS).removeprefix("\ufeff").splitlines()
    assert lines[0] == f"# 数据时间 2025-04-03T00:00:00+08:00; 查询 /reports/export.csv?level=grid&area={community}"
    read = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    assert list(read[0]) == list(REPORT_COLUMNS)
    assert read == [{k: "" if r[k] is None else str(r[k]) for k in REPORT_COLUMNS} for r in rows]
    g = next(r for r in read if r["code"] == made[1])
    as_the_reporter_sees(g, EXPECTED_G, hidden="", form=str)
    only_evaluation = stats_csv(rows, stamp).splitlines()[1]
    assert only_evaluation == ",".join(COLUMNS), "the API's columns by default"


def say(lang: str):
    from pages.strings import text
    return lambda key: text(f"reports.{key}", lang)


def cells_of_csv(body: str) -> list[list[str]]:
    """A page CSV's cells, row by row."""
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


def cells_of_xlsx(body: bytes) -> list[list[str]]:
    """A page workbook's cells, row by row, each written as the CSV writes it (None: empty)."""
    sheet = load_workbook(io.BytesIO(body)).worksheets[0]
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_files_agree_cell_for_cell_and_carry_evaluate(work_engine, made, actors, lang):
    community, grid, _ = made
    with work_engine.connect() as conn:
        rows = report(conn, actors["reporter"], "grid", PERIOD, NOW, community)
    query = f"/reports/?level=grid&area={community}&from=2025-04-01&to=2025-04-02"
    cells = report_sheet(rows, REPORT_COLUMNS, Stamp(PERIOD.until, query, NOW), "桂城", say(lang))
    from_csv, from_xlsx = cells_of_csv(sheet_csv(cells)), cells_of_xlsx(sheet_xlsx(cells))
    assert from_csv == from_xlsx, "the same cells in both files"
    assert from_csv[0][:2] == [say(lang)("as_of"), "2025-04-03T00:00:00+08:00"]
    assert from_csv[1][:2] == [say(lang)("query"), query] and from_csv[3][:2] == [say(lang)("scope"), "桂城"]
    head = from_csv[HEADER_ROW - 1]
    assert head[:3] == [say(lang)("col.level"), say(lang)("col.code"), say(lang)("col.name")]
    assert head[REPORT_COLUMNS.index("closure_rate")] == say(lang)("col.closure_rate") + say(lang)("col.percent")
    assert len(from_csv) == HEADER_ROW + len(rows)
    g = dict(zip(REPORT_COLUMNS, next(r for r in from_csv if r[1] == grid), strict=True))
    assert g["level"] == say(lang)("level.grid")
    assert g["closure_rate"] == "22.22" and g["rework_rate"] == "0" and g["median_handling_hours"] == "1.25"
    assert g["persons_red"] == SUPPRESSED_TEXT == "<5", "3 red persons, as the page shows them"
    assert {k: g[k] for k in STATUSES_G} == {k: str(v) for k, v in STATUSES_G.items()}
    # the workbook holds numbers, not text, for every figure shown
    sheet = load_workbook(io.BytesIO(sheet_xlsx(cells))).worksheets[0]
    row = next(r for r in sheet.iter_rows(min_row=HEADER_ROW + 1, values_only=True) if r[1] == grid)
    assert row[REPORT_COLUMNS.index("closure_rate")] == 22.22 and row[REPORT_COLUMNS.index("tasks")] == 9
