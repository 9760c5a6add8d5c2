"""The matcher's two runs: bring a feed in, and match everyone (collision, rules, locating, flags).

Both are plain functions over an engine; the CLI adds progress bars and the
task workflow reads what they store. Progress is reported through a callback
``progress(step, fraction)``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from gis.config import data_dir
from gis.errors import ConfigurationError, GridError, NoGrids
from gis.pgbinary import encode_rows
from grids import repository as grid_repository
from matching import linkage_repository, replay_repository, repository
from matching.addresses import AddressMatcher
from matching.feeds import FieldWarning, check_body, read_body
from matching.identity import mask_ids, mask_names, mask_phones, provisional_key
from matching.linkage import LinkResult
from matching.locator import GridLocator
from matching.lookup import phone_key_rows
from matching.persons import Placing, coded_persons, in_record_order
from matching.privacy import Vault, load_vault
from matching.record_linking import link_unidentified, record_births
from matching.rule_versions import current_rules, follow_versions, rules_as_of
from matching.rules import REQUEST_COLUMNS, RuleSet, load_rules
from observation.plans import sync_plans
from observation.policy import observation_policy

Progress = Callable[[str, float], None]
SEAL_CHUNK = 50_000  # rows checked, keyed, sealed and encoded, then copied, at a time
PARALLEL_ROWS = 200_000  # from this many rows on, chunks are sealed in one process per core
PLACE_CHUNK = 100_000  # persons placed, then stored, at a time


def quiet(step: str, fraction: float) -> None:
    return None


@contextmanager
def bulk_work() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while millions of small objects are built (no cycles
    are made here); its repeated full passes over them would otherwise be a large share of the run."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class FeedImport:
    """What an import did: read = stored + rejected, the rejected rows with their reasons, the header's warnings
    (``warnings``: two columns for one field), and the stored rows whose phone, point or reported time was ignored
    (``rows_warned`` rows, ``field_warnings`` one per field)."""

    file_name: str
    source: str
    rows_read: int
    rows_stored: int
    rows_rejected: int
    already_imported: bool
    rejections: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_warned: int = 0
    field_warnings: list[FieldWarning] = field(default_factory=list)

    @classmethod
    def earlier(cls, file_name: str, source: str, stored: dict) -> FeedImport:
        """The answer for a file this source sent before: its stored balance, nothing changed."""
        return cls(file_name, source, stored["rows_read"], stored["rows_stored"], stored["rows_rejected"], True,
                   rows_warned=stored.get("rows_warned") or 0)


def import_feed(engine: Engine, path: str | Path, source: str, default_crs: str = "wgs84",
                vault: Vault | None = None, progress: Progress = quiet, workers: int | None = None,
                imported_by: str | None = None, job_id: int | None = None) -> FeedImport:
    """Check a feed file and store its rows (each stored or rejected); the same file twice changes nothing.

    Rows are checked, keyed, sealed and encoded chunk by chunk; a large feed's chunks go to ``workers``
    processes (default: one per core, from :data:`PARALLEL_ROWS` rows on) while this one streams them
    to the server. The import history keeps who imported it (``imported_by``, a username), the background
    job that did (``job_id``) and how long it took; the audit log gets a ``feed.import`` line.
    """
    with bulk_work():
        return _import_feed(engine, path, source, default_crs, vault, progress, workers, imported_by, job_id)


def _import_feed(engine: Engine, path: str | Path, source: str, default_crs: str, vault: Vault | None,
                 progress: Progress, workers: int | None, imported_by: str | None = None,
                 job_id: int | None = None) -> FeedImport:
    started = time.monotonic()
    source = source.strip()
    if not source:
        raise ConfigurationError("请用 --source 指明数据来源部门 / name the department with --source")
    vault = vault or load_vault()
    progress("读取 / reading", 0.0)
    body = read_body(path, lambda fraction: progress("读取 / reading", fraction))
    with engine.connect() as conn:
        earlier = repository.find_feed_file(conn, source, body.sha256)
        types = repository.source_record_types(conn)
    if earlier:
        return FeedImport.earlier(body.path.name, source, earlier)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(body) >= PARALLEL_ROWS else 1
    starts = range(0, len(body), SEAL_CHUNK)
    today = date.today()
    rejections: list[tuple[int, str]] = []
    warned: list[FieldWarning] = []
    stored = [0]
    phones: list[tuple[np.ndarray, np.ndarray]] = []

    def encoded(sealed: Iterator[SealedChunk]) -> Iterator[bytes]:
        for done, chunk in enumerate(sealed, start=1):
            rejections.extend(chunk.rejections)
            warned.extend(chunk.field_warnings)
            stored[0] += chunk.stored
            phones.append(chunk.phones)  # the hotline's phone keys, stored sorted once all are made
            progress("校验、加密与写入 / checking, encrypting and storing", done / max(len(starts), 1))
            yield chunk.rows

    progress("校验、加密与写入 / checking, encrypting and storing", 0.0)
    try:
        with _sealing(vault, workers) as seal, engine.begin() as conn:
            feed_id = repository.add_feed_file(conn, source, body.path.name, body.sha256, default_crs, imported_by,
                                               job_id)
            jobs = ((body.rows(start, start + SEAL_CHUNK), default_crs, today, feed_id, source, types)
                    for start in starts)
            copied = repository.copy_source_records(conn, encoded(seal(jobs)))
            if copied != stored[0]:
                raise RuntimeError(f"{copied} records copied, {stored[0]} checked and sealed")
            repository.store_phone_keys(conn, feed_id, phones)
            rows_warned = repository.finish_feed_file(conn, feed_id, len(body), stored[0], rejections,
                                                      round((time.monotonic() - started) * 1000), warned)
            repository.audit_feed(conn, imported_by, "feed.import", feed_id,
                                  f"{source} · {body.path.name} · SHA-256 {body.sha256} · 读取 {len(body)} = 入库 "
                                  f"{stored[0]} + 拒收 {len(rejections)} / read = stored + rejected · 字段警告 "
                                  f"{rows_warned} 行 / rows with field warnings: {rows_warned}",
                                  f"job:{job_id}" if job_id is not None else None)
    except IntegrityError:  # the same file, imported at the same moment by someone else
        with engine.connect() as conn:
            earlier = repository.find_feed_file(conn, source, body.sha256)
        if not earlier:
            raise
        return FeedImport.earlier(body.path.name, source, earlier)
    progress("完成 / done", 1.0)
    return FeedImport(body.path.name, source, len(body), stored[0], len(rejections), False, rejections,
                      body.warnings, rows_warned, warned)


@dataclass
class SealedChunk:
    """One chunk of a feed, checked: its accepted records as binary COPY rows, its rejected rows, and the fields
    of its accepted rows that were ignored."""

    rows: bytes
    stored: int
    rejections: list[tuple[int, str]]
    phones: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.empty(0, np.int64),
                                                                           np.empty(0, np.int64)))
    field_warnings: list[FieldWarning] = field(default_factory=list)


_VAULT: list[Vault] = []  # the vault of a sealing process (set when it starts: a vault cannot be pickled)


def _keep_vault(vault: Vault) -> None:
    _VAULT[:] = [vault]


def _seal_chunk(job: tuple) -> SealedChunk:
    """Check one chunk, then key, seal and mask its accepted records and encode them for COPY: the records
    leave with no clear personal data."""
    body, default_crs, today, feed_id, source, types = job
    records, rejected, warned = check_body(body, default_crs, today)
    hashed, tokens = _VAULT[0].key_and_seal(records["id_number"], records["name"], records["phone"], records["birth"])
    keys = np.asarray(hashed, dtype=object)
    identified = records["identified"].to_numpy(dtype=bool)
    # a record without an ID number is its own provisional person until linkage links it
    keys[~identified] = [provisional_key(feed_id, row) for row in records["row"].to_numpy()[~identified]]
    masked = {column: mask(pa.array(records[field], type=pa.string()))
              for field, column, mask in (("id_number", "id_masked", mask_ids), ("name", "name_masked", mask_names),
                                          ("phone", "phone_masked", mask_phones))}
    columns = {"feed_file_id": pd.Series(np.full(len(records), feed_id)), "row_number": records["row"],
               "source": pa.array(np.full(len(records), source, dtype=object), type=pa.string()),
               "person_key": pa.array(keys, type=pa.string()), "sealed": pa.array(tokens, type=pa.string()), **masked,
               "address_sealed": _sealed_addresses(_VAULT[0], records["address"]),
               **{c: records[c] for c in ("lon", "lat", "crs", "category", "reported_at", "identified", "origin",
                                          "arrived_on")}}
    rows = encode_rows({c: columns[c] for c in repository.SOURCE_RECORD_COLUMNS}, types)
    return SealedChunk(rows, len(records), [(r.row, r.reason) for r in rejected],
                       phone_key_rows(_VAULT[0], records["phone"], records["row"]), warned)


def _sealed_addresses(vault: Vault, addresses: pd.Series) -> pa.Array:
    """The home addresses as Fernet tokens (null where a record has none): stored sealed like the other personal
    fields; locating opens them in memory (:func:`_run_match`)."""
    given = addresses.notna().to_numpy() & (addresses.fillna("").to_numpy(dtype=object) != "")
    tokens = np.full(len(addresses), None, dtype=object)
    tokens[given] = vault.seal_texts(addresses.to_numpy(dtype=object)[given].tolist())
    return pa.array(tokens, type=pa.string())


@contextmanager
def _sealing(vault: Vault, workers: int) -> Iterator[Callable[[Iterable[tuple]], Iterator[SealedChunk]]]:
    """A function that seals chunks in order: here, or in ``workers`` forked processes.

    The processes are forked before this import opens its transaction or its writer thread; they only
    compute, and hand back bytes. At most two chunks per process are out at a time, so a file of any size
    holds a few chunks in memory, not all. A process that dies (the system out of memory) fails the import,
    which then stores nothing, rather than leaving it waiting for a chunk that will never come.
    """
    if workers <= 1:
        _keep_vault(vault)
        try:
            yield lambda jobs: map(_seal_chunk, jobs)
        finally:
            _VAULT.clear()  # the keys stay no longer than the import
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    def sealed(jobs: Iterable[tuple]) -> Iterator[SealedChunk]:
        pending: deque = deque()
        try:
            for job in jobs:
                pending.append(pool.submit(_seal_chunk, job))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as exc:
            raise GridError("加密进程意外退出（内存不足？），本文件未存储任何记录，请重试 / a sealing process died "
                            "(out of memory?): nothing of this file was stored; import it again") from exc

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_keep_vault,
                             initargs=(vault,)) as pool:
        yield sealed


def grid_locator(engine: Engine) -> tuple[GridLocator, np.ndarray]:
    """The locator of the stored grids (tables cached in the data folder) and the grid id of each index."""
    with engine.connect() as conn:
        grids = grid_repository.load_grids(conn)
    if grids.empty:
        raise NoGrids()
    digest = hashlib.sha256()
    for code, geom in zip(grids["code"], grids.geometry.values, strict=True):
        digest.update(code.encode())
        digest.update(geom.wkb)
    cache = data_dir() / f"locator-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        locator = GridLocator.load(cache, grids["code"].to_numpy(), grids.geometry.values)
    else:
        locator = GridLocator(grids["code"].to_numpy(), grids.geometry.values)
        for stale in data_dir().glob("locator-*.npz"):
            stale.unlink()
        locator.save(cache)
    ids = grids.set_index("code")["id"]
    return locator, ids.loc[locator.codes].to_numpy()


def _linkage_counts(linking: LinkResult | None) -> dict[str, int]:
    """How the run linked the records without ID numbers, by band, and the pairs it put up for review."""
    if linking is None:
        return {}
    bands = linking.links["band"].value_counts()
    return {"unidentified_records": len(linking.links),
            **{f"linked_{band}": int(bands.get(band, 0)) for band in ("auto", "decided", "review", "new")},
            "review_pairs": len(linking.pairs)}


def run_match(engine: Engine, now: pd.Timestamp | None = None, rules_path: str | None = None,
              progress: Progress = quiet, vault: Vault | None = None, replay: Replay | None = None
              ) -> dict[str, int]:
    """Recompute every person's code and place, then store persons, history, flags and task requests.

    The colour rules are the file ``rules_path`` if given, else those in force in the database (the newest saved
    version, else the rules file: :func:`matching.rule_versions.current_rules`). The process then also follows
    the database's task kinds in force (:func:`matching.rule_versions.follow_versions`), so that the sweep after
    a match creates its tasks with the time limits and priorities in force.

    With ``replay``, the codes are those of ``replay.as_of``: only the records registered by then (their report
    time, else their import time), the overrides set by then, the rules version in force then and the reviewers'
    decisions made by then count, and expiries run against that moment. The result goes to the named replay
    (:mod:`matching.replay_repository`), never over today's persons, flags, links or task requests. Every run is
    recorded with the moment its codes are as of (``match_runs``).
    """
    with bulk_work():
        return _run_match(engine, now, rules_path, progress, vault, replay)


@dataclass(frozen=True)
class Replay:
    """An as-of run's name, moment and who asked for it."""

    name: str
    as_of: pd.Timestamp
    created_by: str | None = None


@dataclass
class MatchInputs:
    """What a match reads before it codes anyone: the records (in :func:`matching.persons.in_record_order`, their
    ID-less ones linked), the overrides, the places the address matcher knows, the rules, and the run's clocks."""

    records: pd.DataFrame
    overrides: pd.DataFrame
    places: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
    rules: RuleSet
    linking: LinkResult | None
    started: pd.Timestamp
    now: pd.Timestamp
    record_count: int = 0  # the records read, kept when a caller lets the frame go (the Spark driver, once staged)


def load_inputs(engine: Engine, now: pd.Timestamp | None, rules_path: str | None, progress: Progress,
                vault: Vault | None, replay: Replay | None = None) -> MatchInputs:
    """Read a match's inputs and link the records without ID numbers (the same code, and the same trained model,
    for every engine: :mod:`matching.spark` starts from here too)."""
    started = pd.Timestamp.now(tz="UTC")
    now = replay.as_of if replay else (now or started)
    progress("读取记录 / loading records", 0.0)
    linking: LinkResult | None = None
    with engine.connect() as conn:
        if replay:
            replay_repository.require_new_name(conn, replay.name)
        records = in_record_order(repository.load_records(conn))
        overrides = repository.load_overrides(conn)
        places = repository.load_places(conn)
        if rules_path:
            rules = load_rules(rules_path)
        else:
            rules = rules_as_of(conn, now.to_pydatetime()) if replay else current_rules(conn)
        if replay:  # what was registered by then, and the overrides set by then
            records = records[(records["reported_at"] <= now).to_numpy()].reset_index(drop=True)
            overrides = overrides[(overrides["set_at"] <= now).to_numpy()].reset_index(drop=True)
        if not records["identified"].all():
            progress("记录关联 / linking records without ID numbers", 0.05)
            records, linking = link_unidentified(
                records, repository.load_sealed(conn), vault or load_vault(),
                linkage_repository.load_decisions(conn, now.to_pydatetime() if replay else None),
                linkage_repository.current_model(conn, len(records), started.to_pydatetime()))
    follow_versions(engine)
    return MatchInputs(records, overrides, places, rules, linking, started, now, len(records))


def _run_match(engine: Engine, now: pd.Timestamp | None, rules_path: str | None,
               progress: Progress, vault: Vault | None, replay: Replay | None = None) -> dict[str, int]:
    inputs = load_inputs(engine, now, rules_path, progress, vault, replay)
    if inputs.records.empty:
        return store_run(engine, inputs, [empty_persons()], pd.DataFrame(columns=list(REQUEST_COLUMNS)), replay)
    progress("数据碰撞与赋码 / collision and rules", 0.2)
    records = inputs.records
    if inputs.rules.reads("age"):  # dates of birth are sealed: opened for this run, in memory only
        with engine.connect() as conn:
            records = records.assign(birth=record_births(records, repository.load_sealed(conn), vault or load_vault()))
    coded = coded_persons(records, inputs.rules, inputs.now, inputs.overrides, vault or load_vault())
    persons = coded.persons

    progress("定位与写入 / locating and storing", 0.4)
    locator, grid_ids = grid_locator(engine)
    place = Placing(locator, grid_ids, AddressMatcher(*inputs.places))

    def placed() -> Iterator[pd.DataFrame]:
        for start in range(0, len(persons), PLACE_CHUNK):
            part = slice(start, start + PLACE_CHUNK)
            yield place(persons.iloc[part], coded.lon[part], coded.lat[part], coded.addresses[part])
            progress("定位与写入 / locating and storing", 0.4 + 0.5 * min(1.0, (start + PLACE_CHUNK) / len(persons)))
        progress("写入人员、历史、任务请求与标记 / storing persons, history, task requests and flags", 0.9)

    stats = store_run(engine, inputs, placed(), coded.requests, replay)
    progress("完成 / done", 1.0)
    return stats


def store_run(engine: Engine, inputs: MatchInputs, placed: Iterable[pd.DataFrame], requests: pd.DataFrame,
              replay: Replay | None = None) -> dict[str, int]:
    """Store one run in one transaction: the placed persons (chunks in key order, stored as they come), code
    history, flags, the rules' task requests, home observation plans, the links, the run's record; or, for a
    replay, the named replay alone. A failure anywhere leaves the previous run's results in force."""
    now, started, linking = inputs.now.to_pydatetime(), inputs.started.to_pydatetime(), inputs.linking
    if replay:  # kept apart from today's picture; trained weights are kept, as they are about the data, not a day
        with engine.begin() as conn:
            stats = replay_repository.store_replay(conn, replay.name, now, replay.created_by,
                                                   pd.concat(list(placed), ignore_index=True), started,
                                                   _linkage_counts(linking))
            if linking is not None and linking.trained:
                linkage_repository.store_model(conn, linking.settings, inputs.record_count)
        return stats
    # the server stores each chunk of new persons while the next is placed
    with engine.begin() as conn:
        stats = repository.store_match(conn, placed, now)
        rule_requests = repository.store_rule_requests(conn, requests, now)
        stats.update(task_requests=stats["task_requests"] + rule_requests, rule_task_requests=rule_requests)
        sync_plans(conn, now, observation_policy(inputs.rules))  # home observation follows the codes
        if linking is not None:  # in the same transaction: the records' person keys and the persons agree
            linkage_repository.store_links(conn, linking.links, linking.pairs, now)
            if linking.trained:
                linkage_repository.store_model(conn, linking.settings, inputs.record_count)
        else:
            linkage_repository.clear_links(conn, now)
        stats.update(_linkage_counts(linking))
        replay_repository.record_run(conn, started, now, None, stats)
    return stats


def empty_persons() -> pd.DataFrame:
    """A run with nobody in it, its columns typed as a real run's (they are compared with what is stored)."""
    dtypes = {"set_at": "datetime64[us, UTC]", "expires_at": "datetime64[us, UTC]", "grid_id": "Int64",
              "provisional": bool, "record_feed_file_id": "Int64", "record_row_number": "Int64",
              **dict.fromkeys(("lon", "lat", "confidence"), float)}
    columns = ["person_key", "id_masked", "name_masked", "phone_masked", "colour", "reason", "rule_id", "sources",
               "set_at", "expires_at", "method", "confidence", "lon", "lat", "grid_id", "unplaced_reason",
               "record_feed_file_id", "record_row_number", "provisional", "explanation"]
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object)) for c in columns})


def unplaced(engine: Engine) -> pd.DataFrame:
    """The risk-coded persons no grid holds, with the reason: nobody silently disappears."""
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT p.person_key, p.id_masked, p.name_masked, p.colour, p.unplaced_reason "
                                "FROM flags f JOIN persons p USING (person_key) WHERE f.grid_id IS NULL "
                                "ORDER BY p.colour, p.person_key"), conn)
