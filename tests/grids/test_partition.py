import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from grids.nanhai import allocate
from grids.partition import partition
from grids.population import NANHAI_POPULATION


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 1000), min_size=1, max_size=40), st.integers(0, 500))
def test_allocate_sums_to_total_and_gives_each_at_least_one(weights, extra):
    total = len(weights) + extra
    counts = allocate(np.array(weights), total)
    assert counts.sum() == total and counts.min() >= 1


def test_allocate_follows_weights():
    assert allocate(np.array([1.0, 3.0]), 8).tolist() == [2, 6]


def test_partition_tiles_a_concave_polygon():
    polygon = shapely.difference(shapely.box(113.0, 23.0, 113.1, 23.1), shapely.box(113.03, 23.03, 113.1, 23.07))
    parts = partition(polygon, 9, NANHAI_POPULATION, np.random.default_rng(7))
    assert len(parts) == 9
    assert all(p.geom_type == "Polygon" and p.is_valid for p in parts)
    union = shapely.union_all(parts)
    assert abs(union.area - polygon.area) / polygon.area < 1e-9
    overlaps = sum(shapely.intersection(a, b).area for i, a in enumerate(parts) for b in parts[i + 1:])
    assert overlaps < 1e-12


def test_partition_is_deterministic():
    polygon = shapely.box(113.0, 23.0, 113.05, 23.05)
    first = partition(polygon, 5, NANHAI_POPULATION, np.random.default_rng(3))
    second = partition(polygon, 5, NANHAI_POPULATION, np.random.default_rng(3))
    assert [p.wkb for p in first] == [p.wkb for p in second]


def test_parts_are_smaller_where_people_are_dense():
    # A strip from rural 丹灶/西樵 to the 桂城 core (113.15 E): the smallest part lies at the core,
    # the largest in the countryside, and they differ many times over.
    polygon = shapely.box(112.95, 23.02, 113.16, 23.05)
    parts = partition(polygon, 8, NANHAI_POPULATION, np.random.default_rng(1))
    smallest = min(parts, key=lambda p: p.area)
    largest = max(parts, key=lambda p: p.area)
    assert smallest.centroid.x > 113.10 and largest.centroid.x < 113.05
    assert smallest.area < largest.area / 3
