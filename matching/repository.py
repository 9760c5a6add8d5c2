"""Database access for feeds, source records, persons, risk codes, flags and task requests.

Bulk paths use COPY into temporary tables and set-based SQL, so a million
people move in seconds and every run is one transaction.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gis.db import driver_connection
from grids.repository import PLACEMENT_LOCK, column_types, copy_encoded, copy_frame, copy_frames, copy_rows, ewkb
from matching.changes import Comparison, MatchChanges, combined

if TYPE_CHECKING:
    import pyarrow as pa

PERSON_COLUMNS = ("person_key, id_masked, name_masked, phone_masked, colour, reason, rule_id, sources, set_at, "
                  "expires_at, method, confidence, grid_id, unplaced_reason, record_feed_file_id, record_row_number, "
                  "provisional, explanation, updated_at")
SOURCE_RECORD_COLUMNS = ("feed_file_id", "row_number", "source", "person_key", "sealed", "id_masked", "name_masked",
                         "phone_masked", "address_sealed", "lon", "lat", "crs", "category", "reported_at",
                         "identified", "origin", "arrived_on")
_MICROSECONDS = "(extract(epoch FROM {}) * 1000000)::int8"  # a time as whole microseconds since 1970
RECORD_COLUMNS = ("person_key", "source", "category", "reported_at", "lon", "lat", "address_sealed", "id_masked",
                  "name_masked", "phone_masked", "feed_file_id", "row_number", "identified", "origin", "arrived_at")


def find_feed_file(conn: Connection, source: str, sha256: str) -> dict[str, Any] | None:
    """The import of the file ``sha256`` from ``source`` that stands (a withdrawn one does not), if any."""
    row = conn.execute(text("SELECT id, file_name, rows_read, rows_stored, rows_rejected, rows_warned, imported_at "
                            "FROM feed_files WHERE source = :s AND sha256 = :h AND withdrawn_at IS NULL"),
                       {"s": source, "h": sha256}).mappings().first()
    return dict(row) if row else None


def add_feed_file(conn: Connection, source: str, file_name: str, sha256: str, default_crs: str,
                  imported_by: str | None = None, job_id: int | None = None) -> int:
    """Record a feed file about to be stored (by whom, in which job); :func:`finish_feed_file` sets its balance."""
    return conn.execute(text(
        "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs, "
        "imported_by, job_id) VALUES (:s, :f, :h, 0, 0, 0, :c, :b, :j) RETURNING id"),
        {"s": source, "f": file_name, "h": sha256, "c": default_crs, "b": imported_by, "j": job_id}).scalar_one()


def source_record_types(conn: Connection) -> dict[str, str]:
    """The stored type of each source record column, for encoding records elsewhere (see :mod:`gis.pgbinary`)."""
    return column_types(conn, "source_records")


def copy_source_records(conn: Connection, chunks: Iterable[bytes]) -> int:
    """Store source records already encoded (binary COPY rows of :data:`SOURCE_RECORD_COLUMNS`) as they come;
    return how many the server stored."""
    return copy_encoded(conn, "source_records", list(SOURCE_RECORD_COLUMNS), chunks)


def store_phone_keys(conn: Connection, feed_id: int, parts: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """Store the phone keys of a feed file's records, given chunk by chunk as (keys, row numbers), sorted by key:
    appended in key order, the table's primary key grows without the random page visits of an unsorted insert."""
    if not parts:
        return 0
    keys, rows = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.lexsort((rows, keys))
    return copy_frame(conn, "source_record_phones", pd.DataFrame(
        {"phone_key": keys[order], "feed_file_id": np.full(len(keys), feed_id, dtype=np.int64),
         "row_number": rows[order]}), chunk_rows=1_000_000)


def finish_feed_file(conn: Connection, feed_id: int, rows_read: int, stored: int,
                     rejections: list[tuple[int, str]], import_ms: int | None = None,
                     field_warnings: Iterable[tuple[int, str, str]] = ()) -> int:
    """Set a feed file's balance (the database refuses one that does not add up), how long its import took, and
    store its rejections and its stored rows' field warnings (row, field, reason: migration 0016), counted apart
    from the balance as the rows with at least one (returned)."""
    warnings = list(field_warnings)
    rows_warned = len({row for row, _field, _reason in warnings})
    conn.execute(text("UPDATE feed_files SET rows_read = :r, rows_stored = :a, rows_rejected = :j, "
                      "rows_warned = :w, import_ms = :ms WHERE id = :f"),
                 {"r": rows_read, "a": stored, "j": len(rejections), "w": rows_warned, "ms": import_ms,
                  "f": feed_id})
    copy_rows(conn, "feed_rejections", ("feed_file_id", "row_number", "reasons"),
              ((feed_id, row, reasons) for row, reasons in rejections))
    copy_rows(conn, "feed_field_warnings", ("feed_file_id", "row_number", "field", "reason"),
              ((feed_id, row, name, reason) for row, name, reason in warnings))
    return rows_warned


def load_records(conn: Connection) -> pd.DataFrame:
    """Every source record, without personal data in clear: what collision, rules and locating need (the home
    address as its Fernet token, ``""`` when none: locating opens the few it uses, in memory), and where the
    person came from (``origin``, None when not given) and when he arrived (``arrived_at``: the local midnight
    that began his arrival day, in UTC, NaT when not given), which the rules read.

    Read with COPY … TO STDOUT as CSV and parsed by pyarrow's C++ reader, which builds typed columns
    without Python objects per value, unlike pandas' reader (figures in benchmarks/RESULTS.md).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kinds = {name: "s" for name in RECORD_COLUMNS}
    kinds.update(reported_at="t", lon="f", lat="f", feed_file_id="i", row_number="i", identified="i",
                 arrived_at="t")
    # the day is the district's: its midnight in Asia/Shanghai (the one zone Nanhai keeps) as a UTC instant
    arrived_at = "(r.arrived_on::timestamp AT TIME ZONE 'Asia/Shanghai')"
    table = _copy_out(conn, "SELECT r.person_key, r.source, coalesce(r.category, ''), "
                            f"{_MICROSECONDS.format('coalesce(r.reported_at, f.imported_at)')}, r.lon, r.lat, "
                            "coalesce(r.address_sealed, ''), r.id_masked, r.name_masked, r.phone_masked, "
                            "r.feed_file_id, r.row_number, r.identified::int, r.origin, "
                            f"{_MICROSECONDS.format(arrived_at)} "
                            "FROM source_records r JOIN feed_files f ON f.id = r.feed_file_id "
                            "WHERE f.withdrawn_at IS NULL",  # a withdrawal's records, until it removes them
                      kinds, empty_text_is_null=False)
    for name in ("phone_masked", "origin"):  # stored NULL (an empty text is stored NULL too): None, in C++
        at = table.schema.get_field_index(name)
        values = table.column(at)
        table = table.set_column(at, name, pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values))
    frame = table.to_pandas()
    frame["identified"] = frame["identified"].astype(bool)
    return frame


def load_sealed(conn: Connection) -> pd.DataFrame:
    """Every standing source record's sealed fields (feed_file_id, row_number, sealed): what linkage opens, in
    memory only, when some records carry no ID number (:func:`matching.pipeline.link_unidentified`)."""
    return _copy_out(conn, "SELECT r.feed_file_id, r.row_number, r.sealed FROM source_records r "
                           "JOIN feed_files f ON f.id = r.feed_file_id WHERE f.withdrawn_at IS NULL",
                     {"feed_file_id": "i", "row_number": "i", "sealed": "s"}).to_pandas()


def load_overrides(conn: Connection) -> pd.DataFrame:
    frame = pd.read_sql(text("SELECT person_key, colour, reason, set_by, set_at, expires_at FROM risk_overrides"),
                        conn)
    for column in ("set_at", "expires_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def add_override(conn: Connection, person_key: str, colour: str, reason: str, set_by: str,
                 expires_at: datetime | None) -> int:
    """Record a manual code (who and why); it holds until ``expires_at`` whatever the rules say."""
    return conn.execute(text("INSERT INTO risk_overrides (person_key, colour, reason, set_by, expires_at) "
                             "VALUES (:k, :c, :r, :b, :e) RETURNING id"),
                        {"k": person_key, "c": colour, "r": reason, "b": set_by, "e": expires_at}).scalar_one()


def load_places(conn: Connection) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Towns, communities (with a point inside each) and the standard address table."""
    towns = pd.read_sql(text("SELECT code, name FROM towns ORDER BY code"), conn)
    communities = pd.read_sql(text(
        "SELECT c.code, c.name, c.name_short, t.code AS town_code, "
        "ST_X(ST_PointOnSurface(c.geom)) AS lon, ST_Y(ST_PointOnSurface(c.geom)) AS lat "
        "FROM communities c JOIN towns t ON t.id = c.town_id WHERE c.geom IS NOT NULL ORDER BY c.code"), conn)
    book = pd.read_sql(text("SELECT c.code AS community_code, a.text, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat "
                            "FROM addresses a JOIN communities c ON c.id = a.community_id"), conn)
    return towns, communities, book


def store_addresses(conn: Connection, book: pd.DataFrame, community_ids: dict[str, int]) -> int:
    return copy_rows(conn, "addresses", ("community_id", "text", "geom"),
                     ((community_ids[r.community_code], r.text, ewkb(shapely.Point(r.lon, r.lat)))
                      for r in book.itertuples()))


def lock_match(conn: Connection) -> None:
    """Take the placement lock for the rest of the transaction: one match run (or grid replacement) writes at a
    time, and each run compares with what the previous one stored."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": PLACEMENT_LOCK})


def load_stored_persons(conn: Connection) -> pd.DataFrame:
    """What the last run stored of each person, the fields a run compares (:data:`changes.COMPARED`)."""
    table = _copy_out(conn, "SELECT person_key, colour, reason, rule_id, sources, "
                            f"{_MICROSECONDS.format('expires_at')}, method, confidence, grid_id, "
                            "unplaced_reason, id_masked, name_masked, phone_masked, record_feed_file_id, "
                            "record_row_number, ST_X(geom), ST_Y(geom), explanation FROM persons",
                      {"person_key": "s", "colour": "s", "reason": "s", "rule_id": "s", "sources": "s",
                       "expires_at": "t", "method": "s", "confidence": "f", "grid_id": "i", "unplaced_reason": "s",
                       "id_masked": "s", "name_masked": "s", "phone_masked": "s", "record_feed_file_id": "i",
                       "record_row_number": "i", "lon": "f", "lat": "f", "explanation": "s"})
    return table.to_pandas()


def load_flags(conn: Connection) -> pd.DataFrame:
    """Each flag's person, colour and place."""
    return _copy_out(conn, "SELECT person_key, colour, grid_id, unplaced_reason FROM flags",
                     {"person_key": "s", "colour": "s", "grid_id": "i", "unplaced_reason": "s"}).to_pandas()


def _copy_out(conn: Connection, query: str, columns: dict[str, str], empty_text_is_null: bool = True) -> pa.Table:
    """The rows of ``query`` read with ``COPY … TO STDOUT`` and parsed by pyarrow's C++ CSV reader, as a
    pyarrow table. ``columns`` names each output column and its kind: ``s`` text, ``i`` integer, ``f``
    float, ``t`` a time sent as microseconds since 1970 (:data:`_MICROSECONDS`: cheaper for the server
    to write, and to parse, than text). An empty text is read as NULL, or, with
    ``empty_text_is_null=False``, as an empty text."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    kinds = {"s": pa.string(), "i": pa.int64(), "f": pa.float64(), "t": pa.int64()}
    types = {name: kinds[kind] for name, kind in columns.items()}
    buffer = io.BytesIO()
    with driver_connection(conn).cursor() as cur, \
            cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell():
        buffer.seek(0)
        table = pacsv.read_csv(
            buffer, read_options=pacsv.ReadOptions(column_names=list(columns), block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""],
                                                 strings_can_be_null=empty_text_is_null,
                                                 quoted_strings_can_be_null=False))
    else:  # no rows (pyarrow refuses an empty CSV)
        table = pa.schema(types).empty_table()
    for name, kind in columns.items():
        if kind == "t":
            at = table.schema.get_field_index(name)
            table = table.set_column(at, name, pc.cast(table.column(at), pa.timestamp("us", tz="UTC")))
    return table


def store_changes(conn: Connection, changes: MatchChanges, now: datetime) -> None:
    """Write one run's changes (see :mod:`matching.changes`) but its new persons, which :func:`store_match`
    copies as they come: history, task requests, changed and removed persons, flags."""
    copy_frame(conn, "risk_code_history", changes.history)
    copy_frame(conn, "task_requests", changes.requests)
    if len(changes.changed):
        conn.execute(text("CREATE TEMP TABLE match_changed (LIKE persons) ON COMMIT DROP"))
        copy_frame(conn, "match_changed", _person_rows(changes.changed, now))
        assignments = ", ".join(f"{c} = m.{c}" for c in PERSON_COLUMNS.split(", ")[1:])
        conn.execute(text(f"UPDATE persons p SET {assignments}, geom = m.geom FROM match_changed m "
                          "WHERE m.person_key = p.person_key"))
    if len(changes.removed):
        conn.execute(text("DELETE FROM persons WHERE person_key = ANY(:keys)"), {"keys": list(changes.removed)})
    if len(changes.unflagged):
        conn.execute(text("DELETE FROM flags WHERE person_key = ANY(:keys)"), {"keys": list(changes.unflagged)})
    if len(changes.flags_changed):
        conn.execute(text("CREATE TEMP TABLE flags_changed (LIKE flags) ON COMMIT DROP"))
        copy_frame(conn, "flags_changed", changes.flags_changed.assign(flagged_at=now, updated_at=now))
        conn.execute(text("UPDATE flags f SET colour = c.colour, grid_id = c.grid_id, "
                          "unplaced_reason = c.unplaced_reason, updated_at = c.updated_at "
                          "FROM flags_changed c WHERE c.person_key = f.person_key"))
    copy_frame(conn, "flags", changes.flags_new.assign(flagged_at=now, updated_at=now))


def _person_rows(persons: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The ``persons`` table's columns of some run rows, the point as EWKB."""
    from gis.pgbinary import point_ewkb

    rows = persons[PERSON_COLUMNS.split(", ")[:-1]].assign(updated_at=now)
    rows["geom"] = pd.Series(pd.arrays.ArrowExtensionArray(point_ewkb(persons["lon"], persons["lat"])),
                             index=rows.index)
    return rows


def store_match(conn: Connection, persons: Iterable[pd.DataFrame], now: datetime) -> dict[str, int]:
    """Write one match run: persons, code history, flags and task requests; only what changed is written.

    ``persons`` has one row per person: person_key, id_masked, name_masked, phone_masked, colour,
    reason, rule_id, sources, set_at, expires_at, method, confidence, lon, lat, grid_id, unplaced_reason,
    and record_feed_file_id, record_row_number (the record the masked fields come from). It comes in
    chunks (one or more): each chunk's new persons are copied as it comes, so the caller places the next
    chunk while the server stores this one. In key order, the primary key's index grows at its right edge.
    """
    lock_match(conn)
    # the statement triggers' transition tables of a million persons then stay in memory, not spilled to disk
    conn.execute(text("SET LOCAL work_mem = '1GB'"))
    comparison = Comparison(load_stored_persons(conn), load_flags(conn))
    seen: list[pd.DataFrame] = []
    parts: list[MatchChanges] = []

    def new_persons() -> Iterator[pd.DataFrame]:
        for chunk in persons:
            parts.append(comparison.changes(chunk, now))
            seen.append(chunk[["person_key", "colour", "grid_id"]])
            yield _person_rows(parts[-1].new, now)

    copy_frames(conn, "persons", [*PERSON_COLUMNS.split(", "), "geom"], new_persons())
    run = pd.concat(seen, ignore_index=True)
    changes = combined(parts, comparison.removed(run["person_key"]))
    store_changes(conn, changes, now)
    if _reshaped(len(comparison.stored), len(changes.new) + len(changes.removed)) or \
            _reshaped(len(comparison.flags), len(changes.flags_new) + len(changes.unflagged)):
        # The planner's statistics of a table that grew or shrank by much (a district's first feed, a withdrawal)
        # are wrong until autovacuum gets there, and the pages' queries planned from them can take minutes (a grid's
        # persons took 106 s after a first 100,000-row feed: benchmarks/RESULTS.md, adminload). Taken in this
        # transaction, the new statistics come with the new rows.
        conn.execute(text("ANALYZE persons, flags, task_requests"))
    return {**run_counts(run), "code_changes": len(changes.history), "task_requests": len(changes.requests)}


def store_rule_requests(conn: Connection, requests: pd.DataFrame, now: datetime) -> int:
    """Request each task a rule asks for, once while the rule holds for the person (``rule_holds``): a request
    for every person and rule that holds now (``requests``: :data:`matching.rules.REQUEST_COLUMNS`) and did not
    at the last run, in the person's grid, with his colour. Holds that ended are forgotten, so that the rule
    requests again when it holds again, and their requests still pending are withdrawn (nobody is sent to
    verify what no longer holds). Returns the requests made."""
    conn.execute(text('CREATE TEMP TABLE rule_holding (person_key text COLLATE "C", rule_id text, kind text, '
                      'reason text, explanation text, since timestamptz) ON COMMIT DROP'))
    copy_frame(conn, "rule_holding", requests[["person_key", "rule_id", "kind", "reason", "explanation", "since"]])
    # its size known, the join below looks up each person by key rather than reading all the persons
    conn.execute(text("ANALYZE rule_holding"))
    held = "EXISTS (SELECT 1 FROM rule_holding h WHERE h.person_key = {0}.person_key AND h.rule_id = {0}.rule_id)"
    conn.execute(text(f"UPDATE task_requests r SET status = 'withdrawn' WHERE r.status = 'pending' "
                      f"AND r.rule_id IS NOT NULL AND NOT {held.format('r')}"))
    conn.execute(text(f"DELETE FROM rule_holds o WHERE NOT {held.format('o')}"))
    made = conn.execute(text(
        "INSERT INTO task_requests (person_key, grid_id, colour, reason, requested_at, kind, rule_id, explanation) "
        "SELECT h.person_key, p.grid_id, p.colour, h.reason, :now, h.kind, h.rule_id, h.explanation "
        "FROM rule_holding h JOIN persons p USING (person_key) WHERE NOT EXISTS "
        "(SELECT 1 FROM rule_holds o WHERE o.person_key = h.person_key AND o.rule_id = h.rule_id) "
        "ORDER BY h.person_key, h.rule_id"), {"now": now}).rowcount
    conn.execute(text("INSERT INTO rule_holds (person_key, rule_id, since, explanation) "
                      "SELECT person_key, rule_id, since, explanation FROM rule_holding "
                      "ON CONFLICT (person_key, rule_id) DO UPDATE SET explanation = EXCLUDED.explanation "
                      "WHERE rule_holds.explanation IS DISTINCT FROM EXCLUDED.explanation"))
    return made


def run_counts(run: pd.DataFrame) -> dict[str, int]:
    """A run's persons (colour, grid_id) counted: all, by colour, and the risk-coded ones no grid holds."""
    colours = run["colour"].value_counts()
    risky = run["colour"] != "green"
    return {"persons": len(run), **{c: int(colours.get(c, 0)) for c in ("red", "yellow", "blue", "green")},
            "unplaced_flags": int((risky & run["grid_id"].isna()).sum())}


RESHAPED_ROWS = 1000  # rows written or removed by one run from which a table may have changed shape


def _reshaped(before: int, moved: int) -> bool:
    """Whether ``moved`` rows written or removed change a table of ``before`` rows enough to take its statistics
    again: at least :data:`RESHAPED_ROWS`, and a fifth of it."""
    return moved >= RESHAPED_ROWS and moved >= before / 5


# A flagged person's field warnings, one text per person: each reason with the department and its row, e.g.
# "手机号格式错误 / phone malformed（卫健局 第12行）". Reached from the few warnings through the records' primary key
# (source_records.person_key has no index: migration 0007), of the imports that stand.
_FLAG_WARNINGS = (
    "SELECT r.person_key, string_agg(w.reason || '（' || ff.source || ' 第' || w.row_number || '行）', '；' "
    "    ORDER BY ff.imported_at, w.feed_file_id, w.row_number, w.field) AS warnings "
    "FROM feed_field_warnings w JOIN feed_files ff ON ff.id = w.feed_file_id AND ff.withdrawn_at IS NULL "
    "JOIN source_records r ON r.feed_file_id = w.feed_file_id AND r.row_number = w.row_number "
    "WHERE r.person_key IN (SELECT person_key FROM flags) GROUP BY r.person_key")


def flags_for_export(conn: Connection) -> pd.DataFrame:
    """Every flag, and every person a rule asks a task for (a verification keeps a green person green), with his
    person (masked), grid, community and town, the explanation of his code, the tasks rules ask for him with
    theirs (``tasks``), and the field warnings of his records (``warnings``); "" when none: the export's rows."""
    return pd.read_sql(text(
        f"WITH warned AS ({_FLAG_WARNINGS}), "
        "tasked AS (SELECT person_key, string_agg(explanation, E'\\n' ORDER BY rule_id) AS tasks FROM rule_holds "
        "  GROUP BY person_key), "
        "listed AS (SELECT person_key FROM flags UNION SELECT person_key FROM tasked) "
        "SELECT p.person_key, p.id_masked AS masked_id, p.name_masked AS name, g.code AS grid_code, "
        "  c.name AS community, t.name AS town, p.colour, p.reason, coalesce(p.explanation, '') AS explanation, "
        "  coalesce(k.tasks, '') AS tasks, p.method, p.confidence, p.unplaced_reason, "
        "  coalesce(w.warnings, '') AS warnings "
        "FROM listed l JOIN persons p USING (person_key) LEFT JOIN grids g ON g.id = p.grid_id "
        "LEFT JOIN communities c ON c.id = g.community_id LEFT JOIN towns t ON t.id = c.town_id "
        "LEFT JOIN warned w ON w.person_key = l.person_key LEFT JOIN tasked k ON k.person_key = l.person_key "
        "ORDER BY CASE p.colour WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 WHEN 'blue' THEN 2 ELSE 3 END, "
        "  g.code NULLS LAST, p.person_key"), conn)


# -- the import history and withdrawals (migration 0011; matching.withdrawal) -------------------------
HISTORY_COLUMNS = ("f.id, f.source, f.file_name, f.sha256, f.rows_read, f.rows_stored, f.rows_rejected, "
                   "f.rows_warned, f.default_crs, f.imported_at, f.imported_by, f.job_id, f.import_ms, "
                   "f.withdrawn_at, f.withdrawn_by, f.withdraw_reason")


def audit_feed(conn: Connection, username: str | None, action: str, feed_id: int, reason: str,
               client: str | None) -> None:
    """One audit line (``feed.import``, ``feed.withdraw``) about the feed file ``feed_id``, in the name of the user
    ``username`` (his account when there is one: a job knows who asked for it by name only)."""
    from accounts.actor import ADMIN, Actor
    from accounts.repository import record_read

    user_id = None if not username else conn.execute(
        text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one_or_none()
    record_read(conn, Actor(user_id, username or "system", ADMIN), action, f"feed_file:{feed_id}", reason, client)


def feed_history(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` imports, newest first, withdrawn ones included: who, when, which file, its balance,
    how long it took (``import_ms``; ``job_seconds``: its whole job, match included, once done) and whether a
    withdrawal of it is waiting or running (``withdraw_job_id``)."""
    rows = conn.execute(text(
        f"SELECT {HISTORY_COLUMNS}, "
        "  CASE WHEN j.state = 'succeeded' THEN extract(epoch FROM j.finished_at - j.started_at) END AS job_seconds, "
        "  (SELECT max(w.job_id) FROM job_progress w WHERE w.kind = 'feed_withdraw' "
        "     AND w.state IN ('queued', 'running') AND w.params->>'feed_file_id' = f.id::text) AS withdraw_job_id "
        "FROM feed_files f LEFT JOIN job_progress j ON j.job_id = f.job_id "
        "ORDER BY f.imported_at DESC, f.id DESC LIMIT :limit"), {"limit": limit}).mappings().all()
    return [dict(row) | {"job_seconds": None if row["job_seconds"] is None else float(row["job_seconds"])}
            for row in rows]


def feed_file(conn: Connection, feed_id: int, lock: bool = False) -> dict[str, Any] | None:
    """One import of the history (locked for the rest of the transaction with ``lock``), or None."""
    row = conn.execute(text(f"SELECT {HISTORY_COLUMNS} FROM feed_files f WHERE f.id = :f"
                            + (" FOR UPDATE" if lock else "")), {"f": feed_id}).mappings().first()
    return dict(row) if row else None


def feed_of_job(conn: Connection, job_id: int) -> int | None:
    """The import that the background job ``job_id`` stored, if it stored one (not when the file was there)."""
    found = conn.execute(text("SELECT id FROM feed_files WHERE job_id = :j ORDER BY id DESC LIMIT 1"),
                         {"j": job_id}).scalar_one_or_none()
    return None if found is None else int(found)


def feed_rejections(conn: Connection, feed_id: int) -> list[tuple[int, str]]:
    """A feed file's rejected rows: (row number as the department sees it, reasons joined by "；"), in order."""
    return [(row, reasons) for row, reasons in conn.execute(text(
        "SELECT row_number, reasons FROM feed_rejections WHERE feed_file_id = :f ORDER BY row_number"),
        {"f": feed_id}).all()]


def feed_field_warnings(conn: Connection, feed_id: int) -> list[tuple[int, str, str]]:
    """A feed file's field warnings: (row number as the department sees it, field, reason), in row order. Each is
    a field of a stored row that was ignored (stored as missing)."""
    return [(row, name, reason) for row, name, reason in conn.execute(text(
        "SELECT row_number, field, reason FROM feed_field_warnings WHERE feed_file_id = :f "
        "ORDER BY row_number, field"), {"f": feed_id}).all()]


def feed_sources(conn: Connection) -> list[str]:
    """The departments that have sent files, by name."""
    return list(conn.execute(text("SELECT DISTINCT source FROM feed_files ORDER BY source")).scalars())


def mark_withdrawn(conn: Connection, feed_id: int, by: str, reason: str) -> None:
    """Mark a feed file withdrawn: from now on the matcher leaves its records out (:func:`load_records`)."""
    conn.execute(text("UPDATE feed_files SET withdrawn_at = now(), withdrawn_by = :b, withdraw_reason = :r "
                      "WHERE id = :f"), {"f": feed_id, "b": by, "r": reason})


def feed_records_left(conn: Connection, feed_id: int) -> int:
    return int(conn.execute(text("SELECT count(*) FROM source_records WHERE feed_file_id = :f"),
                            {"f": feed_id}).scalar_one())


def tasks_left_unjustified(conn: Connection, feed_id: int, open_statuses: Iterable[str]) -> list[tuple[int, int]]:
    """(id, version), locked, of the open matcher tasks of persons who have a record in ``feed_id`` and who are
    no longer red or yellow (or no longer there at all) after a match that left that file out."""
    return [(task_id, version) for task_id, version in conn.execute(text(
        "SELECT t.id, t.version FROM tasks t LEFT JOIN persons p ON p.person_key = t.person_key "
        "WHERE t.source = 'matcher' AND t.status = ANY(:open) "
        "  AND t.person_key IN (SELECT person_key FROM source_records WHERE feed_file_id = :f) "
        "  AND (p.person_key IS NULL OR p.colour NOT IN ('red', 'yellow')) "
        "ORDER BY t.id FOR UPDATE OF t"), {"f": feed_id, "open": list(open_statuses)}).all()]


def drop_unjustified_requests(conn: Connection, feed_id: int) -> int:
    """Mark ``withdrawn`` the pending task requests of persons who have a record in ``feed_id`` and are no longer
    red or yellow: no task is made of them. Returns how many."""
    return conn.execute(text(
        "UPDATE task_requests r SET status = 'withdrawn' WHERE r.status = 'pending' "
        "AND r.person_key IN (SELECT person_key FROM source_records WHERE feed_file_id = :f) "
        "AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_key = r.person_key "
        "                AND p.colour IN ('red', 'yellow'))"), {"f": feed_id}).rowcount


def remove_feed_records(conn: Connection, feed_id: int) -> int:
    """Delete a feed file's source records (its row, balance and rejections stay); returns how many."""
    return conn.execute(text("DELETE FROM source_records WHERE feed_file_id = :f"), {"f": feed_id}).rowcount
