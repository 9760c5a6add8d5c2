"""``gridctl bench locate``: the locator against geopandas.sjoin and a PostGIS join, same points, one run.

Points are drawn from the reference population surface inside the stored
grids. Each method runs ``repeat`` times; medians are reported. Timed: the
``sjoin`` call on ready GeoDataFrames; the PostGIS join of the already loaded
point table with ``grids`` (server side, into a temporary table); the
locator's ``locate`` on coordinate arrays (its one-off build is reported
apart, as ``locator_build_s``). Answers are compared point by point.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine, text

from grids import repository as grid_repository
from grids.population import NANHAI_POPULATION
from grids.repository import copy_rows, point_ewkt
from matching.locator import GridLocator


def _median_time(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def locate_benchmark(engine: Engine, points: int, repeat: int = 3, seed: int = 7,
                     echo: Callable[[str], None] = print) -> dict:
    """Run the three methods and return the figures (the CLI prints them as JSON)."""
    with engine.connect() as conn:
        grids = grid_repository.load_grids(conn)
    codes = grids["code"].to_numpy()
    district = shapely.union_all(grids.geometry.values)
    echo(f"生成 {points} 个居民点 / drawing {points} residents from the population surface")
    xy = NANHAI_POPULATION.sample(district, points, np.random.default_rng(seed))
    lon, lat = xy[:, 0], xy[:, 1]

    started = time.perf_counter()
    locator = GridLocator(codes, grids.geometry.values)
    build_s = time.perf_counter() - started
    locator_s, located = _median_time(lambda: locator.locate(lon, lat), repeat)
    ours = locator.codes_of(located)
    echo(f"locator: {locator_s:.3f} s (build {build_s:.1f} s)")

    frame = gpd.GeoDataFrame({"pid": np.arange(points)}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    polygons = gpd.GeoDataFrame({"code": codes}, geometry=grids.geometry.values, crs=4326)
    sjoin_s, joined = _median_time(lambda: gpd.sjoin(frame, polygons, predicate="within", how="left"), repeat)
    joined = joined.drop_duplicates("pid").sort_values("pid")
    theirs = joined["code"].to_numpy(dtype=object)
    echo(f"geopandas.sjoin(within): {sjoin_s:.3f} s")

    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE bench_points (pid int PRIMARY KEY, geom geometry(Point, 4326)) "
                          "ON COMMIT DROP"))
        copy_rows(conn, "bench_points", ("pid", "geom"),
                  ((i, point_ewkt(x, y)) for i, (x, y) in enumerate(zip(lon, lat, strict=True))))
        conn.execute(text("ANALYZE bench_points"))

        def postgis_join() -> None:
            conn.execute(text("DROP TABLE IF EXISTS bench_result"))
            conn.execute(text("CREATE TEMP TABLE bench_result AS SELECT p.pid, g.code FROM bench_points p "
                              "JOIN grids g ON ST_Contains(g.geom, p.geom)"))

        postgis_s, _ = _median_time(postgis_join, repeat)
        rows = conn.execute(text("SELECT pid, code FROM bench_result")).all()
    in_db = np.full(points, None, dtype=object)
    for pid, code in rows:
        in_db[pid] = code
    echo(f"PostGIS ST_Contains join: {postgis_s:.3f} s")

    differences = int(np.sum((ours != theirs) | (ours != in_db)))
    return {"points": points, "repeat": repeat, "sjoin_s": round(sjoin_s, 4), "postgis_s": round(postgis_s, 4),
            "locator_s": round(locator_s, 4), "locator_build_s": round(build_s, 2),
            "speedup_vs_sjoin": round(sjoin_s / locator_s, 1), "speedup_vs_postgis": round(postgis_s / locator_s, 1),
            "differences": differences, "unlocated": int(np.sum(ours == None))}  # noqa: E711
