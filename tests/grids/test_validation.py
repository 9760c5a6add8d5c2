"""Every finding of the grid check, on small hand-made grids (codes in community 440605011001)."""

import shapely
from shapely import box

from grids.validation import check_grids, has_errors

OUTLINE = box(113.0, 23.0, 113.02, 23.01)
COMMUNITIES = {"440605011001"}


def code(n: int) -> str:
    return f"440605011001{n:03d}"


def kinds(codes, geoms, outline=OUTLINE):
    return sorted(p.kind for p in check_grids(codes, geoms, outline, "440605", COMMUNITIES))


def test_a_clean_tiling_has_no_findings():
    grids = [box(113.0, 23.0, 113.01, 23.01), box(113.01, 23.0, 113.02, 23.01)]
    assert check_grids([code(1), code(2)], grids, OUTLINE, "440605", COMMUNITIES) == []


def test_codes():
    grids = [box(113.0, 23.0, 113.005, 23.01), box(113.005, 23.0, 113.01, 23.01),
             box(113.01, 23.0, 113.015, 23.01), box(113.015, 23.0, 113.02, 23.01)]
    found = check_grids(["12345", "440605011001001", "440605011001001", "440605999001001"], grids, OUTLINE,
                        "440605", COMMUNITIES)
    assert sorted(p.kind for p in found) == ["bad_code", "duplicate_code", "unknown_community"]
    duplicate = next(p for p in found if p.kind == "duplicate_code")
    assert duplicate.feature == "#3 (440605011001001)" and "#2" in duplicate.reason
    assert kinds(["440606011001001"], [OUTLINE]) == ["wrong_district"]


def test_geometry_problems_name_the_feature():
    bowtie = shapely.Polygon([(113.0, 23.0), (113.02, 23.01), (113.02, 23.0), (113.0, 23.01)])
    found = check_grids([code(1), code(2), code(3)], [bowtie, None, shapely.LineString([(113, 23), (113.1, 23)])],
                        OUTLINE, "440605", COMMUNITIES)
    by_kind = {p.kind: p for p in found}
    assert set(by_kind) >= {"invalid_geometry", "empty_geometry", "not_polygon"}
    assert "Self-intersection" in by_kind["invalid_geometry"].reason
    assert by_kind["empty_geometry"].feature == f"#2 ({code(2)})"


def test_overlap_and_gap():
    overlapping = [box(113.0, 23.0, 113.0105, 23.01), box(113.01, 23.0, 113.02, 23.01)]
    found = check_grids([code(1), code(2)], overlapping, OUTLINE, "440605", COMMUNITIES)
    overlap = next(p for p in found if p.kind == "overlap")
    assert overlap.area_m2 > 1000 and code(1) in overlap.feature and code(2) in overlap.feature
    ring = shapely.difference(OUTLINE, box(113.009, 23.004, 113.011, 23.006))
    assert kinds([code(1)], [ring]) == ["gap"]


def test_slivers_below_five_centimetres_are_not_findings():
    sliver = 1e-8  # about a millimetre
    grids = [box(113.0, 23.0, 113.01, 23.01), box(113.01 + sliver, 23.0, 113.02, 23.01)]
    assert kinds([code(1), code(2)], grids) == []


def test_fit_to_the_district():
    far = box(114.0, 23.0, 114.01, 23.01)
    assert "outside_district" in kinds([code(1)], [far])
    bulging = box(113.0, 23.0, 113.021, 23.01)
    assert kinds([code(1)], [bulging]) == ["beyond_outline"]
    short = box(113.0, 23.0, 113.019, 23.01)
    assert kinds([code(1)], [short]) == ["uncovered_edge"]
    assert not has_errors(check_grids([code(1)], [short], OUTLINE, "440605", COMMUNITIES))


def test_errors_come_before_warnings():
    grids = [box(113.0, 23.0, 113.021, 23.01), box(113.0, 23.0, 113.005, 23.005)]
    found = check_grids([code(1), code(1)], grids, OUTLINE, "440605", COMMUNITIES)
    severities = [p.severity for p in found]
    assert severities == sorted(severities, key=lambda s: s != "error") and "warning" in severities
