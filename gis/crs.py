"""Coordinate systems: WGS84, CGCS2000, projected CRSs, and the Chinese web-map offsets.

Data is stored in WGS84 (EPSG:4326). CGCS2000 (EPSG:4490) differs from WGS84 by
well under a metre and is taken as-is. GCJ-02 (the "Mars" offset of Amap,
Tencent and Google China) and BD-09 (Baidu) are not projections PROJ knows;
they are handled here, vectorised over numpy arrays. The GCJ-02 → WGS84
inverse has no closed form and is refined iteratively to below 1e-9 degrees
(about 0.1 mm).

>>> lon, lat = wgs84_to_gcj02(113.15, 23.03)
>>> back = gcj02_to_wgs84(lon, lat)
>>> bool(abs(back[0] - 113.15) < 1e-8)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias

import numpy as np
import shapely
from numpy.typing import ArrayLike
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from gis.errors import ConfigurationError

# Geometries as they are passed around: a numpy object array, a geopandas GeometryArray or GeoSeries, a list.
Geometries: TypeAlias = np.ndarray | Sequence[BaseGeometry | None]

WGS84 = CRS.from_epsg(4326)
# An equal-area projection fitted to Guangdong: areas in square metres without distortion.
AREA_CRS = CRS.from_proj4("+proj=aea +lat_0=23 +lon_0=113 +lat_1=22.5 +lat_2=23.5 +ellps=GRS80 +units=m +no_defs")

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

OFFSET_SYSTEMS = {"gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02", "mars": "gcj02",
                  "bd09": "bd09", "bd-09": "bd09", "baidu": "bd09"}
NAMED = {"wgs84": 4326, "wgs-84": 4326, "cgcs2000": 4490, "cgcs-2000": 4490}


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Rough mainland-China box where the GCJ-02 offset applies (outside it, none)."""
    return (lon > 73.66) & (lon < 135.05) & (lat > 3.86) & (lat < 53.55)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Offset WGS84 coordinates to GCJ-02 (arrays or scalars)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, tolerance: float = 1e-9,
                   max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Invert the GCJ-02 offset iteratively to within ``tolerance`` degrees."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(max_iter):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if np.all(np.abs(dlon) < tolerance) and np.all(np.abs(dlat) < tolerance):
            break
    return wlon, wlat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Offset GCJ-02 coordinates to Baidu's BD-09."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Undo Baidu's BD-09 offset, giving GCJ-02."""
    x = np.asarray(lon, dtype=float) - 0.0065
    y = np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


@dataclass(frozen=True)
class SourceCRS:
    """Where coordinates come from: a PROJ CRS, or one of the offset systems gcj02 / bd09."""

    crs: CRS | None = None
    offset: str | None = None

    def __str__(self) -> str:
        return self.offset or (self.crs.to_string() if self.crs else "unknown")


def parse_crs(value: str | int | None) -> SourceCRS | None:
    """Read a CRS argument: an EPSG code (4490, "EPSG:4547"), wgs84, cgcs2000, gcj02 or bd09.

    Raises :class:`ConfigurationError` with the accepted forms when it cannot be read.
    """
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().lower()
    if text in OFFSET_SYSTEMS:
        return SourceCRS(offset=OFFSET_SYSTEMS[text])
    if text in NAMED:
        return SourceCRS(crs=CRS.from_epsg(NAMED[text]))
    try:
        if text.isdigit():
            return SourceCRS(crs=CRS.from_epsg(int(text)))
        return SourceCRS(crs=CRS.from_user_input(str(value).strip()))
    except CRSError as exc:
        raise ConfigurationError(
            f"无法识别的坐标系 / unknown CRS {value!r}: use an EPSG code (4326, 4490, 4547), "
            "wgs84, cgcs2000, gcj02 or bd09"
        ) from exc


@lru_cache(maxsize=32)
def _transformer(source: CRS, target: CRS) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def _is_geographic_wgs84_like(crs: CRS) -> bool:
    # CGCS2000 and WGS84 agree within a metre; skip PROJ's (null) datum shift.
    return crs.is_geographic and crs.to_epsg() in (4326, 4490, 4479, 4480, 4610)


def points_to_wgs84(lon: ArrayLike, lat: ArrayLike, source: SourceCRS) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinate arrays from ``source`` to WGS84 longitude/latitude."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if source.offset == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if source.offset == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    if source.crs is None or _is_geographic_wgs84_like(source.crs):
        return lon, lat
    x, y = _transformer(source.crs, WGS84).transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def geometries_to_wgs84(geoms: Geometries, source: SourceCRS) -> np.ndarray:
    """Convert an array of shapely geometries from ``source`` to WGS84."""

    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = points_to_wgs84(coords[:, 0], coords[:, 1], source)
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms), convert)


SEGMENT_DEG = 5e-4


def to_metres(geoms: Geometries) -> np.ndarray:
    """Project WGS84 geometries onto the region's equal-area plane (metres).

    Edges are straight in longitude/latitude (as shapely and PostGIS geometry
    treat them); they are densified to ~50 m first so that the projection's
    curvature does not turn a millimetre sliver into a square kilometre error.
    """
    transformer = _transformer(WGS84, AREA_CRS)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(shapely.segmentize(np.asarray(geoms), SEGMENT_DEG), project)


def area_m2(geoms: Geometries) -> np.ndarray:
    """Area in square metres of WGS84 geometries (equal-area projection of the region)."""
    return shapely.area(to_metres(geoms))


def mean_width_m(geoms: Geometries) -> np.ndarray:
    """Mean width in metres (2·area / perimeter): tells a real gap from a floating-point sliver."""
    projected = to_metres(geoms)
    perimeter = shapely.length(projected)
    return np.where(perimeter > 0, 2 * shapely.area(projected) / np.maximum(perimeter, 1e-12), 0.0)
