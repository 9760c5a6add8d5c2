"""The Nanhai reference district: the real outline, towns and communities, synthetic polygons.

Real: the district outline (天地图, CGCS2000), the 7 towns and the 290
village-level units with their NBS 2023 codes (see ``reference/SOURCES.md``;
the 17 virtual industrial-park units are left out: nobody lives in them).
Synthetic, because no open source publishes them: the town, community and
grid polygons. They are generated deterministically from a seed:

1. towns: the Voronoi cells of a few seed points per town (placed on the
   real town seats), clipped to the outline;
2. communities: each town cut into its real number of communities by
   :func:`grids.partition.partition` over the population surface
   (:mod:`grids.population`); the densest parts get the 居委会 (urban) codes;
3. grids: ``GRID_TOTAL`` (1042) grids shared out to the communities by
   population (largest remainder, at least one each), each community cut the
   same way; codes are community code + a 3-digit sequence;
4. all vertices are snapped to a 1e-7° lattice (about 1 cm) and the grids are
   made an edge-matched coverage (GEOS CoverageCleaner: shared edges carry
   identical vertices); community and town polygons are then rebuilt as the
   exact union of their grids, so the hierarchy nests without slivers.

>>> district = build()            # doctest: +SKIP
>>> len(district.grids)           # doctest: +SKIP
1042
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from grids.hierarchy import make_grid_code
from grids.partition import partition
from grids.population import DISTRICT_POPULATION, NANHAI_POPULATION, PopulationSurface

REFERENCE = Path(__file__).resolve().parent / "reference"
DISTRICT_CODE = "440605"
DISTRICT_NAME = "南海区"
GRID_TOTAL = 1042
DEFAULT_SEED = 20200202
GENERATOR = "nanhai-reference-v1"
PRECISION_DEG = 1e-7
GAP_WIDTH_DEG = 1e-6  # slivers narrower than ~10 cm left by clipping are closed
SOURCE = "synthetic: generated inside the real 天地图 outline (gridctl seed nanhai)"

# Seed points of each town's Voronoi region: the town seat and its former town seats.
TOWN_SEEDS: dict[str, tuple[tuple[float, float], ...]] = {
    "440605011": ((113.160, 23.030), (113.210, 23.010), (113.190, 23.050)),   # 桂城街道
    "440605121": ((112.970, 22.840), (113.020, 22.855), (112.880, 22.860)),   # 九江镇
    "440605122": ((112.920, 22.950), (112.960, 22.970), (112.900, 22.900)),   # 西樵镇
    "440605123": ((112.920, 23.060), (112.900, 23.105), (112.940, 23.020)),   # 丹灶镇
    "440605124": ((113.030, 23.140), (113.060, 23.190), (112.990, 23.200), (112.960, 23.150), (113.020, 23.080)),
    "440605125": ((113.120, 23.090), (113.170, 23.100), (113.080, 23.080)),   # 大沥镇
    "440605126": ((113.160, 23.180), (113.140, 23.260), (113.090, 23.250)),   # 里水镇
}
URBAN_UNITS = ("居委会",)


@dataclass
class ReferenceDistrict:
    """The generated district: every table the seed stores, as (Geo)DataFrames in WGS84."""

    seed: int
    outline: MultiPolygon
    towns: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    checkpoints: gpd.GeoDataFrame


def load_outline() -> MultiPolygon:
    """The real district outline (天地图, CGCS2000 taken as WGS84)."""
    raw = json.loads((REFERENCE / "nanhai_district_boundary_tianditu.geojson").read_text(encoding="utf-8"))
    geom = shape(raw["features"][0]["geometry"])
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon):
        raise ValueError(f"the district outline is a {geom.geom_type}, not a polygon")
    return geom


def load_towns() -> pd.DataFrame:
    """The 7 real towns with their NBS codes."""
    towns = pd.read_csv(REFERENCE / "nanhai_towns.csv", dtype=str)
    return towns.rename(columns={"town_name": "name", "nbs_code_9": "code"})[["code", "name"]]


def load_communities(include_parks: bool = False) -> pd.DataFrame:
    """The real village-level units (NBS 2023); without the virtual park units by default."""
    units = pd.read_csv(REFERENCE / "nanhai_villages_nbs2023.csv", dtype=str)
    if not include_parks:
        units = units[units["park_community"] == "0"]
    units = units.rename(columns={"code_12": "code", "town_code_9": "town_code"})
    return units[["code", "name", "name_short", "unit_type", "town_code"]].reset_index(drop=True)


def allocate(weights: np.ndarray, total: int, minimum: int = 1) -> np.ndarray:
    """Share ``total`` items out in proportion to ``weights``, at least ``minimum`` each.

    Items whose proportional share falls below ``minimum`` get ``minimum``; the
    rest share what is left in proportion (repeated until stable), rounded by
    the largest-remainder method so the counts always sum to ``total``.

    >>> allocate(np.array([1.0, 3.0, 0.01]), 9).tolist()
    [2, 6, 1]
    """
    weights = np.asarray(weights, dtype=float)
    if minimum * len(weights) > total:
        raise ValueError(f"cannot give {minimum} to each of {len(weights)} with only {total}")
    floored = np.zeros(len(weights), dtype=bool)
    while True:
        free = total - minimum * floored.sum()
        quota = np.where(floored, minimum, weights / weights[~floored].sum() * free)
        newly = ~floored & (quota < minimum)
        if not newly.any():
            break
        floored |= newly
    counts = np.where(floored, minimum, np.floor(quota)).astype(int)
    remainder = np.where(floored, -1.0, quota - np.floor(quota))
    counts[np.argsort(-remainder, kind="stable")[:total - counts.sum()]] += 1
    return counts


def build_towns(outline: BaseGeometry) -> gpd.GeoDataFrame:
    """Cut the outline into the 7 towns (Voronoi regions of the town seed points)."""
    codes, points = [], []
    for code, seeds in TOWN_SEEDS.items():
        for point in seeds:
            codes.append(code)
            points.append(point)
    frame = shapely.box(*shapely.buffer(outline, 1.0).bounds)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame, ordered=True))
    towns = load_towns()
    geoms = []
    for code in towns["code"]:
        mine = [cells[i] for i, c in enumerate(codes) if c == code]
        geoms.append(shapely.intersection(shapely.union_all(mine), outline))
    return gpd.GeoDataFrame(towns, geometry=geoms, crs=4326)


def _assign_codes(parts: list[BaseGeometry], units: pd.DataFrame, surface: PopulationSurface) -> pd.DataFrame:
    """Give the densest parts the urban (居委会) codes and the rest the village codes."""
    mass = surface.mass(parts)
    density = mass / np.maximum(shapely.area(np.asarray(parts)), 1e-12)
    by_density = np.argsort(-density, kind="stable")
    units = units.assign(urban=~units["unit_type"].isin(URBAN_UNITS)).sort_values(["urban", "code"])
    rows = []
    for part_index, (_, unit) in zip(by_density, units.iterrows(), strict=True):
        rows.append({**unit.drop(labels="urban").to_dict(), "geometry": parts[part_index], "mass": mass[part_index]})
    return pd.DataFrame(rows).sort_values("code").reset_index(drop=True)


def _as_multi(geoms: Iterable[Polygon | MultiPolygon]) -> np.ndarray:
    return np.array([g if isinstance(g, MultiPolygon) else MultiPolygon([g]) for g in geoms])


def _snap(geoms: list[BaseGeometry]) -> np.ndarray:
    return _as_multi(shapely.set_precision(np.asarray(geoms), PRECISION_DEG))


def build(seed: int = DEFAULT_SEED, surface: PopulationSurface = NANHAI_POPULATION) -> ReferenceDistrict:
    """Generate the reference district for ``seed`` (same seed, same district, byte for byte)."""
    rng = np.random.default_rng(seed)
    outline = load_outline()
    towns = build_towns(outline)
    units = load_communities()

    community_rows = []
    for town in towns.itertuples():
        mine = units[units["town_code"] == town.code]
        parts = partition(town.geometry, len(mine), surface, rng)
        community_rows.append(_assign_codes(parts, mine, surface))
    communities = pd.concat(community_rows, ignore_index=True)
    total_mass = communities["mass"].sum()
    communities["population"] = np.round(communities["mass"] / total_mass * DISTRICT_POPULATION).astype(int)
    communities["n_grids"] = allocate(communities["mass"].to_numpy(), GRID_TOTAL)

    grid_rows = []
    for community in communities.itertuples():
        parts = partition(community.geometry, community.n_grids, surface, rng)
        mass = surface.mass(parts)
        share = mass / mass.sum()
        for sequence, (part, fraction) in enumerate(zip(parts, share, strict=True), start=1):
            grid_rows.append({"code": make_grid_code(community.code, sequence),
                              "name": f"{community.name_short}第{sequence}网格",
                              "community_code": community.code,
                              "population": int(round(community.population * fraction)),
                              "geometry": part})
    grids = gpd.GeoDataFrame(grid_rows, crs=4326)
    # shapely 2.2's coverage_clean is newer than types-shapely 2.1: the ignore goes when the stubs know it
    grids["geometry"] = _as_multi(shapely.coverage_clean(  # type: ignore[attr-defined]
        _snap(list(grids.geometry)), snapping_distance=PRECISION_DEG, gap_width=GAP_WIDTH_DEG))

    by_community = grids.groupby("community_code").geometry.apply(lambda g: shapely.coverage_union_all(g.values))
    communities["geometry"] = _as_multi([by_community[c] for c in communities["code"]])
    communities = gpd.GeoDataFrame(communities.drop(columns=["mass", "n_grids"]), geometry="geometry", crs=4326)
    by_town = communities.groupby("town_code").geometry.apply(lambda g: shapely.coverage_union_all(g.values))
    towns["geometry"] = _as_multi([by_town[c] for c in towns["code"]])
    from grids.checkpoints import place_checkpoints

    checkpoints = place_checkpoints(communities, grids, outline)
    return ReferenceDistrict(seed=seed, outline=outline, towns=towns, communities=communities,
                             grids=grids, checkpoints=checkpoints)
