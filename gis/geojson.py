"""GeoJSON for the browser: compact, rounded, and with shared edges kept shared.

Grid polygons are simplified as a coverage (GEOS coverage simplification), so
neighbouring grids still meet exactly after simplification, then rounded to
``precision`` decimals (6 decimals ≈ 0.1 m).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely

if TYPE_CHECKING:
    from gis.crs import Geometries


def simplify_coverage(geoms: Geometries, tolerance_deg: float) -> np.ndarray:
    """Simplify polygons that tile an area without opening gaps or overlaps between them."""
    if tolerance_deg <= 0:
        return np.asarray(geoms, dtype=object)
    return shapely.coverage_simplify(np.asarray(geoms, dtype=object), tolerance_deg)


def feature_collection(frame: gpd.GeoDataFrame, properties: list[str], precision: int = 6) -> dict:
    """A GeoJSON FeatureCollection of ``frame`` with only ``properties``, coordinates rounded."""
    # Pointwise rounding keeps every vertex, so vertices shared by neighbours stay shared.
    geoms = shapely.set_precision(np.asarray(frame.geometry.values, dtype=object), 10.0 ** -precision,
                                  mode="pointwise")
    features = []
    for geom, (_, row) in zip(geoms, frame[properties].iterrows(), strict=True):
        features.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(geom)),
                         "properties": {k: (None if v is None or v != v else v) for k, v in row.items()}})
    return {"type": "FeatureCollection", "features": features}


def dumps(data: dict) -> str:
    """Serialise GeoJSON compactly (no spaces, Chinese kept as UTF-8)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
