"""The matcher on Apache Spark: the same run as :func:`matching.pipeline.run_match`, its coding and locating spread
over a cluster's executors.

The run, step by step:

1. **Inputs, on the driver** (:func:`matching.pipeline.load_inputs`, the in-process engine's own code): the records
   from PostGIS, the overrides, the rules, the places; the records without ID numbers linked by the one trained
   linkage model. Linkage stays on the driver: it is the same Splink model, run by the same code, so that the two
   engines' links cannot differ.
2. **Staging**: the records, as stored (sealed addresses, masked fields), written as Parquet partitioned by source
   and day (``source=…/day=YYYY-MM-DD``) under the staging folder, which every executor must be able to read
   (a shared file system, or S3-compatible storage through ``s3a://``).
3. **On the cluster**: the records range-partitioned by person key (a person's records meet in one task: the
   shuffle) and sorted; each task cuts its records into chunks at person boundaries and runs
   :func:`matching.persons.coded_persons` and :class:`matching.persons.Placing` on them (``mapInArrow``), with the
   rules, overrides, grids and the locator's tables broadcast. The results, persons and the rules' task requests,
   are written as Parquet, one file per key range.
4. **Back to PostGIS, on the driver**: the result files read in key order and stored by
   :func:`matching.pipeline.store_run`, chunk by chunk, in one transaction: the run completes whole, or the previous
   results stay in force. A failed Spark job stores nothing and says why (:class:`SparkRunFailed`).

The executors open the home addresses (and, when a rule reads an age, the dates of birth) in memory, as the
in-process engine does: they are sent the Fernet key, never the HMAC key that makes person keys. On a real cluster
turn on Spark's RPC authentication and encryption (README, "The matcher on a Spark cluster").
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gis.config import data_dir
from gis.errors import GridError
from matching import repository
from matching.addresses import AddressMatcher
from matching.locator import GridLocator
from matching.persons import Placing, coded_persons, in_record_order
from matching.pipeline import (
    REQUEST_COLUMNS,
    Progress,
    Replay,
    bulk_work,
    empty_persons,
    grid_locator,
    load_inputs,
    quiet,
    store_run,
)
from matching.privacy import Opener, Vault, load_vault
from matching.record_linking import record_births
from matching.rules import RuleSet

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from sqlalchemy import Engine

DEFAULT_MASTER = "local-cluster[2,1,2048]"
LOG_SETTINGS = Path(__file__).with_name("spark-log4j2.properties")
ROWS_PER_PARTITION = 500_000  # records per key range (a task): a few hundred MB of an executor's memory at most
CHUNK_ROWS = 200_000  # records coded and placed at a time inside a task, cut at a person boundary
STRINGS = ("person_key", "colour", "reason", "rule_id", "sources", "explanation", "id_masked", "name_masked",
           "phone_masked", "method", "unplaced_reason")
# what a task writes: a person (part "person") or one of the rules' task requests (part "request"), in one schema
RESULT_SCHEMA = pa.schema([
    ("part", pa.string()), *[(name, pa.string()) for name in STRINGS],
    ("set_at", pa.timestamp("us", tz="UTC")), ("expires_at", pa.timestamp("us", tz="UTC")),
    ("record_feed_file_id", pa.int64()), ("record_row_number", pa.int64()), ("provisional", pa.bool_()),
    ("lon", pa.float64()), ("lat", pa.float64()), ("confidence", pa.float64()), ("grid_id", pa.int64()),
    ("task_kind", pa.string()), ("since", pa.timestamp("us", tz="UTC"))])


class SparkRunFailed(GridError):
    """The Spark part of a run failed: nothing was stored, the previous run's results stay in force."""


@dataclass(frozen=True)
class SparkSettings:
    """Where and how to run: the master (``local-cluster[N,cores,MB]``, ``local[N]``, ``spark://host:port``,
    ``yarn``, ``k8s://…``), the executors' memory, the staging folder every executor can read (default: the data
    folder's ``spark/``), the key ranges (default: one per :data:`ROWS_PER_PARTITION` records, at least two per
    executor core) and any other Spark settings (``conf``)."""

    master: str = DEFAULT_MASTER
    executor_memory: str = "1g"
    staging: str | None = None
    partitions: int | None = None
    conf: dict[str, str] = field(default_factory=dict)

    def staging_uri(self) -> str:
        return self.staging or str(data_dir() / "spark")


def session(settings: SparkSettings) -> SparkSession:
    """A Spark session on ``settings.master``: times in UTC (the records' are), Arrow between the JVM and Python,
    no web UI unless asked for, quiet logs (nothing personal reaches them). Executors run this Python unless
    ``spark.pyspark.python`` says otherwise (a cluster whose nodes keep the project elsewhere)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # pyspark 4.3 warns that pandas 3 is "not yet fully supported"; the columns crossing here are Arrow tables
    # made and read by pyarrow (mapInArrow), and tests/matching/test_spark.py holds the answers to the in-process
    # engine's, row for row
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    local = not settings.staging or "://" not in settings.staging
    on_this_machine = settings.master.startswith("local")
    if on_this_machine:  # the cluster's processes talk over the loopback interface only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    quiet = f"-Dlog4j2.configurationFile={LOG_SETTINGS.as_uri()}"
    builder = (SparkSession.builder.master(settings.master).appName("nanhai-match")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "50000")
               .config("spark.executor.memory", settings.executor_memory)
               .config("spark.sql.shuffle.partitions", str(settings.partitions or 8))
               .config("spark.driver.extraJavaOptions", quiet))
    if on_this_machine:  # the executors' JVMs find the same file; a remote node keeps its own log settings
        builder = builder.config("spark.executor.extraJavaOptions", quiet)
    if local:
        spill = data_dir() / "spark" / "tmp"
        spill.mkdir(parents=True, exist_ok=True)
        builder = builder.config("spark.local.dir", str(spill))
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_match_spark(engine: Engine, settings: SparkSettings | None = None, now: pd.Timestamp | None = None,
                    rules_path: str | None = None, progress: Progress = quiet, vault: Vault | None = None,
                    replay: Replay | None = None, spark: SparkSession | None = None) -> dict[str, int]:
    """Match everyone on Spark (see the module): the answers of :func:`matching.pipeline.run_match`, stored the same
    way. ``spark``: a session already started (tests share one); else one is started on ``settings`` and stopped
    at the end. Raises :class:`SparkRunFailed` when the cluster's part fails; nothing is then stored."""
    settings = settings or SparkSettings()
    with bulk_work():
        inputs = load_inputs(engine, now, rules_path, progress, vault, replay)
        if inputs.records.empty:
            return store_run(engine, inputs, [empty_persons()], pd.DataFrame(columns=list(REQUEST_COLUMNS)),
                             replay)
        vault = vault or load_vault()
        records = inputs.records
        if inputs.rules.reads("age"):  # the sealed fields travel sealed; executors open the births
            with engine.connect() as conn:
                sealed = repository.load_sealed(conn)
            records = records.merge(sealed, on=["feed_file_id", "row_number"], how="left")
        locator, grid_ids = grid_locator(engine)
        job = _Job(uuid.uuid4().hex, inputs.rules, inputs.now, inputs.overrides, locator.codes,
                   [g.wkb for g in locator.geoms], {name: getattr(locator, name) for name in GridLocator.TABLES},
                   grid_ids, inputs.places, vault.opener().key, inputs.rules.reads("age"))
        run_dir = f"{settings.staging_uri().rstrip('/')}/run-{job.run_id}"
        if spark is None:
            spark = _running(settings)
        owned = spark is None
        try:
            progress("暂存记录 / staging records as Parquet", 0.15)
            _stage(records, f"{run_dir}/records")
            # the driver keeps no record while the cluster works: they are in the staging folder now
            inputs, records = replace(inputs, records=inputs.records.iloc[:0]), None
            if spark is None:
                progress("启动 Spark / starting Spark", 0.2)
                spark = session(settings)
            partitions = settings.partitions or max(2 * _cores(spark),
                                                    math.ceil(inputs.record_count / ROWS_PER_PARTITION))
            stages = _compute(spark, job, run_dir, partitions, progress)
            progress("写入人员、历史、任务请求与标记 / storing persons, history, task requests and flags", 0.9)
            requests = _requests(f"{run_dir}/results")
            stats = store_run(engine, inputs, _read_ahead(_persons(f"{run_dir}/results")), requests, replay)
        finally:
            if owned and spark is not None:
                spark.stop()
            _remove(run_dir)
    stats.update(spark_partitions=partitions, **{f"spark_{key}": value for key, value in stages.items()})
    progress("完成 / done", 1.0)
    return stats


@dataclass(frozen=True)
class _Job:
    """What every task is sent (broadcast once per executor)."""

    run_id: str
    rules: RuleSet
    now: pd.Timestamp
    overrides: pd.DataFrame
    codes: np.ndarray
    geoms: list[bytes]
    tables: dict[str, np.ndarray]
    grid_ids: np.ndarray
    places: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
    fernet_key: bytes
    births: bool


def _spark_path(uri: str) -> str:
    """The same place as Spark names it (pyarrow's ``s3://`` is Hadoop's ``s3a://``)."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri


def _stage(records: pd.DataFrame, uri: str) -> None:
    """Write the records as Parquet, partitioned by source and by the district's day of their report."""
    table = pa.Table.from_pandas(records, preserve_index=False)
    beijing = pc.add(table.column("reported_at").cast(pa.timestamp("us")), pa.scalar(8 * 3600 * 1_000_000,
                                                                                    pa.duration("us")))
    # the partition keys are copies: a folder name is percent-encoded bytes, which Spark reads back per byte, so
    # the sources' own (Chinese) names travel inside the files
    table = table.append_column("source_part", table.column("source"))
    table = table.append_column("day", pc.strftime(beijing, format="%Y-%m-%d"))
    fs, path = pafs.FileSystem.from_uri(uri)
    ds.write_dataset(table, path, filesystem=fs, format="parquet", partitioning=["source_part", "day"],
                     partitioning_flavor="hive", max_rows_per_group=256 * 1024, existing_data_behavior="error")


def _running(settings: SparkSettings) -> SparkSession | None:
    """The Spark session this process runs already on the same master (a notebook's, a test module's): used and
    left running. One on another master is an error: a process has one Spark context."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        return None
    if active.sparkContext.master != settings.master:
        running = active.sparkContext.master
        raise GridError(f"本进程已有运行在 {running} 上的 Spark 会话：请用 --master {running}，或在新进程中运行 / "
                        f"this process already runs a Spark session on {running}, not {settings.master}: give "
                        f"--master {running}, or run in a new process")
    return active


def _cores(spark: SparkSession) -> int:
    return max(1, int(spark.sparkContext.defaultParallelism))


def _compute(spark: SparkSession, job: _Job, run_dir: str, partitions: int, progress: Progress) -> dict[str, int]:
    """The cluster's part: shuffle the staged records into key ranges, code and place each range, write the
    results. Progress is the share of the job's tasks done. Returns what its stages did (:func:`_stages`)."""
    context = spark.sparkContext
    shared = context.broadcast(job)
    group = f"nanhai-match-{job.run_id}"
    context.setJobGroup(group, "南海区赋码与定位 / Nanhai coding and locating")
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(context, group, progress, done), daemon=True)
    watcher.start()
    try:
        records = spark.read.parquet(_spark_path(f"{run_dir}/records"))
        (records.repartitionByRange(partitions, "person_key")
         .sortWithinPartitions("person_key", "feed_file_id", "row_number")
         .mapInArrow(lambda batches: _code_and_place(shared.value, batches), _spark_schema())
         .write.partitionBy("part").parquet(_spark_path(f"{run_dir}/results")))
        return _stages(context, group)
    except Exception as exc:  # the JVM's and the executors' failures alike: nothing has been stored yet
        why = _why(exc)
        raise SparkRunFailed(f"Spark 计算失败，未写入任何结果，上一次的赋码仍然有效：{why}。排除原因后重新运行 gridctl "
                             f"match --engine spark / the Spark run failed and stored nothing; the previous codes stay "
                             f"in force: {why}. Remove the cause and run gridctl match --engine spark again") from exc
    finally:
        done.set()
        watcher.join()
        shared.destroy()


def _stages(context: Any, group: str) -> dict[str, int]:
    """What the run's stages did, from Spark's status store: the bytes their shuffles wrote (what a cluster's
    network carries: ``shuffle_bytes``), and per stage that ran, in order, its tasks, wall time and executors'
    run time (``stage_<n>_tasks``, ``stage_<n>_ms``, ``stage_<n>_run_ms``): where a run's time goes."""
    tracker, store = context.statusTracker(), context._jsc.sc().statusStore()
    found = {"shuffle_bytes": 0}
    ran = 0
    for job_id in sorted(tracker.getJobIdsForGroup(group)):
        job = tracker.getJobInfo(job_id)
        for stage_id in sorted(job.stageIds) if job else ():
            stage = store.lastStageAttempt(stage_id)
            found["shuffle_bytes"] += int(stage.shuffleWriteBytes())
            began, ended = stage.submissionTime(), stage.completionTime()
            if began.isDefined() and ended.isDefined():  # skipped stages (their shuffle reused) never began
                found.update({f"stage_{ran}_tasks": int(stage.numTasks()),
                              f"stage_{ran}_ms": int(ended.get().getTime() - began.get().getTime()),
                              f"stage_{ran}_run_ms": int(stage.executorRunTime())})
                ran += 1
    return found


def _why(exc: BaseException) -> str:
    """The cause in one line: the executor's Python exception (its last line) or the JVM's first."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    python = [line for line in lines if not line.startswith(("at ", "File ", "^", "~"))]
    if "Traceback" in str(exc):
        tail = [line for line in python if ":" in line or line.endswith(("Error", "Token", "Exception"))]
        line = tail[-1] if tail else python[-1]
    else:
        line = python[0] if python else type(exc).__name__
    return line[:300]


def _watch(context: Any, group: str, progress: Progress, done: threading.Event) -> None:
    """Report the share of the run's tasks done, every second, between 0.25 and 0.85."""
    tracker = context.statusTracker()
    while not done.wait(1.0):
        total = finished = 0
        for job_id in tracker.getJobIdsForGroup(group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job else ():
                stage = tracker.getStageInfo(stage_id)
                if stage:
                    total += stage.numTasks
                    finished += stage.numCompletedTasks
        if total:
            progress("集群赋码与定位 / coding and locating on the cluster", 0.25 + 0.6 * finished / total)


def _spark_schema() -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(RESULT_SCHEMA)


_PLACING: dict[str, Placing] = {}  # per executor process: the run's placing (its locator built once, not per task)


def _placing(job: _Job) -> Placing:
    if job.run_id not in _PLACING:
        import shapely

        _PLACING.clear()
        locator = GridLocator(job.codes, shapely.from_wkb(job.geoms), tables=job.tables)
        _PLACING[job.run_id] = Placing(locator, job.grid_ids, AddressMatcher(*job.places))
    return _PLACING[job.run_id]


def _code_and_place(job: _Job, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One task: its records (sorted by person) in chunks of whole persons, each coded and placed."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows < CHUNK_ROWS:
            continue
        table = pa.Table.from_batches(pending)
        keys = table.column("person_key")
        last = keys[len(keys) - 1]
        # the last person may go on in the next batch: he waits for it
        cut = len(keys) - int(pc.sum(pc.equal(keys, last)).as_py())
        if cut == 0:
            continue
        yield from _chunk(job, table.slice(0, cut))
        rest = table.slice(cut)
        pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield from _chunk(job, pa.Table.from_batches(pending))


def _chunk(job: _Job, table: pa.Table) -> Iterator[pa.RecordBatch]:
    """Code and place the persons of ``table`` (all their records): persons and task requests as result rows."""
    columns = [name for name in table.column_names if name not in ("source_part", "day")]
    records = table.select(columns).to_pandas()
    records = in_record_order(records.assign(identified=records["identified"].astype(bool)))
    opener = Opener(job.fernet_key)
    if job.births:
        records = records.assign(birth=record_births(records, records[["feed_file_id", "row_number", "sealed"]],
                                                     opener)).drop(columns="sealed")
    coded = coded_persons(records, job.rules, job.now, job.overrides, opener)
    placed = _placing(job)(coded.persons, coded.lon, coded.lat, coded.addresses)
    yield from _result_table(placed, coded.requests).to_batches()


def _result_table(persons: pd.DataFrame, requests: pd.DataFrame) -> pa.Table:
    """Persons and requests in :data:`RESULT_SCHEMA` (a request's ``kind`` as ``task_kind``)."""
    def column(frame: pd.DataFrame, name: str, kind: pa.DataType) -> pa.Array:
        if name not in frame:
            return pa.nulls(len(frame), kind)
        values = frame[name]
        if pa.types.is_string(kind):
            return pa.array(values.astype(object).where(values.notna(), None).to_numpy(dtype=object), kind)
        if pa.types.is_integer(kind):
            return pa.array(pd.array(values, dtype="Int64"), kind)
        return pa.array(values, kind, from_pandas=True)

    requests = requests.rename(columns={"kind": "task_kind"})
    tables = []
    for part, frame in (("person", persons), ("request", requests)):
        arrays = [pa.array(np.full(len(frame), part, dtype=object), pa.string())]
        arrays += [column(frame, f.name, f.type) for f in list(RESULT_SCHEMA)[1:]]
        tables.append(pa.Table.from_arrays(arrays, schema=RESULT_SCHEMA))
    return pa.concat_tables(tables)


def _result_files(uri: str, part: str) -> list[str]:
    fs, path = pafs.FileSystem.from_uri(uri)
    found = fs.get_file_info(pafs.FileSelector(f"{path}/part={part}", allow_not_found=True))
    return sorted(info.path for info in found if info.is_file and info.path.endswith(".parquet"))


def _read(uri: str, part: str) -> Iterator[pd.DataFrame]:
    """The result rows of one part, file by file, in the order Spark wrote them (key ranges in key order)."""
    fs, _ = pafs.FileSystem.from_uri(uri)
    for path in _result_files(uri, part):
        table = pq.read_table(path, filesystem=fs)
        yield pd.DataFrame({name: _pandas(table.column(name)) for name in table.column_names if name != "part"})


def _pandas(values: pa.ChunkedArray) -> Any:
    """A result column as the in-process engine's frames hold it: text as objects (None when missing), whole
    numbers that may be missing as Int64, times as UTC microseconds."""
    kind = values.type
    if pa.types.is_string(kind):
        # each distinct text made a Python object once (a colour, a reason: a handful of them in ten million rows),
        # the column an array of references to them
        encoded = pc.dictionary_encode(values).combine_chunks()
        texts = encoded.dictionary.to_numpy(zero_copy_only=False)
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        taken = texts.take(np.nan_to_num(codes, nan=0).astype(np.int64)) if len(texts) else \
            np.full(len(codes), None, dtype=object)
        taken[encoded.indices.is_null().to_numpy(zero_copy_only=False)] = None
        return taken
    if pa.types.is_integer(kind):
        return pd.array(values.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), dtype="Int64")
    if pa.types.is_timestamp(kind):
        return pd.to_datetime(values.to_pandas(), utc=True).array.as_unit("us")
    return values.to_numpy(zero_copy_only=False)


_PERSON_COLUMNS = list(empty_persons().columns)


def _persons(uri: str) -> Iterator[pd.DataFrame]:
    for frame in _read(uri, "person"):
        frame = frame[_PERSON_COLUMNS].copy()
        frame["provisional"] = frame["provisional"].astype(bool)
        for name in ("record_feed_file_id", "record_row_number"):
            frame[name] = frame[name].astype("int64")
        yield frame


def _read_ahead(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``frames``, the next one read (Parquet, into pandas) in a thread while the caller stores this one: the
    read-back and the database's COPY overlap, as placing and storing do in the in-process engine. A caller that
    stops early (its transaction failed) stops the reader too."""
    import queue

    ahead: queue.Queue = queue.Queue(maxsize=1)
    done, stop = object(), threading.Event()

    def read() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    return
                ahead.put(frame)
            ahead.put(done)
        except BaseException as exc:  # handed to the storing thread, which raises it there
            ahead.put(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # a reader waiting for room: make it, until it sees the stop
            try:
                ahead.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


def _requests(uri: str) -> pd.DataFrame:
    frames = [frame.rename(columns={"task_kind": "kind"})[list(REQUEST_COLUMNS)] for frame in _read(uri, "request")]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[us, UTC]" if c == "since" else object)
                             for c in REQUEST_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _remove(uri: str) -> None:
    """The run's staging and results, gone once stored (or failed)."""
    if "://" not in uri:
        shutil.rmtree(uri, ignore_errors=True)
        return
    fs, path = pafs.FileSystem.from_uri(uri)
    try:
        fs.delete_dir(path)
    except OSError:
        pass
