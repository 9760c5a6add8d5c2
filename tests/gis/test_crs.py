import coordTransform as reference
import numpy as np
import pytest
import shapely

from gis.crs import (
    area_m2,
    bd09_to_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometries_to_wgs84,
    parse_crs,
    points_to_wgs84,
    wgs84_to_gcj02,
)
from gis.errors import ConfigurationError

POINTS = [(113.1501, 23.0302), (112.8500, 22.8100), (113.2450, 23.3100), (116.397428, 39.90923)]


@pytest.mark.parametrize("lon,lat", POINTS)
def test_gcj02_forward_matches_the_reference_package(lon, lat):
    expected = reference.wgs84_to_gcj02(lon, lat)
    got = wgs84_to_gcj02(lon, lat)
    assert abs(float(got[0]) - expected[0]) < 1e-9 and abs(float(got[1]) - expected[1]) < 1e-9


@pytest.mark.parametrize("lon,lat", POINTS)
def test_gcj02_inverse_is_exact_to_a_millimetre(lon, lat):
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    # 1e-8 degrees is about 1 mm; the reference package's one-step inverse is off by metres.
    assert abs(float(wlon) - lon) < 1e-8 and abs(float(wlat) - lat) < 1e-8
    naive = reference.gcj02_to_wgs84(float(glon), float(glat))
    assert abs(naive[0] - lon) > abs(float(wlon) - lon)


def test_known_gcj02_offset_in_nanhai_is_a_few_hundred_metres():
    glon, glat = wgs84_to_gcj02(113.15, 23.03)
    shift_m = np.hypot((glon - 113.15) * 102_400, (glat - 23.03) * 110_570)
    assert 300 < shift_m < 700


def test_bd09_round_trip():
    blon, blat = gcj02_to_bd09(113.15, 23.03)
    assert abs(float(blon) - reference.gcj02_to_bd09(113.15, 23.03)[0]) < 1e-9
    glon, glat = bd09_to_gcj02(blon, blat)
    assert abs(float(glon) - 113.15) < 1e-5 and abs(float(glat) - 23.03) < 1e-5


def test_outside_china_no_offset():
    lon, lat = wgs84_to_gcj02(2.35, 48.85)
    assert float(lon) == 2.35 and float(lat) == 48.85


@pytest.mark.parametrize("text,expected", [("4490", "EPSG:4490"), ("EPSG:4547", "EPSG:4547"), ("wgs84", "EPSG:4326"),
                                           ("cgcs2000", "EPSG:4490"), ("GCJ02", "gcj02"), ("bd09", "bd09")])
def test_parse_crs_forms(text, expected):
    assert str(parse_crs(text)) == expected


def test_parse_crs_rejects_nonsense_with_the_accepted_forms():
    with pytest.raises(ConfigurationError, match="gcj02"):
        parse_crs("not a crs")
    assert parse_crs(None) is None and parse_crs("") is None


def test_projected_cgcs2000_gk_zone_converts_back():
    from pyproj import Transformer

    to_gk = Transformer.from_crs(4326, 4547, always_xy=True)
    x, y = to_gk.transform(113.15, 23.03)
    lon, lat = points_to_wgs84([x], [y], parse_crs("4547"))
    assert abs(lon[0] - 113.15) < 1e-8 and abs(lat[0] - 23.03) < 1e-8


def test_geometries_convert_every_vertex():
    square = shapely.box(113.1, 23.0, 113.11, 23.01)
    gcj = shapely.transform(square, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    back = geometries_to_wgs84(np.array([gcj]), parse_crs("gcj02"))[0]
    assert shapely.hausdorff_distance(back, square) < 1e-8


def test_area_of_a_kilometre_square():
    # 1 km × 1 km at 23° N in degrees, to within the accuracy of the metre-per-degree figures.
    square = shapely.box(113.0, 23.0, 113.0 + 1000 / 102_470, 23.0 + 1000 / 110_580)
    assert area_m2([square])[0] == pytest.approx(1_000_000, rel=2e-3)
