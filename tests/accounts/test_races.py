"""Check-and-count steps that a burst must not slip through (issue 20, races), and a login that does not tell
whether an account exists by how fast it answers."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest

from accounts import repository
from accounts.actor import WORKER
from accounts.repository import FAILURES_PER_ACCOUNT, check_login, save_user
from gis.errors import RateLimited
from leads.reports import REPORTS_PER_CLIENT, LeadReport
from leads.repository import submit_report
from matching.privacy import load_vault

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
PASSWORD = "桂城网格 巡查 2026 正确"


def _burst(count: int, attempt) -> Counter:
    """Run ``attempt(i)`` in ``count`` threads released together; count what each ended with."""
    gate, outcomes, lock = threading.Barrier(count), Counter(), threading.Lock()

    def one(i: int) -> None:
        gate.wait()
        try:
            result = attempt(i)
        except RateLimited:
            result = "limited"
        with lock:
            outcomes[result] += 1
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture(scope="module")
def engine(database_factory, seeded_engine):
    engine = database_factory("nanhai_races", copy_of=seeded_engine)
    with engine.begin() as conn:
        save_user(conn, "race_worker", WORKER, PASSWORD, "竞速")
    return engine


def test_a_burst_of_wrong_passwords_is_checked_only_as_often_as_the_lock_allows(engine):
    def wrong(i: int) -> str:
        with engine.begin() as conn:
            return "checked" if check_login(conn, "race_worker", f"wrong-{i}", f"client-{i}", NOW) is None \
                else "in"
    outcomes = _burst(25, wrong)
    assert outcomes == Counter(checked=FAILURES_PER_ACCOUNT, limited=25 - FAILURES_PER_ACCOUNT)
    with engine.begin() as conn, pytest.raises(RateLimited):
        check_login(conn, "race_worker", PASSWORD, "client-late", NOW)  # the right one, after the burst: locked


def test_an_unknown_user_costs_a_password_hash_like_a_real_one(engine, monkeypatch):
    hashed = []
    real = repository.verify_password
    monkeypatch.setattr(repository, "verify_password", lambda password, stored: hashed.append(stored) or
                        real(password, stored))
    with engine.begin() as conn:
        assert check_login(conn, "nobody_here", "whatever-1", "client-x", NOW) is None
    assert len(hashed) == 1 and hashed[0], "the unknown user's password is run through a real hash"


def test_a_burst_of_public_leads_from_one_client_is_held_to_the_limit(engine):
    vault = load_vault()

    def report(i: int) -> str:
        with engine.begin() as conn:
            submit_report(conn, LeadReport(f"楼下聚集 {i}", f"桂城街道南海大道{i}号", None, None), "client-lead",
                          "public", vault, NOW)
        return "stored"
    outcomes = _burst(30, report)
    assert outcomes == Counter(stored=REPORTS_PER_CLIENT, limited=30 - REPORTS_PER_CLIENT)
