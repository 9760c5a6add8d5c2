"""How far a point (a worker's phone) is from a grid: the field view warns when he reports from afar.

The distance is measured on the spheroid (PostGIS ``geography``), in metres,
and is 0 anywhere inside the grid or on its boundary.

Example, on the seeded district: ``distance_to_grid_m(conn, "440605011001001", 113.152, 23.055)`` is
``0.0`` (a point inside the grid); 0.02° north of its northern edge it is about 2,200 m.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection

from gis.db import sql
from gis.errors import InvalidRequest, NotFound

FAR_FROM_GRID_M = 500.0

DISTANCE = sql("SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) "
               "FROM grids WHERE code = :code")


def distance_to_grid_m(conn: Connection, grid_code: str, lon: float, lat: float) -> float:
    """Metres from the WGS84 point (``lon``, ``lat``) to grid ``grid_code`` (0 inside it).

    Raises NotFound for an unknown grid and InvalidRequest for a point that is not on the Earth.
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidRequest(f"坐标超出范围 / ({lon}, {lat}) is not a WGS84 point", "location")
    metres = conn.execute(DISTANCE, {"code": grid_code, "lon": lon, "lat": lat}).scalar()
    if metres is None:
        raise NotFound(f"网格 {grid_code} 不存在 / no grid {grid_code}")
    return float(metres)


def far_from_grid(metres: float, limit: float = FAR_FROM_GRID_M) -> bool:
    """Whether a report made ``metres`` from its grid deserves a warning."""
    return metres > limit
