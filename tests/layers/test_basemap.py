"""The basemap choice and the GCJ-02 shift at the edge (Amap tiles): the database stays WGS84."""

import json

import numpy as np
import shapely
import shapely.geometry

from app import create_app
from gis.crs import gcj02_to_wgs84
from layers.basemap import basemap_choice, basemap_crs, basemap_layers, to_basemap_crs
from layers.grid_layer import GRID_LAYER_URL


def test_the_choice_falls_back_to_none_offline(monkeypatch):
    monkeypatch.setenv("NANHAI_BASEMAP", "tianditu")
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    assert basemap_choice() == "none" and basemap_layers() == []
    monkeypatch.setenv("NANHAI_BASEMAP", "amap")
    assert basemap_crs() == "gcj02" and "autonavi" in basemap_layers()[0].url
    monkeypatch.setenv("NANHAI_BASEMAP", "osm")
    assert basemap_crs() == "wgs84"


def test_the_amap_layers_are_shifted_to_gcj02_and_stay_edge_matched(seeded_engine, monkeypatch):
    wgs = json.loads(create_app(seeded_engine).server.test_client().get(GRID_LAYER_URL).get_data())
    monkeypatch.setenv("NANHAI_BASEMAP", "amap")
    gcj = json.loads(create_app(seeded_engine).server.test_client().get(GRID_LAYER_URL).get_data())
    assert len(gcj["features"]) == len(wgs["features"]) == 1042
    before = shapely.get_coordinates([shapely.geometry.shape(f["geometry"]) for f in wgs["features"]])
    after = shapely.get_coordinates([shapely.geometry.shape(f["geometry"]) for f in gcj["features"]])
    shift_m = np.hypot((after[:, 0] - before[:, 0]) * 102_000, (after[:, 1] - before[:, 1]) * 111_000)
    assert 300 < shift_m.min() and shift_m.max() < 800, "GCJ-02 moves Foshan by a few hundred metres"
    lon, lat = gcj02_to_wgs84(after[:, 0], after[:, 1])
    assert np.abs(lon - before[:, 0]).max() < 2e-7 and np.abs(lat - before[:, 1]).max() < 2e-7
    assert shapely.coverage_is_valid([shapely.geometry.shape(f["geometry"]) for f in gcj["features"]])


def test_wgs84_basemaps_get_the_data_as_stored():
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [113.1, 23.0]}}]}
    assert to_basemap_crs(data, "wgs84") is data
