"""The public's limit: per device (the form's token) and per address, so that a village behind one shared
address is not blocked as one client; reports without a device fall under the address's small limit; the count
is atomic (two reports racing at the limit: one is stored, one refused)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import text

from gis.errors import RateLimited
from leads.reports import (
    RATE_WINDOW,
    REPORTS_PER_CLIENT,
    REPORTS_PER_DEVICE,
    REPORTS_PER_SHARED_ADDRESS,
    parse_report,
)
from leads.repository import submit_report

_WEEKS = count(1)


@pytest.fixture
def moment() -> datetime:
    """A moment of the test's own: no other test's reports inside its window."""
    return datetime(2032, 1, 1, 9, tzinfo=UTC) + timedelta(weeks=next(_WEEKS))


@pytest.fixture(scope="module")
def spot(lead_engine) -> tuple[float, float]:
    with lead_engine.connect() as conn:
        return tuple(conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                       "WHERE code = '440605011001006') x")).one())


@pytest.fixture
def send(lead_engine, lead_vault, spot):
    def submit(client: str, device: str | None, at: datetime, channel: str = "public") -> dict:
        report = parse_report({"description": "门口有人发热", "location": {"lon": spot[0], "lat": spot[1]}})
        with lead_engine.begin() as conn:
            return submit_report(conn, report, client, channel, lead_vault, at, device=device)
    return submit


def _refused(send, *args) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        send(*args)
    return refused.value


def test_two_devices_behind_one_address_both_pass(send, moment):
    for i in range(REPORTS_PER_DEVICE):
        send("village", "phone-a", moment + timedelta(seconds=i))
        send("village", "phone-b", moment + timedelta(seconds=i))
    refusal = _refused(send, "village", "phone-a", moment + timedelta(seconds=30))
    assert "device" in str(refusal) and refusal.retry_after == int(RATE_WINDOW.total_seconds())
    send("village", "phone-c", moment + timedelta(seconds=31))  # a third phone there still gets through


def test_a_device_is_limited_whatever_address_it_comes_from(send, moment):
    for i in range(REPORTS_PER_DEVICE):
        send(f"address-{i}", "roaming-phone", moment + timedelta(seconds=i))
    assert "device" in str(_refused(send, "address-9", "roaming-phone", moment + timedelta(seconds=9)))


def test_reports_without_a_device_fall_under_the_address_limit(send, moment):
    send("shared", "phone-a", moment)  # a phone's report there does not count against the scripts
    for i in range(REPORTS_PER_CLIENT):
        send("shared", None, moment + timedelta(seconds=i + 1))
    refusal = _refused(send, "shared", None, moment + timedelta(seconds=20))
    assert "client" in str(refusal)
    send("shared", "phone-b", moment + timedelta(seconds=21))  # while the phones still get through
    send("shared", None, moment + RATE_WINDOW + timedelta(seconds=20))  # and the window passes


def test_staff_reports_are_not_limited(send, moment):
    for i in range(REPORTS_PER_CLIENT + 2):
        send("office", None, moment + timedelta(seconds=i), "staff")


def test_an_address_has_a_cap_for_all_its_devices_together(send, moment):
    for i in range(REPORTS_PER_SHARED_ADDRESS):
        send("busy-nat", f"phone-{i}", moment + timedelta(milliseconds=i))
    refusal = _refused(send, "busy-nat", "one-more-phone", moment + timedelta(seconds=30))
    assert "network address" in str(refusal)


def _race(send, client: str, device: str, at: datetime) -> list[str]:
    """Two reports of ``device`` sent at once (from two addresses); what became of each."""
    start, outcomes = threading.Barrier(2), []

    def one(n: int) -> None:
        start.wait()
        try:
            send(f"{client}-{n}", device, at)
            outcomes.append("stored")
        except RateLimited:
            outcomes.append("refused")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_the_count_is_atomic_under_concurrency(lead_engine, send, moment):
    """Two reports of one device race at its last free place: exactly one is stored, whichever wins."""
    for round_ in range(3):
        device, at = f"racer-{round_}", moment + timedelta(minutes=15 * round_)
        for i in range(REPORTS_PER_DEVICE - 1):
            send(f"race-address-{round_}", device, at + timedelta(seconds=i))
        assert _race(send, f"race-address-{round_}", device, at + timedelta(seconds=30)) == ["refused", "stored"]
        with lead_engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM lead_reports WHERE device = :d"), {"d": device})
            assert stored.scalar_one() == REPORTS_PER_DEVICE
