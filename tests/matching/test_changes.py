"""What a match run writes: only what is new or different from the previous run, judged as SQL would."""

import numpy as np
import pandas as pd

from matching.changes import COMPARED, FLAGGED, compare

NOW = pd.Timestamp("2026-11-26 08:00:00.123456789", tz="UTC")
EXPIRES = pd.Timestamp("2026-12-10 08:00", tz="UTC")


def person(key: str, colour: str = "green", grid_id: int | None = 7, **fields) -> dict:
    row = {"person_key": key, "id_masked": "440605********1234", "name_masked": "张*明", "phone_masked": "",
           "colour": colour, "reason": f"{colour} 规则", "rule_id": None if colour == "green" else f"r-{colour}",
           "sources": "卫健", "set_at": NOW, "expires_at": EXPIRES if colour == "yellow" else pd.NaT,
           "method": "point", "confidence": 1.0, "grid_id": grid_id, "unplaced_reason": None,
           "record_feed_file_id": 1, "record_row_number": int(key[1:]), "lon": 113.1, "lat": 23.0,
           "explanation": None if colour == "green" else f"r-{colour}：类别「{colour}」"}
    row.update(fields)
    if row["grid_id"] is None and row["unplaced_reason"] is None:
        row["unplaced_reason"] = "无定位信息"
    return row


def run_of(*people: dict) -> pd.DataFrame:
    frame = pd.DataFrame(people)
    frame["grid_id"] = frame["grid_id"].astype("Int64")
    frame["expires_at"] = pd.to_datetime(frame["expires_at"], utc=True)
    return frame


def stored_as(run: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the database holds after storing ``run``: times to the microsecond, empty texts as NULL."""
    stored = run[["person_key", *COMPARED]].copy()
    stored["expires_at"] = stored["expires_at"].dt.floor("us")
    stored["phone_masked"] = stored["phone_masked"].replace("", None)
    flags = run.loc[run["colour"] != "green", ["person_key", *FLAGGED]].reset_index(drop=True)
    return stored.sample(frac=1, random_state=1).reset_index(drop=True), flags


def empty_state() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame({c: pd.Series(dtype=object) for c in ("person_key", *COMPARED)}),
            pd.DataFrame({c: pd.Series(dtype=object) for c in ("person_key", *FLAGGED)}))


def test_a_first_run_inserts_everyone_and_codes_flags_and_requests_the_risky():
    run = run_of(person("p1", "red"), person("p2", "yellow"), person("p3", "blue"), person("p4"))
    changes = compare(run, *empty_state(), NOW)
    assert list(changes.new["person_key"]) == ["p1", "p2", "p3", "p4"]
    assert changes.changed.empty and len(changes.removed) == 0 and len(changes.unflagged) == 0
    assert list(changes.history["person_key"]) == ["p1", "p2", "p3"]
    assert changes.history["previous_colour"].isna().all()
    assert list(changes.requests["person_key"]) == ["p1", "p2"]
    assert list(changes.flags_new["person_key"]) == ["p1", "p2", "p3"] and changes.flags_changed.empty


def test_the_same_run_again_changes_nothing():
    run = run_of(person("p1", "red"), person("p2", "yellow", phone_masked=None), person("p3", "blue", grid_id=None),
                 person("p4", lon=np.nan, lat=np.nan))
    changes = compare(run, *stored_as(run), NOW)  # expires_at has nanoseconds the database does not keep
    assert changes.new.empty and changes.changed.empty and changes.history.empty and changes.requests.empty
    assert changes.flags_new.empty and changes.flags_changed.empty
    assert len(changes.removed) == 0 and len(changes.unflagged) == 0


def test_changes_of_code_place_and_presence():
    before = run_of(person("p1", "blue"), person("p2", "red"), person("p3", "yellow"), person("p4"),
                    person("p5", "red"), person("p6", "yellow"))
    stored, flags = stored_as(before)
    after = run_of(person("p1", "red"),                                  # raised: history and a task
                   person("p2", "yellow"),                               # lowered: history, no task
                   person("p3"),                                         # now green: history, flag goes
                   person("p4", name_masked="李*"),                       # new masked name: rewritten only
                   person("p6", "yellow", grid_id=9),                    # moved: rewritten, flag moved
                   person("p7", "yellow"))                               # new person
    changes = compare(after, stored, flags, NOW)                        # p5 is gone
    assert list(changes.new["person_key"]) == ["p7"]
    assert sorted(changes.changed["person_key"]) == ["p1", "p2", "p3", "p4", "p6"]
    assert list(changes.removed) == ["p5"]
    history = changes.history.set_index("person_key")
    assert history["previous_colour"].fillna("-").to_dict() == {"p1": "blue", "p2": "red", "p3": "yellow", "p7": "-"}
    requests = changes.requests.set_index("person_key")
    assert requests["previous_colour"].fillna("-").to_dict() == {"p1": "blue", "p7": "-"}
    assert list(changes.unflagged) == ["p3"]
    assert list(changes.flags_new["person_key"]) == ["p7"]  # blue is flagged too: p1's flag turns red
    assert changes.flags_changed.set_index("person_key")["colour"].to_dict() == {"p1": "red", "p2": "yellow",
                                                                                 "p6": "yellow"}


def test_a_flag_that_differs_from_its_person_is_set_right():
    run = run_of(person("p1", "red"))
    stored, flags = stored_as(run)
    flags.loc[0, ["grid_id", "unplaced_reason"]] = [None, "所在网格已被取代"]  # as a grid replacement leaves it
    changes = compare(run, stored, flags, NOW)
    assert changes.changed.empty and changes.history.empty
    assert changes.flags_changed[["person_key", "grid_id"]].values.tolist() == [["p1", 7]]


def test_an_expiry_moved_is_a_change_of_code():
    run = run_of(person("p1", "yellow"))
    stored, flags = stored_as(run)
    later = run.assign(expires_at=EXPIRES + pd.Timedelta(days=1))
    changes = compare(later, stored, flags, NOW)
    assert list(changes.history["person_key"]) == ["p1"] and changes.requests.empty
