"""Database access for retention (:mod:`matching.retention`): who is past it, and removing what names them.

Everything runs in the caller's one transaction, set-based: the people past retention are gathered once into a
temporary table, and each personal table is then cleared of them with one statement. Each statement repeats
the condition that made the person purgeable in the table it touches (a record older than the cutoff, a task
finished, a manual code expired…), so that a row written meanwhile by an import or a worker — a newer record, a
new task — is never removed with the rest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from matching.repository import lock_match
from tasks.lifecycle import FINAL, OPEN

SCAN_TOMBSTONE = "purged"  # a scan's person once he is purged (the column is required; no real key looks like it)
PURGED_TITLE = "（已清除 / purged）"
# A task the system made names its kind of work before "：" and the person after it ("红码人员转运：李*伟",
# "卡口预警：红码人员经过…"); another (a supervisor's) is free text, of which only the kind code is kept.
TOMBSTONE_TITLE = ("CASE WHEN t.source IN ('matcher', 'checkpoint', 'follow_up') THEN split_part(t.title, '：', 1) "
                   "ELSE t.kind END || :purged_title")

# Every person key the platform holds, with the moments that keep him (his codes' ends, his records, scans and
# tasks) and whether something still open holds him whatever the dates say (an open task, a pending task request
# or appeal). A code's end: a risk code (red, yellow, blue) of his current row, or of his code history, ends
# at its expiry or at the next change of his code, whichever comes first; a manual code (any colour) at its
# expiry. A code with no expiry never ends. The tombstones of earlier purges are nobody.
SEEN = """
SELECT person_key, max(seen) AS seen, bool_or(held) AS held FROM (
    SELECT person_key, CASE WHEN colour <> 'green' THEN coalesce(expires_at, 'infinity') END AS seen,
           false AS held FROM persons
    UNION ALL
    SELECT person_key, CASE WHEN colour <> 'green' THEN coalesce(least(expires_at, next_change), 'infinity') END,
           false
    FROM (SELECT person_key, colour, expires_at,
                 lead(changed_at) OVER (PARTITION BY person_key ORDER BY changed_at, id) AS next_change
          FROM risk_code_history) h
    UNION ALL
    SELECT person_key, expires_at, false FROM risk_overrides
    UNION ALL
    SELECT r.person_key, max(coalesce(r.reported_at, f.imported_at)), false
    FROM source_records r JOIN feed_files f ON f.id = r.feed_file_id GROUP BY r.person_key
    UNION ALL
    SELECT person_key, max(scanned_at), false FROM scans WHERE person_key <> :tombstone GROUP BY person_key
    UNION ALL
    SELECT person_key, greatest(created_at, dispatched_at, handled_at, closed_at, cancelled_at), status = ANY(:open)
    FROM tasks WHERE person_key IS NOT NULL
    UNION ALL
    SELECT person_key, requested_at, status = 'pending' FROM task_requests
    UNION ALL
    SELECT person_key, greatest(requested_at, decided_at), status = 'pending' FROM code_appeals
    UNION ALL
    SELECT person_key, coalesce(closed_at, ends_at), status = 'active' FROM observation_plans
) moments GROUP BY person_key
"""

_EITHER_RECORD = ("((x.record_feed_file_id = r.feed_file_id AND x.record_row_number = r.row_number) OR "
                  "(x.other_feed_file_id = r.feed_file_id AND x.other_row_number = r.row_number))")
# (table, what is done to it, statement) in order: what points at a row goes before the row. ``retention_people``
# holds the people past retention; :cutoff is the moment before which their data has expired.
REMOVALS = (
    ("task_photos", "removed",
     "DELETE FROM task_photos ph USING tasks t, retention_people p "
     "WHERE ph.task_id = t.id AND t.person_key = p.person_key AND t.status = ANY(:final)"),
    # the task stays (its events count, in their grid, at their time); whom it was for, and where he was, go
    ("tasks", "tombstoned",
     f"UPDATE tasks t SET person_key = NULL, title = {TOMBSTONE_TITLE}, detail = NULL, geom = NULL "
     "FROM retention_people p WHERE t.person_key = p.person_key AND t.status = ANY(:final)"),
    ("scans", "tombstoned",
     "UPDATE scans s SET person_key = :tombstone FROM retention_people p "
     "WHERE s.person_key = p.person_key AND s.scanned_at < :cutoff"),
    ("task_requests", "removed",
     "DELETE FROM task_requests r USING retention_people p WHERE r.person_key = p.person_key "
     "AND r.status <> 'pending'"),
    ("code_appeals", "removed",
     "DELETE FROM code_appeals a USING retention_people p WHERE a.person_key = p.person_key "
     "AND a.status <> 'pending'"),
    ("risk_overrides", "removed",
     "DELETE FROM risk_overrides o USING retention_people p WHERE o.person_key = p.person_key "
     "AND o.expires_at < :cutoff"),
    ("risk_code_history", "removed",
     "DELETE FROM risk_code_history h USING retention_people p WHERE h.person_key = p.person_key"),
    ("flags", "removed", "DELETE FROM flags f USING retention_people p WHERE f.person_key = p.person_key"),
    ("rule_holds", "removed",
     "DELETE FROM rule_holds h USING retention_people p WHERE h.person_key = p.person_key"),
    # a home-observation plan that has ended, with its checks and events (by cascade); an active one holds him
    ("observation_plans", "removed",
     "DELETE FROM observation_plans o USING retention_people p WHERE o.person_key = p.person_key "
     "AND o.status = 'closed'"),
    ("persons", "removed", "DELETE FROM persons x USING retention_people p WHERE x.person_key = p.person_key"),
    # the records' links, review pairs and reviewers' decisions (migration 0017: no foreign key brings them along)
    *((table, "removed",
       f"DELETE FROM {table} x USING source_records r, feed_files f, retention_people p "
       f"WHERE {match} AND f.id = r.feed_file_id AND r.person_key = p.person_key "
       "AND coalesce(r.reported_at, f.imported_at) < :cutoff")
      for table, match in (
          ("record_links", "x.feed_file_id = r.feed_file_id AND x.row_number = r.row_number"),
          ("linkage_decisions", _EITHER_RECORD), ("linkage_pairs", _EITHER_RECORD))),
    # the records' phone keys first (a trigger would remove them with the records, uncounted)
    ("source_record_phones", "removed",
     "DELETE FROM source_record_phones ph USING source_records r, feed_files f, retention_people p "
     "WHERE ph.feed_file_id = r.feed_file_id AND ph.row_number = r.row_number AND f.id = r.feed_file_id "
     "AND r.person_key = p.person_key AND coalesce(r.reported_at, f.imported_at) < :cutoff"),
    ("source_records", "removed",
     "DELETE FROM source_records r USING feed_files f, retention_people p "
     "WHERE f.id = r.feed_file_id AND r.person_key = p.person_key "
     "AND coalesce(r.reported_at, f.imported_at) < :cutoff"),
    # a tip-off's contact (its reporter's phone or name) once the lead is dealt with and its last report is old
    ("lead_reports", "cleared",
     "UPDATE lead_reports r SET contact_sealed = NULL, contact_masked = NULL FROM leads l "
     "WHERE l.id = r.lead_id AND l.status <> 'open' AND l.last_reported_at < :cutoff "
     "AND (r.contact_sealed IS NOT NULL OR r.contact_masked IS NOT NULL) "
     "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.lead_id = l.id AND t.status = ANY(:open))"),
)


def gather_people(conn: Connection, cutoff: datetime) -> int:
    """Gather into ``retention_people`` (dropped at commit) everyone past retention at ``cutoff``: every moment
    that keeps him is before it, and nothing open holds him. Takes the match's lock first, so that no match run
    writes persons, history or flags while they are purged. Returns how many."""
    lock_match(conn)
    conn.execute(text(f"CREATE TEMP TABLE retention_people ON COMMIT DROP AS SELECT person_key FROM ({SEEN}) s "
                      "WHERE s.seen < :cutoff AND NOT s.held"),
                 {"cutoff": cutoff, "tombstone": SCAN_TOMBSTONE, "open": list(OPEN)})
    conn.execute(text("ALTER TABLE retention_people ADD PRIMARY KEY (person_key)"))
    conn.execute(text("ANALYZE retention_people"))
    return int(conn.execute(text("SELECT count(*) FROM retention_people")).scalar_one())


def remove_people(conn: Connection, cutoff: datetime) -> dict[str, dict[str, int]]:
    """Remove, tombstone or clear what names the gathered people (and old tip-off contacts); the rows touched,
    by what was done (``removed``, ``tombstoned``, ``cleared``) and table, in the order done."""
    params = {"cutoff": cutoff, "tombstone": SCAN_TOMBSTONE, "final": list(FINAL), "open": list(OPEN),
              "purged_title": PURGED_TITLE}
    done: dict[str, dict[str, int]] = {"removed": {}, "tombstoned": {}, "cleared": {}}
    for table, how, statement in REMOVALS:
        done[how][table] = conn.execute(text(statement), params).rowcount
    return done
