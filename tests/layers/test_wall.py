"""The wall's layers: panes in a fixed order, outlines with a label point inside each shape."""

import shapely
import shapely.geometry

from layers.basemap import to_basemap_crs
from layers.wall import PANES, outline_geojson, wall_layers


def test_the_layers_are_stacked_by_pane_grids_lowest_checkpoints_highest():
    panes = wall_layers("risk", {}, "1.2.3.4.5")
    names = [pane.name for pane in panes]
    assert names == list(PANES) and [pane.style["zIndex"] for pane in panes] == sorted(PANES.values())
    held = {pane.name: [layer.id for layer in (pane.children or [])] for pane in panes}
    assert held == {"nh-grids": ["wall-grids"], "nh-density": ["wall-density"],
                    "nh-outlines": ["wall-communities", "wall-towns"], "nh-checkpoints": ["wall-checkpoints"],
                    "nh-labels": []}
    assert panes[0].children[0].hideout == {"measure": "risk", "values": {}}


def test_every_outline_carries_its_name_and_a_label_point_inside_it(seeded_engine):
    with seeded_engine.connect() as conn:
        for level in ("towns", "communities"):
            features = outline_geojson(conn, level)["features"]
            assert features
            for feature in features:
                shape = shapely.geometry.shape(feature["geometry"])
                label = shapely.Point(feature["properties"]["label"])
                assert feature["properties"]["name"] and shape.buffer(1e-4).contains(label), feature["properties"]


def test_a_label_point_moves_with_its_shape_to_gcj02():
    square = {"type": "Polygon", "coordinates": [[[113.0, 23.0], [113.01, 23.0], [113.01, 23.01], [113.0, 23.0]]]}
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"label": [113.0, 23.0]}, "geometry": square}]}
    shifted = to_basemap_crs(data, "gcj02")["features"][0]
    assert shifted["properties"]["label"] == list(shifted["geometry"]["coordinates"][0][0])
    assert shifted["properties"]["label"] != [113.0, 23.0]
