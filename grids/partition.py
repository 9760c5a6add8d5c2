"""Cut a polygon into parts of roughly equal population.

The method: sample points from the population surface inside the polygon,
cluster them with k-means (Lloyd's algorithm, k-means++ start, a seeded
generator), and clip the Voronoi diagram of the cluster centres to the
polygon. Parts are then equal in sampled population, so they are small where
people are dense. Voronoi cells of one diagram share their edges exactly, and
every part is clipped by the same polygon, so the parts tile it. A non-convex
polygon can cut a cell in two; each stray piece joins the neighbour it shares
the longest edge with, so every part is one piece.

>>> from shapely import box
>>> import numpy as np
>>> from grids.population import NANHAI_POPULATION
>>> parts = partition(box(113.0, 23.0, 113.1, 23.1), 4, NANHAI_POPULATION, np.random.default_rng(1))
>>> len(parts), round(sum(p.area for p in parts), 6)
(4, 0.01)
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry.base import BaseGeometry

from grids.population import PopulationSurface


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 30) -> np.ndarray:
    """Return ``k`` cluster centres of ``points`` (k-means++ start, Lloyd iterations)."""
    seeds = [points[rng.integers(len(points))]]
    d2 = ((points - seeds[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        probabilities = d2 / d2.sum() if d2.sum() > 0 else None
        seeds.append(points[rng.choice(len(points), p=probabilities)])
        d2 = np.minimum(d2, ((points - seeds[-1]) ** 2).sum(axis=1))
    centres = np.array(seeds)
    for _ in range(iterations):
        labels = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        moved = centres.copy()
        for j in range(k):
            members = points[labels == j]
            if len(members):
                moved[j] = members.mean(axis=0)
        if np.allclose(moved, centres, atol=1e-9):
            break
        centres = moved
    return centres


def _pieces(geom: BaseGeometry) -> list[Polygon]:
    return [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]


def voronoi_clip(polygon: BaseGeometry, centres: np.ndarray) -> list[BaseGeometry]:
    """Clip the Voronoi cells of ``centres`` to ``polygon``, one geometry per centre, in order."""
    if len(centres) == 1:
        return [polygon]
    minx, miny, maxx, maxy = polygon.bounds
    frame = shapely.box(minx - 1, miny - 1, maxx + 1, maxy + 1)
    cells = shapely.voronoi_polygons(MultiPoint(centres), extend_to=frame, ordered=True)
    return [shapely.intersection(cell, polygon) for cell in shapely.get_parts(cells)]


def merge_strays(parts: list[BaseGeometry]) -> list[BaseGeometry]:
    """Make every part one polygon: extra pieces join the neighbour with the longest shared edge."""
    keep: list[BaseGeometry] = []  # a Polygon each, until a stray island joins one
    strays: list[Polygon] = []
    for part in parts:
        pieces = sorted(_pieces(part), key=lambda p: p.area, reverse=True)
        keep.append(pieces[0] if pieces else Polygon())
        strays.extend(pieces[1:])
    for stray in sorted(strays, key=lambda p: p.area, reverse=True):
        shared = [shapely.length(shapely.intersection(stray.boundary, k.boundary)) if not k.is_empty else 0.0
                  for k in keep]
        best = int(np.argmax(shared))
        if shared[best] == 0:  # touches nobody: an island; keep it with the nearest part
            best = int(np.argmin([stray.distance(k) for k in keep]))
        keep[best] = shapely.union(keep[best], stray)
    return keep


def partition(polygon: BaseGeometry, k: int, surface: PopulationSurface, rng: np.random.Generator,
              samples_per_part: int = 60) -> list[BaseGeometry]:
    """Cut ``polygon`` into ``k`` parts of about equal population, ordered north-west to south-east."""
    if k == 1:
        return [polygon]
    points = surface.sample(polygon, max(samples_per_part * k, 400), rng)
    centres = kmeans(points, k, rng)
    parts = merge_strays(voronoi_clip(polygon, centres))
    parts = [p for p in parts if not p.is_empty]
    if len(parts) != k:
        raise RuntimeError(f"partition produced {len(parts)} parts instead of {k}")
    order = sorted(range(k), key=lambda i: (-round(parts[i].centroid.y, 3), parts[i].centroid.x))
    return [parts[i] for i in order]
