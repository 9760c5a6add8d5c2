"""Boundary changes: a constructed change of one community of the reference district, previewed to the exact
number, applied in one transaction (grids, H3 cells, persons, flags, counts, tasks and their events, assignments,
audit), and the refusals: a file whose check fails, a preview gone stale.

The scenario (:func:`build_scenario`, also used by the page's and the CLI's tests): community 440605011001's
eight grids are exported to a GeoPackage, then the border between 001 and 002 moves (a strip of 002 along 001
goes to 001), grid 008 is dropped, its western part becoming the new grid 009 and the rest going to 006. Persons
and open tasks are placed where each rule of :mod:`grids.changes` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, text

from accounts.actor import Actor
from accounts.repository import load_actor
from gis.crs import area_m2
from gis.errors import Conflict, ImportRejected, PermissionDenied
from grids import repository
from grids.changes import CHANGE_REASON, apply_change, preview_change
from grids.coverage import grid_cells
from grids.importing import read_grid_file
from tasks.repository import NewTask, create_task, get_task, transition

COMMUNITY = "440605011001"
G = {n: f"{COMMUNITY}{n:03d}" for n in range(1, 10)}
NEW = G[9]
OTHER = "440605011004001"  # a grid of another community: nothing there may change
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
RENAMED = "五号网格（新名）"


@dataclass
class Scenario:
    """The stored district with persons and tasks placed for the change, and the files that make it."""

    file: Path  # the change
    unchanged_file: Path  # the community as stored
    expected_successor: str  # who takes grid 008's area (the larger part)
    persons: dict[str, str]  # name → person_key
    tasks: dict[str, int]  # name → task id
    points: dict[str, tuple[float, float]]


def community_frame(engine: Engine, community: str = COMMUNITY) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        grids = repository.load_grids(conn)
    return grids[grids["community_code"] == community][["code", "name", "geometry"]].reset_index(drop=True)


def changed_frame(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict[str, shapely.Geometry]]:
    """The change: 001 takes the strip of 002 within ~80 m of it; 008 splits into a new 009 (west) and 006; 005
    gets a new name."""
    geoms = dict(zip(frame["code"], frame.geometry.values, strict=True))
    strip = shapely.intersection(geoms[G[2]], shapely.buffer(geoms[G[1]], 0.0008))
    minx, miny, maxx, maxy = geoms[G[8]].bounds
    west = shapely.intersection(geoms[G[8]], shapely.box(minx - 1, miny - 1, minx + 0.4 * (maxx - minx), maxy + 1))
    east = shapely.difference(geoms[G[8]], west)
    new = {G[1]: shapely.union(geoms[G[1]], strip), G[2]: shapely.difference(geoms[G[2]], strip),
           G[6]: shapely.union(geoms[G[6]], east), NEW: west}
    rows = [(code, RENAMED if code == G[5] else name, new.get(code, geom))
            for code, name, geom in frame.itertuples(index=False) if code != G[8]]
    rows.append((NEW, "新设网格九", west))
    changed = gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                               geometry=[r[2] for r in rows], crs=4326)
    return changed, {"strip": strip, "west": west, "east": east, "g2_rest": new[G[2]]}


def grown(frame: gpd.GeoDataFrame, code: str, degrees: float) -> gpd.GeoDataFrame:
    """``frame`` with grid ``code`` grown by ``degrees`` all round: it overlaps its neighbours."""
    frame = frame.copy()
    frame["geometry"] = [shapely.buffer(g, degrees) if c == code else g
                         for c, g in zip(frame["code"], frame.geometry.values, strict=True)]
    return frame


def write_gpkg(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    return path


def _inside(geom: shapely.Geometry) -> tuple[float, float]:
    point = shapely.point_on_surface(geom)
    return point.x, point.y


def add_person(conn, key: str, grid: str, colour: str, point: tuple[float, float] | None) -> str:
    conn.execute(text(
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, method, geom, grid_id) "
        "SELECT :key, '440605********0000', '王*', :colour, '测试 / test', 1.0, 'point', "
        "CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END, id "
        "FROM grids WHERE code = :grid"),
        {"key": key, "colour": colour, "grid": grid, "lon": point[0] if point else None,
         "lat": point[1] if point else None})
    if colour != "green":
        conn.execute(text("INSERT INTO flags (person_key, colour, grid_id, flagged_at, updated_at) "
                          "SELECT person_key, colour, grid_id, now(), now() FROM persons WHERE person_key = :key"),
                     {"key": key})
    return key


def build_scenario(engine: Engine, folder: Path) -> Scenario:
    """Persons, open and closed tasks placed for the change, and the change's files (see the module's text)."""
    analyze(engine)
    frame = community_frame(engine)
    changed, parts = changed_frame(frame)
    west_m2, east_m2 = area_m2([parts["west"], parts["east"]])
    with engine.connect() as conn:
        other = repository.load_grids(conn).set_index("code").geometry[OTHER]
    points = {"strip": _inside(parts["strip"]),
              "g2": _inside(shapely.difference(parts["g2_rest"], shapely.buffer(parts["strip"], 0.0005))),
              "west": _inside(parts["west"]), "east": _inside(parts["east"]), "g3": _inside(frame.geometry.iloc[2]),
              "other": _inside(other)}
    system = Actor.system()
    with engine.begin() as conn:
        persons = {"strip": add_person(conn, "bc" + "1" * 62, G[2], "red", points["strip"]),
                   "g2": add_person(conn, "bc" + "2" * 62, G[2], "yellow", points["g2"]),
                   "west": add_person(conn, "bc" + "3" * 62, G[8], "yellow", points["west"]),
                   "east": add_person(conn, "bc" + "4" * 62, G[8], "red", points["east"]),
                   "g3": add_person(conn, "bc" + "5" * 62, G[3], "red", points["g3"]),
                   "nowhere": add_person(conn, "bc" + "6" * 62, G[8], "yellow", None),
                   "other": add_person(conn, "bc" + "7" * 62, OTHER, "red", points["other"]),
                   "green": add_person(conn, "bc" + "8" * 62, G[2], "green", points["strip"])}

        def task(kind: str, grid: str, title: str, person: str | None = None, point: str | None = None,
                 dispatch: bool = True) -> int:
            return create_task(conn, system, NewTask(kind, grid, title, "matcher" if person else "manual",
                                                     person_key=persons[person] if person else None,
                                                     point=points[point] if point else None, dispatch=dispatch),
                               NOW)["id"]

        tasks = {"strip": task("escort", G[2], "转运 strip", "strip", "strip"),
                 "west": task("home_visit", G[8], "走访 west", "west", "west"),
                 "sweep": task("area_sweep", G[8], "巡查 008", dispatch=False),
                 "lead": task("lead_verification", G[2], "线索 strip", point="strip"),
                 "g2": task("home_visit", G[2], "走访 g2", "g2", "g2"),
                 "closed": task("area_sweep", G[8], "已撤销 008"),
                 "handled": task("escort", G[8], "转运 east", "east", "east")}
        transition(conn, system, tasks["closed"], "cancel", get_task(conn, system, tasks["closed"], NOW)["version"],
                   {"reason": "重复"}, NOW)
        handled = get_task(conn, system, tasks["handled"], NOW)
        worker = load_actor(conn, handled["assignee_id"])
        version = handled["version"]
        for action, payload in (("accept", {}), ("start", {}), ("handle", {"result": "已转运", "temperature": 36.6})):
            version = transition(conn, worker, tasks["handled"], action, version, payload, NOW)["task"]["version"]
    analyze(engine)
    return Scenario(write_gpkg(changed, folder / "community_change.gpkg"),
                    write_gpkg(frame, folder / "community_as_stored.gpkg"),
                    NEW if west_m2 > east_m2 else G[6], persons, tasks, points)


@pytest.fixture(scope="module")
def scenario_engine(database_factory, seeded_engine, tmp_path_factory) -> tuple[Engine, Scenario]:
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory("nanhai_changes", copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    return engine, build_scenario(engine, tmp_path_factory.mktemp("boundaries"))


def analyze(engine: Engine) -> None:
    """Statistics for the planner, as autovacuum keeps them on a running server: a fresh copy has none, and
    auto-dispatch's neighbour query takes seconds instead of milliseconds without them."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def admin(conn) -> Actor:
    return load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = 'demo_admin'")).scalar_one())


def fingerprint(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return (repository.grids_version(conn), conn.execute(text(
            "SELECT md5(string_agg(person_key || coalesce(grid_id::text, '-'), ',' ORDER BY person_key)) FROM persons"
        )).scalar_one(), conn.execute(text("SELECT count(*) FROM task_events")).scalar_one())


# -- the preview ---------------------------------------------------------------------------------
def test_the_preview_counts_exactly_what_would_change(scenario_engine):
    engine, scenario = scenario_engine
    before = fingerprint(engine)
    with engine.connect() as conn:
        preview = preview_change(conn, read_grid_file(scenario.file))
        removed_assignments = conn.execute(text(
            "SELECT u.username FROM user_grids ug JOIN users u ON u.id = ug.user_id JOIN grids g ON g.id = ug.grid_id "
            "WHERE g.code = :g ORDER BY u.username"), {"g": G[8]}).scalars().all()
    assert fingerprint(engine) == before, "a preview writes nothing"
    assert not preview.blocked and preview.communities == [COMMUNITY] and preview.features == 8
    assert preview.codes("added") == [NEW] and preview.codes("removed") == [G[8]]
    assert preview.codes("reshaped") == [G[1], G[2], G[6]] and preview.codes("renamed") == [G[5]]
    assert preview.unchanged == 3
    successor = scenario.expected_successor
    assert preview.persons_moving == 5 and preview.persons_unplaced == 0
    flows = {(a, b): n for a, b, n in preview.person_flows}
    assert flows == {(G[2], G[1]): 2, (G[8], NEW): 1 + (successor == NEW), (G[8], G[6]): 1 + (successor == G[6])}
    moves = {m.task_id: m for m in preview.tasks}
    t = scenario.tasks
    assert sorted(moves) == sorted([t["strip"], t["west"], t["sweep"], t["lead"], t["handled"]])
    assert (moves[t["strip"]].from_code, moves[t["strip"]].to_code, moves[t["strip"]].why) == (G[2], G[1], "person")
    assert (moves[t["west"]].to_code, moves[t["west"]].why) == (NEW, "person")
    assert (moves[t["sweep"]].to_code, moves[t["sweep"]].why, moves[t["sweep"]].status) == (successor, "area",
                                                                                               "created")
    assert (moves[t["lead"]].to_code, moves[t["lead"]].why) == (G[1], "location")
    assert (moves[t["handled"]].to_code, moves[t["handled"]].status) == (G[6], "handled")
    # a worker of 002 or 008 owns neither 001 nor the new grid: those in his hands go back to dispatch; a task
    # waiting for dispatch or for its supervisor (handled) does not
    assert {i for i, m in moves.items() if m.back_to_dispatch} == {t["strip"], t["west"], t["lead"]}
    assert sorted(w.username for w in preview.workers) == removed_assignments and len(removed_assignments) >= 2
    assert all(w.grid_code == G[8] for w in preview.workers)
    assert all(w.grids_left == 0 for w in preview.workers if w.role == "worker")
    assert preview.checkpoints_moving == 1, "008's checkpoint goes with its point"
    counts = preview.counts()
    assert (counts["added"], counts["removed"], counts["reshaped"], counts["tasks_moving"],
            counts["tasks_back_to_dispatch"], counts["errors"]) == (1, 1, 3, 5, 3, 0)


def test_a_file_identical_to_the_stored_grids_changes_nothing(scenario_engine, tmp_path):
    engine, scenario = scenario_engine
    nameless = tmp_path / "nameless.geojson"  # no name field: the stored names stay
    community_frame(engine)[["code", "geometry"]].to_file(nameless, driver="GeoJSON", engine="pyogrio")
    for path in (scenario.unchanged_file, nameless):
        with engine.connect() as conn:
            preview = preview_change(conn, read_grid_file(path))
        assert not preview.blocked and not preview.changes_anything and preview.unchanged == 8, path.name
        assert preview.persons_moving == 0 and preview.tasks == [] and preview.workers == []


# -- refusals --------------------------------------------------------------------------------------
def _border_grid(engine: Engine) -> str:
    """A grid of the community that touches another community's grid."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT a.code FROM grids a JOIN grids b ON b.community_id <> a.community_id "
            "AND ST_Intersects(a.geom, b.geom) WHERE a.code LIKE :c ORDER BY a.code LIMIT 1"),
            {"c": COMMUNITY + "%"}).scalar_one()


def test_a_file_whose_check_fails_is_refused_with_every_error(scenario_engine, tmp_path):
    engine, scenario = scenario_engine
    frame = grown(community_frame(engine), _border_grid(engine), 0.0005)
    frame.loc[len(frame)] = ["44060501100100X", "坏编码", shapely.box(0, 0, 0.001, 0.001)]
    path = write_gpkg(frame, tmp_path / "bad.gpkg")
    before = fingerprint(engine)
    with engine.connect() as conn:
        preview = preview_change(conn, read_grid_file(path))
    kinds = {p.kind for p in preview.problems if p.severity == "error"}
    assert preview.blocked and {"overlap", "bad_code"} <= kinds and preview.grids == []
    assert any("#9 (44060501100100X)" == p.feature for p in preview.problems if p.kind == "bad_code")
    assert any("（现有 / stored）" in p.feature for p in preview.problems if p.kind == "overlap"), \
        "an overlap with a neighbouring community's stored grid is found and named by its code"
    with engine.begin() as conn, pytest.raises(ImportRejected) as refused:
        apply_change(conn, admin(conn), read_grid_file(path), preview.stamp, NOW)
    assert "nothing was changed" in str(refused.value) and {p.kind for p in refused.value.problems} >= kinds
    assert fingerprint(engine) == before


def test_a_stale_preview_is_refused(scenario_engine, tmp_path):
    engine, scenario = scenario_engine
    grid_file = read_grid_file(scenario.file)
    with engine.connect() as conn:
        stamp = preview_change(conn, grid_file).stamp
    before = fingerprint(engine)
    with engine.connect() as conn, conn.begin() as outer:  # somebody changes a grid after the preview
        conn.execute(text("UPDATE grids SET name = name || '（改）' WHERE code = :c"), {"c": OTHER})
        with pytest.raises(Conflict) as stale:
            apply_change(conn, admin(conn), grid_file, stamp, NOW)
        outer.rollback()
    assert stale.value.code == "stale_preview"
    other_file = community_frame(engine)
    other_file.loc[0, "name"] = "另一个文件"
    with engine.connect() as conn, conn.begin(), pytest.raises(Conflict) as other:
        apply_change(conn, admin(conn), read_grid_file(write_gpkg(other_file, tmp_path / "other.gpkg")), stamp, NOW)
    assert other.value.code == "stale_preview", "the stamp holds the file too: another file is not the preview's"
    with engine.connect() as conn, conn.begin(), pytest.raises(PermissionDenied):
        apply_change(conn, Actor(None, "sup", "supervisor"), grid_file, stamp, NOW)
    assert fingerprint(engine) == before


# -- applying ----------------------------------------------------------------------------------------
def test_applying_moves_persons_tasks_and_assignments_in_one_transaction(scenario_engine, database_factory):
    source, scenario = scenario_engine
    engine = database_factory("nanhai_changes_applied", copy_of=source)
    grid_file = read_grid_file(scenario.file)
    with engine.connect() as conn:
        preview = preview_change(conn, grid_file)
        version = repository.grids_version(conn)
        old_ids = dict(conn.execute(text("SELECT code, id FROM grids WHERE code LIKE :c"),
                                    {"c": COMMUNITY + "%"}).all())
        lost = conn.execute(text("SELECT user_id FROM user_grids WHERE grid_id = :g"),
                            {"g": old_ids[G[8]]}).scalars().all()
        assignees = dict(conn.execute(text("SELECT id, assignee_id FROM tasks WHERE id = ANY(:ids)"),
                                      {"ids": list(scenario.tasks.values())}).all())
    with engine.begin() as conn:
        applied = apply_change(conn, admin(conn), grid_file, preview.stamp, NOW, client="test")
    t, p = scenario.tasks, scenario.persons
    successor = scenario.expected_successor
    assert applied.persons_moved == 5 and applied.persons_unplaced == 0 and applied.assignments_dropped == len(lost)
    assert sorted(applied.tasks_moved) == sorted(m.task_id for m in preview.tasks)
    assert sorted(applied.tasks_redispatched) == sorted([t["strip"], t["west"], t["lead"]])
    assert applied.version != version
    changed = read_grid_file(scenario.file).frame.set_index("code")
    with engine.connect() as conn:
        # grids: 008 gone, 009 added in the community, the reshaped ones as in the file, cells recomputed
        stored = repository.load_grids(conn).set_index("code")
        assert G[8] not in stored.index and stored.loc[NEW, "community_code"] == COMMUNITY
        assert stored.loc[G[3], "name"] == changed.loc[G[3], "name"] and stored.loc[G[5], "name"] == RENAMED
        for code in (G[1], G[2], G[6], NEW):
            assert shapely.equals_exact(stored.geometry[code].normalize(), changed.geometry[code].normalize(), 1e-9)
            cells = conn.execute(text("SELECT count(*) FROM grid_cells c JOIN grids g ON g.id = c.grid_id "
                                      "WHERE g.code = :c"), {"c": code}).scalar_one()
            assert cells == len(grid_cells([changed.geometry[code]]))
        assert conn.execute(text("SELECT count(*) FROM grid_cells WHERE grid_id = :g"),
                            {"g": old_ids[G[8]]}).scalar_one() == 0
        assert "boundary change" not in conn.execute(text(
            "SELECT source FROM grids WHERE code = :c"), {"c": G[3]}).scalar_one(), "an unchanged grid is not rewritten"
        assert conn.execute(text("SELECT source FROM grids WHERE code = :c"), {"c": NEW}).scalar_one() \
            == "boundary change: community_change.gpkg (EPSG:4326)"
        outline = conn.execute(text(
            "SELECT ST_Area(ST_SymDifference(c.geom, (SELECT ST_Union(geom) FROM grids WHERE community_id = c.id))"
            "::geography) FROM communities c WHERE code = :c"), {"c": COMMUNITY}).scalar_one()
        assert outline < 1.0, "the community's outline is the union of its new grids"

        # persons and their flags follow their points; nobody else moved
        placed = dict(conn.execute(text("SELECT p.person_key, g.code FROM persons p JOIN grids g ON g.id = p.grid_id "
                                        "WHERE p.person_key LIKE 'bc%'")).all())
        assert placed == {p["strip"]: G[1], p["g2"]: G[2], p["west"]: NEW, p["east"]: G[6], p["g3"]: G[3],
                          p["nowhere"]: successor, p["other"]: OTHER, p["green"]: G[1]}
        flagged = dict(conn.execute(text("SELECT f.person_key, g.code FROM flags f JOIN grids g ON g.id = f.grid_id "
                                         "WHERE f.person_key LIKE 'bc%'")).all())
        assert flagged == {k: v for k, v in placed.items() if k != p["green"]}
        counts = conn.execute(text("SELECT grid_id, colour, persons FROM grid_colour_counts ORDER BY 1, 2")).all()
        truth = conn.execute(text("SELECT grid_id, colour, count(*) FROM persons WHERE grid_id IS NOT NULL "
                                  "GROUP BY 1, 2 ORDER BY 1, 2")).all()
        assert counts == truth, "persons per grid and colour are counted anew"

        # open tasks follow, each with a regrid event; those in a worker's hands who does not own the new grid go
        # back to dispatch and out again, to somebody else
        system = Actor.system()
        for name, target in (("strip", G[1]), ("west", NEW), ("sweep", successor), ("lead", G[1]),
                             ("handled", G[6])):
            task = get_task(conn, system, t[name], NOW)
            assert task["grid_code"] == target, name
            regrid = next(e for e in task["events"] if e["action"] == "regrid")
            assert regrid["actor"] == "system" and regrid["note"] == "操作人 / by demo_admin"
            assert regrid["detail"]["reason"] == CHANGE_REASON.format(old=G[2] if name in ("strip", "lead") else G[8],
                                                                      new=target)
            assert regrid["from_status"] == regrid["to_status"]
        for name in ("strip", "west", "lead"):
            task = get_task(conn, system, t[name], NOW)
            assert [e["action"] for e in task["events"]][-3:] == ["regrid", "recall", "dispatch"], name
            assert task["status"] == "dispatched" and task["assignee_id"] not in (None, assignees[t[name]])
        strip_worker = get_task(conn, system, t["strip"], NOW)["assignee_id"]
        assert conn.execute(text("SELECT count(*) FROM user_grids WHERE user_id = :u AND grid_id = :g"),
                            {"u": strip_worker, "g": old_ids[G[1]]}).scalar_one() == 1, "dispatched within 001"
        handled = get_task(conn, system, t["handled"], NOW)
        assert handled["status"] == "handled" and handled["assignee_id"] == assignees[t["handled"]]
        assert get_task(conn, system, t["sweep"], NOW)["status"] == "created"
        untouched = get_task(conn, system, t["g2"], NOW)
        assert untouched["grid_code"] == G[2] and "regrid" not in [e["action"] for e in untouched["events"]]
        closed = conn.execute(text("SELECT grid_id, grid_code FROM tasks WHERE id = :id"), {"id": t["closed"]}).one()
        assert closed == (None, G[8]), "a finished task keeps the code of the grid it was done in"

        # the removed grid's staff lost it; the checkpoint went with its point; audited once
        assert conn.execute(text("SELECT count(*) FROM user_grids WHERE user_id = ANY(:u)"),
                            {"u": [u for u in lost]}).scalar_one() == sum(
            w.grids_left for w in preview.workers)
        checkpoint = conn.execute(text("SELECT g.code FROM checkpoints k JOIN grids g ON g.id = k.grid_id "
                                       "WHERE k.community_id = (SELECT id FROM communities WHERE code = :c) "
                                       "AND k.grid_id NOT IN (SELECT id FROM grids WHERE code = :g3)"),
                                  {"c": COMMUNITY, "g3": G[3]}).scalar_one()
        assert checkpoint in (NEW, G[6])
        audit = conn.execute(text("SELECT username, subject, reason, client FROM audit_log WHERE action = 'grids.apply'"
                                  )).all()
        assert len(audit) == 1 and audit[0].username == "demo_admin" and audit[0].client == "test"
        assert audit[0].subject == f"community_change.gpkg ({COMMUNITY})"
        assert "persons moved 5" in audit[0].reason and "tasks moved 5 (back to dispatch 3)" in audit[0].reason
        assert repository.grids_version(conn) == applied.version

    with engine.connect() as conn:  # the same file again: nothing left to change
        again = preview_change(conn, read_grid_file(scenario.file))
    assert not again.changes_anything and again.persons_moving == 0 and again.tasks == []
    assert np.isclose(area_m2([changed.geometry[NEW]])[0], stored.loc[NEW, "area_m2"])
