"""The locator against GEOS on random and adversarial points."""

import numpy as np
import pytest
import shapely
from shapely import box

from grids import repository
from grids.population import NANHAI_POPULATION
from matching.locator import GridLocator


def reference(locator: GridLocator, lon, lat) -> np.ndarray:
    """GEOS answer under the documented rule: the first grid (in code order) whose closure holds the point."""
    expected = np.full(len(lon), -1)
    point, grid = shapely.STRtree(locator.geoms).query(shapely.points(lon, lat), predicate="intersects")
    order = np.lexsort((-grid, point))
    expected[point[order]] = grid[order]
    return expected


@pytest.fixture(scope="module")
def locator(seeded_engine):
    with seeded_engine.connect() as conn:
        grids = repository.load_grids(conn)
    return GridLocator(grids["code"].to_numpy(), grids.geometry.values)


def test_random_points_like_the_population(locator):
    district = shapely.union_all(locator.geoms)
    xy = NANHAI_POPULATION.sample(district, 200_000, np.random.default_rng(11))
    minx, miny, maxx, maxy = district.bounds
    rng = np.random.default_rng(12)
    uniform = np.column_stack([rng.uniform(minx - 0.01, maxx + 0.01, 100_000),
                               rng.uniform(miny - 0.01, maxy + 0.01, 100_000)])
    lon, lat = np.concatenate([xy[:, 0], uniform[:, 0]]), np.concatenate([xy[:, 1], uniform[:, 1]])
    assert np.array_equal(locator.locate(lon, lat), reference(locator, lon, lat))


def test_vertices_shared_edges_and_just_outside(locator):
    coords = shapely.get_coordinates(shapely.boundary(locator.geoms))
    vertices = coords
    midpoints = (coords[:-1] + coords[1:]) / 2  # on an edge, usually one shared by two grids
    outline = shapely.union_all(locator.geoms)
    ring = shapely.get_coordinates(outline.boundary)
    centre = np.array([outline.centroid.x, outline.centroid.y])
    pushed = ring + (ring - centre) * 1e-9  # a hair outside (or inside, in a bay) the district
    points = np.vstack([vertices, midpoints, pushed, ring])
    got = locator.locate(points[:, 0], points[:, 1])
    assert np.array_equal(got, reference(locator, points[:, 0], points[:, 1]))
    assert (got[: len(vertices)] >= 0).all()  # every grid vertex is in some grid


def test_points_on_a_shared_edge_go_to_the_lower_code():
    left, right = box(113.0, 23.0, 113.01, 23.01), box(113.01, 23.0, 113.02, 23.01)
    locator = GridLocator(["440605011001002", "440605011001001"], [right, left])
    got = locator.locate(np.array([113.01, 113.01, 113.005, 113.015, 113.03, np.nan]),
                         np.array([23.005, 23.01, 23.005, 23.005, 23.005, 23.005]))
    assert list(locator.codes_of(got)) == ["440605011001001", "440605011001001", "440605011001001",
                                           "440605011001002", None, None]


def test_saved_tables_give_the_same_answers(locator, tmp_path):
    path = tmp_path / "locator.npz"
    locator.save(path)
    again = GridLocator.load(path, locator.codes, locator.geoms)
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(112.9, 113.2, 50_000), rng.uniform(22.85, 23.25, 50_000)
    assert np.array_equal(again.locate(lon, lat), locator.locate(lon, lat))
    with pytest.raises(ValueError, match="other grids"):
        GridLocator.load(path, locator.codes[:-1], locator.geoms[:-1])
