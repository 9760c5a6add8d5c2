"""Everyone's code and place from his records: the part of a match that is the same whichever engine runs it.

:func:`coded_persons` takes the records of some persons (all of them in the in-process run, a key range of them
on a Spark executor: :mod:`matching.spark`) and gives each person his code, the masked fields of his newest
records and where he lives (newest point, else newest address); :class:`Placing` puts him in a grid. Nothing here
depends on persons other than the one at hand, which is why a run cut by person gives the same answers as a run
over everyone. Records come in (``feed_file_id``, ``row_number``) order (:func:`in_record_order`): where two of a
person's records tie on time, the later one in that order explains his code, in both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from matching.addresses import NO_LOCATION, AddressMatcher, Placement
from matching.identity import NOT_GIVEN, PROVISIONAL
from matching.locator import GridLocator
from matching.rules import RuleSet, assess

OUTSIDE_DISTRICT = "坐标在本区之外 / outside the district"
_NULL = np.array(None, dtype=object)  # None for np.where (numpy's stubs take no bare None there)


class OpensTexts(Protocol):
    """Opens sealed texts in memory (:class:`matching.privacy.Vault` or, on an executor, its opener alone)."""

    def open_texts(self, tokens: Sequence[str]) -> list[str]: ...


@dataclass
class CodedPersons:
    """Persons with their code and masked fields (``persons``, in key order, one row each), the task requests of
    the rules (``requests``), and per person the newest point (``lon``, ``lat``: NaN if none) and the newest home
    address, opened (``addresses``: "" if none): what :class:`Placing` needs."""

    persons: pd.DataFrame
    requests: pd.DataFrame
    lon: np.ndarray
    lat: np.ndarray
    addresses: np.ndarray


def in_record_order(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` sorted by (feed_file_id, row_number), as read if they already are (the usual case: a table filled
    by imports, read in its physical order), so that ties are broken alike in every engine."""
    feed, row = records["feed_file_id"].to_numpy(), records["row_number"].to_numpy()
    after = (feed[1:] > feed[:-1]) | ((feed[1:] == feed[:-1]) & (row[1:] > row[:-1]))
    ordered = len(records) < 2 or bool(after.all())
    return records if ordered else records.iloc[np.lexsort((row, feed))].reset_index(drop=True)


def coded_persons(records: pd.DataFrame, rules: RuleSet, now: pd.Timestamp, overrides: pd.DataFrame,
                  opener: OpensTexts) -> CodedPersons:
    """The code of every person of ``records`` (see :func:`matching.rules.assess`), his masked fields from his newest
    records that have them, the record they come from, and his newest point and address (the address opened in
    memory for this run: stored sealed, migration 0014). ``records`` in :func:`in_record_order`, with a ``birth``
    column if the rules read an age."""
    person_of_record, keys = pd.factorize(records["person_key"], sort=True)  # persons in key order, as stored
    assessment = assess(records, rules, now, overrides, people=pd.Index(keys, name="person_key"),
                        person=person_of_record)
    codes = assessment.codes
    people = len(codes)
    # the records' order of time (report, then file and row), without moving a million rows of text
    oldest_first = np.lexsort((records["row_number"].to_numpy(), records["feed_file_id"].to_numpy(),
                               records["reported_at"].array.asi8))
    latest = _latest(person_of_record, oldest_first, people)  # everyone has a record
    # the masks taken as they are stored (pyarrow), not as a million Python strings each
    # a phone from the newest record that has one: a newer record's malformed phone was dropped, not replaced;
    # likewise the ID number and the name (a linked record may have neither), and unmasking opens the newest record
    # that has an ID number
    with_phone = _latest(person_of_record, oldest_first, people, records["phone_masked"].notna().to_numpy())
    identified = records["identified"].to_numpy(dtype=bool)
    with_id = latest if identified.all() else _fallback(
        _latest(person_of_record, oldest_first, people, identified), latest)
    with_name = latest if identified.all() else _fallback(_latest(
        person_of_record, oldest_first, people, (records["name_masked"] != NOT_GIVEN).to_numpy()), latest)
    persons = codes.assign(id_masked=records["id_masked"].array.take(with_id),
                           name_masked=records["name_masked"].array.take(with_name),
                           phone_masked=records["phone_masked"].array.take(with_phone, allow_fill=True),
                           record_feed_file_id=records["feed_file_id"].to_numpy()[with_id],
                           record_row_number=records["row_number"].to_numpy()[with_id],
                           provisional=pd.Index(keys).str.startswith(PROVISIONAL))
    with_point = _latest(person_of_record, oldest_first, people, records["lon"].notna().to_numpy())
    with_address = _latest(person_of_record, oldest_first, people, (records["address_sealed"] != "").to_numpy())
    lon = _take(records["lon"].to_numpy(dtype=float), with_point, np.nan)
    lat = _take(records["lat"].to_numpy(dtype=float), with_point, np.nan)
    addresses = _take(records["address_sealed"].to_numpy(dtype=object), with_address, "")
    given = np.flatnonzero(addresses != "")
    addresses[given] = opener.open_texts(addresses[given].tolist())
    persons = persons.reset_index().rename(columns={"index": "person_key"})
    return CodedPersons(persons, assessment.requests, lon, lat, addresses)


def _latest(person_of_record: np.ndarray, oldest_first: np.ndarray, people: int,
            mask: np.ndarray | None = None) -> np.ndarray:
    """For each of ``people`` persons, the row of his most recent record (among ``mask``), -1 if none.

    ``person_of_record`` gives each record's person (a position) and ``oldest_first`` the records' rows
    from the oldest to the newest: a person's latest record is the one that comes last there.
    """
    ranks = np.arange(len(oldest_first)) if mask is None else np.flatnonzero(mask[oldest_first])
    latest = np.full(people, -1, dtype=np.int64)
    np.maximum.at(latest, person_of_record[oldest_first[ranks]], ranks)
    found = latest >= 0
    latest[found] = oldest_first[latest[found]]
    return latest


def _fallback(rows: np.ndarray, otherwise: np.ndarray) -> np.ndarray:
    """``rows``, with ``otherwise`` where a row is -1 (a person none of whose records has the field)."""
    return np.where(rows >= 0, rows, otherwise)


def _take(values: np.ndarray, rows: np.ndarray, missing: object) -> np.ndarray:
    """``values`` at ``rows``, ``missing`` where a row is -1."""
    taken = values[np.maximum(rows, 0)].copy()
    taken[rows < 0] = missing
    return taken


class Placing:
    """Places persons, chunk by chunk: by their point, else by their address (each distinct address
    matched once per run), and says why for those it cannot place."""

    def __init__(self, locator: GridLocator, grid_ids: np.ndarray, matcher: AddressMatcher) -> None:
        self.locator, self.grid_ids, self.matcher = locator, grid_ids, matcher
        self.placements: dict[str, Placement] = {}

    def __call__(self, persons: pd.DataFrame, lon: np.ndarray, lat: np.ndarray,
                 addresses: np.ndarray) -> pd.DataFrame:
        """``persons`` with their place: lon, lat, method, confidence, unplaced_reason and grid_id, given
        each one's latest point (NaN if none) and latest address ("" if none)."""
        lon, lat = lon.copy(), lat.copy()
        has_point = ~np.isnan(lon)
        method = np.where(has_point, "point", _NULL).astype(object)
        confidence = np.where(has_point, 1.0, 0.0)
        reason = np.full(len(persons), None, dtype=object)
        index = np.full(len(persons), -1, dtype=np.int64)
        index[has_point] = self.locator.locate(lon[has_point], lat[has_point])
        outside = has_point & (index < 0)
        for i in np.flatnonzero(~has_point | outside):
            address = addresses[i]
            placement = self.placements.get(address)
            if placement is None and address:
                placement = self.placements.setdefault(address, self.matcher.place(address))
            if placement is None or placement.method is None:
                method[i], confidence[i] = None, 0.0
                if outside[i]:
                    reason[i] = OUTSIDE_DISTRICT
                else:
                    reason[i] = placement.unplaced_reason if placement else NO_LOCATION
                continue
            lon[i], lat[i] = placement.lon, placement.lat
            method[i], confidence[i] = placement.method, placement.confidence
        by_address = ~has_point | outside
        by_address &= method != None  # noqa: E711 - elementwise test on an object array
        if by_address.any():
            index[by_address] = self.locator.locate(lon[by_address], lat[by_address])
        placed = index >= 0
        reason[~placed & (reason == None)] = OUTSIDE_DISTRICT  # noqa: E711
        keep_point = placed | has_point
        grid_id = pd.array(np.where(placed, self.grid_ids[np.maximum(index, 0)], 0), dtype="Int64")
        grid_id[~placed] = pd.NA
        return persons.assign(lon=np.where(keep_point, lon, np.nan), lat=np.where(keep_point, lat, np.nan),
                              method=np.where(placed, method, _NULL), confidence=np.where(placed, confidence, 0.0),
                              unplaced_reason=np.where(placed, _NULL, reason), grid_id=grid_id)
