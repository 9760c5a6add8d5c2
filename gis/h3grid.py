"""H3 helpers (h3 v4): cells as int64, cell polygons as shapely arrays, polygon covers.

>>> cell = h3.latlng_to_cell(23.03, 113.15, 10)
>>> int(cells_to_polygons([h3.str_to_int(cell)])[0].contains(shapely.Point(113.15, 23.03)))
1
"""

from __future__ import annotations

from collections.abc import Iterable

import h3
import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry


def cells_to_polygons(cells: Iterable[int | np.integer]) -> np.ndarray:
    """Shapely polygons (lon/lat) of integer H3 cells."""
    rings = [[(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(int(c)))] for c in cells]
    return np.array([shapely.Polygon(ring) for ring in rings], dtype=object)


def cell_centres(cells: Iterable[int | np.integer]) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude arrays of the centres of integer H3 cells."""
    latlng = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in cells]).reshape(-1, 2)
    return latlng[:, 1], latlng[:, 0]


def covering_cells(geom: BaseGeometry, resolution: int) -> np.ndarray:
    """Every H3 cell at ``resolution`` that overlaps ``geom`` at all, as sorted int64."""
    shape = h3.geo_to_h3shape(mapping(geom))
    cells = h3.h3shape_to_cells_experimental(shape, resolution, contain="overlap")
    return np.sort(np.array([h3.str_to_int(c) for c in cells], dtype=np.int64))
