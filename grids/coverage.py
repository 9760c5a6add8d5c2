"""H3 coverage of the grids: which cells meet which grid, and which lie wholly inside one.

Cells at ``H3_RESOLUTION`` (10: about 0.015 km², 66 m edge) are fine enough
that most of a 0.07 km² urban grid is covered by interior cells, and coarse
enough that the whole district is about 80 thousand rows. A cell crossing a
grid edge is stored once per grid it overlaps, with ``interior`` false; a
cell wholly inside one grid is stored once, with ``interior`` true. Density
maps aggregate to coarser resolutions with ``cell_to_parent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from gis.h3grid import cells_to_polygons, covering_cells

if TYPE_CHECKING:
    from gis.crs import Geometries

H3_RESOLUTION = 10


def grid_cells(grids: Geometries, resolution: int = H3_RESOLUTION) -> pd.DataFrame:
    """Map H3 cells to grids.

    Parameters
    ----------
    grids : array of shapely (Multi)Polygons in WGS84, forming a coverage.
    resolution : H3 resolution.

    Returns
    -------
    DataFrame with ``cell`` (int64), ``grid`` (index into ``grids``), ``interior`` (bool),
    one row per cell and grid whose interiors meet, sorted by cell then grid.
    """
    grids = np.asarray(grids, dtype=object)
    district = shapely.union_all(grids)
    cells = covering_cells(district, resolution)
    polygons = cells_to_polygons(cells)
    tree = shapely.STRtree(grids)
    cell_idx, grid_idx = tree.query(polygons, predicate="intersects")
    interior = shapely.covers(grids[grid_idx], polygons[cell_idx])
    edge = ~interior
    overlap = np.zeros(len(cell_idx), dtype=bool)
    overlap[edge] = shapely.area(shapely.intersection(grids[grid_idx[edge]], polygons[cell_idx[edge]])) > 0
    keep = interior | overlap
    frame = pd.DataFrame({"cell": cells[cell_idx[keep]], "grid": grid_idx[keep], "interior": interior[keep]})
    return frame.sort_values(["cell", "grid"], kind="stable").reset_index(drop=True)
