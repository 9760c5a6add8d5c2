"""E-passes and the gate's verdict, in the domain: issue, verify, forged, revoked, reissue, scope, audit; the verdict
per colour and the alert tasks it shares with the scans API."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from accounts.actor import REPORTER, Actor
from accounts.repository import load_actor
from checkpoints import passes
from checkpoints.passes import ForgedPass, RevokedPass
from checkpoints.repository import checkpoints_in_scope, record_scan
from checkpoints.verdict import BY_COLOUR, gate_scan, verdict_of
from gis.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from matching.privacy import Vault, load_vault
from tests.persons import flag_person

GRID = "440605011001001"  # demo_worker's grid
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vault() -> Vault:
    return load_vault()


@pytest.fixture(scope="module")
def staff(work_engine) -> dict[str, Actor]:
    with work_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT username, id FROM users WHERE username LIKE 'demo_%'")).all())
        return {name.removeprefix("demo_"): load_actor(conn, user_id) for name, user_id in ids.items()}


@pytest.fixture(scope="module")
def checkpoint(work_engine) -> str:
    with work_engine.connect() as conn:
        # demo_worker's grid has no gate: the first one of demo_supervisor's community
        return conn.execute(text("SELECT k.code FROM checkpoints k JOIN grids g ON g.id = k.grid_id "
                                 "WHERE g.code LIKE :c ORDER BY k.code LIMIT 1"), {"c": GRID[:12] + "%"}).scalar_one()


def person(engine, colour: str = "red", grid: str = GRID) -> str:
    """A person of ``colour`` in ``grid`` (a green one is not flagged: only risk colours are)."""
    key = secrets.token_hex(32)
    if colour != "green":
        return flag_person(engine, key, grid, colour, name="赵*")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO persons (person_key, id_masked, name_masked, colour, reason, confidence, "
                          "grid_id) SELECT :k, '440605********0000', '赵*', 'green', '无 / none', 1.0, id FROM grids "
                          "WHERE code = :g"), {"k": key, "g": grid})
    return key


def test_a_pass_is_issued_verified_and_carries_no_id_number(work_engine, staff, vault):
    key = person(work_engine)
    with work_engine.begin() as conn:
        issued = passes.issue_pass(conn, staff["worker"], key, vault, NOW, "test")
        assert passes.verify(conn, vault, issued["token"]) == key
        audit = conn.execute(text("SELECT action, username, reason FROM audit_log WHERE subject = :k"),
                             {"k": key}).all()
    token = issued["token"]
    assert token.startswith(f"NHP1.{issued['id']}.") and key not in token and len(token) < 100
    assert (issued["name_masked"], issued["issued_by"], issued["replaces"]) == ("赵*", "demo_worker", [])
    assert [(a.action, a.username) for a in audit] == [("e_pass.issue", "demo_worker")]
    assert f"#{issued['id']}" in audit[0].reason


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the mac changed
    lambda t: t.replace("NHP1.", "NHP1.9", 1),  # another pass id under the same mac
    lambda t: "NHP2" + t[4:],  # another version
    lambda t: "440605198503030010",  # an ID number is no token
    lambda t: t + ".x",
    lambda t: "",
])
def test_a_forged_token_is_refused_naming_the_field(work_engine, staff, vault, tamper):
    key = person(work_engine, "green")
    with work_engine.begin() as conn:
        token = passes.issue_pass(conn, staff["supervisor"], key, vault, NOW)["token"]
        with pytest.raises(ForgedPass) as refused:
            passes.verify(conn, vault, tamper(token))
    assert refused.value.field == "pass_token" and "/ " in str(refused.value)


def test_a_token_signed_under_another_secret_is_forged(work_engine, staff, vault):
    key = person(work_engine, "green")
    other = Vault(b"another secret" * 3, vault._fernet_key)  # noqa: SLF001  (the same data key, another HMAC key)
    with work_engine.begin() as conn:
        issued = passes.issue_pass(conn, staff["worker"], key, vault, NOW)
        with pytest.raises(ForgedPass):
            passes.verify(conn, vault, passes.sign(other, issued["id"], issued["token"].split(".")[2]))


def test_revoking_needs_a_reason_is_audited_and_refuses_the_token(work_engine, staff, vault):
    key = person(work_engine, "yellow")
    with work_engine.begin() as conn:
        issued = passes.issue_pass(conn, staff["worker"], key, vault, NOW)
        with pytest.raises(InvalidRequest) as no_reason:
            passes.revoke_pass(conn, staff["worker"], issued["id"], " ", NOW)
        assert no_reason.value.field == "reason"
        revoked = passes.revoke_pass(conn, staff["supervisor"], issued["id"], "通行证遗失", NOW, "test")
        with pytest.raises(RevokedPass) as refused:
            passes.verify(conn, vault, issued["token"])
        with pytest.raises(Conflict):
            passes.revoke_pass(conn, staff["supervisor"], issued["id"], "再次吊销", NOW)
        actions = conn.execute(text("SELECT action FROM audit_log WHERE subject = :k ORDER BY id"),
                               {"k": key}).scalars().all()
    assert (revoked["revoked_by"], revoked["reason"]) == ("demo_supervisor", "通行证遗失")
    assert refused.value.field == "pass_token" and "revoked" in str(refused.value)
    assert actions == ["e_pass.issue", "e_pass.revoke"]


def test_reissuing_revokes_the_previous_pass(work_engine, staff, vault):
    key = person(work_engine, "blue")
    with work_engine.begin() as conn:
        first = passes.issue_pass(conn, staff["worker"], key, vault, NOW)
        second = passes.issue_pass(conn, staff["supervisor"], key, vault, NOW)
        assert second["replaces"] == [first["id"]]
        with pytest.raises(RevokedPass):
            passes.verify(conn, vault, first["token"])
        assert passes.verify(conn, vault, second["token"]) == key
        listed = passes.person_passes(conn, staff["worker"], key)
    assert [(p["id"], p["reason"]) for p in listed] == [(second["id"], None), (first["id"], passes.REISSUED)]
    assert "token" not in listed[0]


def test_passes_are_issued_only_in_scope(work_engine, staff, vault):
    elsewhere = person(work_engine, "red", grid="440605011001004")
    with work_engine.begin() as conn:
        with pytest.raises(NotFound):
            passes.issue_pass(conn, staff["worker"], elsewhere, vault, NOW)  # not his grid
        for role in (REPORTER, "admin"):
            with pytest.raises(PermissionDenied):
                passes.issue_pass(conn, staff[role], elsewhere, vault, NOW)
        with pytest.raises(NotFound):
            passes.issue_pass(conn, staff["commander"], "0" * 64, vault, NOW)  # no such person
        issued = passes.issue_pass(conn, staff["commander"], elsewhere, vault, NOW)
        with pytest.raises(NotFound):
            passes.revoke_pass(conn, staff["worker"], issued["id"], "不在范围", NOW)
        with pytest.raises(NotFound):
            passes.printable(conn, staff["worker"], issued["id"], vault)
        assert passes.printable(conn, staff["commander"], issued["id"], vault)["token"] == issued["token"]


def test_the_verdict_follows_the_colour_and_an_unknown_person_passes():
    assert {c: verdict_of(c) for c in BY_COLOUR} == {"green": "pass", "blue": "temporary", "yellow": "temporary",
                                                     "red": "refuse", None: "pass"}
    assert verdict_of("purple") == "refuse"


def _alerts(engine, key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM tasks WHERE kind = 'checkpoint_alert' AND person_key = :k"),
                            {"k": key}).scalar_one()


@pytest.mark.parametrize(("colour", "verdict", "alerts"), [
    ("green", "pass", 0), ("blue", "temporary", 0), ("yellow", "temporary", 1), ("red", "refuse", 1)])
def test_a_gate_scan_by_pass_answers_the_verdict_and_raises_the_scans_alerts(work_engine, staff, vault, checkpoint,
                                                                              colour, verdict, alerts):
    key = person(work_engine, colour)
    with work_engine.begin() as conn:
        token = passes.issue_pass(conn, staff["worker"], key, vault, NOW)["token"]
        answer = gate_scan(conn, staff["supervisor"], {"checkpoint": checkpoint, "pass_token": token,
                                                       "direction": "in"}, vault, NOW)
        # the scans API's path joins the same open task
        again = record_scan(conn, staff["supervisor"], {"checkpoint": checkpoint, "person_key": key,
                                                        "direction": "out"}, vault, NOW)
    assert (answer["verdict"], answer["colour"], answer["name_masked"], answer["alert"]) == (
        verdict, colour, "赵*", alerts == 1)
    assert again["task_id"] == answer["task_id"] and _alerts(work_engine, key) == alerts


def test_an_unknown_person_typed_at_the_gate_passes_green(work_engine, staff, vault, checkpoint):
    with work_engine.begin() as conn:
        answer = gate_scan(conn, staff["supervisor"], {"checkpoint": checkpoint, "pass_code": "440605199912310018",
                                                       "direction": "in"}, vault, NOW)
    assert (answer["verdict"], answer["colour"], answer["name_masked"], answer["task_id"]) == ("pass", None, None,
                                                                                              None)


def test_a_refused_pass_stores_no_scan(work_engine, staff, vault, checkpoint):
    with work_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM scans")).scalar_one()
    with pytest.raises(ForgedPass), work_engine.begin() as conn:
        gate_scan(conn, staff["supervisor"], {"checkpoint": checkpoint, "direction": "in",
                                              "pass_token": "NHP1.1.abcdefghijklmnop." + "A" * 43}, vault, NOW)
    with work_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scans")).scalar_one() == before


def test_the_gate_lists_the_checkpoints_in_scope(work_engine, staff, checkpoint):
    with work_engine.connect() as conn:
        gate_grid = conn.execute(text("SELECT grid_id FROM checkpoints WHERE code = :c"), {"c": checkpoint}).scalar()
        worker = Actor(1, "gate_worker", "worker", grid_ids=frozenset({gate_grid}))
        mine = checkpoints_in_scope(conn, worker)
        community = checkpoints_in_scope(conn, staff["supervisor"])
        everything = checkpoints_in_scope(conn, staff["commander"])
        assert checkpoints_in_scope(conn, staff["worker"]) == []  # demo_worker's grid has no gate
        with pytest.raises(PermissionDenied):
            checkpoints_in_scope(conn, staff[REPORTER])
    assert checkpoint in [c["code"] for c in mine] and len({c["grid_code"] for c in mine}) == 1
    assert len(everything) > len(community) > len(mine)
