"""The fast, exact point-in-grid locator.

A regular longitude/latitude raster (``STEP`` = 1e-4°, about 10 m) covers the
district. Every raster cell is one of:

* **interior** — the cell (grown by ``MARGIN``) lies wholly inside one grid: a
  point there needs only an array look-up;
* **outside** — wholly outside every grid;
* **edge** — the grown cell meets a grid boundary; it keeps the short list of
  grids it meets, and a point there gets an exact GEOS test
  (``shapely.intersects_xy``) against those candidates only. Where the grids
  together cover the cell, a point in none of the other candidates is in the
  last one, so the last one is never tested.

How it is built: boundary vertices and points every half cell along every
edge mark the cells near a boundary; those (and their neighbours) are tested
exactly against the grids with an STRtree. The remaining cells form connected
regions that no boundary crosses; each region is labelled (scipy) and its grid
found from one representative point.

Rule for points exactly on a shared edge or vertex: the point goes to the
grid that comes first in the locator's order (the grids are sorted by code, so
the lowest grid code wins). A point on the district's outer edge belongs to
the grid inside. Answers agree with GEOS ``intersects`` under that rule.

>>> locator = GridLocator(codes, geoms)                 # doctest: +SKIP
>>> locator.locate(np.array([113.15]), np.array([23.03]))  # doctest: +SKIP
array([412])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

if TYPE_CHECKING:
    from gis.crs import Geometries

STEP = 1e-4
MARGIN = 1e-9  # cells are grown by this much before testing: far above float rounding of the look-up
OUTSIDE = -1
EDGE = -2


class GridLocator:
    """Exact point-in-grid for arrays of points; indices refer to the sorted ``codes``."""

    def __init__(self, codes: Sequence[str] | np.ndarray, geoms: Geometries, step: float = STEP,
                 tables: dict[str, np.ndarray] | None = None) -> None:
        order = np.argsort(np.asarray(codes, dtype=object).astype(str), kind="stable")
        self.codes = np.asarray(codes, dtype=object)[order]
        self.geoms = np.asarray(geoms, dtype=object)[order]
        shapely.prepare(self.geoms)
        self.step = step
        minx, miny, maxx, maxy = shapely.total_bounds(self.geoms)
        self.x0, self.y0 = minx - 2 * step, miny - 2 * step
        self.nx = int(np.ceil((maxx - self.x0) / step)) + 2
        self.ny = int(np.ceil((maxy - self.y0) / step)) + 2
        if tables is None:
            self._build()
        else:
            self.raster, self.edge_cells = tables["raster"], tables["edge_cells"]
            self.edge_start, self.edge_candidates = tables["edge_start"], tables["edge_candidates"]
            self.edge_covered = tables["edge_covered"]
        # an edge cell's row in the tables, by hash: a binary search over all the edge cells was a large share
        # of locate()
        self._edge_row = pd.Index(self.edge_cells)
        self._edge_row.get_indexer(self.edge_cells[:1])  # builds the hash table now, not in the first locate

    TABLES = ("raster", "edge_cells", "edge_start", "edge_candidates", "edge_covered")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Keep the look-up tables (about 50 MB) so the next run skips the build."""
        np.savez(path, step=self.step, codes=self.codes.astype(str), **{k: getattr(self, k) for k in self.TABLES})

    @classmethod
    def load(cls, path: str | os.PathLike[str], codes: Sequence[str] | np.ndarray,
             geoms: Geometries) -> GridLocator:
        """Rebuild a locator from saved tables; ``codes``/``geoms`` must be the grids it was built from."""
        with np.load(path) as saved:
            if sorted(map(str, codes)) != list(saved["codes"]):
                raise ValueError("saved locator tables belong to other grids")
            return cls(codes, geoms, float(saved["step"]), {k: saved[k] for k in cls.TABLES})

    # -- building ------------------------------------------------------------------------------
    def _cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.floor((x - self.x0) / self.step).astype(np.int64),
                np.floor((y - self.y0) / self.step).astype(np.int64))

    def _boundary_samples(self) -> tuple[np.ndarray, np.ndarray]:
        boundaries = shapely.segmentize(shapely.boundary(self.geoms), self.step / 2)
        coords = shapely.get_coordinates(boundaries)
        return coords[:, 0], coords[:, 1]

    def _build(self) -> None:
        x, y = self._boundary_samples()
        ix, iy = self._cell_of(x, y)
        near = np.zeros((self.ny, self.nx), dtype=bool)
        near[iy, ix] = True
        near = ndimage.binary_dilation(near, structure=np.ones((5, 5), dtype=bool))
        rows, cols = np.nonzero(near)
        boxes = shapely.box(self.x0 + cols * self.step - MARGIN, self.y0 + rows * self.step - MARGIN,
                            self.x0 + (cols + 1) * self.step + MARGIN, self.y0 + (rows + 1) * self.step + MARGIN)
        tree = shapely.STRtree(self.geoms)
        box_idx, grid_idx = tree.query(boxes, predicate="intersects")
        hits = np.bincount(box_idx, minlength=len(boxes))
        single = np.flatnonzero(hits == 1)
        single_grid = np.full(len(boxes), -1)
        single_grid[box_idx] = grid_idx  # only read where hits == 1
        covered = np.zeros(len(boxes), dtype=bool)
        covered[single] = shapely.covers(self.geoms[single_grid[single]], boxes[single])
        raster = np.full((self.ny, self.nx), OUTSIDE, dtype=np.int16 if len(self.geoms) < 32_000 else np.int32)
        raster[rows[covered], cols[covered]] = single_grid[covered]
        is_edge = (hits >= 1) & ~covered
        raster[rows[is_edge], cols[is_edge]] = EDGE

        # Candidate grids of each edge cell, in locator order, as a CSR table keyed by flat cell index.
        keep = is_edge[box_idx]
        flat = rows[box_idx[keep]] * self.nx + cols[box_idx[keep]]
        order = np.lexsort((grid_idx[keep], flat))
        flat, cand = flat[order], grid_idx[keep][order]
        self.edge_cells, starts = np.unique(flat, return_index=True)
        self.edge_start = np.append(starts, len(flat))
        self.edge_candidates = cand
        # An edge cell that the union of all grids covers lies in its candidates and nowhere else,
        # so a point that is in none of the others is in the last one: one GEOS test saved per point.
        district = shapely.union_all(self.geoms)
        shapely.prepare(district)
        ex, ey = self.edge_cells % self.nx, self.edge_cells // self.nx
        edge_boxes = shapely.box(self.x0 + ex * self.step - MARGIN, self.y0 + ey * self.step - MARGIN,
                                 self.x0 + (ex + 1) * self.step + MARGIN, self.y0 + (ey + 1) * self.step + MARGIN)
        self.edge_covered = shapely.covers(district, edge_boxes)

        # Cells far from every boundary: label connected regions, find each region's grid once.
        free = ~near
        labels, count = ndimage.label(free)
        if count:
            flat_labels = labels.ravel()
            first = np.full(count + 1, -1, dtype=np.int64)
            positions = np.flatnonzero(flat_labels)
            first[flat_labels[positions][::-1]] = positions[::-1]
            reps = first[1:]
            rx = self.x0 + (reps % self.nx + 0.5) * self.step
            ry = self.y0 + (reps // self.nx + 0.5) * self.step
            region_grid = np.full(count + 1, OUTSIDE, dtype=np.int64)
            p_idx, g_idx = tree.query(shapely.points(rx, ry), predicate="intersects")
            region_grid[p_idx + 1] = g_idx
            raster[free] = region_grid[labels[free]]
        self.raster = raster.ravel()

    # -- querying --------------------------------------------------------------------------------
    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Grid index (into ``self.codes``) of each point, or -1 when it lies in no grid."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        fx = lon - self.x0
        fx *= 1.0 / self.step
        fy = lat - self.y0
        fy *= 1.0 / self.step
        with np.errstate(invalid="ignore"):  # NaN casts to garbage here; the careful branch below drops it
            ix, iy = fx.astype(np.int64), fy.astype(np.int64)  # truncation is floor where it matters (>= 0)
        # Written so that NaN coordinates take the careful branch (and come out as OUTSIDE).
        if len(lon) and not (fx.min() >= 0 and fy.min() >= 0 and ix.max() < self.nx and iy.max() < self.ny):
            inside = (fx >= 0) & (ix < self.nx) & (fy >= 0) & (iy < self.ny)
            ix[~inside], iy[~inside] = 0, 0
        else:
            inside = None
        flat = iy
        flat *= self.nx
        flat += ix
        result = self.raster[flat].astype(np.int64)
        if inside is not None:
            result[~inside] = OUTSIDE
        edge = np.flatnonzero(result == EDGE)
        if len(edge):
            result[edge] = self._exact(lon[edge], lat[edge], flat[edge])
        return result

    def _exact(self, lon: np.ndarray, lat: np.ndarray, flat: np.ndarray) -> np.ndarray:
        row = self._edge_row.get_indexer(flat)
        start, stop = self.edge_start[row], self.edge_start[row + 1]
        covered = self.edge_covered[row]
        # In a covered cell the last candidate needs no test (see _build).
        counts = stop - start - covered
        # Every (point, candidate) pair in one vectorised GEOS call; candidates are in locator order,
        # so the first hit of each point is the lowest-ranked grid that holds it.
        point = np.repeat(np.arange(len(lon)), counts)
        offset = np.arange(len(point)) - np.repeat(np.cumsum(counts) - counts, counts)
        grid = self.edge_candidates[np.repeat(start, counts) + offset]
        hit = shapely.intersects_xy(self.geoms[grid], lon[point], lat[point])
        answer = np.where(covered, self.edge_candidates[stop - 1], OUTSIDE).astype(np.int64)
        hit_point, hit_grid = point[hit][::-1], grid[hit][::-1]
        answer[hit_point] = hit_grid  # written last for the first (lowest) candidate
        return answer

    def codes_of(self, index: np.ndarray) -> np.ndarray:
        """Grid codes for located indices (None where -1)."""
        out = np.full(len(index), None, dtype=object)
        hit = index >= 0
        out[hit] = self.codes[index[hit]]
        return out
