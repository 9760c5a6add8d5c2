"""The review queue of record linkage in each actor's scope: supervisors see the pairs either side of which lies in
their community, commanders all (a town's commander his town's), workers and reporters nothing; a decision is
stored, audited, closes the pair and cannot be taken twice; a split stores its decisions against the records the
link went through and copies the person's code history to the split-off record's own key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from accounts.actor import COMMANDER, Actor
from accounts.repository import load_actor, save_user
from gis.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from matching.identity import provisional_key
from matching.review_repository import SPLIT_MARK, decide_pair, linked_records, open_pairs, split_record

IMPORTED = datetime(2026, 3, 1, 8, tzinfo=UTC)  # when the operator's list (the unidentified records) came in


@dataclass(frozen=True)
class District:
    """The review district's database and what the tests name in it."""

    engine: Engine
    police: int  # the feed file of identified records
    operator: int  # the feed file of unidentified ones
    pairs: dict[str, int]  # pair ids by name
    grid_a: str
    grid_b: str


def _grids(conn: Connection) -> tuple[tuple[int, str, int], tuple[int, str, int]]:
    """(id, code, town) of the demo grid (demo_supervisor's community, A) and of a grid in another town (B)."""
    a = conn.execute(text("SELECT g.id, g.code, c.town_id FROM grids g JOIN communities c ON c.id = g.community_id "
                          "ORDER BY g.code LIMIT 1")).one()
    b = conn.execute(text("SELECT g.id, g.code, c.town_id FROM grids g JOIN communities c ON c.id = g.community_id "
                          "WHERE c.town_id <> :t ORDER BY g.code LIMIT 1"), {"t": a.town_id}).one()
    return (a.id, a.code, a.town_id), (b.id, b.code, b.town_id)


def _feed(conn: Connection, source: str, name: str, rows: int, imported_at: datetime) -> int:
    return int(conn.execute(text(
        "INSERT INTO feed_files (source, file_name, sha256, rows_read, rows_stored, rows_rejected, default_crs, "
        "imported_at) VALUES (:s, :n, md5(:n) || md5(:s), :r, :r, 0, 'wgs84', :at) RETURNING id"),
        {"s": source, "n": name, "r": rows, "at": imported_at}).scalar_one())


def _record(conn: Connection, feed: int, row: int, source: str, key: str, name: str, phone: str,
            id_masked: str = "", category: str | None = None) -> None:
    conn.execute(text(
        "INSERT INTO source_records (feed_file_id, row_number, source, person_key, sealed, id_masked, name_masked, "
        "phone_masked, category, reported_at, identified) "
        "VALUES (:f, :r, :s, :k, 'sealed-token', :i, :n, :p, :c, :at, :ident)"),
        {"f": feed, "r": row, "s": source, "k": key, "i": id_masked, "n": name, "p": phone, "c": category,
         "at": IMPORTED - timedelta(hours=row), "ident": bool(id_masked)})


def _person(conn: Connection, key: str, grid: int, name: str, record: tuple[int, int], id_masked: str = "",
            colour: str = "green") -> None:
    conn.execute(text(
        "INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, grid_id, "
        "record_feed_file_id, record_row_number, provisional) "
        "VALUES (:k, :i, :n, :c, '规则', 1.0, :g, :f, :r, :prov)"),
        {"k": key, "i": id_masked, "n": name, "c": colour, "g": grid, "f": record[0], "r": record[1],
         "prov": not id_masked})


def _link(conn: Connection, record: tuple[int, int], key: str, band: str, score: float | None,
          agreeing: str = "") -> None:
    conn.execute(text("INSERT INTO record_links (feed_file_id, row_number, person_key, band, score, agreeing, "
                      "linked_at) VALUES (:f, :r, :k, :b, :s, :a, :at)"),
                 {"f": record[0], "r": record[1], "k": key, "b": band, "s": score, "a": agreeing,
                  "at": IMPORTED + timedelta(days=2)})


def _pair(conn: Connection, record: tuple[int, int], other: tuple[int, int], other_key: str, score: float,
          agreeing: str, disagreeing: str, status: str = "open") -> int:
    return int(conn.execute(text(
        "INSERT INTO linkage_pairs (record_feed_file_id, record_row_number, other_feed_file_id, other_row_number, "
        "other_person_key, score, agreeing, disagreeing, status) VALUES (:rf, :rr, :of, :orow, :k, :s, :a, :d, :st) "
        "RETURNING id"),
        {"rf": record[0], "rr": record[1], "of": other[0], "orow": other[1], "k": other_key, "s": score,
         "a": agreeing, "d": disagreeing, "st": status}).scalar_one())


def review_district(database_factory, seeded_engine, name: str) -> District:
    """A copy of the seeded district with the demo accounts, ``sup_b`` (supervisor of another town's community B)
    and a police list of three identified persons — 陈*明 and 陈*华 in demo_supervisor's community A, 李*强 in
    B — and an operator's list of unidentified records: three in the review queue (``cross``: the record's
    provisional person in B, the candidate 陈*明 in A; ``in_b``: both in B; ``in_a``: both in A), one pair
    already decided and one gone, two records linked automatically (to 陈*明, to 李*强) and one by a reviewer's
    "same" (to 陈*明 through his second record). 陈*明's code history: yellow ten days before the operator's
    list came in, red two days before, yellow a day after."""
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory(name, copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
        (grid_a, code_a, _town_a), (grid_b, code_b, _town_b) = _grids(conn)
        community_b = conn.execute(text("SELECT community_id FROM grids WHERE id = :g"), {"g": grid_b}).scalar_one()
        save_user(conn, "sup_b", "supervisor", DEMO_PASSWORD, "乙社区网格长", community_b)
        police = _feed(conn, "公安", "police.csv", 4, IMPORTED - timedelta(days=30))
        operator = _feed(conn, "运营商", "operator-phones.csv", 9, IMPORTED)
        for row, key, person, phone in ((1, "k-ming", "陈*明", "138****0001"), (2, "k-qiang", "李*强", "139****0002"),
                                        (3, "k-hua", "陈*华", "137****0003"), (4, "k-ming", "陈*明", "138****0001")):
            _record(conn, police, row, "公安", key, person, phone, id_masked=f"440605********000{row}",
                    category="密切接触者")
        _person(conn, "k-ming", grid_a, "陈*明", (police, 1), "440605********0001", "yellow")
        _person(conn, "k-qiang", grid_b, "李*强", (police, 2), "440605********0002")
        _person(conn, "k-hua", grid_a, "陈*华", (police, 3), "440605********0003")
        own = {row: provisional_key(operator, row) for row in range(1, 10)}
        linked = {4: "k-ming", 5: "k-qiang", 6: "k-ming"}
        for row in range(1, 10):
            _record(conn, operator, row, "运营商", linked.get(row, own[row]), "陈*明" if row != 2 else "李*强",
                    f"138****000{row}", category="行程卡")
        for row, grid in ((1, grid_b), (2, grid_b), (3, grid_a), (7, grid_a), (8, grid_a)):
            _person(conn, own[row], grid, "陈*明", (operator, row))
            _link(conn, (operator, row), own[row], "review" if row in (1, 2, 3) else "new", None)
        _link(conn, (operator, 4), "k-ming", "auto", 0.97, "phone,name")
        _link(conn, (operator, 5), "k-qiang", "auto", 0.99, "phone,name,birth")
        _link(conn, (operator, 6), "k-ming", "decided", 0.82, "name,address")
        conn.execute(text(
            "INSERT INTO linkage_decisions (record_feed_file_id, record_row_number, other_feed_file_id, "
            "other_row_number, decision, kind, person_key, decided_by, decided_at) "
            "VALUES (:f, 6, :p, 4, 'same', 'review', :own, 'demo_supervisor', :at)"),
            {"f": operator, "p": police, "own": own[6], "at": IMPORTED + timedelta(days=1)})
        pairs = {"cross": _pair(conn, (operator, 1), (police, 1), "k-ming", 0.91, "name,address", "phone"),
                 "in_b": _pair(conn, (operator, 2), (police, 2), "k-qiang", 0.85, "name", "phone,birth"),
                 "in_a": _pair(conn, (operator, 3), (police, 3), "k-hua", 0.62, "phone", "name"),
                 "decided": _pair(conn, (operator, 7), (police, 1), "k-ming", 0.7, "name", "phone", "decided"),
                 "gone": _pair(conn, (operator, 8), (police, 1), "k-ming", 0.6, "name", "phone", "gone")}
        for days, previous, colour in ((-10, None, "yellow"), (-2, "yellow", "red"), (1, "red", "yellow")):
            conn.execute(text("INSERT INTO risk_code_history (person_key, previous_colour, colour, reason, "
                              "changed_at) VALUES ('k-ming', :p, :c, :r, :at)"),
                         {"p": previous, "c": colour, "r": f"{colour}规则", "at": IMPORTED + timedelta(days=days)})
    return District(engine, police, operator, pairs, code_a, code_b)


@pytest.fixture(scope="module")
def district(database_factory, seeded_engine) -> District:
    return review_district(database_factory, seeded_engine, "nanhai_review_repository")


@pytest.fixture
def conn(district) -> Iterator[Connection]:
    """A connection whose work is rolled back at the end: each test starts from the same district."""
    with district.engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


def actor(conn: Connection, username: str) -> Actor:
    return load_actor(conn, conn.execute(text("SELECT id FROM users WHERE username = :u"),
                                         {"u": username}).scalar_one())


def town_commander(conn: Connection, grid_code: str) -> Actor:
    """A commander of the town of ``grid_code``, with that town's grids (as a session would load him)."""
    town, grids = conn.execute(text(
        "SELECT c.town_id, array_agg(g.id) FROM grids g JOIN communities c ON c.id = g.community_id "
        "WHERE c.town_id = (SELECT c2.town_id FROM grids g2 JOIN communities c2 ON c2.id = g2.community_id "
        "WHERE g2.code = :g) GROUP BY c.town_id"), {"g": grid_code}).one()
    return Actor(None, "town_commander", COMMANDER, grid_ids=frozenset(grids), town_id=town)


def _ids(listed: list[dict]) -> list[int]:
    return [pair["id"] for pair in listed]


def test_each_supervisor_sees_the_pairs_touching_his_community_and_a_commander_all(conn, district):
    pairs = district.pairs
    everyone, total = open_pairs(conn, actor(conn, "demo_commander"))
    assert _ids(everyone) == [pairs["cross"], pairs["in_b"], pairs["in_a"]] and total == 3, "highest score first"
    assert _ids(open_pairs(conn, actor(conn, "demo_admin"))[0]) == _ids(everyone)
    assert _ids(open_pairs(conn, actor(conn, "demo_supervisor"))[0]) == [pairs["cross"], pairs["in_a"]]
    assert _ids(open_pairs(conn, actor(conn, "sup_b"))[0]) == [pairs["cross"], pairs["in_b"]]
    assert _ids(open_pairs(conn, town_commander(conn, district.grid_a))[0]) == [pairs["cross"], pairs["in_a"]]
    for outsider in ("demo_worker", "demo_reporter"):
        with pytest.raises(PermissionDenied):
            open_pairs(conn, actor(conn, outsider))
    page_two, total = open_pairs(conn, actor(conn, "demo_commander"), page=2, page_size=2)
    assert _ids(page_two) == [pairs["in_a"]] and total == 3
    with pytest.raises(InvalidRequest):
        open_pairs(conn, actor(conn, "demo_commander"), page=0)


def test_a_pair_shows_both_records_masked_with_the_fields_that_agree_and_disagree(conn, district):
    cross = open_pairs(conn, actor(conn, "demo_supervisor"))[0][0]
    assert (cross["score"], cross["agreeing"], cross["disagreeing"]) == (0.91, ["name", "address"], ["phone"])
    record, other = cross["record"], cross["other"]
    assert (record["feed_file_id"], record["row_number"], record["id_masked"], record["identified"]) == \
        (district.operator, 1, "", False)
    assert (record["name_masked"], record["phone_masked"], record["source"], record["file_name"],
            record["category"]) == ("陈*明", "138****0001", "运营商", "operator-phones.csv", "行程卡")
    assert record["reported_at"] and record["grid_code"] == district.grid_b
    assert (other["id_masked"], other["source"], other["file_name"], other["row_number"], other["grid_code"]) == \
        ("440605********0001", "公安", "police.csv", 1, district.grid_a)
    assert "sealed" not in str(cross) and "sealed-token" not in str(cross)


def _count(conn: Connection, sql: str, **params) -> int:
    return int(conn.execute(text(sql), params).scalar_one())


def test_a_decision_is_stored_audited_and_closes_the_pair_and_cannot_be_taken_twice(conn, district):
    supervisor = actor(conn, "demo_supervisor")
    pair = district.pairs["cross"]
    decided = decide_pair(conn, supervisor, pair, "same", "  电话与住址一致  ", "test-client")
    assert decided["decision"] == "same" and decided["person_key"] == provisional_key(district.operator, 1)
    stored = conn.execute(text("SELECT record_feed_file_id, record_row_number, other_feed_file_id, "
                               "other_row_number, decision, kind, pair_id, person_key, decided_by, reason "
                               "FROM linkage_decisions WHERE id = :id"), {"id": decided["id"]}).one()
    assert tuple(stored) == (district.operator, 1, district.police, 1, "same", "review", pair,
                             provisional_key(district.operator, 1), "demo_supervisor", "电话与住址一致")
    assert conn.execute(text("SELECT status FROM linkage_pairs WHERE id = :id"), {"id": pair}).scalar_one() == \
        "decided"
    audit = conn.execute(text("SELECT username, subject, reason, client FROM audit_log "
                              "WHERE action = 'linkage.decide'")).one()
    assert audit.username == "demo_supervisor" and audit.subject == f"linkage_pair:{pair}"
    assert "同一人" in audit.reason and "电话与住址一致" in audit.reason and audit.client == "test-client"
    assert "陈" not in audit.reason and "138" not in audit.reason, "no personal data in the log"
    assert pair not in _ids(open_pairs(conn, supervisor)[0])
    with pytest.raises(Conflict, match="已有审核结论") as twice:
        decide_pair(conn, actor(conn, "sup_b"), pair, "different")
    assert twice.value.code == "pair_decided"
    assert _count(conn, "SELECT count(*) FROM linkage_decisions WHERE pair_id = :p", p=pair) == 1


def test_deciding_outside_the_scope_reads_as_a_pair_that_does_not_exist(conn, district):
    supervisor = actor(conn, "demo_supervisor")
    with pytest.raises(NotFound) as outside:
        decide_pair(conn, supervisor, district.pairs["in_b"], "different")
    with pytest.raises(NotFound) as missing:
        decide_pair(conn, supervisor, 999_999, "different")
    assert str(outside.value).replace(str(district.pairs["in_b"]), "N") == str(missing.value).replace("999999", "N")
    with pytest.raises(Conflict, match="已失效"):
        decide_pair(conn, supervisor, district.pairs["gone"], "same")
    with pytest.raises(Conflict, match="已有审核结论"):
        decide_pair(conn, supervisor, district.pairs["decided"], "same")
    for outsider in ("demo_worker", "demo_reporter"):
        with pytest.raises(PermissionDenied):
            decide_pair(conn, actor(conn, outsider), district.pairs["in_a"], "same")
    with pytest.raises(InvalidRequest):
        decide_pair(conn, supervisor, district.pairs["in_a"], "maybe")
    decided = decide_pair(conn, actor(conn, "sup_b"), district.pairs["in_b"], "different")
    assert decided["reason"] == "" and decided["decision"] == "different"
    assert _count(conn, "SELECT count(*) FROM linkage_decisions") == 2, "only the one before and this one"


def test_the_linked_records_are_listed_in_scope_weakest_link_first(conn, district):
    mine, more = linked_records(conn, actor(conn, "demo_supervisor"))
    assert [(r["record"]["row_number"], r["band"], r["score"]) for r in mine] == [(6, "decided", 0.82),
                                                                               (4, "auto", 0.97)] and not more
    assert mine[1]["person"]["name_masked"] == "陈*明" and mine[1]["person"]["id_masked"] == "440605********0001"
    assert mine[1]["agreeing"] == ["phone", "name"] and not mine[1]["split_waiting"]
    assert [r["record"]["row_number"] for r in linked_records(conn, actor(conn, "sup_b"))[0]] == [5]
    everyone = actor(conn, "demo_commander")
    assert len(linked_records(conn, everyone)[0]) == 3
    first, more = linked_records(conn, everyone, page=1, page_size=2)
    last, no_more = linked_records(conn, everyone, page=2, page_size=2)
    assert [r["record"]["row_number"] for r in first + last] == [6, 4, 5] and more and not no_more
    with pytest.raises(PermissionDenied):
        linked_records(conn, actor(conn, "demo_worker"))


def test_a_split_stores_its_decision_copies_the_code_history_and_waits_for_the_re_match(conn, district):
    supervisor = actor(conn, "demo_supervisor")
    with pytest.raises(InvalidRequest, match="理由"):
        split_record(conn, supervisor, district.operator, 4, " ")
    with pytest.raises(NotFound, match="不在您的范围内"):
        split_record(conn, actor(conn, "sup_b"), district.operator, 4, "号码是家人的")
    split = split_record(conn, supervisor, district.operator, 4, "号码是家人的", "test-client")
    own = provisional_key(district.operator, 4)
    assert (split["person_key"], split["split_key"], split["through"]) == ("k-ming", own, [(district.police, 1)])
    stored = conn.execute(text("SELECT other_feed_file_id, other_row_number, decision, kind, pair_id, person_key, "
                               "decided_by, reason FROM linkage_decisions WHERE record_feed_file_id = :f "
                               "AND record_row_number = 4"), {"f": district.operator}).all()
    assert [tuple(r) for r in stored] == [(district.police, 1, "different", "split", None, "k-ming",
                                           "demo_supervisor", "号码是家人的")]
    history = conn.execute(text("SELECT previous_colour, colour, reason, changed_at FROM risk_code_history "
                                "WHERE person_key = :k ORDER BY changed_at"), {"k": own}).all()
    assert split["history"] == 2 and [(h.previous_colour, h.colour) for h in history] == [("yellow", "red"),
                                                                                          ("red", "yellow")]
    assert all(h.reason.startswith(SPLIT_MARK) for h in history) and history[0].reason.endswith("red规则")
    assert history[0].changed_at == IMPORTED - timedelta(days=2), "the code in force when the record came in"
    assert _count(conn, "SELECT count(*) FROM risk_code_history WHERE person_key = 'k-ming'") == 3, "his own kept"
    audit = conn.execute(text("SELECT username, subject, reason FROM audit_log WHERE action = 'linkage.split'")).one()
    assert audit.subject == "k-ming" and own in audit.reason and "号码是家人的" in audit.reason
    listed = {r["record"]["row_number"]: r for r in linked_records(conn, supervisor)[0]}
    assert listed[4]["split_waiting"] and not listed[6]["split_waiting"]
    with pytest.raises(Conflict, match="已拆分") as again:
        split_record(conn, supervisor, district.operator, 4, "再拆一次")
    assert again.value.code == "split_waiting"


def test_a_split_of_a_reviewers_link_names_the_record_he_said_was_the_same(conn, district):
    split = split_record(conn, actor(conn, "demo_commander"), district.operator, 6, "复核：不是同一人")
    assert split["through"] == [(district.police, 4), (district.police, 1)], "the 'same' no longer holds"
    with pytest.raises(Conflict, match="未链接"):
        split_record(conn, actor(conn, "demo_commander"), district.operator, 1, "仍在待审")
    with pytest.raises(NotFound):
        split_record(conn, actor(conn, "demo_commander"), district.operator, 99, "没有这条记录")
