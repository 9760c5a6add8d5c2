"""The population surface used to size the synthetic reference grids.

Grid sizes in a real district follow population: a worker covers a few hundred
households, so grids are small in dense urban cores and large in farmland. No
open population raster of Nanhai ships with the project, so the surface is a
documented model: a rural floor plus Gaussian bumps at the real built-up
centres (the town seats and the former town seats now inside larger towns),
weighted by how urban they are. 桂城 (千灯湖, 平洲) and 大沥 (城区, 黄岐, 盐步) are the
densest; 西樵, 九江 and 丹灶 the sparsest. The density is relative (people per
unit area, scaled so the district totals ``DISTRICT_POPULATION``).

>>> surface = NANHAI_POPULATION
>>> bool(surface.density([113.15], [23.04])[0] > surface.density([112.90], [22.95])[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from gis.crs import Geometries

DISTRICT_POPULATION = 3_700_000  # 第七次人口普查: 南海区常住人口 366.7 万 (2020), rounded


@dataclass(frozen=True)
class Centre:
    """A built-up centre: peak weight over the rural floor and its spread in kilometres."""

    name: str
    lon: float
    lat: float
    weight: float
    sigma_km: float


NANHAI_CENTRES: tuple[Centre, ...] = (
    Centre("桂城·千灯湖", 113.150, 23.040, 10.0, 2.5),
    Centre("桂城·平洲", 113.195, 23.005, 7.0, 2.0),
    Centre("大沥·城区", 113.110, 23.095, 8.0, 2.5),
    Centre("大沥·黄岐", 113.190, 23.100, 7.0, 2.0),
    Centre("大沥·盐步", 113.160, 23.075, 6.0, 1.8),
    Centre("里水·城区", 113.160, 23.200, 4.0, 2.5),
    Centre("里水·和顺", 113.120, 23.260, 2.5, 2.0),
    Centre("狮山·城区", 113.020, 23.135, 4.0, 3.0),
    Centre("狮山·松岗", 113.075, 23.175, 3.0, 2.5),
    Centre("狮山·官窑", 113.040, 23.210, 2.0, 2.0),
    Centre("狮山·小塘", 112.965, 23.110, 2.0, 2.0),
    Centre("丹灶", 112.920, 23.050, 2.0, 2.5),
    Centre("西樵", 112.955, 22.950, 2.0, 2.5),
    Centre("九江", 112.985, 22.860, 2.0, 2.5),
)

KM_PER_DEG_LAT = 110.57
KM_PER_DEG_LON = 102.4  # at 23° N


@dataclass(frozen=True)
class PopulationSurface:
    """Relative population density: ``floor + Σ weight · exp(-d² / 2σ²)``."""

    centres: tuple[Centre, ...]
    floor: float = 0.08

    def density(self, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
        """Relative density at the given WGS84 points (vectorised)."""
        lon = np.asarray(lon, dtype=float)[..., None]
        lat = np.asarray(lat, dtype=float)[..., None]
        c_lon = np.array([c.lon for c in self.centres])
        c_lat = np.array([c.lat for c in self.centres])
        weight = np.array([c.weight for c in self.centres])
        sigma = np.array([c.sigma_km for c in self.centres])
        d2 = ((lon - c_lon) * KM_PER_DEG_LON) ** 2 + ((lat - c_lat) * KM_PER_DEG_LAT) ** 2
        return self.floor + (weight * np.exp(-d2 / (2 * sigma**2))).sum(axis=-1)

    def sample(self, polygon: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points inside ``polygon`` distributed like the density (rejection sampling)."""
        minx, miny, maxx, maxy = polygon.bounds
        peak = self.floor + sum(c.weight for c in self.centres)
        shapely.prepare(polygon)
        chunks: list[np.ndarray] = []
        have = 0
        while have < n:
            m = max(4 * (n - have), 256)
            xy = np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])
            keep = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
            xy = xy[keep]
            accept = rng.uniform(0, peak, len(xy)) < self.density(xy[:, 0], xy[:, 1])
            chunks.append(xy[accept])
            have += int(accept.sum())
        return np.concatenate(chunks)[:n]

    def mass(self, polygons: Geometries, resolution_deg: float = 0.002) -> np.ndarray:
        """Relative population of each polygon: density integrated on a regular lattice."""
        polygons = np.asarray(polygons)
        minx, miny, maxx, maxy = shapely.total_bounds(polygons)
        xs = np.arange(minx + resolution_deg / 2, maxx, resolution_deg)
        ys = np.arange(miny + resolution_deg / 2, maxy, resolution_deg)
        gx, gy = np.meshgrid(xs, ys)
        points = cast(np.ndarray, shapely.points(gx.ravel(), gy.ravel()))  # arrays in, an array out
        dens = self.density(gx.ravel(), gy.ravel())
        tree = shapely.STRtree(points)
        poly_idx, point_idx = tree.query(polygons, predicate="contains")
        masses = np.bincount(poly_idx, weights=dens[point_idx], minlength=len(polygons))
        # Polygons smaller than a lattice cell still hold people: use their centre's density.
        empty = masses == 0
        if empty.any():
            centres = shapely.point_on_surface(polygons[empty])
            area_cells = shapely.area(polygons[empty]) / resolution_deg**2
            masses[empty] = self.density(shapely.get_x(centres), shapely.get_y(centres)) * area_cells
        return masses


NANHAI_POPULATION = PopulationSurface(NANHAI_CENTRES)
