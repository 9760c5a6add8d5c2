"""A reporter cannot compute a hidden person count from the published ones (issue 20, finding 4).

The attack: ``/stats?area=`` took any code prefix, so two prefixes' difference, or a unit minus its shown
children, gave back counts shown as hidden. Here persons of every colour are spread over one town's grids with
many small counts; the reporter reads every level, every town and community as ``area``, JSON, CSV and the
page's Excel; from all he is shown and the sums that must hold, no hidden count may be pinned.
"""

from __future__ import annotations

import csv
import io
import random

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from app import create_app
from evaluation.export import SUPPRESSED_TEXT
from tests.api.client import ApiClient
from tests.browser import LiveServer
from tests.conftest import Clock
from tests.evaluation.test_disclosure import determined

COLOURS = ("red", "yellow", "blue", "green")
LEVELS = ("district", "town", "community", "grid")
DATES = "from=2025-01-01&to=2025-01-02"


@pytest.fixture(scope="module")
def spread(database_factory, work_engine):
    """Its own database: persons in the grids of 九江 (440605121), 0-12 per grid and colour, many of them 1-4."""
    engine = database_factory("nanhai_disclosure", copy_of=work_engine)
    rng = random.Random(20)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM persons"))
        grids = conn.execute(text("SELECT id FROM grids WHERE code LIKE '440605121%' ORDER BY code")).scalars().all()
        rows = [{"k": f"k{g}-{colour}-{n}", "c": colour, "g": g}
                for g in grids for colour in COLOURS
                for n in range(rng.choice((0, 0, 1, 2, 3, 4, 6, 12)))]
        conn.execute(text("INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, "
                          "method, grid_id) VALUES (:k, 'm', 'n', :c, 'test', 1, 'point', :g)"), rows)
    with LiveServer(create_app(engine, Clock()).server) as server:
        yield engine, server


def _tree(engine) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """Every unit's children and true counts per colour (the database's, as the reporter cannot see them)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.code AS district, tw.code AS town, c.code AS community, g.code AS grid, p.colour, "
            "count(p.person_key) AS n FROM grids g "
            "JOIN communities c ON c.id = g.community_id JOIN towns tw ON tw.id = c.town_id "
            "JOIN districts d ON d.code = tw.district_code LEFT JOIN persons p ON p.grid_id = g.id "
            "GROUP BY 1, 2, 3, 4, 5")).all()
    children: dict[str, list[str]] = {}
    counts: dict[str, dict[str, int]] = {colour: {} for colour in COLOURS}
    for r in rows:
        units = (r.district, r.town, r.community, r.grid)
        for parent, child in zip(units, units[1:], strict=False):
            if child not in children.setdefault(parent, []):
                children[parent].append(child)
        for colour in COLOURS:
            for unit in units:
                counts[colour][unit] = counts[colour].get(unit, 0) + (r.n if r.colour == colour else 0)
    return children, counts


def _published(server) -> tuple[dict[str, dict[str, int | None]], list]:
    """What the reporter reads: every level over the district, every level under each town and community, as
    JSON; and the CSV and the page's Excel of every level. Each cell (colour, code) → the value shown (None =
    hidden); a cell shown two ways must agree."""
    reporter = ApiClient(server.url, "demo_reporter")
    areas = [a["code"] for a in reporter.get("/stats?level=community&" + DATES).json()["rows"]
             if a["code"].startswith("440605121")] + ["440605121"]
    shown: dict[str, dict[str, int | None]] = {colour: {} for colour in COLOURS}
    clashes = []

    def note(colour: str, code: str, value: int | None) -> None:
        if code in shown[colour] and shown[colour][code] != value:
            clashes.append((colour, code, shown[colour][code], value))
        shown[colour][code] = value

    for level in LEVELS:
        for area in [None, *areas]:
            query = f"/stats?level={level}&{DATES}" + (f"&area={area}" if area else "")
            answer = reporter.get(query)
            assert answer.status_code == 200, (query, answer.text)
            for row in answer.json()["rows"]:
                for colour in COLOURS:
                    note(colour, row["code"], row[f"persons_{colour}"])
        exported = reporter.get(f"/stats?level={level}&{DATES}", headers={"Accept": "text/csv"}).text
        for row in csv.DictReader(io.StringIO(exported.split("\n", 1)[1])):
            for colour in COLOURS:
                cell = row[f"persons_{colour}"]
                note(colour, row["code"], int(cell) if cell else None)
        book = reporter.http.get(f"{server.url}/reports/export.xlsx?level={level}&{DATES}")
        assert book.status_code == 200, book.text[:200]
        sheet = load_workbook(io.BytesIO(book.content)).worksheets[0]
        header = [c.value for c in sheet[5]]
        for values in sheet.iter_rows(min_row=6, values_only=True):
            row = dict(zip(header, values, strict=True))
            for colour, name in zip(COLOURS, ("红", "黄", "蓝", "绿"), strict=True):
                cell = row[f"{name}码人数"]
                note(colour, row["代码"], None if cell == SUPPRESSED_TEXT else int(cell))
    return shown, clashes


def test_no_published_figure_lets_a_reporter_compute_a_hidden_one(spread):
    engine, server = spread
    children, counts = _tree(engine)
    shown, clashes = _published(server)
    assert clashes == []
    for colour in COLOURS:
        hidden = {code for code, value in shown[colour].items() if value is None}
        assert set(shown[colour]) == set(counts[colour]), "every unit was read"
        assert {u for u, n in counts[colour].items() if 0 < n < 5} <= hidden, colour
        assert all(shown[colour][u] == n for u, n in counts[colour].items() if u not in hidden), colour
        assert determined(children, counts[colour], hidden) == set(), colour
    # the spread does test something: primary suppression alone would have given counts back
    small = {u for u, n in counts["red"].items() if 0 < n < 5}
    assert determined(children, counts["red"], small)


def test_area_is_a_real_unit_and_no_row_is_above_it(spread):
    _, server = spread
    reporter = ApiClient(server.url, "demo_reporter")
    for prefix in ("4406051210", "44060512100", "4406051", "440605121999"):  # prefixes, or no such unit
        answer = reporter.get(f"/stats?level=grid&area={prefix}&{DATES}")
        assert answer.status_code == 422 and answer.json()["field"] == "area", (prefix, answer.text)
        assert prefix in answer.json()["message"]
    community = reporter.get(f"/stats?level=community&area=440605121&{DATES}").json()["rows"][0]["code"]
    rows = reporter.get(f"/stats?level=town&area={community}&{DATES}").json()["rows"]
    assert [(r["level"], r["code"]) for r in rows] == [("community", community)]
