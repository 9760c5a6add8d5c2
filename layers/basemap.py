"""The basemap: none (offline, outlines only; the default), OpenStreetMap, or Tianditu.

Chosen by ``NANHAI_BASEMAP`` (``none`` | ``osm`` | ``tianditu``); Tianditu needs
the client's key in ``TIANDITU_KEY``. Tianditu and OSM tiles are WGS84-aligned
(Web Mercator), so the data is drawn as stored; no GCJ-02 shift is needed.
"""

from __future__ import annotations

import os

import dash_leaflet as dl

TIANDITU_URL = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0" \
               "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}" \
               "&TILECOL={{x}}&tk={key}"


def basemap_choice() -> str:
    """The configured basemap name; anything unknown or a Tianditu without key falls back to none."""
    choice = os.environ.get("NANHAI_BASEMAP", "none").strip().lower()
    if choice == "tianditu" and not os.environ.get("TIANDITU_KEY"):
        return "none"
    return choice if choice in ("none", "osm", "tianditu") else "none"


def basemap_layers() -> list:
    """Tile layers for the configured basemap (an empty list when offline)."""
    choice = basemap_choice()
    if choice == "osm":
        return [dl.TileLayer(url="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                             attribution="© OpenStreetMap contributors", maxZoom=19)]
    if choice == "tianditu":
        key = os.environ["TIANDITU_KEY"]
        return [dl.TileLayer(url=TIANDITU_URL.format(s="{s}", layer=layer, key=key), subdomains="01234567",
                             attribution="数据来源：天地图", maxZoom=18) for layer in ("vec", "cva")]
    return []
