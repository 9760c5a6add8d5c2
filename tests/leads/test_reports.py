"""Checking a lead report as the public sends it."""

import pytest

from gis.errors import InvalidRequest
from leads.reports import parse_report

POINT = {"lon": 113.1, "lat": 23.0}


@pytest.mark.parametrize("crs", [None, "", " ", "wgs84"])
def test_a_missing_or_blank_crs_means_wgs84(crs):
    report = parse_report({"description": "楼道堆放杂物", "location": POINT, "crs": crs})
    assert report.point == (113.1, 23.0)


def test_an_unknown_crs_names_the_field():
    with pytest.raises(InvalidRequest) as refused:
        parse_report({"description": "楼道堆放杂物", "location": POINT, "crs": "not a crs"})
    assert refused.value.field == "crs"
