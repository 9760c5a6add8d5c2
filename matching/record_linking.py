"""The matcher's linkage step: the stored records, some without an ID number, become records with a person each.

A record that carried a valid ID number is its person (his key is the HMAC of the number). The others are
linked by :func:`matching.linkage.link_records` on what they say — phone, name, date of birth, address —
opened from their Fernet tokens here, in memory only, for this run (nothing clear is written back or logged).
The result gives every record its person key: the identified person it was linked to, or the provisional person
of its cluster (a review pair's record stays provisional until a reviewer decides).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.identity import provisional_key
from matching.linkage import LinkResult, link_records
from matching.linkage_repository import record_ids
from matching.persons import OpensTexts
from matching.privacy import Vault


def linkage_frame(records: pd.DataFrame, sealed: pd.DataFrame, vault: Vault) -> pd.DataFrame:
    """The input of :func:`matching.linkage.link_records` for ``records`` (as :func:`repository.load_records`
    reads them) given their sealed fields (:func:`repository.load_sealed`): record_id, identified, person_key,
    name, phone, birth, address — the clear values in memory only."""
    ids = record_ids(records["feed_file_id"].to_numpy(), records["row_number"].to_numpy())
    fields = _opened_fields(ids, sealed, vault)
    identified = records["identified"].to_numpy(dtype=bool)
    births = _births(fields, identified)
    addresses = records["address_sealed"].to_numpy(dtype=object).copy()
    given = np.flatnonzero(addresses != "")
    addresses[given] = vault.open_texts(addresses[given].tolist())
    # an unidentified record goes in under its own provisional key, not the person the last match linked it to
    keys = records["person_key"].to_numpy(dtype=object).copy()
    keys[~identified] = [provisional_key(f, r) for f, r in zip(records["feed_file_id"].to_numpy()[~identified],
                                                               records["row_number"].to_numpy()[~identified],
                                                               strict=True)]
    return pd.DataFrame({
        "record_id": ids, "identified": identified, "person_key": keys,
        "name": fields["name"].to_numpy(zero_copy_only=False), "phone": _none_if_empty(fields["phone"]),
        "birth": _none_if_empty(births),
        "address": np.where(addresses == "", None, addresses)})


def _opened_fields(ids: np.ndarray, sealed: pd.DataFrame, vault: OpensTexts) -> dict[str, pa.Array]:
    """The opened fields (:func:`_opened_columns`) of the records ``ids``, from their sealed tokens."""
    tokens = pd.Series(sealed["sealed"].to_numpy(dtype=object),
                       index=record_ids(sealed["feed_file_id"].to_numpy(), sealed["row_number"].to_numpy()))
    return _opened_columns(vault.open_texts(tokens.reindex(ids).tolist()))


def _births(fields: dict[str, pa.Array], identified: np.ndarray) -> pa.Array:
    """Each record's date of birth, 'YYYY-MM-DD' ("" when none): an identified record's is its ID number's (digits
    7 to 14), another's the date it gave."""
    number = fields["id_number"]
    from_id = pc.binary_join_element_wise(*(pc.utf8_slice_codeunits(number, start, stop)
                                            for start, stop in ((6, 10), (10, 12), (12, 14))), "-")
    return pc.if_else(pa.array(identified), from_id, fields["birth"])


def _opened_columns(texts: list[str]) -> dict[str, pa.Array]:
    """The fields of opened record tokens (:func:`matching.privacy.opened_fields`), as columns: id_number, name, phone
    and birth ("" where a token has none), split in C++ rather than one dict per record."""
    opened = pa.array(texts, type=pa.string())
    short = pc.less(pc.list_value_length(pc.split_pattern(opened, "\t")), 4)  # sealed before birth dates were
    parts = pc.split_pattern(pc.if_else(short, pc.binary_join_element_wise(opened, "\t", ""), opened), "\t")
    return {name: pc.list_element(parts, i) for i, name in enumerate(("id_number", "name", "phone", "birth"))}


def _none_if_empty(values: pa.Array) -> np.ndarray:
    """A text column as objects, None where empty (what linkage takes for a missing field)."""
    array = values.to_numpy(zero_copy_only=False).astype(object)
    array[array == ""] = None
    return array


def link_unidentified(records: pd.DataFrame, sealed: pd.DataFrame, vault: Vault, decisions: pd.DataFrame,
                      settings: dict[str, Any] | None) -> tuple[pd.DataFrame, LinkResult]:
    """``records`` with each unidentified record's ``person_key`` set by linkage, and the linkage's result (its
    links, review pairs and, when ``settings`` was None, the weights trained now)."""
    result = link_records(linkage_frame(records, sealed, vault), decisions, settings)
    resolved = pd.Series(result.links["person_key"].to_numpy(dtype=object),
                         index=result.links["record_id"].to_numpy())
    ids = record_ids(records["feed_file_id"].to_numpy(), records["row_number"].to_numpy())
    unidentified = ~records["identified"].to_numpy(dtype=bool)
    keys = records["person_key"].to_numpy(dtype=object).copy()
    keys[unidentified] = resolved.reindex(ids[unidentified]).to_numpy(dtype=object)
    return records.assign(person_key=keys), result


def record_births(records: pd.DataFrame, sealed: pd.DataFrame, vault: OpensTexts) -> np.ndarray:
    """Each record's date of birth (datetime64, NaT when unknown): its ID number's digits 7 to 14, else the date
    the record gave; opened from the sealed fields (:func:`repository.load_sealed`) in memory only, for the rules
    that read an age."""
    fields = _opened_fields(record_ids(records["feed_file_id"].to_numpy(), records["row_number"].to_numpy()),
                            sealed, vault)
    births = _births(fields, records["identified"].to_numpy(dtype=bool))
    return pd.to_datetime(births.to_pandas(), format="%Y-%m-%d", errors="coerce").to_numpy()
