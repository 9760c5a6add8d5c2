"""The demo feed generator: travel columns and Hubei ID numbers on request, the feed of before by default."""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from demo.feeds import (
    ARRIVAL_DAYS,
    HEADER,
    HUBEI_COUNTIES,
    HUBEI_ORIGINS,
    HUBEI_SHARE,
    OTHER_ORIGINS,
    TRAVEL_HEADER,
    write_feed,
)
from matching.identity import id_number_problem
from matching.regions import divisions

DISTRICT = box(113.0, 22.95, 113.2, 23.15)  # inside Nanhai: the population surface has people there
NOW = pd.Timestamp("2026-11-30 08:00")
ROWS = 3000
# sha256 of write_feed(path, 300, DISTRICT, now=NOW, seed=3, household_share=0.05) as written before the travel
# options existed (commit 94e97da): the benchmarks' and the demo's feeds must not move under them. A numpy or pandas
# upgrade that changes random streams or formatting changes it too: check that with the old code, then update.
BEFORE_TRAVEL = "bcc830f3987dc5b690539c33a757155581ecce7b8bcc7f1daba6989df3b28883"


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def feeds(tmp_path_factory):
    """The same seed written plain and with 30 % travel rows and 2 % Hubei natives."""
    folder = tmp_path_factory.mktemp("feeds")
    plain = write_feed(folder / "plain.csv", ROWS, DISTRICT, now=NOW, seed=5)
    travel = write_feed(folder / "travel.csv", ROWS, DISTRICT, now=NOW, seed=5, travel_share=0.3, native_share=0.02)
    return _read(plain), _read(travel)


def test_the_defaults_write_the_feed_written_before(tmp_path):
    path = write_feed(tmp_path / "feed.csv", 300, DISTRICT, now=NOW, seed=3, household_share=0.05)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == BEFORE_TRAVEL
    assert _read(path).columns.tolist() == HEADER


def test_travel_columns_are_filled_on_their_share_of_rows(feeds):
    plain, travel = feeds
    assert travel.columns.tolist() == HEADER + TRAVEL_HEADER
    came = travel["出发地"] != ""
    assert came.sum() == ROWS * 0.3
    assert ((travel["抵达日期"] != "") == came).all()  # both given, or neither
    arrived = pd.to_datetime(travel.loc[came, "抵达日期"], format="%Y-%m-%d")
    assert arrived.max() <= NOW.normalize() and arrived.min() > NOW.normalize() - pd.Timedelta(days=ARRIVAL_DAYS)
    assert arrived.nunique() == ARRIVAL_DAYS
    hubei = travel.loc[came, "出发地"].isin(HUBEI_ORIGINS)
    assert abs(hubei.mean() - HUBEI_SHARE) < 0.05
    assert set(travel.loc[came, "出发地"]) <= set(HUBEI_ORIGINS) | set(OTHER_ORIGINS)
    # the other columns are those of the same seed without travel (but the natives' ID numbers)
    same = plain.columns.drop("身份证号码")
    assert (travel[same] == plain[same]).all().all()


def test_hubei_origins_are_read_in_hubei_and_the_others_outside():
    """What the generator calls Hubei is Hubei for the regions the rules use, in every style it writes."""
    places = divisions()
    assert all(str(places.place(text)).startswith("42") for text in HUBEI_ORIGINS)
    assert all(places.place(text) is not None and not str(places.place(text)).startswith("42")
               for text in OTHER_ORIGINS)


def test_natives_hold_valid_distinct_hubei_id_numbers(feeds):
    plain, travel = feeds
    ids = travel["身份证号码"]
    changed = ids != plain["身份证号码"]
    assert changed.sum() == ROWS * 0.02
    assert set(ids[changed].str[:6]) <= set(HUBEI_COUNTIES) and ids[changed].str[:6].nunique() > 3
    assert (plain["身份证号码"].str[:6] == "440605").all()
    assert ids.is_unique
    assert [id_number_problem(n, today=date(2026, 11, 30)) for n in ids[changed]] == [None] * int(changed.sum())


def test_native_numbers_stay_distinct_when_many_share_a_county(tmp_path):
    """Most residents natives of eight counties: their numbers are still distinct."""
    feed = _read(write_feed(tmp_path / "natives.csv", 5000, DISTRICT, now=NOW, native_share=0.9))
    assert feed["身份证号码"].is_unique and np.mean(feed["身份证号码"].str[:2] == "42") == 0.9
