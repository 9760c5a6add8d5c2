"""The review queue of record linkage, in the actor's data scope: the uncertain pairs a person decides, and the
links he splits again.

The matcher (:mod:`matching.linkage`) puts a pair of records whose score lies between its two thresholds into
``linkage_pairs``: an unidentified record (stored without an ID number) and a candidate's record. Here:

- :func:`open_pairs` lists the open pairs, highest score first, each side masked. A supervisor sees a pair when
  either side's person lies in his community (a pair across two communities goes to both supervisors); a
  commander and an administrator see all (a commander of one town, his town's); nobody else any.
- :func:`decide_pair` stores "same person" or "different people" in ``linkage_decisions`` (append-only; the
  newest decision on a pair of records holds at every later match), marks the pair decided and writes the audit
  line ``linkage.decide``.
- :func:`linked_records` lists the unidentified records linked to an identified person, and :func:`split_record`
  undoes such a link: a ``different`` decision (kind ``split``) between the record and the person's records it
  was linked through, his code history since the record arrived copied to the record's own provisional key (the
  split-off person's key at the next match), the audit line ``linkage.split``.

A decision takes effect at the next match: the caller queues one (:func:`jobs.queue.enqueue_rematch`) once its
transaction is committed, as for a code override. Nothing here reads or writes a field in clear.

>>> fields("phone, name,,birth")
['phone', 'name', 'birth']
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text

from accounts.actor import ADMIN, COMMANDER, SUPERVISOR, Actor
from accounts.repository import record_read
from gis.errors import Conflict, InvalidRequest, NotFound
from matching.identity import provisional_key

REVIEWERS = (SUPERVISOR, COMMANDER, ADMIN)
DECISIONS = ("same", "different")
LINKED_BANDS = ("auto", "decided")  # linked to a person by the matcher, or by a reviewer's "same"
PAGE_SIZE = 20
MOST_REASON = 500
SPLIT_MARK = "（拆分前 / before the split）"

# one record as both lists show it: masked identity, where it came from; prefixed per side
_SIDE = ("{p}.feed_file_id AS {p}_file_id, {p}.row_number AS {p}_row, {p}.id_masked AS {p}_id_masked, "
         "{p}.name_masked AS {p}_name_masked, {p}.phone_masked AS {p}_phone_masked, {p}.source AS {p}_source, "
         "{p}.category AS {p}_category, {p}.reported_at AS {p}_reported_at, {p}.identified AS {p}_identified, "
         "{f}.file_name AS {p}_file_name")
# The open pairs of a scope: either side's person in it (a pair across two communities is each community's). Each
# side's grid is a scalar subquery, looked up by key for each open pair: the planner would otherwise hash all the
# persons of the district to find the grids of a few thousand pairs. The records themselves are joined after the
# page is cut (below): counting and ordering touch no source record.
PAIRS_IN_SCOPE = """
FROM (SELECT lp.*,
             (SELECT p.grid_id FROM record_links rl JOIN persons p ON p.person_key = rl.person_key
              WHERE rl.feed_file_id = lp.record_feed_file_id AND rl.row_number = lp.record_row_number) AS r_grid_id,
             (SELECT p.grid_id FROM persons p WHERE p.person_key = lp.other_person_key) AS o_grid_id
      FROM linkage_pairs lp WHERE lp.status = 'open') lp
WHERE CAST(:scope AS int[]) IS NULL OR lp.r_grid_id = ANY(:scope) OR lp.o_grid_id = ANY(:scope)
"""
PAIR_PAGE = (f"SELECT lp.id, lp.score, lp.agreeing, lp.disagreeing, {_SIDE.format(p='r', f='fr')}, "
             f"{_SIDE.format(p='o', f='fo')}, gr.code AS r_grid_code, go.code AS o_grid_code "
             "FROM (SELECT lp.* " + PAIRS_IN_SCOPE + "ORDER BY lp.score DESC, lp.id LIMIT :n OFFSET :o) lp "
             # a record gone (its import withdrawn) leaves its pair off the page: the withdrawal's match marks it gone
             "JOIN source_records r ON r.feed_file_id = lp.record_feed_file_id AND r.row_number = lp.record_row_number "
             "JOIN source_records o ON o.feed_file_id = lp.other_feed_file_id AND o.row_number = lp.other_row_number "
             "JOIN feed_files fr ON fr.id = r.feed_file_id JOIN feed_files fo ON fo.id = o.feed_file_id "
             "LEFT JOIN grids gr ON gr.id = lp.r_grid_id LEFT JOIN grids go ON go.id = lp.o_grid_id "
             "ORDER BY lp.score DESC, lp.id")
# The unidentified records linked to an identified person of the scope. The person is looked up by key for each
# link (LIMIT 1 keeps the planner from hashing every person of the district instead).
LINKS_IN_SCOPE = """
FROM record_links rl
CROSS JOIN LATERAL (SELECT p.* FROM persons p WHERE p.person_key = rl.person_key AND NOT p.provisional LIMIT 1) p
WHERE rl.band IN ('auto', 'decided') AND (CAST(:scope AS int[]) IS NULL OR p.grid_id = ANY(:scope))
"""
# split since the last match wrote the link: the re-match that applies it has not run yet
SPLIT_WAITING = ("EXISTS (SELECT 1 FROM linkage_decisions d WHERE d.record_feed_file_id = rl.feed_file_id "
                 "AND d.record_row_number = rl.row_number AND d.kind = 'split' AND d.decided_at > rl.linked_at)")
LINK_ORDER = "rl.score NULLS FIRST, rl.feed_file_id, rl.row_number"
LINK_PAGE = (f"SELECT rl.band, rl.score, rl.agreeing, rl.linked_at, {_SIDE.format(p='r', f='fr')}, "
             "rl.person_key, rl.p_id_masked, rl.p_name_masked, rl.p_phone_masked, rl.p_colour, "
             f"g.code AS p_grid_code, {SPLIT_WAITING} AS split_waiting "
             "FROM (SELECT rl.*, p.id_masked AS p_id_masked, p.name_masked AS p_name_masked, "
             "p.phone_masked AS p_phone_masked, p.colour AS p_colour, p.grid_id AS p_grid_id " + LINKS_IN_SCOPE +
             f"ORDER BY {LINK_ORDER} LIMIT :n OFFSET :o) rl "
             "JOIN source_records r ON r.feed_file_id = rl.feed_file_id AND r.row_number = rl.row_number "
             "JOIN feed_files fr ON fr.id = r.feed_file_id LEFT JOIN grids g ON g.id = rl.p_grid_id "
             f"ORDER BY {LINK_ORDER}")


def fields(listed: str | None) -> list[str]:
    """The field names of a comma-separated list as the matcher stores them (``phone,name``), empty ones left out."""
    return [name.strip() for name in (listed or "").split(",") if name.strip()]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _side(row: Row[Any], prefix: str) -> dict[str, Any]:
    """One record of a row, masked: ``id_masked`` is '' for a record stored without an ID number."""
    def get(name: str) -> Any:
        return getattr(row, f"{prefix}_{name}")

    return {"feed_file_id": get("file_id"), "row_number": get("row"), "id_masked": get("id_masked") or "",
            "name_masked": get("name_masked"), "phone_masked": get("phone_masked"), "source": get("source"),
            "file_name": get("file_name"), "category": get("category"), "reported_at": _iso(get("reported_at")),
            "identified": bool(get("identified"))}


def _pair_view(row: Row[Any]) -> dict[str, Any]:
    return {"id": row.id, "score": row.score, "agreeing": fields(row.agreeing),
            "disagreeing": fields(row.disagreeing), "record": {**_side(row, "r"), "grid_code": row.r_grid_code},
            "other": {**_side(row, "o"), "grid_code": row.o_grid_code}}


def _scope(actor: Actor) -> list[int] | None:
    actor.require_role(*REVIEWERS)
    return actor.grid_scope()


def _page(page: int, page_size: int) -> tuple[int, int]:
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise InvalidRequest("页码须为正整数 / the page must be a whole number from 1", "page")
    if not 1 <= page_size <= 200:
        raise InvalidRequest("每页条数须在 1 至 200 之间 / a page holds 1 to 200 rows", "page_size")
    return page_size, (page - 1) * page_size


def open_pairs(conn: Connection, actor: Actor, page: int = 1,
               page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int]:
    """The open pairs in the actor's scope, highest score first, a page of them, and how many there are in all.

    Each pair: ``id``, ``score`` (0..1), ``agreeing`` and ``disagreeing`` field names, and its two records
    (``record``: the unidentified one; ``other``: the candidate's), masked, with source, file, row, category,
    reported time and the grid of each one's person. A pair whose record is gone (its import withdrawn) is left
    off its page (the withdrawal's own match marks it gone).
    """
    scope = _scope(actor)
    limit, offset = _page(page, page_size)
    params = {"scope": scope, "n": limit, "o": offset}
    total = int(conn.execute(text("SELECT count(*) " + PAIRS_IN_SCOPE), params).scalar_one())
    rows = conn.execute(text(PAIR_PAGE), params)
    return [_pair_view(r) for r in rows], total


def _reason(reason: object, required: bool) -> str:
    cleaned = reason.strip()[:MOST_REASON] if isinstance(reason, str) else ""
    if required and len(cleaned) < 2:
        raise InvalidRequest("请说明理由 / a reason is required", "reason")
    return cleaned


def decide_pair(conn: Connection, actor: Actor, pair_id: int, decision: str, reason: str | None = None,
                client: str | None = None) -> dict[str, Any]:
    """Decide an open pair in scope: ``same`` (the record is the candidate's person) or ``different`` (never
    link them), with an optional reason; audited. Returns the decision stored.

    A pair that does not exist or lies outside the scope is NotFound, in the same words; one already decided,
    or no longer a candidate (gone), a Conflict. The pair's row is locked, so two reviewers cannot both decide it.
    """
    actor.require_role(*REVIEWERS)
    if decision not in DECISIONS:
        raise InvalidRequest(f"未知决定 {decision} / unknown decision: same or different", "decision")
    why = _reason(reason, required=False)
    row = conn.execute(text(
        "SELECT lp.id, lp.status, lp.record_feed_file_id, lp.record_row_number, lp.other_feed_file_id, "
        "lp.other_row_number, coalesce(rl.person_key, r.person_key) AS person_key, pr.grid_id AS r_grid_id, "
        "po.grid_id AS o_grid_id, r.feed_file_id IS NOT NULL AND o.feed_file_id IS NOT NULL AS records_kept "
        "FROM linkage_pairs lp "
        "LEFT JOIN source_records r ON r.feed_file_id = lp.record_feed_file_id AND r.row_number = lp.record_row_number "
        "LEFT JOIN source_records o ON o.feed_file_id = lp.other_feed_file_id AND o.row_number = lp.other_row_number "
        "LEFT JOIN record_links rl ON rl.feed_file_id = lp.record_feed_file_id "
        "AND rl.row_number = lp.record_row_number "
        "LEFT JOIN persons pr ON pr.person_key = rl.person_key "
        "LEFT JOIN persons po ON po.person_key = lp.other_person_key "
        "WHERE lp.id = :id FOR UPDATE OF lp"), {"id": pair_id}).one_or_none()
    if row is None or not (actor.sees_grid(row.r_grid_id) or actor.sees_grid(row.o_grid_id)):
        raise NotFound(f"待审记录对 #{pair_id} 不存在或不在您的范围内 / no pair #{pair_id} to review in your scope")
    if row.status == "decided":
        raise Conflict(f"记录对 #{pair_id} 已有审核结论 / pair #{pair_id} was already decided", code="pair_decided")
    if row.status != "open" or not row.records_kept:
        raise Conflict(f"记录对 #{pair_id} 已失效（最近一次研判后不再是候选）/ pair #{pair_id} is gone: the last match "
                       "no longer found it a candidate", code="pair_gone")
    decision_id = int(conn.execute(text(
        "INSERT INTO linkage_decisions (record_feed_file_id, record_row_number, other_feed_file_id, "
        "other_row_number, decision, kind, pair_id, person_key, decided_by, reason) "
        "VALUES (:rf, :rr, :of, :orow, :d, 'review', :id, :k, :by, :why) RETURNING id"),
        {"rf": row.record_feed_file_id, "rr": row.record_row_number, "of": row.other_feed_file_id,
         "orow": row.other_row_number, "d": decision, "id": pair_id, "k": row.person_key, "by": actor.username,
         "why": why}).scalar_one())
    conn.execute(text("UPDATE linkage_pairs SET status = 'decided', updated_at = now() WHERE id = :id"),
                 {"id": pair_id})
    said = "同一人 / same person" if decision == "same" else "不同的人 / different people"
    record_read(conn, actor, "linkage.decide", f"linkage_pair:{pair_id}",
                f"#{pair_id} {row.record_feed_file_id}-{row.record_row_number} ↔ {row.other_feed_file_id}-"
                f"{row.other_row_number}：{said}" + (f"：{why}" if why else ""), client)
    return {"id": decision_id, "pair_id": pair_id, "decision": decision, "person_key": row.person_key,
            "decided_by": actor.username, "reason": why}


def _link_view(row: Row[Any]) -> dict[str, Any]:
    return {"band": row.band, "score": row.score, "agreeing": fields(row.agreeing), "linked_at": _iso(row.linked_at),
            "record": _side(row, "r"), "split_waiting": bool(row.split_waiting),
            "person": {"person_key": row.person_key, "id_masked": row.p_id_masked, "name_masked": row.p_name_masked,
                       "phone_masked": row.p_phone_masked, "colour": row.p_colour, "grid_code": row.p_grid_code}}


def linked_records(conn: Connection, actor: Actor, page: int = 1,
                   page_size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], bool]:
    """The unidentified records linked to an identified person in the actor's scope (automatically, or by a
    reviewer's "same"), weakest link first, a page of them, and whether more pages follow; each with the record
    and the person masked, the band, score and agreeing fields, and whether a split of it waits for the re-match.

    Not counted: a count looks up the person of every link in the district (a fifth of a million records: about
    0.4 s), a page only as many as it takes to fill it.
    """
    scope = _scope(actor)
    limit, offset = _page(page, page_size)
    rows = conn.execute(text(LINK_PAGE), {"scope": scope, "n": limit + 1, "o": offset}).all()
    return [_link_view(r) for r in rows[:limit]], len(rows) > limit


def _linked_through(conn: Connection, feed_file_id: int, row_number: int, person_key: str,
                    person_record: tuple[int | None, int | None]) -> list[tuple[int, int]]:
    """The person's records a split must name: those a reviewer's newest decision said the record is the same
    as (else that "same" would still hold), and the record his masked fields come from when it is identified —
    else any identified record of his (a scan: records are not indexed by person, and a split is rare)."""
    same = [(r.other_feed_file_id, r.other_row_number) for r in conn.execute(text(
        "SELECT n.other_feed_file_id, n.other_row_number FROM (SELECT DISTINCT ON (d.other_feed_file_id, "
        "d.other_row_number) d.other_feed_file_id, d.other_row_number, d.decision FROM linkage_decisions d "
        "WHERE d.record_feed_file_id = :f AND d.record_row_number = :r "
        "ORDER BY d.other_feed_file_id, d.other_row_number, d.decided_at DESC, d.id DESC) n "
        "JOIN source_records o ON o.feed_file_id = n.other_feed_file_id AND o.row_number = n.other_row_number "
        "WHERE n.decision = 'same' AND o.person_key = :k ORDER BY 1, 2"),
        {"f": feed_file_id, "r": row_number, "k": person_key})]
    his = conn.execute(text(
        "SELECT feed_file_id, row_number FROM source_records WHERE feed_file_id = :f AND row_number = :r "
        "AND identified AND person_key = :k"),
        {"f": person_record[0], "r": person_record[1], "k": person_key}).one_or_none() \
        if None not in person_record else None
    if his is None:
        his = conn.execute(text(
            "SELECT feed_file_id, row_number FROM source_records WHERE person_key = :k AND identified "
            "ORDER BY reported_at DESC NULLS LAST, feed_file_id DESC, row_number DESC LIMIT 1"),
            {"k": person_key}).one_or_none()
    through = same + ([(his.feed_file_id, his.row_number)] if his is not None else [])
    return list(dict.fromkeys(through))


def split_record(conn: Connection, actor: Actor, feed_file_id: int, row_number: int, reason: str,
                 client: str | None = None) -> dict[str, Any]:
    """Split an unidentified record off the identified person it is linked to (his grid in scope), with a
    reason; audited. Returns the person's key and masked name, the record's own key, the records named and the
    history rows copied.

    Stores a ``different`` decision (kind ``split``) between the record and each record of the person it was
    linked through (:func:`_linked_through`), and copies the person's code history — the line in force when the
    record was imported, and every later one — to the record's provisional key, each reason marked
    :data:`SPLIT_MARK`: the split-off person keeps the codes he carried while linked. Refused while a split of
    the record waits for the re-match.
    """
    actor.require_role(*REVIEWERS)
    why = _reason(reason, required=True)
    row = conn.execute(text(
        "SELECT rl.band, rl.person_key, rl.linked_at, p.name_masked, p.grid_id, p.provisional, p.record_feed_file_id, "
        "p.record_row_number, r.identified, fr.imported_at, " + SPLIT_WAITING + " AS split_waiting "
        "FROM record_links rl JOIN persons p ON p.person_key = rl.person_key "
        "JOIN source_records r ON r.feed_file_id = rl.feed_file_id AND r.row_number = rl.row_number "
        "JOIN feed_files fr ON fr.id = r.feed_file_id "
        "WHERE rl.feed_file_id = :f AND rl.row_number = :r FOR UPDATE OF rl"),
        {"f": feed_file_id, "r": row_number}).one_or_none()
    record = f"{feed_file_id}-{row_number}"
    if row is None or not actor.sees_grid(row.grid_id):
        raise NotFound(f"已链接记录 {record} 不存在或不在您的范围内 / no linked record {record} in your scope")
    if row.band not in LINKED_BANDS or row.provisional or row.identified:
        raise Conflict(f"记录 {record} 未链接到已识别的人员 / record {record} is not linked to an identified person",
                       code="not_linked")
    if row.split_waiting:
        raise Conflict(f"记录 {record} 已拆分，等待重新研判生效 / record {record} was split already: the re-match "
                       "will apply it", code="split_waiting")
    through = _linked_through(conn, feed_file_id, row_number, row.person_key,
                              (row.record_feed_file_id, row.record_row_number))
    if not through:
        raise Conflict(f"人员没有可拆分的身份证记录 / the person of record {record} has no identified record",
                       code="not_linked")
    for other_file, other_row in through:
        conn.execute(text(
            "INSERT INTO linkage_decisions (record_feed_file_id, record_row_number, other_feed_file_id, "
            "other_row_number, decision, kind, person_key, decided_by, reason) "
            "VALUES (:rf, :rr, :of, :orow, 'different', 'split', :k, :by, :why)"),
            {"rf": feed_file_id, "rr": row_number, "of": other_file, "orow": other_row, "k": row.person_key,
             "by": actor.username, "why": why})
    own_key = provisional_key(feed_file_id, row_number)
    # the code in force when the record came in, and every change since: the codes it carried while linked
    copied = conn.execute(text(
        "INSERT INTO risk_code_history (person_key, previous_colour, colour, reason, rule_id, sources, set_at, "
        "expires_at, changed_at) "
        "SELECT :own, h.previous_colour, h.colour, :mark || h.reason, h.rule_id, h.sources, h.set_at, h.expires_at, "
        "h.changed_at FROM risk_code_history h WHERE h.person_key = :k AND h.changed_at >= coalesce("
        "(SELECT max(changed_at) FROM risk_code_history WHERE person_key = :k AND changed_at <= :since), :since) "
        "ORDER BY h.changed_at, h.id"),
        {"own": own_key, "mark": SPLIT_MARK, "k": row.person_key, "since": row.imported_at}).rowcount
    named = ", ".join(f"{f}-{r}" for f, r in through)
    record_read(conn, actor, "linkage.split", row.person_key,
                f"记录 / record {record} ↛ {named}（{row.band}）→ {own_key}：{why}", client)
    return {"person_key": row.person_key, "name_masked": row.name_masked, "split_key": own_key,
            "decisions": len(through), "through": through, "history": int(copied)}
