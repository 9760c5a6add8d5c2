"""Import of real boundaries: every format and CRS, and every way a file is refused."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from sqlalchemy import text

from gis.crs import wgs84_to_gcj02
from gis.errors import ConfigurationError, ImportRejected
from grids import repository
from grids.importing import import_grids, read_grid_file


@pytest.fixture(scope="module")
def engine(database_factory, pristine_district):
    return database_factory("nanhai_import", copy_of=pristine_district)  # the seeded district, copied


@pytest.fixture(scope="module")
def reference(engine) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        return repository.load_grids(conn)[["code", "name", "geometry"]]


def fingerprint(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT md5(string_agg(code || name || source || encode(ST_AsBinary(geom), 'hex'), ',' ORDER BY code)) "
            "|| (SELECT count(*) FROM grid_cells) FROM grids")).scalar_one()


def assert_same_grids(engine, reference, tolerance_deg):
    with engine.connect() as conn:
        stored = repository.load_grids(conn)
    assert list(stored["code"]) == list(reference["code"])
    distances = shapely.hausdorff_distance(stored.geometry.values, reference.geometry.values)
    assert distances.max() < tolerance_deg


def refused(engine, path, **kwargs) -> ImportRejected:
    before = fingerprint(engine)
    with pytest.raises(ImportRejected) as caught:
        import_grids(engine, path, **kwargs)
    assert fingerprint(engine) == before, "a refused import must store nothing"
    return caught.value


# -- formats and coordinate systems ------------------------------------------------------------
def test_geopackage_in_cgcs2000(engine, reference, tmp_path):
    path = tmp_path / "grids.gpkg"
    reference.set_crs(4490, allow_override=True).to_file(path, layer="wangge")
    result = import_grids(engine, path)
    assert result.grids == 1042 and result.removed == 0 and result.cells > 50_000 and result.crs == "EPSG:4490"
    assert_same_grids(engine, reference, 1e-9)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT bool_and(NOT synthetic) AND bool_and(source LIKE 'imported: grids.gpkg%') "
                                 "FROM grids")).scalar_one()


def test_projected_shapefile_epsg4547_plain_and_zipped(engine, reference, tmp_path):
    folder = tmp_path / "shp"
    folder.mkdir()
    reference.to_crs(4547).to_file(folder / "grids.shp", encoding="utf-8")
    assert import_grids(engine, folder / "grids.shp").crs == "EPSG:4547"
    assert_same_grids(engine, reference, 1e-8)
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in folder.iterdir():
            zf.write(part, part.name)
    assert import_grids(engine, archive).grids == 1042
    assert_same_grids(engine, reference, 1e-8)


def test_gcj02_geojson_from_a_web_map(engine, reference, tmp_path):
    def to_gcj(coords):
        return np.column_stack(wgs84_to_gcj02(coords[:, 0], coords[:, 1]))

    shifted = reference.set_geometry(shapely.transform(reference.geometry.values, to_gcj), crs=4326)
    path = tmp_path / "grids_gcj.geojson"
    shifted.to_file(path, driver="GeoJSON")
    # Declared as EPSG:4326, as web-map exports are: without --crs it lands ~500 m off and is refused.
    wrong = refused(engine, path)
    assert {"overlap", "outside_district"} & {p.kind for p in wrong.problems} or any(
        p.kind == "gap" for p in wrong.problems)
    assert import_grids(engine, path, crs="gcj02").crs == "gcj02"
    assert_same_grids(engine, reference, 1e-8)


def test_integer_codes_and_chinese_field_names(engine, reference, tmp_path):
    renamed = reference.rename(columns={"code": "网格编码", "name": "网格名称"})
    renamed["网格编码"] = renamed["网格编码"].astype("int64")
    path = tmp_path / "grids_cn.gpkg"
    renamed.to_file(path)
    assert import_grids(engine, path).grids == 1042
    assert_same_grids(engine, reference, 1e-9)


def test_a_clean_import_with_fewer_grids_removes_the_others(engine, reference, tmp_path):
    merged = reference.copy()
    community = merged["code"].str[:12] == merged["code"].iloc[0][:12]
    first = merged[community].index[0]
    merged.loc[first, "geometry"] = shapely.union_all(merged.loc[community, "geometry"].values)
    merged = merged.drop(index=merged[community].index[1:])
    path = tmp_path / "merged.gpkg"
    merged.to_file(path)
    result = import_grids(engine, path)
    assert result.grids == len(merged) and result.removed == community.sum() - 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids")).scalar_one() == len(merged)
    reference.to_file(tmp_path / "restore.gpkg")
    import_grids(engine, tmp_path / "restore.gpkg")
    assert_same_grids(engine, reference, 1e-9)


def test_multilayer_geopackage_needs_a_layer(engine, reference, tmp_path):
    path = tmp_path / "two.gpkg"
    reference.to_file(path, layer="grids")
    reference.head(3).to_file(path, layer="draft")
    error = refused(engine, path)
    assert "--layer" in str(error) and "grids" in str(error) and "draft" in str(error)
    assert "no layer 'nope'" in str(refused(engine, path, layer="nope"))
    assert import_grids(engine, path, layer="grids").grids == 1042


# -- refusals -------------------------------------------------------------------------------
def test_every_geometry_and_code_error_is_listed_and_nothing_stored(engine, reference, tmp_path):
    broken = reference.copy()
    bowtie = shapely.MultiPolygon([shapely.Polygon([(113.0, 23.0), (113.01, 23.01), (113.01, 23.0), (113.0, 23.01)])])
    broken.loc[0, "geometry"] = bowtie                                   # invalid ring
    broken.loc[1, "code"] = broken.loc[2, "code"]                       # duplicate code
    broken.loc[3, "code"] = "44060501100"                               # not 15 digits
    broken.loc[4, "code"] = "440605011999001"                           # unknown community
    broken.loc[5, "geometry"] = shapely.buffer(broken.loc[5, "geometry"], 0.0005)    # overlaps neighbours
    broken.loc[900, "geometry"] = shapely.affinity.translate(broken.loc[900, "geometry"], 1.0)  # outside, and a gap
    path = tmp_path / "broken.gpkg"
    broken.to_file(path)
    error = refused(engine, path)
    found = {(p.kind, p.feature.split(" ")[0]) for p in error.problems if p.severity == "error"}
    assert ("invalid_geometry", "#1") in found
    assert ("duplicate_code", "#3") in found
    assert ("bad_code", "#4") in found
    assert ("unknown_community", "#5") in found
    assert any(kind == "overlap" and feature == "#6" for kind, feature in found)
    assert ("outside_district", "#901") in found
    assert any(kind == "gap" for kind, _ in found)
    assert "nothing was stored" in str(error)


def test_file_level_refusals(engine, reference, tmp_path):
    assert "no such file" in str(refused(engine, tmp_path / "missing.gpkg"))
    (tmp_path / "grids.kml").write_text("<kml/>")
    assert "unsupported format" in str(refused(engine, tmp_path / "grids.kml"))
    (tmp_path / "garbage.gpkg").write_bytes(b"this is not a geopackage")
    assert "cannot read" in str(refused(engine, tmp_path / "garbage.gpkg"))
    reference.rename(columns={"code": "bianhao"}).to_file(tmp_path / "nocode.gpkg")
    error = refused(engine, tmp_path / "nocode.gpkg")
    assert "no grid code field" in str(error) and "bianhao" in str(error)


def test_shapefile_without_crs_needs_crs_flag(engine, reference, tmp_path):
    path = tmp_path / "noprj.shp"
    pyogrio.write_dataframe(reference.to_crs(4547).set_crs(None, allow_override=True), path)
    assert not path.with_suffix(".prj").exists()
    assert "--crs" in str(refused(engine, path))
    before = fingerprint(engine)
    with pytest.raises(ConfigurationError, match="unknown CRS"):
        import_grids(engine, path, crs="not-a-crs")
    assert fingerprint(engine) == before
    assert import_grids(engine, path, crs="4547").grids == 1042
    assert_same_grids(engine, reference, 1e-8)


def test_read_grid_file_reports_names_and_codes(reference, tmp_path):
    frame = reference.head(2).copy()
    frame["code"] = pd.Series([440605011001001.0, None])
    frame["name"] = ["  甲网格 ", None]
    path = tmp_path / "two.geojson"
    frame.to_file(path, driver="GeoJSON")
    grid_file = read_grid_file(path)
    assert list(grid_file.frame["code"]) == ["440605011001001", ""]
    assert list(grid_file.frame["name"]) == ["甲网格", "网格 "]


def test_people_in_a_removed_grid_stay_accounted_for(engine, reference, tmp_path):
    from matching.pipeline import import_feed, run_match
    from tests.matching.feedfiles import valid_id, write_csv

    victim = reference.iloc[0]
    point = victim.geometry.representative_point()
    feed = write_csv(tmp_path / "feed.csv", [["1", "张小明", valid_id(77), "", "", f"{point.x:.7f}", f"{point.y:.7f}",
                                              "WGS84", "确诊", "2099-01-01"]])
    import_feed(engine, feed, "卫健")
    run_match(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT g.code FROM persons p JOIN grids g ON g.id = p.grid_id")).scalar_one() \
            == victim["code"]
    fewer = reference.iloc[1:]
    merged = fewer.copy()
    neighbour = merged.geometry.distance(victim.geometry).idxmin()
    merged.loc[neighbour, "geometry"] = shapely.union(merged.loc[neighbour, "geometry"], victim.geometry)
    merged.to_file(tmp_path / "merged.gpkg")
    import_grids(engine, tmp_path / "merged.gpkg")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT grid_id, unplaced_reason FROM persons")).one()
        flag = conn.execute(text("SELECT grid_id, unplaced_reason FROM flags")).one()
    assert row.grid_id is None and "run gridctl match" in row.unplaced_reason and flag.grid_id is None
    run_match(engine)
    with engine.connect() as conn:
        placed = conn.execute(text("SELECT g.code FROM persons p JOIN grids g ON g.id = p.grid_id")).scalar_one()
    assert placed == merged.loc[neighbour, "code"]
    reference.to_file(tmp_path / "restore.gpkg")
    import_grids(engine, tmp_path / "restore.gpkg")


def test_a_grid_replacement_waits_for_a_match_run_that_is_writing(engine, reference):
    from sqlalchemy.exc import OperationalError

    from matching.repository import lock_match

    before = fingerprint(engine)
    with engine.begin() as matching:
        lock_match(matching)  # a match run between reading the stored persons and writing its changes
        with engine.begin() as importing:
            importing.execute(text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                repository.replace_grids(importing, reference, "waits")
    assert fingerprint(engine) == before
    with engine.begin() as importing:  # the run has committed: the replacement goes ahead
        importing.execute(text("SET LOCAL lock_timeout = '300ms'"))
        repository.replace_grids(importing, reference, "after the run")
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT source FROM grids")).scalars()) == {"after the run"}
    assert_same_grids(engine, reference, 1e-12)
