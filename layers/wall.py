"""The wall map's layers: grids coloured by a measure, town and community outlines, checkpoints, H3 density.

Geometry travels once, by URL; colours follow ``hideout`` (per-grid figures)
through ``nanhai.wall.*`` in ``assets/nanhai.js``, in the colours of
:mod:`layers.palette`. The density layer shows red and yellow persons per H3
cell (resolution 8, about 0.7 km²) and leaves out every cell with fewer than 5
of them: a count that small could point at a person.

Each kind of layer has its own Leaflet pane (:data:`PANES`), so that the
checkpoints and the outlines are drawn above the grid fill whatever order the
layers arrive in. The outlines carry their names and a label point (inside the
shape), fetched once with the outlines: the browser labels the towns from the
district's zoom and the communities from :data:`COMMUNITY_LABEL_ZOOM`.
"""

from __future__ import annotations

from collections import Counter

import dash_leaflet as dl
import geopandas as gpd
import h3
import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis.geojson import feature_collection, simplify_coverage
from gis.h3grid import cells_to_polygons
from layers.grid_layer import grid_layer

OUTLINE_URLS = {"towns": "/layers/towns.geojson", "communities": "/layers/communities.geojson"}
CHECKPOINTS_URL = "/layers/checkpoints.geojson"
DENSITY_URL = "/layers/density.geojson"
DENSITY_RESOLUTION = 8
SUPPRESS_BELOW = 5
OUTLINE_SIMPLIFY_DEG = 5e-5
MEASURES = ("risk", "work")
# Leaflet panes, bottom to top (Leaflet's own: tiles 200, overlays 400, markers 600, tooltips 650).
PANES = {"nh-grids": 410, "nh-density": 420, "nh-outlines": 430, "nh-checkpoints": 440, "nh-labels": 450}
# Labels from these zooms, at the wall's size of 1920 x 1080; a larger wall draws the district a zoom level or
# so closer with text as much larger, and the browser subtracts that (nanhai.wall.scale) before comparing.
TOWN_LABEL_ZOOM = 9
COMMUNITY_LABEL_ZOOM = 13
LABEL_DECIMALS = 5


def outline_geojson(conn: Connection, level: str) -> dict:
    """Town or community outlines, coverage-simplified (about 5 m), with code, name and ``label``: [lon, lat] of a
    point inside the shape, where its name is written (a centroid can fall outside a bent one)."""
    if level not in OUTLINE_URLS:
        raise ValueError(f"no outline level {level}")
    frame = gpd.read_postgis(text(f"SELECT code, name, ST_X(ST_PointOnSurface(geom)) AS lx, "
                                  f"ST_Y(ST_PointOnSurface(geom)) AS ly, geom FROM {level} "
                                  "WHERE geom IS NOT NULL ORDER BY code"), conn, geom_col="geom")
    frame["label"] = [[round(x, LABEL_DECIMALS), round(y, LABEL_DECIMALS)] for x, y in zip(frame.lx, frame.ly,
                                                                                          strict=True)]
    frame = frame.set_geometry(simplify_coverage(frame.geometry.values, OUTLINE_SIMPLIFY_DEG), crs=4326)
    return feature_collection(frame, ["code", "name", "label"], precision=6)


def checkpoints_geojson(conn: Connection) -> dict:
    """Checkpoint points with code and name."""
    frame = gpd.read_postgis(text("SELECT code, name, geom FROM checkpoints ORDER BY code"), conn, geom_col="geom")
    return feature_collection(frame, ["code", "name"], precision=6)


def density_geojson(conn: Connection) -> dict:
    """Red and yellow persons per H3 cell, cells under :data:`SUPPRESS_BELOW` left out."""
    points = conn.execute(text("SELECT ST_X(p.geom), ST_Y(p.geom) FROM flags f JOIN persons p USING (person_key) "
                               "WHERE f.colour IN ('red', 'yellow') AND p.geom IS NOT NULL")).all()
    counts = Counter(h3.str_to_int(h3.latlng_to_cell(lat, lon, DENSITY_RESOLUTION)) for lon, lat in points)
    shown = sorted((cell, n) for cell, n in counts.items() if n >= SUPPRESS_BELOW)
    frame = gpd.GeoDataFrame({"count": [n for _, n in shown]},
                             geometry=cells_to_polygons([c for c, _ in shown]) if shown else np.array([], object),
                             crs=4326)
    if frame.empty:
        return {"type": "FeatureCollection", "features": []}
    frame["count"] = frame["count"].astype(int)
    frame = frame.set_geometry(shapely.set_precision(frame.geometry.values, 1e-6), crs=4326)
    return feature_collection(frame, ["count"], precision=6)


def district_bounds(conn: Connection, grid_ids: list[int] | None = None) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the stored districts (or of ``grid_ids``), for a map that fits."""
    extent = "SELECT ST_Extent(geom) AS e FROM districts" if grid_ids is None else \
        "SELECT ST_Extent(geom) AS e FROM grids WHERE id = ANY(:ids)"
    row = conn.execute(text(f"SELECT ST_YMin(e), ST_XMin(e), ST_YMax(e), ST_XMax(e) FROM ({extent}) x"),
                       {"ids": grid_ids}).one()
    return None if row[0] is None else [[row[0], row[1]], [row[2], row[3]]]


def map_view(bounds: list[list[float]] | None, centre: list[float], zoom: int = 11) -> dict:
    """The view props of a ``dl.Map`` that fits ``bounds``. The centre is given too, as dash-leaflet's move
    handler reads it (a map with bounds but no centre throws on every move); the zoom is not, as a centre with
    a zoom would win over the bounds."""
    if bounds is None:
        return {"center": centre, "zoom": zoom}
    (south, west), (north, east) = bounds
    return {"bounds": bounds, "center": [(south + north) / 2, (west + east) / 2]}


def density_url(version: str | None) -> str:
    """The density layer's URL for the data at ``version`` (a new URL when the data change: no stale cache)."""
    return f"{DENSITY_URL}?v={version}" if version else DENSITY_URL


def _pane(name: str, *layers: dl.GeoJSON) -> dl.Pane:
    return dl.Pane(name=name, style={"zIndex": PANES[name]}, children=list(layers))


def wall_layers(measure: str, values: dict | None = None, version: str | None = None) -> list:
    """The wall's overlay layers, each in its pane (:data:`PANES`, bottom to top: grids, density, outlines,
    checkpoints; labels are drawn in ``nh-labels``); ``values`` are the grids' figures the page opens with, taken
    at ``version`` (:func:`tasks.overview.version_stamp`)."""
    def outline(level: str, symbol: str, label_zoom: int) -> dl.GeoJSON:
        return dl.GeoJSON(id=f"wall-{level}", url=OUTLINE_URLS[level], format="geojson", zoomToBounds=False,
                          interactive=False, hideout={"symbol": symbol, "labelZoom": label_zoom,
                                                      "labelPane": "nh-labels"},
                          style={"variable": "nanhai.wall.outlineStyle"},
                          onEachFeature={"variable": "nanhai.wall.outlineLabel"})

    return [
        _pane("nh-grids", grid_layer("wall-grids", "nanhai.wall.gridStyle", {"measure": measure,
                                                                              "values": values or {}},
                                     tooltip=None)),
        _pane("nh-density", dl.GeoJSON(id="wall-density", url=density_url(version), format="geojson",
                                       zoomToBounds=False, interactive=False,
                                       style={"variable": "nanhai.wall.densityStyle"})),
        _pane("nh-outlines", outline("communities", "community", COMMUNITY_LABEL_ZOOM),
              outline("towns", "town", TOWN_LABEL_ZOOM)),
        _pane("nh-checkpoints", dl.GeoJSON(id="wall-checkpoints", url=CHECKPOINTS_URL, format="geojson",
                                           zoomToBounds=False, hideout={"pane": "nh-checkpoints"},
                                           pointToLayer={"variable": "nanhai.wall.checkpoint"})),
        dl.Pane(name="nh-labels", style={"zIndex": PANES["nh-labels"]}),
    ]
