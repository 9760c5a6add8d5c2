"""Import real grid boundaries from GeoPackage, Shapefile (plain or zipped) or GeoJSON.

The file is read with pyogrio; its CRS comes from the file or from the
operator (``--crs``: an EPSG code, or gcj02 / bd09 for files traced on Chinese
web maps, which usually and wrongly declare EPSG:4326). Everything is
converted to WGS84 and checked with :func:`grids.validation.check_grids`.
An import with any error stores nothing and lists every error; a clean one
replaces the district's grids and rebuilds their H3 cells in one transaction.

>>> result = import_grids(engine, "grids.gpkg", crs="4547")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine, text

from gis.crs import SourceCRS, geometries_to_wgs84, parse_crs
from gis.errors import ImportRejected
from grids import repository
from grids.nanhai import DISTRICT_CODE
from grids.validation import GridProblem, check_grids, has_errors

CODE_FIELDS = ("code", "grid_code", "gridcode", "grid_id", "wgbm", "wgdm", "网格编码", "网格代码", "网格编号", "编码")
NAME_FIELDS = ("name", "grid_name", "gridname", "wgmc", "网格名称", "网格名", "名称")
SUFFIXES = {".gpkg": "GeoPackage", ".shp": "Shapefile", ".zip": "zipped Shapefile",
            ".geojson": "GeoJSON", ".json": "GeoJSON"}


@dataclass
class GridFile:
    """Grids read from a file, in WGS84, with the problems found while reading."""

    path: Path
    crs: SourceCRS
    frame: gpd.GeoDataFrame
    problems: list[GridProblem] = field(default_factory=list)


def _dataset(path: Path) -> str:
    if path.suffix.lower() == ".zip":
        return f"/vsizip/{path}"
    return str(path)


def _pick_field(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for alias in aliases:
        if alias in lowered:
            return lowered[alias]
    return None


def _code_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_grid_file(path: str | Path, layer: str | None = None, crs: str | int | None = None) -> GridFile:
    """Read a grid file into WGS84 (code, name, geometry), or raise :class:`ImportRejected`."""
    path = Path(path)
    if not path.exists():
        raise ImportRejected(f"文件不存在 / no such file: {path}")
    if path.suffix.lower() not in SUFFIXES:
        raise ImportRejected(f"不支持的格式 {path.suffix} / unsupported format {path.suffix}: "
                             "use GeoPackage (.gpkg), Shapefile (.shp or .zip) or GeoJSON (.geojson)")
    dataset = _dataset(path)
    try:
        layers = pyogrio.list_layers(dataset)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise ImportRejected(f"无法读取文件 / cannot read {path.name}: {exc}") from exc
    if layer is None and len(layers) > 1:
        layer_names = ", ".join(str(name) for name, _ in layers)
        raise ImportRejected(f"文件含多个图层，请用 --layer 指定 / the file has several layers, pick one with "
                             f"--layer: {layer_names}")
    if layer is not None and layer not in [name for name, _ in layers]:
        raise ImportRejected(f"图层 {layer!r} 不存在 / no layer {layer!r} in {path.name}")
    try:
        frame = pyogrio.read_dataframe(dataset, layer=layer)
    except Exception as exc:
        raise ImportRejected(f"无法读取文件 / cannot read {path.name}: {exc}") from exc

    source = parse_crs(crs)
    if source is None:
        if frame.crs is None:
            raise ImportRejected(f"{path.name} 没有声明坐标系，请用 --crs 指定 / declares no CRS: pass --crs "
                                 "(4490, 4547, 4326, gcj02 or bd09)")
        source = SourceCRS(crs=frame.crs)
    columns = [c for c in frame.columns if c != "geometry"]
    code_field = _pick_field(columns, CODE_FIELDS)
    if code_field is None:
        raise ImportRejected(f"找不到网格编码字段 / no grid code field in {path.name}: expected one of "
                             f"{', '.join(CODE_FIELDS)}; the file has {', '.join(columns) or 'no fields'}")
    name_field = _pick_field(columns, NAME_FIELDS)
    codes = [_code_text(v) for v in frame[code_field]]
    names = [str(v).strip() if name_field and pd.notna(v) and str(v).strip() else f"网格 {c}"
             for v, c in zip(frame[name_field] if name_field else [None] * len(frame), codes, strict=True)]

    geoms = np.array(frame.geometry.values, dtype=object)
    present = np.array([g is not None and not shapely.is_empty(g) for g in geoms])
    if present.any():
        geoms[present] = geometries_to_wgs84(geoms[present], source)
    geoms = np.array([MultiPolygon([g]) if g is not None and g.geom_type == "Polygon" else g for g in geoms],
                     dtype=object)
    out = gpd.GeoDataFrame({"code": codes, "name": names}, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return GridFile(path=path, crs=source, frame=out)


@dataclass
class ImportResult:
    path: Path
    crs: str
    grids: int
    removed: int
    cells: int
    warnings: list[GridProblem]
    persons: int = 0


def import_grids(engine: Engine, path: str | Path, layer: str | None = None,
                 crs: str | int | None = None) -> ImportResult:
    """Check a grid file against the stored district and, when clean, replace the district's grids."""
    grid_file = read_grid_file(path, layer, crs)
    frame = grid_file.frame
    with engine.connect() as conn:
        outline = repository.district_outline(conn, DISTRICT_CODE)
        communities = set(repository.community_ids(conn))
    if outline is None:
        raise ImportRejected("数据库中还没有区界，请先运行 gridctl seed nanhai / no district outline loaded yet: "
                             "run `gridctl seed nanhai` first")
    problems = check_grids(frame["code"], frame.geometry.values, outline, DISTRICT_CODE, communities)
    if has_errors(problems):
        errors = [p for p in problems if p.severity == "error"]
        raise ImportRejected(f"{grid_file.path.name}: {len(errors)} 个错误，未导入任何网格 / {len(errors)} errors, "
                             "nothing was stored", problems)
    source = f"imported: {grid_file.path.name} ({grid_file.crs})"
    with engine.begin() as conn:
        summary = repository.replace_grids(conn, frame, source)
        persons = conn.execute(text("SELECT count(*) FROM persons")).scalar_one()
    return ImportResult(path=grid_file.path, crs=str(grid_file.crs), grids=summary["grids"],
                        removed=summary["removed"], cells=summary["cells"],
                        warnings=[p for p in problems if p.severity != "error"], persons=persons)


def check_stored_grids(engine: Engine) -> list[GridProblem]:
    """Run every grid check on the grids stored in the database."""
    with engine.connect() as conn:
        grids = repository.load_grids(conn)
        outline = repository.district_outline(conn, DISTRICT_CODE)
        communities = set(repository.community_ids(conn))
    return check_grids(grids["code"], grids.geometry.values, outline, DISTRICT_CODE, communities)
