"""A boundary change: what a new boundary file would change in the stored district, and applying it.

The file covers the communities its grid codes name (their first 12 digits). Those communities' grids become
exactly the file's: a code the district lacks is a grid **added**, a stored grid of those communities that the
file lacks is **removed**, a grid whose polygon moved by more than the check's tolerance (over 1 m² and wider
than 5 cm, as :mod:`grids.validation` counts gaps) is **reshaped**; a grid whose polygon stayed keeps its stored
polygon (a new name is taken). Every other community keeps its grids as they are. So a file of one community
changes that community only, a file of the whole district replaces the district's grids, and no community can
be left without a grid.

The check is ``gridctl grids check``'s, run on the district as it would be: the file's grids together with the
other communities' stored ones, so an overlap with a neighbour or a gap left along the file's edge is an error.
The file's own features are named as the file numbers them (``#n (code)``), stored grids by their code.

What moves, worked out the same way for the preview and for the change itself:

- a **person** (his point, ``persons.geom``) placed in a reshaped or removed grid stays where his grid still
  covers his point; otherwise he goes to the grid that now holds it (the lowest code on a shared edge, as the
  matcher's locator does), or becomes unplaced, with the reason, when no grid does. A person without a point
  in a removed grid goes to its **successor**, the grid that takes most of its area. His flag and his pending
  task requests follow him.
- an open **task** follows its person's new grid; else, having a location, the grid that holds it; else, its
  grid being removed, the successor. It gets a ``regrid`` event in its timeline (``网格边界调整 / boundary
  change: A → B``); one in the hands of a worker who does not own the new grid goes back to dispatch (a
  ``recall`` event) and auto-dispatch picks a worker there, as when a worker loses a grid.
- **checkpoints** and **leads** of changed grids follow their points (else the successor).
- workers (and supervisors) assigned to a removed grid lose that assignment; the preview names them, and those
  left with no grid at all.

:func:`preview_change` only reads. :func:`apply_change` does everything in the caller's transaction, after
checking that the stored grids are still those the preview saw (:attr:`BoundaryPreview.stamp`).

>>> grid_file = read_grid_file("community.gpkg")                              # doctest: +SKIP
>>> with engine.connect() as conn:                                            # doctest: +SKIP
...     preview = preview_change(conn, grid_file)
>>> with engine.begin() as conn:                                              # doctest: +SKIP
...     applied = apply_change(conn, admin, grid_file, preview.stamp, now)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from accounts.actor import ADMIN, Actor
from accounts.repository import record_read
from gis.crs import area_m2, mean_width_m
from gis.errors import Conflict, ImportRejected, PermissionDenied
from grids import repository
from grids.hierarchy import grid_code_problem
from grids.importing import GridFile
from grids.nanhai import DISTRICT_CODE
from grids.validation import MIN_WIDTH_M, TOLERANCE_M2, GridProblem, check_grids, feature_label, has_errors
from tasks import repository as tasks
from tasks.lifecycle import OPEN

CHANGE_REASON = "网格边界调整 / boundary change: {old} → {new}"
OUTSIDE_NEW_GRIDS = "新的网格边界不含其位置 / outside the new grid boundaries"
RECALLABLE = tasks.RECALLABLE
CHANGES = ("added", "removed", "reshaped", "renamed")


@dataclass(frozen=True)
class GridDiff:
    """One grid the change touches: ``change`` is added, removed, reshaped or renamed."""

    code: str
    name: str
    change: str
    area_before_m2: float | None
    area_after_m2: float | None
    moved_m2: float | None = None  # reshaped: the area that changes hands (symmetric difference)


@dataclass(frozen=True)
class TaskMove:
    """An open task the change moves to another grid; ``why``: person, location or area (successor)."""

    task_id: int
    kind: str
    status: str
    title: str
    from_code: str
    to_code: str
    why: str
    assignee: str | None
    back_to_dispatch: bool  # its worker does not own the new grid: recalled and dispatched again


@dataclass(frozen=True)
class LostGrid:
    """A staff member's assignment to a grid the change removes."""

    username: str
    display_name: str
    role: str
    grid_code: str
    grids_left: int
    open_tasks: int


@dataclass
class BoundaryPreview:
    """What applying the file would change (nothing of it computed when the file's check has errors)."""

    file_name: str
    crs: str
    stamp: str  # the stored grids and the file as previewed: apply refuses when either differs
    features: int
    communities: list[str]
    problems: list[GridProblem]
    grids: list[GridDiff] = field(default_factory=list)
    unchanged: int = 0
    persons_moving: int = 0
    persons_unplaced: int = 0
    person_flows: list[tuple[str, str | None, int]] = field(default_factory=list)  # (from, to, persons)
    tasks: list[TaskMove] = field(default_factory=list)
    workers: list[LostGrid] = field(default_factory=list)
    checkpoints_moving: int = 0
    leads_moving: int = 0

    @property
    def blocked(self) -> bool:
        """The file's check has errors: it cannot be applied."""
        return has_errors(self.problems)

    def codes(self, change: str) -> list[str]:
        """The codes of the grids with ``change`` (added, removed, reshaped, renamed)."""
        return [g.code for g in self.grids if g.change == change]

    @property
    def changes_anything(self) -> bool:
        return bool(self.grids)

    def counts(self) -> dict[str, int]:
        """The preview in numbers (for the audit log, the CLI and the page)."""
        return {**{change: len(self.codes(change)) for change in CHANGES}, "unchanged": self.unchanged,
                "persons_moving": self.persons_moving, "persons_unplaced": self.persons_unplaced,
                "tasks_moving": len(self.tasks),
                "tasks_back_to_dispatch": sum(t.back_to_dispatch for t in self.tasks),
                "assignments_lost": len(self.workers), "checkpoints_moving": self.checkpoints_moving,
                "leads_moving": self.leads_moving,
                "errors": sum(p.severity == "error" for p in self.problems),
                "warnings": sum(p.severity != "error" for p in self.problems)}


@dataclass(frozen=True)
class AppliedChange:
    """What :func:`apply_change` did."""

    preview: BoundaryPreview
    persons_moved: int
    persons_unplaced: int
    tasks_moved: list[int]
    tasks_redispatched: list[int]  # recalled from a worker who does not own the new grid, dispatched again
    assignments_dropped: int
    cells: int
    version: str  # :func:`grids.repository.grids_version` after the change


@dataclass
class _Plan:
    """What :func:`apply_change` writes (worked out with the preview)."""

    frame: gpd.GeoDataFrame  # the file: code, name, geometry
    names: list[str]  # each row's name as stored afterwards
    community_ids: dict[str, int]
    scope_ids: list[int]
    stored_ids: dict[str, int]  # every stored grid's code → id
    added: list[int]  # rows of ``frame``
    reshaped: list[int]
    renamed: list[int]
    removed: list[str]
    persons: pd.DataFrame  # person_key, from_code, to_code (None: unplaced)
    checkpoints: list[tuple[int, str]]
    leads: list[tuple[int, str]]


class _After:
    """The district's grids as the change leaves them: which grid holds a point, which takes over an area."""

    def __init__(self, codes: Sequence[str], geoms: np.ndarray) -> None:
        order = np.argsort(np.asarray(codes, dtype=str), kind="stable")
        self.codes = np.asarray(codes, dtype=object)[order]
        self.geoms = np.asarray(geoms, dtype=object)[order]
        self.index = {code: i for i, code in enumerate(self.codes)}
        self.tree = shapely.STRtree(self.geoms)

    def locate(self, lon: np.ndarray, lat: np.ndarray, current: Sequence[str | None]) -> np.ndarray:
        """The grid code of each point: its ``current`` grid while that still covers it, else the lowest code
        whose grid holds it; None outside every grid or without a point (NaN)."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        now_in = np.asarray(list(current), dtype=object)
        result = np.full(len(lon), None, dtype=object)
        has_point = ~(np.isnan(lon) | np.isnan(lat))
        points = np.full(len(lon), None, dtype=object)
        points[has_point] = shapely.points(lon[has_point], lat[has_point])
        at = np.array([self.index.get(c, -1) for c in now_in], dtype=np.int64)
        check = has_point & (at >= 0)
        stays = np.zeros(len(lon), dtype=bool)
        stays[check] = shapely.covers(self.geoms[at[check]], points[check])
        result[stays] = now_in[stays]
        rest = np.flatnonzero(has_point & ~stays)
        if len(rest):
            which, grid = self.tree.query(points[rest], predicate="intersects")
            first = np.full(len(rest), len(self.codes), dtype=np.int64)
            np.minimum.at(first, which, grid)
            found = first < len(self.codes)
            result[rest[found]] = self.codes[first[found]]
        return result

    def successor(self, geom: BaseGeometry) -> str:
        """The grid that takes most of ``geom``'s area (the nearest one when none overlaps it)."""
        near = np.sort(self.tree.query(geom, predicate="intersects"))
        if len(near):
            shared = area_m2(shapely.intersection(self.geoms[near], geom))
            if shared.max() > 0:
                return str(self.codes[near[int(np.argmax(shared))]])
        return str(self.codes[int(np.min(self.tree.query_nearest(geom)))])


def _digest(frame: gpd.GeoDataFrame) -> str:
    digest = hashlib.sha256()
    for code, name, geom in zip(frame["code"], frame["name"], frame.geometry.values, strict=True):
        digest.update(f"{code}\x1f{name}\x1f".encode())
        digest.update(b"" if geom is None else shapely.to_wkb(geom))
    return digest.hexdigest()[:16]


def _check(codes: list[str], geoms: np.ndarray, others: gpd.GeoDataFrame, outline: BaseGeometry,
           communities: set[str]) -> list[GridProblem]:
    """``grids check`` on the file's grids together with the other communities' stored grids."""
    if not codes:
        return [GridProblem("-", "empty_file", "error", "文件中没有网格 / the file holds no grids")]
    stored_codes = [str(c) for c in others["code"]]
    problems = check_grids(codes + stored_codes, np.concatenate([np.asarray(geoms, dtype=object),
                                                                  np.asarray(others.geometry.values, dtype=object)]),
                           outline, DISTRICT_CODE, communities)
    names = {feature_label(len(codes) + j, code): f"{code}（现有 / stored）" for j, code in enumerate(stored_codes)}
    return [GridProblem(" × ".join(names.get(part, part) for part in p.feature.split(" × ")), p.kind, p.severity,
                        p.reason, p.area_m2) for p in problems]


def _rows(conn: Connection, statement: str, params: dict[str, Any]) -> pd.DataFrame:
    result = conn.execute(text(statement), params)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _plan(conn: Connection, grid_file: GridFile) -> tuple[BoundaryPreview, _Plan | None]:
    frame = grid_file.frame
    outline = repository.district_outline(conn, DISTRICT_CODE)
    if outline is None:
        raise ImportRejected("数据库中还没有区界，请先运行 gridctl seed nanhai / no district outline loaded yet: "
                             "run `gridctl seed nanhai` first")
    communities = repository.community_ids(conn)
    stored = repository.load_grids(conn)
    codes = [str(c) for c in frame["code"]]
    scope = sorted({c[:12] for c in codes if grid_code_problem(c) is None and c[:12] in communities})
    inside = stored["community_code"].isin(scope).to_numpy()
    others, mine = stored[~inside], stored[inside]
    problems = _check(codes, frame.geometry.values, others, outline, set(communities))
    preview = BoundaryPreview(grid_file.path.name, str(grid_file.crs),
                              f"{repository.grids_version(conn)}/{_digest(frame)}", len(frame), scope, problems)
    if preview.blocked:
        return preview, None

    before = dict(zip(mine["code"], mine.geometry.values, strict=True))
    stored_names = dict(zip(mine["code"], mine["name"], strict=True))
    # a file without a name field gets "网格 <code>" (read_grid_file): that keeps the stored name
    names = [str(stored_names[code]) if code in stored_names and str(name) == f"网格 {code}" else str(name)
             for code, name in zip(codes, frame["name"], strict=True)]
    new_geoms = np.asarray(frame.geometry.values, dtype=object)
    common = [i for i, code in enumerate(codes) if code in before]
    old = np.array([before[codes[i]] for i in common], dtype=object)
    moved = shapely.symmetric_difference(old, new_geoms[common]) if common else np.array([], dtype=object)
    moved_m2 = area_m2(moved) if common else np.zeros(0)
    reshaped_mask = (moved_m2 > TOLERANCE_M2) & (mean_width_m(moved) > MIN_WIDTH_M) if common else \
        np.zeros(0, dtype=bool)
    added = [i for i, code in enumerate(codes) if code not in before]
    reshaped = [i for i, keep in zip(common, reshaped_mask, strict=True) if keep]
    renamed = [i for i, keep in zip(common, reshaped_mask, strict=True)
               if not keep and names[i] != stored_names[codes[i]]]
    removed = sorted(set(before) - set(codes))
    after_area = area_m2(new_geoms[added + reshaped]) if added or reshaped else np.zeros(0)
    before_area = dict(zip(mine["code"], mine["area_m2"], strict=True))
    moved_by_row = dict(zip(common, moved_m2, strict=True))
    diffs = [GridDiff(codes[i], names[i], "added", None, float(a))
             for i, a in zip(added, after_area[:len(added)], strict=True)]
    diffs += [GridDiff(codes[i], names[i], "reshaped", float(before_area[codes[i]]), float(a),
                       float(moved_by_row[i])) for i, a in zip(reshaped, after_area[len(added):], strict=True)]
    diffs += [GridDiff(codes[i], names[i], "renamed", float(before_area[codes[i]]),
                       float(before_area[codes[i]])) for i in renamed]
    diffs += [GridDiff(code, str(stored_names[code]), "removed", float(before_area[code]), None) for code in removed]
    preview.grids = sorted(diffs, key=lambda d: (CHANGES.index(d.change), d.code))
    preview.unchanged = len(common) - len(reshaped) - len(renamed)

    # the district's grids afterwards: the other communities' as stored, the file's (the stored polygon where
    # it did not move)
    changed_rows = set(added) | set(reshaped)
    after = _After(list(others["code"]) + codes,
                   np.concatenate([np.asarray(others.geometry.values, dtype=object),
                                   np.array([new_geoms[i] if i in changed_rows else before[codes[i]]
                                             for i in range(len(codes))], dtype=object)]))
    stored_ids = {str(code): int(grid_id) for code, grid_id in zip(stored["code"], stored["id"], strict=True)}
    changed_ids = [stored_ids[codes[i]] for i in reshaped] + [stored_ids[c] for c in removed]
    successors = {code: after.successor(before[code]) for code in removed}

    persons = _rows(conn, "SELECT p.person_key, g.code AS from_code, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat "
                          "FROM persons p JOIN grids g ON g.id = p.grid_id WHERE p.grid_id = ANY(:ids)",
                    {"ids": changed_ids})
    to_code = after.locate(_floats(persons, "lon"), _floats(persons, "lat"), persons["from_code"].tolist())
    no_point = persons["lon"].isna().to_numpy()
    for i in np.flatnonzero(no_point):  # placed by nothing we can test again: kept, or given to the successor
        source = persons["from_code"].iloc[i]
        to_code[i] = successors.get(source, source)
    persons = persons.assign(to_code=to_code)
    movers = persons[persons["to_code"].to_numpy() != persons["from_code"].to_numpy()][
        ["person_key", "from_code", "to_code"]].reset_index(drop=True)
    preview.persons_moving = len(movers)
    preview.persons_unplaced = int(movers["to_code"].isna().sum())
    flows = Counter(zip(movers["from_code"], movers["to_code"], strict=True))
    preview.person_flows = sorted(((a, b, n) for (a, b), n in flows.items()), key=lambda f: (f[0], f[1] or ""))

    removed_codes = set(removed)
    preview.tasks = _task_moves(conn, after, changed_ids, movers, successors, removed_codes)
    preview.workers = _lost_grids(conn, [stored_ids[c] for c in removed])
    checkpoints = _points_moving(conn, "checkpoints", after, changed_ids, successors, nearest=True)
    leads = _points_moving(conn, "leads", after, changed_ids, successors, nearest=False)
    preview.checkpoints_moving, preview.leads_moving = len(checkpoints), len(leads)
    return preview, _Plan(frame, names, communities, sorted({communities[c] for c in scope}), stored_ids, added,
                          reshaped, renamed, removed, movers, checkpoints, leads)


def _task_moves(conn: Connection, after: _After, changed_ids: list[int], movers: pd.DataFrame,
                successors: dict[str, str], removed: set[str]) -> list[TaskMove]:
    """The open tasks the change moves, and whether each goes back to dispatch."""
    moving_to = dict(zip(movers["person_key"], movers["to_code"], strict=True))
    found = _rows(conn, "SELECT t.id, t.kind, t.status, t.title, t.grid_code, t.person_key, ST_X(t.geom) AS lon, "
                        "ST_Y(t.geom) AS lat, t.assignee_id, u.username FROM tasks t "
                        "LEFT JOIN users u ON u.id = t.assignee_id "
                        "WHERE t.status = ANY(:open) AND t.grid_id IS NOT NULL "
                        "AND (t.grid_id = ANY(:ids) OR t.person_key = ANY(:keys)) ORDER BY t.id",
                  {"open": list(OPEN), "ids": changed_ids, "keys": list(moving_to)})
    if found.empty:
        return []
    located = after.locate(_floats(found, "lon"), _floats(found, "lat"), found["grid_code"].tolist())
    assignees = [int(a) for a in found["assignee_id"].dropna().unique()]
    owned: dict[int, set[str]] = {}
    for user_id, code in conn.execute(text(
            "SELECT ug.user_id, g.code FROM user_grids ug JOIN grids g ON g.id = ug.grid_id "
            "WHERE ug.user_id = ANY(:ids)"), {"ids": assignees}):
        if code not in removed:
            owned.setdefault(user_id, set()).add(code)
    moves = []
    for row, location in zip(found.itertuples(index=False), located, strict=True):
        target, why = None, ""
        if row.person_key is not None and moving_to.get(row.person_key) is not None:
            target, why = moving_to[row.person_key], "person"
        elif location is not None:
            target, why = location, "location"
        if target is None:
            target, why = (row.grid_code, "") if row.grid_code not in removed else (successors[row.grid_code], "area")
        if target == row.grid_code:
            continue
        assignee = None if pd.isna(row.assignee_id) else int(row.assignee_id)
        back = row.status in RECALLABLE and assignee is not None and target not in owned.get(assignee, set())
        moves.append(TaskMove(int(row.id), row.kind, row.status, row.title, row.grid_code, str(target), why,
                              None if pd.isna(row.username) else str(row.username), bool(back)))
    return moves


def _lost_grids(conn: Connection, removed_ids: list[int]) -> list[LostGrid]:
    rows = conn.execute(text(
        "SELECT u.username, u.display_name, u.role, g.code, "
        "  (SELECT count(*) FROM user_grids x WHERE x.user_id = u.id AND NOT x.grid_id = ANY(:ids)) AS left_, "
        "  (SELECT count(*) FROM tasks t WHERE t.assignee_id = u.id AND t.grid_id = g.id "
        "   AND t.status = ANY(:open)) AS open_tasks "
        "FROM user_grids ug JOIN users u ON u.id = ug.user_id JOIN grids g ON g.id = ug.grid_id "
        "WHERE ug.grid_id = ANY(:ids) ORDER BY u.username, g.code"), {"ids": removed_ids, "open": list(OPEN)})
    return [LostGrid(r.username, r.display_name, r.role, r.code, int(r.left_), int(r.open_tasks)) for r in rows]


def _points_moving(conn: Connection, table: str, after: _After, changed_ids: list[int], successors: dict[str, str],
                   nearest: bool) -> list[tuple[int, str]]:
    """(id, new grid code) of the checkpoints or leads of changed grids that end up in another grid: where their
    point lies (a checkpoint outside every grid: the nearest), else the successor of a removed grid."""
    found = _rows(conn, f"SELECT k.id, g.code, ST_X(k.geom) AS lon, ST_Y(k.geom) AS lat FROM {table} k "
                        "JOIN grids g ON g.id = k.grid_id WHERE k.grid_id = ANY(:ids) ORDER BY k.id",
                  {"ids": changed_ids})
    if found.empty:
        return []
    lon, lat = _floats(found, "lon"), _floats(found, "lat")
    located = after.locate(lon, lat, found["code"].tolist())
    moves = []
    for (item, code), target, x, y in zip(found[["id", "code"]].itertuples(index=False), located, lon, lat,
                                          strict=True):
        if target is None and nearest and not np.isnan(x):
            target = after.successor(shapely.Point(x, y))
        if target is None:
            target = code if code not in successors else successors[code]
        if target != code:
            moves.append((int(item), str(target)))
    return moves


def preview_change(conn: Connection, grid_file: GridFile) -> BoundaryPreview:
    """What applying ``grid_file`` would change (reads only). When its check has errors, only the problems."""
    return _plan(conn, grid_file)[0]


def _wkb_hex(geoms: np.ndarray | Sequence[BaseGeometry]) -> list[str]:
    return [repository.ewkb(g) for g in geoms]


def apply_change(conn: Connection, actor: Actor, grid_file: GridFile, expected_stamp: str | None, now: datetime,
                 client: str | None = None) -> AppliedChange:
    """Apply ``grid_file`` in the caller's transaction (administrators only), audited as ``grids.apply``.

    Refuses (nothing written) with :class:`ImportRejected` when the file's check has errors, and with
    :class:`Conflict` ``stale_preview`` when ``expected_stamp`` (a preview's) no longer matches: the stored grids
    or the file changed since. Waits for a match run that is placing persons (:data:`repository.PLACEMENT_LOCK`).
    """
    if actor.role != ADMIN:
        raise PermissionDenied("仅管理员可以更改网格边界 / only administrators change grid boundaries")
    conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": repository.PLACEMENT_LOCK})
    conn.execute(text("LOCK TABLE grids IN SHARE ROW EXCLUSIVE MODE"))
    preview, plan = _plan(conn, grid_file)
    if plan is None:
        errors = [p for p in preview.problems if p.severity == "error"]
        raise ImportRejected(f"{preview.file_name}: {len(errors)} 个错误，未作任何更改 / {len(errors)} errors, "
                             "nothing was changed", errors)
    if expected_stamp is not None and expected_stamp != preview.stamp:
        raise Conflict("预览之后网格或文件已有变化，请重新预览 / the stored grids or the file changed since the "
                       "preview: preview the change again", "stale_preview")
    if not preview.changes_anything:
        return AppliedChange(preview, 0, 0, [], [], 0, 0, repository.grids_version(conn))
    frame, codes = plan.frame, [str(c) for c in plan.frame["code"]]
    source = f"boundary change: {grid_file.path.name} ({grid_file.crs})"

    def names(rows: list[int]) -> list[str]:
        return [plan.names[i] for i in rows]

    # 1. the grids: added and reshaped ones take the file's polygon, renamed ones its name
    geoms = np.asarray(frame.geometry.values, dtype=object)
    added_areas = area_m2(geoms[plan.added]) if plan.added else np.zeros(0)
    conn.execute(text(
        "INSERT INTO grids (code, name, community_id, geom, area_m2, population, synthetic, source) "
        "SELECT u.code, u.name, u.community_id, ST_Multi(ST_GeomFromEWKB(decode(u.wkb, 'hex'))), u.area, NULL, "
        "false, :source FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:communities AS int[]), "
        "CAST(:wkbs AS text[]), CAST(:areas AS float8[])) AS u(code, name, community_id, wkb, area)"),
        {"codes": [codes[i] for i in plan.added], "names": names(plan.added),
         "communities": [plan.community_ids[codes[i][:12]] for i in plan.added],
         "wkbs": _wkb_hex(geoms[plan.added]), "areas": [float(a) for a in added_areas], "source": source})
    reshaped_areas = area_m2(geoms[plan.reshaped]) if plan.reshaped else np.zeros(0)
    conn.execute(text(
        "UPDATE grids g SET name = u.name, geom = ST_Multi(ST_GeomFromEWKB(decode(u.wkb, 'hex'))), "
        "area_m2 = u.area, population = NULL, synthetic = false, source = :source "
        "FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:wkbs AS text[]), "
        "CAST(:areas AS float8[])) AS u(code, name, wkb, area) WHERE g.code = u.code"),
        {"codes": [codes[i] for i in plan.reshaped], "names": names(plan.reshaped),
         "wkbs": _wkb_hex(geoms[plan.reshaped]), "areas": [float(a) for a in reshaped_areas], "source": source})
    conn.execute(text("UPDATE grids g SET name = u.name FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[])) "
                      "AS u(code, name) WHERE g.code = u.code"),
                 {"codes": [codes[i] for i in plan.renamed], "names": names(plan.renamed)})
    grid_ids: dict[str, int] = dict(conn.execute(text("SELECT code, id FROM grids")).all())

    # 2. what points at a grid follows its new grid, before the removed grids go
    keys = plan.persons["person_key"].tolist()
    targets = [None if pd.isna(code) else grid_ids[code] for code in plan.persons["to_code"]]
    conn.execute(text(
        "UPDATE persons p SET grid_id = m.grid_id, "
        "  unplaced_reason = CASE WHEN m.grid_id IS NULL THEN CAST(:why AS text) END, "
        "  method = CASE WHEN m.grid_id IS NULL THEN NULL ELSE p.method END, "
        "  confidence = CASE WHEN m.grid_id IS NULL THEN 0 ELSE p.confidence END, updated_at = :now "
        "FROM unnest(CAST(:keys AS text[]), CAST(:grids AS int[])) AS m(person_key, grid_id) "
        "WHERE p.person_key = m.person_key"), {"keys": keys, "grids": targets, "why": OUTSIDE_NEW_GRIDS, "now": now})
    conn.execute(text("UPDATE flags f SET grid_id = p.grid_id, unplaced_reason = p.unplaced_reason, updated_at = :now "
                      "FROM persons p WHERE p.person_key = f.person_key AND f.person_key = ANY(:keys)"),
                 {"keys": keys, "now": now})
    conn.execute(text("UPDATE task_requests r SET grid_id = p.grid_id FROM persons p "
                      "WHERE p.person_key = r.person_key AND r.status = 'pending' AND r.person_key = ANY(:keys)"),
                 {"keys": keys})
    for table, moves in (("checkpoints", plan.checkpoints), ("leads", plan.leads)):
        conn.execute(text(f"UPDATE {table} k SET grid_id = m.grid_id FROM unnest(CAST(:ids AS bigint[]), "
                          "CAST(:grids AS int[])) AS m(id, grid_id) WHERE k.id = m.id"),
                     {"ids": [i for i, _ in moves], "grids": [grid_ids[c] for _, c in moves]})
    system = Actor.system()
    by = f"操作人 / by {actor.username}"
    for move in preview.tasks:
        conn.execute(text("UPDATE tasks SET grid_id = :g, grid_code = :code WHERE id = :id"),
                     {"g": grid_ids[move.to_code], "code": move.to_code, "id": move.task_id})
        version = tasks.task_row(conn, system, move.task_id, now, lock=True).version
        tasks.transition(conn, system, move.task_id, "regrid", version,
                         {"reason": CHANGE_REASON.format(old=move.from_code, new=move.to_code),
                          "from_grid": move.from_code, "to_grid": move.to_code, "note": by}, now)

    # 3. the removed grids go (their assignments and H3 cells with them); the changed ones get new cells
    removed_ids = [plan.stored_ids[c] for c in plan.removed]
    dropped = conn.execute(text("SELECT count(*) FROM user_grids WHERE grid_id = ANY(:ids)"),
                           {"ids": removed_ids}).scalar_one()
    conn.execute(text("DELETE FROM grids WHERE id = ANY(:ids)"), {"ids": removed_ids})
    rows = plan.added + plan.reshaped
    cells = repository.replace_cells_of(
        conn, gpd.GeoDataFrame({"code": [codes[i] for i in rows]}, geometry=list(geoms[rows]), crs=4326), grid_ids)
    repository.refresh_outlines(conn, plan.scope_ids)

    # 4. a moved task whose worker does not own its new grid goes back to dispatch, and out again
    redispatched = []
    for move in preview.tasks:
        row = tasks.task_row(conn, system, move.task_id, now, lock=True)
        if row.status not in RECALLABLE or row.assignee_id is None or conn.execute(text(
                "SELECT 1 FROM user_grids WHERE user_id = :u AND grid_id = :g"),
                {"u": row.assignee_id, "g": row.grid_id}).first():
            continue
        reason = CHANGE_REASON.format(old=move.from_code, new=move.to_code)
        task = tasks.transition(conn, system, move.task_id, "recall", row.version, {"reason": reason, "note": by},
                                now)["task"]
        try:
            tasks.transition(conn, system, move.task_id, "dispatch", task["version"], {}, now, avoid=row.assignee_id)
        except Conflict as exc:  # nobody on duty nearby: it waits for a supervisor, as a new task would
            if exc.code != "no_worker_on_duty":
                raise
        redispatched.append(move.task_id)

    # 5. persons per grid and colour, counted again where anybody came or went
    touched = sorted({grid_ids[c] for c in codes} | set(removed_ids)
                     | {grid_ids[c] for c in plan.persons["to_code"].dropna()})
    conn.execute(text("DELETE FROM grid_colour_counts WHERE grid_id = ANY(:ids)"), {"ids": touched})
    conn.execute(text("INSERT INTO grid_colour_counts (grid_id, colour, persons) SELECT grid_id, colour, count(*) "
                      "FROM persons WHERE grid_id = ANY(:ids) GROUP BY grid_id, colour"), {"ids": touched})

    applied = AppliedChange(preview, len(plan.persons), preview.persons_unplaced, [t.task_id for t in preview.tasks],
                            redispatched, int(dropped), cells, repository.grids_version(conn))
    record_read(conn, actor, "grids.apply", f"{grid_file.path.name} ({', '.join(preview.communities)})",
                summary(applied), client)
    return applied


def summary(applied: AppliedChange) -> str:
    """One line of what a change did (the audit log's reason)."""
    n = applied.preview.counts()
    return (f"新增 {n['added']}、删除 {n['removed']}、调整 {n['reshaped']}、改名 {n['renamed']} 个网格；"
            f"人员移动 {applied.persons_moved}（未落位 {applied.persons_unplaced}）；"
            f"任务移动 {len(applied.tasks_moved)}"
            f"（重新派遣 {len(applied.tasks_redispatched)}）；取消网格分配 {applied.assignments_dropped} / grids "
            f"+{n['added']} -{n['removed']} reshaped {n['reshaped']} renamed {n['renamed']}; persons moved "
            f"{applied.persons_moved} (unplaced {applied.persons_unplaced}); tasks moved {len(applied.tasks_moved)} "
            f"(back to dispatch {len(applied.tasks_redispatched)}); assignments dropped {applied.assignments_dropped}")


def applied_changes(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The latest boundary changes applied (from the audit log): when, who, which file and communities, what."""
    rows = conn.execute(text("SELECT at, username, subject, reason FROM audit_log WHERE action = 'grids.apply' "
                             "ORDER BY at DESC, id DESC LIMIT :limit"), {"limit": limit}).mappings().all()
    return [dict(row) for row in rows]
