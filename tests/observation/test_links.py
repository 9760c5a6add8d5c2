"""The self-report link (issue 25): a valid link reports (and again, it is not one-time), a link reused after its
plan ended or was closed, a forged one, a renewed or revoked one, and the limit of six reports an hour (with the
seconds to wait); who may issue, renew and revoke (role and scope), each written to the plan's events.

The day is 2026-12-10 (Beijing, UTC+8). Each test works in a transaction rolled back at its end.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from gis.errors import Conflict, NotFound, PermissionDenied, RateLimited
from matching.privacy import Vault
from observation import links
from observation.checks import CheckReport
from tests.observation.test_today import EVENING, MORNING, add_plan, at, demo

VAULT = Vault(b"k" * 32, b"A" * 43 + b"=")
NORMAL = CheckReport(36.6, ("none",), None)


@pytest.fixture()
def worker(conn):
    return demo(conn, "demo_worker")


@pytest.fixture()
def plan(conn, worker) -> int:
    return add_plan(conn, "obs-links-1", min(worker.grid_ids), at(8, day=3), at(8, day=17), nonce="a" * 22)


def token_of(plan_id: int, nonce: str = "a" * 22) -> str:
    return links.link_token(VAULT, plan_id, nonce)


def self_checks(conn, plan_id: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT due_at, status, channel, temperature FROM observation_checks WHERE plan_id = :p AND channel = 'self' "
        "ORDER BY reported_at"), {"p": plan_id})]


def test_a_valid_link_reports_for_its_check_twice_a_day(conn, plan):
    token = token_of(plan)
    assert links.verify_link(conn, VAULT, token, at(7)) == plan
    morning = links.self_report(conn, VAULT, token, NORMAL, at(7, 50))
    evening = links.self_report(conn, VAULT, token, CheckReport(36.9, (), None), at(20, 30))
    assert (morning["due_at"], morning["late"], evening["due_at"], evening["late"]) == (
        MORNING.isoformat(), False, EVENING.isoformat(), True)
    assert [r[:3] for r in self_checks(conn, plan)] == [(MORNING, "done", "self"), (EVENING, "done", "self")]
    events = conn.execute(text("SELECT count(*) FROM observation_events WHERE plan_id = :p AND kind = 'check' "
                               "AND actor_id IS NULL"), {"p": plan}).scalar_one()
    assert events == 2


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the mac changed
    lambda t: t.replace("NHO1.", "NHP1."),  # an e-pass's version
    lambda t: "NHO1.999999." + t.split(".", 2)[2],  # another plan's id under this mac
    lambda t: t + ".",
    lambda t: "",
])
def test_a_forged_link_is_refused_and_records_nothing(conn, plan, mangle):
    with pytest.raises(links.ForgedLink) as refused:
        links.self_report(conn, VAULT, mangle(token_of(plan)), NORMAL, at(7, 50))
    assert refused.value.field == "token"
    assert self_checks(conn, plan) == []


def test_a_link_signed_under_another_secret_is_forged(conn, plan):
    other = Vault(b"x" * 32, b"A" * 43 + b"=")
    with pytest.raises(links.ForgedLink):
        links.verify_link(conn, VAULT, links.link_token(other, plan, "a" * 22), at(7))


def test_a_link_reused_after_its_plan_ended_or_closed_is_refused(conn, plan):
    token = token_of(plan)
    links.self_report(conn, VAULT, token, NORMAL, at(7, 50))
    with pytest.raises(links.EndedLink):
        links.self_report(conn, VAULT, token, NORMAL, at(8, day=17))  # the plan's last instant has passed
    conn.execute(text("UPDATE observation_plans SET status = 'closed', closed_at = :t, close_reason = '改判 / "
                      "override' WHERE id = :p"), {"p": plan, "t": at(12)})
    with pytest.raises(links.EndedLink):
        links.self_report(conn, VAULT, token, NORMAL, at(19, 50))
    assert len(self_checks(conn, plan)) == 1


def test_a_renewed_link_stops_the_old_one(conn, plan, worker):
    old = token_of(plan)
    nonce = links.renew_link(conn, worker, plan, at(9))
    with pytest.raises(links.ReplacedLink):
        links.verify_link(conn, VAULT, old, at(9, 1))
    assert links.verify_link(conn, VAULT, links.link_token(VAULT, plan, nonce), at(9, 1)) == plan
    event = conn.execute(text("SELECT kind, actor_id, detail FROM observation_events WHERE plan_id = :p "
                              "AND kind = 'link'"), {"p": plan}).one()
    assert event.actor_id == worker.user_id and "renewed" in event.detail


def test_issue_gives_the_link_in_force_and_revoke_stops_it(conn, plan, worker):
    issued = links.hand_out_link(conn, worker, plan, "issue", VAULT, at(9))
    assert issued["token"] == token_of(plan) and issued["path"] == f"/obs/{token_of(plan)}"
    assert issued["name_masked"] == "王*明"
    revoked = links.hand_out_link(conn, worker, plan, "revoke", VAULT, at(9, 5))
    assert revoked["token"] is None
    with pytest.raises(links.ReplacedLink):
        links.verify_link(conn, VAULT, issued["token"], at(9, 6))
    renewed = links.hand_out_link(conn, worker, plan, "renew", VAULT, at(9, 7))
    assert links.verify_link(conn, VAULT, renewed["token"], at(9, 8)) == plan
    kinds = conn.execute(text("SELECT count(*) FROM observation_events WHERE plan_id = :p AND kind = 'link'"),
                         {"p": plan}).scalar_one()
    assert kinds == 3


def test_six_reports_an_hour_then_429_with_the_seconds_until_the_oldest_ages_out(conn, plan):
    token = token_of(plan)
    for minute in range(0, 60, 10):  # 07:00 … 07:50: the first counts for 08:00, the others are extra readings
        links.self_report(conn, VAULT, token, CheckReport(36.5 + minute / 100, ("none",), None), at(7, minute))
    with pytest.raises(RateLimited) as limited:
        links.self_report(conn, VAULT, token, NORMAL, at(7, 55))
    assert limited.value.retry_after == 5 * 60 + 1  # 07:00's report leaves the hour at 08:00
    assert len(self_checks(conn, plan)) == 6
    links.self_report(conn, VAULT, token, NORMAL, at(8, 0) + timedelta(seconds=1))  # an hour after the first
    assert len(self_checks(conn, plan)) == 7


def test_the_limit_counts_self_reports_only(conn, plan, worker):
    from observation.checks import record_check

    for minute in range(0, 60, 10):
        record_check(conn, plan, CheckReport(36.4 + minute / 100, (), None), "worker", at(7, minute), worker)
    links.self_report(conn, VAULT, token_of(plan), NORMAL, at(7, 55))  # the worker's readings are not the link's


def test_who_may_hand_out_a_link(conn, plan, worker):
    with pytest.raises(PermissionDenied):
        links.hand_out_link(conn, demo(conn, "demo_reporter"), plan, "issue", VAULT, at(9))
    with pytest.raises(PermissionDenied):
        links.renew_link(conn, demo(conn, "demo_admin"), plan, at(9))
    assert links.hand_out_link(conn, demo(conn, "demo_supervisor"), plan, "issue", VAULT, at(9))["plan_id"] == plan
    elsewhere = conn.execute(text("SELECT id FROM grids WHERE id <> ALL(:mine) ORDER BY id LIMIT 1"),
                             {"mine": sorted(worker.grid_ids)}).scalar_one()
    foreign = add_plan(conn, "obs-links-2", elsewhere, at(8, day=3), at(8, day=17))
    with pytest.raises(NotFound):
        links.renew_link(conn, worker, foreign, at(9))
    with pytest.raises(NotFound):
        links.hand_out_link(conn, worker, 10 ** 9, "issue", VAULT, at(9))
    with pytest.raises(Conflict):
        links.hand_out_link(conn, worker, plan, "issue", VAULT, at(8, day=17))
