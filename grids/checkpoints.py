"""Checkpoints (卡口): the gates on a community's edge where residents scan their pass.

A reference community gets one gate where its edge comes closest to its
centre (the shortest way out, where the main road would leave), and a second
gate halfway round its edge when it has five grids or more. Gates are placed
on edges shared with a neighbouring community where there are any, not on
the district's outer edge.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

SECOND_GATE_FROM_GRIDS = 5


def gate_points(community: BaseGeometry, outline: BaseGeometry, count: int) -> list[BaseGeometry]:
    """Return ``count`` plausible gate positions on the edge of ``community``."""
    inland = shapely.difference(community.boundary, shapely.buffer(outline.boundary, 1e-6))
    edge: BaseGeometry = shapely.line_merge(inland)
    if edge.is_empty or edge.length < 1e-4:
        edge = community.boundary
    parts = sorted(shapely.get_parts(edge), key=lambda line: line.length, reverse=True)
    centre = shapely.point_on_surface(community)
    first_line = min(parts[:3], key=lambda line: line.distance(centre))
    first = first_line.interpolate(first_line.project(centre))
    gates = [first]
    if count > 1:
        longest = parts[0]
        offset = (longest.project(first) + longest.length / 2) % longest.length if longest is first_line \
            else longest.length / 2
        gates.append(longest.interpolate(offset))
    return gates


def place_checkpoints(communities: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                      outline: BaseGeometry) -> gpd.GeoDataFrame:
    """One or two gates per community, each tied to the community grid nearest to it."""
    grid_count = grids.groupby("community_code").size()
    rows = []
    for community in communities.itertuples():
        mine = grids[grids["community_code"] == community.code]
        count = 2 if grid_count.get(community.code, 0) >= SECOND_GATE_FROM_GRIDS else 1
        for number, point in enumerate(gate_points(community.geometry, outline, count), start=1):
            distances = shapely.distance(mine.geometry.values, point)
            grid_code = mine["code"].iloc[int(np.argmin(distances))]
            rows.append({"code": f"KK{community.code}{number:02d}",
                         "name": f"{community.name_short}{number}号卡口",
                         "community_code": community.code, "grid_code": grid_code, "geometry": point})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
