"""The hotline's look-up by ID number or phone, in scope and audited; overrides and appeals, applied by a re-match
run in the background job worker; the phone key of each imported record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from accounts.actor import ADMIN, Actor
from accounts.repository import load_actor
from gis.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from jobs.queue import enqueue_rematch
from jobs.worker import run_worker
from matching.appeals import decide_appeal, expiry, file_appeal, override_code, pending_appeals
from matching.lookup import (
    NOT_FOUND,
    backfill_phone_keys,
    card_of,
    look_up,
    parse_query,
    phone_digits,
    phone_key,
    phone_keys,
    require_found,
)
from matching.pipeline import import_feed, run_match
from matching.privacy import load_vault
from tasks.intake import take_requests
from tests.matching.feedfiles import valid_id, write_csv

OWN_GRID = "440605011001002"  # in demo_supervisor's community 440605011001
FAMILY_PHONE = "13800000501"
LANDLINE = "0757-86281234"
RED, GREEN, BLUE, LANDLINE_ID = valid_id(501), valid_id(502), valid_id(503), valid_id(504)


def _point(engine: Engine, grid: str | None) -> tuple[str, str]:
    """A point inside ``grid``, or (None) inside the first grid of another community than OWN_GRID's."""
    where = "code = :c" if grid else \
        "community_id <> (SELECT community_id FROM grids WHERE code = :o) ORDER BY code LIMIT 1"
    with engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                     f"WHERE {where}) s"), {"c": grid, "o": OWN_GRID}).one()
    return f"{lon:.6f}", f"{lat:.6f}"


def people_district(database_factory, seeded_engine, name: str, folder) -> Engine:
    """A copy of the seeded district with the demo accounts and four matched persons: a red one and a green one
    sharing a phone in demo_supervisor's community (the red one with a task), a blue one in another community,
    one with a landline; each ID number from :func:`valid_id` (501–504)."""
    from demo.accounts import create_demo_accounts
    from tests.conftest import DEMO_PASSWORD

    engine = database_factory(name, copy_of=seeded_engine)
    with engine.begin() as conn:
        create_demo_accounts(conn, DEMO_PASSWORD)
    (own_lon, own_lat), (other_lon, other_lat) = _point(engine, OWN_GRID), _point(engine, None)
    yesterday = (pd.Timestamp.now(tz="Asia/Shanghai") - pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    rows = [["1", "陈小红", RED, FAMILY_PHONE, "", own_lon, own_lat, "WGS84", "密切接触者", yesterday],
            ["2", "陈小绿", GREEN, f"+86 {FAMILY_PHONE[:3]}-{FAMILY_PHONE[3:7]}-{FAMILY_PHONE[7:]}", "", own_lon,
             own_lat, "WGS84", "", yesterday],
            ["3", "李小蓝", BLUE, "13800000503", "", other_lon, other_lat, "WGS84", "返岗人员", yesterday],
            ["4", "王座机", LANDLINE_ID, LANDLINE, "", own_lon, own_lat, "WGS84", "", yesterday]]
    import_feed(engine, write_csv(folder / f"{name}.csv", rows), "卫健")
    run_match(engine)
    with engine.begin() as conn:
        take_requests(conn, datetime.now(UTC))
    return engine


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine, tmp_path_factory) -> Engine:
    return people_district(database_factory, seeded_engine, "nanhai_lookup", tmp_path_factory.mktemp("lookup"))


def actor(engine: Engine, username: str) -> Actor:
    with engine.connect() as conn:
        user_id = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
        return load_actor(conn, user_id)


def audit_lines(engine: Engine, action: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT username, subject, reason FROM audit_log WHERE action = :a ORDER BY id"), {"a": action})]


def lookup(engine: Engine, username: str, query: str, reason: str = "热线来电") -> list[dict]:
    with engine.begin() as conn:
        return look_up(conn, actor(engine, username), query, reason, load_vault(), "test-client", datetime.now(UTC))


def test_a_phone_key_is_the_same_however_the_phone_was_typed():
    vault = load_vault()
    assert phone_digits("+86 138-0000-0501") == phone_digits("0086 13800000501") == FAMILY_PHONE
    keys = phone_keys(vault, [FAMILY_PHONE, "", None, LANDLINE])
    assert keys[0] == phone_key(vault, FAMILY_PHONE) and keys[3] == phone_key(vault, "075786281234")
    assert keys.isna().tolist() == [False, True, True, False]
    assert parse_query("138 0000 0501", vault).phone_key == keys[0]
    assert parse_query(RED.lower()[:17] + RED[17].lower(), vault).person_key == vault.person_key(RED)
    with pytest.raises(InvalidRequest, match="身份证号或手机号"):
        parse_query("44060519850303", vault)


def test_the_import_stores_each_records_phone_key_and_no_phone_in_clear(engine):
    vault = load_vault()
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT r.person_key, p.phone_key FROM source_record_phones p JOIN "
                                        "source_records r USING (feed_file_id, row_number)")).all())
        ordered = list(conn.execute(text("SELECT phone_key FROM source_record_phones")).scalars())
    assert len(stored) == 4 and ordered == sorted(ordered), "stored in key order"
    assert stored[vault.person_key(RED)] == stored[vault.person_key(GREEN)] == phone_key(vault, FAMILY_PHONE)
    assert stored[vault.person_key(LANDLINE_ID)] == phone_key(vault, "075786281234")


def test_a_supervisor_finds_a_person_of_his_community_by_id_number_with_everything_about_him(engine):
    cards = lookup(engine, "demo_supervisor", RED, "热线来电：家属咨询")
    assert len(cards) == 1
    card = cards[0]
    person = card["person"]
    assert person["id_masked"] == RED[:6] + "********" + RED[-4:] and person["name_masked"] == "陈*红"
    assert person["phone_masked"] == "138****0501" and RED not in str(card) and FAMILY_PHONE not in str(card)
    assert (person["colour"], person["rule_id"], person["sources"]) == ("red", "red-close-contact", "卫健")
    assert person["expires_at"] and card["grid"]["code"] == OWN_GRID and card["grid"]["community_code"] == \
        "440605011001"
    assert [(h["previous_colour"], h["colour"]) for h in card["history"]] == [(None, "red")]
    assert len(card["tasks"]) == 1 and card["tasks"][0]["due_at"] and card["tasks"][0]["status"]
    assert card["timeline"][0]["kind"] == "code"
    key = load_vault().person_key(RED)
    assert ("demo_supervisor", key, "热线来电：家属咨询") in audit_lines(engine, "person.lookup")


def test_a_phone_finds_everyone_who_gave_it(engine):
    cards = lookup(engine, "demo_commander", "138-0000-0501")
    assert sorted(c["person"]["name_masked"] for c in cards) == ["陈*红", "陈*绿"]
    assert [c["person"]["name_masked"] for c in lookup(engine, "demo_admin", "0757 8628 1234")] == ["王*机"]


def test_a_person_outside_the_scope_is_not_found_in_the_words_of_one_who_does_not_exist(engine):
    assert lookup(engine, "demo_supervisor", BLUE) == []
    assert lookup(engine, "demo_supervisor", valid_id(999)) == []
    assert lookup(engine, "demo_supervisor", "13800000503") == []
    with pytest.raises(NotFound) as refused:
        require_found([])
    assert str(refused.value) == NOT_FOUND
    assert lookup(engine, "demo_commander", BLUE)[0]["person"]["colour"] == "blue"
    lines = audit_lines(engine, "person.lookup")
    vault = load_vault()
    assert ("demo_supervisor", vault.person_key(BLUE), "热线来电") in lines, "a search that found nobody is audited"
    assert ("demo_supervisor", "手机 / phone 138****0503", "热线来电") in lines
    with pytest.raises(NotFound), engine.connect() as conn:
        card_of(conn, actor(engine, "demo_supervisor"), vault.person_key(BLUE), datetime.now(UTC))


def test_a_look_up_needs_a_reason_and_a_role_that_may_look(engine):
    with pytest.raises(InvalidRequest, match="理由"):
        lookup(engine, "demo_supervisor", RED, " ")
    with pytest.raises(PermissionDenied):
        lookup(engine, "demo_worker", RED)
    with pytest.raises(PermissionDenied):
        lookup(engine, "demo_reporter", RED)


def work(engine: Engine) -> None:
    run_worker(engine.url.render_as_string(hide_password=False), once=True, niceness=0,
               install_signal_handlers=False)


def test_a_commanders_override_applies_after_the_re_match_and_shows_on_the_timeline(engine):
    vault, now = load_vault(), datetime.now(UTC)
    key = vault.person_key(BLUE)
    commander = actor(engine, "demo_commander")
    with pytest.raises(NotFound), engine.begin() as conn:  # not his community
        file_appeal(conn, actor(engine, "demo_supervisor"), key, "green", "已返岗满14天", expiry(now, days=7))
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        override_code(conn, actor(engine, "demo_supervisor"), key, "green", "越权", expiry(now, days=7))
    with engine.begin() as conn:
        override_id = override_code(conn, commander, key, "red", "流调发现密接", expiry(now, days=3), "test-client")
    enqueue_rematch(engine, requested_by=commander.username)
    work(engine)
    with engine.connect() as conn:
        card = card_of(conn, commander, key, datetime.now(UTC))
    assert (card["person"]["colour"], card["person"]["rule_id"]) == ("red", "override")
    assert "流调发现密接" in card["person"]["reason"] and "demo_commander" in card["person"]["reason"]
    assert [(h["previous_colour"], h["colour"]) for h in card["history"]][:2] == [("blue", "red"), (None, "blue")]
    assert card["overrides"][0]["id"] == override_id and card["overrides"][0]["active"]
    assert [e["kind"] for e in card["timeline"]][:2] in (["code", "override"], ["override", "code"])
    line = audit_lines(engine, "code.override")[-1]
    assert line[:2] == ("demo_commander", key) and f"#{override_id} → red" in line[2]


def test_an_override_needs_a_colour_a_reason_and_a_sensible_expiry(engine):
    now = datetime.now(UTC)
    with pytest.raises(InvalidRequest):
        expiry(now, days=0)
    with pytest.raises(InvalidRequest):
        expiry(now, days=400)
    with pytest.raises(InvalidRequest):
        expiry(now, until=(now - timedelta(days=1)).date())
    assert expiry(now, until=(now + timedelta(days=10)).date()) > now + timedelta(days=9)
    key = load_vault().person_key(RED)
    with pytest.raises(InvalidRequest), engine.begin() as conn:
        override_code(conn, actor(engine, "demo_commander"), key, "purple", "颜色不对", expiry(now, days=1))
    with pytest.raises(InvalidRequest), engine.begin() as conn:
        override_code(conn, actor(engine, "demo_commander"), key, "green", "", expiry(now, days=1))


def test_a_supervisors_appeal_waits_for_a_commander_whose_approval_is_the_override(engine):
    vault, now = load_vault(), datetime.now(UTC)
    key = vault.person_key(RED)
    supervisor, commander = actor(engine, "demo_supervisor"), actor(engine, "demo_commander")
    with engine.begin() as conn:
        appeal_id = file_appeal(conn, supervisor, key, "green", "核酸两次阴性，解除观察", expiry(now, days=5), "c")
    with pytest.raises(Conflict, match="已有待处理"), engine.begin() as conn:
        file_appeal(conn, supervisor, key, "yellow", "再申诉一次", expiry(now, days=5))
    with engine.connect() as conn:
        assert [a["id"] for a in pending_appeals(conn, supervisor)] == [appeal_id]
        waiting = pending_appeals(conn, commander)
    assert [(a["id"], a["current_colour"], a["grid_code"]) for a in waiting] == [(appeal_id, "red", OWN_GRID)]
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        decide_appeal(conn, supervisor, appeal_id, True, "自己批准", now)
    with pytest.raises(InvalidRequest), engine.begin() as conn:
        decide_appeal(conn, commander, appeal_id, True, "", now)
    with engine.begin() as conn:
        decided = decide_appeal(conn, commander, appeal_id, True, "同意，核酸报告已核", now, "c")
    assert decided["status"] == "approved" and decided["override_id"] and decided["decided_by"] == "demo_commander"
    with pytest.raises(Conflict, match="已处理"), engine.begin() as conn:
        decide_appeal(conn, actor(engine, "demo_admin"), appeal_id, False, "再驳回", now)
    enqueue_rematch(engine, requested_by=commander.username)
    work(engine)
    with engine.connect() as conn:
        card = card_of(conn, supervisor, key, datetime.now(UTC))
        assert pending_appeals(conn, commander) == []
    assert (card["person"]["colour"], card["person"]["rule_id"]) == ("green", "override")
    assert card["history"][0]["previous_colour"] == "red" and card["history"][0]["colour"] == "green"
    assert card["appeals"][0]["status"] == "approved"
    assert {"appeal", "decision", "override", "code"} <= {e["kind"] for e in card["timeline"]}
    actions = [(a, s) for a in ("code.appeal", "code.appeal.decide") for (_u, s, _r) in audit_lines(engine, a)]
    assert ("code.appeal", key) in actions and ("code.appeal.decide", key) in actions


def test_a_rejected_appeal_changes_nothing_and_a_new_one_may_follow(engine):
    vault, now = load_vault(), datetime.now(UTC)
    key = vault.person_key(LANDLINE_ID)
    supervisor = actor(engine, "demo_supervisor")
    with engine.begin() as conn:
        first = file_appeal(conn, supervisor, key, "yellow", "邻居反映外出", expiry(now, days=3))
    with engine.begin() as conn:
        decided = decide_appeal(conn, Actor(None, "test_admin", ADMIN), first, False, "证据不足", now)
        assert decided["status"] == "rejected" and decided["override_id"] is None
        assert file_appeal(conn, supervisor, key, "yellow", "补充了证据", expiry(now, days=3)) > first
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM risk_overrides WHERE person_key = :k"),
                            {"k": key}).scalar_one() == 0


def test_records_stored_before_the_phone_key_get_it_from_the_backfill(engine):
    vault = load_vault()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM source_record_phones"))
    assert lookup(engine, "demo_admin", FAMILY_PHONE) == []
    assert backfill_phone_keys(engine, vault, batch=3) == 4
    assert backfill_phone_keys(engine, vault) == 0
    assert len(lookup(engine, "demo_admin", FAMILY_PHONE)) == 2


def test_the_backfill_on_the_command_line(engine, monkeypatch):
    from click.testing import CliRunner

    from gridctl import main

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM source_record_phones WHERE row_number > 4"))
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(main, ["people", "backfill-phones"], catch_exceptions=False)
    assert result.exit_code == 0 and "phone keys added for 2 records" in result.output
    assert len(lookup(engine, "demo_admin", "13800000503")) == 1


def test_the_phone_keys_of_deleted_records_go_with_them(database_factory, engine):
    copy = database_factory("nanhai_lookup_delete", copy_of=engine)
    with copy.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM source_record_phones")).scalar_one() == 4
        conn.execute(text("DELETE FROM source_records WHERE row_number = 3"))  # the first record (after the title)
        assert conn.execute(text("SELECT count(*) FROM source_record_phones")).scalar_one() == 3
        conn.execute(text("DELETE FROM feed_files"))  # its records go, and their keys
        assert conn.execute(text("SELECT count(*) FROM source_record_phones")).scalar_one() == 0
