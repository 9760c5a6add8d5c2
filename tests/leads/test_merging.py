"""Which reports are one lead: the same address (normalised), or near each other when their addresses do not
tell them apart; two house numbers in one community stay two leads even where both are placed at the
community's centre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import text

from leads.reports import parse_report
from leads.repository import submit_report

_DAYS = count(1)


@pytest.fixture
def send(lead_engine, lead_vault):
    """Submit reports as a department would (no limit), in a day of the test's own (no merge with other tests)."""
    moment = datetime(2031, 1, 1, 9, tzinfo=UTC) + timedelta(days=10 * next(_DAYS))

    def submit(description: str, address: str | None = None, point: tuple[float, float] | None = None) -> dict:
        payload: dict = {"description": description, "address": address}
        if point is not None:
            payload["location"] = {"lon": point[0], "lat": point[1]}
        with lead_engine.begin() as conn:
            return submit_report(conn, parse_report(payload), "test-client", "staff", lead_vault, moment)
    return submit


@pytest.fixture(scope="module")
def spot(lead_engine) -> tuple[float, float]:
    with lead_engine.connect() as conn:
        return tuple(conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
                                       "WHERE code = '440605011001006') x")).one())


def _point_of(lead_engine, lead_id: int) -> tuple[float, float]:
    with lead_engine.connect() as conn:
        return tuple(conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM leads WHERE id = :id"),
                                  {"id": lead_id}).one())


def test_two_house_numbers_in_one_community_are_two_leads(send, lead_engine):
    third = send("门口有人发热", "大沥镇黄岐社区3号")
    fourth = send("楼上有人咳嗽", "大沥镇黄岐社区4号")
    assert third["placed"] and fourth["placed"]
    assert _point_of(lead_engine, third["id"]) == pytest.approx(_point_of(lead_engine, fourth["id"]), abs=1e-9), \
        "both are placed at the community's centre: only their house numbers tell them apart"
    assert fourth["id"] != third["id"] and fourth["merged"] is False


@pytest.mark.parametrize("again", ["大沥镇黄岐社区149 号", "佛山市南海区大沥镇 黄岐社区１４９號", "黄岐社区149号"])
def test_the_same_house_number_written_differently_is_one_lead(send, again):
    first = send("有人聚集打牌", "大沥镇黄岐社区149号")
    second = send("同一户又有人来", again)
    assert second["id"] == first["id"] and second["merged"] is True and second["report_count"] == 2


def test_a_community_named_without_a_house_number_does_not_swallow_the_houses_in_it(send):
    house = send("有人发热", "大沥镇黄岐社区5号")
    community = send("社区里有人聚集", "大沥镇黄岐社区")
    assert community["id"] != house["id"]


def test_point_only_reports_merge_by_distance(send, spot):
    lon, lat = spot
    first = send("楼下有人发热咳嗽", point=(lon, lat))
    near = send("同一栋楼有人发烧", point=(lon + 0.0003, lat))  # ~30 m east
    far = send("另一处聚集", point=(lon + 0.002, lat))  # ~200 m
    assert near["id"] == first["id"] and near["merged"] is True
    assert far["id"] != first["id"] and far["merged"] is False


def test_a_point_only_report_joins_a_nearby_lead_that_has_an_address(send, spot):
    lon, lat = spot
    addressed = send("有人发热", "某小区8号", point=(lon, lat))
    pinned = send("那栋楼有人咳嗽", point=(lon + 0.0002, lat))
    assert pinned["id"] == addressed["id"]


def test_neighbours_with_other_house_numbers_stay_apart_even_within_the_merge_distance(send, spot):
    lon, lat = spot
    first = send("有人发热", "某路10号", point=(lon, lat))
    second = send("有人咳嗽", "某路12号", point=(lon + 0.0002, lat))  # ~20 m
    same = send("又有人发热", "桂城街道某路10号", point=(lon + 0.0001, lat))  # the same house, with its town
    assert second["id"] != first["id"]
    assert same["id"] == first["id"]
