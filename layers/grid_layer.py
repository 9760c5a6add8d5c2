"""The grid layer: the district's grids as one GeoJSON layer, styled in the browser.

Geometry is fetched once by URL as geobuf (``GRID_LAYER_PBF_URL``: coordinates
quantised to 1e-7°, about 1 cm, and delta-encoded; ``GRID_LAYER_URL`` serves the same
features as GeoJSON for other clients); colours come from the
``nanhai.grids.style`` JavaScript function in ``assets/nanhai.js`` reading the
layer's ``hideout``, so restyling sends no geometry.
"""

from __future__ import annotations

import dash_leaflet as dl
import geobuf
import geopandas as gpd

from gis.geojson import feature_collection, simplify_coverage

GRID_LAYER_URL = "/layers/grids.geojson"
GRID_LAYER_PBF_URL = "/layers/grids.pbf"
SIMPLIFY_DEG = 2e-5  # about 2 m: invisible at district zoom, and many fewer vertices to send
COORDINATE_DECIMALS = 7  # 1 cm: at 6 decimals (10 cm) a few narrow corners would fold over themselves
PROPERTIES = ["code", "name", "community_code", "town_code"]


def grid_geojson(grids: gpd.GeoDataFrame) -> dict:
    """GeoJSON of ``grids`` for the browser: coverage-simplified, rounded, few properties."""
    simplified = grids.set_geometry(simplify_coverage(grids.geometry.values, SIMPLIFY_DEG), crs=4326)
    return feature_collection(simplified, PROPERTIES, precision=COORDINATE_DECIMALS)


def grid_geobuf(geojson: dict) -> bytes:
    """The browser's grid layer as geobuf, at the precision the GeoJSON was rounded to (nothing more is lost)."""
    return geobuf.encode(geojson, COORDINATE_DECIMALS)


def grid_layer(layer_id: str, style: str, hideout: dict, tooltip: str | None = "nanhai.grids.bindTooltip"
               ) -> dl.GeoJSON:
    """The Dash-Leaflet layer that draws the grids from ``GRID_LAYER_PBF_URL``, styled by the JS function
    ``style`` (a name under ``window.nanhai``) reading ``hideout``.

    Give ``hideout`` the figures the page opens with, not an empty placeholder: dash-leaflet styles the
    shapes that arrive from the URL with the hideout of when the fetch began, so a hideout sent by a callback
    while the layer is still loading is lost until the next change (the wall stayed uncoloured that way).
    """
    extra = {"onEachFeature": {"variable": tooltip}} if tooltip else {}
    return dl.GeoJSON(id=layer_id, url=GRID_LAYER_PBF_URL, format="geobuf", style={"variable": style},
                      hideout=hideout, zoomToBounds=False, **extra)
