"""The map page over HTTP: served locally, no CDN, the grid layer small and edge-matched."""

import gzip
import json
import re

import geobuf
import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.geometry

from app import create_app
from layers.grid_layer import GRID_LAYER_PBF_URL, GRID_LAYER_URL


@pytest.fixture(scope="module")
def client(seeded_engine):
    return create_app(seeded_engine).server.test_client()


def test_the_start_page_sends_a_stranger_to_the_login_page(client):
    page = client.get("/")
    assert page.status_code == 303 and page.headers["Location"].endswith("/login")


@pytest.mark.parametrize("path", ["/dispatch/", "/reports/", "/wall/"])  # /field/: tests/pages/test_field.py
def test_every_page_and_every_script_is_served_by_the_app(client, path):
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not s.startswith(("http://", "https://", "//")) for s in sources)
    layout = json.dumps(client.get(f"{path}_dash-layout").get_json(), ensure_ascii=False)
    assert f"/login?next={path}" in layout, "a stranger is sent to log in"


def test_grid_layer_is_gzipped_complete_and_edge_matched(client):
    response = client.get(GRID_LAYER_URL, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    packed = response.get_data()
    assert len(packed) < 150 * 1024
    data = json.loads(gzip.decompress(packed))
    assert len(data["features"]) == 1042
    assert set(data["features"][0]["properties"]) == {"code", "name", "community_code", "town_code"}
    frame = gpd.GeoDataFrame.from_features(data["features"], crs=4326)
    assert shapely.is_valid(frame.geometry.values).all()
    assert shapely.coverage_is_valid(frame.geometry.values)
    plain = client.get(GRID_LAYER_URL)
    assert "Content-Encoding" not in plain.headers and json.loads(plain.get_data()) == data


def test_the_browser_gets_the_same_grids_as_quantised_geobuf(client):
    data = json.loads(client.get(GRID_LAYER_URL).get_data())
    answer = client.get(GRID_LAYER_PBF_URL, headers={"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Type"] == "application/x-protobuf"
    raw = gzip.decompress(answer.get_data())
    assert len(raw) < 150 * 1024, "under the size target even before gzip"
    decoded = geobuf.decode(raw)
    assert [f["properties"] for f in decoded["features"]] == [f["properties"] for f in data["features"]]
    for ours, theirs in zip(decoded["features"], data["features"], strict=True):
        assert ours["geometry"]["type"] == theirs["geometry"]["type"]
        assert np.allclose(shapely.get_coordinates(shapely.geometry.shape(ours["geometry"])),
                           shapely.get_coordinates(shapely.geometry.shape(theirs["geometry"])), rtol=0, atol=1e-9)


def test_the_grid_layer_version_changes_when_a_grid_changes_in_place(seeded_engine):
    from sqlalchemy import text

    from grids import repository

    with seeded_engine.connect() as conn:
        before = repository.grids_version(conn)
    with seeded_engine.begin() as conn:
        conn.execute(text("UPDATE grids SET geom = geom WHERE id = (SELECT min(id) FROM grids)"))
    with seeded_engine.connect() as conn:
        after = repository.grids_version(conn)
    assert before != after and before.split(":")[0] == after.split(":")[0]


def test_every_process_registers_the_pages_scripts_before_its_first_request(seeded_engine):
    """Dash registers the scripts it will serve on a process's first request, raising its flag first: the
    threads of that first burst were refused (500, "dash is not a registered library") until it finished, so a
    freshly started `gridctl serve` broke the first page load. create_app makes that first request itself."""
    dispatch = create_app(seeded_engine)
    assert {"dash", "dash_leaflet"} <= set(dispatch.registered_paths)
