"""Database access of record linkage as the matcher uses it: the decisions it obeys, the trained weights it reuses,
and what each match stores — every unidentified record's link, the review queue, and the records' person keys.

The review queue as reviewers see and decide it is :mod:`matching.review_repository`. Records are named by their
``record_id``, ``feed_file_id << 32 | row_number`` (:func:`record_ids`), in memory only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from grids.repository import copy_frame

RETRAIN_GROWTH = 0.25  # the weights are trained again once the records have grown or shrunk by a quarter
RETRAIN_DAYS = 7  # and at least weekly, as the lists change in kind


def record_ids(feed_file_ids: np.ndarray, row_numbers: np.ndarray) -> np.ndarray:
    """One int64 per record, ordered as (feed file, row): smaller is stored earlier."""
    return (np.asarray(feed_file_ids, dtype=np.int64) << 32) | np.asarray(row_numbers, dtype=np.int64)


def record_parts(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (feed_file_id, row_number) of :func:`record_ids`."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> 32, ids & 0xFFFFFFFF


def load_decisions(conn: Connection, as_of: datetime | None = None) -> pd.DataFrame:
    """The newest reviewer's decision on each pair of records (made by ``as_of``, when given): record_id,
    other_record_id, decision."""
    rows = pd.read_sql(text(
        "SELECT DISTINCT ON (record_feed_file_id, record_row_number, other_feed_file_id, other_row_number) "
        "  record_feed_file_id, record_row_number, other_feed_file_id, other_row_number, decision "
        "FROM linkage_decisions WHERE CAST(:at AS timestamptz) IS NULL OR decided_at <= :at "
        "ORDER BY record_feed_file_id, record_row_number, other_feed_file_id, "
        "  other_row_number, decided_at DESC, id DESC"), conn, params={"at": as_of})
    return pd.DataFrame({
        "record_id": record_ids(rows["record_feed_file_id"], rows["record_row_number"]),
        "other_record_id": record_ids(rows["other_feed_file_id"], rows["other_row_number"]),
        "decision": rows["decision"].astype(object)})


def current_model(conn: Connection, records: int, now: datetime) -> dict[str, Any] | None:
    """The newest trained weights, unless the records have changed in number by :data:`RETRAIN_GROWTH` since, or
    they are older than :data:`RETRAIN_DAYS`: then None, and the match trains afresh."""
    row = conn.execute(text("SELECT records, settings, trained_at FROM linkage_models ORDER BY id DESC LIMIT 1")
                       ).one_or_none()
    if row is None:
        return None
    if abs(records - row.records) > RETRAIN_GROWTH * max(row.records, 1):
        return None
    if (now - row.trained_at).total_seconds() > RETRAIN_DAYS * 86400:
        return None
    return dict(row.settings)


def store_model(conn: Connection, settings: dict[str, Any], records: int) -> None:
    """Keep newly trained weights (Splink's settings) for the next matches."""
    conn.execute(text("INSERT INTO linkage_models (records, settings) VALUES (:n, CAST(:s AS jsonb))"),
                 {"n": records, "s": json.dumps(settings)})


def store_links(conn: Connection, links: pd.DataFrame, pairs: pd.DataFrame, now: datetime) -> None:
    """Write one match's linkage: ``links`` (record_id, person_key, band, score, agreeing) replaces every record's
    link and sets the records' person keys; ``pairs`` (record_id, other_record_id, other_person_key, score, agreeing,
    disagreeing) become the open review queue — a pair already there keeps its id (and its decision, if decided),
    an open pair no longer proposed is marked gone."""
    feeds, rows = record_parts(links["record_id"].to_numpy())
    conn.execute(text("TRUNCATE record_links"))
    copy_frame(conn, "record_links", pd.DataFrame({
        "feed_file_id": feeds, "row_number": rows, "person_key": links["person_key"].to_numpy(dtype=object),
        "band": links["band"].to_numpy(dtype=object), "score": links["score"].to_numpy(dtype=float),
        "agreeing": links["agreeing"].fillna("").to_numpy(dtype=object), "linked_at": now}))
    # the records' person keys, where the link moved them (source_records is keyed by its primary key)
    conn.execute(text("UPDATE source_records r SET person_key = l.person_key FROM record_links l "
                      "WHERE r.feed_file_id = l.feed_file_id AND r.row_number = l.row_number "
                      "AND r.person_key IS DISTINCT FROM l.person_key"))
    # a provisional person's code history follows his record to the person it is linked to now (an ID number
    # that linked him, a cluster, the split-off record's new cluster)
    conn.execute(text("UPDATE risk_code_history h SET person_key = l.person_key FROM record_links l "
                      "WHERE h.person_key LIKE '~%' "
                      "AND h.person_key = '~' || l.feed_file_id || '-' || l.row_number "
                      "AND l.person_key <> h.person_key"))
    conn.execute(text("CREATE TEMP TABLE proposed_pairs (LIKE linkage_pairs INCLUDING DEFAULTS) ON COMMIT DROP"))
    record_feed, record_row = record_parts(pairs["record_id"].to_numpy())
    other_feed, other_row = record_parts(pairs["other_record_id"].to_numpy())
    copy_frame(conn, "proposed_pairs", pd.DataFrame({
        "id": np.arange(len(pairs), dtype=np.int64), "record_feed_file_id": record_feed,
        "record_row_number": record_row, "other_feed_file_id": other_feed, "other_row_number": other_row,
        "other_person_key": pairs["other_person_key"].to_numpy(dtype=object),
        "score": pairs["score"].to_numpy(dtype=float), "agreeing": pairs["agreeing"].fillna("").to_numpy(dtype=object),
        "disagreeing": pairs["disagreeing"].fillna("").to_numpy(dtype=object), "status": "open",
        "created_at": now, "updated_at": now}))
    conn.execute(text(
        "INSERT INTO linkage_pairs (record_feed_file_id, record_row_number, other_feed_file_id, other_row_number, "
        "  other_person_key, score, agreeing, disagreeing, status, created_at, updated_at) "
        "SELECT record_feed_file_id, record_row_number, other_feed_file_id, other_row_number, other_person_key, "
        "  score, agreeing, disagreeing, 'open', created_at, updated_at FROM proposed_pairs "
        "ON CONFLICT ON CONSTRAINT linkage_pairs_records_unique DO UPDATE SET "
        "  other_person_key = excluded.other_person_key, score = excluded.score, agreeing = excluded.agreeing, "
        "  disagreeing = excluded.disagreeing, updated_at = excluded.updated_at, "
        "  status = CASE WHEN linkage_pairs.status = 'decided' THEN 'decided' ELSE 'open' END"))
    conn.execute(text(
        "UPDATE linkage_pairs p SET status = 'gone', updated_at = :now WHERE p.status = 'open' AND NOT EXISTS ("
        "  SELECT 1 FROM proposed_pairs n WHERE n.record_feed_file_id = p.record_feed_file_id "
        "  AND n.record_row_number = p.record_row_number AND n.other_feed_file_id = p.other_feed_file_id "
        "  AND n.other_row_number = p.other_row_number)"), {"now": now})


def clear_links(conn: Connection, now: datetime) -> None:
    """No unidentified record left (all withdrawn or purged): no link, and no open pair."""
    conn.execute(text("TRUNCATE record_links"))
    conn.execute(text("UPDATE linkage_pairs SET status = 'gone', updated_at = :now WHERE status = 'open'"),
                 {"now": now})
