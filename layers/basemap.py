"""The basemap: none (offline, outlines only; the default), OpenStreetMap, Tianditu, or Amap.

Chosen by ``NANHAI_BASEMAP`` (``none`` | ``osm`` | ``tianditu`` | ``amap``); Tianditu needs
the client's key in ``TIANDITU_KEY``. Tianditu and OSM tiles are WGS84-aligned
(Web Mercator), so the data is drawn as stored. Amap (高德) tiles are drawn in
GCJ-02: the data is shifted at the edge, in the layers sent to the browser
(:func:`to_basemap_crs`), never in the database.
"""

from __future__ import annotations

import os

import dash_leaflet as dl
import numpy as np
import shapely
import shapely.geometry

from gis.crs import wgs84_to_gcj02

TIANDITU_URL = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0" \
               "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}" \
               "&TILECOL={{x}}&tk={key}"

AMAP_URL = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"


def basemap_choice() -> str:
    """The configured basemap name; anything unknown or a Tianditu without key falls back to none."""
    choice = os.environ.get("NANHAI_BASEMAP", "none").strip().lower()
    if choice == "tianditu" and not os.environ.get("TIANDITU_KEY"):
        return "none"
    return choice if choice in ("none", "osm", "tianditu", "amap") else "none"


def basemap_crs() -> str:
    """The datum the configured basemap is drawn in: ``gcj02`` for Amap, else ``wgs84``."""
    return "gcj02" if basemap_choice() == "amap" else "wgs84"


def to_basemap_crs(geojson: dict, crs: str, decimals: int = 7) -> dict:
    """``geojson`` (WGS84) shifted to the basemap's datum, rounded to ``decimals``; as is for WGS84.

    Each vertex is shifted on its own, so vertices shared by two grids stay shared; a feature's ``label`` point
    ([lon, lat], see :func:`layers.wall.outline_geojson`) is shifted with it.
    """
    if crs != "gcj02":
        return geojson

    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([lon, lat]), decimals)

    features = []
    for feature in geojson["features"]:
        geometry = shapely.transform(shapely.geometry.shape(feature["geometry"]), shift)
        properties = feature.get("properties") or {}
        if properties.get("label"):
            properties = {**properties, "label": shift(np.array([properties["label"]], dtype=float))[0].tolist()}
        features.append({**feature, "properties": properties, "geometry": shapely.geometry.mapping(geometry)})
    return {**geojson, "features": features}


def basemap_layers() -> list:
    """Tile layers for the configured basemap (an empty list when offline)."""
    choice = basemap_choice()
    if choice == "osm":
        return [dl.TileLayer(url="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                             attribution="© OpenStreetMap contributors", maxZoom=19)]
    if choice == "amap":
        return [dl.TileLayer(url=AMAP_URL, subdomains="1234", attribution="© 高德地图", maxZoom=18)]
    if choice == "tianditu":
        key = os.environ["TIANDITU_KEY"]
        return [dl.TileLayer(url=TIANDITU_URL.format(s="{s}", layer=layer, key=key), subdomains="01234567",
                             attribution="数据来源：天地图", maxZoom=18) for layer in ("vec", "cva")]
    return []
