"""``gridctl bench locate``: the locator against geopandas.sjoin and a PostGIS join, same points, one run.

Points are drawn from the reference population surface inside the stored
grids. Each method runs ``repeat`` times; medians are reported. Timed: the
``sjoin`` call on ready GeoDataFrames; the PostGIS join of the already loaded
point table with ``grids`` (server side, into a temporary table); the
locator's ``locate`` on coordinate arrays (its one-off build is reported
apart, as ``locator_build_s``). Answers are compared point by point.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine, text

from gis.errors import NoGrids
from grids import repository as grid_repository
from grids.population import NANHAI_POPULATION
from grids.repository import copy_rows, point_ewkt
from matching.locator import GridLocator

if TYPE_CHECKING:
    from matching.spark import SparkSettings

T = TypeVar("T")


def _median_time(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The median time of ``repeat`` (at least one) calls of ``run``, and the last one's answer."""
    times = []
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
    if grids.empty:
        raise NoGrids()
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


def without_ids(path: Path, share: float, seed: int = 11) -> tuple[Path, Path]:
    """Two variants of a generated feed for the linkage pipeline: its last ``share`` of rows made second records of
    people of the first rows — once with the person's ID number (``*_ids.csv``: the exact join's case), once without
    any (``*_noid.csv``: phone, name and address only, 10 % of phones with one digit wrong: linkage's case). The same
    people, the same rows, the same categories: only the ID numbers differ."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    copies = int(len(frame) * share)
    tail = np.arange(len(frame) - copies, len(frame))
    people = rng.choice(len(frame) - copies, size=copies, replace=False)
    for column in ("姓名", "手机号", "现住址", "经度", "纬度", "坐标系"):
        frame.loc[tail, column] = frame[column].to_numpy()[people]
    frame.loc[tail, "身份证号码"] = frame["身份证号码"].to_numpy()[people]
    with_ids = path.with_name(path.stem + "_ids.csv")
    frame.to_csv(with_ids, index=False)
    frame.loc[tail, "身份证号码"] = ""
    phones = frame.loc[tail, "手机号"].to_numpy(dtype=object)
    typo = rng.random(copies) < 0.10
    at = rng.integers(3, 11, size=copies)  # a digit after the 13x prefix
    phones[typo] = [p[:i] + str((int(p[i]) + 1) % 10) + p[i + 1:] for p, i in zip(phones[typo], at[typo], strict=True)]
    frame.loc[tail, "手机号"] = phones
    no_ids = path.with_name(path.stem + "_noid.csv")
    frame.to_csv(no_ids, index=False)
    return with_ids, no_ids


def pipeline_benchmark(admin_dsn: str, url_for: Callable[[str], str], rows: int, folder: str | os.PathLike[str],
                       echo: Callable[[str], None] = print, id_less: float = 0.0, travel: float = 0.0,
                       database: str = "nanhai_bench", template: str | None = None,
                       spark: SparkSettings | None = None, both: bool = False, feed_file: Path | None = None) -> dict:
    """Time ``feed import`` + ``match`` of a generated ``rows``-row CSV in a fresh database.

    The database ``database`` is recreated, migrated and seeded with the reference district
    first (not timed; as a copy of ``template``, a seeded database, when given: the tests' seconds instead of a
    seeding); the locator tables are built once before timing, as a deployment has them.
    With ``id_less`` (a share, e.g. 0.2), two runs in turn (:func:`without_ids`): the share of rows as second
    records of known people with their ID numbers, then without (linked by :mod:`matching.linkage`), each in a
    fresh database, and the ratio of the two. With ``travel`` (a share, e.g. 0.3), two runs in turn
    (:func:`travel_benchmark`): the rules before issue 22 on a feed without travel columns, then the default
    rules on the same residents with that share of rows giving 出发地 and 抵达日期.
    """
    if id_less and travel:
        raise ValueError("id_less 与 travel 只能选一 / id_less and travel are separate benchmarks: give one")
    if travel:
        return travel_benchmark(admin_dsn, url_for, rows, folder, travel, echo, database, template)
    if not id_less:
        given = (lambda path, district, book: feed_file) if feed_file else None  # a feed written before, kept
        return _pipeline_run(admin_dsn, url_for, rows, folder, echo, given, database=database, template=template,
                             spark=spark, both=both)
    now = pd.Timestamp.now(tz="Asia/Shanghai").floor("min")
    variants: dict[str, Path] = {}

    def feed(path: Path, district: Any, book: pd.DataFrame) -> Path:
        if not variants:
            from demo.feeds import write_feed

            write_feed(path, rows, district, book, now=now.tz_localize(None))
            variants["ids"], variants["id_less"] = without_ids(path, id_less)
        return variants["id_less" if "ids_done" in variants else "ids"]

    exact = _pipeline_run(admin_dsn, url_for, rows, folder, echo, feed, now, database=database, template=template,
                          spark=spark)
    variants["ids_done"] = variants["ids"]
    linked = _pipeline_run(admin_dsn, url_for, rows, folder, echo, feed, now, database=database, template=template,
                           spark=spark)
    return {"rows": rows, "id_less_share": id_less, "ids_total_s": exact["total_s"],
            "id_less_total_s": linked["total_s"], "ratio": round(linked["total_s"] / exact["total_s"], 2),
            "ids": exact, "id_less": linked}


RULES_BEFORE_ISSUE22 = Path(__file__).with_name("rules_before_issue22.toml")
NATIVE_SHARE = 0.02  # residents whose ID numbers were issued in Hubei
# travellers who came from Hubei: a tenth, so that about as many people are coded yellow by arrival as today's
# category keywords code (the issue's figure is the rules' cost, not that of coding more people)
BENCH_HUBEI_SHARE = 0.1


def travel_benchmark(admin_dsn: str, url_for: Callable[[str], str], rows: int, folder: str | os.PathLike[str],
                     travel: float, echo: Callable[[str], None] = print, database: str = "nanhai_bench",
                     template: str | None = None, hubei_share: float = BENCH_HUBEI_SHARE) -> dict:
    """The pipeline before and after issue 22's rules, side by side in one run, each in a fresh database.

    One feed (:func:`demo.feeds.write_feed`): ``travel`` of the rows give 出发地 and 抵达日期
    (:data:`BENCH_HUBEI_SHARE` of them from Hubei, or ``hubei_share``), :data:`NATIVE_SHARE` of the residents have
    Hubei ID numbers. BEFORE: the rules of :data:`RULES_BEFORE_ISSUE22` (category keywords only: they read
    neither). AFTER: the default rules (``matching/rules.toml``: arrival from a key area counted from the arrival,
    native-place verification). The answer holds both runs (timings, colours, persons coded yellow by arrival,
    verification requests) and ``ratio``, AFTER's total over BEFORE's (issue 22 asks for at most 1.10).
    """
    from demo.feeds import write_feed

    now = pd.Timestamp.now(tz="Asia/Shanghai").floor("min")

    def feed(share: float) -> Callable[[Path, Any, pd.DataFrame], Path]:
        def write(path: Path, district: Any, book: pd.DataFrame) -> Path:
            path = path.with_name(f"{path.stem}_travel{share:g}.csv")
            return write_feed(path, rows, district, book, now=now.tz_localize(None), travel_share=share,
                              native_share=NATIVE_SHARE, hubei_share=hubei_share)
        return write

    echo(f"BEFORE: {RULES_BEFORE_ISSUE22.name}, {travel:.0%} of rows with 出发地 / 抵达日期 "
         f"({hubei_share:.0%} of them from Hubei)")
    before = _pipeline_run(admin_dsn, url_for, rows, folder, echo, feed(travel), now, str(RULES_BEFORE_ISSUE22),
                           census=True, database=database, template=template)
    echo(f"AFTER: matching/rules.toml, {travel:.0%} of rows with 出发地 / 抵达日期")
    after = _pipeline_run(admin_dsn, url_for, rows, folder, echo, feed(travel), now, census=True, database=database,
                          template=template)
    return {"rows": rows, "travel_share": travel, "native_share": NATIVE_SHARE, "hubei_share": hubei_share,
            "before_total_s": before["total_s"],
            "after_total_s": after["total_s"], "ratio": round(after["total_s"] / before["total_s"], 2),
            "before": before, "after": after}


def _timed_match(engine: Engine, spark: SparkSettings | None, now: pd.Timestamp, rules_path: str | None,
                 steps: Callable[[str, float], None]) -> tuple[float, int, dict]:
    """One match on ``spark`` (None: in-process): its seconds, the peak memory of this process tree, its counts."""
    from benchmarks.memory import peak_memory
    from matching.pipeline import run_match

    with peak_memory() as memory:
        started = time.perf_counter()
        if spark is None:
            stats = run_match(engine, now=now.tz_convert("UTC"), rules_path=rules_path, progress=steps)
        else:
            from matching.spark import run_match_spark

            stats = run_match_spark(engine, spark, now=now.tz_convert("UTC"), rules_path=rules_path, progress=steps)
        seconds = time.perf_counter() - started
    stats.pop("spark_partitions", None)
    return seconds, memory.peak, stats


def _checkpoint(engine: Engine) -> None:
    """Write the server's dirty pages out before timing (seeding, the run before): the second of two runs in one
    command otherwise pays the first one's checkpoint. Needs a superuser, as the embedded server's user is."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))


def _census(engine: Engine) -> dict:
    """What the rules made of a run (not timed): persons by rule, those coded yellow counting from their arrival
    date, and the rules' task requests by kind."""
    with engine.connect() as conn:
        by_rule: dict[str, int] = dict(conn.execute(text(
            "SELECT rule_id, count(*) FROM persons WHERE rule_id IS NOT NULL GROUP BY rule_id ORDER BY rule_id")).all())
        # the explanation names the date the rule's days count from (matching.rules._explanations)
        by_arrival = conn.execute(text("SELECT count(*) FROM persons WHERE colour = 'yellow' "
                                       "AND explanation LIKE '%days from arrival on%'")).scalar_one()
        kinds: dict[str, int] = dict(conn.execute(text(
            "SELECT kind, count(*) FROM task_requests WHERE kind IS NOT NULL GROUP BY kind ORDER BY kind")).all())
    return {"persons_by_rule": by_rule, "yellow_by_arrival": by_arrival, "rule_requests_by_kind": kinds,
            "verification_requests": kinds.get("verification", 0)}


def _pipeline_run(admin_dsn: str, url_for: Callable[[str], str], rows: int, folder: str | os.PathLike[str],
                  echo: Callable[[str], None], feed: Callable[[Path, Any, pd.DataFrame], Path] | None = None,
                  now: pd.Timestamp | None = None, rules_path: str | None = None, census: bool = False,
                  database: str = "nanhai_bench", template: str | None = None,
                  spark: SparkSettings | None = None, both: bool = False) -> dict:
    """One timed import + match in a fresh database, of the feed ``feed`` writes (default: a generated one), with
    the rules of ``rules_path`` (default: those in force); ``census`` adds :func:`_census`'s counts. With ``spark``,
    the match runs on that cluster (:mod:`matching.spark`). The match's peak memory is that of this process and
    all it started (the Spark driver's JVM, the workers, the executors), sampled; the database server's apart.
    With ``both`` (and ``spark``), the in-process match is timed first on a copy of the imported database (its
    first match too), and the two runs' counts compared."""
    from demo.feeds import district_of, write_feed
    from gis import migrate
    from gis.db import engine_for
    from gis.embedded import create_database, drop_database
    from grids.seeding import seed_nanhai
    from matching import repository
    from matching.pipeline import grid_locator, import_feed

    drop_database(admin_dsn, database)
    create_database(admin_dsn, database, template=template or "template0")
    engine = engine_for(url_for(database))
    migrate.upgrade(engine)  # on a seeded copy, nothing to do
    seed_nanhai(engine)
    grid_locator(engine)
    with engine.connect() as conn:
        grids = grid_repository.load_grids(conn)
        _, communities, book = repository.load_places(conn)
    book = book.merge(communities[["code", "name_short"]].rename(columns={"code": "community_code",
                                                                          "name_short": "community_name"}))
    path = Path(folder) / f"feed_{rows}.csv"
    if feed is None:
        echo(f"生成 {rows} 行的数据文件 / writing a {rows}-row feed to {path}")
    # The feed's times and the match's clock are the same instant: which codes have expired (14 days, …) then
    # does not depend on how long the import took, and every run finds the same counts.
    now = now if now is not None else pd.Timestamp.now(tz="Asia/Shanghai").floor("min")
    if feed is None:
        write_feed(path, rows, district_of(grids), book, now=now.tz_localize(None))
    else:
        path = feed(path, district_of(grids), book)
    size_mb = path.stat().st_size / 1e6
    _checkpoint(engine)
    timings = {}
    mark: list[Any] = [time.perf_counter(), ""]  # when the step began, and which step
    step_times: dict[str, float] = {}  # seconds by step, the import's and the match's

    def steps(step: str, fraction: float) -> None:
        if step == mark[1]:  # the same step going on (the import reports each chunk)
            return
        now = time.perf_counter()
        if mark[1]:
            echo(f"  {now - mark[0]:6.2f} s  {mark[1]}")
            step_times[mark[1]] = round(step_times.get(mark[1], 0.0) + now - mark[0], 2)
        mark[0], mark[1] = now, step

    started = time.perf_counter()
    result = import_feed(engine, path, "bench", progress=steps)
    timings["import_s"] = time.perf_counter() - started
    steps("", 1.0)  # the import's last step ends with it
    echo(f"feed import: {timings['import_s']:.1f} s (read {result.rows_read}, stored {result.rows_stored}, "
         f"rejected {result.rows_rejected})")
    peer: dict[str, Any] = {}
    if spark is not None and both:  # the in-process engine on a copy of the same database: the same first match
        engine.dispose()
        create_database(admin_dsn, f"{database}_peer", template=database)
        peer_engine = engine_for(url_for(f"{database}_peer"))
        seconds, peak, peer_stats = _timed_match(peer_engine, None, now, rules_path, steps)
        echo(f"match in-process (peer): {seconds:.1f} s, peak memory {peak / 2**30:.2f} GiB")
        peer = {"peer_match_s": round(seconds, 2), "peer_match_peak_gib": round(peak / 2**30, 2)}
        peer_engine.dispose()
        drop_database(admin_dsn, f"{database}_peer")
    timings["match_s"], peak, stats = _timed_match(engine, spark, now, rules_path, steps)
    steps("", 1.0)
    echo(f"match{' on Spark ' + spark.master if spark else ''}: {timings['match_s']:.1f} s, peak memory "
         f"{peak / 2**30:.2f} GiB")
    if peer:
        peer["same_counts"] = all(peer_stats[k] == stats.get(k) for k in peer_stats)
    counts = _census(engine) if census else {}
    engine.dispose()
    drop_database(admin_dsn, database)
    return {"rows": rows, "file_mb": round(size_mb, 1), "import_s": round(timings["import_s"], 2),
            "match_s": round(timings["match_s"], 2), "total_s": round(timings["import_s"] + timings["match_s"], 2),
            "engine": f"spark {spark.master}" if spark else "in-process",
            "match_peak_gib": round(peak / 2**30, 2), **peer,
            **{key.removeprefix("spark_"): value for key, value in stats.items() if key.startswith("spark_")},
            "rows_read": result.rows_read, "rows_stored": result.rows_stored, "rows_rejected": result.rows_rejected,
            **{k: stats[k] for k in ("persons", "red", "yellow", "blue", "green", "unplaced_flags",
                                     "task_requests")},
            **({"steps_s": step_times, **counts} if census else {})}
