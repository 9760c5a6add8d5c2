"""gridctl — the one command line for every operator task of the Nanhai grid platform.

    gridctl db start|stop|status|url|upgrade|downgrade
    gridctl seed nanhai [--seed N] [--force]
    gridctl grids import FILE [--layer L] [--crs CRS]
    gridctl grids check [--json] · grids preview FILE · grids apply FILE [--stamp S]
    gridctl feed import --source S FILE · match [--as-of T --name N] · replay list|export|delete
    gridctl flags export|unplaced · codes override
    gridctl feed history · feed withdraw ID --reason R [--queue]
    gridctl rules list|show|save|rollback · people backfill-phones · purge [--older-than DAYS]
    gridctl users demo [--password P] · tasks sweep · demo activity [--seed N] · demo roster FILE [--rows N]
    gridctl users add|import|list|disable|enable|reset-password
    gridctl jobs worker [--once] · jobs import --source S FILE · jobs list · jobs show ID
    gridctl bench locate|pipeline|linkage|updates|wall|stats|replay|adminload|addresses|field|gate|observation|followups
    gridctl serve [--host H] [--port P] [--production] · backup FILE|--keep N DIR · restore FILE [--force]

Every expected failure prints one clear message (Chinese, then English) and
exits with status 1; nothing is half-stored.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from gis.errors import GridError, ImportRejected, user_message

if TYPE_CHECKING:  # for annotations only: the commands import what they use when they run, to start fast
    from datetime import datetime

    import pandas as pd
    from flask import Flask
    from sqlalchemy import Engine

    from accounts.actor import Actor
    from accounts.roster import Outcome
    from gis.embedded import EmbeddedServer
    from matching.spark import SparkSettings

P = ParamSpec("P")
R = TypeVar("R")


def _fail_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ImportRejected as exc:
            click.echo(user_message(exc), err=True)
            for problem in exc.problems:
                click.echo(f"  [{problem.severity}] {problem.feature}: {problem.reason}", err=True)
            sys.exit(1)
        except GridError as exc:
            click.echo(user_message(exc), err=True)
            sys.exit(1)
    return wrapper


def _engine() -> Engine:
    from gis.db import get_engine

    return get_engine()


def _grid_file_options(command: Callable[..., None]) -> Callable[..., None]:
    """PATH, --layer and --crs: how every grids command that reads a boundary file names it."""
    for option in reversed((click.argument("path", type=click.Path(dir_okay=False)),
                            click.option("--layer", default=None, help="layer of a multi-layer file (GeoPackage)"),
                            click.option("--crs", default=None,
                                         help="source CRS: EPSG code (4490, 4547, 4326), gcj02 or bd09"))):
        command = option(command)
    return command


@click.group()
def main() -> None:
    """南海网格指挥平台 / Nanhai grid command platform."""


# -- database ---------------------------------------------------------------
@main.group()
def db() -> None:
    """The database: the embedded PostGIS, or the server named by DATABASE_URL."""


def _embedded() -> EmbeddedServer | None:
    from gis.config import external_database_url
    from gis.embedded import EmbeddedServer

    if external_database_url():
        click.echo("DATABASE_URL 已设置，不启动本地服务器 / DATABASE_URL is set: nothing local is managed.")
        return None
    return EmbeddedServer()


@db.command("start")
@_fail_cleanly
def db_start() -> None:
    """Create (first time) and start the embedded PostGIS; does nothing if it runs."""
    server = _embedded()
    if server is None:
        return
    started = server.start()
    status = server.status()
    verb = "已启动 / started" if started else "已在运行 / already running"
    click.echo(f"嵌入式 PostGIS {verb}: 127.0.0.1:{status['port']} ({status['cluster']})")


@db.command("stop")
@_fail_cleanly
def db_stop() -> None:
    """Stop the embedded PostGIS."""
    server = _embedded()
    if server is None:
        return
    click.echo("已停止 / stopped" if server.stop() else "未在运行 / not running")


@db.command("status")
@_fail_cleanly
def db_status() -> None:
    """Say whether the embedded PostGIS runs, where, and on which port."""
    server = _embedded()
    if server is None:
        return
    status = server.status()
    state = "运行中 / running" if status["running"] else "已停止 / stopped"
    click.echo(f"{state}\nport: {status['port']}\ncluster: {status['cluster']}\nlog: {status['log']}")
    if not status["running"]:
        sys.exit(3)


@db.command("url")
@_fail_cleanly
def db_url() -> None:
    """Print the SQLAlchemy URL of the platform's database (starting the embedded server)."""
    from gis.db import database_url

    click.echo(database_url())


@db.command("upgrade")
@click.argument("revision", default="head")
@_fail_cleanly
def db_upgrade(revision: str) -> None:
    """Apply the schema migrations (Alembic) up to REVISION (default: head)."""
    from gis import migrate

    engine = _engine()
    migrate.upgrade(engine, revision)
    click.echo(f"数据库结构已是 / schema at revision {migrate.current_revision(engine)}")


@db.command("downgrade")
@click.argument("revision")
@_fail_cleanly
def db_downgrade(revision: str) -> None:
    """Undo schema migrations down to REVISION ("base" removes every table)."""
    from gis import migrate

    engine = _engine()
    migrate.downgrade(engine, revision)
    click.echo(f"数据库结构已是 / schema at revision {migrate.current_revision(engine)}")


# -- seed ---------------------------------------------------------------------
@main.group()
def seed() -> None:
    """Load reference data."""


@seed.command("nanhai")
@click.option("--seed", "seed_value", type=int, default=None, help="generator seed (default 20200202)")
@click.option("--force", is_flag=True, help="replace the stored district even if it is the same or imported")
@_fail_cleanly
def seed_nanhai_command(seed_value: int | None, force: bool) -> None:
    """Generate and store the Nanhai reference district (idempotent, deterministic)."""
    from grids.nanhai import DEFAULT_SEED
    from grids.seeding import seed_nanhai

    started = time.monotonic()
    result = seed_nanhai(_engine(), DEFAULT_SEED if seed_value is None else seed_value, force,
                         progress=lambda step: click.echo(f"… {step}"))
    click.echo(result.message)
    click.echo("  " + ", ".join(f"{table} {count}" for table, count in result.counts.items())
               + f"  ({time.monotonic() - started:.1f} s)")


# -- grids ----------------------------------------------------------------------
@main.group()
def grids() -> None:
    """Grid boundaries: import real ones, check the stored ones."""


@grids.command("import")
@_grid_file_options
@_fail_cleanly
def grids_import(path: str, layer: str | None, crs: str | None) -> None:
    """Replace the district's grids with the boundaries in PATH (all or nothing)."""
    from grids.importing import import_grids

    engine = _engine()
    result = import_grids(engine, path, layer, crs)
    click.echo(f"已导入 {result.grids} 个网格（删除 {result.removed} 个，H3 单元 {result.cells} 个）/ imported "
               f"{result.grids} grids from {result.path.name} ({result.crs}); {result.removed} removed, "
               f"{result.cells} H3 cells")
    for problem in result.warnings:
        click.echo(f"  [warning] {problem.feature}: {problem.reason}")
    if result.persons:
        click.echo("网格已变，重新匹配人员 / the grids changed: matching everyone again")
        _match(engine)


@grids.command("check")
@click.option("--json", "as_json", is_flag=True, help="print the findings as JSON")
@_fail_cleanly
def grids_check(as_json: bool) -> None:
    """Report invalid geometries, overlaps, gaps, bad or duplicate codes, grids outside the district."""
    from grids.importing import check_stored_grids

    problems = check_stored_grids(_engine())
    errors = sum(p.severity == "error" for p in problems)
    if as_json:
        click.echo(json.dumps({"errors": errors, "warnings": len(problems) - errors,
                               "problems": [p.as_dict() for p in problems]}, ensure_ascii=False, indent=2))
    else:
        if not problems:
            click.echo("网格检查通过：无错误、无警告 / all grids pass: no errors, no warnings")
        else:
            width = max(len(p.feature) for p in problems)
            click.echo(f"{'severity':8}  {'kind':17}  {'feature':{width}}  reason")
            for p in problems:
                click.echo(f"{p.severity:8}  {p.kind:17}  {p.feature:{width}}  {p.reason}")
            click.echo(f"{errors} 个错误，{len(problems) - errors} 个警告 / {errors} errors, "
                       f"{len(problems) - errors} warnings")
    if errors:
        sys.exit(1)


# -- feeds, matching, flags -------------------------------------------------------
class _Bar:
    """A progress bar over the named steps of a long run (``progress(step, fraction)``)."""

    def __init__(self, label: str) -> None:
        self.bar = click.progressbar(length=100, label=label, show_percent=True, show_eta=False,
                                     item_show_func=lambda step: step, file=sys.stderr)
        self.done = 0

    def __enter__(self) -> _Bar:
        self.bar.__enter__()
        return self

    def __call__(self, step: str, fraction: float) -> None:
        target = int(fraction * 100)
        self.bar.update(max(target - self.done, 0), step)
        self.done = max(target, self.done)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.bar.__exit__(kind, exc, traceback)


@main.group()
def feed() -> None:
    """Department feeds (source files)."""


@feed.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--source", required=True, help="the department that sent the file (公安, 卫健, 通信…)")
@click.option("--crs", default="wgs84", show_default=True,
              help="coordinate system of rows without a 坐标系 column: wgs84, gcj02, bd09 or cgcs2000")
@click.option("--match/--no-match", "then_match", default=True, show_default=True,
              help="re-run the matcher after a successful import")
@click.option("--rejections", type=click.Path(dir_okay=False), default=None,
              help="also write the rejected rows (row number and reasons) to this CSV")
@click.option("--warnings", "warnings_csv", type=click.Path(dir_okay=False), default=None,
              help="also write the field warnings (row number, field, reason: a stored row's phone, point or "
                   "time that was ignored) to this CSV")
@_fail_cleanly
def feed_import(path: str, source: str, crs: str, then_match: bool, rejections: str | None,
                warnings_csv: str | None) -> None:
    """Import a CSV or Excel feed: every row stored or rejected with its reason; a stored row's malformed phone,
    point or time is ignored with a field warning."""
    from matching.pipeline import import_feed

    engine = _engine()
    started = time.monotonic()
    with _Bar("导入 / import") as bar:
        result = import_feed(engine, path, source, crs, progress=bar)
    if result.already_imported:
        click.echo(f"{result.file_name} 已导入过（{source}），未作更改 / already imported from {source}: nothing "
                   "changed")
    for row, reason in result.rejections[:50]:
        click.echo(f"  第 {row} 行 / row {row}: {reason}")
    if len(result.rejections) > 50:
        click.echo(f"  … 另有 {len(result.rejections) - 50} 行被拒 / {len(result.rejections) - 50} more rejected rows")
    for row, field, reason in result.field_warnings[:50]:
        click.echo(f"  第 {row} 行 / row {row} 字段警告 / field warning ({field}): {reason}")
    if len(result.field_warnings) > 50:
        more = len(result.field_warnings) - 50
        click.echo(f"  … 另有 {more} 条字段警告 / {more} more field warnings")
    import csv

    if rejections and result.rejections:
        with open(rejections, "w", newline="", encoding="utf-8-sig") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "reasons"])
            writer.writerows(result.rejections)
    if warnings_csv and result.field_warnings:
        with open(warnings_csv, "w", newline="", encoding="utf-8-sig") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "field", "reason"])
            writer.writerows(result.field_warnings)
    for warning in result.warnings:
        click.echo(f"注意 / warning: {warning}")
    click.echo(f"读取 {result.rows_read} 行 = 入库 {result.rows_stored} + 拒收 {result.rows_rejected}，字段警告 "
               f"{result.rows_warned} 行 / read {result.rows_read} = stored {result.rows_stored} + rejected "
               f"{result.rows_rejected}, rows with field warnings: {result.rows_warned}"
               f"  ({time.monotonic() - started:.1f} s)")
    if then_match and not result.already_imported:
        _match(engine)


def _match(engine: Engine, spark: SparkSettings | None = None) -> None:
    from matching.pipeline import run_match

    started = time.monotonic()
    with _Bar("匹配 / match" if spark is None else f"匹配 / match on Spark ({spark.master})") as bar:
        if spark is None:
            stats = run_match(engine, progress=bar)
        else:
            from matching.spark import run_match_spark

            stats = run_match_spark(engine, spark, progress=bar)
    click.echo(f"人员 {stats['persons']}：红 {stats['red']} 黄 {stats['yellow']} 蓝 {stats['blue']} 绿 "
               f"{stats['green']}；赋码变更 {stats['code_changes']}，新任务请求 {stats['task_requests']}，未定位 "
               f"{stats['unplaced_flags']} / persons {stats['persons']} (red {stats['red']}, yellow "
               f"{stats['yellow']}, blue {stats['blue']}, green {stats['green']}); {stats['code_changes']} code "
               f"changes, {stats['task_requests']} task requests, {stats['unplaced_flags']} unplaced flags"
               f"  ({time.monotonic() - started:.1f} s)")
    if stats.get("unidentified_records"):
        click.echo(f"无身份证号记录 {stats['unidentified_records']}：自动链接 {stats['linked_auto']}，人工判定 "
                   f"{stats['linked_decided']}，待审 {stats['linked_review']}（{stats['review_pairs']} 对），"
                   f"新建临时人员 {stats['linked_new']} / records without ID numbers {stats['unidentified_records']}: "
                   f"{stats['linked_auto']} linked automatically, {stats['linked_decided']} by reviewers, "
                   f"{stats['linked_review']} in review ({stats['review_pairs']} pairs), {stats['linked_new']} new "
                   f"provisional persons")
    _sweep(engine)


def _sweep(engine: Engine) -> None:
    from matching.rule_versions import follow_versions
    from tasks.sweep import sweep

    follow_versions(engine)  # tasks made here take the time limits in force, not the files'
    counts = sweep(engine)
    click.echo(f"新建任务 {counts['tasks']}，未定位请求 {counts['unplaced']}，超时升级 {counts['escalations']} / "
               f"{counts['tasks']} tasks created, {counts['unplaced']} requests unplaced, "
               f"{counts['escalations']} escalations")


@main.command()
@click.option("--as-of", "as_of", help="回放某一时刻的赋码（北京时间，如 \"2020-02-09 12:00\"），结果存为命名回放 / "
                                       "replay the codes as they stood at this moment (Beijing time unless a zone is "
                                       "given) into a named replay; today's codes are left alone")
@click.option("--name", help="回放名称（默认“回放 <时刻>”）/ the replay's name (default: 回放 <moment>)")
@click.option("--engine", "engine_name", type=click.Choice(["in-process", "spark"]), default="in-process",
              show_default=True, help="在本进程内匹配，或在 Spark 集群上匹配（结果相同）/ match in this process, or on "
                                      "a Spark cluster (the same answers; pip install '.[spark]' and Java 17)")
@click.option("--master", default=None, help="Spark master: local-cluster[2,1,2048] (default), local[N], "
                                             "spark://HOST:PORT, yarn, k8s://…")
@click.option("--executor-memory", "executor_memory", default="1g", show_default=True,
              help="每个 Spark executor 的内存 / memory of each Spark executor")
@click.option("--staging", default=None, help="所有 executor 都能读写的暂存目录（共享文件系统或 s3://…）/ a staging "
                                              "folder every executor can read and write (default: the data folder)")
@click.option("--partitions", type=click.IntRange(1), default=None,
              help="按人员键划分的区段数（默认每 50 万条记录一段）/ key ranges (default: one per 500,000 records)")
@click.option("--conf", "conf", multiple=True, metavar="KEY=VALUE", help="其他 Spark 设置，可重复 / any other "
                                                                         "Spark setting, repeatable")
@_fail_cleanly
def match(as_of: str | None, name: str | None, engine_name: str, master: str | None, executor_memory: str,
          staging: str | None, partitions: int | None, conf: tuple[str, ...]) -> None:
    """Re-run data collision, the risk rules and locating for everyone (or, with --as-of, replay a past moment);
    with --engine spark, on a Spark cluster."""
    spark = _spark_settings(master, executor_memory, staging, partitions, conf) if engine_name == "spark" else None
    if spark is None and (master or staging or partitions or conf):
        raise click.UsageError("--master/--staging/--partitions/--conf 只用于 --engine spark / these options go with "
                               "--engine spark")
    if as_of is None:
        if name is not None:
            raise click.UsageError("--name 只用于 --as-of / --name goes with --as-of")
        _match(_engine(), spark)
        return
    from matching.pipeline import Replay, run_match

    moment = _moment(as_of)
    replay = Replay(name or f"回放 {moment.tz_convert('Asia/Shanghai'):%Y-%m-%d %H:%M}", moment, _operator().username)
    started = time.monotonic()
    with _Bar("回放 / replay") as bar:
        if spark is None:
            stats = run_match(_engine(), progress=bar, replay=replay)
        else:
            from matching.spark import run_match_spark

            stats = run_match_spark(_engine(), spark, progress=bar, replay=replay)
    click.echo(f"回放“{replay.name}”（截至 {moment.tz_convert('Asia/Shanghai'):%Y-%m-%d %H:%M} 北京时间）：人员 "
               f"{stats['persons']}，红 {stats['red']} 黄 {stats['yellow']} 蓝 {stats['blue']}，未定位 "
               f"{stats['unplaced_flags']} / replay {replay.name!r} as of {moment.isoformat()}: persons "
               f"{stats['persons']} (red {stats['red']}, yellow {stats['yellow']}, blue {stats['blue']}), "
               f"{stats['unplaced_flags']} unplaced  ({time.monotonic() - started:.1f} s); today's codes unchanged")


def _spark_settings(master: str | None, executor_memory: str, staging: str | None, partitions: int | None,
                    conf: tuple[str, ...]) -> SparkSettings:
    """The Spark run's settings from the command line, each KEY=VALUE checked."""
    import importlib.util

    from matching.spark import DEFAULT_MASTER, SparkSettings

    if importlib.util.find_spec("pyspark") is None:
        raise click.ClickException("未安装 pyspark：pip install '.[spark]'（并安装 Java 17）/ pyspark is not "
                                   "installed: pip install '.[spark]' (and Java 17)")
    pairs = {}
    for item in conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} 不是 KEY=VALUE / {item!r} is not KEY=VALUE", param_hint="--conf")
        pairs[key.strip()] = value.strip()
    return SparkSettings(master or DEFAULT_MASTER, executor_memory, staging, partitions, pairs)


def _moment(value: str) -> pd.Timestamp:
    """A moment typed by a person: Beijing time unless it names its zone."""
    import pandas as pd

    try:
        moment = pd.Timestamp(value.strip())
    except ValueError:
        raise click.BadParameter(f"无法解析时刻 {value!r}，例如 \"2020-02-09 12:00\" / cannot read the moment "
                                 f"{value!r}; write e.g. \"2020-02-09 12:00\"", param_hint="--as-of") from None
    if moment is pd.NaT:
        raise click.BadParameter("时刻为空 / the moment is empty", param_hint="--as-of")
    return (moment.tz_localize("Asia/Shanghai") if moment.tzinfo is None else moment).tz_convert("UTC")


@main.group()
def replay() -> None:
    """Named replays of past moments (gridctl match --as-of)."""


@replay.command("list")
@_fail_cleanly
def replay_list() -> None:
    """List the stored replays, newest first."""
    from matching.replay_repository import list_replays

    with _engine().connect() as conn:
        replays = list_replays(conn)
    for item in replays:
        stats = item["stats"]
        click.echo(f"{item['name']}  截至 / as of {item['as_of'].isoformat()}  红 {stats.get('red', 0)} 黄 "
                   f"{stats.get('yellow', 0)} 蓝 {stats.get('blue', 0)}  ({item['created_by'] or '-'}, "
                   f"{item['created_at']:%Y-%m-%d %H:%M})")
    click.echo(f"共 {len(replays)} 个回放 / {len(replays)} replays")


@replay.command("export")
@click.argument("name")
@click.argument("path", type=click.Path(dir_okay=False))
@_fail_cleanly
def replay_export(name: str, path: str) -> None:
    """Write a replay's risk-coded persons to FILE.csv or FILE.xlsx (personal data masked)."""
    from matching.export import export_replay

    count = export_replay(_engine(), name, path)
    click.echo(f"已导出 {count} 人 / wrote {count} persons of {name!r} to {path}")


@replay.command("delete")
@click.argument("name")
@_fail_cleanly
def replay_delete(name: str) -> None:
    """Delete a replay (today's codes are not touched)."""
    from gis.errors import NotFound
    from matching.replay_repository import delete_replay

    with _engine().begin() as conn:
        if not delete_replay(conn, name):
            raise NotFound(f"没有名为“{name}”的回放 / no replay named {name!r}")
    click.echo(f"已删除回放 / deleted the replay {name!r}")


@main.group()
def flags() -> None:
    """Risk-coded persons placed in grids (or unplaced, with the reason)."""


@flags.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@_fail_cleanly
def flags_export(path: str) -> None:
    """Write every flag to FILE.csv or FILE.xlsx (personal data masked), with the field warnings of each person's
    records in a ``warnings`` column."""
    from matching.export import export_flags

    count = export_flags(_engine(), path)
    click.echo(f"已导出 {count} 条 / wrote {count} flags to {path}")


@flags.command("unplaced")
@_fail_cleanly
def flags_unplaced() -> None:
    """List the risk-coded persons no grid holds, with the reason."""
    from matching.pipeline import unplaced

    frame = unplaced(_engine())
    for row in frame.itertuples():
        click.echo(f"{row.colour:6}  {row.id_masked}  {row.name_masked}  {row.unplaced_reason}")
    click.echo(f"共 {len(frame)} 人未定位 / {len(frame)} unplaced")


@main.group()
def codes() -> None:
    """Risk codes: manual overrides."""


@codes.command("override")
@click.argument("id_number")
@click.option("--colour", type=click.Choice(["red", "yellow", "blue", "green"]), required=True)
@click.option("--reason", required=True, help="why (kept with the code and in its history)")
@click.option("--by", "set_by", required=True, help="who decides")
@click.option("--days", default=7, show_default=True, type=int, help="how long the override holds")
@_fail_cleanly
def codes_override(id_number: str, colour: str, reason: str, set_by: str, days: int) -> None:
    """Set a person's code by hand until it expires, whatever the rules say; then re-match."""
    from datetime import UTC, datetime, timedelta

    from gis.errors import ConfigurationError
    from matching import repository
    from matching.identity import id_number_problem, mask_id, normalise_id_number
    from matching.privacy import load_vault

    problem = id_number_problem(id_number)
    if problem:
        raise ConfigurationError(f"身份证号无效 / invalid ID number: {problem}")
    if days <= 0:
        raise ConfigurationError("--days 须为正数 / --days must be positive")
    key = load_vault().person_key(normalise_id_number(id_number))
    engine = _engine()
    with engine.begin() as conn:
        repository.add_override(conn, key, colour, reason, set_by, datetime.now(UTC) + timedelta(days=days))
    click.echo(f"{mask_id(normalise_id_number(id_number))} → {colour}，有效 {days} 天 / for {days} days")
    _match(engine)


@feed.command("history")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 1000))
@_fail_cleanly
def feed_history_command(limit: int) -> None:
    """The newest imports: id, when, who, source, file, balance (and the rows with field warnings), withdrawn
    or not."""
    from matching.repository import feed_history

    with _engine().connect() as conn:
        found = feed_history(conn, limit)
    if not found:
        click.echo("还没有导入 / no imports yet")
    for row in found:
        withdrawn = row["withdrawn_at"]
        state = f"已撤回 / withdrawn {_when(withdrawn)} ({row['withdrawn_by']})" if withdrawn else ""
        warned = f"（字段警告 {row['rows_warned']} 行 / field warnings: {row['rows_warned']}）" \
            if row["rows_warned"] else ""
        click.echo(f"{row['id']:>6}  {_when(row['imported_at'])}  {row['imported_by'] or '—':<14} {row['source']:<8} "
                   f"{row['file_name']}  {row['rows_read']} = {row['rows_stored']} + {row['rows_rejected']}{warned}  "
                   f"{state}".rstrip())


@feed.command("withdraw")
@click.argument("feed_id", type=int)
@click.option("--reason", required=True, help="why the import is withdrawn (kept in the history and the audit log)")
@click.option("--queue", "queued", is_flag=True, help="queue it for the job worker instead of running it here")
@_fail_cleanly
def feed_withdraw(feed_id: int, reason: str, queued: bool) -> None:
    """Withdraw an import: its records removed, everyone re-matched, the tasks only it justified cancelled."""
    from jobs.queue import enqueue_feed_withdrawal
    from matching.withdrawal import clean_reason, withdraw_feed, withdrawable

    engine, operator = _engine(), _operator()
    if queued:
        job_id = enqueue_feed_withdrawal(engine, feed_id, reason, operator.username, "gridctl")
        click.echo(f"已排队：任务 {job_id}（gridctl jobs show {job_id}）/ queued as job {job_id}")
        return
    with engine.connect() as conn:
        withdrawable(conn, feed_id)
    started = time.monotonic()
    spans = {"withdrawing": (0.0, 0.05), "matching": (0.05, 0.85), "cancelling": (0.85, 0.95), "sweeping": (0.95, 1.0)}
    with _Bar("撤回 / withdraw") as bar:
        done = withdraw_feed(engine, feed_id, operator.username, clean_reason(reason), "gridctl",
                             progress=lambda stage, step, fraction: bar(step, spans[stage][0] + fraction * (
                                 spans[stage][1] - spans[stage][0])))
    click.echo(f"已撤回导入 #{feed_id}（{done['file']}）：删除记录 {done['records_removed']} 条，撤销任务 "
               f"{done['tasks_cancelled']} 个；人员 {done['match']['persons']} / withdrew import #{feed_id}: "
               f"{done['records_removed']} records removed, {done['tasks_cancelled']} tasks cancelled, "
               f"{done['match']['persons']} persons re-matched  ({time.monotonic() - started:.1f} s)")


# -- rules and time limits ----------------------------------------------------------
@main.group()
def rules() -> None:
    """Colour rules and task time limits: the saved versions (the newest in force), as on /admin/rules/."""


_WHATS = click.Choice(["colour_rules", "task_kinds"])


@rules.command("list")
@click.option("--what", type=_WHATS, default=None, help="only the versions of the colour rules or the task kinds")
@_fail_cleanly
def rules_list(what: str | None) -> None:
    """The saved versions, newest first: id, kind, who, when, note; the one in force of each is marked."""
    from matching.rule_versions import WHATS, list_versions

    with _engine().connect() as conn:
        versions = list_versions(conn, _operator(), what)
    for v in versions:
        back = f" (← #{v.rolled_back_from})" if v.rolled_back_from else ""
        click.echo(f"{'*' if v.in_force else ' '} #{v.id:<5} {v.what:<13} {_when(v.saved_at)}  {v.saved_by:<20} "
                   f"{v.note or ''}{back}")
    for kind in (what,) if what else WHATS:
        if not any(v.what == kind for v in versions):
            click.echo(f"  {kind}: 未保存过版本，使用默认文件 / no saved version: the file is in force")
    click.echo("* 为生效版本 / * marks the version in force")


@rules.command("show")
@click.argument("version", type=int, required=False)
@click.option("--what", type=_WHATS, default="colour_rules", show_default=True,
              help="without VERSION: the text of this kind in force")
@_fail_cleanly
def rules_show(version: int | None, what: str) -> None:
    """Print a version's TOML text (without VERSION: the text in force), ready to edit and save again."""
    from matching.rule_versions import current_body, get_version

    with _engine().connect() as conn:
        if version is None:
            body, version = current_body(conn, what)
            click.echo(f"# {what}: " + (f"版本 #{version} 生效中 / version #{version} in force" if version else
                                        "默认文件生效中 / the file is in force"), err=True)
        else:
            found = get_version(conn, _operator(), version)
            body = found.body
            click.echo(f"# #{found.id} {found.what} {_when(found.saved_at)} {found.saved_by}: {found.note or ''}"
                       + (" (生效中 / in force)" if found.in_force else ""), err=True)
    click.echo(body, nl=not body.endswith("\n"))


def _rules_preview(what: str, body: str) -> None:
    from datetime import UTC, datetime

    from matching.rule_versions import ColourPreview, preview

    with _engine().connect() as conn:
        found = preview(conn, _operator(), what, body, datetime.now(UTC))
    if isinstance(found, ColourPreview):
        click.echo(f"{'颜色 colour':<12} {'现在 now':>10} {'之后 after':>10} {'变化 change':>12}")
        for row in found.rows():
            click.echo(f"{row['colour']:<12} {row['now']:>10} {row['after']:>10} {row['change']:>12}")
        click.echo(f"改变颜色 {found.recoloured} 人，赋码变更 {found.code_changes}，新任务请求 {found.task_requests}"
                   f" / {found.recoloured} persons change colour, {found.code_changes} code changes, "
                   f"{found.task_requests} new task requests"
                   + (f"；新人员 {found.new_persons} / new persons {found.new_persons}" if found.new_persons else "")
                   + (f"；移除 {found.removed} / removed {found.removed}" if found.removed else ""))
        return
    for change in found.changes:
        click.echo(f"  {change.code:<18} {change.field:<18} {change.before} → {change.after}  "
                   f"（在办任务 {change.open_tasks} / open tasks {change.open_tasks}）")
    click.echo(f"变更 {len(found.changes)} 项；在办任务 {found.open_tasks} 个保留原时限，新任务按新设置 / "
               f"{len(found.changes)} changes; {found.open_tasks} open tasks keep their limits, new tasks take the "
               "new ones")


def _rules_saved(what: str, version: int, then_match: bool) -> None:
    click.echo(f"已保存版本 #{version}，现已生效 / saved version #{version}: in force now")
    if what == "colour_rules" and then_match:
        _match(_engine())
    elif what == "colour_rules":
        click.echo("颜色规则将在下次匹配时生效（gridctl match）/ the colour rules apply at the next match "
                   "(gridctl match)")


@rules.command("save")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--what", type=_WHATS, required=True, help="which text FILE holds")
@click.option("--note", required=True, help="why (kept with the version and in the audit log)")
@click.option("--dry-run", is_flag=True, help="check and preview only, save nothing")
@click.option("--match/--no-match", "then_match", default=True, show_default=True,
              help="re-match everyone after saving colour rules")
@_fail_cleanly
def rules_save(path: str, what: str, note: str, dry_run: bool, then_match: bool) -> None:
    """Check FILE (a TOML text of the shape of rules.toml or kinds.toml), preview it, and save it as the version
    in force."""
    from pathlib import Path

    from matching.rule_versions import save_version

    body = Path(path).read_text(encoding="utf-8")
    _rules_preview(what, body)
    if dry_run:
        click.echo("试运行，未保存 / dry run: nothing was saved")
        return
    with _engine().begin() as conn:
        version = save_version(conn, _operator(), what, body, note)
    _rules_saved(what, version.id, then_match)


@rules.command("rollback")
@click.argument("version")
@click.option("--what", type=_WHATS, default=None, help="with VERSION 'file': which shipped file to bring back")
@click.option("--note", default=None, help="why (added to the version's note)")
@click.option("--match/--no-match", "then_match", default=True, show_default=True,
              help="re-match everyone after rolling back colour rules")
@_fail_cleanly
def rules_rollback(version: str, what: str | None, note: str | None, then_match: bool) -> None:
    """Bring back VERSION (a version's id, or 'file' with --what: the shipped file): save a new version with its
    text, in force from now."""
    from gis.errors import ConfigurationError
    from matching.rule_versions import rollback, rollback_to_file

    if version != "file" and not version.isdigit():
        raise ConfigurationError(f"VERSION 须为版本号或 file / VERSION must be a version's id or 'file': {version}")
    if version == "file" and what is None:
        raise ConfigurationError("回滚到默认文件须指明 --what / name the file with --what colour_rules|task_kinds")
    with _engine().begin() as conn:
        saved = rollback_to_file(conn, _operator(), what, note) if version == "file" and what else \
            rollback(conn, _operator(), int(version), note)
    _rules_saved(saved.what, saved.id, then_match)


@grids.command("preview")
@_grid_file_options
@_fail_cleanly
def grids_preview(path: str, layer: str | None, crs: str | None) -> None:
    """Check the boundaries in PATH and show what applying them would change (nothing is written).

    The file's communities (the first 12 digits of its codes) get exactly its grids; the others keep theirs.
    """
    from grids.changes import preview_change
    from grids.importing import read_grid_file

    grid_file = read_grid_file(path, layer, crs)
    with _engine().connect() as conn:
        preview = preview_change(conn, grid_file)
    counts = preview.counts()
    click.echo(f"{preview.file_name} ({preview.crs})：{preview.features} 个网格，社区 / communities "
               f"{', '.join(preview.communities) or '-'}")
    width = max((len(p.feature) for p in preview.problems), default=0)
    for p in preview.problems:  # as ``grids check`` prints them
        click.echo(f"{p.severity:8}  {p.kind:17}  {p.feature:{width}}  {p.reason}")
    click.echo(f"检查：{counts['errors']} 个错误，{counts['warnings']} 个警告 / check: {counts['errors']} errors, "
               f"{counts['warnings']} warnings")
    if preview.blocked:
        click.echo("有错误，不能应用 / the file has errors: it cannot be applied", err=True)
        sys.exit(1)
    names = {"added": "新增 / added", "removed": "删除 / removed", "reshaped": "调整 / reshaped",
             "renamed": "改名 / renamed"}
    for change, label in names.items():
        codes = preview.codes(change)
        click.echo(f"{label}: {len(codes)}" + (f"  {' '.join(codes)}" if codes else ""))
    click.echo(f"不变 / unchanged: {preview.unchanged}")
    click.echo(f"人员换网格 / persons moving: {preview.persons_moving}（其中未落位 / unplaced "
               f"{preview.persons_unplaced}）")
    for source, target, persons in preview.person_flows:
        click.echo(f"  {source} → {target or '未落位 / unplaced'}: {persons}")
    click.echo(f"未结任务换网格 / open tasks moving: {len(preview.tasks)}（退回重派 / back to dispatch "
               f"{counts['tasks_back_to_dispatch']}）")
    for move in preview.tasks:
        click.echo(f"  #{move.task_id} {move.kind} {move.status} {move.from_code} → {move.to_code} ({move.why})"
                   + (f" {move.assignee} → 重新派遣 / dispatched again" if move.back_to_dispatch else ""))
    click.echo(f"失去网格的人员 / staff losing a grid: {len(preview.workers)}")
    for lost in preview.workers:
        click.echo(f"  {lost.username} ({lost.role}) {lost.grid_code}，剩余网格 / grids left {lost.grids_left}")
    click.echo(f"卡口 / checkpoints moving: {preview.checkpoints_moving}；线索 / leads moving: {preview.leads_moving}")
    if not preview.changes_anything:
        click.echo("文件与现有网格相同，无需应用 / the file changes nothing")
    else:
        click.echo(f"预览标记 / preview stamp: {preview.stamp}")
        click.echo(f"应用 / to apply: gridctl grids apply {path} --stamp {preview.stamp}")


@grids.command("apply")
@_grid_file_options
@click.option("--stamp", default=None, help="the stamp `grids preview` printed: refuse if the grids changed since")
@_fail_cleanly
def grids_apply(path: str, layer: str | None, crs: str | None, stamp: str | None) -> None:
    """Apply the boundaries in PATH in one transaction: grids, persons, open tasks, assignments (audited)."""
    from datetime import UTC, datetime

    from grids.changes import apply_change
    from grids.importing import read_grid_file

    grid_file = read_grid_file(path, layer, crs)
    with _engine().begin() as conn:
        done = apply_change(conn, _operator(), grid_file, stamp, datetime.now(UTC), "gridctl")
    counts = done.preview.counts()
    if not done.preview.changes_anything:
        click.echo("文件与现有网格相同，未作更改 / the file changes nothing: nothing was written")
        return
    click.echo(f"已应用 / applied {done.preview.file_name}: 新增 / added {counts['added']}，删除 / removed "
               f"{counts['removed']}，调整 / reshaped {counts['reshaped']}，改名 / renamed {counts['renamed']}")
    click.echo(f"人员换网格 / persons moved: {done.persons_moved}（未落位 / unplaced {done.persons_unplaced}）")
    click.echo(f"任务换网格 / open tasks moved: {len(done.tasks_moved)}（重新派遣 / dispatched again "
               f"{len(done.tasks_redispatched)}）" + (f": {', '.join(map(str, done.tasks_moved))}"
                                                      if done.tasks_moved else ""))
    click.echo(f"取消的网格分配 / assignments dropped: {done.assignments_dropped}；H3 单元 / cells: {done.cells}")


@main.group()
def people() -> None:
    """Persons: the hotline's look-up by phone."""


@people.command("backfill-phones")
@_fail_cleanly
def people_backfill_phones() -> None:
    """Give the records stored before migration 0013 their phone key, so that a look-up by phone finds them
    (each phone unsealed in memory only; safe to run again)."""
    from matching.lookup import backfill_phone_keys
    from matching.privacy import load_vault

    added = backfill_phone_keys(_engine(), load_vault())
    click.echo(f"已为 {added} 条记录补充手机号索引 / phone keys added for {added} records")


@main.command()
@click.option("--older-than", "days", type=click.IntRange(1, 3650), default=None,
              help="days kept after a person's last code ended (default NANHAI_RETENTION_DAYS, else 28)")
@_fail_cleanly
def purge(days: int | None) -> None:
    """Remove the personal data of everyone whose last code ended (never coded: whose last record is) more than
    DAYS ago; task events and the audit log keep their rows, naming no one. The server does it every night."""
    from matching.retention import purge as purge_expired

    done = purge_expired(_engine(), days, actor=_operator(), client="gridctl")
    click.echo(f"已清除 {done.days} 天前到期的个人数据：{done.people} 人 / purged the personal data past {done.days} "
               f"days (cutoff {_when(done.cutoff)} Beijing): {done.people} people  ({done.seconds:.1f} s)")
    for heading, counts in (("删除 / removed", done.removed), ("保留行、去除人员 / tombstoned", done.tombstoned),
                            ("清空联系方式 / contacts cleared", done.cleared)):
        click.echo(heading)
        for table, count in counts.items():
            click.echo(f"  {table:<22} {count:>8}")


@main.group()
def users() -> None:
    """User accounts."""


@users.command("demo")
@click.option("--password", default=None, help="the password of every demo account (default: a random one, printed)")
@_fail_cleanly
def users_demo(password: str | None) -> None:
    """Create or reset demo_commander, demo_supervisor, demo_worker, demo_reporter and demo_admin (demo only)."""
    from demo.accounts import create_demo_accounts

    with _engine().begin() as conn:
        password, accounts = create_demo_accounts(conn, password)
    for account in accounts:
        click.echo(f"  {account.username:<16} {account.role:<10} {account.scope}")
    click.echo(f"密码 / password: {password}")
    click.echo("仅供演示，勿用于真实部署 / for the embedded demo only, never for a real deployment")



def _operator() -> Actor:
    """Who acts on the command line: an administrator (whoever runs gridctl holds the database's password),
    named in the audit log by the system user that ran it."""
    import getpass

    from accounts.actor import ADMIN, Actor

    return Actor(None, f"gridctl:{getpass.getuser()}", ADMIN, display_name="命令行 / command line")


def _when(moment: datetime) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


@users.command("add")
@click.argument("username")
@click.option("--name", required=True, help="the person's name (kept; printed masked)")
@click.option("--role", required=True, type=click.Choice(["worker", "supervisor", "commander", "reporter", "admin"]))
@click.option("--phone", default=None, help="an 11-digit mobile number (one account per phone)")
@click.option("--grid", "grids", multiple=True, help="a worker's grid code (repeat for several)")
@click.option("--community", default=None, help="a supervisor's community code (12 digits)")
@click.option("--town", default=None, help="a commander's or reporter's town code (9 digits; none: the district)")
@_fail_cleanly
def users_add(username: str, name: str, role: str, phone: str | None, grids: tuple[str, ...],
              community: str | None, town: str | None) -> None:
    """Create a staff account; prints its one-time activation code, once."""
    from datetime import UTC, datetime

    from accounts.staff import add_user, get_user
    from matching.identity import mask_name
    from matching.privacy import load_vault

    actor = _operator()
    with _engine().begin() as conn:
        activation = add_user(conn, actor, username, name, role, load_vault(), datetime.now(UTC), phone, grids,
                              community, town)
        user = get_user(conn, actor, activation.username)
    click.echo(f"已创建 / created {user['username']}  {user['role_name']} {user['role']}  {mask_name(name)}  "
               f"{user['phone_masked'] or '-'}  {user['scope']}")
    click.echo(f"激活码 / activation code: {activation.code}")
    click.echo(f"有效期至 / valid until {_when(activation.expires_at)}（北京时间）；只显示这一次，请当面交给本人，"
               f"在 /activate 页面激活 / shown only this once: hand it to its owner, who activates the account at "
               f"/activate")


def _roster_table(outcomes: list[Outcome]) -> None:
    click.echo(f"{'行 row':>7}  {'结果 outcome':<12}  {'用户名 username':<18}  {'角色 role':<10}  {'姓名':<6}  "
               f"{'手机 phone':<11}  范围 scope · 说明 notes")
    names = {"create": "新建 create", "update": "更新 update", "unchanged": "不变 same", "error": "错误 error"}
    for o in outcomes:
        click.echo(f"{o.row:>7}  {names[o.action]:<12}  {o.username:<18}  {o.role or '-':<10}  {o.name_masked:<6}  "
                   f"{o.phone_masked or '-':<11}  {o.scope}" + (f" · {o.notes()}" if o.notes() else ""))


@users.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="show what importing would do, store nothing")
@click.option("--codes-out", type=click.Path(dir_okay=False), default=None,
              help="the Excel file (.xlsx) to write the new accounts' activation codes to (needed when any is new)")
@_fail_cleanly
def users_import(path: str, dry_run: bool, codes_out: str | None) -> None:
    """Import a staff roster (.xlsx or CSV): every row's outcome, then all or nothing."""
    from datetime import UTC, datetime
    from pathlib import Path

    from accounts.roster import import_roster, preview_roster, read_roster, rejection, write_codes
    from gis.errors import ConfigurationError
    from matching.privacy import load_vault

    if codes_out is not None and not codes_out.lower().endswith(".xlsx"):
        raise ConfigurationError("--codes-out 须为 .xlsx 文件 / --codes-out must name an .xlsx file")
    rows, vault, actor = read_roster(path), load_vault(), _operator()
    with _engine().begin() as conn:
        outcomes = preview_roster(conn, actor, rows, vault)
        _roster_table(outcomes)
        counts = {a: sum(o.action == a for o in outcomes) for a in ("create", "update", "unchanged", "error")}
        click.echo(f"共 {len(outcomes)} 行：新建 {counts['create']}，更新 {counts['update']}，"
                   f"不变 {counts['unchanged']}，错误 {counts['error']} / {len(outcomes)} rows: {counts['create']} to "
                   f"create, {counts['update']} to update, {counts['unchanged']} unchanged, {counts['error']} "
                   "with errors")
        if counts["error"]:
            raise rejection(outcomes, Path(path).name)
        if dry_run:
            click.echo("试运行，未作任何更改 / dry run: nothing was stored")
            return
        if counts["create"] and codes_out is None:
            raise ConfigurationError("有新账号：请用 --codes-out FILE.xlsx 指定激活码表（激活码不打印）/ new accounts "
                                     "get activation codes: name the sheet to write them to with --codes-out "
                                     "FILE.xlsx (they are never printed)")
        result = import_roster(conn, actor, rows, vault, datetime.now(UTC), Path(path).name)
        if result.codes and codes_out is not None:
            write_codes(codes_out, result.codes)  # inside the transaction: no file, nothing stored
    click.echo(f"已导入 / imported: 新建 {counts['create']}，更新 {counts['update']} / {counts['create']} created, "
               f"{counts['update']} updated")
    if result.codes and codes_out is not None:
        click.echo(f"{len(result.codes)} 个激活码已写入 / activation codes written to {codes_out}（一次性密钥："
                   "逐一交给本人后销毁此文件 / one-time secrets: hand each to its owner, then destroy the file）")


@users.command("list")
@click.option("--role", default=None, type=click.Choice(["worker", "supervisor", "commander", "reporter", "admin"]))
@click.option("--search", default=None, help="a fragment of the name or username, a phone number, or a grid code")
@click.option("--all", "with_synthetic", is_flag=True, help="include the reference district's generated staff")
@click.option("--limit", default=200, show_default=True, type=int)
@_fail_cleanly
def users_list(role: str | None, search: str | None, with_synthetic: bool, limit: int) -> None:
    """List accounts (names and phones masked)."""
    from accounts.staff import UserFilter, list_users
    from matching.identity import mask_name
    from matching.privacy import load_vault

    where = UserFilter(search=search, role=role, include_synthetic=with_synthetic or bool(search), limit=limit)
    with _engine().connect() as conn:
        found, total = list_users(conn, _operator(), load_vault(), where)
    statuses = {"active": "正常 active", "pending_activation": "待激活 pending", "no_password": "无密码 no login",
                "disabled": "已停用 disabled"}
    for u in found:
        duty = ("在岗 on duty" if u["on_duty"] else "离岗 off duty") if u["role"] == "worker" else ""
        click.echo(f"  {u['username']:<20} {u['role']:<10} {mask_name(u['display_name']):<6} "
                   f"{u['phone_masked'] or '-':<11} {statuses[u['status']]:<16} {duty:<12} {u['scope']}")
    click.echo(f"共 {total} 个账号（显示 {len(found)}）/ {total} accounts ({len(found)} shown)")


@users.command("disable")
@click.argument("username")
@_fail_cleanly
def users_disable(username: str) -> None:
    """Disable an account: its sessions end at once; a worker's open tasks go back to dispatch."""
    from datetime import UTC, datetime

    from accounts.staff import disable_user

    with _engine().begin() as conn:
        done = disable_user(conn, _operator(), username, datetime.now(UTC))
    if not done["changes"]:
        click.echo(f"{username} 已是停用状态，未作更改 / {username} was already disabled: nothing changed")
        return
    recalled = done["recalled"]
    click.echo(f"已停用 / disabled {username}；会话已结束 / sessions ended；收回并重新派遣任务 {len(recalled)} 个 / "
               f"{len(recalled)} open tasks recalled and dispatched again"
               + (f": {', '.join(map(str, recalled))}" if recalled else ""))


@users.command("enable")
@click.argument("username")
@_fail_cleanly
def users_enable(username: str) -> None:
    """Enable a disabled account again."""
    from accounts.staff import enable_user

    with _engine().begin() as conn:
        done = enable_user(conn, _operator(), username)
    click.echo(f"已启用 / enabled {username}" if done["changes"] else
               f"{username} 未停用，未作更改 / {username} was not disabled: nothing changed")


@users.command("reset-password")
@click.argument("username")
@_fail_cleanly
def users_reset_password(username: str) -> None:
    """Clear an account's password and print a new one-time activation code, once."""
    from datetime import UTC, datetime

    from accounts.staff import reset_password
    from matching.privacy import load_vault

    with _engine().begin() as conn:
        activation = reset_password(conn, _operator(), username, load_vault(), datetime.now(UTC))
    click.echo(f"{username} 的密码已清除，会话已结束 / password cleared, sessions ended")
    click.echo(f"激活码 / activation code: {activation.code}")
    click.echo(f"有效期至 / valid until {_when(activation.expires_at)}（北京时间）；只显示这一次 / shown only this "
               "once")


@main.group()
def tasks() -> None:
    """The field-task workflow."""


@tasks.command("sweep")
@_fail_cleanly
def tasks_sweep() -> None:
    """Turn pending matcher requests into tasks and escalate overdue work, once."""
    _sweep(_engine())


# -- background jobs ----------------------------------------------------------------
@main.group()
def jobs() -> None:
    """Background jobs queued in the database (feed imports, re-matches) and their worker."""


@jobs.command("worker")
@click.option("--once", is_flag=True, help="run the jobs already queued, then exit")
@click.option("--niceness", default=10, show_default=True, type=click.IntRange(0, 19),
              help="added to the worker's nice value, so that the web workers come first (0: unchanged)")
@_fail_cleanly
def jobs_worker(once: bool, niceness: int) -> None:
    """Run the job worker in the foreground (Ctrl+C or SIGTERM: it stops once the running job is done)."""
    import logging

    from gis.db import database_url, engine_for
    from gis.migrate import require_current
    from jobs.worker import run_worker

    url = database_url()
    require_current(engine_for(url))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo("后台任务工作进程已启动 / the job worker is running" + ("" if once else " (Ctrl+C 停止 / to stop)"))
    run_worker(url, once=once, niceness=niceness)


@jobs.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--source", required=True, help="the department that sent the file (公安, 卫健, 通信…)")
@click.option("--crs", default="wgs84", show_default=True,
              help="coordinate system of rows without a 坐标系 column: wgs84, gcj02, bd09 or cgcs2000")
@click.option("--match/--no-match", "then_match", default=True, show_default=True,
              help="re-run the matcher after a successful import")
@_fail_cleanly
def jobs_import(path: str, source: str, crs: str, then_match: bool) -> None:
    """Queue a feed import (then a match) for the job worker; print the job's number."""
    from jobs.queue import enqueue_feed_import

    job_id = enqueue_feed_import(_engine(), path, source, crs, then_match, requested_by="gridctl")
    click.echo(f"已排队：任务 {job_id}（gridctl jobs show {job_id}）/ queued as job {job_id} "
               f"(gridctl jobs show {job_id})")


@jobs.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="one JSON array")
@_fail_cleanly
def jobs_list(limit: int, as_json: bool) -> None:
    """The newest jobs: kind, state, stage, what they were asked and what they did."""
    from jobs.progress import as_dict, list_progress, summary

    found = list_progress(_engine(), limit)
    if as_json:
        click.echo(json.dumps([as_dict(view) for view in found], ensure_ascii=False, indent=1))
    elif not found:
        click.echo("没有后台任务 / no jobs yet")
    for view in [] if as_json else found:
        click.echo(summary(view))


@jobs.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@_fail_cleanly
def jobs_show(job_id: int, as_json: bool) -> None:
    """One job: its stage, history (starts, stages, interruptions), result or error."""
    from gis.errors import NotFound
    from jobs.progress import as_dict, describe, read_progress

    view = read_progress(_engine(), job_id)
    if view is None:
        raise NotFound(f"没有任务 {job_id} / no job {job_id}")
    click.echo(json.dumps(as_dict(view), ensure_ascii=False, indent=1) if as_json else "\n".join(describe(view)))


@main.group()
def bench() -> None:
    """Benchmarks (figures, not tests)."""


@bench.command("locate")
@click.option("--points", default=1_000_000, show_default=True, type=int)
@click.option("--repeat", default=3, show_default=True, type=int, help="runs per method (median reported)")
@_fail_cleanly
def bench_locate(points: int, repeat: int) -> None:
    """Time sjoin, a PostGIS ST_Contains join and the locator on the same points; last line is JSON."""
    from benchmarks.matcher import locate_benchmark

    result = locate_benchmark(_engine(), points, repeat, echo=click.echo)
    click.echo(json.dumps(result))


@bench.command("pipeline")
@click.option("--rows", default=1_000_000, show_default=True, type=int)
@click.option("--id-less", "id_less", default=0.0, show_default=True, type=click.FloatRange(0.0, 0.9),
              help="a share of rows without ID numbers (second records of known people): the run is then made twice, "
                   "with and without their ID numbers, and compared")
@click.option("--travel", default=0.0, show_default=True, type=click.FloatRange(0.0, 0.9),
              help="a share of rows giving 出发地 and 抵达日期: the run is then made twice, the rules before issue 22 "
                   "on the feed without travel columns, then the default rules on it with them, and compared")
@click.option("--engine", "engine_name", type=click.Choice(["in-process", "spark", "both"]), default="in-process",
              show_default=True, help="the match in this process, on Spark, or both on copies of one import (the "
                                      "in-process one first)")
@click.option("--master", default=None, help="Spark master (default local-cluster[2,1,2048])")
@click.option("--executor-memory", "executor_memory", default="1g", show_default=True)
@click.option("--partitions", type=click.IntRange(1), default=None)
@click.option("--feed", "feed_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="a feed written before (by a run of this benchmark) instead of a new one: ten million rows take "
                   "a quarter of an hour to draw")
@_fail_cleanly
def bench_pipeline(rows: int, id_less: float, travel: float, engine_name: str, master: str | None,
                   executor_memory: str, partitions: int | None, feed_file: Path | None) -> None:
    """Time feed import + match of a generated ROWS-row CSV end to end, with the match's peak memory; last line is
    JSON."""
    if id_less and travel:
        raise click.UsageError("--id-less 与 --travel 只能选一 / give --id-less or --travel, not both")
    spark = _spark_settings(master, executor_memory, None, partitions, ()) if engine_name != "in-process" else None
    if spark is not None and travel:
        raise click.UsageError("--travel 只用于进程内引擎 / --travel measures the in-process engine")
    if feed_file and (id_less or travel):
        raise click.UsageError("--feed 不与 --id-less/--travel 同用 / --feed goes without --id-less and --travel")
    import tempfile

    from sqlalchemy.engine import make_url

    from benchmarks.matcher import pipeline_benchmark
    from gis.db import database_url

    url = make_url(database_url())
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as folder:
        result = pipeline_benchmark(admin, lambda db: url.set(database=db).render_as_string(hide_password=False),
                                    rows, folder, echo=click.echo, id_less=id_less, travel=travel, spark=spark,
                                    both=engine_name == "both", feed_file=feed_file)
    click.echo(json.dumps(result, ensure_ascii=False))


@bench.command("linkage")
@click.option("--records", default=1_000_000, show_default=True, type=int,
              help="generated records, a fifth of them without an ID number")
@click.option("--seed", default=2026, show_default=True, type=int, help="the same seed draws the same records")
@_fail_cleanly
def bench_linkage(records: int, seed: int) -> None:
    """Link generated records without ID numbers (known truth) to the identified people: precision, recall and
    review share against the exact ID join, training and linking time; last line is JSON."""
    from benchmarks.linkage import linkage_benchmark

    click.echo(json.dumps(linkage_benchmark(records, seed, echo=click.echo), ensure_ascii=False))


@bench.command("updates")
@click.option("--url", default="http://127.0.0.1:8050", show_default=True, help="the running server")
@click.option("--phones", default=16, show_default=True, type=int, help="simulated phones")
@click.option("--seconds", default=20.0, show_default=True, type=float, help="how long to run")
@click.option("--outage-at", type=float, default=None, metavar="SECONDS",
              help="take the server's database away this many seconds into the run")
@click.option("--outage-for", type=float, default=5.0, show_default=True, metavar="SECONDS",
              help="how long the database stays away (with --outage-at)")
@click.option("--outage-mode", type=click.Choice(["database", "server"]), default="database", show_default=True,
              help="database: this database refuses connections and its open ones are ended; server: the embedded "
                   "PostgreSQL is stopped and started (every database on it)")
@_fail_cleanly
def bench_updates(url: str, phones: int, seconds: float, outage_at: float | None, outage_for: float,
                  outage_mode: str) -> None:
    """Simulated phones walk tasks through the lifecycle with retries and stale versions, riding out a database
    outage when asked; last line is JSON."""
    from benchmarks.outage import Outage
    from benchmarks.updates import updates_benchmark

    engine = _engine()
    outage = None
    if outage_at is not None and outage_mode == "server":
        from gis.embedded import EmbeddedServer

        outage = Outage.of_server(engine, outage_at, outage_for, EmbeddedServer())
    elif outage_at is not None:
        outage = Outage.of_database(engine, outage_at, outage_for)
    result = updates_benchmark(engine, url, phones, seconds, echo=click.echo, outage=outage)
    click.echo(json.dumps(result, ensure_ascii=False))


@bench.command("wall")
@click.option("--repeat", default=50, show_default=True, type=int, help="idle refreshes timed (median reported)")
@_fail_cleanly
def bench_wall(repeat: int) -> None:
    """The wall's idle refresh (server time), first paint in headless Chromium, grid layer size; last line JSON."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        raise click.ClickException("需要 selenium（开发依赖：pip install -e '.[dev]'）/ needs selenium, a development "
                                   "dependency: pip install -e '.[dev]'")
    from benchmarks.wall import wall_benchmark

    click.echo(json.dumps(wall_benchmark(_engine(), repeat, echo=click.echo), ensure_ascii=False))


@bench.command("field")
@click.option("--tasks", default=20, show_default=True, type=int, help="open tasks of the benchmark's worker")
@click.option("--loads", default=3, show_default=True, type=int, help="cold first loads (medians reported)")
@_fail_cleanly
def bench_field(tasks: int, loads: int) -> None:
    """The field app at 400 kbps / 400 ms in headless Chromium: cold-load bytes, time to the first task card, and
    a reload with the server stopped; last line JSON."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        raise click.ClickException("需要 selenium（开发依赖：pip install -e '.[dev]'）/ needs selenium, a development "
                                   "dependency: pip install -e '.[dev]'")
    from benchmarks.field import field_benchmark

    result = field_benchmark(_bench_database("nanhai_bench_field"), tasks, loads, echo=click.echo)
    click.echo(json.dumps(result, ensure_ascii=False))


@bench.command("gate")
@click.option("--scans", default=40, show_default=True, type=int, help="typed scans timed, one after the other")
@click.option("--rate", default=200.0, show_default=True, type=float, help="scans per second from the other clients")
@click.option("--camera-seconds", default=20.0, show_default=True, type=float,
              help="how long the camera-fed page is timed")
@_fail_cleanly
def bench_gate(scans: int, rate: float, camera_seconds: float) -> None:
    """The checkpoint page's verdict latency (scan → verdict painted) in headless Chromium, typed and camera-fed,
    while other clients send RATE scans/s to the API (target 300 ms); last line JSON."""
    import importlib.util

    if importlib.util.find_spec("selenium") is None:
        raise click.ClickException("需要 selenium（开发依赖：pip install -e '.[dev]'）/ needs selenium, a development "
                                   "dependency: pip install -e '.[dev]'")
    from benchmarks.gate import gate_benchmark

    result = gate_benchmark(_bench_database("nanhai_bench_gate"), scans, rate, camera_seconds, echo=click.echo)
    click.echo(json.dumps(result, ensure_ascii=False))


@bench.command("observation")
@click.option("--persons", default=100_000, show_default=True, type=int, help="persons in home observation")
@click.option("--repeat", default=3, show_default=True, type=int, help="timed runs of each (medians reported)")
@_fail_cleanly
def bench_observation(persons: int, repeat: int) -> None:
    """Home observation: the day's checks (target 2 s) and the missed-check sweep (target 1 s) for PERSONS
    persons, each beside a plain COUNT over the same rows; last line JSON."""
    from benchmarks.observation import observation_benchmark

    result = observation_benchmark(_bench_database("nanhai_bench_observation"), persons, repeat, echo=click.echo)
    click.echo(json.dumps(result, ensure_ascii=False))


@bench.command("followups")
@click.option("--persons", default=60, show_default=True, type=int, help="persons in observation in the worker's grid")
@click.option("--background", default=20_000, show_default=True, type=int, help="plans in the district's other grids")
@click.option("--loads", default=30, show_default=True, type=int, help="timed loads of the list and of its peer")
@click.option("--phones", default=4, show_default=True, type=int, help="phones tapping check-ins at once")
@click.option("--taps", default=200, show_default=True, type=int, help="check-in taps in all")
@_fail_cleanly
def bench_followups(persons: int, background: int, loads: int, phones: int, taps: int) -> None:
    """Today's follow-ups: the worker's list server time (target 200 ms) beside his task list's, and check-in taps
    with dropped answers and retries (target: 0 lost, 0 duplicated); last line JSON."""
    from benchmarks.followups import followups_benchmark

    result = followups_benchmark(_bench_database("nanhai_bench_followups"), persons, background, loads=loads,
                                 phones=phones, taps=taps, echo=click.echo)
    click.echo(json.dumps(result, ensure_ascii=False))


def _bench_database(name: str, seeded: bool = True) -> Engine:
    """The benchmark's own database ``name`` on the configured server, made if missing and kept afterwards (so a
    second run reuses its data); ``seeded``: migrated and holding the reference district."""
    from sqlalchemy.engine import make_url

    from gis.db import database_url, engine_for
    from gis.embedded import create_database

    url = make_url(database_url())
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    created = create_database(admin, name)
    click.echo(f"{'新建' if created else '复用'}压测数据库 / {'created' if created else 'reusing'} the benchmark "
               f"database {name} (kept afterwards)")
    engine = engine_for(url.set(database=name).render_as_string(hide_password=False))
    if seeded:
        from gis import migrate
        from grids.seeding import seed_nanhai

        migrate.upgrade(engine)
        click.echo(seed_nanhai(engine, progress=click.echo).message)
    return engine


@bench.command("stats")
@click.option("--persons", default=1_000_000, show_default=True, type=int)
@click.option("--tasks", "task_count", default=100_000, show_default=True, type=int)
@click.option("--repeat", default=5, show_default=True, type=int, help="runs per measure (median reported)")
@_fail_cleanly
def bench_stats(persons: int, task_count: int, repeat: int) -> None:
    """Time the evaluation of all 1042 grids (and towns, district) over generated data; last line is JSON."""
    from benchmarks.stats import BENCH_DATABASE, stats_benchmark

    engine = _bench_database(BENCH_DATABASE)
    result = stats_benchmark(engine, persons, task_count, repeat, echo=click.echo)
    click.echo(json.dumps(result, ensure_ascii=False))


@bench.command("replay")
@click.option("--events", default=5000, show_default=True, type=int, help="task events in the replayed day")
@click.option("--persons", default=20000, show_default=True, type=int)
@click.option("--code-changes", "code_changes", default=1000, show_default=True, type=int,
              help="code changes during the day")
@click.option("--moves", default=200, show_default=True, type=int, help="random minutes timed")
@_fail_cleanly
def bench_replay(events: int, persons: int, code_changes: int, moves: int) -> None:
    """The wall's replay moving to random minutes of a day of EVENTS task events (first load, later moves, the
    Dash callback) against the live wall_summary; last line is JSON."""
    from benchmarks.replay import BENCH_DATABASE, replay_benchmark

    engine = _bench_database(BENCH_DATABASE)
    click.echo(json.dumps(replay_benchmark(engine, events, persons, code_changes, moves, echo=click.echo),
                          ensure_ascii=False))


@bench.command("adminload")
@click.option("--rows", default=100_000, show_default=True, type=int, help="rows of the generated feed")
@click.option("--samples", default=40, show_default=True, type=int, help="refreshes timed with no job running")
@_fail_cleanly
def bench_adminload(rows: int, samples: int) -> None:
    """A supervisor's dispatch refresh while a ROWS-row feed imports (then is withdrawn) under gridctl serve;
    last line is JSON."""
    from benchmarks.adminload import BENCH_DATABASE, adminload_benchmark

    engine = _bench_database(BENCH_DATABASE, seeded=False)
    click.echo(json.dumps(adminload_benchmark(engine, rows, samples, echo=click.echo), ensure_ascii=False))


@bench.command("addresses")
@click.option("--count", default=20_000, show_default=True, type=int, help="generated addresses")
@click.option("--seed", default=2026, show_default=True, type=int, help="the same seed draws the same addresses")
@_fail_cleanly
def bench_addresses(count: int, seed: int) -> None:
    """Place COUNT generated messy addresses with known communities; per-style rates, failures by reason; last
    line is JSON."""
    from benchmarks.addresses import addresses_benchmark

    click.echo(json.dumps(addresses_benchmark(_engine(), count, seed, echo=click.echo), ensure_ascii=False))


# -- demo -------------------------------------------------------------------------
@main.group()
def demo() -> None:
    """The embedded demo (synthetic data, marked so; never on a real deployment)."""


@demo.command("roster")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--rows", type=int, default=300, show_default=True, help="people in the roster")
@_fail_cleanly
def demo_roster(path: str, rows: int) -> None:
    """Write a staff roster (.xlsx or .csv) of seeded grid workers who cannot log in yet, for onboarding."""
    from demo.roster import write_roster

    with _engine().connect() as conn:
        written = write_roster(conn, path, rows)
    click.echo(f"{written} 人的花名册已写入 / a roster of {written} people written to {path}")


@demo.command("activity")
@click.option("--seed", "seed_value", type=int, default=20200202, show_default=True, help="generator seed")
@click.option("--persons", type=int, default=20000, show_default=True, help="residents in the generated feed")
@_fail_cleanly
def demo_activity(seed_value: int, persons: int) -> None:
    """Generate one synthetic day of work (feed, flags, tasks, leads, scans), once per seed."""
    from demo.activity import generate_activity
    from tasks.lifecycle import STATUS_NAMES

    started = time.monotonic()
    with _Bar("演示活动 / demo activity") as bar:
        c = generate_activity(_engine(), seed_value, persons, progress=bar)
    if c["already_generated"]:
        click.echo(f"种子 {seed_value} 的演示活动已生成过，未作更改 / demo activity for seed {seed_value} was already "
                   "generated: nothing changed")
    states = "，".join(f"{name} {c['status_' + s]}" for s, name in STATUS_NAMES.items())
    states_en = ", ".join(f"{s} {c['status_' + s]}" for s in STATUS_NAMES)
    click.echo(f"人员 {c['persons']}：红 {c['red']} 黄 {c['yellow']} 蓝 {c['blue']} 绿 {c['green']}，非绿码标记 "
               f"{c['flags']} / persons {c['persons']} (red {c['red']}, yellow {c['yellow']}, blue {c['blue']}, "
               f"green {c['green']}), {c['flags']} flags")
    click.echo(f"任务 {c['tasks']}（{states}；超时 {c['overdue']}）/ tasks {c['tasks']} ({states_en}; "
               f"{c['overdue']} overdue)")
    click.echo(f"事件 {c['task_events']}：升级 {c['escalations']}，返工 {c['reworks']}，延期 {c['extensions']} / "
               f"{c['task_events']} task events: {c['escalations']} escalations, {c['reworks']} reworks, "
               f"{c['extensions']} extensions")
    click.echo(f"线索 {c['leads']}（举报 {c['lead_reports']}，合并 {c['merged_leads']}，已转任务 {c['triaged_leads']}，"
               f"已关闭 {c['dismissed_leads']}）/ {c['leads']} leads ({c['lead_reports']} reports, {c['merged_leads']} "
               f"merged, {c['triaged_leads']} triaged, {c['dismissed_leads']} dismissed)")
    click.echo(f"卡口扫码 {c['scans']}，预警任务 {c['checkpoint_alerts']}；demo_worker 任务 {c['demo_worker_tasks']} / "
               f"{c['scans']} checkpoint scans, {c['checkpoint_alerts']} alerts; {c['demo_worker_tasks']} tasks for "
               f"demo_worker  ({time.monotonic() - started:.1f} s)")
    if "observation_plans" in c:
        click.echo(f"居家观察 {c['observation_plans']} 人（demo_worker 网格 {c['demo_grid_plans']}），随访已报 "
                   f"{c['checks_done']}、漏报 {c['checks_missed']}、待报 {c['checks_due']}，"
                   f"补报 {c['late_check_ins']}，发热 {c['fevers']}，入户走访 {c['visit_tasks']} / home observation "
                   f"{c['observation_plans']} (demo grid {c['demo_grid_plans']}), checks done {c['checks_done']}, "
                   f"missed {c['checks_missed']}, due {c['checks_due']}, late {c['late_check_ins']}, "
                   f"fevers {c['fevers']}, home visits {c['visit_tasks']}")


# -- backup and restore -------------------------------------------------------------
@main.command()
@click.argument("target", type=click.Path())
@click.option("--keep", type=click.IntRange(min=1), default=None, metavar="N",
              help="TARGET is a folder: write a new timestamped archive there and keep only the newest N")
@_fail_cleanly
def backup(target: str, keep: int | None) -> None:
    """Back up the database and the keys that unseal its personal data into one archive (TARGET)."""
    from pathlib import Path

    from gis.backup import backup as make_backup
    from gis.backup import backup_name, prune
    from matching.privacy import load_secrets, secrets_file, secrets_from_environment

    path = Path(target)
    if keep is not None or path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = path / backup_name()
    keys_from = "environment" if secrets_from_environment() else str(secrets_file())
    started = time.monotonic()
    result = make_backup(_engine(), path, load_secrets(), keys_from)
    click.echo(f"已备份 {len(result.tables)} 个表（{sum(result.tables.values())} 行）与密钥 / backed up "
               f"{len(result.tables)} tables ({sum(result.tables.values())} rows) and the keys to {result.path} "
               f"({result.size / 1e6:.1f} MB, {time.monotonic() - started:.1f} s)")
    click.echo("备份含解密个人信息的密钥：请加密保存、异地存放、限制访问 / the archive holds the key to the personal "
               "data: encrypt it, keep it away from the server, let few read it")
    if keep is not None:
        for removed in prune(path.parent, keep):
            click.echo(f"已删除旧备份 / removed the old backup {removed.name}")


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="restore into a database that is not empty (everything in it is removed "
                                            "first), and replace a different keys file")
@click.option("--secrets", "secrets_to", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="write the backup's keys to FILE (NAME=value lines when it ends in .env, else secrets.json form)")
@_fail_cleanly
def restore(archive: str, force: bool, secrets_to: str | None) -> None:
    """Restore ARCHIVE (from gridctl backup) into an empty database and put its keys back."""
    from pathlib import Path

    from gis.backup import read_archive
    from gis.backup import restore as load_backup
    from gis.errors import ConfigurationError
    from gis.migrate import head_revision
    from matching.privacy import load_secrets, read_secrets, save_secrets, secrets_file, secrets_from_environment

    manifest, keys = read_archive(Path(archive))
    # where the keys go, decided (and refused) before the database is touched
    destination: Path | None = Path(secrets_to) if secrets_to else None
    if destination is None and secrets_from_environment():
        if load_secrets() != keys:
            raise ConfigurationError(
                "环境变量中的密钥与备份中的不同：用 --secrets FILE.env 写出备份的密钥，再放入 EnvironmentFile / "
                "the keys in the environment (NANHAI_PERSON_KEY_SECRET, NANHAI_FERNET_KEY) differ from the "
                "backup's: write the backup's with --secrets FILE.env, then put them in the EnvironmentFile")
    elif destination is None:
        destination = secrets_file()
    replaced_keys = destination is not None and destination.exists() and read_secrets(destination) != keys
    if replaced_keys and not force:
        raise ConfigurationError(f"{destination} 中已有不同的密钥，加 --force 替换（旧文件改名保留）/ "
                                 f"{destination} holds other keys: --force replaces them (the old file is kept, "
                                 f"renamed)")
    started = time.monotonic()
    result = load_backup(_engine(), Path(archive), force)
    click.echo(f"已恢复 {len(result.tables)} 个表（{sum(result.tables.values())} 行，与备份清单一致）/ restored "
               f"{len(result.tables)} tables ({sum(result.tables.values())} rows, as the backup's manifest counts) "
               f"from {manifest['created_at']}{' (the database was emptied first)' if result.replaced else ''}"
               f"  ({time.monotonic() - started:.1f} s)")
    if destination is not None:
        if replaced_keys:
            aside = destination.with_name(f"{destination.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
            destination.rename(aside)
            click.echo(f"原密钥已改名为 / the keys it replaced are kept as {aside}")
        save_secrets(destination, keys)
        click.echo(f"密钥已写入 / the keys are in {destination} (mode 600)")
    else:
        click.echo("环境变量中的密钥与备份一致 / the environment's keys are the backup's")
    if manifest.get("schema_revision") != head_revision():
        click.echo(f"备份的数据库结构为 {manifest.get('schema_revision')}，程序为 {head_revision()}：请运行 gridctl db "
                   f"upgrade / the backup's schema is at {manifest.get('schema_revision')}, the code at "
                   f"{head_revision()}: run `gridctl db upgrade`")


# -- serve ------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="server processes (one per core is right)")
@click.option("--threads", default=8, show_default=True, type=int, help="threads per process")
@click.option("--trusted-proxy", envvar="NANHAI_TRUSTED_PROXY", default=None, metavar="ADDRESS",
              help="address of the reverse proxy in front (nginx…), whose X-Forwarded-For names the client")
@click.option("--production", is_flag=True, default=False,
              help="refuse to start with demo accounts or generated keys (also NANHAI_PRODUCTION=1)")
@_fail_cleanly
def serve(host: str, port: int, workers: int, threads: int, trusted_proxy: str | None, production: bool) -> None:
    """Serve the map app, the JSON API and the plain pages (granian, a production HTTP server, N workers)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from api.production import production_problems, production_requested
    from api.serving import serve_forever
    from gis.db import CONNECT_ARGS, database_url
    from gis.migrate import require_current

    url = database_url()  # starts the embedded server if needed; each serving process makes its own engine
    # a one-off engine without a pool: a cached one may hold connections the database has since closed
    checking = create_engine(url, poolclass=NullPool, connect_args=CONNECT_ARGS)
    require_current(checking)
    problems = production_problems(checking) if production_requested(production) else []
    checking.dispose()
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)

    def make_app() -> Flask:
        from app import create_app
        from gis.db import get_engine

        return create_app(get_engine(url)).server

    def start_sweeper() -> None:
        from gis.db import get_engine
        from matching.rule_versions import follow_versions
        from tasks.sweep import Sweeper

        engine = get_engine(url)
        follow_versions(engine)  # the sweeper's tasks take the time limits in force, not the files'
        Sweeper(engine).start()

    def start_jobs() -> None:
        from jobs.worker import start_beside

        start_beside(url)

    click.echo(f"南海区网格指挥平台 / serving at http://{host}:{port} with {workers} process(es)  "
               f"(Ctrl+C 停止 / to stop)")
    serve_forever(make_app, host, port, workers, threads, on_start=start_sweeper, trusted_proxy=trusted_proxy,
                  jobs_worker=start_jobs)


if __name__ == "__main__":
    main()
