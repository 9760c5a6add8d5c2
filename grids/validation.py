"""Validate a set of grids: geometry, codes, overlaps, gaps, and fit to the district.

Errors block an import; warnings are reported but do not. What counts as which:

=====================  ========  =================================================
kind                   severity  meaning
=====================  ========  =================================================
empty_geometry         error     the feature has no geometry
not_polygon            error     the geometry is not a (multi)polygon
invalid_geometry       error     self-intersection, bad ring, … (GEOS's reason)
bad_code               error     the code breaks the 15-digit rule
wrong_district         error     the code does not start with the district code
unknown_community      error     the first 12 digits name no known community
duplicate_code         error     two features carry the same code
overlap                error     two grids overlap by more than the tolerance
gap                    error     a hole between grids larger than the tolerance
outside_district       error     more than half of the grid lies outside the district
beyond_outline         warning   part of the grid (over the tolerance) is outside
uncovered_edge         warning   district area along its edge that no grid covers
=====================  ========  =================================================

Gaps, overlaps and uncovered edges count only when larger than the area
tolerance (1 m²) *and* wider on average than ``MIN_WIDTH_M`` (5 cm): thinner
slivers are floating-point residue of snapping and clipping, not digitising
errors. Real boundaries rarely follow the simplified outline to the metre, so a
mismatch along the district edge is a warning; a hole between grids is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.crs import Geometries, area_m2, mean_width_m
from grids.hierarchy import grid_code_problem

TOLERANCE_M2 = 1.0
MIN_WIDTH_M = 0.05


def _significant(geoms: Geometries, tolerance_m2: float) -> np.ndarray:
    """Which of ``geoms`` are real findings: over the area tolerance and not a mere sliver."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return np.zeros(0, dtype=bool)
    return (area_m2(geoms) > tolerance_m2) & (mean_width_m(geoms) > MIN_WIDTH_M)


@dataclass(frozen=True)
class GridProblem:
    """One finding about one feature (or a pair of features, or the set as a whole)."""

    feature: str
    kind: str
    severity: str
    reason: str
    area_m2: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_label(index: int, code: object) -> str:
    """How a feature is named in messages: its 1-based position and its code."""
    return f"#{index + 1} ({code})" if code not in (None, "") else f"#{index + 1}"


def check_grids(codes: Iterable[object], geoms: Geometries, outline: BaseGeometry | None = None,
                district_code: str | None = None, communities: set[str] | None = None,
                tolerance_m2: float = TOLERANCE_M2) -> list[GridProblem]:
    """Return every problem of the grids ``codes``/``geoms`` (WGS84), errors first.

    Examples
    --------
    >>> from shapely import box
    >>> [p.kind for p in check_grids(["440605011001001", "440605011001001"],
    ...                              [box(0, 0, 1, 1), box(1, 0, 2, 1)])]
    ['duplicate_code']
    """
    texts = ["" if c is None else str(c) for c in codes]
    geoms = np.array(list(geoms), dtype=object)
    labels = [feature_label(i, c) for i, c in enumerate(texts)]
    problems: list[GridProblem] = []
    problems += _code_problems(texts, labels, district_code, communities)

    usable = np.zeros(len(geoms), dtype=bool)
    for i, geom in enumerate(geoms):
        if geom is None or shapely.is_empty(geom):
            problems.append(GridProblem(labels[i], "empty_geometry", "error", "没有几何 / no geometry"))
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(GridProblem(labels[i], "not_polygon", "error",
                                        f"几何类型必须是面 / geometry must be a polygon, got {geom.geom_type}"))
        elif not geom.is_valid:
            problems.append(GridProblem(labels[i], "invalid_geometry", "error",
                                        f"无效几何 / invalid geometry: {shapely.is_valid_reason(geom)}"))
        else:
            usable[i] = True
    index = np.flatnonzero(usable)
    good = geoms[index]
    if len(good):
        problems += _overlaps(good, [labels[i] for i in index], tolerance_m2)
        problems += _fit(good, [labels[i] for i in index], outline, tolerance_m2)
    return sorted(problems, key=lambda p: p.severity != "error")


def _code_problems(codes: list[str], labels: list[str], district_code: str | None,
                   communities: set[str] | None) -> list[GridProblem]:
    problems = []
    seen: dict[str, int] = {}
    for i, code in enumerate(codes):
        reason = grid_code_problem(code)
        if reason:
            problems.append(GridProblem(labels[i], "bad_code", "error", reason))
            continue
        if district_code and not code.startswith(district_code):
            problems.append(GridProblem(labels[i], "wrong_district", "error",
                                        f"编码不属于本区 {district_code} / code is not in district {district_code}"))
        elif communities is not None and code[:12] not in communities:
            problems.append(GridProblem(labels[i], "unknown_community", "error",
                                        f"社区编码 {code[:12]} 不存在 / no community with code {code[:12]}"))
        if code in seen:
            problems.append(GridProblem(labels[i], "duplicate_code", "error",
                                        f"编码与 {labels[seen[code]]} 重复 / same code as {labels[seen[code]]}"))
        else:
            seen[code] = i
    return problems


def _overlaps(geoms: np.ndarray, labels: list[str], tolerance_m2: float) -> list[GridProblem]:
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if not len(left):
        return []
    shared = shapely.intersection(geoms[left], geoms[right])
    areas = area_m2(shared)
    real = _significant(shared, tolerance_m2)
    return [GridProblem(f"{labels[a]} × {labels[b]}", "overlap", "error",
                        f"两个网格重叠 {area:.1f} m² / grids overlap by {area:.1f} m²", float(area))
            for a, b, area, keep in zip(left, right, areas, real, strict=True) if keep]


def _fit(geoms: np.ndarray, labels: list[str], outline: BaseGeometry | None,
         tolerance_m2: float) -> list[GridProblem]:
    problems = []
    union = shapely.union_all(geoms)
    holes = [shapely.Polygon(ring) for poly in shapely.get_parts(union) for ring in poly.interiors]
    for hole, real in zip(holes, _significant(holes, tolerance_m2), strict=True):
        area = area_m2([hole])[0]
        if real and (outline is None or shapely.covers(shapely.buffer(outline, 1e-6), hole)):
            point = shapely.point_on_surface(hole)
            problems.append(GridProblem(f"({point.x:.6f}, {point.y:.6f})", "gap", "error",
                                        f"网格之间有 {area:.1f} m² 的空隙 / gap of {area:.1f} m² between grids",
                                        float(area)))
    if outline is None:
        return problems
    beyond = shapely.difference(geoms, outline)
    outside = area_m2(beyond)
    total = area_m2(geoms)
    real = _significant(beyond, tolerance_m2)
    for label, out, whole, keep in zip(labels, outside, total, real, strict=True):
        if whole > 0 and out / whole > 0.5:
            problems.append(GridProblem(label, "outside_district", "error",
                                        f"网格 {out / whole:.0%} 在本区之外 / {out / whole:.0%} of the grid lies "
                                        "outside the district", float(out)))
        elif keep:
            problems.append(GridProblem(label, "beyond_outline", "warning",
                                        f"超出区界 {out:.1f} m² / extends {out:.1f} m² beyond the outline", float(out)))
    uncovered = shapely.get_parts(shapely.difference(outline, union))
    for part, real in zip(uncovered, _significant(uncovered, tolerance_m2), strict=True):
        area = area_m2([part])[0]
        # Uncovered parts away from the outline's edge are holes, already reported as gaps.
        if real and shapely.distance(part, outline.boundary) < 1e-7:
            point = shapely.point_on_surface(part)
            problems.append(GridProblem(f"({point.x:.6f}, {point.y:.6f})", "uncovered_edge", "warning",
                                        f"区内 {area:.1f} m² 未被任何网格覆盖 / {area:.1f} m² of the district "
                                        "is in no grid", float(area)))
    return problems


def has_errors(problems: Sequence[GridProblem]) -> bool:
    """True when any problem blocks an import."""
    return any(p.severity == "error" for p in problems)
